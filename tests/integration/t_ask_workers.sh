#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_workers.sh - the ask pool (issue 9): with ask_listen, asks are served by np-ask workers through nginx's ask location; their two short transactions run in the main pool (internal requests), so with a budget of 1 the pool never holds more than 1 server connection and no ask worker ever owns a token.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=2 workers=2 budget=1 min_warm=1 log_level=debug acquire_timeout_ms=$((2000 * NP_TIMEOUT_SCALE))
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready

np_expect_eq "two np-ask workers" 2 "$(np_child_pids "$NP_DAEMON_PID" np-ask | wc -w)"
np_expect_eq "two np-worker workers" 2 "$(np_worker_pids | wc -w)"

np_session
word=$(np_psql_super -d neonpool -At -c "SELECT w FROM (SELECT regexp_split_to_table(body, '\s+') w FROM passages LIMIT 5) x WHERE length(w) > 5 LIMIT 1")
np_log "asking about '$word'"

askpids=$(np_child_pids "$NP_DAEMON_PID" np-ask | tr ' ' ',')
# the tokens' owners every 20 ms while the asks run: how many belong to ask workers
"$NP_PYTHON" - "$NEONPOOLCTL" "$NP_CTL_CONF" "$askpids" "$NP_TMP/out/stop-owners" >"$NP_TMP/out/owners.txt" 2>&1 <<'PY' &
import json, os, subprocess, sys, time
ctl, conf, pids, stop = sys.argv[1], sys.argv[2], set(sys.argv[3].split(",")), sys.argv[4]
while not os.path.exists(stop):
    out = subprocess.run([ctl, "-c", conf, "status", "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    try:
        toks = json.loads(out)["endpoints"]["primary"]["tokens"]
        print(sum(1 for t in toks if str(t["pid"]) in pids), flush=True)
    except ValueError:
        pass
    time.sleep(0.02)
PY
owners=$!
np_sampler_start
ok=0
for i in 1 2 3 4 5 6; do
	"$NP_PYTHON" "$np_top/tests/integration/ask_client.py" "$NP_HTTP_PORT" "$sid" "$tok" "What is $word? ($i)" --sse \
		>"$NP_TMP/out/ask$i.json"
	[ "$(np_json_get "$NP_TMP/out/ask$i.json" 'd["events"][-1]["event"] + " " + d["events"][-1]["data"]["status"]')" = "done complete" ] &&
		ok=$((ok + 1))
	np_curl "/api/v1/passages/$NP_PASSAGE_MIN"
done
read -r max n < <(np_sampler_stop)
touch "$NP_TMP/out/stop-owners"
wait "$owners"
np_expect_eq "6 asks through the ask pool: done complete" 6 "$ok"
np_expect_eq "the reads between them: 200" 200 "$NP_STATUS"
np_expect "the asks were served by the ask workers (role=ask.N request lines)" \
	test "$(grep -c 'role=ask\.[0-9]* .*msg=request.*status=200' "$NP_DAEMON_LOG")" -ge 6
np_expect "their transactions ran in the main pool (12 internal requests, role=worker.N, request_id ...-tx)" \
	test "$(grep -c 'role=worker\.[0-9]* .*msg=request request_id=[0-9a-f]*-tx .*status=200' "$NP_DAEMON_LOG")" -ge 12
np_expect "no ask worker ever owned a token ($(wc -l <"$NP_TMP/out/owners.txt") samples every 20 ms)" \
	bash -c "[ \$(wc -l <'$NP_TMP/out/owners.txt') -gt 5 ] && ! grep -qv '^0\$' '$NP_TMP/out/owners.txt'"
np_expect "the pool's server connections sampled every 50 ms never exceeded 1 (max $max of $n samples)" \
	test "$max" -le 1 -a "$n" -gt 5
np_expect_eq "status: in_use equals the server's count" "$(np_pool_conns)" \
	"$(np_status_json 'd["endpoints"]["primary"]["in_use"]')"
np_finish
