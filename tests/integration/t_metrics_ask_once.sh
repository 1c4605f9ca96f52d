#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_metrics_ask_once.sh - /metrics after a controlled set of asks through the ask pool (LLM mode, the model stand-in): each ask counts once under route "ask" with the status its client was told (a stream that ended with an error event counts its error status, not 200), its two internal transactions count under "ask.tx", and llm_unavailable / llm_busy are counted under their own names, not "other"; the LLM's first-token and tokens histograms count the answers that had them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_start_llm_mock
mock() { curl -s -X POST "http://127.0.0.1:$mport/$1" -d "${2:-{\}}" >/dev/null; }

np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=1 workers=1 budget=1 min_warm=1 acquire_timeout_ms=$((2000 * NP_TIMEOUT_SCALE)) \
	llm_url="http://127.0.0.1:$mport/v1/chat/completions" llm_model=mock-1 llm_retry_after_max_ms=100 ask_llm_fallback=false
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready

np_session
ask() { "$NP_PYTHON" "$np_top/tests/integration/ask_client.py" "$NP_HTTP_PORT" "$sid" "$tok" "$@"; }
# metric NAME LABELS: the sample's value in the last scrape (0 when absent)
scrape() { np_curl /metrics; cp "$NP_TMP/http.body" "$NP_TMP/out/$1.txt"; }
metric() { awk -v k="$2$3" '$1 == k { v = $2 } END { print v + 0 }' "$NP_TMP/out/$1.txt"; }
delta() { echo $(($(metric after "$1" "$2") - $(metric before "$1" "$2"))); }

scrape before
mock _reset; mock _control '{"tokens": 5}'
ask "q1" >"$NP_TMP/out/a1.json"
ask "q2" --sse >"$NP_TMP/out/a2.json"
mock _control '{"tokens": 5, "fail_first": 2, "fail_status": 500}'
ask "q3" --sse >"$NP_TMP/out/a3.json"
mock _control '{"tokens": 5, "fail_first": 2, "fail_status": 429}'
ask "q4" >"$NP_TMP/out/a4.json"
mock _control '{"tokens": 5, "fail_first": 0}'
np_expect_eq "the asks: 200, SSE done, SSE error llm_unavailable, 503 llm_busy" \
	"200 done error/llm_unavailable 503/llm_busy" \
	"$(np_json_get "$NP_TMP/out/a1.json" 'd["status"]') $(np_json_get "$NP_TMP/out/a2.json" 'd["events"][-1]["event"]') $(np_json_get "$NP_TMP/out/a3.json" 'd["events"][-1]["event"] + "/" + d["events"][-1]["data"]["error"]["code"]') $(np_json_get "$NP_TMP/out/a4.json" 'str(d["status"]) + "/" + d["body"]["error"]["code"]')"
scrape after
req='neonpool_http_requests_total'
np_expect_eq "route ask: 2 answered 200 (a JSON answer and a stream that ended done)" 2 "$(delta "$req" '{route="ask",code="200"}')"
np_expect_eq "route ask: the stream that ended with an llm_unavailable error counts 502" 1 "$(delta "$req" '{route="ask",code="502"}')"
np_expect_eq "route ask: the llm_busy answer counts 503" 1 "$(delta "$req" '{route="ask",code="503"}')"
total=$(awk '$1 ~ /^neonpool_http_requests_total\{route="ask",/ { s += $2 } END { print s + 0 }' "$NP_TMP/out/after.txt")
total0=$(awk '$1 ~ /^neonpool_http_requests_total\{route="ask",/ { s += $2 } END { print s + 0 }' "$NP_TMP/out/before.txt")
np_expect_eq "route ask: 4 asks count 4 requests, not 12" 4 $((total - total0))
np_expect_eq "route ask.tx: their 8 internal transactions" 8 "$(delta "$req" '{route="ask.tx",code="200"}')"
err='neonpool_http_errors_total'
np_expect_eq "errors: llm_unavailable 1" 1 "$(delta "$err" '{error="llm_unavailable"}')"
np_expect_eq "errors: llm_busy 1" 1 "$(delta "$err" '{error="llm_busy"}')"
np_expect_eq "errors: other 0" 0 "$(delta "$err" '{error="other"}')"
# issue 20: the model's time to first token for the two answers that got one (the failed calls
# got none), and the tokens of the two complete answers (5 each)
np_expect_eq "neonpool_llm_first_token_seconds: 2 answers had a first token" 2 \
	"$(delta neonpool_llm_first_token_seconds_count '')"
np_expect_eq "neonpool_llm_tokens: 2 complete answers, 10 tokens" "2 10" \
	"$(delta neonpool_llm_tokens_count '') $(delta neonpool_llm_tokens_sum '')"
np_finish
