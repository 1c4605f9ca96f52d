# SPDX-License-Identifier: PostgreSQL
# dblib.sh - helpers for the database-layer tests; source after lib.sh.
#
# np_db_start [key=value...]: a private PostgreSQL (lib.sh), the schema and sample data through
# neonpoolctl, then neonpoold with a status file and a control socket, and nginx in front with
# the project's config. The password travels in a file, never in the URL.

np_db_url() { echo "postgresql://neonpool@127.0.0.1:$NP_PG_PORT/$NP_PG_DB?sslmode=verify-full&sslrootcert=$NP_PG_CA"; }

# np_db_prepare: np_start_pg, then the schema (neonpoolctl migrate) and the sample data (seed,
# NP_SEED_BOOKS books of 10 chapters of 10 passages). In the shared cluster (np_pg_shared) the
# database is a copy of the suite's migrated and seeded template when the seed is the same:
# migrate then only checks it is up to date.
np_db_prepare() {
	local seeded=0
	if np_pg_shared; then
		np__shared_db_env
		if [ "${NP_SEED_BOOKS:-50}" = "$NP_SHARED_PG_SEED" ]; then
			np__shared_db neonpool
			seeded=1
		else
			np__shared_db template1
		fi
	else
		# a private cluster: from the shared cluster's seeded copy when its seed is this one
		NP_PG_WANT_SEED=${NP_SEED_BOOKS:-50} np_start_pg
		[ "$NP_PG_SEEDED" = 1 ] && seeded=1
	fi
	printf '%s\n' "$NP_TEST_PASSWORD" >"$NP_TMP/db.password"
	chmod 0644 "$NP_TMP/db.password"
	np_secret_exempt "$NP_TMP/db.password"
	NP_CTL_CONF=$NP_TMP/ctl.conf
	np_write_conf "$NP_CTL_CONF" "database_url=$(np_db_url)" "database_password_file=$NP_TMP/db.password" \
		"status_file=$NP_TMP/status"
	"$NEONPOOLCTL" -c "$NP_CTL_CONF" migrate --dir "$np_top/sql" >"$NP_TMP/out/migrate.out" 2>&1 ||
		np_fail "migrate failed: $(cat "$NP_TMP/out/migrate.out")"
	if [ "$seeded" = 0 ]; then
		"$NEONPOOLCTL" -c "$NP_CTL_CONF" seed --books "${NP_SEED_BOOKS:-50}" --chapters 10 --passages 10 \
			>"$NP_TMP/out/seed.out" 2>&1 || np_fail "seed failed: $(cat "$NP_TMP/out/seed.out")"
	fi
	# one psql for the four (a psql is a setpriv, a psql and a backend)
	read -r NP_BOOK_MIN NP_BOOK_MAX NP_PASSAGE_MIN NP_PASSAGE_MAX < <(np_psql_super -d "$NP_PG_DB" -At -F ' ' -c \
		"SELECT (SELECT min(id) FROM books), (SELECT max(id) FROM books), (SELECT min(id) FROM passages), (SELECT max(id) FROM passages)")
}

np_db_start() {
	np_db_prepare
	# under valgrind (NP_TIMEOUT_SCALE) a connect takes long: so may a request wait
	np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
		status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" log_level=info \
		acquire_timeout_ms=$((500 * NP_TIMEOUT_SCALE)) "$@"
	np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
	np_wrk_script
	np_wait_db_ready
}

# np_wait_db_ready [TIMEOUT_S]: wait until /readyz (control socket through nginx) answers 200:
# min_warm connections are open.
np_wait_db_ready() {
	local deadline
	np_now_ms; deadline=$((NP_NOW + $(np_scaled "${1:-10}") * 1000))
	while :; do
		np_curl /readyz
		[ "$NP_STATUS" = 200 ] && return 0
		np_now_ms
		[ "$NP_NOW" -ge "$deadline" ] && np_fail "not ready after ${1:-10} s: $(cat "$NP_TMP/http.body")"
		sleep 0.1
	done
}

