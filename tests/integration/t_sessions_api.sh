#!/usr/bin/env bash
# t_sessions_api.sh - the chat-session routes (issue 7): tokens, messages with Idempotency-Key, feedback, erase, strict validation; SQL metacharacters and emoji verbatim; the budget stays exact.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx cgi-fcgi

np_db_start workers=4 budget=4 min_warm=2

# np_sessions_psql: the superuser's psql on the test database, as a command line for sessions_api.py
np_sessions_psql() {
	NP_SESS_PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$NP_PG_SOCKDIR" -p "$NP_PG_PORT" -U postgres -d neonpool)
	np_is_root && NP_SESS_PSQL=(runuser -u postgres -- "${NP_SESS_PSQL[@]}")
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

np_expect_eq "status: in_use equals the server's count" "$(np_pool_conns)" \
	"$(np_status_json 'd["endpoints"]["primary"]["in_use"]')"
np_expect "no write_outcome or db_error in the log" bash -c "! grep -Eq 'outcome unknown|query failed' '$NP_DAEMON_LOG'"
np_expect "the tokens were written for the log check" test -s "$NP_TMP/out/tokens"
np_expect "no session token in the daemon's, nginx's or PostgreSQL's logs" \
	bash -c "grep -rqF -f '$NP_TMP/out/tokens' '$NP_DAEMON_LOG' '$NP_TMP/nginx' '$NP_TMP/pg/postgresql.log'; [ \$? = 1 ]"
echo "RESULT sessions API: $(grep -c '^ok - ' "$NP_TMP/out/api.txt") checks passed, $(grep -c '^not ok - ' "$NP_TMP/out/api.txt") failed"
np_finish
