#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_cancel_other_host.sh - issue 19: a cancel that lands on another host than the one streaming
# the answer. Two daemons on one database, each with its own shared memory, ask pool and nginx (two
# hosts behind a load balancer, as far as a cancel can tell). An answer streams from one host, its
# cancel is posted to the other: that host finds no maker in its shared memory and stores the answer
# 'stopped'; the maker's host learns it at its next check (ASK_CHECK_MS = 250 ms, while it streams)
# and stops the stream at the maker's next tick. Both ways round: the stream ends within 1 s of the
# cancel's answer, the reader is told 'stopped', and the stored row has the text that was sent.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_start_llm_mock
np_db_prepare
declare -A port
for h in a b; do
	np_start_daemon --name "host-$h" database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
		status_file="$NP_TMP/status-$h" control_listen="$NP_TMP/control-$h.sock" ask_listen="$NP_TMP/ask-$h.sock" \
		ask_workers=2 workers=2 budget=2 min_warm=1 acquire_timeout_ms=$((2000 * NP_TIMEOUT_SCALE)) \
		llm_url="http://127.0.0.1:$mport/v1/chat/completions" llm_first_token_timeout_ms=$((3000 * NP_TIMEOUT_SCALE))
	np_start_nginx "unix:$NP_TMP/host-$h.sock" "" "nginx-$h" "unix:$NP_TMP/control-$h.sock" "unix:$NP_TMP/ask-$h.sock"
	port[$h]=$NP_HTTP_PORT
	np_wait_db_ready
done
# 200 tokens at 20 a second: an answer that would stream for 10 s
curl -s -X POST "http://127.0.0.1:$mport/_control" -d '{"tokens": 200, "tokens_per_s": 20}' >/dev/null
np_session
deltas='"".join(e["data"]["delta"] for e in d["events"] if e["event"] == "message")'

for pair in "a b" "b a"; do
	set -- $pair
	out=$NP_TMP/out/ask-$1-cancel-$2.json
	"$NP_PYTHON" "$np_top/tests/integration/ask_client.py" "${port[$1]}" "$sid" "$tok" "How does VACUUM reclaim space?" \
		--sse --cancel-after-deltas 5 --cancel-port "${port[$2]}" --timeout 20 >"$out"
	read -r cst cbody end_ev end_status lag < <(np_json_get "$out" '"%s %s %s %s %.0f" % (d["cancel"]["status"],
		d["cancel"]["body"].get("status"), d["events"][-1]["event"], d["events"][-1]["data"].get("status"),
		d["t_end_ms"] - d["cancel"]["t_ms"])')
	np_expect_eq "streamed by $1, cancelled on $2: the cancel answers 200 stopped" "200 stopped" "$cst $cbody"
	np_expect_eq "streamed by $1, cancelled on $2: the stream ends with done, status stopped" "done stopped" "$end_ev $end_status"
	np_expect "streamed by $1, cancelled on $2: it ended within 1 s of the cancel ($lag ms)" test "$lag" -lt 1000
	mid=$(np_json_get "$out" 'd["events"][0]["data"]["message_id"]')
	sent=$(np_json_get "$out" "$deltas")
	np_expect "streamed by $1, cancelled on $2: some text was sent first" test -n "$sent"
	row=$(np_psql_super -d "$NP_PG_DB" -At -c "SELECT status FROM messages WHERE id = $mid")
	np_expect_eq "streamed by $1, cancelled on $2: stored stopped" stopped "$row"
	np_psql_super -d "$NP_PG_DB" -At -c "SELECT content FROM messages WHERE id = $mid" >"$NP_TMP/out/stored-$1.txt"
	printf '%s\n' "$sent" >"$NP_TMP/out/sent-$1.txt"
	np_expect "streamed by $1, cancelled on $2: the stored text is the text that was sent" \
		cmp -s "$NP_TMP/out/sent-$1.txt" "$NP_TMP/out/stored-$1.txt"
	echo "RESULT streamed by host $1, cancel posted to host $2: the stream ended $lag ms after the cancel's answer, stored $row"
done
streaming=$(np_psql_super -d "$NP_PG_DB" -At -c "SELECT count(*) FROM messages WHERE status = 'streaming'")
np_expect_eq "no answer left streaming" 0 "$streaming"
np_finish
