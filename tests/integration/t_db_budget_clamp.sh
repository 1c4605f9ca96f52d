#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_budget_clamp.sh - a budget larger than max_connections - superuser_reserved_connections is reported, and with budget_clamp = true lowered to fit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"

np_db_prepare
avail=$(np_psql_super -d postgres -At -c "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int")
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" workers=2 budget=200 min_warm=1
for _ in $(seq 1 50); do grep -q 'does not fit the server' "$NP_DAEMON_LOG" && break; sleep 0.1; done
np_expect "warned: budget 200 does not fit ($avail available)" grep -q "budget 200 of endpoint 0 does not fit the server.*leaves $avail" "$NP_DAEMON_LOG"
np_expect_eq "without budget_clamp the limit stays 200" 200 "$(np_status_json 'd["endpoints"]["primary"]["limit"]')"
np_expect_eq "status shows the server's max_connections" 100 "$(np_status_json 'd["endpoints"]["primary"]["server_max_connections"]')"
np_stop_daemon TERM || np_fail "daemon did not stop"

np_start_daemon --name clamp database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" listen="$NP_TMP/clamp.sock" pid_file="$NP_TMP/clamp.pid" \
	workers=2 budget=200 min_warm=1 budget_clamp=true
for _ in $(seq 1 50); do
	[ "$(np_status_json 'd["endpoints"]["primary"]["limit"]')" = "$avail" ] && break
	sleep 0.1
done
np_expect_eq "with budget_clamp the limit is $avail" "$avail" "$(np_status_json 'd["endpoints"]["primary"]["limit"]')"
np_expect "the log says it lowers it" grep -q "budget_clamp lowers it" "$NP_DAEMON_LOG"
np_finish
