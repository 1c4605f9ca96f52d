#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_accept_wakes_one.sh - a new FastCGI connection wakes one idle worker, not all of them: with 8
# idle holders and one request at a time through nginx (a new upstream connection each), the
# workers' voluntary context switches per request stay under 3 (when every holder polled the
# listening socket, each connection woke all 8 and 7 of them found EAGAIN: about 9 per request).
# np: shared-pg
# np: serial-beside-build (voluntary context switches per request, and at least 500 requests in 2 s where 5,000 are served alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx

n=8
np_db_start workers=$n budget=$n min_warm=$n
np_wait_db_ready
# all n hold a connection, so all n watch the listening socket
for _ in $(seq 1 50); do
	[ "$(np_pool_conns)" -ge $n ] && break
	sleep 0.1
done
np_expect_eq "every worker holds a connection" $n "$(np_pool_conns)"
vcsw() {
	local t=0 p
	for p in $(np_child_pids "$NP_DAEMON_PID" np-worker); do
		t=$((t + $(awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$p/status")))
	done
	echo "$t"
}
# one_at_a_time LABEL PATH NON2XX: wrk -c1 on PATH for 2 s; the workers' voluntary context switches
# per request < 3, at least 500 requests, and NON2XX of them non-2xx ("" none, "all" every one)
one_at_a_time() {
	local label=$1 path=$2 want=$3 v0 v1 reqs non per
	v0=$(vcsw)
	wrk -t1 -c1 -d2s "http://127.0.0.1:$NP_HTTP_PORT$path" >"$NP_TMP/out/wrk.txt" 2>&1
	v1=$(vcsw)
	reqs=$(awk '/requests in/ {print $1}' "$NP_TMP/out/wrk.txt")
	non=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$NP_TMP/out/wrk.txt")
	per=$(awk -v v=$((v1 - v0)) -v r="$reqs" 'BEGIN { printf "%.2f", v / r }')
	echo "RESULT $label, one request at a time, $n workers: $reqs requests (${non:-0} non-2xx), $((v1 - v0)) voluntary switches in the workers, $per per request"
	[ "$want" = all ] && want=$reqs
	np_expect_eq "$label: non-2xx" "$want" "$non"
	np_expect "$label: at least 500 requests served ($reqs)" test "${reqs:-0}" -ge 500
	np_expect "$label: workers' voluntary context switches per request < 3 ($per)" awk -v p="$per" 'BEGIN { exit !(p < 3) }'
}
# the main socket (the version route takes no connection) and the control socket (/healthz)
one_at_a_time /api/v1/version /api/v1/version ""
one_at_a_time /healthz /healthz ""

# While the breaker is open nobody holds a connection and every worker answers the main socket's
# requests (503 without the database): each connection still wakes one of them (when the spares
# watched it without EPOLLEXCLUSIVE, each woke all 8; bench/cache_outage.sh: the workers' CPU
# over a 10 s outage under wrk -c100 4.45 s before, 3.23 s after). A daemon of its own whose
# database refuses every connect (127.0.0.1, a port nobody listens on), behind an nginx of its own.
dead_port=$(np_free_port) || np_fail "no free port"
np_start_daemon --name down workers=$n budget=$n min_warm=$n breaker_failures=1 retry_after_s=1 \
	database_url="postgresql://neonpool@127.0.0.1:$dead_port/neonpool?sslmode=disable" connect_timeout_ms=1000
np_start_nginx "unix:$NP_TMP/down.sock" "" nginx-down
for _ in $(seq 1 100); do
	curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books" | grep -q 503 && break
	sleep 0.1
done
np_expect_eq "the database refused: the book list answers 503" 503 \
	"$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books")"
one_at_a_time "breaker open: /api/v1/books (503)" /api/v1/books all
np_finish
