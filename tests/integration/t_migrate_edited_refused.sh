#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_migrate_edited_refused.sh - an applied migration edited afterwards is refused by name (migrate exits 1 and
# applies nothing), and `migrate --status` lists applied, pending and changed files.
. "$(dirname "$0")/lib.sh"

[ -x "$NEONPOOLCTL" ] || np_fail "neonpoolctl not built: $NEONPOOLCTL (run make)"
np_start_pg
# NP_CTL_WRAPPER prefixes every neonpoolctl run (as in t_migrate.sh), e.g. valgrind.
NP_CTL_WRAP=()
[ -n "${NP_CTL_WRAPPER:-}" ] && read -r -a NP_CTL_WRAP <<<"${NP_CTL_WRAPPER//@TMP@/$NP_TMP}"

ctl() {   # ctl NAME ARGS...: neonpoolctl -c $CONF ARGS; out/NAME.out, out/NAME.err, RC
	local name=$1; shift
	"${NP_CTL_WRAP[@]}" "$NEONPOOLCTL" -c "$CONF" "$@" >"$NP_TMP/out/$name.out" 2>"$NP_TMP/out/$name.err"
	RC=$?
	np_log "neonpoolctl $* -> exit $RC"
}
has() { grep -qE -- "$2" "$NP_TMP/out/$1.out" "$NP_TMP/out/$1.err"; }   # has NAME ERE
query() {
	PGPASSWORD=$NP_TEST_PASSWORD "$PGBIN/psql" -X -A -t -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$NP_PG_PORT dbname=neonpool user=neonpool sslmode=require" -c "$1"
}

printf '%s\n' "$NP_TEST_PASSWORD" >"$NP_TMP/db.password"
chmod 0600 "$NP_TMP/db.password"
np_secret_exempt "$NP_TMP/db.password"
CONF=$NP_TMP/ctl.conf
np_write_conf "$CONF" "database_url=postgresql://neonpool@127.0.0.1:$NP_PG_PORT/neonpool?sslmode=require" \
	"database_password_file=$NP_TMP/db.password"

# A copy of the project's migrations, applied as they are.
DIR=$NP_TMP/sql
mkdir -p "$DIR"
cp "$np_top"/sql/[0-9][0-9][0-9]_*.sql "$DIR/"
ctl first migrate --dir "$DIR"
np_expect_eq "migrate of the project's files exits 0" 0 "$RC"
ctl status-clean migrate --status --dir "$DIR"
np_expect_eq "--status with everything applied exits 0" 0 "$RC"
np_expect "--status lists 003_sessions.sql applied" has status-clean '^applied +003_sessions\.sql '
np_expect "--status sums up: nothing pending or changed" has status-clean ' 0 pending, 0 changed'

# Then 003 is edited after it was applied, and a new file waits.
printf '\n-- edited after it was applied\n' >>"$DIR/003_sessions.sql"
printf 'CREATE TABLE pending_marker (id int);\n' >"$DIR/901_pending.sql"

ctl status migrate --status --dir "$DIR"
np_expect_eq "--status with a changed file exits 1" 1 "$RC"
np_expect "--status: 001_textbooks.sql applied" has status '^applied +001_textbooks\.sql '
np_expect "--status: 003_sessions.sql changed" has status '^changed +003_sessions\.sql '
np_expect "--status: 901_pending.sql pending" has status '^pending +901_pending\.sql '
np_expect "--status sums up" has status ' 1 pending, 1 changed'
np_expect_eq "--status changes nothing (no 901 row)" 0 \
	"$(query "SELECT count(*) FROM neonpool_migrations WHERE version = 901")"

ctl edited migrate --dir "$DIR"
np_expect "migrate with an edited applied file exits non-zero (got $RC)" test "$RC" -ne 0
np_expect "the error names the file" has edited '003_sessions\.sql.*changed'
np_expect_eq "nothing was applied: no 901 row" 0 "$(query "SELECT count(*) FROM neonpool_migrations WHERE version = 901")"
np_expect_eq "nothing was applied: no pending_marker" "" "$(query "SELECT to_regclass('pending_marker')")"

# The file back as it was applied: the pending one goes in.
cp "$np_top/sql/003_sessions.sql" "$DIR/"
ctl restored migrate --dir "$DIR"
np_expect_eq "with the file restored migrate exits 0" 0 "$RC"
np_expect "it applies 901_pending.sql" has restored '^applied 901_pending\.sql'
ctl status-after migrate --status --dir "$DIR"
np_expect_eq "--status after it exits 0" 0 "$RC"
np_expect "--status: 901_pending.sql applied" has status-after '^applied +901_pending\.sql '

# A file of the database that is not in the directory is listed, not fatal.
rm "$DIR/901_pending.sql"
ctl status-missing migrate --status --dir "$DIR"
np_expect_eq "--status with an applied file gone exits 0" 0 "$RC"
np_expect "--status: 901_pending.sql is missing" has status-missing '^missing +901_pending\.sql '

np_finish
