#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_breaker_full_server.sh - an open breaker closes when the server answers but is full: a probe
# refused with "too many connections" proves the server is up (busy, not down), so reads get 503
# db_busy, not db_unavailable, and 200 again once a slot is free. Before, a probe could never get
# through while the slots were taken (in CI by the pool's own connection, after a restart with
# max_connections = 4) and the breaker stayed open until a reload (t_db_limits_fresh failed so).
# Also: connections lost between requests do not count as failures towards opening it.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require nginx

np_db_start workers=2 budget=2 min_warm=0 breaker_failures=3 breaker_probe_ms=200 \
	reconnect_backoff_min_ms=10 reconnect_backoff_max_ms=50
db=$NP_PG_DB
pool_backends() {
	np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%'$(np_pg_scope)"
}
terminate_pool() {
	np_psql_super -d postgres -At -c "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%'$(np_pg_scope)) t" >/dev/null
}
breaker() { np_status_json 'd["endpoints"]["primary"]["breaker"]'; }
read_code() {
	np_fcgi GET "/api/v1/passages/$NP_PASSAGE_MIN" >/dev/null
	if [ "$NP_STATUS" = 200 ]; then echo 200; else
		echo "$NP_STATUS $(np_json_get "$NP_TMP/fcgi.body" 'd["error"]["code"]' 2>/dev/null)"
	fi
}

# 1. connections lost between requests are not failures: their backends terminated five times
# while reads go on, the breaker stays closed
for i in 1 2 3 4 5; do
	for _ in 1 2 3; do np_fcgi GET "/api/v1/passages/$NP_PASSAGE_MIN" >/dev/null; done
	terminate_pool
	np_poll 0 $((50 * NP_TIMEOUT_SCALE)) pool_backends >/dev/null
done
np_fcgi GET "/api/v1/passages/$NP_PASSAGE_MIN" >/dev/null
np_expect_eq "a read after five terminations of the pool's backends" 200 "$NP_STATUS"
np_expect_eq "the breaker stayed closed" closed "$(breaker)"

# 2. an outsider takes a connection of its own first (it keeps it through what follows), then the
# database refuses new connections (down, not busy) and the breaker opens
(until PGPASSWORD=$NP_TEST_PASSWORD PGSSLROOTCERT=$NP_PG_CA PGAPPNAME=outsider "$PGBIN/psql" -X -q \
	"$(np_db_url)" -c "SELECT pg_sleep(600)" >/dev/null 2>&1; do sleep 0.05; done) &
NP_FRONT_PIDS+=("$!")
outsider() { np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'outsider'$(np_pg_scope) AND state = 'active'"; }
np_poll 1 $((100 * NP_TIMEOUT_SCALE)) outsider || np_fail "the outsider did not connect"
np_psql_super -c "ALTER DATABASE \"$db\" ALLOW_CONNECTIONS false" >/dev/null || np_fail "ALTER DATABASE"
# room for one connection once it allows them again: the outsider's (a limit counts existing ones)
np_psql_super -c "ALTER DATABASE \"$db\" CONNECTION LIMIT 1" >/dev/null || np_fail "ALTER DATABASE"
terminate_pool
np_poll 0 $((50 * NP_TIMEOUT_SCALE)) pool_backends >/dev/null || np_fail "pool backends left: $NP_POLLED"
for _ in $(seq 1 $((30 * NP_TIMEOUT_SCALE))); do
	[ "$(read_code)" = "503 db_unavailable" ] && [ "$(breaker)" = open ] && break
	sleep 0.1
done
np_expect_eq "the breaker opened while the database refused connections" open "$(breaker)"

# 3. the database takes connections again, but its one is the outsider's: every probe is refused
# with "too many connections for database"
np_psql_super -c "ALTER DATABASE \"$db\" ALLOW_CONNECTIONS true" >/dev/null || np_fail "ALTER DATABASE"
code=""
for _ in $(seq 1 $((50 * NP_TIMEOUT_SCALE))); do
	code=$(read_code)
	[ "$code" = "503 db_busy" ] && break
	sleep 0.1
done
np_expect_eq "a full server is busy, not down: reads get 503 db_busy" "503 db_busy" "$code"
np_expect_eq "the breaker closed on a probe that the server answered" closed "$(breaker)"
np_expect "the log says why it closed" grep -q "server full (too many clients), so it is up; circuit closed" "$NP_DAEMON_LOG"

# 4. the outsider leaves: reads are served again
kill "${NP_FRONT_PIDS[-1]}" 2>/dev/null # its loop first, so that it does not connect again
np_psql_super -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'outsider'$(np_pg_scope)" >/dev/null
np_poll 200 $((100 * NP_TIMEOUT_SCALE)) read_code
np_expect_eq "reads answer 200 once the slot is free" 200 "$NP_POLLED"
np_psql_super -c "ALTER DATABASE \"$db\" CONNECTION LIMIT -1" >/dev/null
echo "RESULT five pool terminations: breaker closed; refused connections: open; full server: closed, 503 db_busy; freed: 200"
np_finish
