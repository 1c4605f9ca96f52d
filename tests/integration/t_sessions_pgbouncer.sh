#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_sessions_pgbouncer.sh - the chat-session API suite (writes included) through Debian's PgBouncer in transaction mode with pooler_mode = true.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require nginx curl cgi-fcgi pgbouncer

np_db_prepare
np_start_pgbouncer neonpool 4
np_start_daemon database_url="postgresql://neonpool@127.0.0.1:$NP_PGB_PORT/neonpool?sslmode=disable" \
	database_password_file="$NP_TMP/db.password" status_file="$NP_TMP/status" \
	control_listen="$NP_TMP/control.sock" pooler_mode=true workers=4 budget=4 min_warm=2 query_timeout_ms=1500
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
np_wait_db_ready

NP_SESS_PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$NP_PG_SOCKDIR" -p "$NP_PG_PORT" -U postgres -d neonpool)
np_is_root && NP_SESS_PSQL=(runuser -u postgres -- "${NP_SESS_PSQL[@]}")
(cd "$NP_TMP/pg" && "$NP_PYTHON" "$np_top/tests/integration/sessions_api.py" "$NP_HTTP_PORT" "${NP_SESS_PSQL[@]}") \
	>"$NP_TMP/out/api.txt" 2>&1
rc=$?
cat "$NP_TMP/out/api.txt"
np_expect_eq "the API suite through PgBouncer (transaction mode) has no failure" 0 "$rc"
np_expect "no prepared-statement error in the log" bash -c "! grep -q 'prepared statement' '$NP_DAEMON_LOG'"
# a write blocked past query_timeout_ms: the server cancels it (SET LOCAL statement_timeout in the
# pipeline), it rolled back (a known outcome: 504, not db_outcome_unknown), and the retry with the
# same key writes it once
base="http://127.0.0.1:$NP_HTTP_PORT/api/v1"
sess=$(curl -s -X POST "$base/sessions")
sid=$(echo "$sess" | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
tok=$(echo "$sess" | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
post() {
	curl -s -o "$NP_TMP/out/post.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		-H "Authorization: Bearer $tok" -H 'Idempotency-Key: "slow-1"' --data '{"role":"user","content":"blocked"}' \
		"$base/sessions/$sid/messages"
}
# the lock is held until the write has timed out, then ended (a fixed 3 s could end first on a
# loaded machine, and the write would then succeed)
np_psql_super -d neonpool -c "BEGIN; LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;" >/dev/null 2>&1 &
lock_pid=$!
np_wait_lock messages
code=$(post)
np_expect_eq "a write blocked by a lock: 504 db_timeout" "504 db_timeout" \
	"$code $(np_json_get "$NP_TMP/out/post.body" 'd["error"]["code"]')"
np_psql_super -d postgres -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$lock_pid"
np_expect_eq "it rolled back: no row" 0 "$(np_psql_super -d neonpool -At -c "SELECT count(*) FROM messages WHERE content = 'blocked'")"
code=$(post)
np_expect_eq "the retry with the same key: 201" 201 "$code"
code=$(post)
np_expect_eq "and again: replayed (201)" 201 "$code"
np_expect_eq "one row" 1 "$(np_psql_super -d neonpool -At -c "SELECT count(*) FROM messages WHERE content = 'blocked'")"

np_expect "no query failed" bash -c "! grep -Eq 'query failed|outcome unknown' '$NP_DAEMON_LOG'"
# nothing left open on the server by a write (transaction pooling: no idle in transaction)
np_expect_eq "no server session idle in transaction" 0 \
	"$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'")"
echo "RESULT sessions API through pgbouncer transaction mode: $(grep -c '^ok - ' "$NP_TMP/out/api.txt") checks passed, $(grep -c '^not ok - ' "$NP_TMP/out/api.txt") failed"
np_finish
