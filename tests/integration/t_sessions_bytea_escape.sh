#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_sessions_bytea_escape.sh - the session routes with bytea_output = 'escape' set for the daemon's role: the stored token hash is read in binary, never parsed from bytea's text form (which the role, the database or a pooler may change), with prepared statements and with pooler_mode.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx cgi-fcgi

np_db_prepare
# scoped to this database: a cluster shared between tests keeps the default elsewhere
np_psql_super -d neonpool -c "ALTER ROLE neonpool IN DATABASE neonpool SET bytea_output = 'escape'" >/dev/null
np_expect_eq "the daemon's role now reads bytea as escape" escape \
	"$(PGPASSWORD=$NP_TEST_PASSWORD "$PGBIN/psql" -X -At "$(np_db_url)" -c 'SHOW bytea_output')"

np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" workers=3 budget=3 min_warm=1
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
np_wait_db_ready

NP_SESS_PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$NP_PG_SOCKDIR" -p "$NP_PG_PORT" -U postgres -d neonpool)
NP_SESS_PSQL=("${NP_AS_PG[@]}" "${NP_SESS_PSQL[@]}")
(cd "$NP_TMP/pg" && "$NP_PYTHON" "$np_top/tests/integration/sessions_api.py" "$NP_HTTP_PORT" "${NP_SESS_PSQL[@]}") \
	>"$NP_TMP/out/api.txt" 2>&1
rc=$?
grep '^not ok' "$NP_TMP/out/api.txt" | head -n 20
np_expect_eq "the session API suite (sessions_api.py) with bytea_output = escape has no failure" 0 "$rc"

# the same routes through the pooler path (unnamed statements in a BEGIN ... COMMIT pipeline)
np_start_daemon --name pooled database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	pooler_mode=true workers=2 budget=2 min_warm=0
np_start_nginx "unix:$NP_TMP/pooled.sock" "" nginx-pooled
base="http://127.0.0.1:$NP_HTTP_PORT/api/v1"
sess=$(curl -s -X POST "$base/sessions")
sid=$(echo "$sess" | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
tok=$(echo "$sess" | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
code=$(curl -s -o "$NP_TMP/out/post.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	-H "Authorization: Bearer $tok" --data '{"role":"user","content":"escape"}' "$base/sessions/$sid/messages")
np_expect_eq "pooler_mode: a message is posted (201)" 201 "$code"
code=$(curl -s -o "$NP_TMP/out/list.body" -w '%{http_code}' -H "Authorization: Bearer $tok" "$base/sessions/$sid/messages")
np_expect_eq "pooler_mode: the page is read (200)" 200 "$code"
np_expect_eq "pooler_mode: the page holds the message" escape "$(np_json_get "$NP_TMP/out/list.body" 'd["messages"][0]["content"]')"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(np_wrong_token "$tok")" "$base/sessions/$sid/messages")
np_expect_eq "pooler_mode: a wrong token is still 404" 404 "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer $tok" "$base/sessions/$sid")
np_expect_eq "pooler_mode: the session is erased (204)" 204 "$code"
echo "RESULT sessions with bytea_output = escape: $(grep -c '^ok - ' "$NP_TMP/out/api.txt") API checks passed, $(grep -c '^not ok - ' "$NP_TMP/out/api.txt") failed"
np_finish
