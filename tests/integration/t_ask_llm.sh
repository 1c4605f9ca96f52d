#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_llm.sh - the ask turn with a language model (issue 9) against tests/tools/llm_mock.py through nginx and the ask pool: the passages reach the model, the answer streams and is stored; the deltas stream through nginx (curl -N: the first reaches the client while the model still sends); cancel stops the upstream long before the answer's end; a dropped client leaves a complete answer; stall, slow first token and a mid-stream error fail the turn (504/502) and store it failed; a 500 before the first token is retried once, two 429s are 503 llm_busy; with ask_llm_fallback (the default) a failure before the first token is answered by the labelled extractive answer; all ask workers busy: 503 ask_busy at once; the API key is sent and never shown.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

key="sk-neonpool-test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$key" >"$NP_TMP/llm.key"
np_start_llm_mock --key "$key"
mock() { curl -s -X POST "http://127.0.0.1:$mport/$1" -d "${2:-{\}}" >/dev/null; }
mocklog() { curl -s "http://127.0.0.1:$mport/_log" >"$NP_TMP/out/mocklog.json"; np_json_get "$NP_TMP/out/mocklog.json" "$1"; }

np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=2 workers=2 budget=2 min_warm=1 log_level=debug acquire_timeout_ms=$((2000 * NP_TIMEOUT_SCALE)) \
	llm_url="http://127.0.0.1:$mport/v1/chat/completions" llm_model=mock-1 llm_api_key_file="$NP_TMP/llm.key" \
	llm_first_token_timeout_ms=$((1500 * NP_TIMEOUT_SCALE)) llm_gap_timeout_ms=$((1000 * NP_TIMEOUT_SCALE)) \
	llm_retry_after_max_ms=300 ask_llm_fallback=false
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready

np_session
word=$(np_psql_super -d neonpool -At -c "SELECT w FROM (SELECT regexp_split_to_table(body, '\s+') w FROM passages LIMIT 5) x WHERE length(w) > 5 LIMIT 1")
ask() { "$NP_PYTHON" "$np_top/tests/integration/ask_client.py" "$NP_HTTP_PORT" "$sid" "$tok" "$@"; }
j() { np_json_get "$1" "$2"; }
stored() { np_psql_super -d neonpool -At -c "SELECT status || '|' || content FROM messages WHERE id = $1"; }
deltas='"".join(e["data"]["delta"] for e in d["events"] if e["event"] == "message")'

# --- 1. a streamed answer: the passages reach the model, the key too ---
mock _reset; mock _control '{"tokens": 40, "tokens_per_s": 200}'
ask "What does $word mean?" --sse >"$NP_TMP/out/a1.json"
np_expect_eq "SSE: citations, deltas, done complete, mode llm" "citations message done complete llm" \
	"$(j "$NP_TMP/out/a1.json" '" ".join(dict.fromkeys(e["event"] for e in d["events"])) + " " + d["events"][-1]["data"]["status"] + " " + d["events"][0]["data"]["mode"]')"
k=$(j "$NP_TMP/out/a1.json" 'len(d["events"][0]["data"]["citations"])')
np_expect_eq "the model got the $k passages, numbered 1..$k in the system prompt" \
	"$(seq -s, 1 "$k")" "$(mocklog '",".join(map(str, d[0]["passages"]))')"
np_expect "at least one passage retrieved" test "$k" -ge 1
np_expect_eq "the model got the key as a bearer token, the model's name, stream true" "True mock-1 True" \
	"$(mocklog '"%s %s %s" % (d[0]["auth_ok"], d[0]["model"], d[0]["stream"])')"
np_expect_eq "the model got the question last" "What does $word mean?" "$(mocklog 'd[0]["messages"][-1]["content"]')"
mid=$(j "$NP_TMP/out/a1.json" 'd["events"][0]["data"]["message_id"]')
np_expect_eq "stored complete with the streamed text" "complete|$(j "$NP_TMP/out/a1.json" "$deltas" | sed 's/ *$//')" \
	"$(stored "$mid" | sed 's/ *$//')"
np_expect_eq "done: the [n] the text cites (Passages seen: [1] ...)" 1 \
	"$(j "$NP_TMP/out/a1.json" 'd["events"][-1]["data"]["citations_used"][0]')"

