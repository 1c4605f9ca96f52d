#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_crash_midquery.sh - a worker killed with kill -9 while its query runs: its budget token stays counted while the backend lives, the server aborts the statement (client_check_ms), and the token is free 1 s after the backend's exit; never over budget meanwhile.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_start workers=3 budget=2 min_warm=1 query_timeout_ms=20000 client_check_ms=300
# The next book read blocks on a lock held by a foreign session for 10 s.
np_psql_super -d neonpool -c "BEGIN; LOCK TABLE books IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(10); COMMIT;" >/dev/null 2>&1 &
lock_pid=$!
np_wait_lock books
curl -s -o /dev/null --max-time 15 "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN" &
curl_pid=$!
for _ in $(seq 1 50); do
	victim=$(np_status_json '" ".join(str(w["pid"]) for w in d["workers"] if w["state"] == "busy")')
	[ -n "$victim" ] && break
	sleep 0.05
done
np_expect "a worker is inside the blocked query ($victim)" test -n "$victim"
backend=$(np_psql_super -d postgres -At -c "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%' AND wait_event_type = 'Lock'")
np_expect "its backend waits on the lock ($backend)" test -n "$backend"
kill -KILL "$victim"
np_now_ms; t0=$NP_NOW
np_sampler_start
# the backend is a process of this machine: watched in /proc (a psql per sample took longer than
# what it measures on a loaded machine)
freed=0
while :; do
	np_now_ms
	if ! np_alive "${backend:-0}"; then freed=1; break; fi
	[ $((NP_NOW - t0)) -gt $((5000 * NP_TIMEOUT_SCALE)) ] && break
	sleep 0.01
done
gone_ms=$((NP_NOW - t0))
np_expect "the backend of the dead worker is gone within 1 s (client_check_ms 300; $gone_ms ms)" \
	test "$freed" = 1 -a "$gone_ms" -le $((1000 * NP_TIMEOUT_SCALE))
np_expect_eq "and the server no longer lists it" 0 \
	"$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE pid = ${backend:-0}")"
# its token: freed once the server closed (the master reads the EOF at once), then counted again
# only by live connections; read 1 s after the backend's exit (a read's own start-up took seconds
# under load, so its end time says nothing about when the token was freed)
np_now_ms
wait_ms=$((t0 + gone_ms + 1000 * NP_TIMEOUT_SCALE - NP_NOW))
[ "$wait_ms" -gt 0 ] && sleep "$(awk -v m="$wait_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
orphaned=$(np_status_json 'd["endpoints"]["primary"]["orphaned"]')
np_expect_eq "no orphaned token 1 s after the backend's exit" 0 "$orphaned"
read -r max samples < <(np_sampler_stop)
np_expect "never above the budget of 2 meanwhile (max $max over $samples samples)" test "$max" -le 2
np_expect "the master said so" grep -q "server closed a dead worker's connection" "$NP_DAEMON_LOG"
np_expect "the server aborted the statement for a lost client" \
	grep -qE 'connection to client lost|could not receive data from client|unexpected EOF' "$NP_TMP/pg/postgresql.log"
kill "$lock_pid" 2>/dev/null
np_psql_super -d postgres -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(10)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$lock_pid" "$curl_pid" 2>/dev/null
np_curl /api/v1/books/$NP_BOOK_MIN
np_expect_eq "reads work afterwards" 200 "$NP_STATUS"
echo "RESULT kill -9 of a worker inside a query blocked on a lock: backend gone ${gone_ms} ms after, token freed, max pool connections $max of 2"
np_finish
