#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_load.sh - 50 concurrent asks with a 10 s model and a budget of 1: reads of /api/v1/passages/{id} paced every 20 ms meanwhile all answer 200 (their p99 is measured: bench/latency holds it to its goal), the pool's server connections sampled every 50 ms never exceed 1, and while every upstream call is in flight no ask worker owns a token.
# np: shared-pg
# np: serial-beside-build (a count of token samples in the window when all 50 upstream calls are in flight together: more than 5 needed, about 20 taken)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_start_llm_mock
# 10 s per answer: the window when all 50 calls are in flight together must hold samples on a loaded
# machine too (with 5 s answers one run of 50 starting asks left it 1 sample)
curl -s -X POST "http://127.0.0.1:$mport/_control" -d '{"tokens": 50, "tokens_per_s": 5}' >/dev/null

np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=50 workers=2 budget=1 min_warm=1 max_waiters=64 log_level=debug acquire_timeout_ms=$((10000 * NP_TIMEOUT_SCALE)) \
	llm_url="http://127.0.0.1:$mport/v1/chat/completions" llm_gap_timeout_ms=5000
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready
for _ in $(seq 50); do [ "$(np_child_pids "$NP_DAEMON_PID" np-ask | wc -w)" -ge 50 ] && break; sleep 0.1; done

np_session
word=$(np_psql_super -d neonpool -At -c "SELECT w FROM (SELECT regexp_split_to_table(body, '\s+') w FROM passages LIMIT 5) x WHERE length(w) > 5 LIMIT 1")

# reads paced every 20 ms for 14 s, one keep-alive connection to nginx: each latency in ms
"$NP_PYTHON" - "$NP_HTTP_PORT" "$NP_PASSAGE_MIN" "$NP_PASSAGE_MAX" >"$NP_TMP/out/reads.txt" 2>&1 <<'PY' &
import http.client, random, sys, time
port, lo, hi = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
end = time.monotonic() + 14
nxt = time.monotonic()
while time.monotonic() < end:
    t0 = time.monotonic()
    c.request("GET", "/api/v1/passages/%d" % random.randint(lo, hi))
    r = c.getresponse(); r.read()
    print("%d %.3f" % (r.status, (time.monotonic() - t0) * 1000), flush=True)
    nxt += 0.02
    time.sleep(max(0, nxt - time.monotonic()))
PY
reader=$!
# the tokens' owners every 50 ms: "wall ask_owned"
askpids=$(np_child_pids "$NP_DAEMON_PID" np-ask | tr ' ' ',')
"$NP_PYTHON" - "$NEONPOOLCTL" "$NP_CTL_CONF" "$askpids" >"$NP_TMP/out/owners.txt" 2>&1 <<'PY' &
import json, subprocess, sys, time
ctl, conf, pids = sys.argv[1], sys.argv[2], set(sys.argv[3].split(","))
end = time.time() + 14
while time.time() < end:
    out = subprocess.run([ctl, "-c", conf, "status", "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    try:
        toks = json.loads(out)["endpoints"]["primary"]["tokens"]
        print("%.3f %d" % (time.time(), sum(1 for t in toks if str(t["pid"]) in pids)), flush=True)
    except ValueError:
        pass
    time.sleep(0.05)
PY
owners=$!
np_sampler_start
sleep 1
# the 50 asks from one process (threads): 50 interpreters starting at once would measure the
# machine's CPU, not the daemon
"$NP_PYTHON" - "$NP_HTTP_PORT" "$sid" "$tok" "$word" "$NP_TMP/out" <<'PY'
import http.client, json, sys, threading
port, sid, tok, word, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
def one(i):
    res = {"events": []}
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", "/api/v1/sessions/%s/ask" % sid, body=json.dumps({"question": "Question %d about %s?" % (i, word)}),
                  headers={"Content-Type": "application/json", "Authorization": "Bearer " + tok, "Accept": "text/event-stream"})
        r = c.getresponse()
        res["status"] = r.status
        ev, data = None, []
        for line in r:
            line = line.decode().rstrip("\r\n")
            if line.startswith("event:"):
                ev = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                res["events"].append({"event": ev or "message", "data": json.loads("\n".join(data))})
                ev, data = None, []
                if res["events"][-1]["event"] in ("done", "error"):
                    break
    except Exception as e:
        res["exception"] = repr(e)
    with open("%s/ask%d.json" % (out, i), "w") as f:
        json.dump(res, f)
ts = [threading.Thread(target=one, args=(i,)) for i in range(1, 51)]
for t in ts:
    t.start()
for t in ts:
    t.join()
PY
wait "$reader" "$owners"
read -r max n < <(np_sampler_stop)

done_n=0
for i in $(seq 50); do
	[ "$(np_json_get "$NP_TMP/out/ask$i.json" 'd["events"][-1]["event"] + " " + d["events"][-1]["data"].get("status", "")' 2>/dev/null)" = "done complete" ] &&
		done_n=$((done_n + 1))
done
np_expect_eq "50 concurrent asks: done complete" 50 "$done_n"
reads=$(wc -l <"$NP_TMP/out/reads.txt")
non200=$(awk '$1 != 200' "$NP_TMP/out/reads.txt" | wc -l)
p99=$(awk '{print $2}' "$NP_TMP/out/reads.txt" | sort -n | awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; print a[i]}')
p50=$(awk '{print $2}' "$NP_TMP/out/reads.txt" | sort -n | awk '{a[NR]=$1} END {print a[int(NR/2)]}')
echo "RESULT 50 asks (10 s model), budget 1: $reads paced reads p50 $p50 ms p99 $p99 ms, $non200 non-200; server connections max $max in $n samples"
np_measure reads_p99_ms "$p99" "paced passage reads beside 50 streamed asks (budget 1)"
np_expect_eq "the reads meanwhile: all 200" 0 "$non200"
np_expect "the reads meanwhile: every one answered within acquire_timeout_ms ($(awk '{print $2}' "$NP_TMP/out/reads.txt" | sort -n | tail -n 1) ms)" \
	awk -v l=$((10000 * NP_TIMEOUT_SCALE)) '$2 >= l { bad = 1 } END { exit bad }' "$NP_TMP/out/reads.txt"
np_expect "the pool's server connections never exceeded 1 ($max in $n samples)" test "$max" -le 1 -a "$n" -gt 50
# the window when all 50 upstream calls were in flight together
curl -s "http://127.0.0.1:$mport/_log" >"$NP_TMP/out/mocklog.json"
win=$(np_json_get "$NP_TMP/out/mocklog.json" '"%.3f %.3f" % (max(r["t_start"] for r in d), min(r["t_end"] or 0 for r in d))')
read -r w0 w1 <<<"$win"
inwin=$(awk -v a="$w0" -v b="$w1" '$1 >= a && $1 <= b' "$NP_TMP/out/owners.txt" | wc -l)
held=$(awk -v a="$w0" -v b="$w1" '$1 >= a && $1 <= b && $2 > 0' "$NP_TMP/out/owners.txt" | wc -l)
echo "RESULT all 50 upstream calls in flight together for $(awk -v a="$w0" -v b="$w1" 'BEGIN {printf "%d", (b - a) * 1000}') ms: $held of $inwin token samples had an ask worker as owner"
np_expect "while every upstream call was in flight, no ask worker owned a token ($held of $inwin samples)" \
	test "$inwin" -gt 5 -a "$held" -eq 0
np_finish
