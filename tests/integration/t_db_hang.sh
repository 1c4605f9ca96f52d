#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_hang.sh - the database hung (postmaster and backends SIGSTOP): every request answered within its deadline with 503/504 JSON; after SIGCONT no worker is stuck and reads succeed again.
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_start workers=6 budget=3 min_warm=3 query_timeout_ms=1000 query_deadline_margin_ms=500 \
	acquire_timeout_ms=500 connect_timeout_ms=2000
postmaster=$(head -n 1 "$NP_TMP/pg/data/postmaster.pid")
all_pg() { echo "$postmaster"; pgrep -P "$postmaster"; }
np_curl /api/v1/books/$NP_BOOK_MIN
np_expect_eq "reads work before the hang" 200 "$NP_STATUS"

kill -STOP $(all_pg)
np_log "postmaster $postmaster and its children stopped"
deadline_ms=$((1000 + 500 + 500))      # query timeout + margin + acquire
: >"$NP_TMP/out/hung.txt"
curls=()
for i in $(seq 1 30); do
	curl -s -o "$NP_TMP/out/hung.$i.body" -w '%{http_code} %{time_total}\n' --max-time 10 \
		"http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$((NP_BOOK_MIN + i % 10))" >>"$NP_TMP/out/hung.txt" &
	curls+=($!)
	sleep 0.1
done
wait "${curls[@]}"
kill -CONT $(all_pg)
np_log "continued"
cat "$NP_TMP/out/hung.txt" | sort | uniq -c | sort -rn | head -5 | sed 's/^/# /'
np_expect_eq "30 answers" 30 "$(wc -l <"$NP_TMP/out/hung.txt")"
np_expect_eq "all 503 or 504 (none 200, none from nginx)" 30 "$(grep -cE '^50[34] ' "$NP_TMP/out/hung.txt")"
# 1 s of slack for nginx, curl and a loaded machine's timers (300 ms was met by chance beside the
# kill soak); a request the deadlines did not end would wait for curl's 10 s
slack=$((1000 * NP_TIMEOUT_SCALE))
slow=$(awk -v d="$deadline_ms" -v s="$slack" '$2 * 1000 > d + s { n++ } END { print n + 0 }' "$NP_TMP/out/hung.txt")
np_expect_eq "none slower than its deadline ($deadline_ms ms + $slack ms slack)" 0 "$slow"
bad_json=0
for f in "$NP_TMP"/out/hung.*.body; do
	code=$(np_json_get "$f" 'd["error"]["code"]')
	case $code in db_timeout|db_unavailable|db_busy) ;; *) bad_json=$((bad_json + 1)); np_log "unexpected body in $f: $(head -c 200 "$f")" ;; esac
done
np_expect_eq "every body is our JSON error (db_timeout/db_unavailable/db_busy)" 0 "$bad_json"

ok=0
np_wait_read_ok 10000 && ok=1
np_expect "reads succeed again after SIGCONT ($NP_WAITED_MS ms)" test "$ok" = 1
sleep 1
busy=$(np_status_json 'max([w["busy_ms"] for w in d["workers"]] + [0])')
np_expect "no worker stuck in a request (longest busy ${busy} ms)" awk -v b="$busy" 'BEGIN { exit !(b < 1000) }'
np_parallel 20 $(for i in $(seq 1 40); do echo "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$((NP_BOOK_MIN + i % 10))"; done)
np_expect_eq "40 reads after recovery: all 200" 40 "$NP_PAR_OK"
np_expect "pool within budget" test "$(np_pool_conns)" -le 3
echo "RESULT hung database: $(awk '{print $1}' "$NP_TMP/out/hung.txt" | sort | uniq -c | tr '\n' ' ') max $(awk '{print $2}' "$NP_TMP/out/hung.txt" | sort -n | tail -1) s (deadline $deadline_ms ms); recovered in $NP_WAITED_MS ms"
np_finish