# --- 2. the deltas stream through nginx (curl -N): the first one reaches the client while the model
# is still sending (nothing buffers the answer); its lag is measured for bench/latency ---
mock _reset; mock _control '{"tokens": 20, "tokens_per_s": 20, "ttft_ms": 400}'
curl -sN -X POST "http://127.0.0.1:$NP_HTTP_PORT/api/v1/sessions/$sid/ask" -H "Authorization: Bearer $tok" \
	-H 'Content-Type: application/json' -H 'Accept: text/event-stream' --data "{\"question\":\"Why $word?\"}" |
	"$NP_PYTHON" -u -c 'import sys, time
for line in iter(sys.stdin.buffer.readline, b""):
    if line.startswith(b"data: {\"delta\""):
        print("%.6f" % time.time()); sys.stdout.flush()' >"$NP_TMP/out/curl-times.txt"
first_client=$(head -n 1 "$NP_TMP/out/curl-times.txt")
first_model=$(mocklog '"%.6f" % d[0]["t_first_token"]')
lag=$("$NP_PYTHON" -c "print(int(($first_client - $first_model) * 1000))")
echo "RESULT first SSE delta through nginx (curl -N) ${lag} ms after the model's first token (ttft 400 ms)"
np_measure first_delta_ms "$lag" "first SSE delta through nginx after the model's first token"
last_model=$(mocklog '"%.6f" % d[0]["t_end"]')
np_expect "the first delta reached the client while the model was still sending (${lag} ms after its first token, $("$NP_PYTHON" -c "print(int(($last_model - $first_model) * 1000))") ms before its last)" \
	"$NP_PYTHON" -c "import sys; sys.exit(not ($first_model <= $first_client < $last_model))"

# --- 3. cancel stops the upstream long before the answer's end; the text so far is stored stopped ---
mock _reset; mock _control '{"tokens": 400, "tokens_per_s": 20}'
ask "Tell me about $word at length" --sse --cancel-after-deltas 5 >"$NP_TMP/out/cancel.json"
np_expect_eq "cancel: 200 stopping" "200 stopping" \
	"$(j "$NP_TMP/out/cancel.json" '"%s %s" % (d["cancel"]["status"], d["cancel"]["body"]["status"])')"
np_expect_eq "the stream ends with done stopped" "done stopped" \
	"$(j "$NP_TMP/out/cancel.json" 'd["events"][-1]["event"] + " " + d["events"][-1]["data"]["status"]')"
for _ in $(seq 50); do [ "$(mocklog 'd[0]["disconnected"]')" = True ] && break; sleep 0.1; done
np_expect_eq "the model saw the disconnect" True "$(mocklog 'd[0]["disconnected"]')"
cancel_wall=$(j "$NP_TMP/out/cancel.json" '[e["wall"] for e in d["events"] if e["event"] == "message"][4]')
stop_ms=$(mocklog "int((d[0][\"t_disconnect\"] - $cancel_wall) * 1000)")
echo "RESULT cancel: the model saw the disconnect ${stop_ms} ms after the 5th delta reached the client (cancel sent then)"
np_measure cancel_stop_ms "$stop_ms" "the model sees the disconnect after a cancel"
np_expect "the upstream was stopped long before the answer's end (after $stop_ms ms, $(mocklog 'd[0]["tokens_sent"]') of 400 tokens of 20 s)" \
	test "$(mocklog 'd[0]["tokens_sent"]')" -lt 400 -a "$stop_ms" -lt $((5000 * NP_TIMEOUT_SCALE))
cmid=$(j "$NP_TMP/out/cancel.json" 'd["events"][0]["data"]["message_id"]')
st=$(stored "$cmid")
np_expect_eq "stored: stopped" stopped "${st%%|*}"
np_expect "stored: the partial text (fewer than 400 tokens, at least the 5 streamed)" \
	bash -c "n=\$(wc -w <<<'${st#*|}'); [ \$n -ge 5 ] && [ \$n -lt 400 ]"
np_curl -X POST "/api/v1/sessions/$sid/ask/$cmid/cancel" -H "Authorization: Bearer $tok"
np_expect_eq "cancelling it again: 200 stopped" "200 stopped" "$NP_STATUS $(j "$NP_TMP/http.body" 'd["status"]')"
np_curl -X POST "/api/v1/sessions/$sid/ask/$cmid/cancel" -H "Authorization: Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
np_expect_eq "cancel with a wrong token: 404" 404 "$NP_STATUS"

