#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# serve.sh - the service command: a local PostgreSQL 15, neonpoold and nginx on 127.0.0.1:8080, started in the background.
#
# Usage: scripts/serve.sh [start]   install missing packages, build, start everything, print the URL
#        scripts/serve.sh stop      stop nginx, neonpoold and PostgreSQL (data is kept)
#        scripts/serve.sh status    what runs, where
#        scripts/serve.sh restart
# Everything runs in the background and survives this script; `scripts/serve.sh stop` ends it.
#
# State lives in $NEONPOOL_STATE_DIR (default: ./var in the repository): the PostgreSQL data
# directory, the generated database password (db-password, mode 0600, given to neonpoold with
# database_password_file), neonpool.conf, nginx.conf, logs and pid files. Delete the directory
# (after stop) to start from scratch. When run as root, PostgreSQL runs as the `postgres` user
# (initdb refuses root); neonpoold and nginx's master run as the caller.
#
# Another database (Neon, say) instead of the local PostgreSQL: DATABASE_URL (a libpq URI, with
# sslmode=verify-full&sslrootcert=/etc/ssl/certs/ca-certificates.crt for Neon; no password in it)
# and NEONPOOL_DATABASE_PASSWORD_FILE (a file whose first line is the password). No local
# PostgreSQL is started then; a Neon -pooler host turns pooler_mode on.
#
# Running start again after a rebuild restarts neonpoold when its binary changed (a HUP reload
# cannot replace the program), and reloads it otherwise.
#
# Environment: NEONPOOL_STATE_DIR, NEONPOOL_HTTP_PORT (first port tried, default 8080),
# NEONPOOL_WORKERS (default 4), NEONPOOL_MANUAL_DIR (the PostgreSQL 15 manual's HTML, default
# /usr/share/doc/postgresql-doc-15/html), NEONPOOL_SEED=1 (also load `neonpoolctl seed`'s books).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${NEONPOOL_STATE_DIR:-$top/var}
PGBIN=/usr/lib/postgresql/15/bin
NEONPOOLD=$top/src/neonpoold
NEONPOOLCTL=$top/src/neonpoolctl
HTTP_PORT_FIRST=${NEONPOOL_HTTP_PORT:-8080}
WORKERS=${NEONPOOL_WORKERS:-4}
MANUAL_DIR=${NEONPOOL_MANUAL_DIR:-/usr/share/doc/postgresql-doc-15/html}
MANUAL_SLUG=postgresql-15-manual
MANUAL_ID=1

