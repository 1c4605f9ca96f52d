#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_second_instance.sh - a second neonpoold with the same status_file refuses (exit 2, "another neonpoold (pid N) holds FILE") and leaves the live pool's shared memory alone: its budget still holds under load and the status file stays.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx wrk
# a paced background load (dblib.sh np_wrk_script): requests in flight, not both cores taken
: "${NP_WRK_DELAY_MS:=30}"; export NP_WRK_DELAY_MS

np_db_start workers=4 budget=2 min_warm=2
first=$NP_DAEMON_PID
np_expect_eq "the first pool holds its 2 tokens" 2 "$(np_status_json 'd["endpoints"]["primary"]["in_use"]')"

# the second daemon: its own socket and pid file, the same status file
np_start_daemon --name second --no-wait database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" workers=2 budget=2 min_warm=2
second=$NP_DAEMON_PID
np_use_daemon neonpoold
if np_wait_gone "$second" $((5000 * NP_TIMEOUT_SCALE)); then
	np_wait_status "$second"
	np_ok "the second daemon exited"
else
	np_not_ok "the second daemon exited (it is still running)"
	kill -TERM "$second"
	np_wait_gone "$second" 5000
	np_wait_status "$second"
fi
second_rc=$NP_EXIT_STATUS
np_expect_eq "the second daemon's exit status" 2 "$second_rc"
msg=$(grep -o "another neonpoold (pid [0-9]*) holds [^;\"]*" "$NP_TMP/second.log" | head -n 1)
np_expect_eq "it names the live pool" "another neonpoold (pid $first) holds $NP_TMP/status" "$msg"
np_expect "the status file is still there" test -f "$NP_TMP/status"
np_expect "the second daemon left no pid file" test ! -e "$NP_TMP/second.pid"
np_expect "the second daemon left no socket" test ! -e "$NP_TMP/second.sock"

# the first pool's shared memory is intact: the status agrees with the server
sleep 0.3
np_expect_eq "status names the first master" "$first" "$(np_status_json 'd["master_pid"]')"
in_use=$(np_status_json 'd["endpoints"]["primary"]["in_use"]')
server=$(np_pool_conns)
np_expect_eq "status in_use agrees with pg_stat_activity" "$server" "$in_use"
np_expect_eq "the first pool still holds 2 tokens" 2 "$in_use"

# and its budget still holds under load
np_sampler_start
wrk -t2 -c32 -d3s -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.out" 2>&1
read -r max samples < <(np_sampler_stop)
np_expect "pool connections under load never above the budget of 2 (max $max over $samples samples)" test "$max" -le 2
np_expect "the pool answered under load" grep -q 'Requests/sec' "$NP_TMP/out/wrk.out"
non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$NP_TMP/out/wrk.out")
echo "RESULT second instance: exit $second_rc, message '${msg:-none}'; first pool afterwards: in_use $in_use, server $server, under wrk -c32 3 s max $max of budget 2 over $samples samples, non-2xx ${non2xx:-0}"
np_finish
