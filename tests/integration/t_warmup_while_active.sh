#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_warmup_while_active.sh - warmup_policy = while-active pings (SELECT 1 on an idle holder) only
# while requests used the database within warmup_active_window_s, counted in the server's log:
# none at rest before any request, some during the window, none after it; each ping's query time
# is recorded (neonpool_warmup_pings_total agrees with the log, the pool route's query phase
# grows), and the first connect with none open counts as a cold start (cold_start_ms = 1).
# np: long (waits more than it computes: started early, so that it does not end the run)
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_start workers=2 budget=2 min_warm=1 warmup_policy=while-active warmup_interval_s=1 \
	warmup_active_window_s=3 cold_start_ms=1
log=$NP_TMP/neonpoold.log
pings() { grep -c 'msg="warm-up ping"' "$log"; }
metric() {
	np_curl /metrics
	awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }' "$NP_TMP/http.body"
}

# at rest, before any request: no ping
sleep 2.5
np_expect_eq "no ping before any database request" 0 "$(pings)"
cold=$(metric neonpool_db_cold_starts_total)
np_expect "the first connect with none open counted as a cold start ($cold)" test "$cold" -ge 1

# activity for about a second, then silence
for i in $(seq 1 10); do np_curl "/api/v1/books/$NP_BOOK_MIN"; sleep 0.1; done
np_now_ms; last=$NP_NOW
# during the window (3 s after the last request) the idle holder pings every second
sleep 3.5
during=$(pings)
np_expect "pings during the active window ($during)" test "$during" -ge 1
# after the window (+ one interval): no more
sleep 1.2
settled=$(pings)
sleep 3
after=$(pings)
np_expect_eq "no ping after the window ($settled then $after over 3 s)" "$settled" "$after"
# each idle holder pings on its own connection: at most one per interval each
per_pid=$(grep 'msg="warm-up ping"' "$log" | sed -n 's/.* pid=\([0-9]*\) .*/\1/p' | sort | uniq -c | sort -rn | head -n 1 | awk '{ print $1 }')
np_expect "at most one ping per interval per holder in the window (${per_pid:-0} at most, ${after} in all)" \
	test "${per_pid:-0}" -le 5
np_expect_eq "neonpool_warmup_pings_total agrees with the log" "$after" \
	"$(metric 'neonpool_warmup_pings_total{outcome="ok"}')"
q=$(metric 'neonpool_request_phase_seconds_count{route="pool",phase="query"}')
np_expect "each ping's query time was recorded ($q >= $after)" test "$q" -ge "$after"
np_status_json 'd["warmup"]["last_ping"]["query_ms"]' >"$NP_TMP/out/lastping.txt"
np_expect "/status shows the last ping's query time ($(cat "$NP_TMP/out/lastping.txt") ms)" \
	grep -qE '^[0-9.]+$' "$NP_TMP/out/lastping.txt"
echo "RESULT while-active: 0 pings at rest, $during in the 3 s window, +$((after - settled)) in the 3 s after; cold starts $cold"

# One ping per host per interval, whatever the number of idle holders (issue 19): 4 idle holders,
# warmup_policy = always, interval 1 s. Each holder pinging on its own sent 4 a second.
np_stop_daemon TERM >/dev/null
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" log_level=info \
	workers=4 budget=4 min_warm=4 warmup_policy=always warmup_interval_s=1
np_wait_db_ready
sleep 1.2
n0=$(pings)
sleep 4
n1=$(pings)
holders=$(grep 'msg="warm-up ping"' "$log" | tail -n "$((n1 - n0))" | sed -n 's/.* pid=\([0-9]*\) .*/\1/p' | sort -u | wc -l)
np_expect "4 idle holders, 4 s: at most one ping a second for the host ($((n1 - n0)))" test "$((n1 - n0))" -le 5
np_expect "4 idle holders, 4 s: the host still pings every interval ($((n1 - n0)))" test "$((n1 - n0))" -ge 3
echo "RESULT always, 4 idle holders, interval 1 s: $((n1 - n0)) pings in 4 s from $holders holder(s) (one per holder would be 16)"
np_finish
