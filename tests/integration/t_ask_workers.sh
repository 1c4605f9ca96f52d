#!/usr/bin/env bash
# t_ask_workers.sh - the ask pool (issue 9): with ask_listen, asks are served by np-ask workers through nginx's ask location; with a budget of 1 an idle holder of the main pool gives its connection back to a waiting ask, the pool never holds more than 1 server connection, and no ask worker keeps a token after its ask.
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

sess=$(curl -s -X POST "http://127.0.0.1:$NP_HTTP_PORT/api/v1/sessions")
sid=$(echo "$sess" | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
tok=$(echo "$sess" | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
echo "$tok" >>"$NP_TMP/out/tokens"
word=$(np_psql_super -d neonpool -At -c "SELECT w FROM (SELECT regexp_split_to_table(body, '\s+') w FROM passages LIMIT 5) x WHERE length(w) > 5 LIMIT 1")
np_log "asking about '$word'"

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
np_expect_eq "6 asks through the ask pool: done complete" 6 "$ok"
np_expect_eq "the reads between them: 200" 200 "$NP_STATUS"
np_expect "the asks were served by the ask workers (role=ask.N request lines)" \
	test "$(grep -c 'role=ask\.[0-9]* .*msg=request.*status=200' "$NP_DAEMON_LOG")" -ge 6
np_expect "a holder gave its connection to a waiting ask (budget 1)" \
	grep -q "closing connection to endpoint 0: an ask worker waits" "$NP_DAEMON_LOG"
np_expect "each ask worker gave its connection back after its transactions" \
	test "$(grep -c 'role=ask\.[0-9]* .*giving the connection to endpoint 0 back' "$NP_DAEMON_LOG")" -ge 12
np_expect "the pool's server connections sampled every 50 ms never exceeded 1 (max $max of $n samples)" \
	test "$max" -le 1 -a "$n" -gt 5
sleep 0.3
askpids=$(np_child_pids "$NP_DAEMON_PID" np-ask | tr ' ' '|')
np_expect_eq "after the asks no token is owned by an ask worker" 0 \
	"$(np_status_json 'sum(1 for t in d["endpoints"]["primary"]["tokens"] if str(t["pid"]) in "'"$askpids"'".split("|"))')"
np_expect_eq "status: in_use equals the server's count" "$(np_pool_conns)" \
	"$(np_status_json 'd["endpoints"]["primary"]["in_use"]')"
np_finish
