#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_outage.sh - the database stopped under load: 503 db_unavailable once the breaker is open, none waiting for a connection, /healthz 200, /readyz 503; restarted: 200s again within 2 s, no restart of neonpool.
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx curl
# a paced background load (dblib.sh np_wrk_script): requests in flight, not both cores taken
: "${NP_WRK_DELAY_MS:=20}"; export NP_WRK_DELAY_MS

np_db_start workers=8 budget=4 min_warm=2
wrk -t2 -c${NP_WRK_CONNS:-16} -d600s -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
sleep 2
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" stop -m fast >"$NP_TMP/out/pgstop.out" 2>&1 || np_fail "pg_ctl stop failed"
np_log "database stopped"
# wait for the breaker
for _ in $(seq 1 50); do
	[ "$(np_status_json 'd["endpoints"]["primary"]["breaker"]')" = open ] && break
	sleep 0.1
done
np_expect_eq "the breaker opened" open "$(np_status_json 'd["endpoints"]["primary"]["breaker"]')"

# 200 sequential requests while it is open: all 503 db_unavailable, fast (time measured by curl,
# through nginx: an upper bound of the daemon's own time)
: >"$NP_TMP/out/down.txt"
for i in $(seq 1 200); do
	curl -s -o "$NP_TMP/out/down.body" -D "$NP_TMP/out/down.headers" -w '%{http_code} %{time_total}\n' \
		"http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN" >>"$NP_TMP/out/down.txt"
done
np_expect_eq "every DB request: 503" 200 "$(grep -c '^503 ' "$NP_TMP/out/down.txt")"
np_expect_eq "error code db_unavailable" db_unavailable "$(np_json_get "$NP_TMP/out/down.body" 'd["error"]["code"]')"
np_expect "Retry-After present" grep -qi '^Retry-After: [0-9]' "$NP_TMP/out/down.headers"
p99=$(awk '{print $2 * 1000}' "$NP_TMP/out/down.txt" | sort -n | awk '{a[NR] = $1} END {print a[int(NR * 0.99)]}')
p50=$(awk '{print $2 * 1000}' "$NP_TMP/out/down.txt" | sort -n | awk '{a[NR] = $1} END {print a[int(NR * 0.5)]}')
# the server side: nginx's upstream_response_time of every 503 under the wrk load (ms resolution)
read -r n503 u50 u99 umax < <(sed -n 's/.*" 503 .*urt=\([0-9.]*\).*/\1/p' "$NP_TMP/nginx/access.log" | sort -n |
	awk '{a[NR] = $1 * 1000} END {print NR, a[int(NR * 0.5)], a[int(NR * 0.99)], a[NR]}')
np_measure 503_upstream_p99_ms "$u99" "503 db_unavailable under wrk with the database stopped (nginx's upstream time)"
# the breaker answers at once: no 503 waited for a connection (acquire_timeout_ms, 500 ms)
np_expect "503 upstream p99 $u99 ms < acquire_timeout_ms over $n503 answers under load" \
	awk -v p="$u99" -v l=$((500 * NP_TIMEOUT_SCALE)) 'BEGIN { exit !(p < l) }'
np_curl /healthz
np_expect_eq "/healthz while the database is down" 200 "$NP_STATUS"
np_curl /readyz
np_expect_eq "/readyz while the database is down: 503 db_unavailable" "503 db_unavailable" \
	"$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd["error"]["code"]')"
np_expect "the daemon is still up" np_alive "$NP_DAEMON_PID"

np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" -l "$NP_TMP/pg/postgresql.log" -w start >"$NP_TMP/out/pgstart.out" 2>&1 ||
	np_fail "pg_ctl start failed"
ok=0
np_wait_read_ok 5000 && ok=1
recover=$NP_WAITED_MS
np_expect "200 again within 2 s of the restart ($recover ms)" test "$ok" = 1 -a "$recover" -le 2000
sleep 1
np_curl /readyz
np_expect_eq "/readyz after recovery" 200 "$NP_STATUS"
kill "$wrk_pid"; wait "$wrk_pid" 2>/dev/null
echo "RESULT database stopped under wrk -c${NP_WRK_CONNS:-16}: 503 db_unavailable upstream p50 ${u50} ms p99 ${u99} ms max ${umax} ms over $n503 (nginx log); curl end to end p50 ${p50} ms p99 ${p99} ms; recovery ${recover} ms after pg_ctl start; nginx: $(np_access_stats "$NP_TMP/nginx/access.log")"
np_expect "nginx answered no 502/504 of its own" bash -c "! grep -qE '\" 50[24] ' '$NP_TMP/nginx/access.log'"
np_finish
