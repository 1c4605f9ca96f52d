#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_prometheus_contrib.sh - contrib/prometheus/ against the real thing: the scrape config and the
# alert rules pass promtool check; `promtool test rules` passes (every alert fires in one case and
# stays silent in another); a real Prometheus loads that config (target and intervals replaced)
# and scrapes a daemon through nginx: every rule evaluates with health ok and none fires for a
# healthy daemon (database down, budget saturated, shedding, crash loop), and every query of the Grafana dashboard evaluates without error (the
# dashboard's variables replaced as Grafana would).
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx prometheus promtool

contrib=$np_top/contrib/prometheus
mkdir -p "$NP_TMP/prom/data"
cp "$contrib/neonpool-rules.yml" "$contrib/neonpool-rules.test.yml" "$NP_TMP/prom/"
promtool check config "$contrib/neonpool-scrape.yml" >"$NP_TMP/out/check-config.txt" 2>&1
rc=$?
np_expect "promtool check config: the scrape config and its rules ($(grep -o '[0-9]* rules found' "$NP_TMP/out/check-config.txt"))" \
	test "$rc" = 0
nrules=$(grep -c '^ *- alert: ' "$contrib/neonpool-rules.yml")
ntests=$(grep -c '^ *alertname: ' "$contrib/neonpool-rules.test.yml")
if (cd "$NP_TMP/prom" && promtool test rules neonpool-rules.test.yml) >"$NP_TMP/out/test-rules.txt" 2>&1; then
	np_ok "promtool test rules: $ntests alert checks over $nrules alerts"
else
	np_not_ok "promtool test rules: $(head -n 20 "$NP_TMP/out/test-rules.txt")"
fi
# every alert has a case where it fires (exp_labels) and one where it does not (instance good)
untested=$(sed -n 's/^ *- alert: //p' "$contrib/neonpool-rules.yml" | while read -r a; do
	grep -q "alertname: $a\$" "$contrib/neonpool-rules.test.yml" || echo "$a"; done)
np_expect_eq "every alert has its test cases" "" "$untested"

np_db_start workers=2 budget=2 min_warm=1
pport=$(np_free_port) || np_fail "no free port"
sed -e "s|127\.0\.0\.1:8080|127.0.0.1:$NP_HTTP_PORT|" -e 's/_interval: 15s/_interval: 1s/' \
	-e 's|scrape_timeout: 5s|scrape_timeout: 900ms|' "$contrib/neonpool-scrape.yml" >"$NP_TMP/prom/prometheus.yml"
(exec setsid prometheus --config.file="$NP_TMP/prom/prometheus.yml" --storage.tsdb.path="$NP_TMP/prom/data" \
	--web.listen-address="127.0.0.1:$pport" --log.level=warn) </dev/null >"$NP_TMP/prom/prometheus.log" 2>&1 &
NP_FRONT_PIDS+=("$!")
np_wait_port "$pport" 30 || np_fail "prometheus did not listen: $(tail -n 5 "$NP_TMP/prom/prometheus.log")"
papi=http://127.0.0.1:$pport/api/v1

# some traffic, so that the rates and quantiles have samples: reads, a 404, a session
for i in $(seq 1 20); do np_curl "/api/v1/books/$NP_BOOK_MIN"; done
np_curl /api/v1/nope
np_curl -X POST /api/v1/sessions
# two scrapes after the traffic, and the rules evaluated after them
t0=$(date +%s)
scraped() {
	curl -sS --max-time 5 "$papi/query" --data-urlencode 'query=count_over_time(up{job="neonpool"}[1m])' |
		"$NP_PYTHON" -c 'import json,sys
r = json.load(sys.stdin)["data"]["result"]
sys.exit(0 if r and float(r[0]["value"][1]) >= 3 else 1)' 2>/dev/null
}
for _ in $(seq 1 $((60 * NP_TIMEOUT_SCALE))); do scraped && break; sleep 0.5; done
np_expect "Prometheus scraped the daemon 3 times ($(( $(date +%s) - t0 )) s after the traffic)" scraped
sleep 2

