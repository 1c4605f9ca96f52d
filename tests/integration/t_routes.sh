#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_routes.sh - /healthz, /api/v1/version, 404, 405 (Allow), 413, HEAD of a GET route, X-Content-Type-Options: through nginx with curl and straight to the daemon with cgi-fcgi.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
np_require cgi-fcgi curl nginx

np_start_pg
np_start_daemon workers=2 max_body_bytes=1024
np_start_nginx "unix:$NP_TMP/neonpoold.sock"
version=$("$NEONPOOLD" -v | awk '{print $NF}')
head -c 4096 /dev/zero | tr '\0' 'x' >"$NP_TMP/big.body"    # > max_body_bytes, < nginx's 1m
printf '{"a":1}' >"$NP_TMP/small.body"

# check_answer VIA DESC EXPECTED_STATUS HEADERS_FILE BODY_FILE [ERROR_CODE]
check_answer() {
	local via=$1 desc=$2 want=$3 hdr=$4 body=$5 code=${6:-}
	np_expect_eq "$via $desc: status" "$want" "$NP_STATUS"
	np_expect_eq "$via $desc: Content-Type" "application/json" "$(np__header "$hdr" Content-Type | cut -d';' -f1)"
	np_expect "$via $desc: body is JSON" np_json_valid "$body"
	local rid
	rid=$(np__header "$hdr" X-Request-Id)
	np_expect "$via $desc: X-Request-Id present ($rid)" test -n "$rid"
	np_expect_eq "$via $desc: X-Content-Type-Options" nosniff "$(np__header "$hdr" X-Content-Type-Options)"
	if [ -n "$code" ]; then
		np_expect_eq "$via $desc: error.code" "$code" "$(np_json_get "$body" 'd["error"]["code"]')"
		np_expect "$via $desc: error.message" test -n "$(np_json_get "$body" 'd["error"]["message"]')"
	fi
}

# --- through nginx ---------------------------------------------------------------------------
H=$NP_TMP/http.headers B=$NP_TMP/http.body
np_curl /healthz
check_answer nginx "GET /healthz" 200 "$H" "$B"
np_expect_eq "nginx GET /healthz: status field" ok "$(np_json_get "$B" 'd["status"]')"
# The id the daemon echoes is nginx's $request_id for that request (from the access log).
rid=$(np_http_header X-Request-Id)
np_expect_eq "nginx: X-Request-Id is nginx's \$request_id" "$rid" \
	"$(tail -n 1 "$NP_TMP/nginx/access.log" | sed -n 's/.* rid=\([0-9a-f]*\).*/\1/p')"

np_curl '/healthz?probe=1'
np_expect_eq "nginx GET /healthz?probe=1 (query string ignored by routing)" 200 "$NP_STATUS"

np_curl /api/v1/version
check_answer nginx "GET /api/v1/version" 200 "$H" "$B"
np_expect_eq "nginx GET /api/v1/version: version" "$version" "$(np_json_get "$B" 'd["version"]')"

np_curl /no/such/route
check_answer nginx "GET /no/such/route" 404 "$H" "$B" not_found

np_curl -X POST /healthz --data-binary @"$NP_TMP/small.body" -H 'Content-Type: application/json'
check_answer nginx "POST /healthz" 405 "$H" "$B" method_not_allowed
np_expect "nginx POST /healthz: Allow lists GET ($(np_http_header Allow))" \
	grep -qiE '^Allow:.*\bGET\b' "$H"

np_expect "nginx POST /healthz: Allow lists HEAD ($(np_http_header Allow))" \
	grep -qiE '^Allow:.*\bHEAD\b' "$H"

