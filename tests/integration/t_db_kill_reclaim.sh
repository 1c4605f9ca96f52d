#!/usr/bin/env bash
# t_db_kill_reclaim.sh - invariant 2: 50 kill -9 of random workers under load; each time the budget's in-use count equals the server's count of pool connections within 1 s.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx

np_db_start workers=8 budget=4 min_warm=2 crash_max=1000 crash_window_s=1
kills=${NP_KILLS:-50}
wrk -t2 -c64 -d600s -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
sleep 2
worst=0 late=0 total=0
for i in $(seq 1 "$kills"); do
	victim=$(np_worker_pids | tr ' ' '\n' | shuf -n 1)
	kill -KILL "$victim"
	np_now_ms; t0=$NP_NOW
	matched=0
	while :; do
		in_use=$(np_status_json 'd["endpoints"]["primary"]["in_use"]')
		server=$(np_pool_conns)
		in_use2=$(np_status_json 'd["endpoints"]["primary"]["in_use"]')
		np_now_ms
		# equal on both sides of the server's count: not a coincidence of a moving target
		if [ "$in_use" = "$server" ] && [ "$in_use2" = "$server" ]; then matched=1; break; fi
		[ $((NP_NOW - t0)) -gt 1000 ] && break
		sleep 0.02
	done
	ms=$((NP_NOW - t0))
	total=$((total + ms))
	[ "$ms" -gt "$worst" ] && worst=$ms
	if [ "$matched" = 0 ]; then
		late=$((late + 1))
		np_log "kill $i (pid $victim): no match within 1 s: in_use $in_use/$in_use2, server $server"
	fi
	sleep 0.2
done
kill "$wrk_pid" 2>/dev/null
wait "$wrk_pid" 2>/dev/null
np_expect_eq "in_use equals the server's count within 1 s after each of $kills kills" 0 "$late"
echo "RESULT $kills x kill -9 under load: in_use == pg_stat_activity within 1 s every time ($late late); worst ${worst} ms, mean $((total / kills)) ms"
np_expect "still serving" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN")" = 200
np_finish
