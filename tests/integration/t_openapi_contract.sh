#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_openapi_contract.sh - real answers of every route, success and error, match doc/openapi.yaml:
# each status is documented for its operation, each body validates against the documented schema
# with every object closed (a member the document does not name fails), documented headers
# (Retry-After) are present. Through nginx, against a real PostgreSQL. The validator is
# tools/openapi/contract.js (ajv, pinned in tools/openapi/package.json); operations marked
# x-neonpool-pending in the document are reported as skipped by it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx cgi-fcgi
command -v node >/dev/null 2>&1 || np_skip "node is not installed (scripts/install-deps.sh installs nodejs and npm)"
"$np_top/tools/openapi/lint.sh" --install >"$NP_TMP/out/npm.out" 2>&1 ||
	np_fail "tools/openapi/lint.sh --install failed: $(tail -n 5 "$NP_TMP/out/npm.out")"
tools=$np_top/tools/openapi
node "$tools/lint.js" --bundle "$NP_TMP/openapi.json" "$np_top/doc/openapi.yaml" \
	>"$NP_TMP/out/bundle.out" 2>&1 || np_fail "the dereferenced bundle failed: $(cat "$NP_TMP/out/bundle.out")"

np_db_start workers=2 budget=2 min_warm=1

CASES=$NP_TMP/cases
: >"$CASES"
n=0
# rec EXPECTED METHOD TEMPLATE PATH [curl args...]: one request through nginx; its status must be
# EXPECTED (the answer the case is about), and the answer goes to the contract check.
rec() {
	local want=$1 method=$2 tmpl=$3 path=$4
	shift 4
	np_curl -X "$method" "$path" "$@"
	n=$((n + 1))
	cp "$NP_TMP/http.body" "$NP_TMP/out/body.$n"
	cp "$NP_TMP/http.headers" "$NP_TMP/out/headers.$n"
	printf '%s\t%s\t%s\t%s\t%s\n' "$method" "$tmpl" "$NP_STATUS" "$NP_TMP/out/body.$n" "$NP_TMP/out/headers.$n" >>"$CASES"
	np_expect_eq "$method $path: $want" "$want" "$NP_STATUS"
}
# rec_fcgi EXPECTED METHOD TEMPLATE PATH BODY_FILE [NAME=VALUE...]: the same straight to the
# daemon (np_fcgi), for what nginx would answer itself (a body over its client_max_body_size).
rec_fcgi() {
	local want=$1 method=$2 tmpl=$3 path=$4
	shift 4
	np_fcgi "$method" "$path" "$@" >/dev/null
	n=$((n + 1))
	cp "$NP_TMP/fcgi.body" "$NP_TMP/out/body.$n"
	cp "$NP_TMP/fcgi.headers" "$NP_TMP/out/headers.$n"
	printf '%s\t%s\t%s\t%s\t%s\n' "$method" "$tmpl" "$NP_STATUS" "$NP_TMP/out/body.$n" "$NP_TMP/out/headers.$n" >>"$CASES"
	np_expect_eq "$method $path (FastCGI): $want" "$want" "$NP_STATUS"
}
# pending TEMPLATE METHOD: the document marks the operation as not in the router yet.
pending() {
	"$NP_PYTHON" -c 'import json,sys
op = json.load(open(sys.argv[1]))["paths"][sys.argv[2]][sys.argv[3]]
sys.exit(0 if op.get("x-neonpool-pending") else 1)' "$NP_TMP/openapi.json" "$1" "$2"
}
json=(-H 'Content-Type: application/json')

# health and meta
rec 200 GET /healthz /healthz
rec 200 GET /readyz /readyz
rec 200 GET /api/v1/version /api/v1/version

# books, passages
B=$NP_BOOK_MIN
rec 200 GET /api/v1/books "/api/v1/books?limit=3&offset=1"
rec 400 GET /api/v1/books "/api/v1/books?limit=101"
rec 200 GET "/api/v1/books/{id}" "/api/v1/books/$B"
rec 400 GET "/api/v1/books/{id}" /api/v1/books/abc
rec 404 GET "/api/v1/books/{id}" "/api/v1/books/$((NP_BOOK_MAX + 1000))"
rec 200 GET "/api/v1/passages/{id}" "/api/v1/passages/$NP_PASSAGE_MAX"
rec 400 GET "/api/v1/passages/{id}" /api/v1/passages/0
rec 404 GET "/api/v1/passages/{id}" "/api/v1/passages/$((NP_PASSAGE_MAX + 1000))"

