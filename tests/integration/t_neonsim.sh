#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_neonsim.sh - neonsim (tests/tools/neonsim.c), the Neon-like remote database, against a real PostgreSQL
# over TLS with psql/libpq as the client: the one-way delays give the round trip they promise (measured per
# query), turns are counted one per query, scale to zero closes an idle session and holds the next connect
# for the cold start, blackhole/reset/refuse fail a connect the way they should, the control socket refuses
# bad lines; and its ceiling: pgbench -S through it at 0 ms against direct (RESULT line).
# np: serial-beside-build (pgbench direct and through neonsim compared, best of 2 alternating rounds: 68% seen, 40% needed; cold-start and hold times with margins of 2x)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
. "$(dirname "$0")/nslib.sh"
np_require pgbench

np_start_pg
np_start_neonsim --cold-start 700
export PGPASSWORD=$NP_TEST_PASSWORD PGCONNECT_TIMEOUT=10
ns_conn="host=127.0.0.1 port=$NP_NS_PORT dbname=neonpool user=neonpool sslmode=require"
direct_conn="host=127.0.0.1 port=$NP_PG_PORT dbname=neonpool user=neonpool sslmode=require"

# q_times N: run N `SELECT 1` on one session through neonsim with \timing; prints each time (ms), sorted
q_times() {
	{ echo '\timing on'; for _ in $(seq 1 "$1"); do echo 'SELECT 1;'; done; } |
		"$PGBIN/psql" -X -q -At "$ns_conn" 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -n
}
median() { awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print -1 }'; }
# elapsed_ms CMD...: run CMD with output to out/elapsed.out; sets EL_MS and EL_RC
elapsed_ms() {
	local t0
	np_now_ms; t0=$NP_NOW
	"$@" >"$NP_TMP/out/elapsed.out" 2>&1
	EL_RC=$?
	np_now_ms; EL_MS=$((NP_NOW - t0))
}
psql_ns() { "$PGBIN/psql" -X -q -At "$ns_conn" -c "${1:-SELECT 1}"; }

# ---- pass-through and delay: the round trip per query -----------------------------------------------
np_expect_eq "a query through neonsim answers" 42 "$(psql_ns 'SELECT 42' 2>&1)"
base=$(q_times 20 | median)
np_ns delay 5 >/dev/null
t0=$(np_ns_stat turns)
times=$(q_times 20)
turns=$(( $(np_ns_stat turns) - t0 ))
med=$(echo "$times" | median)
lo=$(echo "$times" | head -n 1)
echo "RESULT SELECT 1 through neonsim: median $base ms at 0 ms; with 5 ms each way (10 ms RTT) median $med ms, min $lo ms"
np_expect "with 5+5 ms no query is faster than the 10 ms round trip (min $lo ms)" \
	awk -v v="$lo" 'BEGIN { exit !(v >= 10.0) }'
np_expect "with 5+5 ms the median query is within 10 + 15*scale ms (median $med ms)" \
	awk -v v="$med" -v s="$NP_TIMEOUT_SCALE" 'BEGIN { exit !(v < 10.0 + 15 * s) }'
# one session: the TLS and SCRAM handshake turns, then one turn per query (and the Terminate)
np_expect "one turn per query: 20 queries counted $turns turns (20 + the connect's handshake turns, at most 8)" \
	test "$turns" -ge 20 -a "$turns" -le 28
np_ns delay 3 1 >/dev/null
med=$(q_times 10 | median)
np_expect "an asymmetric 3+1 ms delay gives a 4 ms round trip (median $med ms)" \
	awk -v v="$med" -v s="$NP_TIMEOUT_SCALE" 'BEGIN { exit !(v >= 4.0 && v < 4.0 + 15 * s) }'
np_ns delay 2 >/dev/null
np_ns jitter 6 >/dev/null
times=$(q_times 30)
lo=$(echo "$times" | head -n 1) hi=$(echo "$times" | tail -n 1)
np_expect "with 2+2 ms and 0..6 ms jitter the queries spread (min $lo ms, max $hi ms)" \
	awk -v l="$lo" -v h="$hi" 'BEGIN { exit !(l >= 4.0 && h >= l + 2.0) }'