# --- 4. a dropped client leaves a complete stored answer (ask_on_disconnect = finish) ---
mock _reset; mock _control '{"tokens": 30, "tokens_per_s": 20}'
ask "Explain $word" --sse --drop-after-deltas 3 >"$NP_TMP/out/drop.json"
dmid=$(j "$NP_TMP/out/drop.json" 'd["events"][0]["data"]["message_id"]')
for _ in $(seq 40); do [ "$(stored "$dmid" | cut -d'|' -f1)" = complete ] && break; sleep 0.1; done
st=$(stored "$dmid")
np_expect_eq "dropped client: the answer is stored complete" complete "${st%%|*}"
np_expect_eq "dropped client: with every token (30 words)" 30 "$(wc -w <<<"${st#*|}")"
np_expect_eq "dropped client: the model was never disconnected, sent all 30 tokens" "False 30" \
	"$(mocklog '"%s %s" % (d[0]["disconnected"], d[0]["tokens_sent"])')"
np_curl "/api/v1/sessions/$sid/messages?limit=1" -H "Authorization: Bearer $tok"
np_expect_eq "the history shows it complete" "$dmid complete" "$(j "$NP_TMP/http.body" '"%s %s" % (d["messages"][0]["id"], d["messages"][0]["status"])')"

# --- 4b. ask_on_disconnect = abort (reload): a dropped client stops the model; the text so far is stored stopped ---
echo 'ask_on_disconnect = "abort";' >>"$NP_DAEMON_CONF"
np_reload
mock _reset; mock _control '{"tokens": 200, "tokens_per_s": 20}'
ask "Abort on $word" --sse --drop-after-deltas 3 >"$NP_TMP/out/abort.json"
amid=$(j "$NP_TMP/out/abort.json" 'd["events"][0]["data"]["message_id"]')
for _ in $(seq 40); do [ "$(stored "$amid" | cut -d'|' -f1)" = stopped ] && break; sleep 0.1; done
np_expect_eq "abort: the answer is stored stopped" stopped "$(stored "$amid" | cut -d'|' -f1)"
np_expect_eq "abort: the model saw the disconnect before its 200 tokens" "True yes" \
	"$(mocklog '"%s %s" % (d[0]["disconnected"], "yes" if d[0]["tokens_sent"] < 200 else "no")')"
sed -i '/^ask_on_disconnect = "abort";$/d' "$NP_DAEMON_CONF"
np_reload

# --- 5. a stall after 3 tokens: 504 llm_timeout within the gap deadline, stored failed ---
mock _reset; mock _control '{"tokens": 30, "tokens_per_s": 100, "stall_after": 3}'
ask "Stall on $word" --sse >"$NP_TMP/out/stall.json"
np_expect_eq "stall: event error llm_timeout" "error llm_timeout" \
	"$(j "$NP_TMP/out/stall.json" 'd["events"][-1]["event"] + " " + d["events"][-1]["data"]["error"]["code"]')"
gap=$(j "$NP_TMP/out/stall.json" 'int(d["events"][-1]["t_ms"] - [e for e in d["events"] if e["event"] == "message"][-1]["t_ms"])')
echo "RESULT stall: error event ${gap} ms after the last token (llm_gap_timeout_ms 1000)"
# measured by the client: the last token may reach it late on a loaded machine, hence 800; a
# stall that no deadline ended would last the model's 30 s
np_expect "stall: the error came at the gap deadline, give or take a loaded machine ($gap ms)" \
	test "$gap" -ge 800 -a "$gap" -lt $((2500 * NP_TIMEOUT_SCALE))
smid=$(j "$NP_TMP/out/stall.json" 'd["events"][0]["data"]["message_id"]')
np_expect_eq "stall: stored failed with the 3 tokens" "failed|Passages seen: [1]" "$(stored "$smid" | sed 's/ *$//')"
np_poll True 50 mocklog 'd[0]["disconnected"]'
np_expect_eq "stall: the model saw the disconnect" True "$NP_POLLED"

# --- 6. no first token in time: 504 llm_timeout (JSON form) ---
mock _reset; mock _control "{\"ttft_ms\": $((3000 * NP_TIMEOUT_SCALE))}"
ask "Slow $word" >"$NP_TMP/out/slow.json"
np_expect_eq "slow first token: 504 llm_timeout" "504 llm_timeout" "$(j "$NP_TMP/out/slow.json" '"%s %s" % (d["status"], d["body"]["error"]["code"])')"
# the first-token deadline is 1.5 s, the model's first token would come at 3 s
np_expect "slow first token: answered before the model's first token" test "$(j "$NP_TMP/out/slow.json" 'int(d["t_end_ms"])')" -lt $((2700 * NP_TIMEOUT_SCALE))

# --- 7. a mid-stream error: 502 llm_unavailable, stored failed ---
mock _reset; mock _control '{"tokens": 20, "error_after": 4}'
ask "Break on $word" --sse >"$NP_TMP/out/miderr.json"
np_expect_eq "mid-stream error: event error llm_unavailable" "error llm_unavailable" \
	"$(j "$NP_TMP/out/miderr.json" 'd["events"][-1]["event"] + " " + d["events"][-1]["data"]["error"]["code"]')"
np_expect_eq "mid-stream error: never retried after tokens (one request)" 1 "$(mocklog 'len(d)')"
np_expect_eq "mid-stream error: stored failed" failed "$(stored "$(j "$NP_TMP/out/miderr.json" 'd["events"][0]["data"]["message_id"]')" | cut -d'|' -f1)"

# --- 8. a 500 before the first token is retried once; two 429s are 503 llm_busy ---
mock _reset; mock _control '{"fail_first": 1, "fail_status": 500, "tokens": 10}'
ask "Retry $word" >"$NP_TMP/out/retry.json"
np_expect_eq "500 then 200: the answer is complete" "200 complete" "$(j "$NP_TMP/out/retry.json" '"%s %s" % (d["status"], d["body"]["status"])')"
np_expect_eq "the model saw two requests: 500, then 200" "500 200" "$(mocklog '" ".join(str(r["status"]) for r in d)')"
mock _reset; mock _control '{"fail_first": 5, "fail_status": 429, "retry_after": 30}'
ask "Busy $word" >"$NP_TMP/out/busy.json"
np_expect_eq "429 twice: 503 llm_busy with Retry-After" "503 llm_busy 1" \
	"$(j "$NP_TMP/out/busy.json" '"%s %s %s" % (d["status"], d["body"]["error"]["code"], d["headers"].get("retry-after"))')"
np_expect_eq "429: retried once only" 2 "$(mocklog 'len(d)')"
np_expect "429: Retry-After 30 s capped to llm_retry_after_max_ms (300 ms): answered in seconds, not 30" \
	test "$(j "$NP_TMP/out/busy.json" 'int(d["t_end_ms"])')" -lt $((3000 * NP_TIMEOUT_SCALE))

# --- 8b. ask_llm_fallback (the default; reload): a model that fails before its first token (two
# 500s; no first token in time) gets the extractive answer instead, labelled in the stream (a
# fallback event naming the error it would have been, the label) and in the stored message, with
# its citations ---
sed -i 's/^ask_llm_fallback = false;$/ask_llm_fallback = true;/' "$NP_DAEMON_CONF"
kill -HUP "$NP_DAEMON_PID"
events=""
for _ in $(seq 40); do   # until the workers run the reloaded configuration
	mock _reset; mock _control '{"fail_first": 5, "fail_status": 500}'
	ask "Fallback on $word" --sse >"$NP_TMP/out/fallback.json"
	events=$(j "$NP_TMP/out/fallback.json" '" ".join(dict.fromkeys(e["event"] for e in d["events"]))')
	case $events in *fallback*) break ;; esac
	sleep 0.25
