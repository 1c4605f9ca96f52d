#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_socket_activation_restart.sh - socket activation: a stand-in for systemd holds the listen and control
# sockets and passes them by LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES; the daemon is started, stopped (SIGTERM)
# (every second start without names: matched by address) and started again 10 times under wrk -c50 on a database route through nginx: every request completes with
# 200, none refused, none 502 (they wait in the backlog while no daemon runs); the socket files stay.
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx curl
# a paced background load (dblib.sh np_wrk_script): requests in flight, not both cores taken
: "${NP_WRK_DELAY_MS:=50}"; export NP_WRK_DELAY_MS

cycles=${NP_ACT_CYCLES:-11}  # 11 starts: 10 stops and restarts
run_s=${NP_ACT_RUN_S:-2}
np_db_prepare
np_wrk_script
main=$NP_TMP/act.sock control=$NP_TMP/act-control.sock
conf=$(np_daemon_conf act listen="$main" control_listen="$control" workers=3 min_warm=2 \
	database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" status_file="$NP_TMP/status" \
	acquire_timeout_ms=$((2000 * NP_TIMEOUT_SCALE)))
log=$NP_TMP/act.log
"$NP_PYTHON" "$np_top/tests/integration/sd_activate.py" "$NEONPOOLD" "$conf" "$main" "$control" "$cycles" "$run_s" \
	"$log" >"$NP_TMP/out/activate.out" 2>&1 &
act_pid=$!
NP_FRONT_PIDS+=("$act_pid")
for _ in $(seq 100); do [ -S "$main" ] && [ -S "$control" ] && break; sleep 0.05; done
np_start_nginx "unix:$main" "" nginx "unix:$control"
np_wait_db_ready 20

# the cycles take about cycles * (run_s + a stop); wrk runs past the last start
duration=$((cycles * (run_s + 1) + 4))
wrk -t2 -c50 -d"${duration}s" -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
wait "$wrk_pid"
wrk_rc=$?
echo "---- the stand-in's cycles ----"
cat "$NP_TMP/out/activate.out"
echo "---- wrk -t2 -c50 -d${duration}s (GET /api/v1/books/N) ----"
cat "$NP_TMP/out/wrk.out"
echo "----"
np_expect_eq "wrk exit status" 0 "$wrk_rc"
np_expect_eq "stops and starts done" "$((cycles - 1))" "$(grep -c '^cycle .* exit 0 ' "$NP_TMP/out/activate.out")"
np_expect "the last start is running" grep -q '^running ' "$NP_TMP/out/activate.out"
np_expect_eq "starts logged by the daemons" "$cycles" "$(grep -c 'msg=starting' "$log")"
np_expect_eq "starts that took the passed sockets by name" $(((cycles + 1) / 2)) \
	"$(grep -c 'listen=unix:[^ ]*\[systemd:3:main\] control=unix:[^ ]*\[systemd:4:control\] ' "$log")"
np_expect_eq "starts that took them by address (no LISTEN_FDNAMES)" $((cycles / 2)) \
	"$(grep -c 'listen=unix:[^ ]*\[systemd:3\] control=unix:[^ ]*\[systemd:4\] ' "$log")"
requests=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$NP_TMP/out/wrk.out")
np_expect "requests served: ${requests:-none} > 0" test "${requests:-0}" -gt 0
np_expect "no 'Non-2xx or 3xx responses' line" bash -c "! grep -q 'Non-2xx or 3xx responses' '$NP_TMP/out/wrk.out'"
np_expect "no 'Socket errors' line" bash -c "! grep -q 'Socket errors' '$NP_TMP/out/wrk.out'"
read -r n200 nother other <<<"$(awk '/"GET \/api\/v1\/books\// { for (i = 1; i <= NF; i++) if ($i ~ /^HTTP\/1\.1"$/) { s = $(i+1);
	if (s == 200) ok++; else if (s != 499) { bad++; seen[s]++ } break } }
	END { for (s in seen) list = list s "x" seen[s] ","; print ok + 0, bad + 0, (list == "" ? "-" : list) }' "$NP_TMP/nginx/access.log")"
np_log "nginx access log: $n200 answered 200, $nother otherwise ($other)"
np_expect_eq "nginx access log: requests answered other than 200 (499 aside: wrk's end)" 0 "$nother"
np_expect "nginx logged no upstream error (refused, reset, 502)" \
	bash -c "! grep -E '\[(error|crit|alert|emerg)\]' '$NP_TMP/nginx/error.log'"
np_expect "the socket files stayed (systemd's)" test -S "$main" -a -S "$control"
np_expect "no error in the daemons' log" bash -c "! grep -E 'level=error' '$log'"
# the longest wait: a request that arrived while no daemon ran
slow=$("$NP_PYTHON" - "$NP_TMP/nginx/access.log" <<'PY'
import re, sys
t = sorted(float(m.group(1)) for m in (re.search(r'" 200 \d+ rt=([0-9.]+) ', l) for l in open(sys.argv[1])) if m)
print("%.1f ms p50, %.1f ms max over %d requests" % (1000 * t[len(t) // 2], 1000 * t[-1], len(t)) if t else "none")
PY
)
echo "RESULT $cycles starts, $((cycles - 1)) SIGTERM stops and restarts under wrk -c50 on /api/v1/books/N: ${requests:-0} requests, $n200 x 200, $nother other; request time $slow"
last=$(sed -n 's/^running //p' "$NP_TMP/out/activate.out")
[ -n "$last" ] && kill -TERM "$last" 2>/dev/null
for _ in $(seq 100); do np_alive "$last" || break; sleep 0.1; done
np_finish
