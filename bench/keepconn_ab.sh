#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# keepconn_ab.sh - issue 23's lead "an accept and a close per request": the shipped nginx site
# (contrib/nginx/neonpool.conf: fastcgi_keep_conn off, no upstream keepalive) against the same site
# with `fastcgi_keep_conn on` and `keepalive KEEP` in the upstream, both in front of ONE daemon
# (workers=4 budget=4), side by side in alternating rounds (ABBA) under wrk -t2 -c200 on the book
# and passage routes. Prints req/s and p99 per round, then the medians and the on/off ratio, and
# the daemon's context switches per request in each configuration. Not in the suite.
# Usage: bench/keepconn_ab.sh [SECONDS [ROUNDS]]   (default 10 s, 4 rounds)
#   NP_AB_KEEP      the upstream's keepalive connections per nginx worker (default 8)
#   NP_AB_PERF=1    perf record -a during the first book run of each configuration: where the
#                   machine's two cores go (by process, then the daemon's workers by symbol)
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
secs=${1:-10}
rounds=${2:-4}
KEEP=${NP_AB_KEEP:-8}
. "$top/tests/integration/lib.sh"
. "$top/tests/integration/dblib.sh"
np_require wrk nginx
NP_SEED_BOOKS=${NP_SEED_BOOKS:-200}
np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" workers=4 budget=4 min_warm=4 log_level=warn listen_backlog=4096
declare -A port
np_start_nginx "unix:$NP_DAEMON_ADDR" "" nginx-off
port[off]=$NP_HTTP_PORT
np_start_nginx "unix:$NP_DAEMON_ADDR" "" nginx-on
sed -i -e "s|^\(    server unix:$NP_DAEMON_ADDR;.*\)$|\1\n    keepalive $KEEP;|" \
	-e 's|fastcgi_keep_conn off;|fastcgi_keep_conn on;|' "$NP_TMP/nginx-on/neonpool.conf"
grep -q "keepalive $KEEP;" "$NP_TMP/nginx-on/neonpool.conf" || np_fail "could not add keepalive to the upstream"
kill -HUP "$NP_NGINX_PID"
sleep 1
port[on]=$NP_HTTP_PORT

# wrk scripts over every book and 2000 passages
np_psql_super -d "$NP_PG_DB" -At -c "SELECT id FROM books ORDER BY id" | sed 's|^|/api/v1/books/|' >"$NP_TMP/book.paths"
np_psql_super -d "$NP_PG_DB" -At -c "SELECT id FROM passages ORDER BY random() LIMIT 2000" | sed 's|^|/api/v1/passages/|' >"$NP_TMP/passage.paths"
for r in book passage; do
	{ echo 'local p = {'; sed 's/.*/  "&",/' "$NP_TMP/$r.paths"; echo '}'
	  echo 'math.randomseed(os.time())'
	  echo 'request = function() return wrk.format("GET", p[math.random(#p)]) end'
	  echo 'done = function(s, l, r) io.write(string.format("NP p99=%.2f\n", l:percentile(99) / 1000)) end'
	} >"$NP_TMP/$r.lua"
done
# csw: the daemon's processes' context switches so far
csw() { local p t=0; for p in $(ps -e -o pid=,pgid= | awk -v g="$NP_DAEMON_PID" '$2 == g { print $1 }'); do
	t=$((t + $(awk '/ctxt_switches/ { s += $2 } END { print s + 0 }' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo "$t"; }
declare -A got p99s cs reqs
run() { # run CONF ROUTE
	local out=$NP_TMP/out/wrk-$1-$2.out c0 c1
	c0=$(csw)
	local pp=""
	if [ "${NP_AB_PERF:-0}" = 1 ] && [ "$2" = book ] && [ ! -e "$NP_TMP/perf-$1.data" ]; then
		(sleep 2; exec perf record -a -g -F 499 -o "$NP_TMP/perf-$1.data" -- sleep $((secs - 4))) >/dev/null 2>&1 &
		pp=$!
	fi
	wrk -t2 -c200 -d"${secs}s" --timeout 10s --latency -s "$NP_TMP/$2.lua" "http://127.0.0.1:${port[$1]}/" >"$out" 2>&1
	c1=$(csw)
	[ -n "$pp" ] && wait "$pp"
	grep -q 'Non-2xx\|Socket errors' "$out" && np_log "$1 $2: $(grep 'Non-2xx\|Socket errors' "$out")"
	local rps p n
	rps=$(sed -n 's/^Requests\/sec: *//p' "$out"); p=$(sed -n 's/^NP p99=//p' "$out")
	n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$out")
	got[$1-$2]+="$rps "; p99s[$1-$2]+="$p "; cs[$1-$2]=$((${cs[$1-$2]:-0} + c1 - c0)); reqs[$1-$2]=$((${reqs[$1-$2]:-0} + n))
	printf '%5d  %-8s %-4s %10s req/s  p99 %7s ms\n' "$i" "$2" "$1" "$rps" "$p"
	sleep 1
}
for r in book passage; do for c in off on; do wrk -t2 -c200 -d3s -s "$NP_TMP/$r.lua" "http://127.0.0.1:${port[$c]}/" >/dev/null 2>&1; done; done
for ((i = 1; i <= rounds; i++)); do
	order="off on"; [ $((i % 2)) = 0 ] && order="on off"
	for r in book passage; do for c in $order; do run "$c" "$r"; done; done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for r in book passage; do
	off=$(echo "${got[off-$r]}" | median) on=$(echo "${got[on-$r]}" | median)
	echo "RESULT $r: keep_conn off $off req/s (p99 $(echo "${p99s[off-$r]}" | median) ms, $(awk -v a="${cs[off-$r]}" -v b="${reqs[off-$r]}" 'BEGIN { printf "%.2f", a / b }') daemon context switches/request), on + keepalive $KEEP $on req/s (p99 $(echo "${p99s[on-$r]}" | median) ms, $(awk -v a="${cs[on-$r]}" -v b="${reqs[on-$r]}" 'BEGIN { printf "%.2f", a / b }') switches/request); on/off $(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }') ($rounds rounds of $secs s, ABBA, wrk -t2 -c200, workers=4 budget=4)"
done
if [ "${NP_AB_PERF:-0}" = 1 ]; then
	for c in off on; do
		[ -e "$NP_TMP/perf-$c.data" ] || continue
		echo "PERF keep_conn $c: the machine's samples by process (comm)"
		perf report -i "$NP_TMP/perf-$c.data" --no-children -g none --sort comm --stdio 2>/dev/null | grep -v '^#' | grep . | head -n 12
		echo "PERF keep_conn $c: the workers' samples by shared object and symbol"
		perf report -i "$NP_TMP/perf-$c.data" --no-children -g none --percentage relative --comm np-worker --sort dso --stdio 2>/dev/null |
			grep -v '^#' | grep '%' | head -n 12
		echo "PERF keep_conn $c: the workers' samples by symbol"
		perf report -i "$NP_TMP/perf-$c.data" --no-children -g none --percentage relative --comm np-worker --sort dso,sym --stdio 2>/dev/null |
			grep -v '^#' | grep '%' | head -n 25
	done
fi
np_finish
