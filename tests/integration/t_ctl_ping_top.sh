#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ctl_ping_top.sh - neonpoolctl ping shows every phase (DNS, TCP, TLS with version and cipher,
# authentication, first query) against the test server, and a classified error with a hint and
# its documented exit code against a wrong password (6), a closed port (4), a server without TLS
# when TLS is required (5), a name that does not resolve (3); the password is never printed.
# Then with every worker stuck on a locked table, `status` and `top` answer while they are stuck and show
# each worker busy with its route and age.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_start workers=2 budget=2 min_warm=2 query_timeout_ms=$((30000 * NP_TIMEOUT_SCALE))
ctl() { "$NEONPOOLCTL" -c "$NP_CTL_CONF" "$@"; }
out=$NP_TMP/out

# --help for every command, and both programs
for c in check-config migrate seed import check-db status top ping reload stop help; do
	"$NEONPOOLCTL" "$c" --help >"$out/help.txt" 2>&1
	np_expect "neonpoolctl $c --help exits 0 with its usage" \
		sh -c "[ $? = 0 ] && grep -q '^Usage: neonpoolctl .*$c' '$out/help.txt'"
done
np_expect "neonpoold --help" sh -c "'$NEONPOOLD' --help | grep -q '^Usage: neonpoold'"

ctl ping >"$out/ping.txt" 2>"$out/ping.err"
np_expect_eq "ping against the test server exits 0" 0 "$?"
for ph in dns tcp tls auth "first query" total; do
	np_expect "it times the $ph phase" grep -qE "^  $ph +[0-9]+\.[0-9]+ ms" "$out/ping.txt"
done
np_expect "it names the TLS version and cipher" grep -qE "^tls +TLSv1\.[23], cipher [A-Z0-9_-]+" "$out/ping.txt"
np_expect "it names the server version" grep -qE "^server +15\.[0-9]+.*\(PostgreSQL 15\." "$out/ping.txt"

dsn() { echo "postgresql://neonpool:$1@127.0.0.1:$2/neonpool?sslmode=${3:-verify-full}&sslrootcert=$NP_PG_CA&connect_timeout=5"; }
ctl ping "$(dsn wrong-pass-42 "$NP_PG_PORT")" >"$out/auth.txt" 2>"$out/auth.err"
np_expect_eq "a wrong password exits 6" 6 "$?"
np_expect "classified as authentication failed" grep -q "authentication failed (auth) during auth" "$out/auth.err"
np_expect "with a hint" grep -q "hint: wrong user or password" "$out/auth.err"
np_expect "the password is not printed" sh -c "! grep -q wrong-pass-42 '$out/auth.txt' '$out/auth.err'"

closed=$(np_free_port)
ctl ping "$(dsn x "$closed")" >"$out/closed.txt" 2>"$out/closed.err"
np_expect_eq "a closed port exits 4" 4 "$?"
np_expect "classified as refused during tcp" grep -q "TCP connection refused (refused) during tcp" "$out/closed.err"
np_expect "with a hint" grep -q "hint: nothing listens" "$out/closed.err"

"$NP_PYTHON" "$(dirname "$0")/notls_server.py" "$NP_TMP/notls.port" &
notls=$!
for i in $(seq 1 50); do [ -s "$NP_TMP/notls.port" ] && break; sleep 0.1; done
ctl ping "$(dsn x "$(cat "$NP_TMP/notls.port")" require)" >"$out/notls.txt" 2>"$out/notls.err"
np_expect_eq "a server without TLS when TLS is required exits 5" 5 "$?"
np_expect "classified as a TLS error during tls" grep -q "(tls) during tls" "$out/notls.err"
np_expect "with a hint" grep -q "hint: TLS was required" "$out/notls.err"
kill "$notls" 2>/dev/null; wait "$notls" 2>/dev/null

ctl ping "postgresql://neonpool@no-such-host.invalid:5432/neonpool?sslmode=require" >"$out/dns.txt" 2>"$out/dns.err"
np_expect_eq "a name that does not resolve exits 3" 3 "$?"
ctl ping a b >/dev/null 2>&1
np_expect_eq "bad arguments exit 2" 2 "$?"

# every worker stuck: the table locked, both holders inside a read
# the lock holds until the checks are done (cancelled then: a fixed 3 s ran out before `top` on a
# loaded machine)
np_psql_super -d neonpool -c "SET application_name = 't_ctl_lock'; BEGIN; LOCK TABLE books IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;" \
	>/dev/null 2>&1 &
locker=$!
for _ in $(seq 1 100); do
	[ "$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 't_ctl_lock' AND wait_event = 'PgSleep'$(np_pg_scope)")" = 1 ] && break
	sleep 0.05
done
np_curl "/api/v1/books/$NP_BOOK_MIN" &
r1=$!
np_curl "/api/v1/books/$NP_BOOK_MAX" &
r2=$!
busy=0
for i in $(seq 1 20); do
	busy=$(np_status_json 'sum(1 for w in d["workers"] if w["state"] == "busy" and w["route"] == "books.get")')
	[ "$busy" = 2 ] && break
	sleep 0.1
done
np_expect_eq "both workers are stuck in books.get" 2 "$busy"
sleep 0.5
np_now_ms; t0=$NP_NOW
ctl status >"$out/status.txt" 2>&1
np_now_ms; st_ms=$((NP_NOW - t0))
np_measure status_ms "$st_ms" "neonpoolctl status with both workers stuck"
# showing them busy proves status answered while they were stuck (it did not wait for them)
np_expect_eq "status shows both workers busy in books.get with an age (answered in $st_ms ms)" 2 \
	"$(grep -cE '^ +[0-9]+ +[0-9]+ +[0-9]+ busy +[0-9]+ +[0-9]{3,}\.[0-9]  books\.get$' "$out/status.txt")"
np_now_ms; t0=$NP_NOW
ctl top -n 1 >"$out/top.txt" 2>&1
np_now_ms; top_ms=$((NP_NOW - t0))
np_measure top_ms "$top_ms" "neonpoolctl top -n 1 with both workers stuck"
np_expect_eq "top shows both workers busy in books.get with an age (answered in $top_ms ms)" 2 \
	"$(grep -cE '^ +[0-9]+ +[0-9]+ busy +[0-9]+ +[0-9]{3,}\.[0-9]  books\.get$' "$out/top.txt")"
np_expect "top shows the budget" grep -qE "^primary +budget 2/2 in use" "$out/top.txt"
np_psql_super -d postgres -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 't_ctl_lock'$(np_pg_scope)" >/dev/null
timeout 5 "$NEONPOOLCTL" -c "$NP_CTL_CONF" status --watch 1 >"$out/watch.txt" 2>&1
np_expect "status --watch refreshed at least 3 times in 5 s" test "$(grep -c '^master pid' "$out/watch.txt")" -ge 3
wait "$locker" "$r1" "$r2"
echo "RESULT ping: exit 0/6/4/5/3; with both workers stuck: status ${st_ms} ms, top ${top_ms} ms"
np_finish
