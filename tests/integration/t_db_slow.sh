#!/usr/bin/env bash
# t_db_slow.sh - every connection holder busy on slow queries: /healthz still answers in under 50 ms, and a database request that waited past acquire_timeout_ms gets 503 db_busy from neonpool, not a 502/504 from nginx.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_start workers=6 budget=2 min_warm=2 acquire_timeout_ms=300 query_timeout_ms=4000 max_waiters=2
# A foreign session locks the books: every read of a book now waits (a slow query).
np_psql_super -d neonpool -c "BEGIN; LOCK TABLE books IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;" >/dev/null 2>&1 &
lock_pid=$!
sleep 0.3
# occupy both holders
holders=()
for i in 1 2; do
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN" >"$NP_TMP/out/holder.$i" &
	holders+=($!)
done
sleep 0.5
np_expect_eq "both holders are busy" 2 "$(np_status_json 'len([w for w in d["workers"] if w["state"] == "busy"])')"
# health through nginx (control socket), timed
: >"$NP_TMP/out/health.txt"
for i in $(seq 1 20); do
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$NP_HTTP_PORT/healthz" >>"$NP_TMP/out/health.txt"
done
np_expect_eq "20 x /healthz: 200" 20 "$(grep -c '^200 ' "$NP_TMP/out/health.txt")"
max=$(awk '{print $2 * 1000}' "$NP_TMP/out/health.txt" | sort -n | tail -1)
np_expect "/healthz slowest $max ms < 50 ms" awk -v m="$max" 'BEGIN { exit !(m < 50) }'
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
wait "$lock_pid" "${holders[@]}"
np_expect_eq "the holders' reads finished with 200 once the lock went" "200 200" "$(cat "$NP_TMP/out/holder.1") $(cat "$NP_TMP/out/holder.2")"
np_expect "nginx made no 502/504 of its own" bash -c "! grep -qE '\" 50[24] ' '$NP_TMP/nginx/access.log'"
echo "RESULT holders busy on locked reads: /healthz max ${max} ms over 20; DB read got $code in ${secs} s"
np_finish
