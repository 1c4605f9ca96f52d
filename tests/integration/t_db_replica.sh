#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_replica.sh - an optional read replica: read-only routes use its own budget; an unreachable replica falls back to the primary without failing a read.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_prepare
# The "replica" is the same server reached over its unix socket: its connections are told apart
# in pg_stat_activity by client_addr IS NULL.
replica="host=$NP_PG_SOCKDIR port=$NP_PG_PORT dbname=neonpool user=neonpool"
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" workers=4 budget=2 min_warm=1 \
	replica_url="$replica" replica_budget=1
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
np_parallel 4 $(for i in $(seq 1 40); do echo "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$((NP_BOOK_MIN + i % 10))"; done)
np_expect_eq "40 reads: all 200" 40 "$NP_PAR_OK"
rep=$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%' AND client_addr IS NULL")
np_expect "reads went to the replica (replica connections: $rep)" test "$rep" -ge 1
np_expect "the replica's budget of 1 holds ($rep)" test "$rep" -le 1
np_expect_eq "status shows the replica endpoint" 1 "$(np_status_json 'd["endpoints"]["replica"]["limit"]')"
np_stop_daemon TERM || np_fail "daemon did not stop"

# An unreachable replica: reads fall back to the primary, and its breaker opens. The acquire
# timeout is scaled as np_start_db_daemon scales it, and the reads start once the primary is up
# (/readyz 200): under ASan on a loaded CI machine the warm-up connects took 929 and 1000 ms, and a
# read queued behind them for longer than the default 500 ms got 503 db_busy (19 of 20 in one run).
np_start_daemon --name down database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status-down" listen="$NP_TMP/down.sock" pid_file="$NP_TMP/down.pid" \
	workers=4 budget=2 min_warm=1 acquire_timeout_ms=$((500 * NP_TIMEOUT_SCALE)) \
	replica_url="host=127.0.0.1 port=1 dbname=neonpool user=neonpool" replica_budget=1
np_poll 200 $((100 * NP_TIMEOUT_SCALE)) eval 'np_fcgi GET /readyz >/dev/null; echo "$NP_STATUS"' ||
	np_fail "the primary is not up: /readyz $NP_POLLED"
ok=0
for i in $(seq 1 20); do
	body=$(np_fcgi GET "/api/v1/books/$NP_BOOK_MIN")
	if [ "$NP_STATUS" = 200 ]; then ok=$((ok + 1)); else np_log "read $i: $NP_STATUS ${body:0:300}"; fi
done
np_expect_eq "20 reads with the replica down: all 200 from the primary" 20 "$ok"
np_write_conf "$NP_TMP/down.ctl.conf" "status_file=$NP_TMP/status-down"
br=$("$NEONPOOLCTL" -c "$NP_TMP/down.ctl.conf" status --json | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["endpoints"]["replica"]["breaker"])')
np_expect_eq "the replica's breaker opened" open "$br"
np_finish
