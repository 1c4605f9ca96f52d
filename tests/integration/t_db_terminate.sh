#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_terminate.sh - pg_terminate_backend on every pool backend every 2 s under read load (what a Neon suspend looks like): 0 non-2xx on idempotent reads.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx
# a paced background load (dblib.sh np_wrk_script): requests in flight, not both cores taken
: "${NP_WRK_DELAY_MS:=50}"; export NP_WRK_DELAY_MS

np_db_start workers=8 budget=4 min_warm=2
duration=${NP_WRK_SECONDS:-20}
wrk -t2 -c50 -d"${duration}s" -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
terminated=0
for i in $(seq 1 $((duration / 2 - 1))); do
	sleep 2
	n=$(np_psql_super -d postgres -At -c "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%'$(np_pg_scope)) t")
	terminated=$((terminated + n))
done
wait "$wrk_pid"
cat "$NP_TMP/out/wrk.out"
requests=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$NP_TMP/out/wrk.out")
np_expect "backends were terminated ($terminated)" test "$terminated" -ge $((duration / 2 - 1))
np_expect "requests served (${requests:-0})" test "${requests:-0}" -gt 1000
np_expect "no non-2xx response" bash -c "! grep -q 'Non-2xx' '$NP_TMP/out/wrk.out'"
np_expect "no socket errors" bash -c "! grep -q 'Socket errors' '$NP_TMP/out/wrk.out'"
retries=$(grep -c 'retrying once on a fresh connection' "$NP_DAEMON_LOG")
np_expect "lost connections were retried ($retries)" test "$retries" -ge 1
echo "RESULT pg_terminate_backend of all pool backends every 2 s for ${duration} s: ${requests:-0} requests, $terminated backends terminated, $retries invisible retries, nginx: $(np_access_stats "$NP_TMP/nginx/access.log")"
np_finish
