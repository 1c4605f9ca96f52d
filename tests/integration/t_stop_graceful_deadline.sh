#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_stop_graceful_deadline.sh - SIGQUIT with a worker stuck in a long request: after graceful_timeout_ms the stop becomes SIGTERM, then SIGKILL after shutdown_timeout_ms; the master and every child are gone in time.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require cgi-fcgi

NP_SEED_BOOKS=5
np_db_prepare
gt=1000 st=1000
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" workers=2 budget=1 min_warm=1 query_timeout_ms=60000 \
	graceful_timeout_ms=$gt shutdown_timeout_ms=$st
# wait for the holder
for _ in $(seq 1 50); do
	[ "$(np_status_json 'd["endpoints"]["primary"]["in_use"]')" = 1 ] && break
	sleep 0.1
done
# A foreign session locks the books for 30 s: the read below waits on it (query_timeout_ms 60 s).
np_psql_super -d neonpool -c "BEGIN; LOCK TABLE books IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30); COMMIT;" >/dev/null 2>&1 &
lock_pid=$!
np_wait_lock books
np_fcgi GET "/api/v1/books/$NP_BOOK_MIN" >/dev/null &
req_pid=$!
np_poll 1 100 np_status_json 'len([w for w in d["workers"] if w["state"] == "busy"])'
np_expect_eq "a worker is busy in the blocked read" 1 "$NP_POLLED"
limit=$(((gt + st + 1000) * NP_TIMEOUT_SCALE))
if np_stop_daemon QUIT "$limit"; then
	np_ok "SIGQUIT with a stuck request: master and children gone in $NP_STOP_MS ms (limit $limit)"
	echo "RESULT graceful_stuck_stop_ms=$NP_STOP_MS"
	np_expect "not before graceful_timeout_ms ($NP_STOP_MS ms >= $gt)" test "$NP_STOP_MS" -ge "$gt"
else
	np_not_ok "SIGQUIT with a stuck request: not stopped within $limit ms: $(np_children "$NP_DAEMON_PID" | tr '\n' ' ')"
fi
np_expect "the log says the graceful stop became a fast one" grep -q 'graceful_timeout reached' "$NP_DAEMON_LOG"
np_expect_eq "no process of the daemon is left" "" "$(pgrep -g "$NP_DAEMON_PID" | tr '\n' ' ')"
np_psql_super -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'neonpool' AND pid <> pg_backend_pid()" >/dev/null
wait "$lock_pid" "$req_pid" 2>/dev/null
np_finish
