#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_migrate.sh - neonpoolctl migrate, seed and check-db against a real PostgreSQL 15, and migrate through PgBouncer in transaction mode.
#
# NP_CTL_WRAPPER prefixes every neonpoolctl run, e.g. "valgrind --leak-check=full --log-file=@TMP@/vg.%p"
# (lib.sh's teardown fails the test on a valgrind error in @TMP@/vg.*).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"

[ -x "$NEONPOOLCTL" ] || np_fail "neonpoolctl not built: $NEONPOOLCTL (run make)"
SQLDIR=$np_top/sql
[ -f "$SQLDIR/001_textbooks.sql" ] || np_fail "missing $SQLDIR/001_textbooks.sql"
# The project's migrations (001, 002, ...): "N|NNN_name.sql" each, space-separated, and how many.
SQL_FILES=$(cd "$SQLDIR" && ls [0-9][0-9][0-9]_*.sql)
SQL_ROWS=$(for f in $SQL_FILES; do printf '%d|%s ' "$((10#${f%%_*}))" "$f"; done)
SQL_ROWS=${SQL_ROWS% }
SQL_N=$(echo "$SQL_FILES" | wc -w)
SQL_LATEST=$(f=$(echo "$SQL_FILES" | tail -n 1); echo "$((10#${f%%_*}))")
np_start_pg

NP_CTL_WRAP=()
[ -n "${NP_CTL_WRAPPER:-}" ] && read -r -a NP_CTL_WRAP <<<"${NP_CTL_WRAPPER//@TMP@/$NP_TMP}"

# ctl NAME CONF ARGS...: run neonpoolctl -c CONF ARGS; stdout in out/NAME.out, stderr in
# out/NAME.err (both checked for the password at teardown), the exit status in out/NAME.rc (for
# runs in the background); sets RC and MS (wall time).
ctl() {
	local name=$1 conf=$2 t0; shift 2
	np_now_ms; t0=$NP_NOW
	"${NP_CTL_WRAP[@]}" "$NEONPOOLCTL" -c "$conf" "$@" >"$NP_TMP/out/$name.out" 2>"$NP_TMP/out/$name.err"
	RC=$?
	echo "$RC" >"$NP_TMP/out/$name.rc"
	np_now_ms; MS=$((NP_NOW - t0))
	np_log "neonpoolctl $* -> exit $RC in $MS ms"
	return 0
}
has() { grep -qF -- "$2" "$NP_TMP/out/$1.out" "$NP_TMP/out/$1.err"; }   # has NAME TEXT

# query DB SQL: one value from database DB as the application role.
query() {
	PGPASSWORD=$NP_TEST_PASSWORD PGSSLROOTCERT=$NP_PG_CA "$PGBIN/psql" -X -A -t -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$NP_PG_PORT dbname=$1 user=neonpool sslmode=verify-full" -c "$2"
}

# The password is in a file, not in the URL: conf_read_password is exercised too.
printf '%s\n' "$NP_TEST_PASSWORD" >"$NP_TMP/db.password"
chmod 0600 "$NP_TMP/db.password"
np_secret_exempt "$NP_TMP/db.password"
url() { echo "postgresql://neonpool@127.0.0.1:$NP_PG_PORT/$1?sslmode=verify-full&sslrootcert=$NP_PG_CA"; }
CONF=$NP_TMP/ctl.conf
np_write_conf "$CONF" "database_url=$(url neonpool)" "database_password_file=$NP_TMP/db.password"

# --- migrate on an empty database, then again ----------------------------------------------
ctl migrate1 "$CONF" migrate --dir "$SQLDIR"
np_expect_eq "migrate on an empty database exits 0" 0 "$RC"
np_expect "migrate prints 'applied 001_textbooks.sql'" has migrate1 "applied 001_textbooks.sql"
np_expect "migrate prints 'applied 002_import.sql'" has migrate1 "applied 002_import.sql"
np_expect_eq "neonpool_migrations holds each migration once" "$SQL_ROWS" \
	"$(query neonpool "SELECT string_agg(version || '|' || name, ' ' ORDER BY version) FROM neonpool_migrations")"