# np_wait_lock TABLE [DB]: wait (10 s, scaled) until another session holds a granted lock on TABLE in
# the test's database (or DB): a test that starts a locking psql in the background and slept 0.3 s
# bet on a window, and lost it on a loaded machine (the request went through before the lock).
np_wait_lock() {
	local i n
	for ((i = 1; i <= 200 * NP_TIMEOUT_SCALE; i++)); do
		n=$(np_psql_super -d "${2:-neonpool}" -At -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE c.relname = '$1' AND l.granted AND l.pid <> pg_backend_pid()
			AND l.mode IN ('ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())")
		[ "$n" -gt 0 ] 2>/dev/null && return 0
		sleep 0.05
	done
	np_fail "no session took its lock on $1 within 10 s"
}

# np_wrk_script: a wrk Lua script reading random existing books (primary-key reads), books.lua, and
# paced.lua for wrk's default request. With NP_WRK_DELAY_MS > 0 each connection waits that long
# before each request: a background load in a correctness test keeps requests in flight without
# taking both cores from the tests beside it (unpaced, one such load made every concurrent test
# 3-8 times slower). Throughput tests leave it unset.
np_wrk_script() {
	local pace=""
	[ "${NP_WRK_DELAY_MS:-0}" -gt 0 ] && pace="delay = function() return $NP_WRK_DELAY_MS end"
	cat >"$NP_TMP/books.lua" <<LUA
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/v1/books/" .. math.random($NP_BOOK_MIN, $NP_BOOK_MAX))
end
$pace
LUA
	printf '%s\n' "$pace" >"$NP_TMP/paced.lua"
}

# np_pool_conns: server connections of the pool right now (application_name neonpool/...).
np_pool_conns() {
	np_psql_super -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%'$(np_pg_scope)"
}

# np_sampler_start: count the pool's server connections every 50 ms into out/samples.txt
# (one psql session with \watch, so the sampler adds no connection churn of its own). It connects
# to the test's database: in the shared cluster the teardown's DROP DATABASE ... FORCE ends it even
# when the test did not get to np_sampler_stop.
np_sampler_start() {
	: >"$NP_TMP/out/samples.txt"
	printf "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%%'%s \\\\watch 0.05\n" "$(np_pg_scope)" |
		np_pg_run "$PGBIN/psql" -X -q -At -h "$NP_PG_SOCKDIR" -p "$NP_PG_PORT" -U postgres -d "$NP_PG_DB" \
		>"$NP_TMP/out/samples.txt" 2>"$NP_TMP/out/sampler.err" &
	NP_SAMPLER_PID=$!
}

# np__kill_tree PID: SIGTERM to PID and all its descendants (psql under runuser under a subshell).
np__kill_tree() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do np__kill_tree "$c"; done
	kill "$1" 2>/dev/null
}

# np_sampler_stop: prints "max samples".
np_sampler_stop() {
	np__kill_tree "$NP_SAMPLER_PID"
	wait "$NP_SAMPLER_PID" 2>/dev/null
	awk 'NF { n++; if ($1 > m) m = $1 } END { print m + 0, n + 0 }' "$NP_TMP/out/samples.txt"
}

# np_status_json EXPR: evaluate EXPR on `neonpoolctl status --json` (d = the document).
np_status_json() {
	"$NEONPOOLCTL" -c "$NP_CTL_CONF" status --json >"$NP_TMP/out/status.json" 2>"$NP_TMP/out/status.err" || true
	np_json_get "$NP_TMP/out/status.json" "$1"
}

# np_reload: a configuration reload that has taken effect. SIGHUP, then waits until the master
# logged its outcome once more than before (failing on a refusal) and every worker and ask worker
# of the old generation has exited, as many new ones running: after a bare `kill -HUP; sleep 1` a
# request could still reach a worker of the old configuration on a loaded machine.
np_reload() {
	local before n seen rejected p left=0 np__j
	before=$(np_children "$NP_DAEMON_PID" | awk '$2 == "np-worker" || $2 == "np-ask" { print $1 }')
	n=$(wc -w <<<"$before")
	seen=$(grep -c 'configuration reloaded' "$NP_DAEMON_LOG")
	rejected=$(grep -c 'reload rejected' "$NP_DAEMON_LOG")
	kill -HUP "$NP_DAEMON_PID"
	for ((np__j = 0; np__j < 300 * NP_TIMEOUT_SCALE; np__j++)); do
		[ "$(grep -c 'reload rejected' "$NP_DAEMON_LOG")" -gt "$rejected" ] &&
			np_fail "reload rejected: $(grep 'reload rejected' "$NP_DAEMON_LOG" | tail -n 1)"
		if [ "$(grep -c 'configuration reloaded' "$NP_DAEMON_LOG")" -gt "$seen" ]; then
			left=0
			for p in $before; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
			[ "$left" = 0 ] &&
				[ "$(np_children "$NP_DAEMON_PID" | awk '$2 == "np-worker" || $2 == "np-ask"' | wc -l)" -ge "$n" ] && return 0
		fi
		sleep 0.1
	done
	np_fail "reload: not in effect after $((30 * NP_TIMEOUT_SCALE)) s (old workers left: $left)"
}

# np_workers_pids: the master's np-worker children.
np_worker_pids() { np_child_pids "$NP_DAEMON_PID" np-worker; }

# np_wait_read_ok TIMEOUT_MS: poll a book read through nginx every 50 ms until it answers 200;
# sets NP_WAITED_MS; returns 1 on timeout.
np_wait_read_ok() {
	local t0 code
	np_now_ms; t0=$NP_NOW
	while :; do
		np_curl "/api/v1/books/$NP_BOOK_MIN"   # through the resident Python: no process every 50 ms
		code=$NP_STATUS
		np_now_ms
		NP_WAITED_MS=$((NP_NOW - t0))
		[ "$code" = 200 ] && return 0
		[ "$NP_WAITED_MS" -gt "$1" ] && return 1
		sleep 0.05
	done
}

# np_promtool_scrape: GET /metrics into $NP_TMP/out/scrape.txt and a check that `promtool check
# metrics` (lint included) passes on it.
np_promtool_scrape() {
	np_curl /metrics
	cp "$NP_TMP/http.body" "$NP_TMP/out/scrape.txt"
	if promtool check metrics <"$NP_TMP/out/scrape.txt" >"$NP_TMP/out/promtool.txt" 2>&1; then
		np_ok "promtool check metrics passes"
	else
		np_not_ok "promtool check metrics passes: $(head -n 5 "$NP_TMP/out/promtool.txt")"
	fi
}

# np_access_stats FILE: status counts of nginx's access log, "200=N 503=M ...".
np_access_stats() {
	awk '{ for (i = 1; i <= NF; i++) if ($i ~ /HTTP\/1\.[01]"$/) { c[$(i+1)]++; break } }
	     END { for (s in c) printf "%s=%d ", s, c[s]; print "" }' "$1"
}

# np_start_pgbouncer DBNAME [POOL_SIZE]: Debian's PgBouncer in transaction mode (what Neon's
# -pooler endpoint runs) on 127.0.0.1:free port in front of the private PostgreSQL, as the
# postgres user when root (it refuses root). Sets NP_PGB_PORT and NP_PGB_DIR.
# For the test bed (t_scaleout.sh): NP_NETNS (in that network namespace), NP_PGB_LISTEN (listen_addr),
# NP_PGB_TARGET_PORT (a neonsim in front of the server), NP_PGB_INI (more [pgbouncer] lines) and
# NP_PGB_USERS (more userlist.txt lines).
np_start_pgbouncer() {
	np_require pgbouncer
	local db=$1 size=${2:-4} dir=$NP_TMP/pgbouncer
	local -a ns=()
	[ -n "${NP_NETNS:-}" ] && ns=(ip netns exec "$NP_NETNS")
	mkdir -p "$dir"
	NP_PGB_DIR=$dir
	NP_PGB_PORT=$(np_free_port) || np_fail "no free port for PgBouncer"
	printf '"neonpool" "%s"\n%s' "$NP_TEST_PASSWORD" "${NP_PGB_USERS:+$NP_PGB_USERS$'\n'}" >"$dir/userlist.txt"
	np_secret_exempt "$dir/userlist.txt"
	cat >"$dir/pgbouncer.ini" <<INI
[databases]
$db = host=127.0.0.1 port=${NP_PGB_TARGET_PORT:-$NP_PG_PORT} dbname=$db
[pgbouncer]
listen_addr = ${NP_PGB_LISTEN:-127.0.0.1}
listen_port = $NP_PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $size
max_client_conn = 1000
server_tls_sslmode = require
logfile = $dir/pgbouncer.log
${NP_PGB_INI:-}
INI
	chmod 0600 "$dir/userlist.txt"
	if np_is_root; then
		chown -R postgres: "$dir"
		(exec "${ns[@]}" setpriv --reuid=postgres --regid=postgres --clear-groups pgbouncer "$dir/pgbouncer.ini") \
			</dev/null >"$dir/pgbouncer.out.log" 2>&1 &
	else
		(exec pgbouncer "$dir/pgbouncer.ini") </dev/null >"$dir/pgbouncer.out.log" 2>&1 &
	fi
	NP_PGB_PID=$!
	NP_FRONT_PIDS+=("$NP_PGB_PID")   # stopped by lib.sh's teardown
	np_wait_port "$NP_PGB_PORT" 10 || np_fail "PgBouncer did not listen on $NP_PGB_PORT: $(tail -n 5 "$dir/pgbouncer.log")"
	np_log "PgBouncer (transaction mode, pool $size) on ${NP_PGB_LISTEN:-127.0.0.1}:$NP_PGB_PORT${NP_NETNS:+ (netns $NP_NETNS)}"
}

# np_dns_setup [HOSTS_LINE...]: a private resolver for the next daemon. A UDP responder on
# 127.53.X.Y:53 (random X.Y) reads every query and, by the word in $NP_TMP/dns.mode, drops it
# (blackhole: a resolver that never answers) or answers NXDOMAIN (nxdomain); the queries it saw
# are counted in $NP_TMP/dns.queries. NP_DAEMON_WRAPPER runs the daemon in a private mount
# namespace (unshare -m) with /etc/resolv.conf naming only that responder and /etc/hosts holding
# localhost and the HOSTS_LINEs. Skips when not root or when unshare -m is not permitted.
np_dns_setup() {
	np_is_root || np_skip "a private mount namespace and port 53 need root"
	np_require unshare mount
	NP_DNS_ADDR=127.53.$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))
	echo blackhole >"$NP_TMP/dns.mode"
	: >"$NP_TMP/dns.queries"
	printf 'nameserver %s\noptions timeout:30 attempts:1\n' "$NP_DNS_ADDR" >"$NP_TMP/resolv.conf"
	{ printf '127.0.0.1 localhost\n::1 localhost\n'; printf '%s\n' "$@"; } >"$NP_TMP/hosts"
	unshare -m --propagation private -- mount --bind "$NP_TMP/hosts" /etc/hosts 2>"$NP_TMP/unshare.err" ||
		np_skip "a private mount namespace with a bind mount is not permitted here: $(head -n 1 "$NP_TMP/unshare.err")"
	cat >"$NP_TMP/dns.py" <<'PY'
