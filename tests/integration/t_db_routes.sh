#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_routes.sh - the textbook read routes against a real PostgreSQL, through nginx and directly; bad input gets 4xx JSON.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx cgi-fcgi

np_db_start workers=4 budget=2 min_warm=1

np_curl /api/v1/books/$NP_BOOK_MIN
np_expect_eq "GET a book: 200" 200 "$NP_STATUS"
np_expect_eq "the book's id" "$NP_BOOK_MIN" "$(np_json_get "$NP_TMP/http.body" 'd["id"]')"
np_expect_eq "its 10 chapters, in order" "10 True" \
	"$(np_json_get "$NP_TMP/http.body" 'len(d["chapters"]), [c["position"] for c in d["chapters"]] == list(range(1, 11))' | tr -d '(),')"
np_expect_eq "Content-Type" "application/json" "$(np_http_header Content-Type)"

np_curl "/api/v1/books?limit=5&offset=2"
np_expect_eq "list books: 200" 200 "$NP_STATUS"
np_expect_eq "list books: 5 rows from the third" "5 $((NP_BOOK_MIN + 2))" \
	"$(np_json_get "$NP_TMP/http.body" '"%d %d" % (len(d["books"]), d["books"][0]["id"])')"

np_curl /api/v1/passages/$NP_PASSAGE_MAX
np_expect_eq "GET a passage: 200" 200 "$NP_STATUS"
np_expect "the passage has a body" test -n "$(np_json_get "$NP_TMP/http.body" 'd["body"]')"

for bad in "/api/v1/books/0" "/api/v1/books/-1" "/api/v1/books/abc" "/api/v1/books/1e3" \
	"/api/v1/books/99999999999999999999" "/api/v1/books/007" "/api/v1/passages/x"; do
	np_curl "$bad"
	np_expect_eq "GET $bad: 400 invalid_id" "400 invalid_id" \
		"$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd["error"]["code"]')"
done
for bad in "limit=0" "limit=101" "limit=x" "offset=-1" "limit=%zz"; do
	np_curl "/api/v1/books?$bad"
	np_expect_eq "list books ?$bad: 400 invalid_parameter" "400 invalid_parameter" \
		"$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd["error"]["code"]')"
done
np_curl /api/v1/books/$((NP_BOOK_MAX + 1000))
np_expect_eq "a missing book: 404 not_found" "404 not_found" \
	"$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd["error"]["code"]')"
np_curl -X POST /api/v1/books/1
np_expect_eq "POST on a read route: 405" 405 "$NP_STATUS"
np_expect_eq "Allow: GET, HEAD" "GET, HEAD" "$(np_http_header Allow)"

np_curl /readyz
np_expect_eq "/readyz through nginx (control socket): 200 up" "200 up" \
	"$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd["status"]')"
np_fcgi -a "$NP_TMP/control.sock" GET /healthz >/dev/null
np_expect_eq "/healthz on the control socket" 200 "$NP_STATUS"

# Who holds what: application_name names the pool and the worker.
names=$(np_psql_super -d postgres -At -c "SELECT string_agg(DISTINCT application_name, ',') FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%'$(np_pg_scope)")
np_expect "pg_stat_activity shows neonpool/wN ($names)" bash -c "[[ '$names' =~ neonpool/w[0-9]+ ]]"
np_expect "the pool holds at most its budget of 2" test "$(np_pool_conns)" -le 2
np_expect_eq "status: budget limit 2" 2 "$(np_status_json 'd["endpoints"]["primary"]["limit"]')"
np_expect_eq "status: in_use equals the server's count" "$(np_pool_conns)" \
	"$(np_status_json 'd["endpoints"]["primary"]["in_use"]')"
np_expect_eq "status: health up" up "$(np_status_json 'd["endpoints"]["primary"]["health"]')"
"$NEONPOOLCTL" -c "$NP_CTL_CONF" status >"$NP_TMP/out/status.txt" 2>&1
np_expect "status text names the budget" grep -q "budget .*/2 in use" "$NP_TMP/out/status.txt"
np_finish
