#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_reload_one_supervisor.sh - 20 SIGHUP reloads under wrk load: never two supervisors alive at once (one janitor, one breaker writing the shared state), and the pool's server connections sampled every 50 ms never above the budget.
# np: long (waits more than it computes: started early, so that it does not end the run)
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx curl
# a paced background load (dblib.sh np_wrk_script): requests in flight, not both cores taken
: "${NP_WRK_DELAY_MS:=100}"; export NP_WRK_DELAY_MS

budget=4
np_db_start workers=8 budget=$budget min_warm=2
reloads=${NP_RELOADS:-20}
gap_ms=500

# The master's live np-supervisor children, every 5 ms (zombies are dead: they write nothing);
# and the supervisor pid the shared memory names. One line per sample: "count pids shm_pid".
"$NP_PYTHON" - "$NP_DAEMON_PID" "$NP_TMP/status" >"$NP_TMP/out/supervisors.txt" 2>"$NP_TMP/out/supsampler.err" <<'PY' &
import os, struct, sys, time
master, status = sys.argv[1], sys.argv[2]
def live_supervisors():
    out = []
    try:
        kids = open("/proc/%s/task/%s/children" % (master, master)).read().split()
    except OSError:
        return None
    for k in kids:
        try:
            st = open("/proc/%s/stat" % k).read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        state = st[st.rindex(")") + 2]
        if comm == "np-supervisor" and state not in "ZX":
            out.append(k)
    return out
while True:
    s = live_supervisors()
    if s is None:
        break
    print(len(s), ",".join(s) or "-", flush=True)
    time.sleep(0.005)
PY
sup_sampler=$!
np_sampler_start
duration=$(( (reloads * gap_ms) / 1000 + 5 ))
wrk -t2 -c100 -d"${duration}s" -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
sleep 2
for i in $(seq 1 "$reloads"); do
	kill -HUP "$NP_DAEMON_PID"
	sleep "0.$gap_ms"
done
wait "$wrk_pid"
sleep 1
read -r max samples < <(np_sampler_stop)
kill "$sup_sampler" 2>/dev/null
wait "$sup_sampler" 2>/dev/null

np_expect_eq "the master logged $reloads reloads" "$reloads" "$(grep -c 'msg="configuration reloaded"' "$NP_DAEMON_LOG")"
sup_samples=$(wc -l <"$NP_TMP/out/supervisors.txt")
sup_max=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$NP_TMP/out/supervisors.txt")
sup_two=$(awk '$1 > 1 { n++ } END { print n + 0 }' "$NP_TMP/out/supervisors.txt")
np_expect "the process sampler ran ($sup_samples samples)" test "$sup_samples" -gt 100
np_expect_eq "samples with two supervisors alive" 0 "$sup_two"
# The master's own order of events: a supervisor is started only when every earlier one has
# been reaped (a child is alive, for the master, from its fork to its reap).
overlap=$(awk '
	/role=master/ && /msg="supervisor started"/ { if (live > 0) n++; live++ }
	/role=master/ && /child=supervisor/ && !/msg="supervisor started"/ && /child_pid=/ { if (live > 0) live-- }
	END { print n + 0 }' "$NP_DAEMON_LOG")
started=$(grep -c 'msg="supervisor started"' "$NP_DAEMON_LOG")
np_expect_eq "supervisors started while another was alive (master log, $started started)" 0 "$overlap"
# reloads that come while a handover is pending share its new supervisor (how many there are depends
# on how fast the old one leaves, i.e. on the machine's load): the one alive at the end is of the
# last reload's generation
last_gen=$(grep 'msg="configuration reloaded"' "$NP_DAEMON_LOG" | tail -n 1 | sed -n 's/.* generation=\([0-9]*\).*/\1/p')
sup_gen=$(grep 'msg="supervisor started"' "$NP_DAEMON_LOG" | tail -n 1 | sed -n 's/.* generation=\([0-9]*\).*/\1/p')
np_expect "new supervisors across the reloads ($started started)" test "$started" -ge 2
np_expect_eq "the last supervisor started is of the last reload's generation" "$last_gen" "$sup_gen"
live=$(np_child_pids "$NP_DAEMON_PID" np-supervisor)
np_expect_eq "one supervisor at the end" 1 "$(echo "$live" | wc -w)"
np_expect_eq "the status names it" "$live" "$(np_status_json 'd["supervisor_pid"]')"
np_expect "the sampler took samples ($samples)" test "$samples" -gt $((duration * 5))
np_expect "pool connections never above the budget of $budget (max $max over $samples samples)" test "$max" -le "$budget"
# The gap without a supervisor: from the old one's reap to the new one's start (master log, ms).
gaps=$("$NP_PYTHON" - "$NP_DAEMON_LOG" <<'PY'
import re, sys, datetime
t = lambda l: datetime.datetime.strptime(re.search(r"ts=(\S+)Z", l).group(1), "%Y-%m-%dT%H:%M:%S.%f").timestamp()
gone, gaps = None, []
for l in open(sys.argv[1]):
    if "role=master" not in l or "child=supervisor" not in l and 'msg="supervisor started"' not in l:
        continue
    if 'msg="supervisor started"' in l:
        if gone is not None:
            gaps.append(1000 * (t(l) - gone))
        gone = None
    else:
        gone = t(l)
print("%d gaps, max %.0f ms" % (len(gaps), max(gaps)) if gaps else "no gaps")
PY
)
np_log "supervisor handovers: $gaps"

# A retiring supervisor that does not leave (stopped) is killed after the deadline, then replaced.
old=$live
kill -STOP "$old"
np_now_ms; t0=$NP_NOW
kill -HUP "$NP_DAEMON_PID"
new=""
while [ $((NP_NOW - t0)) -lt $((10000 * NP_TIMEOUT_SCALE)) ]; do
	np__child_pids "$NP_DAEMON_PID" np-supervisor; new=$NP_PIDS
	[ -n "$new" ] && [ "$new" != "$old" ] && break
	sleep 0.05
	np_now_ms
done
np_now_ms
np_expect "a stuck supervisor was killed and replaced ($((NP_NOW - t0)) ms)" test -n "$new" -a "$new" != "$old"
np_expect "the master said so" grep -q "supervisor pid $old .*did not leave within" "$NP_DAEMON_LOG"
np_expect "the stuck one is gone" bash -c "! kill -0 $old 2>/dev/null"
replaced_ms=$((NP_NOW - t0))

non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$NP_TMP/out/wrk.out")
rps=$(sed -n 's/^Requests\/sec: *//p' "$NP_TMP/out/wrk.out")
stats=$(np_access_stats "$NP_TMP/nginx/access.log")
np_expect "no 502/504 from nginx ($stats)" bash -c "! grep -qE '\" 50[24] ' '$NP_TMP/nginx/access.log'"
echo "RESULT $reloads reloads every ${gap_ms} ms under wrk -c100 ${duration}s ($rps req/s, non-2xx ${non2xx:-0}; $stats): live supervisors max $sup_max over $sup_samples samples (5 ms), $sup_two with two; master log overlaps $overlap of $started starts; pool connections max $max of $budget over $samples samples; handovers: $gaps; a stopped supervisor replaced after $replaced_ms ms"
np_finish
