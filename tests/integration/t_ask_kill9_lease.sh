#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_kill9_lease.sh - kill -9 of 20 ask workers in the middle of their answers (the model stand-in at 5 s per answer): every answer ends failed or stopped within 30 s (the lease), never streaming for good; a cancel of it answers with its final state (at once: the cancel finishes it; later: the status it ended with); a retry with the same Idempotency-Key then answers (a replay, not 409).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

n=20
np_start_llm_mock
curl -s -X POST "http://127.0.0.1:$mport/_control" -d '{"tokens": 50, "tokens_per_s": 10}' >/dev/null

np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=$n workers=2 budget=3 min_warm=1 acquire_timeout_ms=$((3000 * NP_TIMEOUT_SCALE)) \
	llm_url="http://127.0.0.1:$mport/v1/chat/completions" llm_model=mock-1
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready

"$NP_PYTHON" "$np_top/tests/integration/ask_kill9.py" "$NP_HTTP_PORT" "$NP_DAEMON_PID" "$n" 30 >"$NP_TMP/out/kill9.json"
f=$NP_TMP/out/kill9.json
echo "RESULT $(cat "$f")"
np_expect_eq "$n ask workers killed in the middle of their answers" "$n" "$(np_json_get "$f" 'd["killed"]')"
np_expect_eq "every answer ended (failed or stopped) within 30 s, none left streaming" "0 $n" \
	"$(np_json_get "$f" '"%d %d" % (d["streaming_left"], d["ended"].get("failed", 0) + d["ended"].get("stopped", 0))')"
np_expect_eq "a cancel of each answered its final state" "$n" "$(np_json_get "$f" 'd["cancel_matches"]')"
np_expect_eq "a retry with the same key answered each (a replay ending with the stored status)" "$n" \
	"$(np_json_get "$f" 'd["retry_matches"]')"
np_expect_eq "nothing else went wrong" "[]" "$(np_json_get "$f" 'd["problems"]')"
np_expect_eq "the daemon is alive" yes "$(np_alive "$NP_DAEMON_PID" && echo yes)"
np_finish
