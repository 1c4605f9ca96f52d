#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_reload_sparse.sh - one request every 20 ms through nginx across 10 SIGHUPs (and a worker stop
# per reload): every request is answered, none waits for the next connection to be noticed (a
# wake-up of one worker through EPOLLEXCLUSIVE that a stopping worker swallowed would leave its
# connection in the backlog until another came: then the slowest request takes over 1 s).
. "$(dirname "$0")/lib.sh"
np_require curl nginx

np_start_daemon workers=4
np_start_nginx "unix:$NP_TMP/neonpoold.sock"
url="http://127.0.0.1:$NP_HTTP_PORT/api/v1/version"
(
	for _ in $(seq 1 10); do
		sleep 0.25
		kill -HUP "$NP_DAEMON_PID"
	done
) &
hupper=$!
: >"$NP_TMP/out/times"
for _ in $(seq 1 150); do
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 5 "$url" >>"$NP_TMP/out/times"
	sleep 0.02
done
wait "$hupper"
n=$(wc -l <"$NP_TMP/out/times")
ok=$(awk '$1 == 200' "$NP_TMP/out/times" | wc -l)
max=$(sort -k2 -n "$NP_TMP/out/times" | tail -n 1 | awk '{print $2}')
echo "RESULT $n requests across 10 reloads: $ok answered 200, slowest $max s"
np_expect_eq "every request answered 200" "$n" "$ok"
np_expect "the slowest request under $(np_scaled 900) ms ($max s; a lost wake-up costs over 1 s)" \
	awk -v m="$max" -v l="$(np_scaled 900)" 'BEGIN { exit !(m * 1000 < l) }'
np_finish
