#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_operator_view.sh - what an operator reads (issue 20), in one daemon's life: under a
# journal-like stderr (JOURNAL_STREAM naming it) every line starts with its syslog priority;
# with access_log on, the request id nginx passes is in nginx's access log (rid=) and in the
# daemon's access line of the same request; a scrape passes promtool check metrics, shows the new
# series, and every family it shows is in doc/metrics.md's table; HEAD of every GET route answers
# the GET's status and Content-Length with no body; then, PostgreSQL stopped, /healthz stays 200
# and /readyz is 503 db_unavailable with the failure's reason for an admin_allow peer and without
# it for any other.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx cgi-fcgi promtool

# stderr is the journal's stream: the daemon's log file, named by JOURNAL_STREAM (dev:ino) as
# systemd names the stream it connects stderr to
: >"$NP_TMP/neonpoold.log"
JOURNAL_STREAM=$(stat -c '%d:%i' "$NP_TMP/neonpoold.log")
export JOURNAL_STREAM
np_db_start workers=2 budget=2 min_warm=1 access_log=true breaker_failures=2
unset JOURNAL_STREAM
url=http://127.0.0.1:$NP_HTTP_PORT

# ---- health: HEAD of every GET route (the route table's GETs, parameters filled) ------------
np_curl "/api/v1/books/$NP_BOOK_MIN/chapters/1"
n_head=0 n_head_ok=0
for path in /healthz /readyz /metrics /status /api/v1/version /api/v1/books "/api/v1/books/$NP_BOOK_MIN" \
	"/api/v1/passages/$NP_PASSAGE_MIN" "/api/v1/books/$NP_BOOK_MIN/chapters/1" "/api/v1/search?q=chapter"; do
	g=$(curl -sS -o "$NP_TMP/out/get.body" -D "$NP_TMP/out/get.h" -w '%{http_code}' "$url$path")
	read -r h hsize < <(curl -sS -I -o /dev/null -D "$NP_TMP/out/head.h" -w '%{http_code} %{size_download}\n' "$url$path")
	gl=$(np__header "$NP_TMP/out/get.h" Content-Length)
	hl=$(np__header "$NP_TMP/out/head.h" Content-Length)
	n_head=$((n_head + 1))
	# the admin routes' bodies change between two reads (counters, ages): their length too
	case $path in /metrics | /status) hl=$gl ;; esac
	if [ "$g" = 200 ] && [ "$h" = 200 ] && [ -n "$gl" ] && [ "$gl" = "$hl" ] && [ "$hsize" = 0 ]; then
		n_head_ok=$((n_head_ok + 1))
	else
		np_not_ok "HEAD $path: GET $g ($gl bytes), HEAD $h ($hl bytes, body $hsize)"
	fi
done
np_expect_eq "HEAD of every GET route: 200, the GET's Content-Length, no body" "$n_head" "$n_head_ok"
# the daemon itself sends no body (nginx would drop one)
np_fcgi HEAD "/api/v1/books/$NP_BOOK_MIN" >/dev/null
np_expect_eq "HEAD /api/v1/books/$NP_BOOK_MIN straight to the daemon: 200, no body" "200 0" \
	"$NP_STATUS $(stat -c %s "$NP_TMP/fcgi.body")"

# ---- logs: one request id in nginx's log and in the daemon's access line --------------------
np_curl "/api/v1/books/$NP_BOOK_MIN"
rid=$(np_http_header X-Request-Id)
np_expect "nginx passed a request id ($rid)" test -n "$rid"
access_line() { grep -m1 "msg=access request_id=$rid " "$NP_DAEMON_LOG"; }
wait_for() { local i; for i in $(seq 1 $((100 * NP_TIMEOUT_SCALE))); do "$@" >/dev/null && return 0; sleep 0.1; done; return 1; }
np_expect "the daemon's access line for it" wait_for access_line
line=$(access_line)
np_log "daemon: $line"
np_expect "its fields: method, route, status, duration, queue time" \
	grep -qE "request_id=$rid method=GET route=books\.get status=200 ms=[0-9.]+ queue_ms=[0-9.]+$" <<<"$line"
np_expect "the same id in nginx's access log" wait_for grep -q " rid=$rid\$" "$NP_TMP/nginx/access.log"
np_log "nginx:  $(grep " rid=$rid\$" "$NP_TMP/nginx/access.log")"

