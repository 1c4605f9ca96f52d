#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_metrics_prometheus.sh - a real Prometheus (Debian's package, on loopback, scrape_interval 1s)
# scrapes /metrics through nginx during a wrk run: promtool check metrics passes on a scrape, the
# target is up, neonpool_http_request_duration_seconds_count rises by exactly the requests wrk
# made (nginx's access log counts them, those cut off at wrk's end included), histogram_quantile
# (0.99) over the run agrees with the p99 of nginx's $request_time within one bucket; then the
# counters stay monotonic on consecutive scrapes across 20 kill -9 of workers and a reload.
# np: shared-pg
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx wrk prometheus promtool
# a paced background load (dblib.sh np_wrk_script): requests in flight, not both cores taken
: "${NP_WRK_DELAY_MS:=5}"; export NP_WRK_DELAY_MS

np_db_start workers=4 budget=2 min_warm=2
url=http://127.0.0.1:$NP_HTTP_PORT

# Prometheus in the temp dir, scraping nginx's /metrics every second
pport=$(np_free_port) || np_fail "no free port"
mkdir -p "$NP_TMP/prom/data"
cat >"$NP_TMP/prom/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: neonpool
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:$NP_HTTP_PORT']
YML
promtool check config "$NP_TMP/prom/prometheus.yml" >"$NP_TMP/out/promtool-config.txt" 2>&1 ||
	np_fail "promtool check config: $(cat "$NP_TMP/out/promtool-config.txt")"
(exec setsid prometheus --config.file="$NP_TMP/prom/prometheus.yml" --storage.tsdb.path="$NP_TMP/prom/data" \
	--web.listen-address="127.0.0.1:$pport" --log.level=warn) </dev/null >"$NP_TMP/prom/prometheus.log" 2>&1 &
NP_FRONT_PIDS+=("$!")
np_wait_port "$pport" 30 || np_fail "prometheus did not listen: $(tail -n 5 "$NP_TMP/prom/prometheus.log")"
papi=http://127.0.0.1:$pport/api/v1