np_ns jitter 0 >/dev/null
np_ns delay 0 >/dev/null

# ---- scale to zero: an idle session is closed, the next connect waits for the cold start ------------
np_ns suspend-after 1 >/dev/null
{ echo 'SELECT 1;'; sleep 2.5; echo "SELECT 'after idle';"; } |
	"$PGBIN/psql" -X -q -At "$ns_conn" >"$NP_TMP/out/idle.out" 2>&1
idle_rc=$?
np_expect "the session idle past suspend-after lost its connection (psql exit $idle_rc: $(tr '\n' ' ' <"$NP_TMP/out/idle.out"))" \
	test "$idle_rc" -ne 0 -a "$(grep -c 'after idle' "$NP_TMP/out/idle.out")" = 0
np_expect "the client saw the server close the connection" \
	grep -qiE 'closed the connection|connection to server was lost|SSL SYSCALL|EOF' "$NP_TMP/out/idle.out"
np_expect_eq "neonsim scaled to zero once" 1 "$(np_ns_stat suspends)"
np_expect "it closed the idle session's connection" test "$(np_ns_stat closed_by_suspend)" -ge 1
np_ns suspend-after 0 >/dev/null
elapsed_ms psql_ns
cold=$EL_MS
np_expect_eq "the first connect after scale to zero works" "0 1" "$EL_RC $(cat "$NP_TMP/out/elapsed.out")"
elapsed_ms psql_ns
warm=$EL_MS
echo "RESULT cold start 700 ms: the first connect + query after scale to zero took $cold ms, the next $warm ms"
np_expect "the first connect was held for the cold start ($cold ms >= 700)" test "$cold" -ge 700
np_expect "the next connect was not held ($warm ms < 700)" test "$warm" -lt 700
np_expect_eq "one wake" 1 "$(np_ns_stat wakes)"
# the control line `suspend` does the same at once
np_ns suspend >/dev/null
elapsed_ms psql_ns
np_expect "after \`suspend\` the next connect waits the cold start again ($EL_MS ms)" test "$EL_MS" -ge 700 -a "$EL_RC" = 0

# ---- blackhole: accepted, never answered ------------------------------------------------------------
np_ns mode blackhole >/dev/null
elapsed_ms env PGCONNECT_TIMEOUT=2 "$PGBIN/psql" -X -q -At "$ns_conn" -c 'SELECT 1'
np_expect "blackhole: the connect timed out after connect_timeout=2 ($EL_MS ms, exit $EL_RC: $(head -c 160 "$NP_TMP/out/elapsed.out"))" \
	test "$EL_RC" -ne 0 -a "$EL_MS" -ge 1900
np_expect "blackhole: libpq reports a timeout" grep -qi 'timeout' "$NP_TMP/out/elapsed.out"
np_expect "blackhole: counted" test "$(np_ns_stat blackholed)" -ge 1
# a session open before the partition hangs too (no answer), and works again when it ends
np_ns mode pass >/dev/null
# through two FIFOs, not a coproc: lib.sh's resident Python is the shell's coproc, bash keeps one,
# and it unsets a second one's PSQL_PID as soon as that process is reaped (the \q below raced
# `wait "$PSQL_PID"` under set -u: "PSQL_PID: unbound variable" in a fresh-clone run)
mkfifo "$NP_TMP/psql.in" "$NP_TMP/psql.out"
"$PGBIN/psql" -X -q -At "$ns_conn" <"$NP_TMP/psql.in" >"$NP_TMP/psql.out" 2>&1 &
psql_pid=$!
exec {psql_w}>"$NP_TMP/psql.in" {psql_r}<"$NP_TMP/psql.out"
echo "SELECT 'before';" >&"$psql_w"
read -r -t 10 line <&"$psql_r"
np_expect_eq "a session through neonsim answers" before "$line"
np_ns mode blackhole >/dev/null
echo "SELECT 'during';" >&"$psql_w"
read -r -t 1 line <&"$psql_r" || line=timeout
np_expect_eq "blackhole partitions an open session: no answer within 1 s" timeout "$line"
np_ns mode pass >/dev/null
line=""
read -r -t 10 line <&"$psql_r"
np_expect_eq "the held query is answered when the partition ends" during "$line"
echo '\q' >&"$psql_w"
wait "$psql_pid" 2>/dev/null
exec {psql_w}>&- {psql_r}<&-