# ---- metrics: promtool, the new series, every family in doc/metrics.md -----------------------
np_promtool_scrape
for re in '^neonpool_build_info\{version="[^"]+",libpq="[1-9][0-9]*",shm_layout="[0-9]+"\} 1$' \
	'^neonpool_workers\{kind="main",state="idle"\} [0-9]+$' '^neonpool_workers\{kind="control",state="idle"\} [01]$' \
	'^neonpool_workers_configured\{kind="main"\} 2$' '^neonpool_http_errors_total\{error="rate_limited"\} 0$' \
	'^neonpool_peers_refused_total 0$' '^neonpool_request_read_timeouts_total [0-9]+$' \
	'^neonpool_llm_first_token_seconds_bucket\{le="\+Inf"\} 0$' '^neonpool_llm_tokens_bucket\{le="16000"\} 0$'; do
	np_expect "scrape holds $re" grep -qE "$re" "$NP_TMP/out/scrape.txt"
done
np_expect "no error-name series labelled code any more" bash -c "! grep -q '^neonpool_http_errors_total{code=' '$NP_TMP/out/scrape.txt'"
families=$(sed -n 's/^# TYPE \([a-z_]*\) .*/\1/p' "$NP_TMP/out/scrape.txt")
undocumented=$(for f in $families; do grep -qF "| \`$f\` |" "$np_top/doc/metrics.md" || echo "$f"; done)
np_expect_eq "every family of the scrape ($(wc -w <<<"$families")) is in doc/metrics.md" "" "$undocumented"

# ---- PostgreSQL stopped: liveness stays, readiness says why only to admin_allow -----------------
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" stop -m fast >"$NP_TMP/out/pgstop.out" 2>&1 || np_fail "pg_ctl stop failed"
down() { np_fcgi -a "$NP_TMP/control.sock" GET /readyz >/dev/null; [ "$NP_STATUS" = 503 ] &&
	[ "$(np_json_get "$NP_TMP/fcgi.body" 'd["error"]["code"]')" = db_unavailable ]; }
for _ in $(seq 1 $((100 * NP_TIMEOUT_SCALE))); do
	np_curl "/api/v1/books/$NP_BOOK_MIN" # requests see the failures the breaker counts
	down && break
	sleep 0.1
done
np_expect "/readyz: 503 db_unavailable once the breaker opened" down
np_curl /healthz
np_expect_eq "/healthz while the database is down" 200 "$NP_STATUS"
np_fcgi -a "$NP_TMP/control.sock" GET /readyz - REMOTE_ADDR=192.0.2.7 >/dev/null
public=$(np_json_get "$NP_TMP/fcgi.body" '"%s|%s" % (d["error"]["code"], d["error"]["message"])')
np_expect_eq "/readyz to a peer outside admin_allow: 503, the code, no reason" "503 db_unavailable|database down" \
	"$NP_STATUS $public"
np_expect_eq "... and Retry-After" 1 "$(np_fcgi_header Retry-After | grep -c '^[0-9]')"
np_curl /readyz
admin=$(np_json_get "$NP_TMP/http.body" 'd["error"]["message"]')
np_expect "/readyz through nginx to an admin_allow peer (127.0.0.1) names the reason: $admin" \
	grep -qE '^database down: .+' <<<"$admin"

# ---- journal priorities: every line has one; info and warning/error both seen ---------------
prio=$(grep -c '^<[3-7]>ts=' "$NP_DAEMON_LOG")
bare=$(grep -v '^<[3-7]>ts=' "$NP_DAEMON_LOG" | grep -c '^ts=')
np_expect_eq "every daemon line starts with a syslog priority ($prio lines)" 0 "$bare"
np_expect "info lines are <6>" grep -q '^<6>ts=[^ ]* level=info ' "$NP_DAEMON_LOG"
np_expect "the outage's warnings or errors are <4> or <3> (journalctl -p warning shows them)" \
	grep -qE '^(<4>ts=[^ ]* level=warn |<3>ts=[^ ]* level=error )' "$NP_DAEMON_LOG"
echo "RESULT operator view: $prio daemon lines with a priority (<3> $(grep -c '^<3>' "$NP_DAEMON_LOG"), <4> $(grep -c '^<4>' "$NP_DAEMON_LOG"), <6> $(grep -c '^<6>' "$NP_DAEMON_LOG")), 0 without; request id $rid in both logs; HEAD $n_head_ok/$n_head GET routes; $(wc -w <<<"$families") metric families documented; /readyz down: public '$public', admin '$admin'"
np_finish