say() { printf 'serve: %s\n' "$*"; }
die() { printf 'serve: error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# A pid file names a live process.
running() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
first_free_port() {
	local p=$1 last=$(($1 + 100))
	while [ "$p" -le "$last" ]; do
		port_free "$p" && { echo "$p"; return 0; }
		p=$((p + 1))
	done
	return 1
}

# PostgreSQL's directory: inside the state dir, unless (as root) user postgres cannot reach it.
pg_dir() {
	if [ -f "$STATE/pgdir" ]; then cat "$STATE/pgdir"; return; fi
	local d=$STATE/pg
	if is_root && ! runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
		d=/var/tmp/neonpool-serve-$(printf '%s' "$STATE" | md5sum | cut -c1-12)/pg
	fi
	echo "$d"
}
pg_run() {
	if is_root; then (cd "$PGDIR" && runuser -u postgres -- "$@"); else (cd "$PGDIR" && "$@"); fi
}
pg_port() { sed -n "s/^port = \([0-9]*\).*/\1/p" "$PGDIR/data/postgresql.conf" | tail -n 1; }
psql_super() {
	pg_run "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGDIR/run" -p "$(pg_port)" -U postgres -d postgres "$@"
}

build() {
	say "building (log: $STATE/log/build.log)"
	(
		cd "$top"
		if [ ! -x configure ] || [ configure.ac -nt configure ]; then ./autogen.sh; fi
		if [ ! -f Makefile ] || [ ! -f config.status ]; then ./configure; fi
		make -j2
	) >"$STATE/log/build.log" 2>&1 || { tail -n 30 "$STATE/log/build.log" >&2; die "build failed"; }
}

start_pg() {
	mkdir -p "$PGDIR/run"
	is_root && chown postgres: "$PGDIR" "$PGDIR/run"
	if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
		local port me
		me=$(id -un)
		port=$(first_free_port 54320) || die "no free port for PostgreSQL"
		say "creating a PostgreSQL 15 cluster in $PGDIR/data (port $port)"
		pg_run "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -E UTF8 --locale=C \
			--auth-local=peer --auth-host=scram-sha-256 >"$PGDIR/initdb.log" 2>&1 ||
			{ cat "$PGDIR/initdb.log" >&2; die "initdb failed"; }
		pg_run sh -c "cat >>'$PGDIR/data/postgresql.conf'" <<EOF
# scripts/serve.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PGDIR/run'
password_encryption = 'scram-sha-256'
max_connections = 100
EOF
		pg_run sh -c "cat >'$PGDIR/data/pg_hba.conf'" <<EOF
local   all   postgres                  peer map=np
local   all   all                       scram-sha-256
host    all   all       127.0.0.1/32    scram-sha-256
EOF
		pg_run sh -c "cat >'$PGDIR/data/pg_ident.conf'" <<EOF
np   postgres   postgres
np   root       postgres
np   $me        postgres
EOF
	fi
	if pg_run "$PGBIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
		say "PostgreSQL already running (port $(pg_port))"
	else
		pg_run "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgresql.log" -w -t 60 start >/dev/null ||
			{ tail -n 20 "$PGDIR/postgresql.log" >&2; die "PostgreSQL did not start"; }
		say "PostgreSQL 15 started on 127.0.0.1:$(pg_port) and $PGDIR/run"
	fi
	# The application role and database, with a generated password kept in a 0600 file.
	if [ ! -s "$STATE/db-password" ]; then
		(umask 077; od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$STATE/db-password")
	fi
	chmod 600 "$STATE/db-password"
	local exists
	exists=$(psql_super -At -c "SELECT 1 FROM pg_roles WHERE rolname = 'neonpool'")
	# The password travels on stdin, never on a command line.
	if [ "$exists" = 1 ]; then
		printf "ALTER ROLE neonpool LOGIN PASSWORD '%s';\n" "$(cat "$STATE/db-password")" | psql_super
	else
		printf "CREATE ROLE neonpool LOGIN PASSWORD '%s';\n" "$(cat "$STATE/db-password")" | psql_super
	fi
	if [ "$(psql_super -At -c "SELECT 1 FROM pg_database WHERE datname = 'neonpool'")" != 1 ]; then
		psql_super -c "CREATE DATABASE neonpool OWNER neonpool"
	fi
}

# The database keys: the local PostgreSQL, or DATABASE_URL (read by neonpoold and neonpoolctl from
# the environment: the URL is not copied into the config) with NEONPOOL_DATABASE_PASSWORD_FILE.
db_config() {
	if [ -z "${DATABASE_URL:-}" ]; then
		echo "database_url = \"host=$PGDIR/run port=$(pg_port) dbname=neonpool user=neonpool\";"
		echo "database_password_file = \"$STATE/db-password\";"
		return
	fi
	if [ -n "${NEONPOOL_DATABASE_PASSWORD_FILE:-}" ]; then
		echo "database_password_file = \"$(realpath "$NEONPOOL_DATABASE_PASSWORD_FILE")\";"
	fi
	case $DATABASE_URL in
	*-pooler.*) echo "pooler_mode = true;   # a transaction-mode pooler (Neon's -pooler endpoint)" ;;
	esac
}

write_config() {
	cat >"$STATE/neonpool.conf" <<EOF
# neonpool.conf written by scripts/serve.sh (rewritten at each start); every key is
# documented in etc/neonpool.conf.sample.
$(db_config)
workers = $WORKERS;
listen = "$STATE/run/neonpool.sock";
# nginx's workers (user nobody when started as root) must reach the socket; it serves
# nothing that 127.0.0.1:$HTTP_PORT does not serve already.
listen_mode = "0666";
# /healthz, /readyz and /metrics on their own socket: answered even when every
# connection holder is busy (nginx routes them there, see contrib/nginx/neonpool.conf).
control_listen = "$STATE/run/control.sock";
# asks (POST /api/v1/sessions/{id}/ask) on their own socket and workers: a streamed answer
# holds its worker for its whole duration, never one of the read workers.
ask_listen = "$STATE/run/ask.sock";
ask_workers = 4;
pid_file = "$STATE/run/neonpoold.pid";
status_file = "$STATE/run/neonpool.status";
log_file = "$STATE/log/neonpoold.log";
log_level = "info";
shutdown_timeout_ms = 10000;
EOF
	"$NEONPOOLD" -t -c "$STATE/neonpool.conf" >/dev/null 2>"$STATE/log/config-test.log" ||
		{ cat "$STATE/log/config-test.log" >&2; die "the generated config was refused"; }
}

start_daemon() {
	local sum
	sum=$(sha256sum <"$NEONPOOLD" | cut -d' ' -f1)
	if running "$STATE/run/neonpoold.pid"; then
		if [ "$sum" = "$(cat "$STATE/run/neonpoold.sha256" 2>/dev/null)" ]; then
			say "neonpoold already running (pid $(cat "$STATE/run/neonpoold.pid")): reloading its config"
			kill -HUP "$(cat "$STATE/run/neonpoold.pid")"
			return
		fi
		say "neonpoold's binary changed since it started: restarting it"
		stop_pidfile neonpoold "$STATE/run/neonpoold.pid" QUIT
	fi
	echo "$sum" >"$STATE/run/neonpoold.sha256"
	rm -f "$STATE/run/neonpool.sock" "$STATE/run/control.sock" "$STATE/run/ask.sock"
	(cd "$STATE" && exec setsid "$NEONPOOLD" -c "$STATE/neonpool.conf") </dev/null >>"$STATE/log/neonpoold.out" 2>&1 &
	local i
	for i in $(seq 1 100); do
		[ -S "$STATE/run/neonpool.sock" ] && running "$STATE/run/neonpoold.pid" && break
		kill -0 $! 2>/dev/null || { tail -n 20 "$STATE/log/neonpoold.out" "$STATE/log/neonpoold.log" >&2 2>/dev/null; die "neonpoold exited"; }
		sleep 0.1
	done
	say "neonpoold started (pid $(cat "$STATE/run/neonpoold.pid" 2>/dev/null), $WORKERS workers, $STATE/run/neonpool.sock)"
}

# The web page's directory for nginx: the source tree's www/, or (as root, when nginx's workers,
# user nobody, cannot read it there) a copy in the state directory.
www_root() {
	if is_root && ! runuser -u nobody -- test -r "$top/www/index.html" 2>/dev/null; then
		rm -rf "$STATE/www" && cp -R "$top/www" "$STATE/www" && chmod -R a+rX "$STATE/www"
		echo "$STATE/www"
	else
		echo "$top/www"
	fi
}

start_nginx() {
	local dir=$STATE/nginx user=""
	if running "$dir/nginx.pid"; then
		HTTP_PORT=$(sed -n 's/^ *listen 127\.0\.0\.1:\([0-9]*\);.*/\1/p' "$dir/neonpool.conf")
		say "nginx already running (pid $(cat "$dir/nginx.pid"), port $HTTP_PORT)"
		return
	fi
	mkdir -p "$dir"
	cp /etc/nginx/fastcgi_params "$dir/fastcgi_params"
	sed -e "s|127\.0\.0\.1:8080|127.0.0.1:$HTTP_PORT|" -e "s|unix:/run/neonpool/neonpool\.sock|unix:$STATE/run/neonpool.sock|" \
		-e "s|unix:/run/neonpool/control\.sock|unix:$STATE/run/control.sock|" \
		-e "s|unix:/run/neonpool/ask\.sock|unix:$STATE/run/ask.sock|" \
		"$top/contrib/nginx/neonpool.conf" >"$dir/neonpool.conf"
	is_root && user="user nobody $(id -gn nobody 2>/dev/null || echo nogroup);"
	sed -i "s|/usr/share/neonpool/www|$(www_root)|g" "$dir/neonpool.conf"
	# nginx's content cache: in the state directory (the package's is /var/cache/neonpool/nginx)
	sed -i "s|/var/cache/neonpool/nginx|$dir/cache|" "$dir/neonpool.conf"
	sed -i "s|/var/log/nginx/neonpool\.access\.log|$dir/access.log|" "$dir/neonpool.conf"
	sed -e "s|@PREFIX@|$dir|g" -e "s|^@USER@\$|$user|" -e "s|@SITE@|$dir/neonpool.conf|" \
		"$top/contrib/nginx/nginx-test.conf.in" >"$dir/nginx.conf"
	nginx -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" || die "nginx refused its config"
	(exec setsid nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf") </dev/null >>"$dir/nginx.out" 2>&1 &
	local i
	for i in $(seq 1 50); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/healthz")" = 200 ] && break
		sleep 0.1
	done
	say "nginx started (pid $(cat "$dir/nginx.pid" 2>/dev/null)) on 127.0.0.1:$HTTP_PORT"
}

# ---- SCHEMA AND SAMPLE DATA ---------------------------------------------------------------
# `neonpoolctl migrate` applies sql/NNN_*.sql (each once); `neonpoolctl import` loads the
# PostgreSQL 15 manual (Debian's postgresql-doc-15, installed by install-deps.sh) as the book
# postgresql-15-manual; a second start changes nothing (unchanged chapters are left alone).
# NEONPOOL_SEED=1 also loads the generated sample books of `neonpoolctl seed` (benchmark data).
load_data() {
	say "applying migrations: neonpoolctl migrate --dir $top/sql"
	"$NEONPOOLCTL" -c "$STATE/neonpool.conf" migrate --dir "$top/sql" >>"$STATE/log/migrate.log" 2>&1 ||
		{ tail -n 20 "$STATE/log/migrate.log" >&2; die "neonpoolctl migrate failed (log: $STATE/log/migrate.log)"; }
	[ -f "$MANUAL_DIR/index.html" ] ||
		die "the PostgreSQL 15 manual is not in $MANUAL_DIR (apt-get install postgresql-doc-15, or set NEONPOOL_MANUAL_DIR)"
	say "loading the PostgreSQL 15 manual: neonpoolctl import $MANUAL_DIR"
	"$NEONPOOLCTL" -c "$STATE/neonpool.conf" import "$MANUAL_DIR" --slug "$MANUAL_SLUG" \
		--title "PostgreSQL 15 Documentation" --author "The PostgreSQL Global Development Group" \
		>"$STATE/log/import.log" 2>&1 ||
		{ tail -n 20 "$STATE/log/import.log" >&2; die "neonpoolctl import failed (log: $STATE/log/import.log)"; }
	MANUAL_ID=$(sed -n 's/^import: book id \([0-9]*\):.*/\1/p' "$STATE/log/import.log")
	grep -E '^import: (book id|done)' "$STATE/log/import.log" | sed 's/^import: /serve: /'
	if [ "${NEONPOOL_SEED:-0}" = 1 ]; then
		say "loading generated sample textbooks: neonpoolctl seed"
		"$NEONPOOLCTL" -c "$STATE/neonpool.conf" seed >>"$STATE/log/seed.log" 2>&1 ||
			{ tail -n 20 "$STATE/log/seed.log" >&2; die "neonpoolctl seed failed (log: $STATE/log/seed.log)"; }
	fi
}

do_start() {
	mkdir -p "$STATE/run" "$STATE/log"
	chmod 0755 "$STATE"
	"$top/scripts/install-deps.sh" --serve
	build
	PGDIR=$(pg_dir)
	if [ -z "${DATABASE_URL:-}" ]; then
		mkdir -p "$(dirname "$PGDIR")"
		echo "$PGDIR" >"$STATE/pgdir"
		start_pg
	else
		say "database: DATABASE_URL (host $(printf '%s' "$DATABASE_URL" | sed -n 's|^[a-z]*://\([^@/]*@\)\{0,1\}\([^/:?]*\).*|\2|p')); no local PostgreSQL"
	fi
	if running "$STATE/nginx/nginx.pid"; then
		HTTP_PORT=$(sed -n 's/^ *listen 127\.0\.0\.1:\([0-9]*\);.*/\1/p' "$STATE/nginx/neonpool.conf")
	else
		HTTP_PORT=$(first_free_port "$HTTP_PORT_FIRST") || die "no free port from $HTTP_PORT_FIRST on"
	fi
	write_config
	start_daemon
	load_data
	start_nginx
	local st
	st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/healthz" || true)
	[ "$st" = 200 ] || die "http://127.0.0.1:$HTTP_PORT/healthz answered $st (logs in $STATE/log, $STATE/nginx)"
	cat <<EOF

neonpool is running:  http://127.0.0.1:$HTTP_PORT/   (try: curl http://127.0.0.1:$HTTP_PORT/api/v1/version)
  config   $STATE/neonpool.conf   (reload: kill -HUP \$(cat $STATE/run/neonpoold.pid))
  logs     $STATE/log/neonpoold.log, $STATE/nginx/access.log
EOF
	[ -n "${DATABASE_URL:-}" ] || cat <<EOF
  postgres $PGDIR/postgresql.log
  database psql "host=$PGDIR/run port=$(pg_port) dbname=neonpool user=neonpool" (password in $STATE/db-password)
EOF
	echo "  books    curl http://127.0.0.1:$HTTP_PORT/api/v1/books ; curl http://127.0.0.1:$HTTP_PORT/api/v1/books/$MANUAL_ID  (the PostgreSQL 15 manual)"
	echo "  status   $NEONPOOLCTL -c $STATE/neonpool.conf status"
	echo "Stop it with:  scripts/serve.sh stop"
	echo
	echo "Open the chat in a browser:  http://127.0.0.1:$HTTP_PORT/"
}

stop_pidfile() {
	local name=$1 pidf=$2 sig=$3 pid i
	if running "$pidf"; then
		pid=$(cat "$pidf")
		kill -"$sig" "$pid"
		for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi
		say "$name stopped"
	else
		say "$name not running"
	fi
}

do_stop() {
	stop_pidfile nginx "$STATE/nginx/nginx.pid" QUIT
	stop_pidfile neonpoold "$STATE/run/neonpoold.pid" QUIT
	PGDIR=$(pg_dir)
	if [ -f "$PGDIR/data/PG_VERSION" ] && pg_run "$PGBIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
		pg_run "$PGBIN/pg_ctl" -D "$PGDIR/data" stop -m fast >/dev/null && say "PostgreSQL stopped"
	else
		say "PostgreSQL not running"
	fi
}

do_status() {
	local rc=0
	PGDIR=$(pg_dir)
	if running "$STATE/nginx/nginx.pid"; then
		say "nginx     running, pid $(cat "$STATE/nginx/nginx.pid"), http://127.0.0.1:$(sed -n 's/^ *listen 127\.0\.0\.1:\([0-9]*\);.*/\1/p' "$STATE/nginx/neonpool.conf")/"
	else say "nginx     stopped"; rc=1; fi
	if running "$STATE/run/neonpoold.pid"; then
		say "neonpoold running, pid $(cat "$STATE/run/neonpoold.pid"), $STATE/run/neonpool.sock"
	else say "neonpoold stopped"; rc=1; fi
	if [ -f "$PGDIR/data/PG_VERSION" ] && pg_run "$PGBIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
		say "postgres  running, port $(pg_port), $PGDIR/data"
	else say "postgres  stopped"; rc=1; fi
	return $rc
}

case ${1:-start} in
start) do_start ;;
stop) [ -d "$STATE" ] || { say "nothing to stop ($STATE does not exist)"; exit 0; }; do_stop ;;
restart) [ -d "$STATE" ] && do_stop; do_start ;;
status) [ -d "$STATE" ] || { say "not started ($STATE does not exist)"; exit 1; }; do_status ;;
-h | --help | help) sed -n '3,21p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "unknown command '$1' (start, stop, status, restart)" ;;
esac
