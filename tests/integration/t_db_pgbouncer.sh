#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_pgbouncer.sh - the read suite through Debian's PgBouncer in transaction mode with pooler_mode = true (unnamed statements, SET LOCAL statement_timeout in a pipeline).
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx curl pgbouncer
# a paced background load (dblib.sh np_wrk_script): requests in flight, not both cores taken
: "${NP_WRK_DELAY_MS:=100}"; export NP_WRK_DELAY_MS

np_db_prepare
np_start_pgbouncer neonpool 4
np_start_daemon database_url="postgresql://neonpool@127.0.0.1:$NP_PGB_PORT/neonpool?sslmode=disable" \
	database_password_file="$NP_TMP/db.password" status_file="$NP_TMP/status" \
	control_listen="$NP_TMP/control.sock" pooler_mode=true workers=8 budget=8 min_warm=2 query_timeout_ms=700
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
np_wrk_script

np_curl /api/v1/books/$NP_BOOK_MIN
np_expect_eq "a book through PgBouncer: 200" 200 "$NP_STATUS"
np_expect_eq "with its 10 chapters" 10 "$(np_json_get "$NP_TMP/http.body" 'len(d["chapters"])')"
np_curl "/api/v1/books?limit=3"
np_expect_eq "list through PgBouncer: 3 books" "200 3" "$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'len(d["books"])')"
np_curl /api/v1/passages/$NP_PASSAGE_MIN
np_expect_eq "a passage through PgBouncer: 200" 200 "$NP_STATUS"
np_curl /api/v1/books/$((NP_BOOK_MAX + 5))
np_expect_eq "a missing book: 404" 404 "$NP_STATUS"
np_curl /readyz
np_expect_eq "/readyz" 200 "$NP_STATUS"
# issue 7 (h7b): a chapter page and a search through PgBouncer
np_curl "/api/v1/books/$NP_BOOK_MIN/chapters/2?limit=4&after=2"
np_expect_eq "a chapter page through PgBouncer: positions 3..6" "200 3 4 5 6" \
	"$NP_STATUS $(np_json_get "$NP_TMP/http.body" '" ".join(str(p["position"]) for p in d["passages"])')"
word=$(np_psql_super -d neonpool -At -c "SELECT word FROM ts_stat('SELECT tsv FROM passages') ORDER BY ndoc DESC LIMIT 1")
np_curl "/api/v1/search?q=$word&limit=5"
np_expect_eq "a search through PgBouncer: 5 hits with snippets" "200 5 True" \
	"$NP_STATUS $(np_json_get "$NP_TMP/http.body" '"%d %s" % (len(d["results"]), all("<mark>" in h["snippet"] for h in d["results"]))')"

# statement_timeout arrives by SET LOCAL inside the pipeline: a locked table makes the read
# wait past query_timeout_ms = 700 and the server cancels it (504 db_timeout, not a hang)
np_psql_super -d neonpool -c "BEGIN; LOCK TABLE books IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;" >/dev/null 2>&1 &
lock_pid=$!
np_wait_lock books
np_curl /api/v1/books/$NP_BOOK_MIN
np_expect_eq "a read blocked by a lock: 504 db_timeout" "504 db_timeout" \
	"$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd["error"]["code"]')"
np_expect "the server cancelled it (statement_timeout, 57014)" grep -q 'sqlstate=57014' "$NP_DAEMON_LOG"
wait "$lock_pid"
# the session did not keep the timeout (transaction mode: no session SET leaks to other clients)
leak=$(PGPASSWORD=$NP_TEST_PASSWORD "$PGBIN/psql" -X -At "host=127.0.0.1 port=$NP_PGB_PORT dbname=neonpool user=neonpool sslmode=disable" -c "SHOW statement_timeout")
np_expect_eq "no statement_timeout leaked to other clients of the pooler" 0 "$leak"

wrk -t2 -c100 -d"${NP_WRK_SECONDS:-10}s" --latency -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.out" 2>&1
cat "$NP_TMP/out/wrk.out"
np_expect "no non-2xx under load" bash -c "! grep -q 'Non-2xx' '$NP_TMP/out/wrk.out'"
np_expect "no socket errors" bash -c "! grep -q 'Socket errors' '$NP_TMP/out/wrk.out'"
np_expect "no prepared-statement error in the log" bash -c "! grep -q 'prepared statement' '$NP_DAEMON_LOG'"
echo "RESULT through pgbouncer 1.18 transaction mode (pooler_mode): $(sed -n 's/^Requests\/sec: *//p' "$NP_TMP/out/wrk.out") req/s, p99 $(awk '$1 == "99%" {print $2}' "$NP_TMP/out/wrk.out")"
np_finish
