#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_sessions_kill9.sh - kill -9 of the worker between a message POST's BEGIN and COMMIT and between its COMMIT and its response (and its backend terminated mid-write), under load: never a half-written message, never a duplicate after a retry with the same Idempotency-Key, the budget exact.
# np: shared-pg
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx wrk
# a paced background load (dblib.sh np_wrk_script): requests in flight, not both cores taken
: "${NP_WRK_DELAY_MS:=10}"; export NP_WRK_DELAY_MS

kills=${NP_KILL9_N:-25}   # tests/run.sh --long: 50
np_db_start workers=4 budget=4 min_warm=2

# the test's own hook, in the database (no debug code in the daemon): an INSERT of a 'crash-'
# message waits inside its statement at a gate sessions_crash.py opens (the advisory lock 7317001)
np_psql_super -d neonpool >/dev/null <<'SQL'
CREATE FUNCTION t_crash_sleep() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_advisory_lock_shared(7317001); PERFORM pg_advisory_unlock_shared(7317001); RETURN NEW; END $$;
CREATE TRIGGER t_crash_sleep BEFORE INSERT ON messages FOR EACH ROW
	WHEN (NEW.content LIKE 'crash-%') EXECUTE FUNCTION t_crash_sleep();
SQL

NP_SESS_PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$NP_PG_SOCKDIR" -p "$NP_PG_PORT" -U postgres -d "$NP_PG_DB")
NP_SESS_PSQL=("${NP_AS_PG[@]}" "${NP_SESS_PSQL[@]}")

# a write on a connection the server closed while it was idle: found dead before sending (a poll
# of the idle connection before every write), so it is sent on a fresh one: 201, never 503
sess=$(curl -s -X POST "http://127.0.0.1:$NP_HTTP_PORT/api/v1/sessions")
sid=$(echo "$sess" | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
tok=$(echo "$sess" | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
bad=0
for i in 1 2 3 4 5; do
	# pg_terminate_backend(pid, 5000) returns once the backend has gone (PostgreSQL 14+): a fixed
	# 0.2 s could let the write reach a backend not yet through its SIGTERM
	np_psql_super -d postgres -At -c "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%' AND state = 'idle'$(np_pg_scope)" >/dev/null
	code=$(curl -s -o "$NP_TMP/out/idle.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		-H "Authorization: Bearer $tok" -H "Idempotency-Key: idle-$i" --data "{\"role\":\"user\",\"content\":\"idle $i\"}" \
		"http://127.0.0.1:$NP_HTTP_PORT/api/v1/sessions/$sid/messages")
	[ "$code" = 201 ] || { bad=$((bad + 1)); np_log "after terminating idle backends: $code $(cat "$NP_TMP/out/idle.body")"; }
done
np_expect_eq "5 writes right after their idle connections were terminated: all 201" 0 "$bad"

np_sampler_start
# load: book reads through the same workers for the whole run
wrk -t1 -c8 -d600s -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
np_now_ms; t0=$NP_NOW
(cd "$NP_TMP/pg" && "$NP_PYTHON" "$np_top/tests/integration/sessions_crash.py" "$NP_HTTP_PORT" "$kills" \
	"'$NEONPOOLCTL' -c '$NP_CTL_CONF' status --json" -- "${NP_SESS_PSQL[@]}") >"$NP_TMP/out/crash.txt" 2>&1
rc=$?
np_now_ms; elapsed=$(((NP_NOW - t0) / 1000))
kill -INT "$wrk_pid" 2>/dev/null; wait "$wrk_pid" 2>/dev/null
read -r max_conns nsamples < <(np_sampler_stop)
cat "$NP_TMP/out/crash.txt"
np_expect_eq "kill -9 suite (sessions_crash.py) has no failure" 0 "$rc"
np_expect "the server never saw more than the budget of 4 ($max_conns in $nsamples samples)" test "$max_conns" -le 4

# the budget settles exact: in_use equals the server's count once the dead workers are reaped
settled=no
for _ in $(seq 1 100); do
	a=$(np_pool_conns); b=$(np_status_json 'd["endpoints"]["primary"]["in_use"]')
	[ "$a" = "$b" ] && { settled=yes; break; }
	sleep 0.1
done
np_expect_eq "status in_use equals pg_stat_activity ($a vs $b)" yes "$settled"
np_expect_eq "no orphaned token" 0 "$(np_status_json 'd["endpoints"]["primary"]["orphaned"]')"
np_expect "the killed workers were respawned" test "$(np_status_json 'd["respawns_total"]')" -ge "$kills"
np_curl /api/v1/books/$NP_BOOK_MIN
np_expect_eq "still serving" 200 "$NP_STATUS"
grep '"GET /api/v1/books/' "$NP_TMP/nginx/access.log" >"$NP_TMP/out/reads.log"
np_log "load during the kills: $(wc -l <"$NP_TMP/out/reads.log") book reads ($(sed -n 's/^Requests\/sec: *//p' "$NP_TMP/out/wrk.out")/s), statuses $(np_access_stats "$NP_TMP/out/reads.log"); all requests: $(np_access_stats "$NP_TMP/nginx/access.log")"
echo "RESULT kill -9: $kills between BEGIN and COMMIT, $kills between COMMIT and response, $(grep -o '"lost.retries": \[[^]]*\]' "$NP_TMP/out/crash.txt" | tr -cd ',' | wc -c | awk '{print $1 + 1}') backends terminated mid-write, under load, in ${elapsed}s: $(grep '# stats' "$NP_TMP/out/crash.txt" | cut -c10-)"
np_finish
