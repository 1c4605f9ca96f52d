#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_permit_dead_holder_pid_reused.sh - one of the ask pool's permits (NP_ASK_PERMITS internal transactions at a time) held by an ask worker that is killed -9, whose pid then goes to an unrelated process: the master frees the permit when it reaps the holder, so the next ask is answered instead of waiting for a permit that kill(pid, 0) took for held (with several permits the next ask finds a free one anyway: the master's log line is what pins the reclaim). The daemon runs in a pid namespace of its own, where /proc/sys/kernel/ns_last_pid hands the dead holder's pid to a sleep.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx unshare nsenter ss
np_is_root || np_skip "a pid namespace needs root"
unshare -pf --mount-proc true 2>/dev/null || np_skip "cannot make a pid namespace here"

np_db_prepare
NP_DAEMON_WRAPPER="unshare -pf --mount-proc --kill-child $NP_DAEMON_WRAPPER"
# the holder waits up to 1 + 8 + 0.5 s for the main pool: long enough to kill it while it waits
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=1 workers=1 budget=1 min_warm=1 acquire_timeout_ms=1000 query_timeout_ms=8000 \
	query_deadline_margin_ms=500
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready

master=$(ps -o pid= --ppid "$NP_DAEMON_PID" | tr -d ' ')
nspid() { sed -n 's/^NSpid:[[:space:]]*[0-9]*[[:space:]]*\([0-9]*\)$/\1/p' "/proc/$1/status"; }
np_session
ask() { # ask N: the status of one JSON ask
	curl -s -m 30 -o "$NP_TMP/out/ask$1.json" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		--data "{\"question\":\"What is a passage? ($1)\"}" "http://127.0.0.1:$NP_HTTP_PORT/api/v1/sessions/$sid/ask"
}
np_expect_eq "an ask before: 200" 200 "$(ask 0)"

# the main worker stops accepting: the ask worker's internal request waits in the main socket's
# backlog while it holds the permit
workers=$(np_child_pids "$master" np-worker)
holder=$(np_child_pids "$master" np-ask)
kill -STOP $workers
ask 1 >"$NP_TMP/out/ask1.status" &
asker=$!
queued=0
for i in $(seq 1 200); do
	queued=$(ss -xlH src "$NP_TMP/neonpoold.sock" | awk '{print $3}')
	[ "${queued:-0}" -ge 1 ] && break
	sleep 0.05
done
np_expect "the holder's internal request waits in the main socket's backlog" test "${queued:-0}" -ge 1
held=$(nspid "$holder")
kill -KILL "$holder"
for i in $(seq 1 100); do
	new=$(np_child_pids "$master" np-ask)
	[ -n "$new" ] && [ "$new" != "$holder" ] && break
	sleep 0.05
done
np_expect "the master respawned the ask worker" test -n "$new" -a "$new" != "$holder"

# an unrelated process gets the dead holder's pid
reused=""
for try in 1 2 3; do
	nsenter -t "$master" -p sh -c "echo $((held - 1)) >/proc/sys/kernel/ns_last_pid; exec sleep 60" &
	sleeper=$!
	# until nsenter's child has written ns_last_pid and become the sleep (a fixed 0.2 s could
	# kill it first on a loaded machine, and every try then came to nothing)
	for _ in $(seq 100); do
		sp=$(ps -o pid= --ppid "$sleeper" | tr -d ' ')
		[ -n "$sp" ] && [ "$(cat "/proc/$sp/comm" 2>/dev/null)" = sleep ] && break
		sleep 0.05
	done
	[ -n "$sp" ] && [ "$(nspid "$sp")" = "$held" ] && { reused=$sp; break; }
	kill "$sleeper" $sp 2>/dev/null
done
np_expect "a sleep has the dead holder's pid $held in the daemon's namespace" test -n "$reused"
kill -CONT $workers
wait "$asker"

np_now_ms; t0=$NP_NOW
st=$(ask 2)
np_now_ms
np_log "the next ask: $st after $((NP_NOW - t0)) ms ($(head -c 200 "$NP_TMP/out/ask2.json"))"
np_expect_eq "the next ask is answered 200 (the dead holder's permit was freed)" 200 "$st"
np_expect "the master said it freed the permit" grep -q "freeing the ask pool's permit a dead child held" "$NP_DAEMON_LOG"
kill "$sleeper" $reused 2>/dev/null
# unshare -f ignores SIGTERM: the teardown's stop goes to the master itself
kill -TERM "$master"
np_wait_gone "$NP_DAEMON_PID" 10000
np_finish
