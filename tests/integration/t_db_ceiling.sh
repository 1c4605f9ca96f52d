#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_ceiling.sh - invariant 1: with workers = 16 and budget = 4, pg_stat_activity sampled every 50 ms never shows more than 4 pool connections, under wrk -c200 with reloads, respawns and kill -9 of workers and the supervisor.
# np: shared-pg
# np: serial-beside-build (a count of pg_stat_activity samples under wrk -c200: 5 a second needed, 20 taken)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx curl

np_db_start workers=16 budget=4 min_warm=2
duration=${NP_WRK_SECONDS:-13}
np_sampler_start
wrk -t2 -c200 -d"${duration}s" --latency -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
sleep 3
events=0
for step in hup kill3 hup killsup kill2 hup kill3; do
	case $step in
	hup) kill -HUP "$NP_DAEMON_PID" ;;
	kill3) for p in $(np_worker_pids | tr ' ' '\n' | shuf -n 3); do kill -KILL "$p"; done ;;
	kill2) for p in $(np_worker_pids | tr ' ' '\n' | shuf -n 2); do kill -KILL "$p"; done ;;
	killsup) kill -KILL "$(np_child_pids "$NP_DAEMON_PID" np-supervisor)" ;;
	esac
	events=$((events + 1))
	np_log "event $events: $step"
	sleep $(( (duration - 6) / 7 ))
done
wait "$wrk_pid"
read -r max samples < <(np_sampler_stop)
cat "$NP_TMP/out/wrk.out"
np_expect "the sampler took samples ($samples)" test "$samples" -gt $((duration * 5))
np_expect "pool connections never above the budget of 4 (max seen $max over $samples samples)" test "$max" -le 4
np_expect "the pool did use its budget (max $max >= 2)" test "$max" -ge 2
rps=$(sed -n 's/^Requests\/sec: *//p' "$NP_TMP/out/wrk.out")
non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$NP_TMP/out/wrk.out")
echo "RESULT workers=16 budget=4 wrk -c200 ${duration}s with 3 reloads, 8 worker kills, 1 supervisor kill: $rps req/s, max pool connections $max over $samples samples, non-2xx ${non2xx:-0} ($(np_access_stats "$NP_TMP/nginx/access.log"))"
# 502s can only come from requests in flight in a killed worker: at most one per kill.
n502=$(np_access_stats "$NP_TMP/nginx/access.log" | tr ' ' '\n' | sed -n 's/^502=//p')
np_expect "502s only from requests in the 8 killed workers (${n502:-0})" test "${n502:-0}" -le 8
np_finish
