#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_migrate_old_db_repaired.sh - a database migrated before 003 and 004 were edited in place (the files in
# fixtures/sql-old, recorded without checksums as neonpoolctl did then) ends, after `migrate` with the current
# sql/, with the same function definitions (pg_get_functiondef) and the same recorded checksums as a fresh one;
# the rows recorded before checksums existed get the current checksum with a warning, once.
. "$(dirname "$0")/lib.sh"

[ -x "$NEONPOOLCTL" ] || np_fail "neonpoolctl not built: $NEONPOOLCTL (run make)"
OLD_SQL=$np_top/tests/integration/fixtures/sql-old
[ -f "$OLD_SQL/004_ask.sql" ] || np_fail "missing $OLD_SQL/004_ask.sql"
np_start_pg
# NP_CTL_WRAPPER prefixes every neonpoolctl run (as in t_migrate.sh), e.g. valgrind.
NP_CTL_WRAP=()
[ -n "${NP_CTL_WRAPPER:-}" ] && read -r -a NP_CTL_WRAP <<<"${NP_CTL_WRAPPER//@TMP@/$NP_TMP}"

printf '%s\n' "$NP_TEST_PASSWORD" >"$NP_TMP/db.password"
chmod 0600 "$NP_TMP/db.password"
np_secret_exempt "$NP_TMP/db.password"
conninfo() { echo "host=127.0.0.1 port=$NP_PG_PORT dbname=$1 user=neonpool sslmode=require"; }
psql_as_app() {   # psql_as_app DB ARGS...: psql as the application role
	local db=$1; shift
	PGPASSWORD=$NP_TEST_PASSWORD "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$(conninfo "$db")" "$@"
}
ctl() {   # ctl NAME DB ARGS...: neonpoolctl on database DB; out/NAME.out, out/NAME.err, RC
	local name=$1 db=$2; shift 2
	np_write_conf "$NP_TMP/$db.conf" "database_url=postgresql://neonpool@127.0.0.1:$NP_PG_PORT/$db?sslmode=require" \
		"database_password_file=$NP_TMP/db.password"
	"${NP_CTL_WRAP[@]}" "$NEONPOOLCTL" -c "$NP_TMP/$db.conf" "$@" >"$NP_TMP/out/$name.out" 2>"$NP_TMP/out/$name.err"
	RC=$?
	np_log "neonpoolctl $* on $db -> exit $RC"
}
# functions DB: every function of schema public with its definition, in a stable order.
functions() {
	psql_as_app "$1" -c "SELECT p.oid::regprocedure::text || E'\n' || pg_get_functiondef(p.oid)
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'public' ORDER BY p.oid::regprocedure::text"
}
recorded() { psql_as_app "$1" -c "SELECT string_agg(version || '|' || name || '|' || coalesce(checksum, 'NULL'), ' ' ORDER BY version) FROM neonpool_migrations"; }

printf 'CREATE DATABASE np_fresh OWNER neonpool;\nCREATE DATABASE np_old OWNER neonpool;\n' |
	np_psql_super >"$NP_TMP/out/createdb.out" 2>&1 || np_fail "CREATE DATABASE: $(cat "$NP_TMP/out/createdb.out")"

# A fresh database: the current files.
ctl fresh np_fresh migrate --dir "$np_top/sql"
np_expect_eq "migrate of a fresh database exits 0" 0 "$RC"
functions np_fresh >"$NP_TMP/out/functions.fresh" || np_fail "cannot list np_fresh's functions"

# The old database, as neonpoolctl migrate left it at that commit: its table of version and name,
# each old file in one transaction.
psql_as_app np_old -c "CREATE TABLE neonpool_migrations (version int PRIMARY KEY, name text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now())" >/dev/null || np_fail "cannot create the old neonpool_migrations"
for f in "$OLD_SQL"/[0-9][0-9][0-9]_*.sql; do
	name=$(basename "$f")
	psql_as_app np_old -1 -f "$f" -c "INSERT INTO neonpool_migrations (version, name) VALUES (${name%%_*}, '$name')" \
		>"$NP_TMP/out/old-$name.out" 2>&1 || np_fail "applying $name: $(cat "$NP_TMP/out/old-$name.out")"
done
functions np_old >"$NP_TMP/out/functions.old-before" || np_fail "cannot list np_old's functions"
np_expect "the old files leave other functions than the current ones (the drift to repair)" \
	sh -c "! cmp -s '$NP_TMP/out/functions.fresh' '$NP_TMP/out/functions.old-before'"

ctl repair np_old migrate --dir "$np_top/sql"
np_expect_eq "migrate of the old database exits 0" 0 "$RC"
for f in 001_textbooks.sql 002_import.sql 003_sessions.sql 004_ask.sql; do
	np_expect "it warns that $f was recorded without a checksum" \
		grep -qE "warning: $f .*before checksums" "$NP_TMP/out/repair.err"
done
np_expect "it applies 005" grep -qE '^applied 005_' "$NP_TMP/out/repair.out"
functions np_old >"$NP_TMP/out/functions.old-after" || np_fail "cannot list np_old's functions"
if cmp -s "$NP_TMP/out/functions.fresh" "$NP_TMP/out/functions.old-after"; then
	np_ok "every function of the repaired database is defined as in the fresh one ($(grep -c '^CREATE OR REPLACE FUNCTION' "$NP_TMP/out/functions.fresh") functions)"
else
	np_not_ok "the repaired database's functions differ from the fresh one's:"
	diff "$NP_TMP/out/functions.fresh" "$NP_TMP/out/functions.old-after" | head -n 40
fi
NFILES=$(cd "$np_top/sql" && ls [0-9][0-9][0-9]_*.sql | wc -l)
np_expect_eq "the fresh database records a SHA-256 for each of the $NFILES files" "$NFILES" \
	"$(psql_as_app np_fresh -c "SELECT count(*) FROM neonpool_migrations WHERE checksum ~ '^[0-9a-f]{64}\$'")"
np_expect_eq "both record the same versions, names and checksums" "$(recorded np_fresh)" "$(recorded np_old)"

ctl again np_old migrate --dir "$np_top/sql"
np_expect_eq "a second migrate exits 0" 0 "$RC"
np_expect "it warns no more" sh -c "! grep -q warning '$NP_TMP/out/again.err'"
np_expect "it applies nothing" grep -qE '^migrate: 0 applied' "$NP_TMP/out/again.out"
ctl status np_old migrate --status --dir "$np_top/sql"
np_expect_eq "--status exits 0" 0 "$RC"
np_expect "--status: 004_ask.sql applied" grep -qE '^applied +004_ask\.sql ' "$NP_TMP/out/status.out"
np_expect "--status: nothing pending, changed or unchecked" grep -qE ' 0 pending, 0 changed, 0 unchecked' "$NP_TMP/out/status.out"

np_finish
