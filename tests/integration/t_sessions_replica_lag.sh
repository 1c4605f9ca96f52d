#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_sessions_replica_lag.sh - read-your-writes: with a replica that never catches up, a session's reads after its own writes still see them (session routes read the primary); the replica does serve the book reads.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_prepare
# The "replica": a database with the same schema that no write ever reaches (infinite lag),
# reached over the unix socket.
np_psql_super -c "CREATE DATABASE neonpool_lag OWNER neonpool" >/dev/null
np_write_conf "$NP_TMP/lag.conf" "database_url=postgresql://neonpool@127.0.0.1:$NP_PG_PORT/neonpool_lag?sslmode=verify-full&sslrootcert=$NP_PG_CA" \
	"database_password_file=$NP_TMP/db.password"
"$NEONPOOLCTL" -c "$NP_TMP/lag.conf" migrate --dir "$np_top/sql" >"$NP_TMP/out/migrate-lag.out" 2>&1 ||
	np_fail "migrate of the lagging replica failed: $(cat "$NP_TMP/out/migrate-lag.out")"
replica="host=$NP_PG_SOCKDIR port=$NP_PG_PORT dbname=neonpool_lag user=neonpool"
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" workers=4 budget=2 min_warm=1 \
	replica_url="$replica" replica_budget=2
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
np_wait_db_ready

np_curl /api/v1/books/$NP_BOOK_MIN
np_expect_eq "a book read goes to the replica, which lacks it: 404" 404 "$NP_STATUS"

base="http://127.0.0.1:$NP_HTTP_PORT/api/v1"
sess=$(curl -s -X POST "$base/sessions")
sid=$(echo "$sess" | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
tok=$(echo "$sess" | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
seen=0
for i in $(seq 1 20); do
	curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $tok" \
		--data "{\"role\":\"user\",\"content\":\"m$i\"}" "$base/sessions/$sid/messages"
	got=$(curl -s -H "Authorization: Bearer $tok" "$base/sessions/$sid/messages?limit=1" |
		"$NP_PYTHON" -c 'import json,sys; d = json.load(sys.stdin); print(d["messages"][0]["content"] if d.get("messages") else d)')
	[ "$got" = "m$i" ] && seen=$((seen + 1))
done
np_expect_eq "20 writes, each read back at once: all seen" 20 "$seen"
np_expect_eq "the replica holds none of them" 0 \
	"$(np_psql_super -d neonpool_lag -At -c 'SELECT count(*) FROM messages')"
rep=$(np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%' AND datname = 'neonpool_lag'")
np_expect "the replica is connected ($rep) and was used for the book read" test "$rep" -ge 1
echo "RESULT read-your-writes with a replica that never catches up: $seen of 20 writes read back at once"
np_finish
