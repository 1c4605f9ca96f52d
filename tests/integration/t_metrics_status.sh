#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_metrics_status.sh - GET /metrics (exact Content-Type, the names the issue lists, a request
# counter that rises by exactly the requests made), GET /status (JSON, ?format=text, ?full),
# admin_allow (403 forbidden for another client, through nginx only from localhost) and the
# slow-request log line with its request id and phases.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_start workers=3 budget=2 min_warm=1 slow_request_ms=200 admin_allow=127.0.0.0/8,unix
ctl=$NP_TMP/control.sock

# the count of a series in one scrape (0 when absent)
series() { awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }' "$NP_TMP/metrics.txt"; }
scrape() {
	np_curl /metrics
	cp "$NP_TMP/http.body" "$NP_TMP/metrics.txt"
}

scrape
np_expect_eq "/metrics answers 200" 200 "$NP_STATUS"
np_expect_eq "the exact Content-Type of the text format 0.0.4" "text/plain; version=0.0.4; charset=utf-8" \
	"$(np_http_header Content-Type)"
for name in neonpool_http_request_duration_seconds neonpool_db_acquire_wait_seconds \
	neonpool_db_query_duration_seconds neonpool_db_connections neonpool_db_connections_max \
	neonpool_db_waiting neonpool_db_acquire_timeouts_total neonpool_workers neonpool_db_up \
	neonpool_breaker_state neonpool_warmup_pings_total; do
	np_expect "declares $name" grep -q "^# TYPE $name " "$NP_TMP/metrics.txt"
done
np_expect "neonpool_db_up is 1" grep -qx 'neonpool_db_up{endpoint="primary"} 1' "$NP_TMP/metrics.txt"
np_expect "the configured budget is exposed" \
	grep -qx 'neonpool_db_connections_max{endpoint="primary",source="configured"} 2' "$NP_TMP/metrics.txt"

key='neonpool_http_request_duration_seconds_count{route="books.get",code="200"}'
before=$(series "$key")
for i in $(seq 1 25); do np_curl "/api/v1/books/$NP_BOOK_MIN"; done
# a worker records a request after its answer is sent: the last one may land just after a scrape
for _ in $(seq 50); do
	scrape
	after=$(series "$key")
	[ $((after - before)) -ge 25 ] && break
	sleep 0.1
done
np_expect_eq "the books.get 200 count rose by exactly 25" 25 $((after - before))
inf=$(series 'neonpool_http_request_duration_seconds_bucket{route="books.get",code="200",le="+Inf"}')
np_expect_eq "+Inf bucket = count" "$after" "$inf"
q=$(series 'neonpool_db_query_duration_seconds_count{route="books.get"}')
np_expect "the query phase of books.get was recorded ($q)" test "$q" -ge 25
np_curl /api/v1/books/0
np_curl /api/v1/nope
scrape
np_expect "errors by code: not_found counted" test "$(series 'neonpool_http_errors_total{error="not_found"}')" -ge 1
np_expect "the 404 of a missing book is in books.get's 404 series" \
	test "$(series 'neonpool_http_requests_total{route="books.get",code="404"}')" -ge 1 -o \
	"$(series 'neonpool_http_requests_total{route="books.get",code="400"}')" -ge 1

# /status: JSON, text, full
np_curl /status
np_expect_eq "/status answers 200" 200 "$NP_STATUS"
np_expect "/status is JSON" np_json_valid "$NP_TMP/http.body"
np_expect_eq "no worker list without full" False "$(np_json_get "$NP_TMP/http.body" '"workers" in d')"
np_expect_eq "workers by state add up to 3" 3 \
	"$(np_json_get "$NP_TMP/http.body" 'sum(v for k, v in d["workers_by_state"].items() if k != "exiting")')"
np_expect_eq "the route totals count books.get" True \
	"$(np_json_get "$NP_TMP/http.body" 'd["routes"]["books.get"]["requests_total"] >= 25')"
np_expect_eq "the warm-up policy is named" while-active "$(np_json_get "$NP_TMP/http.body" 'd["warmup"]["policy"]')"
np_curl "/status?full"
np_expect_eq "?full lists the 3 workers with their pids" 3 \
	"$(np_json_get "$NP_TMP/http.body" 'len([w for w in d["workers"] if w["pid"] > 0 and w["state"] != "exiting"])')"
