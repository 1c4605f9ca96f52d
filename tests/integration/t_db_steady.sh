#!/usr/bin/env bash
# t_db_steady.sh - workers = 4 x budget against workers = budget under the same wrk -c200 primary-key load: throughput within 10%, 0 non-2xx, and no connection churn (connections opened during the steady run = 0, held = budget).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx

budget=4
secs=${NP_WRK_SECONDS:-15}
rounds=${NP_ROUNDS:-2}
np_db_prepare
declare -A rps_sum=()
run() {   # run NAME WORKERS ROUND
	local name=$1 workers=$2 round=$3
	np_start_daemon --name "$name" database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
		status_file="$NP_TMP/$name.status" control_listen="$NP_TMP/$name.control.sock" \
		listen="$NP_TMP/$name.sock" pid_file="$NP_TMP/$name.pid" workers="$workers" budget=$budget min_warm=$budget
	np_start_nginx "unix:$NP_TMP/$name.sock" "" "nginx-$name" "unix:$NP_TMP/$name.control.sock"
	np_wrk_script
	np_write_conf "$NP_TMP/$name.ctl.conf" "status_file=$NP_TMP/$name.status"
	# warm up: all budget connections open
	wrk -t2 -c200 -d2s -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >/dev/null 2>&1
	local c0 c1 sessions0 sessions1
	c0=$("$NEONPOOLCTL" -c "$NP_TMP/$name.ctl.conf" status --json | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["connects_total"])')
	sessions0=$(np_psql_super -d postgres -At -c "SELECT sessions FROM pg_stat_database WHERE datname = 'neonpool'")
	wrk -t2 -c200 -d"${secs}s" --latency -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.$name.$round" 2>&1
	c1=$("$NEONPOOLCTL" -c "$NP_TMP/$name.ctl.conf" status --json | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["connects_total"])')
	sessions1=$(np_psql_super -d postgres -At -c "SELECT sessions FROM pg_stat_database WHERE datname = 'neonpool'")
	held=$(np_pool_conns)
	local rps p99 non
	rps=$(sed -n 's/^Requests\/sec: *//p' "$NP_TMP/out/wrk.$name.$round")
	p99=$(awk '$1 == "99%" {print $2}' "$NP_TMP/out/wrk.$name.$round")
	non=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$NP_TMP/out/wrk.$name.$round")
	np_expect_eq "$name round $round: no non-2xx" "" "$non"
	np_expect_eq "$name round $round: connections opened by the pool during ${secs} s" 0 $((c1 - c0))
	np_expect_eq "$name round $round: server sessions started during ${secs} s (pg_stat_database)" 0 $((sessions1 - sessions0))
	np_expect_eq "$name round $round: connections held = budget" $budget "$held"
	echo "RESULT workers=$workers budget=$budget round $round: $rps req/s, p99 $p99, connects during run $((c1 - c0)), held $held"
	rps_sum[$name]=$(awk -v a="${rps_sum[$name]:-0}" -v b="$rps" 'BEGIN { print a + b }')
	np_use_daemon "$name"
	np_stop_daemon TERM >/dev/null
	kill "$NP_NGINX_PID"; np_wait_gone "$NP_NGINX_PID" 5000
}
for r in $(seq 1 "$rounds"); do
	run equal-r$r $budget "$r"
	run four-r$r $((4 * budget)) "$r"
done
eq=0; four=0
for r in $(seq 1 "$rounds"); do
	eq=$(awk -v a="$eq" -v b="${rps_sum[equal-r$r]}" 'BEGIN { print a + b }')
	four=$(awk -v a="$four" -v b="${rps_sum[four-r$r]}" 'BEGIN { print a + b }')
done
ratio=$(awk -v a="$four" -v b="$eq" 'BEGIN { printf "%.3f", a / b }')
echo "RESULT workers=16 vs workers=4 (budget 4), $rounds interleaved rounds of ${secs} s: $(awk -v a="$four" -v r="$rounds" 'BEGIN { printf "%.0f", a / r }') vs $(awk -v a="$eq" -v r="$rounds" 'BEGIN { printf "%.0f", a / r }') req/s, ratio $ratio"
# one-sided: the claim is that spare workers cost nothing; a faster W16 round is noise (another
# process on the 2 cores during a W4 round), not a defect
np_expect "throughput of workers = 4 x budget at least 90% of workers = budget (ratio $ratio)" \
	awk -v r="$ratio" 'BEGIN { exit !(r >= 0.90) }'
np_finish
