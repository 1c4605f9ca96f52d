#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_keeps_connection.sh - in the default configuration (no ask pool, retrieval mode) an ask keeps its worker's server connection: 10 asks open no new server connections (neonpool_db_connect_duration_seconds_count, and the server's own count of backends started), where each ask used to close it after its begin and after its finish (about 2 fresh connections per ask).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_start workers=1 budget=2 min_warm=1 acquire_timeout_ms=$((2000 * NP_TIMEOUT_SCALE))
np_session
ask() { # ask N: the status of one JSON ask
	curl -s -m 30 -o "$NP_TMP/out/ask$1.json" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		--data "{\"question\":\"What is a passage? ($1)\"}" "http://127.0.0.1:$NP_HTTP_PORT/api/v1/sessions/$sid/ask"
}
connects() {
	np_curl /metrics
	awk '$1 == "neonpool_db_connect_duration_seconds_count" { print $2 + 0 }' "$NP_TMP/http.body"
}
backends() { np_psql_super -d neonpool -At -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'neonpool' AND backend_start > '$1'"; }
np_expect_eq "a first ask: 200" 200 "$(ask 0)"
sleep 0.5 # a spare the first ask's connect may have started
c0=$(connects)
t0=$(np_psql_super -d neonpool -At -c "SELECT now()")
ok=0
for i in $(seq 1 10); do [ "$(ask "$i")" = 200 ] && ok=$((ok + 1)); done
sleep 0.5
c1=$(connects)
np_log "10 asks: $((c1 - c0)) server connections opened, $(backends "$t0") started since"
np_expect_eq "10 asks answered 200" 10 "$ok"
np_expect_eq "10 asks opened no server connection (the daemon's count)" 0 $((c1 - c0))
np_expect_eq "the server started no backend for them" 0 "$(backends "$t0")"
np_finish
