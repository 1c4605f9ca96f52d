#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_kill_soak.sh - one kill -9 of a random worker or ask worker every second under mixed load (book reads with wrk, keyed posts, streamed asks to a model stand-in, serve.sh's pool sizes): the master never exits; at every 100 ms sample at least one worker and one ask worker live; failed reads are at most the main-worker kills times the reads in flight (wrk's connections); the pool never holds more server connections than its budget (pg_stat_activity every 50 ms); every acknowledged post is stored exactly once; no answer is left `streaming` past 30 s.
#
# Duration: NP_SOAK_SECS seconds of kills (default 10, to keep the default suite short); the
# 2-minute soak is NP_SOAK_SECS=120 bash tests/integration/t_kill_soak.sh
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx wrk
# a paced background load (dblib.sh np_wrk_script): requests in flight, not both cores taken
: "${NP_WRK_DELAY_MS:=10}"; export NP_WRK_DELAY_MS

secs=${NP_SOAK_SECS:-10}   # tests/run.sh --long: 120 (the 2 minutes of the acceptance)
budget=4
conns=8   # wrk's connections: no worker can have more reads in flight than there are

np_start_llm_mock
# an answer streams for about 2 s: kills of ask workers land mid-answer
curl -s -X POST "http://127.0.0.1:$mport/_control" -d '{"tokens": 30, "tokens_per_s": 15}' >/dev/null

# serve.sh's pool: 4 workers, 4 ask workers, the default budget (4)
np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	workers=4 ask_workers=4 budget=$budget min_warm=2 acquire_timeout_ms=$((500 * NP_TIMEOUT_SCALE)) \
	llm_url="http://127.0.0.1:$mport/v1/chat/completions" llm_model=mock-1 \
	llm_first_token_timeout_ms=5000 llm_gap_timeout_ms=5000
# (the model's deadlines well inside the 30 s that an answer may stream: with the defaults, 30 s to
# the first token, an answer whose model call stalled streamed legitimately for 30 s and met the
# check below at its deadline)
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wrk_script
np_wait_db_ready
master=$NP_DAEMON_PID

PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$NP_PG_SOCKDIR" -p "$NP_PG_PORT" -U postgres -d neonpool)
PSQL=("${NP_AS_PG[@]}" "${PSQL[@]}")

np_sampler_start
wrk -t1 -c$conns -d$((secs + 60))s -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
NP_FRONT_PIDS+=("$wrk_pid")   # stopped by lib.sh's teardown too
np_log "soak: $secs s of one kill -9 a second"
(cd "$NP_TMP/pg" && "$NP_PYTHON" "$np_top/tests/integration/kill_soak.py" "$NP_HTTP_PORT" "$master" "$secs" \
	-- "${PSQL[@]}") >"$NP_TMP/out/soak.json" 2>"$NP_TMP/out/soak.err"
kill -INT "$wrk_pid" 2>/dev/null
wait "$wrk_pid" 2>/dev/null
read -r max_conns nsamples < <(np_sampler_stop)
s() { np_json_get "$NP_TMP/out/soak.json" "$1"; }
np_log "soak: $(cat "$NP_TMP/out/soak.json" | head -c 1500)"

kills_w=$(s 'd["kills"]["np-worker"]')
kills_a=$(s 'd["kills"]["np-ask"]')
np_expect "the soak ran ($kills_w worker and $kills_a ask worker kills)" test "$((kills_w + kills_a))" -ge $((secs - 2))
np_expect "the master never exited" np_alive "$master"
np_expect_eq "the master was alive at every 100 ms sample" 0 "$(s 'd["master_gone_samples"]')"
np_expect "at every 100 ms sample at least one worker lived (min $(s 'd["min_workers"]') in $(s 'd["samples"]') samples)" \
	test "$(s 'd["min_workers"]')" -ge 1
np_expect "at every 100 ms sample at least one ask worker lived (min $(s 'd["min_ask"]'))" test "$(s 'd["min_ask"]')" -ge 1

grep '"GET /api/v1/books/' "$NP_TMP/nginx/access.log" >"$NP_TMP/out/reads.log"
reads=$(wc -l <"$NP_TMP/out/reads.log")
failed=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /HTTP\/1\.[01]"$/) { if ($(i+1) != 200) n++; break } } END { print n + 0 }' "$NP_TMP/out/reads.log")
np_log "reads: $reads, statuses $(np_access_stats "$NP_TMP/out/reads.log")"
np_expect "reads were served ($reads)" test "$reads" -gt $((secs * 10))
np_expect "failed reads ($failed) <= main-worker kills x reads in flight ($kills_w x $conns)" \
	test "$failed" -le $((kills_w * conns))
np_expect "the server never saw more than the budget of $budget (max $max_conns in $nsamples samples)" \
	test "$max_conns" -le "$budget" -a "$nsamples" -gt $((secs * 5))

np_expect "posts were acknowledged ($(s 'd["posts_acked"]'), answers $(s 'd["post_answers"]'))" test "$(s 'd["posts_acked"]')" -gt 0
np_expect_eq "every acknowledged post stored exactly once ($(s 'd["posts_bad"]'))" 0 "$(s 'd["posts_not_exactly_once"]')"
np_expect "asks streamed ($(s 'd["asks"]') asks: $(s 'd["ask_outcomes"]'))" test "$(s 'd["asks"]')" -gt 0

# no answer left streaming past 30 s: wait until none streams, or until each one still streaming
# is older than 30 s (then it was left so). Both counts come from one statement: counted by two,
# a sweep that finished the last young row between them read as "1 streaming, none young" (the
# test failed with no row left streaming, 1 run in 8 on a loaded machine)
ids=$(s '",".join(str(i) for i in d["ask_ids"]) or "0"')
left=unknown
for _ in $(seq 1 $((40 * NP_TIMEOUT_SCALE))); do
	read -r left young < <(np_psql_super -d neonpool -At -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE created_at > now() - interval '30 seconds') FROM messages WHERE id IN ($ids) AND status = 'streaming'")
	[ "$left" = 0 ] || [ "$young" = 0 ] && break
	sleep 1
done
np_log "answers by status: $(np_psql_super -d neonpool -At -c "SELECT string_agg(status || '=' || n, ' ') FROM (SELECT status, count(*) n FROM messages WHERE id IN ($ids) GROUP BY status) x")"
[ "$left" = 0 ] || np_log "left streaming: $(np_psql_super -d neonpool -At -c "SELECT string_agg(id || ' created ' || created_at || ' lease ' || coalesce(lease_until::text, '-'), '; ') FROM messages WHERE id IN ($ids) AND status = 'streaming'") (now $(np_psql_super -d neonpool -At -c 'SELECT now()'))"
np_expect_eq "no answer left streaming past 30 s" 0 "$left"

np_curl "/api/v1/books/$NP_BOOK_MIN"
np_expect_eq "still serving reads" 200 "$NP_STATUS"
np_expect "the master never stopped respawning" bash -c "! grep -qE 'respawning stopped|exiting' '$NP_DAEMON_LOG'"
backoffs=$(grep -c 'respawn backoff:' "$NP_DAEMON_LOG")
echo "RESULT kill soak $secs s: respawn backoff entered $backoffs times; $kills_w worker + $kills_a ask worker kills; min alive $(s 'd["min_workers"]') workers, $(s 'd["min_ask"]') ask workers in $(s 'd["samples"]') samples; reads $reads, failed $failed; budget max $max_conns/$budget; posts acked $(s 'd["posts_acked"]'), not exactly once $(s 'd["posts_not_exactly_once"]'); asks $(s 'd["asks"]'), left streaming $left"
np_finish