np_curl "/status?format=text"
np_expect_eq "?format=text answers text" "text/plain; charset=utf-8" "$(np_http_header Content-Type)"
np_expect "the text names the primary's budget" grep -q "^primary .*budget [0-9]*/2 in use" "$NP_TMP/http.body"
np_curl "/status?format=xml"
np_expect_eq "a bad format is 400" 400 "$NP_STATUS"

# the windows: the supervisor publishes them every 10 s (the first at its start)
deadline=$(( $(date +%s) + 25 ))
p99=0
while [ "$(date +%s)" -lt "$deadline" ]; do
	np_curl /status
	p99=$(np_json_get "$NP_TMP/http.body" 'd["routes"]["books.get"]["1m"]["requests"]')
	[ "${p99:-0}" -ge 25 ] 2>/dev/null && break
	sleep 1
done
np_expect "the 1 minute window counts the 25 reads ($p99)" test "${p99:-0}" -ge 25
np_expect_eq "its p99 is a positive time" True \
	"$(np_json_get "$NP_TMP/http.body" 'd["routes"]["books.get"]["1m"]["p99_ms"] > 0')"

# admin_allow: the client address nginx passes; a direct FastCGI client over the unix socket
np_fcgi -a "$ctl" GET /metrics - REMOTE_ADDR=10.9.8.7 >/dev/null
np_expect_eq "a client outside admin_allow gets 403" 403 "$NP_STATUS"
np_expect "with the forbidden code" grep -q '"code":"forbidden"' "$NP_TMP/fcgi.body"
np_fcgi -a "$ctl" GET /status - REMOTE_ADDR= >/dev/null
np_expect_eq "a unix-socket client without REMOTE_ADDR matches unix" 200 "$NP_STATUS"
np_fcgi -a "$ctl" GET /healthz - REMOTE_ADDR=10.9.8.7 >/dev/null
np_expect_eq "health routes are not admin routes" 200 "$NP_STATUS"

# the slow log (slow_request_ms = 200): a read waits 0.4 s on a lock; its line names the request
# id, the route and the phases, and the query phase holds the wait
# (the lock holds until the read has waited 0.4 s in its query, then it is cancelled: a fixed 0.6 s
# ran out before the read came on a loaded machine)
np_psql_super -d neonpool -c "SET application_name = 't_metrics_lock'; BEGIN; LOCK TABLE books IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;" \
	>/dev/null 2>&1 &
locker=$!
for _ in $(seq 1 100); do
	[ "$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 't_metrics_lock' AND wait_event = 'PgSleep'$(np_pg_scope)")" = 1 ] && break
	sleep 0.05
done
np_curl "/api/v1/books/$NP_BOOK_MIN" &
reader=$!
for _ in $(seq 1 100); do
	[ "$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%' AND wait_event_type = 'Lock'$(np_pg_scope)")" -ge 1 ] && break
	sleep 0.05
done
sleep 0.4   # the read waits on the lock: past slow_request_ms
np_psql_super -d postgres -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 't_metrics_lock'$(np_pg_scope)" >/dev/null
wait "$reader" "$locker"
rid=$(np_http_header X-Request-Id)
for _ in $(seq 50); do   # the line is written after the answer is sent
	line=$(grep "slow request" "$NP_TMP/neonpoold.log" | grep -F "request_id=$rid" | head -n 1)
	[ -n "$line" ] && break
	sleep 0.1
done
np_expect "a slow-request line names the request id $rid" test -n "$line"
for k in route=books.get status=200 ms= queue_ms= acquire_ms= connect_ms= query_ms= upstream_ms=; do
	np_expect "the line has $k" grep -qF "$k" <<<"$line"
done
qms=$(sed -n 's/.* query_ms=\([0-9]*\).*/\1/p' <<<"$line")
np_expect "its query phase holds the lock wait (${qms} ms >= 200)" test "${qms:-0}" -ge 200
# every line is a request that took slow_request_ms or more (counting them assumed that none of the
# other reads took 200 ms on a loaded machine, queue time included)
fast=$(grep 'slow request' "$NP_TMP/neonpoold.log" | sed -n 's/.* ms=\([0-9.]*\).*/\1/p' | awk '$1 < 200 { n++ } END { print n + 0 }')
np_expect_eq "no request under slow_request_ms is logged as slow" 0 "$fast"
echo "RESULT metrics: books.get count +$((after - before)) for 25 reads; 1m window ${p99} requests"
np_finish