# promq EXPR [TIME]: the first value of an instant query ("" when none)
promq() {
	local -a t=()
	[ -n "${2:-}" ] && t=(--data-urlencode "time=$2")
	curl -sS --max-time 5 "$papi/query" --data-urlencode "query=$1" "${t[@]}" 2>/dev/null |
		"$NP_PYTHON" -c 'import json,sys
d = json.load(sys.stdin)["data"]["result"]
print(d[0]["value"][1] if d else "")' 2>/dev/null
}
# wait_up: the target up, and a scrape newer than now
wait_scraped() {
	local t0 deadline v
	t0=$(date +%s.%N)
	deadline=$(( $(date +%s) + $(np_scaled 30) ))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		v=$(promq "timestamp(up{job=\"neonpool\"})")
		if [ -n "$v" ] && "$NP_PYTHON" -c "import sys; sys.exit(0 if float('$v') > $t0 else 1)"; then
			return 0
		fi
		sleep 0.3
	done
	return 1
}
np_expect "Prometheus scraped the target" wait_scraped
np_expect_eq "Prometheus reports the target up" 1 "$(promq 'up{job="neonpool"}')"
health=$(curl -sS "$papi/targets" | "$NP_PYTHON" -c 'import json,sys
t = [x for x in json.load(sys.stdin)["data"]["activeTargets"] if x["labels"]["job"] == "neonpool"]
print(t[0]["health"] if t else "none", t[0]["lastError"] if t else "")')
np_expect_eq "its target health (and no scrape error)" "up " "$health"

# promtool check metrics on one scrape (lint included)
np_promtool_scrape

# the wrk run: count in Prometheus before and after, requests in nginx's access log (one read
# first, so that the route's series exist before the run and a difference over it is defined)
np_curl "/api/v1/books/$NP_BOOK_MIN"
np_expect "a scrape after the first read" wait_scraped
count='sum(neonpool_http_request_duration_seconds_count{job="neonpool",route="books.get"})'
c0=$(promq "$count"); c0=${c0:-0}
t0=$(date +%s.%N)
log_before=$(wc -l <"$NP_TMP/nginx/access.log")
sleep 1.5 # the difference below starts at t0 + < 1 s: before wrk's first request
wrk -t2 -c8 -d5s -s "$NP_TMP/books.lua" "$url/" >"$NP_TMP/out/wrk.out" 2>&1
sleep 0.5
made=$(tail -n +"$((log_before + 1))" "$NP_TMP/nginx/access.log" | grep -c '"GET /api/v1/books/')
wrk_done=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$NP_TMP/out/wrk.out")
np_expect "wait for two scrapes after the run" wait_scraped
sleep 1.2
np_expect "wait for two scrapes after the run" wait_scraped
t1=$(date +%s.%N)
c1=$(promq "$count")
np_expect_eq "the count rose by exactly the requests wrk made ($made in nginx's log, $wrk_done completed by wrk)" \
	"$made" "$(( ${c1%.*} - ${c0%.*} ))"
np_expect "wrk's completed requests are all among them" test "${wrk_done:-0}" -le "$made" -a "${wrk_done:-0}" -gt 100

# p99 over the run: Prometheus' histogram_quantile of the bucket increase vs nginx's $request_time
span=$("$NP_PYTHON" -c "print(int($t1 - $t0))")
b='neonpool_http_request_duration_seconds_bucket{job="neonpool",route="books.get"}'
pq=$(promq "histogram_quantile(0.99, sum by (le) ($b - $b offset ${span}s))" "$t1")
np99=$(tail -n +"$((log_before + 1))" "$NP_TMP/nginx/access.log" | grep '"GET /api/v1/books/' |
	sed -n 's/.* rt=\([0-9.]*\) .*/\1/p' | sort -n | "$NP_PYTHON" -c 'import math,sys
v = [float(x) for x in sys.stdin]
print(v[max(0, math.ceil(0.99 * len(v)) - 1)] if v else "")')
# the bucket of each: index in the ladder of le bounds
ladder="0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30"
bucket_of() { "$NP_PYTHON" -c "import sys
l = [float(x) for x in '$ladder'.split()]
v = float(sys.argv[1])
print(next((i for i, b in enumerate(l) if v <= b), len(l)))" "$1"; }
if [ -n "$pq" ] && [ -n "$np99" ] && [ "$pq" != NaN ]; then
	# $request_time has millisecond resolution (truncated): nginx's p99 lies in [rt, rt + 1 ms);
	# the daemon's counts the backlog from $msec, truncated too (up to 1 ms more)
	bp=$(bucket_of "$pq"); bn=$(bucket_of "$np99")
	bn2=$(bucket_of "$("$NP_PYTHON" -c "print($np99 + 0.001)")")
	d=$((bp - bn)); d=${d#-}
	d2=$((bp - bn2)); d2=${d2#-}
	[ "$d2" -lt "$d" ] && d=$d2
	np_expect "histogram_quantile(0.99) ${pq} s and nginx's p99 ${np99} s are within one bucket (buckets $bp, $bn)" \
		test "$d" -le 1
else
	np_not_ok "a p99 from both (prometheus '$pq', nginx '$np99')"
fi

# counters across 20 kill -9 of workers and a reload, scraped every 0.2 s
( while :; do
	curl -sS --max-time 2 "$url/metrics" -o "$NP_TMP/out/s.$(date +%s%N).txt" 2>/dev/null
	sleep 0.2
done ) &
scraper=$!
wrk -t2 -c4 -d60s -s "$NP_TMP/books.lua" "$url/" >"$NP_TMP/out/wrk2.out" 2>&1 &
wrk2=$!
sleep 0.5
kills=0 reloaded=0
while [ "$kills" -lt 20 ]; do
	victim=$(np_worker_pids | tr ' ' '\n' | shuf -n 1)
	[ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null && kills=$((kills + 1))
	sleep 0.25
	if [ "$kills" -ge 10 ] && [ "$reloaded" = 0 ]; then kill -HUP "$NP_DAEMON_PID"; reloaded=1; fi
done
sleep 1
kill "$wrk2" 2>/dev/null; wait "$wrk2" 2>/dev/null
sleep 0.5
kill "$scraper"; wait "$scraper" 2>/dev/null
# every counter, histogram bucket, _sum and _count: never lower than on the scrape before
ls "$NP_TMP"/out/s.*.txt | sort >"$NP_TMP/out/scrapes.txt"
verdict=$("$NP_PYTHON" - "$NP_TMP/out/scrapes.txt" <<'PY'
import sys
files = [l.strip() for l in open(sys.argv[1]) if l.strip()]
prev, n, series, back = None, 0, 0, []
for f in files:
    cur, types = {}, {}
    text = open(f).read()
    if not text.endswith("\n") or "neonpool_start_time_seconds" not in text:
        continue  # a cut-off scrape (curl timeout)
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, t = line.split()
            types[name] = t
        elif line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            base = k.split("{")[0]
            for suf in ("_bucket", "_sum", "_count"):
                if base.endswith(suf) and types.get(base[: -len(suf)]) == "histogram":
                    base = base[: -len(suf)]
            if types.get(base) in ("counter", "histogram"):
                cur[k] = float(v)
    if prev is not None:
        for k, v in prev.items():
            if k in cur and cur[k] < v:
                back.append("%s: %s -> %s" % (k, v, cur[k]))
    prev, n = cur, n + 1
    series = max(series, len(cur))
print(n, series, len(back), "; ".join(back[:3]))
PY
)
read -r nscr nser nback detail <<<"$verdict"
np_expect "at least 20 complete scrapes ($nscr)" test "${nscr:-0}" -ge 20
np_expect_eq "no counter went backwards over $nscr scrapes of $nser series ${detail}" 0 "$nback"
crashes=$(np_status_json 'd["crashes_total"]')
np_expect "20 kill -9 delivered ($kills; the master counted $crashes crashes)" test "$kills" -eq 20 -a "${crashes:-0}" -ge 10
np_expect_eq "Prometheus saw no counter reset" 0 \
	"$(promq 'sum(resets(neonpool_http_request_duration_seconds_count{job="neonpool"}[5m])) + sum(resets(neonpool_http_requests_total{job="neonpool"}[5m]))')"
echo "RESULT prometheus: +$((${c1%.*} - ${c0%.*})) counted for $made made (wrk completed $wrk_done); p99 prometheus ${pq} s vs nginx ${np99} s; $nscr scrapes across 20 kill -9 + reload: $nback decreases"
np_finish
