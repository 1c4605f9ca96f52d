#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_cancel_race.sh - a cancel at any moment of an answer, retrieval and LLM mode, with a search load beside: what each client was told at the end of its stream (done's status, the deltas' text) is what GET .../messages shows, and a cancelled answer keeps the text that had been sent. NP_CANCEL_RACE_ASKS asks per mode (default 100: 200 in all).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

asks=${NP_CANCEL_RACE_ASKS:-100}
np_start_llm_mock

np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=6 workers=3 budget=3 min_warm=1 acquire_timeout_ms=$((3000 * NP_TIMEOUT_SCALE))
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready
word=$(np_psql_super -d neonpool -At -c "SELECT w FROM (SELECT regexp_split_to_table(body, '\s+') w FROM passages LIMIT 5) x WHERE length(w) > 5 LIMIT 1")

race() { # MODE MAX_CANCEL_MS
	"$NP_PYTHON" "$np_top/tests/integration/ask_cancel_race.py" "$NP_HTTP_PORT" "$asks" 5 "$2" "$word" \
		>"$NP_TMP/out/race-$1.json"
	local f=$NP_TMP/out/race-$1.json
	echo "RESULT $1: $(np_json_get "$f" '"asks %d match %d complete %d stopped %d (kept text %d) failed %d cancels %s searches %d ok %d bad" % (d["asks"], d["match"], d["complete"], d["stopped"], d["cancelled_kept"], d["failed"], d["cancel_status"], d["search_ok"], d["search_bad"])')"
	np_expect_eq "$1: the end of each stream equals GET messages, $asks of $asks" "$asks $asks" \
		"$(np_json_get "$f" '"%d %d" % (d["asks"], d["match"])')"
	np_log "first mismatches: $(np_json_get "$f" 'd["mismatch"][:3]')"
	# a retrieval answer is made in microseconds: its cancels land after done (the check is then
	# that done and the stored row agree); an LLM answer's land in the middle too
	[ "$1" = llm ] && np_expect "$1: answers cancelled mid-stream were stored stopped with the text sent" \
		test "$(np_json_get "$f" 'd["cancelled_kept"]')" -ge 1
	np_expect_eq "$1: the searches beside them answered" 0 "$(np_json_get "$f" 'd["search_bad"]')"
}

# retrieval mode: an answer is made in milliseconds; the cancel lands before or after its end
race retrieval 30

# LLM mode: 20 tokens at 100/s (~0.2 s); the cancel lands from the citations event to after done
echo "llm_url = \"http://127.0.0.1:$mport/v1/chat/completions\";" >>"$NP_DAEMON_CONF"
np_reload
curl -s -X POST "http://127.0.0.1:$mport/_control" -d '{"tokens": 20, "tokens_per_s": 100}' >/dev/null
race llm 300

streaming=$(np_psql_super -d neonpool -At -c "SELECT count(*) FROM messages WHERE status = 'streaming'")
np_expect_eq "no answer left streaming" 0 "$streaming"
np_finish