# chapters, search
T="/api/v1/books/{id}/chapters/{n}"
if pending "$T" get; then
	np_log "$T: pending in the document, not in the router yet"
	rec 404 GET "$T" "/api/v1/books/$B/chapters/1"
else
	rec 200 GET "$T" "/api/v1/books/$B/chapters/1?limit=3"
	rec 200 GET "$T" "/api/v1/books/$B/chapters/1?limit=3&after=3"
	rec 400 GET "$T" "/api/v1/books/$B/chapters/0"
	rec 400 GET "$T" "/api/v1/books/$B/chapters/1?after=1&offset=1"
	rec 404 GET "$T" "/api/v1/books/$B/chapters/100000"
fi
word=$(np_psql_super -d neonpool -At -c "SELECT (regexp_match(body, '[[:alpha:]]{5,}'))[1] FROM passages WHERE id = $NP_PASSAGE_MIN")
if pending /api/v1/search get; then
	np_log "/api/v1/search: pending in the document, not in the router yet"
	rec 404 GET /api/v1/search "/api/v1/search?q=$word"
else
	rec 200 GET /api/v1/search "/api/v1/search?q=$word&limit=3"
	rec 200 GET /api/v1/search "/api/v1/search?q=$word&book=$B&limit=2&offset=1"
	rec 400 GET /api/v1/search "/api/v1/search?q="
	rec 400 GET /api/v1/search "/api/v1/search?q=$word&limit=51"
	rec 404 GET /api/v1/search "/api/v1/search?q=$word&book=$((NP_BOOK_MAX + 1000))"
fi

# sessions, messages, feedback
if pending /api/v1/sessions post; then
	np_log "the session routes: pending in the document, not in the router yet"
	rec 404 POST /api/v1/sessions /api/v1/sessions
