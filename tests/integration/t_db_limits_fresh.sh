#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_limits_fresh.sh - the server's limits in `neonpoolctl status` come from the most recent
# connect (issue 6, defect 10): after PostgreSQL restarts with max_connections = 4 the status
# shows 4, not the 100 some older slot still remembers; after a database_url reload the old
# server's limits are gone until the new server has been reached.
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require nginx curl

np_db_start workers=4 budget=2 min_warm=2 breaker_probe_ms=200
np_expect_eq "status: max_connections 100 at start" 100 "$(np_status_json 'd["endpoints"]["primary"]["server_max_connections"]')"
# every worker connects once, so that several slots remember 100
for i in $(seq 1 40); do curl -s -o /dev/null "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN"; done

np_psql_super -c "ALTER SYSTEM SET max_connections = 4" >"$NP_TMP/out/alter.out" 2>&1 || np_fail "ALTER SYSTEM: $(cat "$NP_TMP/out/alter.out")"
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" -l "$NP_TMP/pg/postgresql.log" -w -m fast restart \
	>"$NP_TMP/out/restart.out" 2>&1 || np_fail "pg_ctl restart: $(cat "$NP_TMP/out/restart.out")"
np_expect_eq "the server now has max_connections 4" 4 "$(np_psql_super -At -c 'SHOW max_connections')"
np_wait_read_ok $((10000 * NP_TIMEOUT_SCALE)) || np_not_ok "no read answered 200 after the restart"
got=""
for _ in $(seq 1 $((30 * NP_TIMEOUT_SCALE))); do
	got=$(np_status_json 'd["endpoints"]["primary"]["server_max_connections"]')
	[ "$got" = 4 ] && break
	sleep 0.1
done
np_expect_eq "status: max_connections after the restart" 4 "$got"
np_expect_eq "status: superuser_reserved_connections" 3 "$(np_status_json 'd["endpoints"]["primary"]["server_reserved_connections"]')"
np_expect "the budget is clamped to the new server (limit $(np_status_json 'd["endpoints"]["primary"]["limit"]'))" \
	grep -q "does not fit the server: max_connections 4" "$NP_DAEMON_LOG"
echo "RESULT after a restart with max_connections = 4 the status shows $got"

# a reload to another server (nothing listens there): the old server's limits are not shown
port=$(np_free_port)
sed -i "s|^database_url = .*|database_url = \"postgresql://neonpool@127.0.0.1:$port/neonpool?sslmode=verify-full\&sslrootcert=$NP_PG_CA\";|" "$NP_DAEMON_CONF"
grep -q "127.0.0.1:$port/" "$NP_DAEMON_CONF" || np_fail "could not rewrite database_url"
kill -HUP "$NP_DAEMON_PID"
got=""
for _ in $(seq 1 $((50 * NP_TIMEOUT_SCALE))); do
	got=$(np_status_json 'd["endpoints"]["primary"]["server_max_connections"]')
	[ "$got" = 0 ] && break
	sleep 0.1
done
np_expect_eq "status after a database_url reload to an unreachable server: limits unknown (0)" 0 "$got"
np_finish
