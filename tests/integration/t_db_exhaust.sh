#!/usr/bin/env bash
# t_db_exhaust.sh - a foreign client holds every free max_connections slot: 503 db_busy with Retry-After, never a 500; recovery when it lets go.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_start workers=4 budget=4 min_warm=1 idle_timeout_s=1 acquire_timeout_ms=300
np_curl /api/v1/books/$NP_BOOK_MIN
np_expect_eq "reads work" 200 "$NP_STATUS"

# Restart the daemon's connections away: stop neonpoold's holders by lowering nothing; instead
# fill the server. max_connections is 100 with 3 reserved: hold every free slot with sessions
# of a foreign role (psql sessions that sleep), then kill the pool's own backends so that it
# must reconnect into a full server.
np_psql_super -d postgres -c "CREATE ROLE hog LOGIN" >/dev/null
free=$(np_psql_super -d postgres -At -c "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int - count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
np_log "holding $free free slots"
for i in $(seq 1 "$free"); do
	np_pg_run "$PGBIN/psql" -X -q -h "$NP_PG_SOCKDIR" -p "$NP_PG_PORT" -U hog -d postgres \
		-c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
done
for _ in $(seq 1 100); do
	n=$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'hog'")
	[ "$n" -ge "$free" ] && break
	sleep 0.1
done
np_log "hog sessions: $n"
np_psql_super -d postgres -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%'" >/dev/null
sleep 0.5
: >"$NP_TMP/out/full.txt"
for i in $(seq 1 20); do
	curl -s -o "$NP_TMP/out/full.body" -D "$NP_TMP/out/full.headers" -w '%{http_code}\n' \
		"http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN" >>"$NP_TMP/out/full.txt"
done
sort "$NP_TMP/out/full.txt" | uniq -c | sed 's/^/# /'
np_expect_eq "no 500 while the server is full" 0 "$(grep -c '^500' "$NP_TMP/out/full.txt")"
np_expect "503 answers while the server is full" grep -q '^503' "$NP_TMP/out/full.txt"
np_expect_eq "only 503 (no 200: no connection could be had)" 20 "$(grep -c '^503' "$NP_TMP/out/full.txt")"
codes=$(np_json_get "$NP_TMP/out/full.body" 'd["error"]["code"]')
np_expect_eq "error code db_busy" db_busy "$codes"
np_expect "Retry-After" grep -qi '^Retry-After: [0-9]' "$NP_TMP/out/full.headers"
np_expect "the log classifies it as busy (too many clients)" grep -q 'class=busy' "$NP_DAEMON_LOG"

np_psql_super -d postgres -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'hog'" >/dev/null
np_now_ms; t0=$NP_NOW
ok=0
while :; do
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN")
	np_now_ms
	[ "$code" = 200 ] && { ok=1; break; }
	[ $((NP_NOW - t0)) -gt 10000 ] && break
	sleep 0.1
done
np_expect "reads work again once the slots are free ($((NP_NOW - t0)) ms)" test "$ok" = 1
echo "RESULT server full (foreign client holds $free slots): $(sort "$NP_TMP/out/full.txt" | uniq -c | tr '\n' ' ') code $codes; recovery $((NP_NOW - t0)) ms after release"
np_finish