np_expect_eq "the textbook tables exist" "books chapters passages" \
	"$(query neonpool "SELECT string_agg(c, ' ' ORDER BY c) FROM unnest(ARRAY['books','chapters','passages']) c WHERE to_regclass(c) IS NOT NULL")"
np_expect_eq "passages has a GIN index on tsv" 1 \
	"$(query neonpool "SELECT count(*) FROM pg_indexes WHERE tablename = 'passages' AND indexdef LIKE '%USING gin (tsv)%'")"

ctl migrate2 "$CONF" migrate --dir "$SQLDIR"
np_expect_eq "second migrate exits 0" 0 "$RC"
np_expect "second migrate skips 001" has migrate2 "skipped 001_textbooks.sql"
np_expect "second migrate applies nothing" has migrate2 "0 applied, $SQL_N skipped"
np_expect_eq "still $SQL_N rows in neonpool_migrations" "$SQL_N" "$(query neonpool "SELECT count(*) FROM neonpool_migrations")"

# --- two concurrent migrate runs on a fresh database must serialize -----------------------------
# The project's files and 901_slow.sql, which sleeps 1 s inside its transaction, so the two runs
# overlap for sure. Without the lock both would create a table (42P07) or insert a version twice
# (23505); each file must be applied by exactly one run and skipped by the other.
CONC_SQL=$NP_TMP/sql-conc
mkdir -p "$CONC_SQL"
cp "$SQLDIR"/[0-9][0-9][0-9]_*.sql "$CONC_SQL/"
printf 'SELECT pg_sleep(1);\nCREATE TABLE slow_marker (id int);\n' >"$CONC_SQL/901_slow.sql"
CONC_FILES="$SQL_FILES 901_slow.sql"
CONC_ONCE=$(for f in $CONC_FILES; do printf '%d:1 ' "$((10#${f%%_*}))"; done)
CONC_ONCE=${CONC_ONCE% }

# concurrent LABEL CONF_A CONF_B DB: two migrate runs at once against DB.
concurrent() {
	local label=$1 conf_a=$2 conf_b=$3 db=$4 pa pb ra rb f both
	ctl "$label-a" "$conf_a" migrate --dir "$CONC_SQL" & pa=$!
	ctl "$label-b" "$conf_b" migrate --dir "$CONC_SQL" & pb=$!
	wait "$pa"
	wait "$pb"
	ra=$(cat "$NP_TMP/out/$label-a.rc" 2>/dev/null || echo none)
	rb=$(cat "$NP_TMP/out/$label-b.rc" 2>/dev/null || echo none)
	np_expect_eq "$label: first concurrent migrate exits 0" 0 "$ra"
	np_expect_eq "$label: second concurrent migrate exits 0" 0 "$rb"
	np_expect_eq "$label: each version recorded exactly once" "$CONC_ONCE" \
		"$(query "$db" "SELECT string_agg(version || ':' || n, ' ' ORDER BY version) FROM (SELECT version, count(*) n FROM neonpool_migrations GROUP BY version) s")"
	both=$(cat "$NP_TMP/out/$label-a.out" "$NP_TMP/out/$label-b.out")
	for f in $CONC_FILES; do
		np_expect_eq "$label: $f applied by exactly one run, skipped by the other" "1 1" \
			"$(grep -c "^applied $f " <<<"$both") $(grep -c "^skipped $f " <<<"$both")"
	done
}
printf 'CREATE DATABASE np_conc OWNER neonpool;\nCREATE DATABASE np_pool OWNER neonpool;\n' |
	np_psql_super >"$NP_TMP/out/createdb.out" 2>&1 || np_fail "CREATE DATABASE: $(cat "$NP_TMP/out/createdb.out")"
CONF_CONC=$NP_TMP/ctl-conc.conf
np_write_conf "$CONF_CONC" "database_url=$(url np_conc)" "database_password_file=$NP_TMP/db.password"
concurrent direct "$CONF_CONC" "$CONF_CONC" np_conc