import socket, sys
addr, modefile, countfile = sys.argv[1:4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 53))
print("ready", flush=True)
n = 0
while True:
    data, peer = s.recvfrom(4096)
    n += 1
    with open(countfile, "w") as f:
        f.write("%d\n" % n)
    with open(modefile) as f:
        mode = f.read().strip()
    if mode != "nxdomain" or len(data) < 17:
        continue
    i = 12
    while i < len(data) and data[i] != 0:
        i += data[i] + 1
    i += 5
    flags = bytes([0x80 | (data[2] & 0x79), 0x83])
    s.sendto(data[:2] + flags + b"\x00\x01\x00\x00\x00\x00\x00\x00" + data[12:i], peer)
PY
	"$NP_PYTHON" "$NP_TMP/dns.py" "$NP_DNS_ADDR" "$NP_TMP/dns.mode" "$NP_TMP/dns.queries" \
		>"$NP_TMP/dns.out" 2>&1 &
	NP_FRONT_PIDS+=("$!")
	local i
	for i in $(seq 1 50); do grep -q ready "$NP_TMP/dns.out" && break; sleep 0.1; done
	grep -q ready "$NP_TMP/dns.out" || np_fail "the test resolver did not start: $(cat "$NP_TMP/dns.out")"
	cat >"$NP_TMP/nswrap.sh" <<'SH'
