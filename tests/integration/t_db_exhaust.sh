#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_exhaust.sh - a foreign client holds every free max_connections slot: 503 db_busy with Retry-After, never a 500; recovery when it lets go.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_prepare
# A foreign role takes every slot a non-superuser can have (max_connections minus the reserved
# ones), each session retrying until it is in, before neonpool starts: every connection the pool
# tries gets "sorry, too many clients already" (53300).
np_psql_super -d postgres -c "CREATE ROLE hog LOGIN PASSWORD 'hog-not-secret'" >/dev/null
hogs=()
slots=$(np_psql_super -d postgres -At -c "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int")
for i in $(seq 1 "$slots"); do
	(until PGPASSWORD=hog-not-secret "$PGBIN/psql" -X -q -h "$NP_PG_SOCKDIR" -p "$NP_PG_PORT" -U hog \
		-d postgres -c "SELECT pg_sleep(600)" >/dev/null 2>&1; do sleep 0.2; done) &
	hogs+=("$!")
	NP_FRONT_PIDS+=("$!")
done
for _ in $(seq 1 150); do
	# sessions in their pg_sleep: a connection attempt being refused shows in pg_stat_activity too,
	# and counting it let the pool take the slot a hog was about to retry for (/readyz 200)
	n=$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'hog' AND wait_event = 'PgSleep'")
	[ "$n" -ge "$slots" ] && break
	sleep 0.1
done
np_expect_eq "the foreign client holds all $slots slots" "$slots" "$n"

np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" workers=4 budget=4 min_warm=1 \
	acquire_timeout_ms=300
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
sleep 0.5
: >"$NP_TMP/out/full.txt"
for i in $(seq 1 20); do
	curl -s -o "$NP_TMP/out/full.body" -D "$NP_TMP/out/full.headers" -w '%{http_code} %{time_total}\n' \
		"http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN" >>"$NP_TMP/out/full.txt"
done
awk '{print $1}' "$NP_TMP/out/full.txt" | sort | uniq -c | sed 's/^/# /'
np_expect_eq "no 500 while the server is full" 0 "$(grep -c '^500' "$NP_TMP/out/full.txt")"
np_expect_eq "every read: 503" 20 "$(grep -c '^503' "$NP_TMP/out/full.txt")"
code=$(np_json_get "$NP_TMP/out/full.body" 'd["error"]["code"]')
np_expect_eq "error code db_busy" db_busy "$code"
np_expect "Retry-After" grep -qi '^Retry-After: [0-9]' "$NP_TMP/out/full.headers"
np_expect "the log classifies it as busy (too many clients)" grep -q 'class=busy' "$NP_DAEMON_LOG"
np_expect_eq "the breaker stays closed: a full server is busy, not down" closed \
	"$(np_status_json 'd["endpoints"]["primary"]["breaker"]')"
np_curl /healthz
np_expect_eq "/healthz meanwhile" 200 "$NP_STATUS"
np_curl /readyz
np_expect_eq "/readyz meanwhile: 503 (no connection yet)" 503 "$NP_STATUS"
max=$(awk '{print $2}' "$NP_TMP/out/full.txt" | sort -n | tail -1)

kill "${hogs[@]}" 2>/dev/null    # the retry loops first
np_psql_super -d postgres -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'hog'" >/dev/null
ok=0
np_wait_read_ok 10000 && ok=1
np_expect "reads work again once the slots are free ($NP_WAITED_MS ms)" test "$ok" = 1
echo "RESULT server full (a foreign role holds all $slots slots): $(awk '{print $1}' "$NP_TMP/out/full.txt" | sort | uniq -c | tr '\n' ' ') code $code, slowest ${max} s; recovery $NP_WAITED_MS ms after release"
np_finish