# HEAD of a GET route: the GET's status and headers (its Content-Length), no body
np_curl /api/v1/version
get_len=$(np_http_header Content-Length)
np_curl /api/v1/version -I
np_expect_eq "nginx HEAD /api/v1/version: status" 200 "$NP_STATUS"
np_expect_eq "nginx HEAD /api/v1/version: GET's Content-Length" "$get_len" "$(np_http_header Content-Length)"
np_expect_eq "nginx HEAD /api/v1/version: Content-Type" application/json "$(np_http_header Content-Type | cut -d';' -f1)"
np_expect_eq "nginx HEAD /api/v1/version: X-Content-Type-Options" nosniff "$(np_http_header X-Content-Type-Options)"
np_curl /no/such/route -I
np_expect_eq "nginx HEAD /no/such/route: 404" 404 "$NP_STATUS"

np_curl -X POST /api/v1/version --data-binary @"$NP_TMP/big.body" -H 'Content-Type: application/json'
check_answer nginx "POST 4096-byte body (max_body_bytes 1024)" 413 "$H" "$B" payload_too_large

# --- straight to the daemon with cgi-fcgi ---------------------------------------------------
H=$NP_TMP/fcgi.headers B=$NP_TMP/fcgi.body
np_fcgi GET /healthz >/dev/null
check_answer cgi-fcgi "GET /healthz" 200 "$H" "$B"
np_fcgi GET /healthz - REQUEST_ID=t-routes-0001 >/dev/null
np_expect_eq "cgi-fcgi: REQUEST_ID param echoed as X-Request-Id" t-routes-0001 "$(np_fcgi_header X-Request-Id)"
np_fcgi GET /api/v1/version >/dev/null
check_answer cgi-fcgi "GET /api/v1/version" 200 "$H" "$B"
np_expect_eq "cgi-fcgi GET /api/v1/version: version" "$version" "$(np_json_get "$B" 'd["version"]')"
np_fcgi GET /nope >/dev/null
check_answer cgi-fcgi "GET /nope" 404 "$H" "$B" not_found
np_fcgi DELETE /healthz >/dev/null
check_answer cgi-fcgi "DELETE /healthz" 405 "$H" "$B" method_not_allowed
np_expect "cgi-fcgi DELETE /healthz: Allow lists GET ($(np_fcgi_header Allow))" \
	grep -qiE '^Allow:.*\bGET\b' "$H"
np_fcgi GET /api/v1/version >/dev/null
get_len=$(np_fcgi_header Content-Length)
np_fcgi HEAD /api/v1/version >/dev/null
np_expect_eq "cgi-fcgi HEAD /api/v1/version: status" 200 "$NP_STATUS"
np_expect_eq "cgi-fcgi HEAD /api/v1/version: GET's Content-Length ($get_len)" "$get_len" "$(np_fcgi_header Content-Length)"
np_expect_eq "cgi-fcgi HEAD /api/v1/version: X-Content-Type-Options" nosniff "$(np_fcgi_header X-Content-Type-Options)"
np_expect "cgi-fcgi HEAD /api/v1/version: no body" test ! -s "$NP_TMP/fcgi.body"
np_fcgi HEAD /nope >/dev/null
np_expect_eq "cgi-fcgi HEAD /nope: 404" 404 "$NP_STATUS"
np_expect "cgi-fcgi HEAD /nope: no body" test ! -s "$NP_TMP/fcgi.body"
np_fcgi HEAD /api/v1/sessions >/dev/null
np_expect_eq "cgi-fcgi HEAD of a POST-only route: 405" 405 "$NP_STATUS"
np_expect_eq "cgi-fcgi HEAD of a POST-only route: Allow" POST "$(np_fcgi_header Allow)"
np_fcgi POST /api/v1/version "$NP_TMP/big.body" >/dev/null
check_answer cgi-fcgi "POST 4096-byte body" 413 "$H" "$B" payload_too_large
np_fcgi POST /healthz "$NP_TMP/small.body" >/dev/null
np_expect_eq "cgi-fcgi POST small body to /healthz" 405 "$NP_STATUS"

# The daemon is still whole after all that.
np_expect_eq "still 1 supervisor and 2 workers" "1 2" \
	"$(np_child_pids "$NP_DAEMON_PID" np-supervisor | wc -w) $(np_child_pids "$NP_DAEMON_PID" np-worker | wc -w)"
np_finish