#!/bin/sh
# run "$@" in a private mount namespace with the test's resolv.conf and hosts
d=$(dirname "$0")
exec unshare -m --propagation private -- sh -c \
	'mount --bind "$0/resolv.conf" /etc/resolv.conf && mount --bind "$0/hosts" /etc/hosts && exec "$@"' "$d" "$@"
SH
	chmod 0755 "$NP_TMP/nswrap.sh"
	# in front of any wrapper already set (valgrind runs inside the namespace)
	NP_DAEMON_WRAPPER="$NP_TMP/nswrap.sh${NP_DAEMON_WRAPPER:+ $NP_DAEMON_WRAPPER}"
	np_log "test resolver on $NP_DNS_ADDR:53 (mode $(cat "$NP_TMP/dns.mode")); daemon in a private mount namespace"
}

# np_db_url_host HOST [PARAMS]: the test database's URL with HOST as the host name (verify-full
# against the test CA unless PARAMS replaces the query string).
np_db_url_host() {
	echo "postgresql://neonpool@$1:$NP_PG_PORT/$NP_PG_DB?${2:-sslmode=verify-full&sslrootcert=$NP_PG_CA}"
}

# np_start_db_daemon [key=value...]: neonpoold on the prepared database (np_db_prepare) with the
# database settings of np_db_start, nginx in front, without waiting for readiness.
np_start_db_daemon() {
	np_start_daemon --no-wait database_password_file="$NP_TMP/db.password" status_file="$NP_TMP/status" \
		control_listen="$NP_TMP/control.sock" log_level=info acquire_timeout_ms=$((500 * NP_TIMEOUT_SCALE)) "$@"
	np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
}

# np_session: a chat session through nginx: its id in sid, its token in tok (the token is added to
# out/tokens, which the teardown's secret check reads).
np_session() {
	local sess
	sess=$(curl -s -X POST "http://127.0.0.1:$NP_HTTP_PORT/api/v1/sessions")
	sid=$(echo "$sess" | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
	tok=$(echo "$sess" | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
	echo "$tok" >>"$NP_TMP/out/tokens"
}
