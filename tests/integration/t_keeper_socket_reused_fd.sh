#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_keeper_socket_reused_fd.sh - libpq drops a socket and opens the next one under the same fd number (a two-host conninfo whose first host refuses): the master must keep the live socket, so a kill -9 of the worker keeps its token counted while the backend lives and frees it once the backend exited.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_prepare
closed=$(np_free_port) || np_fail "no free port"
# first host: a port nothing listens on (connection refused), second: the test PostgreSQL
url="host=127.0.0.1,127.0.0.1 port=$closed,$NP_PG_PORT dbname=neonpool user=neonpool sslmode=verify-full sslrootcert=$NP_PG_CA"
# client_check_ms = 0: the backend of a dead worker lives as long as its statement waits
np_start_daemon database_url="$url" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" log_level=debug \
	acquire_timeout_ms=$((500 * NP_TIMEOUT_SCALE)) workers=3 budget=2 min_warm=1 \
	query_timeout_ms=20000 client_check_ms=0
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
np_wait_db_ready
np_curl /api/v1/books/$NP_BOOK_MIN
np_expect_eq "reads work through the two-host conninfo" 200 "$NP_STATUS"

hold_s=$(np_scaled 60)   # ended below by pg_terminate_backend: a fixed 4 s could run out before the samples
np_psql_super -d neonpool -c "BEGIN; LOCK TABLE books IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep($hold_s); COMMIT;" >/dev/null 2>&1 &
lock_pid=$!
np_wait_lock books
curl -s -o /dev/null --max-time 20 "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN" &
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
# For 1.5 s the backend lives (it waits on the lock): its token must stay counted, orphaned.
bad=0 samples=0
while :; do
	conns=$(np_pool_conns)
	alive=$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE pid = ${backend:-0}")
	read -r in_use orphaned < <(np_status_json '"%d %d" % (d["endpoints"]["primary"]["in_use"], d["endpoints"]["primary"]["orphaned"])')
	np_now_ms
	[ "$alive" = 1 ] || break
	samples=$((samples + 1))
	if [ "${orphaned:-0}" -lt 1 ] || [ "${in_use:-0}" -lt "$conns" ]; then
		bad=$((bad + 1))
		[ "$bad" = 1 ] && np_log "sample $((NP_NOW - t0)) ms after the kill: in_use=$in_use orphaned=$orphaned server connections=$conns"
	fi
	[ $((NP_NOW - t0)) -gt 1500 ] && break
	sleep 0.05
done
np_expect "the backend of the dead worker lived on meanwhile" test "$alive" = 1
np_expect_eq "while it lived its token stayed counted and orphaned ($samples samples)" 0 "$bad"
# Let the statement end: the backend reads EOF and exits, and the token is freed.
np_psql_super -d postgres -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep($hold_s)%' AND pid <> pg_backend_pid()" >/dev/null
np_now_ms; t1=$NP_NOW
for _ in $(seq 1 100); do
	alive=$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE pid = ${backend:-0}")
	orphaned=$(np_status_json 'd["endpoints"]["primary"]["orphaned"]')
	[ "$alive" = 0 ] && [ "$orphaned" = 0 ] && break
	sleep 0.02
done
np_now_ms
np_expect "the backend exited once the lock was gone" test "$alive" = 0
np_expect_eq "its token is freed then ($((NP_NOW - t1)) ms after the lock was released)" 0 "$orphaned"
np_expect "the master freed it on the server's close" grep -q "server closed a dead worker's connection" "$NP_DAEMON_LOG"
wait "$lock_pid" "$curl_pid" 2>/dev/null
np_curl /api/v1/books/$NP_BOOK_MIN
np_expect_eq "reads work afterwards" 200 "$NP_STATUS"
echo "RESULT two-host conninfo, first host refusing: token counted while the dead worker's backend lived ($samples samples, $bad bad), freed $((NP_NOW - t1)) ms after the lock was released"
np_finish