else
	rec 201 POST /api/v1/sessions /api/v1/sessions
	sid=$(np_json_get "$NP_TMP/http.body" 'd["id"]')
	tok=$(np_json_get "$NP_TMP/http.body" 'd["token"]')
	rec 201 POST /api/v1/sessions /api/v1/sessions "${json[@]}" --data-binary '{}'
	other=$(np_json_get "$NP_TMP/http.body" 'd["token"]')
	rec 415 POST /api/v1/sessions /api/v1/sessions -H 'Content-Type: text/plain' --data-binary 'x'
	rec 400 POST /api/v1/sessions /api/v1/sessions "${json[@]}" --data-binary '{"x":1}'
	auth=(-H "Authorization: Bearer $tok")
	M="/api/v1/sessions/{id}/messages"
	body='{"role":"user","content":"vacuum freeze? '"'"'; DROP TABLE x; -- 😀"}'
	rec 201 POST "$M" "/api/v1/sessions/$sid/messages" "${auth[@]}" "${json[@]}" -H 'Idempotency-Key: "k-1"' --data-binary "$body"
	mid=$(np_json_get "$NP_TMP/http.body" 'd["id"]')
	rec 201 POST "$M" "/api/v1/sessions/$sid/messages" "${auth[@]}" "${json[@]}" -H 'Idempotency-Key: "k-1"' --data-binary "$body"
	rec 422 POST "$M" "/api/v1/sessions/$sid/messages" "${auth[@]}" "${json[@]}" -H 'Idempotency-Key: "k-1"' \
		--data-binary '{"role":"user","content":"another"}'
	rec 201 POST "$M" "/api/v1/sessions/$sid/messages" "${auth[@]}" "${json[@]}" --data-binary '{"role":"assistant","content":"an answer"}'
	rec 400 POST "$M" "/api/v1/sessions/$sid/messages" "${auth[@]}" "${json[@]}" --data-binary '{"role":"user"}'
	rec 400 POST "$M" "/api/v1/sessions/$sid/messages" "${auth[@]}" "${json[@]}" -H 'Idempotency-Key: ""' \
		--data-binary '{"role":"user","content":"x"}'
	rec 404 POST "$M" "/api/v1/sessions/$sid/messages" -H "Authorization: Bearer $other" "${json[@]}" \
		--data-binary '{"role":"user","content":"x"}'
	rec 415 POST "$M" "/api/v1/sessions/$sid/messages" "${auth[@]}" --data-binary '{"role":"user","content":"x"}' \
		-H 'Content-Type:'
	head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$NP_TMP/big.json"
	rec_fcgi 413 POST "$M" "/api/v1/sessions/$sid/messages" "$NP_TMP/big.json" HTTP_AUTHORIZATION="Bearer $tok"
	rec 200 GET "$M" "/api/v1/sessions/$sid/messages?limit=1" "${auth[@]}"
	rec 200 GET "$M" "/api/v1/sessions/$sid/messages" "${auth[@]}"
	rec 400 GET "$M" "/api/v1/sessions/$sid/messages?limit=0" "${auth[@]}"
	rec 404 GET "$M" "/api/v1/sessions/$sid/messages"
	F="/api/v1/messages/{id}/feedback"
	rec 201 POST "$F" "/api/v1/messages/$mid/feedback" "${auth[@]}" "${json[@]}" --data-binary '{"rating":1}'
	rec 200 POST "$F" "/api/v1/messages/$mid/feedback" "${auth[@]}" "${json[@]}" --data-binary '{"rating":-1,"comment":"😀"}'
	rec 400 POST "$F" "/api/v1/messages/$mid/feedback" "${auth[@]}" "${json[@]}" --data-binary '{"rating":0}'
	rec 404 POST "$F" "/api/v1/messages/$mid/feedback" -H "Authorization: Bearer $other" "${json[@]}" --data-binary '{"rating":1}'
	# the ask turn (issue 9): retrieval mode, the JSON form; its cancel; the answer in the history
	A="/api/v1/sessions/{id}/ask"
	rec 200 POST "$A" "/api/v1/sessions/$sid/ask" "${auth[@]}" "${json[@]}" --data-binary '{"question":"What does vacuum do?"}'
	aid=$(np_json_get "$NP_TMP/http.body" 'd["message_id"]')
	rec 200 POST "$A" "/api/v1/sessions/$sid/ask" "${auth[@]}" "${json[@]}" -H 'Idempotency-Key: "a-1"' --data-binary '{"question":"the and of"}'
	rec 422 POST "$A" "/api/v1/sessions/$sid/ask" "${auth[@]}" "${json[@]}" -H 'Idempotency-Key: "a-1"' --data-binary '{"question":"other"}'
	rec 400 POST "$A" "/api/v1/sessions/$sid/ask" "${auth[@]}" "${json[@]}" --data-binary '{"question":""}'
	rec 404 POST "$A" "/api/v1/sessions/$sid/ask" -H "Authorization: Bearer $other" "${json[@]}" --data-binary '{"question":"x"}'
	rec 415 POST "$A" "/api/v1/sessions/$sid/ask" "${auth[@]}" --data-binary '{"question":"x"}' -H 'Content-Type: text/plain'
	C="/api/v1/sessions/{id}/ask/{message_id}/cancel"
	rec 200 POST "$C" "/api/v1/sessions/$sid/ask/$aid/cancel" "${auth[@]}"
	rec 404 POST "$C" "/api/v1/sessions/$sid/ask/$aid/cancel" -H "Authorization: Bearer $other"
	rec 404 POST "$C" "/api/v1/sessions/$sid/ask/$mid/cancel" "${auth[@]}"
	rec 400 POST "$C" "/api/v1/sessions/$sid/ask/x/cancel" "${auth[@]}"
	rec 200 GET "$M" "/api/v1/sessions/$sid/messages?limit=2" "${auth[@]}"
	D="/api/v1/sessions/{id}"
	rec 404 DELETE "$D" "/api/v1/sessions/$sid" -H "Authorization: Bearer $other"
	rec 204 DELETE "$D" "/api/v1/sessions/$sid" "${auth[@]}"
	rec 404 DELETE "$D" "/api/v1/sessions/$sid" "${auth[@]}"
	rec 400 DELETE "$D" /api/v1/sessions/x "${auth[@]}"
fi

# the database gone: 503 with Retry-After on a database route and on /readyz
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" stop -m fast >"$NP_TMP/out/pgstop.out" 2>&1 || np_fail "pg_ctl stop failed"
rec 503 GET /api/v1/books /api/v1/books
deadline=$((SECONDS + 10 * NP_TIMEOUT_SCALE))
while np_curl /readyz && [ "$NP_STATUS" = 200 ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
rec 503 GET /readyz /readyz

node "$tools/contract.js" "$NP_TMP/openapi.json" "$CASES" >"$NP_TMP/out/contract.out" 2>&1
rc=$?
sed 's/^/  contract: /' "$NP_TMP/out/contract.out"
np_expect "every answer matches doc/openapi.yaml (tools/openapi/contract.js)" test "$rc" -eq 0
echo "RESULT $(tail -n 1 "$NP_TMP/out/contract.out")"
np_finish