# The same through PgBouncer in transaction mode (Neon's pooler): a session-level lock would not
# hold there, a transaction-level one does.
if command -v pgbouncer >/dev/null 2>&1; then
	np_start_pgbouncer np_pool 2
	PGB_PORT=$NP_PGB_PORT
	CONF_PGB=$NP_TMP/ctl-pgb.conf
	np_write_conf "$CONF_PGB" "database_url=postgresql://neonpool@127.0.0.1:$PGB_PORT/np_pool?sslmode=disable" \
		"database_password_file=$NP_TMP/db.password"
	concurrent pgbouncer "$CONF_PGB" "$CONF_PGB" np_pool
	ctl pgb-seed "$CONF_PGB" seed --books 2 --chapters 2 --passages 2
	np_expect_eq "seed through PgBouncer exits 0" 0 "$RC"
	ctl pgb-check "$CONF_PGB" check-db
	np_expect_eq "check-db through PgBouncer exits 0" 0 "$RC"
else
	np_log "pgbouncer not installed: the transaction-pooler part is not run"
fi

# --- a broken migration rolls back and exits 1 --------------------------------------------------
BROKEN_SQL=$NP_TMP/sql-broken
mkdir -p "$BROKEN_SQL"
cp "$SQLDIR"/*.sql "$BROKEN_SQL/"
printf -- '-- creates a table, then fails\nCREATE TABLE broken_marker (id int);\n\nCREAT TABLE oops (id int);\n' \
	>"$BROKEN_SQL/901_broken.sql"
ctl broken "$CONF" migrate --dir "$BROKEN_SQL"
np_expect_eq "broken migration exits 1" 1 "$RC"
np_expect "the error names the file" has broken "901_broken.sql"
np_expect "the error gives the SQLSTATE (42601)" has broken "SQLSTATE 42601"
np_expect "the error gives the line (4)" has broken "at line 4"
np_expect_eq "no 901 row in neonpool_migrations" 0 "$(query neonpool "SELECT count(*) FROM neonpool_migrations WHERE version = 901")"
np_expect_eq "the failed migration was rolled back (no broken_marker)" "" \
	"$(query neonpool "SELECT to_regclass('broken_marker')")"
# one run's pending files commit together: a good file before the broken one is rolled back with
# it (the release still serving never sees half of a release's schema)
printf -- '-- a good file before the broken one\nCREATE TABLE good_marker (id int);\n' >"$BROKEN_SQL/900_good.sql"
ctl broken2 "$CONF" migrate --dir "$BROKEN_SQL"
np_expect_eq "a run with a good file then a broken one exits 1" 1 "$RC"
np_expect "it says nothing was applied" has broken2 "failed at 901_broken.sql: nothing applied (1 before it in this run rolled back with it)"
np_expect_eq "the good file of the failed run was rolled back too (no good_marker, no 900 row)" "|0" \
	"$(query neonpool "SELECT concat(to_regclass('good_marker'), '|', (SELECT count(*) FROM neonpool_migrations WHERE version = 900))")"
rm "$BROKEN_SQL/900_good.sql"

# the release before 006 calls np_ask_begin() with eight arguments: it must still answer after this
# release's migrations (009), with the lease that release cannot renew set long (1 h)
sess=$(query neonpool "WITH s AS (INSERT INTO sessions (token_hash) VALUES (sha256('t_migrate-prev'::bytea)) RETURNING id) SELECT id FROM s" 2>&1)
ab=$(query neonpool "SELECT b.status || '|' || b.answer_id FROM np_ask_begin($sess, NULL, '\\x00'::bytea, 'vacuum', 3, 10, 3, 'retrieval') b" 2>&1)
np_expect_eq "np_ask_begin with the previous release's eight arguments answers 201" 201 "${ab%%|*}"
np_expect_eq "its answer is leased for the longest answer that release can make (1 h)" t \
	"$(query neonpool "SELECT lease_until > now() + interval '59 minutes' FROM messages WHERE id = '${ab#*|}'" 2>&1)"

# --- bad file names and duplicate numbers are rejected before anything runs --------------------
BAD_SQL=$NP_TMP/sql-bad
mkdir -p "$BAD_SQL"
cp "$SQLDIR"/*.sql "$BAD_SQL/"
printf 'CREATE TABLE bad_name_marker (id int);\n' >"$BAD_SQL/2_Bad-Name.sql"
ctl badname "$CONF" migrate --dir "$BAD_SQL"
np_expect_eq "a bad file name exits 1" 1 "$RC"
np_expect "the error names the bad file" has badname "2_Bad-Name.sql: bad file name"
rm "$BAD_SQL/2_Bad-Name.sql"
printf 'CREATE TABLE dup_a (id int);\n' >"$BAD_SQL/901_dup_a.sql"
printf 'CREATE TABLE dup_b (id int);\n' >"$BAD_SQL/901_dup_b.sql"
ctl duplicate "$CONF" migrate --dir "$BAD_SQL"
np_expect_eq "a duplicate number exits 1" 1 "$RC"
np_expect "the error names both files" has duplicate "duplicate migration number 901: 901_dup_a.sql and 901_dup_b.sql"
np_expect_eq "nothing was applied for the rejected sets" "" \
	"$(query neonpool "SELECT concat(to_regclass('bad_name_marker'), to_regclass('dup_a'), to_regclass('dup_b'))")"
ctl nodir "$CONF" migrate --dir "$NP_TMP/no-such-dir"
np_expect_eq "a missing directory exits 1" 1 "$RC"

# --- seed: idempotent, deterministic ---------------------------------------------------------
counts() {
	query "$1" "SELECT (SELECT count(*) FROM books WHERE slug LIKE 'sample-book-%') || ' ' ||
		(SELECT count(*) FROM chapters ch JOIN books b ON b.id = ch.book_id WHERE b.slug LIKE 'sample-book-%') || ' ' ||
		(SELECT count(*) FROM passages p JOIN chapters ch ON ch.id = p.chapter_id JOIN books b ON b.id = ch.book_id
		 WHERE b.slug LIKE 'sample-book-%')"
}
ctl seed1 "$CONF" seed --books 5 --chapters 4 --passages 3
np_expect_eq "seed exits 0" 0 "$RC"
np_expect "seed prints what it inserted" has seed1 "inserted: books 5, chapters 20, passages 60"
ctl seed2 "$CONF" seed --books 5 --chapters 4 --passages 3
np_expect_eq "second seed exits 0" 0 "$RC"
np_expect "second seed inserts nothing" has seed2 "inserted: books 0, chapters 0, passages 0"
np_expect_eq "after seeding twice: 5 books, 20 chapters, 60 passages" "5 20 60" "$(counts neonpool)"
np_expect "passages are searchable (tsv)" test "$(query neonpool \
	"SELECT count(*) FROM passages WHERE tsv @@ to_tsquery('english', 'molecule | theorem | river')")" -gt 0
# Defaults in the other database: 20 x 10 x 20; its first 5 x 4 x 3 are the same text.
ctl seed-default "$CONF_CONC" seed
np_expect_eq "seed with defaults exits 0" 0 "$RC"
np_expect_eq "defaults: 20 books, 200 chapters, 4000 passages" "20 200 4000" "$(counts np_conc)"
digest_sql="SELECT md5(string_agg(b.slug || b.title || coalesce(b.author, '') || ch.position || ch.title || p.position || p.body,
	'|' ORDER BY b.slug, ch.position, p.position)) FROM books b JOIN chapters ch ON ch.book_id = b.id
	JOIN passages p ON p.chapter_id = ch.id WHERE b.slug <= 'sample-book-005' AND ch.position <= 4 AND p.position <= 3"
np_expect_eq "the generated text is deterministic" "$(query neonpool "$digest_sql")" "$(query np_conc "$digest_sql")"
ctl seed-bad "$CONF" seed --books 0
np_expect_eq "seed --books 0 exits 1" 1 "$RC"

# --- check-db --------------------------------------------------------------------------------
ctl check "$CONF" check-db
np_expect_eq "check-db exits 0" 0 "$RC"
np_expect "check-db prints server_version 15.x" grep -qE '^server_version: +15\.' "$NP_TMP/out/check.out"
np_expect "check-db prints max_connections 100" grep -qE '^max_connections: +100$' "$NP_TMP/out/check.out"
np_expect "check-db reports TLS" grep -qE '^ssl: +yes \(TLS' "$NP_TMP/out/check.out"
np_expect "check-db reports the migration version" grep -qE "^migrations: +version $SQL_LATEST " "$NP_TMP/out/check.out"
np_expect "check-db says healthy: yes" grep -qE "^healthy: +yes$" "$NP_TMP/out/check.out"

ctl check-json "$CONF" check-db --json
J=$NP_TMP/out/check-json.out
np_expect_eq "check-db --json exits 0" 0 "$RC"
np_expect "check-db --json prints one JSON object" np_json_valid "$J"
np_expect_eq "json: healthy" True "$(np_json_get "$J" 'd["healthy"]')"
np_expect_eq "json: max_connections" 100 "$(np_json_get "$J" 'd["max_connections"]')"
np_expect_eq "json: ssl.in_use" True "$(np_json_get "$J" 'd["ssl"]["in_use"]')"
np_expect_eq "json: 5 round trips" 5 "$(np_json_get "$J" 'd["select1_ms"]["count"]')"
np_expect_eq "json: migrations.latest_version" "$SQL_LATEST" "$(np_json_get "$J" 'd["migrations"]["latest_version"]')"
np_expect "json: counts itself among neonpool connections" test "$(np_json_get "$J" 'd["connections"]["neonpool"]')" -ge 1
np_expect "json: total connections >= neonpool ones" test "$(np_json_get "$J" 'd["connections"]["total"]')" -ge \
	"$(np_json_get "$J" 'd["connections"]["neonpool"]')"
np_expect "json: no fleet without --hosts" test "$(np_json_get "$J" '"fleet" in d')" = False

# --hosts N (issue 19, the direct topology): N hosts each with this budget must fit in
# max_connections - superuser_reserved_connections - the connections of everything not neonpool
CONF_B3=$NP_TMP/ctl-b3.conf
np_write_conf "$CONF_B3" "database_url=$(url neonpool)" "database_password_file=$NP_TMP/db.password" budget=3
ctl hosts-fit "$CONF_B3" check-db --json --hosts 2
J=$NP_TMP/out/hosts-fit.out
np_expect_eq "--hosts 2 x budget 3 fits in a server of 100: exit 0" 0 "$RC"
np_expect_eq "json: fleet sum = hosts x budget" "2 3 6 True" \
	"$(np_json_get "$J" '"%d %d %d %s" % (d["fleet"]["hosts"], d["fleet"]["budget"], d["fleet"]["sum"], d["fleet"]["fits"])')"
np_expect_eq "json: room = max_connections - reserved - others' connections" \
	"$(np_json_get "$J" 'd["max_connections"] - d["superuser_reserved_connections"] - (d["connections"]["total"] - d["connections"]["neonpool"])')" \
	"$(np_json_get "$J" 'd["fleet"]["room"]')"
ctl hosts-full "$CONF_B3" check-db --hosts 40
np_expect_eq "--hosts 40 x budget 3 = 120 > 100 - 3: exit 2" 2 "$RC"
np_expect "it prints the sum and the room" grep -qE '^fleet: +40 hosts x budget 3 = 120; room [0-9]+ \(does not fit\)$' "$NP_TMP/out/hosts-full.out"
np_expect "it warns and names the rule" grep -qE "^warning: +the hosts' budgets add up to more than the connections left" "$NP_TMP/out/hosts-full.out"
np_expect "it is still healthy" grep -qE '^healthy: +yes$' "$NP_TMP/out/hosts-full.out"
ctl hosts-bad "$CONF_B3" check-db --hosts 0
np_expect_eq "--hosts 0: exit 1 with a message" "1 yes" "$RC $(grep -q -- '--hosts: expected a number of hosts from 1 to 1000' "$NP_TMP/out/hosts-bad.err" && echo yes)"

# Wrong password (in the URL, so the masking of the URL is tested too).
WRONG="wrong-pw-$RANDOM$RANDOM"
CONF_WRONG=$NP_TMP/ctl-wrong.conf
np_write_conf "$CONF_WRONG" "database_url=postgresql://neonpool:$WRONG@127.0.0.1:$NP_PG_PORT/neonpool?sslmode=require"
ctl wrong "$CONF_WRONG" check-db
np_expect_eq "wrong password: exit 1" 1 "$RC"
np_expect "wrong password: class auth" has wrong "class: auth"
np_expect "wrong password: the URL is shown masked" has wrong "password=********"
np_expect "wrong password: the password is not in the output" sh -c "! grep -qF -- '$WRONG' '$NP_TMP/out/wrong.out' '$NP_TMP/out/wrong.err'"
ctl wrong-json "$CONF_WRONG" check-db --json
np_expect_eq "wrong password --json: class auth" auth "$(np_json_get "$NP_TMP/out/wrong-json.out" 'd["error"]["class"]')"
np_expect "wrong password --json: the password is not in the output" sh -c "! grep -qF -- '$WRONG' '$NP_TMP/out/wrong-json.out' '$NP_TMP/out/wrong-json.err'"
ctl wrong-migrate "$CONF_WRONG" migrate --dir "$SQLDIR"
np_expect_eq "wrong password: migrate exits 1" 1 "$RC"
np_expect "wrong password: migrate says cannot connect" has wrong-migrate "neonpoolctl: cannot connect to "
np_expect "wrong password: migrate does not print the password" sh -c "! grep -qF -- '$WRONG' '$NP_TMP/out/wrong-migrate.out' '$NP_TMP/out/wrong-migrate.err'"

# Connection slots: a role with CONNECTION LIMIT 0 gets 53300 "too many connections for role".
printf "CREATE ROLE np_full LOGIN CONNECTION LIMIT 0 PASSWORD '%s';\n" "$NP_TEST_PASSWORD" |
	np_psql_super >"$NP_TMP/out/role.out" 2>&1 || np_fail "CREATE ROLE: $(cat "$NP_TMP/out/role.out")"
CONF_FULL=$NP_TMP/ctl-full.conf
np_write_conf "$CONF_FULL" "database_url=postgresql://np_full@127.0.0.1:$NP_PG_PORT/neonpool?sslmode=require" \
	"database_password_file=$NP_TMP/db.password"
ctl full "$CONF_FULL" check-db --json
np_expect_eq "no free slot: exit 1" 1 "$RC"
np_expect_eq "no free slot: class too_many_clients" too_many_clients "$(np_json_get "$NP_TMP/out/full.out" 'd["error"]["class"]')"

# Closed port: refused at once.
CLOSED=$(np_free_port) || np_fail "no free port"
CONF_CLOSED=$NP_TMP/ctl-closed.conf
np_write_conf "$CONF_CLOSED" "database_url=postgresql://neonpool@127.0.0.1:$CLOSED/neonpool?sslmode=require" \
	"database_password_file=$NP_TMP/db.password"
ctl closed "$CONF_CLOSED" check-db
np_expect_eq "closed port: exit 1" 1 "$RC"
np_expect "closed port: fails in < 12 s ($MS ms)" test "$MS" -lt 12000
np_expect "closed port: class refused" has closed "class: refused"

# A server that accepts TCP but never answers: connect_timeout from the URL (2 s) applies.
SILENT=$(np_free_port) || np_fail "no free port"
"$NP_PYTHON" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); time.sleep(60)' "$SILENT" &
SILENT_PID=$!
NP_FRONT_PIDS+=("$SILENT_PID")
np_wait_port "$SILENT" 5 || np_fail "silent listener did not start"
CONF_SILENT=$NP_TMP/ctl-silent.conf
np_write_conf "$CONF_SILENT" \
	"database_url=postgresql://neonpool@127.0.0.1:$SILENT/neonpool?sslmode=require&connect_timeout=2" \
	"database_password_file=$NP_TMP/db.password"
ctl silent "$CONF_SILENT" check-db --json
np_expect_eq "silent server: exit 1" 1 "$RC"
np_expect_eq "silent server: class timeout" timeout "$(np_json_get "$NP_TMP/out/silent.out" 'd["error"]["class"]')"
np_expect "silent server: the URL's connect_timeout=2 applies ($MS ms)" test "$MS" -lt 8000
kill "$SILENT_PID" 2>/dev/null

np_finish
