#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_kill_reclaim.sh - invariant 2: 50 kill -9 of random workers under load; each time the budget's in-use count equals the server's count of pool connections within 1 s.
# np: shared-pg
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx
# a paced background load (dblib.sh np_wrk_script): requests in flight, not both cores taken
: "${NP_WRK_DELAY_MS:=100}"; export NP_WRK_DELAY_MS

np_db_start workers=8 budget=4 min_warm=2
kills=${NP_KILLS:-25}   # tests/run.sh --long: 50
# the primary's in_use into IN_USE, without a Python start per sample (the first "in_use" of the
# document is the primary endpoint's): sampling must be fast next to what it measures
in_use_now() {
	local out
	out=$("$NEONPOOLCTL" -c "$NP_CTL_CONF" status --json 2>/dev/null)
	IN_USE=""
	[[ $out =~ \"in_use\":([0-9]+) ]] && IN_USE=${BASH_REMATCH[1]}
}
# the server's count of pool connections into SERVER, from one psql session kept open (a psql
# start per sample took longer than the 1 s it measures on a loaded machine)
coproc PGQ { np_pg_run "$PGBIN/psql" -X -q -At -h "$NP_PG_SOCKDIR" -p "$NP_PG_PORT" -U postgres -d "$NP_PG_DB" 2>&1; }
pgq_in=${PGQ[1]} pgq_out=${PGQ[0]}
server_now() {
	local l
	printf "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%%'%s;\n\\\\echo __end__\n" "$(np_pg_scope)" >&"$pgq_in"
	SERVER=""
	while read -r -t 10 l <&"$pgq_out"; do
		[ "$l" = __end__ ] && break
		SERVER=$l
	done
}
wrk -t2 -c64 -d600s -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
sleep 2
worst=0 late=0 total=0
for i in $(seq 1 "$kills"); do
	victim=$(np_worker_pids | tr ' ' '\n' | shuf -n 1)
	# every worker killed and the pool in its respawn backoff (young deaths, up to
	# respawn_backoff_max_ms): wait for one rather than kill nothing
	for _ in $(seq 1 100); do [ -n "$victim" ] && break; sleep 0.1; victim=$(np_worker_pids | tr ' ' '\n' | shuf -n 1); done
	[ -n "$victim" ] || np_fail "no worker alive 10 s after kill $((i - 1))"
	kill -KILL "$victim"
	np_now_ms; t0=$NP_NOW
	matched=0
	trace=""
	while :; do
		# in_use before and after the server's count: when all three agree, they agreed at the
		# moment the server was asked (t_srv); that moment is what is measured, not how long the
		# sampling tools took to start on a loaded machine
		in_use_now; in_use=$IN_USE
		np_now_ms; t_srv=$NP_NOW
		server_now; server=$SERVER
		in_use_now; in_use2=$IN_USE
		np_now_ms
		trace="$trace $((t_srv - t0))ms:$in_use/$server/$in_use2"
		# equal on both sides of the server's count: not a coincidence of a moving target
		if [ "$in_use" = "$server" ] && [ "$in_use2" = "$server" ]; then matched=1; break; fi
		[ $((t_srv - t0)) -gt 1000 ] && break
		sleep 0.02
	done
	ms=$((t_srv - t0))
	total=$((total + ms))
	if [ "$ms" -gt "$worst" ]; then
		worst=$ms
		worst_trace="kill $i (in_use/server/in_use):$trace"
		cp "$NP_TMP/out/status.json" "$NP_TMP/out/worst-status.json" 2>/dev/null
	fi
	if [ "$matched" = 0 ]; then
		late=$((late + 1))
		np_log "kill $i (pid $victim): no match within 1 s: in_use $in_use/$in_use2, server $server"
	fi
	sleep 0.2
done
kill "$wrk_pid" 2>/dev/null
wait "$wrk_pid" 2>/dev/null
exec {pgq_in}>&-   # psql ends on its stdin's EOF
np_log "slowest: $worst_trace"
np_expect_eq "in_use equals the server's count within 1 s after each of $kills kills" 0 "$late"
echo "RESULT $kills x kill -9 under load: in_use == pg_stat_activity within 1 s every time ($late late); worst ${worst} ms, mean $((total / kills)) ms"
# serving again once the respawn backoff (at most respawn_backoff_max_ms, 5 s) has let workers back:
# right after the last kill the pool may have none (a fresh-clone run's curl got no 200 there)
code=""
np_now_ms; t0=$NP_NOW
for _ in $(seq 1 $((80 * NP_TIMEOUT_SCALE))); do
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN")
	[ "$code" = 200 ] && break
	sleep 0.1
done
np_now_ms
np_expect "still serving: 200 within 8 s of the last kill (got $code after $((NP_NOW - t0)) ms)" test "$code" = 200
np_finish
