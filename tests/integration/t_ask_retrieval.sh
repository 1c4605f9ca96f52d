#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_retrieval.sh - the ask turn without llm_url (issue 9, retrieval mode) on the PostgreSQL manual: a VACUUM question cites passages of Routine Vacuuming that contain its terms, as SSE and as JSON; the answer is stored complete with its citations; Idempotency-Key replays it; the worker keeps its connection (retrieval mode calls no model).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

manual=${NP_MANUAL_DIR:-/usr/share/doc/postgresql-doc-15/html}
[ -f "$manual/index.html" ] || np_skip "no PostgreSQL manual at $manual (Debian package postgresql-doc-15)"

NP_SEED_BOOKS=1
np_db_prepare
np_psql_super -d neonpool -c "DELETE FROM books WHERE slug LIKE 'sample-book-%'" >/dev/null
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" workers=2 budget=2 min_warm=1 \
	log_level=debug acquire_timeout_ms=$((2000 * NP_TIMEOUT_SCALE))
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
np_wait_db_ready
"$NEONPOOLCTL" -c "$NP_CTL_CONF" import "$manual" >"$NP_TMP/out/import.out" 2>&1 ||
	np_fail "import failed: $(tail -n 5 "$NP_TMP/out/import.out")"
np_psql_super -d neonpool -c "ANALYZE" >/dev/null

np_session
ask() { "$NP_PYTHON" "$np_top/tests/integration/ask_client.py" "$NP_HTTP_PORT" "$sid" "$tok" "$@"; }
q="How does VACUUM reclaim the disk space of dead rows?"

# --- SSE ---
before=$(grep -c "giving the connection to endpoint 0 back" "$NP_DAEMON_LOG")
ask "$q" --sse >"$NP_TMP/out/sse.json"
j() { np_json_get "$1" "$2"; }
np_expect_eq "SSE: 200 text/event-stream" "200 text/event-stream; charset=utf-8" \
	"$(j "$NP_TMP/out/sse.json" 'd["status"]') $(j "$NP_TMP/out/sse.json" 'd["headers"]["content-type"]')"
np_expect_eq "SSE: citations first, then deltas, then done" "citations message done" \
	"$(j "$NP_TMP/out/sse.json" '" ".join(dict.fromkeys(e["event"] for e in d["events"]))')"
np_expect_eq "SSE: mode retrieval" retrieval "$(j "$NP_TMP/out/sse.json" 'd["events"][0]["data"]["mode"]')"
mid=$(j "$NP_TMP/out/sse.json" 'd["events"][0]["data"]["message_id"]')
np_expect_eq "SSE: done names the answer's message id and status complete" "$mid complete" \
	"$(j "$NP_TMP/out/sse.json" 'd["events"][-1]["data"]["message_id"] + " " + d["events"][-1]["data"]["status"]')"
answer=$(j "$NP_TMP/out/sse.json" '"".join(e["data"]["delta"] for e in d["events"] if e["event"] == "message")')
np_log "answer: ${answer:0:300}"
used=$(j "$NP_TMP/out/sse.json" '",".join(str(n) for n in d["events"][-1]["data"]["citations_used"])')
np_expect "SSE: the answer cites passages ($used)" test -n "$used"
# the cited passages: their chapters and whether they contain the question's terms
j "$NP_TMP/out/sse.json" '"\n".join("%s %s|%s" % (c["n"], c["passage_id"], c["chapter"]) for c in d["events"][0]["data"]["citations"] if c["n"] in d["events"][-1]["data"]["citations_used"])' >"$NP_TMP/out/cited.txt"
np_log "cited: $(paste -sd ';' "$NP_TMP/out/cited.txt")"
np_expect "SSE: the first cited passage is in Routine Vacuuming" bash -c "head -n 1 '$NP_TMP/out/cited.txt' | grep -q '|[0-9.]* *Routine Vacuuming\$'"
ids=$(awk '{print $2}' "$NP_TMP/out/cited.txt" | cut -d'|' -f1 | paste -sd,)
bad=$(np_psql_super -d neonpool -At -c "SELECT count(*) FROM passages WHERE id IN ($ids) AND NOT (tsv @@ to_tsquery('english', 'vacuum'))")
np_expect_eq "SSE: every cited passage contains 'vacuum'" 0 "$bad"
np_expect "SSE: every [n] of the answer is a citation" bash -c "
	for n in \$(grep -o '\[[0-9]*\]' <<<'${answer//\'/}' | tr -d '[]' | sort -u); do grep -q \"^\$n \" '$NP_TMP/out/cited.txt' || exit 1; done"
