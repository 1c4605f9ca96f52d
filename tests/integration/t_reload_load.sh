#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_reload_load.sh - SIGHUP three times under wrk load behind nginx: no failed request, and the workers are replaced.
# np: long (waits more than it computes: started early, so that it does not end the run)
# np: shared-pg
. "$(dirname "$0")/lib.sh"
np_require wrk nginx curl
# a paced background load (dblib.sh np_wrk_script): requests in flight, not both cores taken
: "${NP_WRK_DELAY_MS:=200}"; export NP_WRK_DELAY_MS

np_start_pg
np_start_daemon workers=4
np_start_nginx "unix:$NP_TMP/neonpoold.sock"
before=$(np_child_pids "$NP_DAEMON_PID" np-worker)
np_log "workers before: $before"

duration=${NP_WRK_SECONDS:-20}
echo "delay = function() return $NP_WRK_DELAY_MS end" >"$NP_TMP/paced.lua"
wrk -t2 -c200 -d"${duration}s" --latency -s "$NP_TMP/paced.lua" "http://127.0.0.1:$NP_HTTP_PORT/healthz" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
np_now_ms; t0=$NP_NOW
hups=0
for at in 4 9 14; do
	np_now_ms
	wait_ms=$((t0 + at * 1000 - NP_NOW))
	[ "$wait_ms" -gt 0 ] && sleep "$(printf '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000)))"
	if kill -HUP "$NP_DAEMON_PID"; then
		hups=$((hups + 1))
		np_log "SIGHUP $hups at $(( (${EPOCHREALTIME/./} / 1000 - t0) )) ms"
	fi
done
wait "$wrk_pid"
wrk_rc=$?
# The last reload began at 14 s of 20: its old workers are long gone, but let a slow
# (sanitizer/valgrind) build finish.
sleep 0.5

echo "---- wrk -t2 -c200 -d${duration}s /healthz, 3 x SIGHUP ----"
cat "$NP_TMP/out/wrk.out"
echo "----"
np_expect_eq "wrk exit status" 0 "$wrk_rc"
np_expect_eq "3 SIGHUPs sent" 3 "$hups"
requests=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$NP_TMP/out/wrk.out")
np_expect "requests served: ${requests:-none} > 0" test "${requests:-0}" -gt 0
np_expect "no 'Non-2xx or 3xx responses' line" \
	bash -c "! grep -q 'Non-2xx or 3xx responses' '$NP_TMP/out/wrk.out'"
np_expect "no 'Socket errors' line" bash -c "! grep -q 'Socket errors' '$NP_TMP/out/wrk.out'"
# nginx's own view: every logged request got 200, except 499 (wrk closed the connection
# when its time was up, with requests still in flight).
non200=$(awk '/"GET \/healthz/ { for (i = 1; i <= NF; i++) if ($i ~ /^HTTP\/1\.1"$/) { s = $(i+1); if (s != 200 && s != 499) n++; break } } END { print n + 0 }' \
	"$NP_TMP/nginx/access.log")
np_expect_eq "nginx access log: requests answered other than 200 (499 aside)" 0 "$non200"
p99=$("$NP_PYTHON" - "$NP_TMP/nginx/access.log" <<'PY'
import re, sys
t = sorted(float(m.group(1)) for m in (re.search(r'" 200 \d+ rt=([0-9.]+) ', l) for l in open(sys.argv[1])) if m)
print("%.1f ms p50, %.1f ms p99, %.1f ms max over %d requests" % (
    1000 * t[len(t) // 2], 1000 * t[min(len(t) - 1, int(len(t) * 0.99))], 1000 * t[-1], len(t)) if t else "no requests")
PY
)
np_log "nginx access log request_time: $p99"
rps=$(sed -n 's/^Requests\/sec: *//p' "$NP_TMP/out/wrk.out")
wrk_lat=$(awk '$1 == "50%" || $1 == "90%" || $1 == "99%" { printf "%s%s=%s", sep, $1, $2; sep = " " }' "$NP_TMP/out/wrk.out")
echo "RESULT wrk -t2 -c200 -d${duration}s /healthz with 3 x SIGHUP: ${requests:-0} requests, $rps req/s, latency $wrk_lat"
echo "RESULT nginx access log (status 200): $p99"

after=$(np_child_pids "$NP_DAEMON_PID" np-worker)
np_log "workers after:  $after"
np_expect_eq "4 workers after the reloads" 4 "$(echo "$after" | wc -w)"
same=0
for p in $before; do
	case " $after " in *" $p "*) same=$((same + 1)) ;; esac
done
np_expect_eq "no worker of before the reloads is still there" 0 "$same"
np_expect_eq "the master logged 3 reloads" 3 "$(grep -c 'msg="configuration reloaded"' "$NP_DAEMON_LOG")"
np_expect "no error or warning in the daemon log" \
	bash -c "! grep -E 'level=(error|warn)' '$NP_DAEMON_LOG'"
np_expect "nginx logged no upstream error" \
	bash -c "! grep -E '\[(error|crit|alert|emerg)\]' '$NP_TMP/nginx/error.log'"
np_finish
