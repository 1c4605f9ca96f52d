#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# shared_pg.sh - one PostgreSQL cluster for the whole suite: tests/run.sh starts it, the tests that hold a line
# "# np: shared-pg" each get a database of their own in it (lib.sh np_start_pg, dblib.sh np_db_prepare).
#
# Usage: tests/integration/shared_pg.sh start DIR    start the cluster under DIR (lib.sh's np_start_pg: TLS,
#                                                    role neonpool with a random password), migrate and seed
#                                                    database neonpool (the template of every test's
#                                                    database), write DIR/env for NP_SHARED_PG
#        tests/integration/shared_pg.sh stop DIR     stop it
# A test that stops, kills, pauses, reconfigures or fills the server, changes a role or reads the server's
# log keeps a private cluster: it does not carry the line.
set -u

cmd=${1:-} dir=${2:-}
[ -n "$dir" ] || { echo "usage: shared_pg.sh start|stop DIR" >&2; exit 2; }

case $cmd in
stop)
	[ -f "$dir/env" ] || exit 0
	# shellcheck disable=SC1091
	. "$dir/env"
	data=$NP_SHARED_PG_DIR/data
	if [ "$(id -u)" -eq 0 ]; then
		(cd "$NP_SHARED_PG_DIR" && runuser -u postgres -- "${PGBIN:-/usr/lib/postgresql/15/bin}/pg_ctl" -D "$data" stop -m immediate -t 10)
	else
		"${PGBIN:-/usr/lib/postgresql/15/bin}/pg_ctl" -D "$data" stop -m immediate -t 10
	fi
	rm -rf "$NP_SHARED_PG_TMP"
	exit 0
	;;
start) ;;
*) echo "usage: shared_pg.sh start|stop DIR" >&2; exit 2 ;;
esac

mkdir -p "$dir" || exit 1
chmod 0755 "$dir"
export TMPDIR=$dir
unset NP_SHARED_PG
# shellcheck disable=SC1091
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_start_pg
# a server for two tests at a time (each up to budget 16 plus its own sessions)
np_pg_run sh -c "cat >>'$NP_TMP/pg/data/postgresql.conf'" <<'EOF'
# shared by the tests of one tests/run.sh
max_connections = 200
EOF
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" -w -t 60 restart -m fast -l "$NP_TMP/pg/postgresql.log" \
	>"$NP_TMP/out/restart.out" 2>&1 || np_fail "PostgreSQL restart failed: $(tail -n 5 "$NP_TMP/pg/postgresql.log")"
printf '%s\n' "$NP_TEST_PASSWORD" >"$NP_TMP/db.password"
np_secret_exempt "$NP_TMP/db.password"
np_write_conf "$NP_TMP/ctl.conf" "database_url=$(np_db_url)" "database_password_file=$NP_TMP/db.password"
"$NEONPOOLCTL" -c "$NP_TMP/ctl.conf" migrate --dir "$np_top/sql" >"$NP_TMP/out/migrate.out" 2>&1 ||
	np_fail "migrate failed: $(cat "$NP_TMP/out/migrate.out")"
"$NEONPOOLCTL" -c "$NP_TMP/ctl.conf" seed --books "${NP_SEED_BOOKS:-50}" --chapters 10 --passages 10 \
	>"$NP_TMP/out/seed.out" 2>&1 || np_fail "seed failed: $(cat "$NP_TMP/out/seed.out")"
# A stopped copy of this migrated and seeded cluster ($dir/seeded/data, NP_SHARED_PG_SEEDED): a test
# that keeps a private cluster starts from it (lib.sh np_start_pg via np_db_prepare) instead of
# migrating and seeding its own (0.55 CPU s each; 39 tests do). Taken before the template closes.
mkdir -p "$dir/seeded" && { ! np_is_root || chown postgres: "$dir/seeded"; } || np_fail "mkdir $dir/seeded"
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" -w -t 60 stop -m fast >>"$NP_TMP/out/restart.out" 2>&1 ||
	np_fail "PostgreSQL stop failed: $(tail -n 5 "$NP_TMP/pg/postgresql.log")"
np_pg_run cp -a "$NP_TMP/pg/data" "$dir/seeded/data" >"$NP_TMP/out/seeded.out" 2>&1 ||
	np_fail "copying the seeded cluster failed: $(cat "$NP_TMP/out/seeded.out")"
np_pg_run rm -f "$dir/seeded/data/postmaster.opts"
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" -w -t 60 start -l "$NP_TMP/pg/postgresql.log" \
	>>"$NP_TMP/out/restart.out" 2>&1 || np_fail "PostgreSQL start failed: $(tail -n 5 "$NP_TMP/pg/postgresql.log")"
# the template: no session may stay connected to it
np_psql_super -d postgres -c "ALTER DATABASE neonpool ALLOW_CONNECTIONS false" >/dev/null ||
	np_fail "cannot close the template database"
umask 077
cat >"$dir/env" <<EOF
NP_SHARED_PG_TMP=$NP_TMP
NP_SHARED_PG_DIR=$NP_TMP/pg
NP_SHARED_PG_PORT=$NP_PG_PORT
NP_SHARED_PG_SOCKDIR=$NP_PG_SOCKDIR
NP_SHARED_PG_CA=$NP_PG_CA
NP_SHARED_PG_PASSWORD=$NP_TEST_PASSWORD
NP_SHARED_PG_SEED=${NP_SEED_BOOKS:-50}
NP_SHARED_PG_SEEDED=$dir/seeded
EOF
echo "shared PostgreSQL 15 on 127.0.0.1:$NP_PG_PORT, template database neonpool (migrated, seeded)"
# keep the cluster and its directory: teardown would stop and remove them
NP_PG_STARTED=0
NP_KEEP_TMP=1
np_finish