stored=$(np_psql_super -d neonpool -At -c "SELECT status || '|' || md5(content) || '|' || array_to_string(citations_used, ',') || '|' || jsonb_array_length(citations) FROM messages WHERE id = $mid")
md5=$(j "$NP_TMP/out/sse.json" '__import__("hashlib").md5("".join(e["data"]["delta"] for e in d["events"] if e["event"] == "message").rstrip(" ").encode()).hexdigest()')
np_expect_eq "stored: complete, the streamed text, the used citations, 5 citations" "complete|$md5|$used|5" "$stored"
after=$(grep -c "giving the connection to endpoint 0 back" "$NP_DAEMON_LOG")
np_expect_eq "retrieval mode: the worker kept its connection through the ask (no model call to give it back for)" \
	"$before" "$after"

# --- the history lists the question and the answer with its status and citations ---
np_curl "/api/v1/sessions/$sid/messages" -H "Authorization: Bearer $tok"
np_expect_eq "history: answer then question, the answer complete with its citations" "assistant complete 5 user complete" \
	"$(j "$NP_TMP/http.body" '"%s %s %d %s %s" % (d["messages"][0]["role"], d["messages"][0]["status"], len(d["messages"][0]["citations"]), d["messages"][1]["role"], d["messages"][1]["status"])')"

# --- JSON, with an Idempotency-Key ---
ask "What does the autovacuum daemon do?" --key k-1 >"$NP_TMP/out/json1.json"
np_expect_eq "JSON: 200 retrieval complete" "200 retrieval complete" \
	"$(j "$NP_TMP/out/json1.json" '"%s %s %s" % (d["status"], d["body"]["mode"], d["body"]["status"])')"
np_expect "JSON: an answer with [n] markers" bash -c "j=\$(cat '$NP_TMP/out/json1.json'); grep -q '\[[0-9]\]' <<<\"\$j\""
n_before=$(np_psql_super -d neonpool -At -c "SELECT count(*) FROM messages WHERE session_id = $sid")
ask "What does the autovacuum daemon do?" --key k-1 >"$NP_TMP/out/json2.json"
np_expect_eq "replay: the same message id and answer" \
	"$(j "$NP_TMP/out/json1.json" 'd["body"]["message_id"] + d["body"]["answer"]')" \
	"$(j "$NP_TMP/out/json2.json" 'd["body"]["message_id"] + d["body"]["answer"]')"
ask "What does the autovacuum daemon do?" --key k-1 --sse >"$NP_TMP/out/sse2.json"
np_expect_eq "replay as SSE: the stored answer" "$(j "$NP_TMP/out/json1.json" 'd["body"]["answer"]')" \
	"$(j "$NP_TMP/out/sse2.json" '"".join(e["data"]["delta"] for e in d["events"] if e["event"] == "message")')"
np_expect_eq "replays stored nothing" "$n_before" "$(np_psql_super -d neonpool -At -c "SELECT count(*) FROM messages WHERE session_id = $sid")"
ask "Another question" --key k-1 >"$NP_TMP/out/json3.json"
np_expect_eq "the key with another question: 422 idempotency_mismatch" "422 idempotency_mismatch" \
	"$(j "$NP_TMP/out/json3.json" '"%s %s" % (d["status"], d["body"]["error"]["code"])')"

# --- nothing found, errors ---
ask "the and of" >"$NP_TMP/out/none.json"
np_expect_eq "stop words only: 200, no citations, an answer saying so" "200 0 complete" \
	"$(j "$NP_TMP/out/none.json" '"%s %d %s" % (d["status"], len(d["body"]["citations"]), d["body"]["status"])')"
"$NP_PYTHON" "$np_top/tests/integration/ask_client.py" "$NP_HTTP_PORT" "$sid" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" "$q" >"$NP_TMP/out/bad.json"
np_expect_eq "a wrong token: 404 not_found" "404 not_found" "$(j "$NP_TMP/out/bad.json" '"%s %s" % (d["status"], d["body"]["error"]["code"])')"
np_curl "/api/v1/sessions/$sid/ask" -X POST -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' --data '{"question":""}'
np_expect_eq "an empty question: 400 invalid_body" "400 invalid_body" "$NP_STATUS $(j "$NP_TMP/http.body" 'd["error"]["code"]')"
np_curl "/api/v1/sessions/$sid/ask" -X POST -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' --data '{"question":"x","extra":1}'
np_expect_eq "an unknown member: 400 invalid_body" "400 invalid_body" "$NP_STATUS $(j "$NP_TMP/http.body" 'd["error"]["code"]')"
np_curl "/api/v1/sessions/$sid/ask" -X POST -H "Authorization: Bearer $tok" --data 'question=x'
np_expect_eq "not JSON: 415" 415 "$NP_STATUS"

np_expect_eq "status: in_use equals the server's count" "$(np_pool_conns)" \
	"$(np_status_json 'd["endpoints"]["primary"]["in_use"]')"
np_expect "no session token in the logs" \
	bash -c "grep -rqF -f '$NP_TMP/out/tokens' '$NP_DAEMON_LOG' '$NP_TMP/nginx' '$NP_TMP/pg/postgresql.log'; [ \$? = 1 ]"
np_finish
