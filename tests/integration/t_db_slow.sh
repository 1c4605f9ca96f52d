#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_slow.sh - every connection holder busy on slow queries: /healthz still answers 200 without waiting for them (its time is measured for bench/latency), and a database request that waited past acquire_timeout_ms gets 503 db_busy from neonpool, not a 502/504 from nginx.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_start workers=6 budget=2 min_warm=2 acquire_timeout_ms=300 query_timeout_ms=$((30000 * NP_TIMEOUT_SCALE)) max_waiters=2
# A foreign session locks the books until the checks are done (it is cancelled then): every read of
# a book waits meanwhile (a slow query).
np_psql_super -d neonpool -c "SET application_name = 't_db_slow_lock'; BEGIN; LOCK TABLE books IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;" >/dev/null 2>&1 &
lock_pid=$!
for _ in $(seq 1 100); do
	[ "$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 't_db_slow_lock' AND wait_event = 'PgSleep'$(np_pg_scope)")" = 1 ] && break
	sleep 0.05
done
# occupy both holders
holders=()
for i in 1 2; do
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN" >"$NP_TMP/out/holder.$i" &
	holders+=($!)
done
for _ in $(seq 1 100); do
	[ "$(np_status_json 'len([w for w in d["workers"] if w["state"] == "busy"])')" = 2 ] && break
	sleep 0.05
done
np_expect_eq "both holders are busy" 2 "$(np_status_json 'len([w for w in d["workers"] if w["state"] == "busy"])')"
# health through nginx (control socket), timed
: >"$NP_TMP/out/health.txt"
for i in $(seq 1 20); do
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$NP_HTTP_PORT/healthz" >>"$NP_TMP/out/health.txt"
done
np_expect_eq "20 x /healthz: 200" 20 "$(grep -c '^200 ' "$NP_TMP/out/health.txt")"
max=$(awk '{print $2 * 1000}' "$NP_TMP/out/health.txt" | sort -n | tail -1)
np_measure healthz_max_ms "$max" "/healthz (20 in a row) with every connection holder busy"
# the holders stay blocked until the lock is cancelled: a /healthz that waited for one would take seconds
np_expect "/healthz did not wait for a holder: slowest $max ms < 1000 ms" awk -v m="$max" 'BEGIN { exit !(m < 1000) }'
# and the health route on the main socket too, directly (a spare in shed mode takes it)
np_fcgi GET /healthz >/dev/null
np_expect_eq "/healthz on the main socket while holders are busy" 200 "$NP_STATUS"
# a database read now: no holder is free; it waits acquire_timeout_ms, then 503 db_busy
curl -s -o "$NP_TMP/out/busy.body" -D "$NP_TMP/out/busy.headers" -w '%{http_code} %{time_total}\n' --max-time 10 \
	"http://127.0.0.1:$NP_HTTP_PORT/api/v1/passages/$NP_PASSAGE_MIN" >"$NP_TMP/out/busy.txt"
read -r code secs <"$NP_TMP/out/busy.txt"
np_expect_eq "a DB read with every holder busy: 503 db_busy" "503 db_busy" "$code $(np_json_get "$NP_TMP/out/busy.body" 'd["error"]["code"]')"
np_expect "Retry-After" grep -qi '^Retry-After: [0-9]' "$NP_TMP/out/busy.headers"
np_expect "answered in ${secs} s (< 1.5 s)" awk -v s="$secs" 'BEGIN { exit !(s < 1.5) }'
np_psql_super -d postgres -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 't_db_slow_lock'$(np_pg_scope)" >/dev/null
wait "$lock_pid" "${holders[@]}"
np_expect_eq "the holders' reads finished with 200 once the lock went" "200 200" "$(cat "$NP_TMP/out/holder.1") $(cat "$NP_TMP/out/holder.2")"
np_expect "nginx made no 502/504 of its own" bash -c "! grep -qE '\" 50[24] ' '$NP_TMP/nginx/access.log'"
echo "RESULT holders busy on locked reads: /healthz max ${max} ms over 20; DB read got $code in ${secs} s"
np_finish
