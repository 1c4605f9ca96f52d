#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_browser_llm.sh - the web page's ask flow in chromium with a language model (the stand-in tests/tools/llm_mock.py of issue 9 behind llm_url, the ask pool, nginx): Stop mid-stream stops the upstream long before the answer's end and stores the answer stopped; a reload mid-stream shows the complete answer; a model error fails the turn calmly and Retry works; a busy model is waited for (tests/browser/e2e_llm.mjs).
# np: shared-pg
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx node
[ -x /usr/bin/chromium ] || np_skip "no /usr/bin/chromium (scripts/install-deps.sh installs Debian's chromium)"
[ -f "$np_top/tests/tools/llm_mock.py" ] ||
	np_skip "no language-model stand-in (tests/tools/llm_mock.py comes with the ask route of issue 9)"
"$np_top/tests/browser/install.sh" >"$NP_TMP/out/npm.out" 2>&1
case $? in 0) ;; 77) np_skip "npm is not installed" ;; *) np_fail "tests/browser/install.sh: $(tail -n 3 "$NP_TMP/out/npm.out")" ;; esac

np_start_llm_mock

NP_SEED_BOOKS=2
np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=2 workers=2 budget=2 min_warm=1 retry_after_s=1 acquire_timeout_ms=$((2000 * NP_TIMEOUT_SCALE)) \
	llm_url="http://127.0.0.1:$mport/v1/chat/completions" llm_model=mock-1 ask_on_disconnect=finish \
	llm_first_token_timeout_ms=$((10000 * NP_TIMEOUT_SCALE)) llm_gap_timeout_ms=$((3000 * NP_TIMEOUT_SCALE)) \
	llm_retry_after_max_ms=300 ask_llm_fallback=false
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready
word=$(np_psql_super -d neonpool -At -c "SELECT w FROM (SELECT regexp_split_to_table(body, '\s+') w FROM passages LIMIT 5) x WHERE length(w) > 5 LIMIT 1")

np_artifacts
art=$NP_ART
np_now_ms; t0=$NP_NOW
NP_BASE=http://127.0.0.1:$NP_HTTP_PORT NP_MOCK=http://127.0.0.1:$mport NP_WORD=$word NP_ARTIFACTS=$art \
	NP_SCALE=$NP_TIMEOUT_SCALE timeout $((240 * NP_TIMEOUT_SCALE)) node "$np_top/tests/browser/e2e_llm.mjs" >"$NP_TMP/out/e2e.out" 2>&1
rc=$?
np_now_ms
cat "$NP_TMP/out/e2e.out"
np_expect "the browser tests ran to their end (exit $rc, $((NP_NOW - t0)) ms)" test "$rc" = 0
NP_FAILURES=$((NP_FAILURES + $(grep -c '^not ok' "$NP_TMP/out/e2e.out")))
echo "RESULT browser with a model: $(grep -c '^ok' "$NP_TMP/out/e2e.out") passed, $(grep -c '^not ok' "$NP_TMP/out/e2e.out") failed, $(grep -c '^# SKIP' "$NP_TMP/out/e2e.out") skipped in $((NP_NOW - t0)) ms; $(grep '^RESULT' "$NP_TMP/out/e2e.out" | sed 's/^RESULT //' | paste -sd ';')"
np_finish