# ---- reset and refuse -------------------------------------------------------------------------------
np_ns mode reset >/dev/null
elapsed_ms psql_ns
np_expect "reset: the connect fails at once ($EL_MS ms, exit $EL_RC: $(head -c 160 "$NP_TMP/out/elapsed.out"))" \
	test "$EL_RC" -ne 0 -a "$EL_MS" -lt 2000
np_expect "reset: libpq sees the connection reset or closed" \
	grep -qiE 'reset by peer|closed the connection|SSL SYSCALL|could not receive' "$NP_TMP/out/elapsed.out"
np_ns mode refuse >/dev/null
elapsed_ms psql_ns
np_expect "refuse: the connect is refused ($(head -c 160 "$NP_TMP/out/elapsed.out"))" \
	grep -qi 'refused' "$NP_TMP/out/elapsed.out"
np_ns mode pass >/dev/null
np_expect_eq "pass again: a query answers" 7 "$(psql_ns 'SELECT 7' 2>&1)"

# ---- the control socket: bad lines are answered with an error, the proxy carries on -----------------
for bad in "mode sideways" "delay -1" "delay 10001" "delay 1.2345" "suspend-after x" "frobnicate" "stats now"; do
	out=$("$NEONSIM" --ctl "$NP_NS_CTL" $bad 2>&1)
	np_expect "control '$bad' is refused ($out)" test "${out#error: }" != "$out"
done
long=$(head -c 400 /dev/zero | tr '\0' 'x')
out=$(printf '%s\n' "$long" | "$NP_PYTHON" -c 'import socket,sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read()); s.settimeout(5)
print(s.recv(200).decode().strip())' "$NP_NS_CTL" 2>&1)
np_expect_eq "a control line over 256 bytes is refused" "error: line too long" "$out"
np_expect_eq "neonsim still answers" ok "$(np_ns ping)"

# ---- its ceiling: pgbench -S through it at 0 ms against direct --------------------------------------
np_ns delay 0 >/dev/null
"$PGBIN/pgbench" -i -q -s 1 "$direct_conn" >"$NP_TMP/out/pgbench-init.out" 2>&1 ||
	np_fail "pgbench -i failed: $(tail -n 5 "$NP_TMP/out/pgbench-init.out")"
bench() {   # bench CONNINFO NAME: tps of pgbench -S, 8 clients, 2 s
	"$PGBIN/pgbench" -n -S -c 8 -j 2 -T 2 "$1" >"$NP_TMP/out/pgbench.$2.out" 2>&1 ||
		np_fail "pgbench ($2) failed: $(tail -n 5 "$NP_TMP/out/pgbench.$2.out")"
	sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$NP_TMP/out/pgbench.$2.out" | head -n 1 | cut -d. -f1
}
# alternating, the best of two each: a shared 2-core machine varies by tens of percent from second to second
direct=0 through=0
for i in 1 2; do
	t=$(bench "$direct_conn" direct.$i); [ "$t" -gt "$direct" ] && direct=$t
	t=$(bench "$ns_conn" neonsim.$i); [ "$t" -gt "$through" ] && through=$t
done
pct=$((through * 100 / (direct > 0 ? direct : 1)))
echo "RESULT neonsim ceiling: pgbench -S -c8 over TLS, best of 2 x 2 s alternating: direct $direct tps, through neonsim (0 ms) $through tps ($pct%);" \
	"neonsim $(ps -o cputime= -p "$NP_NS_PID" | tr -d ' ') CPU for the whole test, $(awk '/VmHWM/ { print $2 " kB" }' /proc/$NP_NS_PID/status) peak RSS"
# on 2 cores pgbench, PostgreSQL and neonsim share the CPU: the hop costs, but it must not be the bottleneck
np_expect "through neonsim pgbench keeps at least 40% of direct ($pct%)" test "$pct" -ge 40
np_expect_eq "no upstream connect failed" 0 "$(np_ns_stat upstream_failures)"
np_finish
