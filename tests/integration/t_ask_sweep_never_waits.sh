#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_sweep_never_waits.sh - the lease sweep that a worker runs between requests (np_ask_renew,
# np_ask_expire on messages) never waits behind a lock on messages: with a SHARE ROW EXCLUSIVE lock
# held for 7 s (a migration, a long DDL, a test holding a write back), the worker keeps serving
# reads, no statement between requests fails and the breaker stays closed. Before the fix the sweep
# sat in the lock for query_timeout_ms with the worker out of service, then failed and counted a
# database failure (sessions_api.py's in-flight case answered 504 instead of 409).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

qt=10000
np_db_start workers=1 budget=1 min_warm=1 query_timeout_ms=$qt

# a read now, so the sweep finds the database in use
np_curl "/api/v1/books/$NP_BOOK_MIN"
np_expect_eq "a read before the lock: 200" 200 "$NP_STATUS"

# hold the lock a sweep (every 3 s) must meet
printf "BEGIN; LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE; SELECT pg_sleep(7); COMMIT;\n" |
	np_psql_super -d neonpool -q >/dev/null 2>&1 &
locker=$!
np_wait_lock messages
slowest=0 failed=0 n=0
np_now_ms; end=$((NP_NOW + 7000))
while :; do
	np_now_ms; [ "$NP_NOW" -ge "$end" ] && break
	t0=$NP_NOW
	np_curl "/api/v1/books/$NP_BOOK_MIN"
	np_now_ms
	n=$((n + 1))
	[ "$NP_STATUS" = 200 ] || failed=$((failed + 1))
	[ $((NP_NOW - t0)) -gt "$slowest" ] && slowest=$((NP_NOW - t0))
	sleep 0.1
done
wait "$locker"
np_log "$n reads while messages was locked, $failed failed, slowest $slowest ms"
np_measure sweep_lock_slowest_read_ms "$slowest"
# a read at least every second on average, so that each 3 s sweep met reads around it (20 was a
# bet on a quiet machine: 17 under a load average of 12, each curl + sleep taking 400 ms)
np_expect "reads while messages is locked: at least 7 in 7 s ($n)" test "$n" -ge 7
np_expect_eq "no read failed while messages was locked" 0 "$failed"
np_expect "no read waited for the sweep: slowest $slowest ms < query_timeout_ms / 2" test "$slowest" -lt $((qt / 2))
np_expect "no statement between requests failed" \
	bash -c "! grep -q 'statement between requests failed' '$NP_DAEMON_LOG'"
np_finish
