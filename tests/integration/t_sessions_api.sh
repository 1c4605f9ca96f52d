#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_sessions_api.sh - the chat-session routes (issue 7): tokens, messages with Idempotency-Key, feedback, erase, strict validation; SQL metacharacters and emoji verbatim; the budget stays exact.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx cgi-fcgi wrk

np_db_start workers=4 budget=4 min_warm=2

# np_sessions_psql: the superuser's psql on the test database, as a command line for sessions_api.py
np_sessions_psql() {
	NP_SESS_PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$NP_PG_SOCKDIR" -p "$NP_PG_PORT" -U postgres -d neonpool)
	NP_SESS_PSQL=("${NP_AS_PG[@]}" "${NP_SESS_PSQL[@]}")
	return 0
}
np_sessions_psql
(cd "$NP_TMP/pg" && NP_TOKENS_FILE="$NP_TMP/out/tokens" "$NP_PYTHON" "$np_top/tests/integration/sessions_api.py" "$NP_HTTP_PORT" "${NP_SESS_PSQL[@]}") \
	>"$NP_TMP/out/api.txt" 2>&1
rc=$?
cat "$NP_TMP/out/api.txt"
np_expect_eq "the API suite (sessions_api.py) has no failure" 0 "$rc"

# straight to the FastCGI socket: a 2 MiB body is our own 413 JSON (nginx stops it first in front)
head -c $((2 << 20)) /dev/zero | tr '\0' 'x' >"$NP_TMP/big.json"
np_fcgi POST /api/v1/sessions/1/messages "$NP_TMP/big.json" >/dev/null
np_expect_eq "a 2 MiB body over FastCGI: 413 payload_too_large" "413 payload_too_large" \
	"$NP_STATUS $(np_json_get "$NP_TMP/fcgi.body" 'd["error"]["code"]')"
printf '{"role":"user","content":"x"}' >"$NP_TMP/small.json"
np_fcgi POST /api/v1/sessions/1/messages "$NP_TMP/small.json" CONTENT_TYPE= >/dev/null
np_expect_eq "no CONTENT_TYPE over FastCGI: 415" 415 "$NP_STATUS"

# message writes under a paced wrk (one session, no key; each connection waits NP_WRK_DELAY_MS
# between requests: the throughput figures are bench/'s), then reads of the pages
np_session
cat >"$NP_TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $tok"
wrk.body = '{"role":"user","content":"load test message with some text in it"}'
delay = function() return ${NP_WRK_DELAY_MS:-10} end
LUA
cat >"$NP_TMP/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $tok"
delay = function() return ${NP_WRK_DELAY_MS:-10} end
LUA
wrk -t2 -c20 -d"${NP_WRK_SECONDS:-3}s" --latency -s "$NP_TMP/post.lua" "http://127.0.0.1:$NP_HTTP_PORT/api/v1/sessions/$sid/messages" >"$NP_TMP/out/wrk-post.out" 2>&1
wrk -t2 -c20 -d"${NP_WRK_SECONDS:-3}s" --latency -s "$NP_TMP/get.lua" "http://127.0.0.1:$NP_HTTP_PORT/api/v1/sessions/$sid/messages?limit=20" >"$NP_TMP/out/wrk-get.out" 2>&1
np_expect "message writes under load: no non-2xx" bash -c "! grep -q 'Non-2xx' '$NP_TMP/out/wrk-post.out'"
np_expect "message pages under load: no non-2xx" bash -c "! grep -q 'Non-2xx' '$NP_TMP/out/wrk-get.out'"
written=$(np_psql_super -d neonpool -At -c "SELECT count(*) FROM messages WHERE session_id = $sid")
done_n=$(awk '/requests in/ {print $1}' "$NP_TMP/out/wrk-post.out")
np_expect "rows written ($written) = answered 201s ($done_n) + at most the 20 in flight when wrk stopped" \
	test "$written" -ge "$done_n" -a "$written" -le $((done_n + 20))
np_log "POST $(sed -n 's/^Requests\/sec: *//p' "$NP_TMP/out/wrk-post.out") req/s p99 $(awk '$1 == "99%" {print $2}' "$NP_TMP/out/wrk-post.out"), $written rows; GET page $(sed -n 's/^Requests\/sec: *//p' "$NP_TMP/out/wrk-get.out") req/s p99 $(awk '$1 == "99%" {print $2}' "$NP_TMP/out/wrk-get.out")"

np_expect_eq "status: in_use equals the server's count" "$(np_pool_conns)" \
	"$(np_status_json 'd["endpoints"]["primary"]["in_use"]')"
np_expect "no write_outcome or db_error in the log" bash -c "! grep -Eq 'outcome unknown|query failed' '$NP_DAEMON_LOG'"
np_expect "the tokens were written for the log check" test -s "$NP_TMP/out/tokens"
np_expect "no session token in the daemon's, nginx's or PostgreSQL's logs" \
	bash -c "grep -rqF -f '$NP_TMP/out/tokens' '$NP_DAEMON_LOG' '$NP_TMP/nginx' '$NP_TMP/pg/postgresql.log'; [ \$? = 1 ]"
echo "RESULT sessions API: $(grep -c '^ok - ' "$NP_TMP/out/api.txt") checks passed, $(grep -c '^not ok - ' "$NP_TMP/out/api.txt") failed; wrk -c20 paced ${NP_WRK_DELAY_MS:-10} ms (workers=4 budget=4): POST a message $(sed -n 's/^Requests\/sec: *//p' "$NP_TMP/out/wrk-post.out") req/s p99 $(awk '$1 == "99%" {print $2}' "$NP_TMP/out/wrk-post.out"), GET a page of 20 $(sed -n 's/^Requests\/sec: *//p' "$NP_TMP/out/wrk-get.out") req/s p99 $(awk '$1 == "99%" {print $2}' "$NP_TMP/out/wrk-get.out")"
np_finish
