#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_stop.sh - SIGTERM (fast) and SIGQUIT (graceful) stop the master and every child with status 0, removing the unix socket and the pid file.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
np_require cgi-fcgi

np_start_pg
timeout_ms=3000
for sig in TERM QUIT INT; do
	name=stop-$sig
	np_start_daemon --name "$name" workers=3 shutdown_timeout_ms=$timeout_ms
	sock=$NP_TMP/$name.sock pidf=$NP_TMP/$name.pid
	np_expect "SIG$sig: unix socket exists while running" test -S "$sock"
	np_expect_eq "SIG$sig: pid file names the master" "$NP_DAEMON_PID" "$(cat "$pidf" 2>/dev/null)"
	kids=$(np_children "$NP_DAEMON_PID" | wc -l)
	np_expect_eq "SIG$sig: 4 children before" 4 "$kids"
	if np_stop_daemon "$sig" "$timeout_ms"; then
		np_ok "SIG$sig: master and its $kids children exited within shutdown_timeout_ms $timeout_ms ($NP_STOP_MS ms)"
		echo "RESULT stop_${sig}_ms=$NP_STOP_MS"
		np_expect_eq "SIG$sig: master exit status" 0 "$NP_EXIT_STATUS"
	else
		np_not_ok "SIG$sig: not stopped within $timeout_ms ms: $(np_children "$NP_DAEMON_PID" | tr '\n' ' ')"
	fi
	np_expect "SIG$sig: unix socket removed" test ! -e "$sock"
	np_expect "SIG$sig: pid file removed" test ! -e "$pidf"
	np_expect "SIG$sig: no child reported a failure" bash -c "! grep -E 'level=(error|warn)' '$NP_DAEMON_LOG'"
done

# In flight: a POST whose body arrives in two halves 1.5 s apart keeps a worker busy. The first
# half is 20 kB: a worker serves a request once its head and 16 kB of its body are there (a
# connection with less waits in the worker's inbox, and a stop gives it at most 1 s).
# start_slow_request: cgi-fcgi in the background, the second half after DELAY seconds.
start_slow_request() {
	local delay=$1
	rm -f "$NP_TMP/fifo"; mkfifo "$NP_TMP/fifo"
	head -c 40000 /dev/zero | tr '\0' x >"$NP_TMP/body100"
	(exec 3>"$NP_TMP/fifo"; head -c 20000 "$NP_TMP/body100" >&3; sleep "$delay"; tail -c 20000 "$NP_TMP/body100" >&3) &
	WRITER_PID=$!
	env -i REQUEST_METHOD=POST REQUEST_URI=/api/v1/version SCRIPT_NAME=/api/v1/version CONTENT_LENGTH=40000 \
		CONTENT_TYPE=application/json timeout 20 cgi-fcgi -bind -connect "$NP_DAEMON_ADDR" \
		<"$NP_TMP/fifo" >"$NP_TMP/out/slow.out" 2>&1 &
	SLOW_PID=$!
	sleep 0.3
}

# SIGQUIT lets the in-flight request finish, then exits 0.
np_start_daemon --name quit-inflight workers=2 shutdown_timeout_ms=$timeout_ms
start_slow_request 1.5
np_now_ms; t0=$NP_NOW
kill -QUIT "$NP_DAEMON_PID"
sleep 0.5
np_expect "SIGQUIT in flight: the master waits for the busy worker" np_alive "$NP_DAEMON_PID"
wait "$SLOW_PID"
np_expect_eq "SIGQUIT in flight: the request got its full answer (405 for POST)" 405 \
	"$(sed -n 's/^Status: \([0-9]*\).*/\1/p' "$NP_TMP/out/slow.out")"
np_expect "SIGQUIT in flight: answer body is JSON" bash -c "tail -n 1 '$NP_TMP/out/slow.out' | $NP_PYTHON -c 'import json,sys; json.load(sys.stdin)'"
if np_wait_gone "$NP_DAEMON_PID" "$timeout_ms"; then
	np_now_ms; np_wait_status "$NP_DAEMON_PID"
	np_ok "SIGQUIT in flight: master gone after the request ($((NP_NOW - t0)) ms)"
	np_expect_eq "SIGQUIT in flight: master exit status" 0 "$NP_EXIT_STATUS"
else
	np_not_ok "SIGQUIT in flight: master still running"
fi

# SIGTERM does not wait for a request longer than shutdown_timeout_ms.
np_start_daemon --name term-inflight workers=2 shutdown_timeout_ms=1000
start_slow_request 4
if np_stop_daemon TERM 3000; then
	np_ok "SIGTERM in flight (shutdown_timeout_ms 1000): master and children gone in $NP_STOP_MS ms"
	np_expect "SIGTERM in flight: took at most 1000 ms + 500 ms" test "$NP_STOP_MS" -le 1500
	np_expect_eq "SIGTERM in flight: master exit status" 0 "$NP_EXIT_STATUS"
else
	np_not_ok "SIGTERM in flight: not stopped within 3000 ms"
fi
wait "$SLOW_PID" 2>/dev/null
kill "$WRITER_PID" 2>/dev/null; wait "$WRITER_PID" 2>/dev/null

# A TCP listener stops the same way (no socket file involved).
port=$(np_free_port) || np_fail "no free port"
np_start_daemon --name stop-tcp workers=2 listen="127.0.0.1:$port" shutdown_timeout_ms=$timeout_ms
np_stop_daemon QUIT "$timeout_ms" && np_ok "TCP listener: SIGQUIT stop ($NP_STOP_MS ms)" || np_not_ok "TCP listener: SIGQUIT stop"
np_expect_eq "TCP listener: master exit status" 0 "${NP_EXIT_STATUS:-}"
np_expect "TCP listener: port $port free again" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"
np_finish
