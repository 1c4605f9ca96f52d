#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_history_cap.sh - a session's history cannot break its asks: 50 messages of 16,384 x U+0001 (ask_history_messages = 50; ~5 MB once escaped, over what an ask worker reads of an internal answer) and the ask still answers; an ask whose first transaction committed but whose answer was lost on the way (passages too large to travel) answers 503 db_outcome_unknown, not db_busy, its orphaned streaming row is finished failed within 30 s by the sweep, and a retry with the same Idempotency-Key then answers (a replay, not 409).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=2 workers=2 budget=2 min_warm=1 ask_history_messages=50 acquire_timeout_ms=$((3000 * NP_TIMEOUT_SCALE))
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready

session() { curl -s -X POST "http://127.0.0.1:$NP_HTTP_PORT/api/v1/sessions" >"$NP_TMP/out/s.json"; sid=$(np_json_get "$NP_TMP/out/s.json" 'd["id"]'); tok=$(np_json_get "$NP_TMP/out/s.json" 'd["token"]'); }
ask() { # QUESTION KEY
	np_curl -X POST "/api/v1/sessions/$sid/ask" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		-H "Idempotency-Key: $2" --data "{\"question\":\"$1\"}"
}
word=$(np_psql_super -d neonpool -At -c "SELECT w FROM (SELECT regexp_split_to_table(body, '\s+') w FROM passages LIMIT 5) x WHERE length(w) > 5 LIMIT 1")

# --- 1. 50 messages of 16,384 x U+0001 in the history: the ask answers ---
session
np_psql_super -d neonpool -q -c "INSERT INTO messages (session_id, role, content) SELECT $sid, CASE WHEN g % 2 = 0 THEN 'assistant' ELSE 'user' END, repeat(chr(1), 16384) FROM generate_series(1, 50) g"
ask "What does $word mean?" h1
np_expect_eq "an ask after a history of 50 x 16,384 x U+0001 answers 200 complete" "200 complete" \
	"$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd.get("status")')"
ask "And what else about $word?" h2
np_expect_eq "and the next one too" "200 complete" "$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd.get("status")')"

# --- 2. the first transaction committed, its answer lost: db_outcome_unknown, the row ends failed ---
# LLM mode returns the passages' text: two passages of 400,000 x U+0001 (~5.6 MB escaped twice)
echo 'llm_url = "http://127.0.0.1:9/v1/chat/completions";' >>"$NP_DAEMON_CONF"
np_reload
np_psql_super -d neonpool -q -c "INSERT INTO passages (chapter_id, position, heading, body) SELECT c, 90000 + c, 'quuxinator', 'quuxinator ' || repeat(chr(1), 400000) FROM (SELECT min(id) AS c FROM chapters UNION ALL SELECT max(id) FROM chapters) x"
session
ask "quuxinator" k1
np_expect_eq "committed, answer lost on the way: 503 db_outcome_unknown" "503 db_outcome_unknown" \
	"$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd["error"]["code"]')"
np_now_ms; t0=$NP_NOW
rows() { np_psql_super -d neonpool -At -c "SELECT string_agg(status, ',') FROM messages WHERE session_id = $sid AND role = 'assistant'"; }
np_expect_eq "its answer row was left streaming" streaming "$(rows)"
while [ "$(rows)" = streaming ]; do
	np_now_ms; [ $((NP_NOW - t0)) -gt 35000 ] && break
	sleep 0.5
done
np_now_ms; took=$((NP_NOW - t0))
echo "RESULT the orphaned streaming row was finished $(rows) ${took} ms after the ask (no other ask of the session)"
np_expect_eq "finished failed by the sweep" failed "$(rows)"
np_expect "within 30 s ($took ms)" test "$took" -le 30000
ask "quuxinator" k1
np_expect_eq "a retry with the same key answers: 200, the stored status (a replay)" "200 failed" \
	"$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd.get("status")')"
np_finish