# every dashboard query, the variables as Grafana substitutes them (All = .*)
"$NP_PYTHON" - "$contrib/neonpool-dashboard.json" "$papi" >"$NP_TMP/out/dashboard.txt" <<'PY'
import json, sys, urllib.parse, urllib.request
d = json.load(open(sys.argv[1]))
api = sys.argv[2]
n = bad = nonempty = 0
for p in d["panels"]:
    for t in p["targets"]:
        e = t["expr"].replace("$__rate_interval", "1m").replace("$instance", ".*")
        n += 1
        try:
            with urllib.request.urlopen(api + "/query?" + urllib.parse.urlencode({"query": e}), timeout=10) as r:
                res = json.load(r)
            ok = res.get("status") == "success"
            got = len(res["data"]["result"]) if ok else 0
        except Exception as x:  # a 400 (bad query) raises
            ok, got = False, 0
            print("error", p["title"], e, x)
        bad += not ok
        nonempty += got > 0
        print("query", "ok" if ok else "FAILED", got, p["title"], "|", e)
# the variable's query: label_values(neonpool_build_info, instance)
with urllib.request.urlopen(api + "/label/instance/values?" + urllib.parse.urlencode({"match[]": "neonpool_build_info"}), timeout=10) as r:
    inst = json.load(r)["data"]
print("RESULT", n, bad, nonempty, len(inst))
PY
read -r _ nq nbad nnonempty ninst < <(grep '^RESULT ' "$NP_TMP/out/dashboard.txt")
np_expect_eq "every dashboard query evaluates without error ($nq queries, $nnonempty with data)" "0" "${nbad:-x}"
np_expect "the queries were run" test "${nq:-0}" -ge 15
np_expect_eq "the dashboard's instance variable finds the daemon" 1 "$ninst"
np_expect "the main panels have data (requests, p99, budget, workers)" bash -c "
	for t in 'Requests by route' 'p99 by route' 'Connection budget in use' 'Workers by kind and state'; do
		grep -q \"^query ok [1-9][0-9]* \$t |\" '$NP_TMP/out/dashboard.txt' || exit 1
	done"

# the rules as Prometheus runs them: all loaded, evaluated with health ok, none firing
rules=$(curl -sS --max-time 5 "$papi/rules" | "$NP_PYTHON" -c 'import json,sys
g = json.load(sys.stdin)["data"]["groups"]
r = [x for grp in g for x in grp["rules"]]
print(len(r), sum(1 for x in r if x.get("health") == "ok" and x.get("lastEvaluation", "").startswith("2")),
      # the rules a healthy daemon cannot trip on any machine load (a latency rule may be
      # pending on a loaded machine: none can fire within this test, every rule has a `for`)
      sum(1 for x in r if x.get("state") != "inactive" and x["name"] in
          ("NeonpoolDatabaseDown", "NeonpoolBudgetSaturated", "NeonpoolShedding", "NeonpoolCrashLoop")),
      ",".join(x["name"] for x in r if x.get("health") != "ok"))')
read -r rn rok rfiring rbad <<<"$rules"
np_expect_eq "Prometheus loaded the $nrules alert rules" "$nrules" "$rn"
np_expect_eq "each evaluated with health ok ${rbad:-}" "$nrules" "$rok"
np_expect_eq "database down, budget saturated, shedding, crash loop: inactive for a healthy daemon" 0 "$rfiring"
echo "RESULT prometheus contrib: $nrules alert rules, $ntests promtool rule checks passed; Prometheus evaluated $rok/$rn rules ok, $rfiring firing; $nq dashboard queries, $nbad errors, $nnonempty with data; $(( $(date +%s) - t0 )) s after the traffic"
np_finish
