#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_replica_query_fail.sh - a replica that connects but fails queries (missing relation, statement_timeout): an idempotent read is retried once on the primary and answers 200.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx cgi-fcgi

np_db_prepare
# A copy of the database for the "replica" whose tables a superuser session can lock without
# blocking the primary (the copy is taken before anything connects to neonpool).
np_psql_super -c "CREATE DATABASE neonpool_replica TEMPLATE neonpool OWNER neonpool" >/dev/null ||
	np_fail "could not copy the database"

# 1. The replica's search_path has none of the tables: every query there fails (42P01).
replica="host=$NP_PG_SOCKDIR port=$NP_PG_PORT dbname=neonpool user=neonpool options='-c search_path=nonexistent'"
np_start_daemon --name nopath database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" workers=3 budget=2 min_warm=1 \
	replica_url="$replica" replica_budget=1 log_level=info
np_start_nginx "unix:$NP_TMP/nopath.sock" "" nginx "unix:$NP_TMP/control.sock"
np_wait_db_ready
np_parallel 3 $(for i in $(seq 1 30); do echo "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$((NP_BOOK_MIN + i % 10))"; done)
np_expect_eq "missing relation on the replica: 30 reads all 200" 30 "$NP_PAR_OK"
np_curl "/api/v1/passages/$NP_PASSAGE_MIN"
np_expect_eq "missing relation on the replica: a passage read answers 200" 200 "$NP_STATUS"
np_curl "/api/v1/books?limit=5"
np_expect_eq "missing relation on the replica: the book list answers 200" 200 "$NP_STATUS"
rep=$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%' AND client_addr IS NULL")
np_expect "the replica was tried (replica connections: $rep)" test "$rep" -ge 1
n=$(grep -c 'retrying on the primary' "$NP_DAEMON_LOG")
np_expect "the log says the read was retried on the primary ($n lines)" test "$n" -ge 1
echo "RESULT replica_missing_relation_retried=$n"
np_stop_daemon TERM || np_fail "daemon did not stop"

# 2. Queries on the replica hit statement_timeout (its table is locked): 200 from the primary,
# after about query_timeout_ms.
qt=300
np_psql_super -d neonpool_replica -c "BEGIN; LOCK TABLE books, chapters, passages IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT" \
	>/dev/null 2>&1 &
LOCKER=$!
np_wait_lock passages neonpool_replica
replica="host=$NP_PG_SOCKDIR port=$NP_PG_PORT dbname=neonpool_replica user=neonpool"
np_start_daemon --name locked database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status-locked" workers=3 budget=2 min_warm=1 query_timeout_ms=$qt \
	replica_url="$replica" replica_budget=1 log_level=info
ok=0 slowest=0
for i in $(seq 1 5); do
	np_now_ms; t0=$NP_NOW
	np_fcgi GET "/api/v1/books/$((NP_BOOK_MIN + i))" >/dev/null
	np_now_ms; d=$((NP_NOW - t0))
	[ "$d" -gt "$slowest" ] && slowest=$d
	[ "$NP_STATUS" = 200 ] && ok=$((ok + 1)) || np_log "read $i: $NP_STATUS $(cat "$NP_TMP/fcgi.body")"
done
np_expect_eq "statement_timeout on the replica: 5 reads all 200" 5 "$ok"
echo "RESULT replica_timeout_slowest_ms=$slowest"
np_expect "statement_timeout on the replica: slowest read $slowest ms <= 2 x query_timeout_ms + 1 s" \
	test "$slowest" -le $(((2 * qt + 1000) * NP_TIMEOUT_SCALE))
np_stop_daemon TERM || np_fail "daemon did not stop"
kill "$LOCKER" 2>/dev/null
np_psql_super -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'neonpool_replica'" >/dev/null
wait "$LOCKER" 2>/dev/null
np_finish
