#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_waiting_reset.sh - workers killed while waiting for a token leave no `waiting` mark behind: afterwards a request that must wait still waits (200 once the token frees) instead of an immediate 503 because max_waiters looks full.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

# generous: the read below waits for a psql start and a new TLS connect, slow on a loaded machine
acq=$((4000 * NP_TIMEOUT_SCALE))
np_db_start workers=6 budget=1 min_warm=1 max_waiters=2 acquire_timeout_ms=$acq query_timeout_ms=30000 \
	client_check_ms=200
url="http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN"

# np_poll_status EXPR WANT TIMEOUT_MS: poll `neonpoolctl status` until EXPR prints WANT.
np_poll_status() {
	local t0 v
	np_now_ms; t0=$NP_NOW
	while :; do
		v=$(np_status_json "$1")
		[ "$v" = "$2" ] && return 0
		np_now_ms
		[ $((NP_NOW - t0)) -gt "$3" ] && { np_log "status: $1 = $v (wanted $2)"; return 1; }
		sleep 0.02
	done
}

# A foreign session locks the books for long: the one holder's read blocks on it.
np_psql_super -d neonpool -c "SET application_name = 'np_lock'; BEGIN; LOCK TABLE books IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;" >/dev/null 2>&1 &
lock_pid=$!
np_wait_lock books
curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 "$url" >"$NP_TMP/out/a.txt" &
a_pid=$!
# the holder has been inside its request longer than acquire_timeout_ms: spares let requests in
np_expect "the supervisor sheds (the one holder is stuck)" \
	np_poll_status 'd["endpoints"]["primary"]["shedding"]' True $((acq + 3000))
holder=$(np_status_json '[t["pid"] for t in d["endpoints"]["primary"]["tokens"]][0]')
np_log "holder pid $holder"

# two more reads: spares take them and wait for the one token (max_waiters = 2)
for i in 1 2; do
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 "$url" >"$NP_TMP/out/w$i.txt" &
done
np_expect "two workers wait for the token" np_poll_status 'd["waiting"]' 2 $((acq / 2))
waiters=$(np_status_json '" ".join(str(w["pid"]) for w in d["workers"] if w["waiting"])')
np_log "waiting workers: $waiters"
for p in $waiters; do kill -KILL "$p"; done
for p in $waiters; do np_wait_gone "$p" 2000; done
np_expect "the killed waiters were replaced" \
	np_poll_status 'len([w for w in d["workers"] if w["state"] in ("idle", "busy")])' 6 3000
waiting_after=$(np_status_json 'd["waiting"]')
np_expect_eq "no waiter left after the kills (status)" 0 "$waiting_after"

# A read that must wait: the holder is still stuck, so a spare takes it and waits for the token.
np_now_ms; t0=$NP_NOW
curl -s -o "$NP_TMP/out/d.body" -w '%{http_code} %{time_total}\n' --max-time 60 "$url" >"$NP_TMP/out/d.txt" &
d_pid=$!
sleep 0.5
early=$(cat "$NP_TMP/out/d.txt")
np_expect_eq "the read waits for the token (no answer within 0.5 s)" "" "$early"
# free the token: the holder dies (its backend aborts within client_check_ms), then the lock goes
# (psql starts in the background meanwhile: its start-up is slow on a loaded machine)
(sleep 0.3; np_psql_super -d postgres -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'np_lock'$(np_pg_scope)" >/dev/null) &
term_pid=$!
kill -KILL "$holder"
wait "$term_pid"
wait "$d_pid"
np_now_ms
read -r dcode dsecs <"$NP_TMP/out/d.txt"
np_expect_eq "the waiting read got 200 once the token was free" 200 "$dcode"
wait "$lock_pid" "$a_pid" 2>/dev/null
echo "RESULT 2 waiters killed: waiting afterwards $waiting_after (max_waiters 2); a read that had to wait got ${dcode:-none} in ${dsecs:-?} s ($((NP_NOW - t0)) ms, early answer '${early}')"
np_finish