done
np_expect_eq "fallback (500s): citations, fallback, deltas, done" "citations fallback message done" "$events"
np_expect_eq "fallback (500s): the reason named, the answer done complete, citing a passage" "llm_unavailable complete yes" \
	"$(j "$NP_TMP/out/fallback.json" '"%s %s %s" % ([e for e in d["events"] if e["event"] == "fallback"][0]["data"]["reason"], d["events"][-1]["data"]["status"], "yes" if d["events"][-1]["data"]["citations_used"] else "no")')"
fmid=$(j "$NP_TMP/out/fallback.json" 'd["events"][0]["data"]["message_id"]')
np_expect "fallback (500s): stored complete, labelled, each sentence cited ($(stored "$fmid" | head -c 160))" \
	bash -c "[[ \"\$1\" =~ ^complete\|\[Extractive\ answer:.*\[[0-9]+\] ]]" _ "$(stored "$fmid")"
np_expect_eq "fallback (500s): the stored text is the text that was streamed (without its last space)" \
	"$(stored "$fmid" | cut -d'|' -f2-)" "$(j "$NP_TMP/out/fallback.json" "$deltas"'.rstrip(" ")')"
mock _reset; mock _control '{"ttft_ms": '$((3000 * NP_TIMEOUT_SCALE))'}'
ask "Fallback again on $word" >"$NP_TMP/out/fallback2.json"
np_expect_eq "fallback (no first token in time), JSON form: 200, mode extractive, complete, labelled, cited" \
	"200 extractive complete True True" \
	"$(j "$NP_TMP/out/fallback2.json" '"%s %s %s %s %s" % (d["status"], d["body"]["mode"], d["body"]["status"], d["body"]["answer"].startswith("[Extractive answer:"), len(d["body"]["citations_used"]) > 0)')"
mock _reset
sed -i 's/^ask_llm_fallback = true;$/ask_llm_fallback = false;/' "$NP_DAEMON_CONF"
kill -HUP "$NP_DAEMON_PID"
sleep 1

# --- 9. every ask worker busy: 503 ask_busy at once ---
mock _reset; mock _control '{"tokens": 200, "tokens_per_s": 20}'
ask "Long one $word" --sse >"$NP_TMP/out/long1.json" &
p1=$!
ask "Long two $word" --sse >"$NP_TMP/out/long2.json" &
p2=$!
# both ask workers inside their answers (the model streaming to each), not only accepted: the gate
# that answers ask_busy runs inside a long answer (a fixed 0.8 s was short on a loaded machine)
for _ in $(seq $((200 * NP_TIMEOUT_SCALE))); do
	[ "$(mocklog 'sum(1 for r in d if r["tokens_sent"] > 0 and r["t_end"] is None)')" = 2 ] && break
	sleep 0.05
done
ask "A third $word" >"$NP_TMP/out/third.json"
np_expect_eq "a third ask with both ask workers busy: 503 ask_busy, Retry-After" "503 ask_busy 1" \
	"$(j "$NP_TMP/out/third.json" '"%s %s %s" % (d["status"], d["body"]["error"]["code"], d["headers"].get("retry-after"))')"
np_measure ask_busy_ms "$(j "$NP_TMP/out/third.json" 'int(d["t_end_ms"])')" "503 ask_busy with every ask worker busy"
# at once: it did not wait for a busy ask worker (theirs answers take 10 s) nor for acquire_timeout_ms
np_expect "503 ask_busy without waiting ($(j "$NP_TMP/out/third.json" 'int(d["t_end_ms"])') ms < acquire_timeout_ms)" \
	test "$(j "$NP_TMP/out/third.json" 'int(d["t_end_ms"])')" -lt $((2000 * NP_TIMEOUT_SCALE))
np_curl /api/v1/passages/"$NP_PASSAGE_MIN"
np_expect_eq "reads are unaffected meanwhile" 200 "$NP_STATUS"
for m in $(np_psql_super -d neonpool -At -c "SELECT id FROM messages WHERE session_id = $sid AND status = 'streaming'"); do
	np_curl -X POST "/api/v1/sessions/$sid/ask/$m/cancel" -H "Authorization: Bearer $tok"
done
wait "$p1" "$p2"

# --- 10. the key is nowhere: logs, status, nginx ---
"$NEONPOOLCTL" -c "$NP_CTL_CONF" status --json >"$NP_TMP/out/status-final.json" 2>&1
"$NEONPOOLCTL" -c "$NP_DAEMON_CONF" check-config >"$NP_TMP/out/check-config.out" 2>&1
np_expect "the API key appears in no log, answer, status or configuration dump" \
	bash -c "! grep -rqaF -- '$key' '$NP_DAEMON_LOG' '$NP_TMP/nginx' '$NP_TMP/out' '$NP_TMP/http.body' --exclude=mocklog.json"
np_expect "the log has the upstream outcomes (llm answer lines)" grep -q "msg=.llm answer" "$NP_DAEMON_LOG"
np_expect_eq "status: in_use equals the server's count" "$(np_pool_conns)" \
	"$(np_status_json 'd["endpoints"]["primary"]["in_use"]')"
np_finish
