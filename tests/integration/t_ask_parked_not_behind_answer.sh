#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_parked_not_behind_answer.sh - an ask worker holding an accepted connection whose request has not arrived yet takes no second one: two ask connections opened 0.3 s apart, their requests sent only afterwards, are answered by the two ask workers at the same time, not one after the other by the worker that parked both (found by t_ask_llm in a fresh-clone run: the second ask waited 10.6 s behind the first while the other ask worker was idle).
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_start_llm_mock

np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=2 workers=2 budget=2 min_warm=1 log_level=debug acquire_timeout_ms=$((2000 * NP_TIMEOUT_SCALE)) \
	llm_url="http://127.0.0.1:$mport/v1/chat/completions" llm_model=mock-1
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready
np_session

# answers of 3 s each: one behind the other, the second would end 3 s after the first
curl -s -X POST "http://127.0.0.1:$mport/_control" -d '{"tokens": 60, "tokens_per_s": 20}' >/dev/null
"$NP_PYTHON" "$np_top/tests/integration/fcgi_raw.py" ask-pair "$NP_TMP/ask.sock" "$sid" "$tok" \
	"What is a table" "$NP_TMP/out/pair.json"
curl -s "http://127.0.0.1:$mport/_log" >"$NP_TMP/out/mocklog.json"
np_log "asks: $(cat "$NP_TMP/out/pair.json" | cut -c1-400)"
np_log "model requests: $(cat "$NP_TMP/out/mocklog.json")"

np_expect_eq "both asks answered 200 and streamed to their end" "200 200 True True" \
	"$(np_json_get "$NP_TMP/out/pair.json" '" ".join([str(a["status"]) for a in d] + [str("event: done" in a["text"]) for a in d])')"
np_expect_eq "the model was asked twice" 2 "$(np_json_get "$NP_TMP/out/mocklog.json" 'len(d)')"
np_expect "the second answer's model request started before the first one's ended (two ask workers at once, not one after the other)" \
	test "$(np_json_get "$NP_TMP/out/mocklog.json" 'int(max(r["t_start"] for r in d) < min(r["t_end"] for r in d))')" = 1
np_expect "the second ask's first byte came before the first ask's end" \
	test "$(np_json_get "$NP_TMP/out/pair.json" 'int(d[1]["first_s"] is not None and d[1]["first_s"] + 0.3 < d[0]["end_s"])')" = 1
np_expect "the two ask workers served one ask each" \
	test "$(grep -o 'role=ask\.[0-9]* .*msg=request .*status=200' "$NP_DAEMON_LOG" | cut -d' ' -f1 | sort -u | wc -l)" = 2
np_finish
