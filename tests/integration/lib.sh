# SPDX-License-Identifier: PostgreSQL
# lib.sh - the integration test harness: real PostgreSQL, neonpoold and front servers in a private temp dir.
#
# Source it from a tests/integration/t_*.sh script:   . "$(dirname "$0")/lib.sh"
# A test exits 0 (pass), 77 (skip, after one line "SKIP: reason") or anything else (fail).
# Everything a test starts is torn down by an EXIT trap, which also fails the test when the
# database password appears in any log or captured output, when a sanitizer or valgrind
# reported an error, and which prints the last 60 lines of every server log on failure.
#
# tests/run.sh runs two tests at a time (ports are locked per test, everything else lives in its temp
# dir). Two lines a test may hold, read by tests/run.sh and np_start_pg:
#   # np: serial (why)    run it with no other test beside it: its assertions are ratios or counts
#                         that a concurrent test would disturb
#   # np: serial-beside-build (why)   the same, but a build (nice 5) may run beside it: its counts
#                         have a margin that a build's share of the CPU does not reach
#   # np: long (why)      start it early (with the serial tests done): it takes long, and would end the run alone
#   # np: shared-pg       its database may live in the suite's shared cluster (np_start_pg)
#
# Daemons and front servers are background children of the test's shell (so that their exit
# status can be had): never call a bare `wait` in a test, it would wait for them forever;
# wait for your own pids.
#
# Environment:
#   NEONPOOLD, NEONPOOLCTL  binaries under test (default: the in-tree build)
#   NP_DAEMON_WRAPPER       prefixed to the daemon command, e.g. "valgrind --log-file=@TMP@/vg.%p";
#                           @TMP@ is replaced by the test's temp dir
#   NP_TIMEOUT_SCALE        multiply start/stop timeouts (e.g. 10 under valgrind; default 1)
#   NP_KEEP_TMP=1           keep the temp dir (its path is printed)
#   PGBIN                   PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   NP_SHARED_PG            the env file of a suite-wide cluster (tests/integration/shared_pg.sh, set by
#                           tests/run.sh): a test holding the line "# np: shared-pg" gets a database of its
#                           own there instead of a private cluster (see np_start_pg)

set -u
set -o pipefail

# Bash's loadable builtins (package bash-builtins) for the commands the tests and this file run
# most: on this machine a process costs 4-6 ms of CPU (a fork and an exec), and a suite ran 1,100
# mkdir, 700 rm and 800 basename/dirname. Where one is missing, the external command runs.
np__builtins=" "
for np__b in sleep mkdir rmdir rm mktemp basename dirname; do
	[ -f "/usr/lib/bash/$np__b" ] && enable -f "/usr/lib/bash/$np__b" "$np__b" 2>/dev/null && np__builtins+="$np__b "
done
np__here=${BASH_SOURCE[0]%/*}
[ "$np__here" = "${BASH_SOURCE[0]}" ] && np__here=.
cd -- "$np__here/../.." && np_top=$PWD && cd -- "$OLDPWD" || exit 1
NEONPOOLD=${NEONPOOLD:-$np_top/src/neonpoold}
NEONPOOLCTL=${NEONPOOLCTL:-$np_top/src/neonpoolctl}
NP_DAEMON_WRAPPER=${NP_DAEMON_WRAPPER:-}
NP_TIMEOUT_SCALE=${NP_TIMEOUT_SCALE:-1}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
NP_TEST=${0##*/}
NP_TEST=${NP_TEST%.sh}
# Debian's python3 (the first python3 on PATH may be another build); only the stdlib is used.
if [ -x /usr/bin/python3 ]; then NP_PYTHON=/usr/bin/python3; else NP_PYTHON=python3; fi
NP_FAILURES=0
. "$np_top/tests/integration/token.sh"
NP_TEST_PASSWORD=${NP_TEST_PASSWORD:-}

# ---------------------------------------------------------------------------------------------
# Reporting

np_log() { printf '# %s\n' "$*"; }
np_fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
np_skip() { printf 'SKIP: %s\n' "$*"; exit 77; }
# np_ok DESC / np_not_ok DESC: record one check and go on; np_check COND... DESC.
np_ok() { printf 'ok - %s\n' "$*"; }
np_not_ok() { printf 'not ok - %s\n' "$*"; NP_FAILURES=$((NP_FAILURES + 1)); }
# np_expect DESC CMD...: run CMD, record ok/not ok.
np_expect() {
	local desc=$1; shift
	if "$@"; then np_ok "$desc"; else np_not_ok "$desc"; fi
}
# np_expect_eq DESC EXPECTED ACTUAL
np_expect_eq() {
	if [ "$2" = "$3" ]; then np_ok "$1"; else np_not_ok "$1 (expected '$2', got '$3')"; fi
}
# np_measure KEY VALUE [WHAT]: print one figure ("MEASURE KEY VALUE WHAT"). The test asserts only what
# the daemon guarantees (no error, no answer past a deadline it enforces, ratios measured side by
# side); the latency goals a quiet machine should meet are bench/latency's, which runs the test
# and holds each KEY against its goal.
np_measure() { printf 'MEASURE %s %s%s\n' "$1" "$2" "${3:+ $3}"; }
# np_finish: end the test; fails when any check failed.
np_finish() {
	if [ "$NP_FAILURES" -gt 0 ]; then
		printf 'FAIL: %d check(s) failed\n' "$NP_FAILURES" >&2
		exit 1
	fi
	exit 0
}

np_require() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || np_skip "$c is not installed (run scripts/install-deps.sh)"
	done
}

np_is_root() { [ "$EUID" -eq 0 ]; }

# sleep is a builtin (above): an external one cost 4 ms of CPU on this machine, and the polling
# loops run thousands of them

# np_now_ms: milliseconds since the epoch into NP_NOW (no fork).
np_now_ms() { local t=${EPOCHREALTIME/./}; NP_NOW=$((t / 1000)); }

# np_scaled SECONDS: the timeout scaled by NP_TIMEOUT_SCALE.
np_scaled() { echo $(($1 * NP_TIMEOUT_SCALE)); }

# ---------------------------------------------------------------------------------------------
# Temp dir, teardown

if [[ $np__builtins == *" mktemp "* ]]; then
	mktemp -d -v NP_TMP "${TMPDIR:-/tmp}/np-$NP_TEST.XXXXXX" || { echo "FAIL: mktemp" >&2; exit 1; }
else
	NP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/np-$NP_TEST.XXXXXX") || { echo "FAIL: mktemp" >&2; exit 1; }
fi
# Readable and traversable: PostgreSQL runs as `postgres` and nginx/lighttpd workers as
# `nobody` when we are root; they need to reach their directories and the daemon's socket.
chmod 0755 "$NP_TMP"
mkdir -p "$NP_TMP/out"
: >"$NP_TMP/.secret-exempt"
: >"$NP_TMP/.ports"
NP_PORT_LOCKS=${TMPDIR:-/tmp}/np-port-locks-$EUID
mkdir -p "$NP_PORT_LOCKS"

declare -a NP_D_NAMES=()        # daemons started (names)
declare -A NP_D_PID=() NP_D_ADDR=() NP_D_LOG=() NP_D_CONF=()
declare -a NP_FRONT_PIDS=()     # nginx / lighttpd masters
NP_PG_STARTED=0
NP_PG_SHARED=0                  # 1: this test's database lives in the suite's shared cluster
NP_PG_DB=neonpool               # the application database (another name in the shared cluster)

# np_secret_exempt FILE...: files allowed to hold the password (configs, password files).
np_secret_exempt() { local f; for f in "$@"; do printf '%s\n' "$f" >>"$NP_TMP/.secret-exempt"; done; }

# np_check_no_secret: the test password must appear in no log or captured output under the
# temp dir, except PostgreSQL's own files and the exempted configs. Returns 1 when found.
np_check_no_secret() {
	[ -n "$NP_TEST_PASSWORD" ] || return 0
	local hits
	hits=$(grep -rlaF --exclude-dir=pg -- "$NP_TEST_PASSWORD" "$NP_TMP" 2>/dev/null |
		grep -vxF -f "$NP_TMP/.secret-exempt" | grep -v '/\.secret-exempt$')
	if [ -n "$hits" ]; then
		printf 'FAIL: the database password appears in:\n' >&2
		local f
		for f in $hits; do
			printf '  %s:\n' "$f" >&2
			grep -naF -- "$NP_TEST_PASSWORD" "$f" | head -n 5 | sed "s/$NP_TEST_PASSWORD/<PASSWORD>/g; s/^/    /" >&2
		done
		return 1
	fi
	return 0
}

# np_check_sanitizers: no AddressSanitizer/LeakSanitizer/UBSan report and no valgrind error in
# the daemon logs, sanitizer log_path files or valgrind logs. Returns 1 when one is found.
np_check_sanitizers() {
	local bad=0 f
	for f in $(grep -rlaE --exclude-dir=pg \
		'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|UndefinedBehavior|Leak)Sanitizer' \
		"$NP_TMP" 2>/dev/null); do
		printf 'FAIL: sanitizer report in %s:\n' "$f" >&2
		head -n 60 "$f" | sed 's/^/    /' >&2
		bad=1
	done
	for f in "$NP_TMP"/vg.*; do
		[ -f "$f" ] || continue
		if grep -qE 'ERROR SUMMARY: [1-9]' "$f"; then
			printf 'FAIL: valgrind errors in %s:\n' "$f" >&2
			head -n 80 "$f" | sed 's/^/    /' >&2
			bad=1
		fi
	done
	return $bad
}

np_dump_logs() {
	local f
	while IFS= read -r f; do
		[ -s "$f" ] || continue
		printf '==== %s (last 60 lines) ====\n' "${f#"$NP_TMP"/}" >&2
		tail -n 60 "$f" | sed "s/${NP_TEST_PASSWORD:-@@no-password@@}/<PASSWORD>/g" >&2
	done < <(find "$NP_TMP" -type f \( -name '*.log' -o -name 'vg.*' -o -name 'sanitizer.*' -o -path "$NP_TMP/out/*" \) \
		! -name initdb.log | sort)
}

np__teardown() {
	local rc=$?
	trap - EXIT TERM INT
	set +e
	[ "$rc" -eq 0 ] && [ "$NP_FAILURES" -gt 0 ] && rc=1
	local pid name
	for pid in "${NP_FRONT_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for name in "${NP_D_NAMES[@]}"; do
		pid=${NP_D_PID[$name]}
		kill -CONT -- "-$pid" 2>/dev/null
		np_alive "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${NP_FRONT_PIDS[@]}"; do
		np_wait_gone "$pid" 5000 || kill -KILL "$pid" 2>/dev/null
	done
	for name in "${NP_D_NAMES[@]}"; do
		pid=${NP_D_PID[$name]}
		np_wait_gone "$pid" $((10000 * NP_TIMEOUT_SCALE)) || kill -KILL "$pid" 2>/dev/null
		# Each daemon runs in its own process group (setsid): nothing of it may survive.
		kill -KILL -- "-$pid" 2>/dev/null
	done
	[ "$NP_PG_STARTED" = 1 ] && np__stop_pg
	[ "$NP_PG_SHARED" = 1 ] && np__drop_shared_db
	# a test's own last step (t_scaleout.sh: its network namespaces), once its servers are gone
	[ -n "${NP_TEARDOWN_HOOK:-}" ] && "$NP_TEARDOWN_HOOK"
	if [ "$rc" -ne 77 ]; then
		np_check_no_secret || rc=1
		np_check_sanitizers || rc=1
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		np_dump_logs
	fi
	local p
	while IFS= read -r p; do
		[ -n "$p" ] && rmdir "$NP_PORT_LOCKS/$p" 2>/dev/null
	done <"$NP_TMP/.ports"
	if [ "${NP_KEEP_TMP:-0}" = 1 ]; then
		echo "# kept $NP_TMP" >&2
	else
		rm -rf "$NP_TMP"
	fi
	exit "$rc"
}
trap np__teardown EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# ---------------------------------------------------------------------------------------------
# Processes

# np_alive PID: the process exists and is not a zombie.
np_alive() {
	local s
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
	s=${s##*) }     # the state follows "(comm) "; comm may hold spaces
	s=${s%% *}
	[ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}

# np_wait_gone PID TIMEOUT_MS: wait until PID is gone (or a zombie). 0 if it went, 1 on timeout.
np_wait_gone() {
	local pid=$1 deadline
	np_now_ms; deadline=$((NP_NOW + $2))
	while np_alive "$pid"; do
		np_now_ms
		[ "$NP_NOW" -ge "$deadline" ] && return 1
		sleep 0.02
	done
	return 0
}

# np_artifacts: NP_ART, where the browser tests put their screenshots: NP_ARTIFACTS_DIR, else
# tests/browser/artifacts; none under CI=true unless NP_ARTIFACTS_DIR asks (nobody looks at them
# there, and a screenshot costs 0.6 CPU s here: 13 in the three browser tests)
np_artifacts() {
	NP_ART=${NP_ARTIFACTS_DIR:-}
	[ -z "$NP_ART" ] && [ "${CI:-}" != true ] && NP_ART=$np_top/tests/browser/artifacts
	[ -z "$NP_ART" ] || mkdir -p "$NP_ART"
}

# np_children PID: "pid comm" of each child of PID (comm up to its first space), from
# /proc/PID/task/*/children in bash: ps and awk were two processes a call, and tests poll this.
np_children() {
	local f c comm
	local -a kids
	for f in /proc/"$1"/task/*/children; do
		kids=()
		{ read -r -a kids <"$f"; } 2>/dev/null
		for c in "${kids[@]}"; do
			{ read -r comm <"/proc/$c/comm"; } 2>/dev/null && printf '%s %s\n' "$c" "${comm%% *}"
		done
	done
	return 0
}

# np_child_pids PID COMM: the pids of PID's live children named COMM, space separated.
# np__child_pids sets NP_PIDS instead (no process: a polling loop called it every 10 ms).
np__child_pids() {
	local f c comm
	local -a kids
	NP_PIDS=
	for f in /proc/"$1"/task/*/children; do
		kids=()
		{ read -r -a kids <"$f"; } 2>/dev/null
		for c in "${kids[@]}"; do
			{ read -r comm <"/proc/$c/comm"; } 2>/dev/null || continue
			[ "${comm%% *}" = "$2" ] && np_alive "$c" && NP_PIDS+="${NP_PIDS:+ }$c"
		done
	done
	return 0
}
np_child_pids() { np__child_pids "$@"; echo "$NP_PIDS"; }

# np_poll WANT TRIES CMD...: run CMD every 0.1 s until it prints WANT, at most TRIES times (a
# condition waited for, not a window slept through); NP_POLLED holds its last output, for the check.
np_poll() {
	local want=$1 tries=$2 np__i
	shift 2
	for ((np__i = 0; np__i < tries; np__i++)); do
		NP_POLLED=$("$@")
		[ "$NP_POLLED" = "$want" ] && return 0
		sleep 0.1
	done
	return 1
}

# np_wait_status PID: wait for our child PID and set NP_EXIT_STATUS.
np_wait_status() { wait "$1" 2>/dev/null; NP_EXIT_STATUS=$?; }

# ---------------------------------------------------------------------------------------------
# Ports

# np_free_port: print a port on 127.0.0.1 that nothing uses, below the ephemeral range,
# locked for this test (other tests of this user skip it) until teardown.
np_free_port() {
	local i p
	for ((i = 1; i <= 500; i++)); do
		p=$((20000 + RANDOM % 12000))
		mkdir "$NP_PORT_LOCKS/$p" 2>/dev/null || continue
		if np__port_bindable "$p"; then
			echo "$p" >>"$NP_TMP/.ports"
			echo "$p"
			return 0
		fi
		rmdir "$NP_PORT_LOCKS/$p"
	done
	echo "np_free_port: no free port found" >&2
	return 1
}

# np__port_bindable PORT: a socket can bind 127.0.0.1:PORT (asked of the resident Python of
# np_json_get where it answers: a python3 start is 35 ms of CPU, four a test)
np__port_bindable() {
	local out
	if np__pyj_usable; then
		printf '%s\0' $'\001bind' "$1" >&"${NP__PYJ[1]}" && IFS= read -r -d '' -u "${NP__PYJ[0]}" out &&
			[ "$out" = 0 ] && return 0
		[ "$out" = 1 ] && return 1
	fi
	"$NP_PYTHON" -c 'import socket,sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.close()' "$1" 2>/dev/null
}

# np_wait_port PORT TIMEOUT_S: wait until something accepts TCP connections on 127.0.0.1:PORT
# (of the network namespace NP_NETNS when it is set: tests/integration/t_scaleout.sh).
np_wait_port() {
	local deadline fd
	np_now_ms; deadline=$((NP_NOW + $2 * 1000))
	while :; do
		if [ -n "${NP_NETNS:-}" ]; then
			ip netns exec "$NP_NETNS" bash -c ": <>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
		# opened and closed in this shell: a subshell for each try is a fork
		elif { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then exec {fd}>&-; return 0; fi
		np_now_ms
		[ "$NP_NOW" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL 15

# NP_AS_PG: the words that run a command as the PostgreSQL OS user (postgres when we are root;
# none otherwise), for psql inside the tests' drivers too. setpriv, not runuser: no PAM session
# (10 ms of CPU a call against 20; the tests run psql this way thousands of times).
NP_AS_PG=()
np_is_root && NP_AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
NP_PG_HOME=/var/lib/postgresql
while IFS=: read -r np__u _ _ _ _ np__h _; do [ "$np__u" = postgres ] && NP_PG_HOME=$np__h; done </etc/passwd
# np_pg_run CMD...: run CMD as the PostgreSQL OS user, in a directory that user can read, with the
# environment runuser would set; in the network namespace NP_PG_NETNS when it is set (the test
# bed's database host: the server started there listens on that namespace's addresses).
np_pg_run() {
	if np_is_root; then
		local -a ns=()
		[ -n "${NP_PG_NETNS:-}" ] && ns=(ip netns exec "$NP_PG_NETNS")
		(cd "$NP_TMP/pg" && HOME=$NP_PG_HOME USER=postgres LOGNAME=postgres "${ns[@]}" "${NP_AS_PG[@]}" "$@")
	else
		(cd "$NP_TMP/pg" && "$@")
	fi
}

# np__stop_pg: stop the test cluster at once, even when a test left it SIGSTOPped.
np__stop_pg() {
	local pm kids p
	pm=$(head -n 1 "$NP_TMP/pg/data/postmaster.pid" 2>/dev/null)
	[ -n "$pm" ] || return 0
	kids=$(ps -o pid= --ppid "$pm" 2>/dev/null)
	for p in $pm $kids; do kill -CONT "$p" 2>/dev/null; done
	np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" stop -m immediate -t 10 >/dev/null 2>&1
	if np_alive "$pm"; then
		for p in $pm $kids; do kill -KILL "$p" 2>/dev/null; done
	fi
	return 0
}

# np_psql_super [psql args...]: psql as superuser `postgres` over the unix socket. In the shared
# cluster, `-d neonpool` names this test's database.
np_psql_super() {
	local -a args=()
	local a prev=""
	for a in "$@"; do
		if [ "$NP_PG_DB" != neonpool ]; then
			case $prev/$a in
			-d/neonpool) a=$NP_PG_DB ;;
			*/--dbname=neonpool) a=--dbname=$NP_PG_DB ;;
			esac
		fi
		args+=("$a"); prev=$a
	done
	np_pg_run "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$NP_PG_SOCKDIR" -p "$NP_PG_PORT" \
		-U postgres -d postgres "${args[@]}"
}

# np_pg_shared: whether this test uses the suite's shared cluster: NP_SHARED_PG names one and the
# test's file holds the line "# np: shared-pg" (opt-in: a test that stops, kills, pauses or
# reconfigures the server, changes a role, fills max_connections or reads the server's log must
# keep a private cluster, so it must not carry the line).
np_pg_shared() {
	[ -n "${NP_SHARED_PG:-}" ] && [ -r "$NP_SHARED_PG" ] && grep -q '^# np: shared-pg' "$0" 2>/dev/null
}

# np__shared_db_env: read the shared cluster's NP_SHARED_PG_* settings.
np__shared_db_env() {
	local line k
	while IFS= read -r line; do
		k=${line%%=*}
		case $k in NP_SHARED_PG_*) printf -v "$k" '%s' "${line#*=}" ;; esac
	done <"$NP_SHARED_PG"
}

# np__shared_db TEMPLATE: a database of this test's own in the shared cluster, owned by the shared
# role neonpool, copied from TEMPLATE (template1: empty; neonpool: migrated and seeded). Sets what
# np_start_pg sets.
np__shared_db() {
	np__shared_db_env
	mkdir -p "$NP_TMP/pg"
	np_is_root && chown postgres: "$NP_TMP/pg"
	NP_PG_PORT=$NP_SHARED_PG_PORT
	NP_PG_SOCKDIR=$NP_SHARED_PG_SOCKDIR
	NP_PG_CA=$NP_SHARED_PG_CA
	NP_TEST_PASSWORD=$NP_SHARED_PG_PASSWORD
	NP_PG_DB=${NP_TEST}_${NP_TMP##*.}
	NP_PG_DB=${NP_PG_DB,,}
	NP_PG_DB=${NP_PG_DB//[!a-z0-9_]/_}
	NP_PG_DB=np_${NP_PG_DB:0:50}
	# FILE_COPY: 80 ms of CPU for the 16 MB seeded template where PostgreSQL 15's default,
	# WAL_LOG (every block through the WAL), took 190-210 ms
	np_psql_super -d postgres -c "CREATE DATABASE \"$NP_PG_DB\" OWNER neonpool TEMPLATE $1 STRATEGY FILE_COPY" \
		>"$NP_TMP/out/createdb.out" 2>&1 || np_fail "CREATE DATABASE $NP_PG_DB failed: $(cat "$NP_TMP/out/createdb.out")"
	NP_PG_SHARED=1
	NP_DATABASE_URL="postgresql://neonpool:$NP_TEST_PASSWORD@127.0.0.1:$NP_PG_PORT/$NP_PG_DB?sslmode=require"
	export NP_PG_PORT NP_PG_SOCKDIR NP_PG_CA NP_TEST_PASSWORD NP_DATABASE_URL NP_PG_DB
	np_log "database $NP_PG_DB (from $1) in the shared PostgreSQL 15 on 127.0.0.1:$NP_PG_PORT"
}

# np__drop_shared_db: drop this test's database (its sessions are ended first).
# With NP_PGSTAT_LOG (tests/run.sh under NP_TIMELINE), the database's figures go to that file first:
# "TEST active_ms session_ms xact_commit tup_returned blks_hit", what the test cost the shared server.
np__drop_shared_db() {
	if [ -n "${NP_PGSTAT_LOG:-}" ]; then
		np_psql_super -d postgres -At -F ' ' -c "SELECT '$NP_TEST', round(active_time), round(session_time),
			xact_commit, tup_returned, blks_hit FROM pg_stat_database WHERE datname = '$NP_PG_DB'" \
			>>"$NP_PGSTAT_LOG" 2>/dev/null
	fi
	np_psql_super -d postgres -c "DROP DATABASE IF EXISTS \"$NP_PG_DB\" WITH (FORCE)" >/dev/null 2>&1
	return 0
}

# np_pg_scope: an SQL condition limiting pg_stat_activity to this test's database in the shared
# cluster (" AND datname = '...'"), nothing in a private one (every database there is this test's).
np_pg_scope() {
	[ "$NP_PG_SHARED" = 1 ] && printf " AND datname = '%s'" "$NP_PG_DB"
	return 0
}

# np_start_pg: start a private PostgreSQL 15 with TLS on 127.0.0.1:free port and a unix socket
# in the temp dir, a role `neonpool` (scram-sha-256, random password) owning database
# `neonpool`. Exports NP_PG_PORT, NP_PG_SOCKDIR, NP_PG_CA, NP_TEST_PASSWORD, NP_DATABASE_URL
# and NP_PG_DB (the database's name). With np_pg_shared: an empty database of the test's own in
# the shared cluster instead (NP_PG_DB names it; `np_psql_super -d neonpool` reaches it).
np_start_pg() {
	if np_pg_shared; then
		np__shared_db template1
		return 0
	fi
	# NP_PG_WANT_SEED=N (np_db_prepare): start from the shared cluster's stopped, migrated copy
	# when it was seeded with N books; NP_PG_SEEDED says whether it did
	local seeded_src=""
	NP_PG_SEEDED=0
	if [ -n "${NP_PG_WANT_SEED:-}" ] && [ -n "${NP_SHARED_PG:-}" ] && [ -r "$NP_SHARED_PG" ]; then
		np__shared_db_env
		[ "$NP_PG_WANT_SEED" = "${NP_SHARED_PG_SEED:-}" ] && [ -f "${NP_SHARED_PG_SEEDED:-}/data/PG_VERSION" ] &&
			seeded_src=$NP_SHARED_PG_SEEDED/data
	fi
	[ -x "$PGBIN/initdb" ] || np_skip "PostgreSQL 15 is not installed ($PGBIN; run scripts/install-deps.sh)"
	np_require openssl
	local pg=$NP_TMP/pg me
	me=$(id -un)
	mkdir -p "$pg/run"
	chmod 0700 "$pg/run"
	if np_is_root; then
		getent passwd postgres >/dev/null || np_fail "no user 'postgres' to run PostgreSQL as (install postgresql-15)"
		runuser -u postgres -- test -x "$NP_TMP" ||
			np_fail "user postgres cannot reach $NP_TMP: set TMPDIR to a directory it can traverse"
	fi
	NP_PG_PORT=$(np_free_port) || np_fail "no free port for PostgreSQL"
	NP_PG_SOCKDIR=$pg/run
	NP_TEST_PASSWORD="np-test-secret-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=localhost -addext "subjectAltName=DNS:localhost,DNS:db.neonpool.test,IP:127.0.0.1" \
		-keyout "$pg/server.key" -out "$pg/server.crt" >"$pg/openssl.out" 2>&1 ||
		np_fail "openssl could not make the test certificate: $(cat "$pg/openssl.out")"
	chmod 0600 "$pg/server.key"
	chmod 0644 "$pg/server.crt"
	NP_PG_CA=$pg/server.crt
	np_is_root && chown -R postgres: "$pg"
	# NP_PG_INITDB_CACHE (tests/run.sh): a cluster initdb made once with these options, copied in
	# 0.1 s instead of an initdb per test (1.3 CPU s, 2-4 s on a busy machine)
	if [ -n "$seeded_src" ]; then
		np_pg_run cp -a "$seeded_src" "$pg/data" >"$pg/initdb.log" 2>&1 ||
			np_fail "copying the seeded cluster failed: $(tail -n 5 "$pg/initdb.log")"
	elif [ -n "${NP_PG_INITDB_CACHE:-}" ] && [ -f "$NP_PG_INITDB_CACHE/data/PG_VERSION" ]; then
		np_pg_run cp -a "$NP_PG_INITDB_CACHE/data" "$pg/data" >"$pg/initdb.log" 2>&1 ||
			np_fail "copying the initdb cache failed: $(tail -n 5 "$pg/initdb.log")"
	else
		np_pg_run "$PGBIN/initdb" -D "$pg/data" -U postgres -E UTF8 --locale=C \
			--auth-local=peer --auth-host=scram-sha-256 >"$pg/initdb.log" 2>&1 ||
			np_fail "initdb failed: $(tail -n 5 "$pg/initdb.log")"
	fi
	np_pg_run sh -c "cat >>'$pg/data/postgresql.conf'" <<EOF
# neonpool tests
listen_addresses = '127.0.0.1${NP_PG_LISTEN_MORE:+,$NP_PG_LISTEN_MORE}'
port = $NP_PG_PORT
unix_socket_directories = '$pg/run'
ssl = on
ssl_cert_file = '$pg/server.crt'
ssl_key_file = '$pg/server.key'
password_encryption = 'scram-sha-256'
max_connections = 100
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
	# The socket directory is private (0700: the PostgreSQL OS user, and root): over it the
	# superuser is the OS user running the tests (peer + map), the application role needs
	# its password, and any other role (a foreign client in a test) is trusted. Over TCP:
	# TLS and a password only.
	np_pg_run sh -c "cat >'$pg/data/pg_hba.conf'" <<EOF
local   all   postgres                  peer map=np
local   all   neonpool                  scram-sha-256
local   all   all                       trust
hostssl all   all       127.0.0.1/32    scram-sha-256
${NP_PG_HBA_NET:+hostssl all   all       $NP_PG_HBA_NET    scram-sha-256}
EOF
	np_pg_run sh -c "cat >'$pg/data/pg_ident.conf'" <<EOF
np   postgres   postgres
np   root       postgres
np   $me        postgres
EOF
	np_pg_run "$PGBIN/pg_ctl" -D "$pg/data" -l "$pg/postgresql.log" -w -t 60 start >"$pg/pg_ctl.out" 2>&1 ||
		np_fail "PostgreSQL did not start: $(tail -n 20 "$pg/postgresql.log" 2>/dev/null)"
	NP_PG_STARTED=1
	# The password travels on stdin, never on a command line.
	if [ -n "$seeded_src" ]; then
		# the copy has the role and the database (open: the copy was taken before the shared
		# cluster closed its template); the role gets this test's password
		printf "ALTER ROLE neonpool PASSWORD '%s';\n" "$NP_TEST_PASSWORD" | np_psql_super >"$pg/setup.out" 2>&1 ||
			np_fail "setting the role's password failed: $(cat "$pg/setup.out")"
		NP_PG_SEEDED=1
	else
		printf "CREATE ROLE neonpool LOGIN PASSWORD '%s';\nCREATE DATABASE neonpool OWNER neonpool;\n" \
			"$NP_TEST_PASSWORD" | np_psql_super >"$pg/setup.out" 2>&1 ||
			np_fail "creating role/database failed: $(cat "$pg/setup.out")"
	fi
	NP_DATABASE_URL="postgresql://neonpool:$NP_TEST_PASSWORD@127.0.0.1:$NP_PG_PORT/neonpool?sslmode=require"
	export NP_PG_PORT NP_PG_SOCKDIR NP_PG_CA NP_TEST_PASSWORD NP_DATABASE_URL
	np_log "PostgreSQL 15 on 127.0.0.1:$NP_PG_PORT (TLS) and $NP_PG_SOCKDIR"
}

# np_pg_query SQL: run SQL as the application role over TLS with certificate verification;
# prints the unaligned result.
np_pg_query() {
	PGPASSWORD=$NP_TEST_PASSWORD PGSSLROOTCERT=$NP_PG_CA "$PGBIN/psql" -X -A -t -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$NP_PG_PORT dbname=$NP_PG_DB user=neonpool sslmode=verify-full" -c "$1"
}

# ---------------------------------------------------------------------------------------------
# neonpoold

# np_write_conf FILE [key=value...]: write a libconfig file. A value that is an integer
# (no leading zero) or true/false is written bare, anything else as a quoted string. The file
# is exempt from the secret check (it carries database_url).
np_write_conf() {
	local file=$1 kv k v; shift
	: >"$file"
	for kv in "$@"; do
		k=${kv%%=*}; v=${kv#*=}
		if [[ $v =~ ^(0|-?[1-9][0-9]*)$ ]] || [ "$v" = true ] || [ "$v" = false ]; then
			printf '%s = %s;\n' "$k" "$v" >>"$file"
		else
			v=${v//\\/\\\\}; v=${v//\"/\\\"}
			printf '%s = "%s";\n' "$k" "$v" >>"$file"
		fi
	done
	np_secret_exempt "$file"
}

# np_daemon_conf NAME [key=value...]: the test defaults for daemon NAME, overridden by the
# arguments (key=- drops a key), written to $NP_TMP/NAME.conf.
np_daemon_conf() {
	local name=$1 kv k; shift
	local -A kvs=()
	local -a order=(workers listen listen_backlog listen_mode pid_file log_level shutdown_timeout_ms database_url)
	kvs[workers]=2
	kvs[listen]=$NP_TMP/$name.sock
	kvs[listen_backlog]=4096
	kvs[listen_mode]=0666
	kvs[pid_file]=$NP_TMP/$name.pid
	kvs[log_level]=info
	kvs[shutdown_timeout_ms]=5000
	[ -n "${NP_DATABASE_URL:-}" ] && kvs[database_url]=$NP_DATABASE_URL
	for kv in "$@"; do
		k=${kv%%=*}
		# a key of the default order that has no default yet (database_url) is not added twice
		[ -v "kvs[$k]" ] || [[ " ${order[*]} " == *" $k "* ]] || order+=("$k")
		kvs[$k]=${kv#*=}
	done
	local -a args=()
	for k in "${order[@]}"; do
		[ -v "kvs[$k]" ] || continue
		[ "${kvs[$k]}" = - ] && continue
		args+=("$k=${kvs[$k]}")
	done
	np_write_conf "$NP_TMP/$name.conf" "${args[@]}"
	echo "$NP_TMP/$name.conf"
}

# np_conf_get FILE KEY: the (unquoted) value of KEY in a config written by np_write_conf (the
# last one; nothing when there is none). np__conf_get sets NP_CONF_VAL instead (no process).
np__conf_get() {
	local line found=1
	NP_CONF_VAL=
	while IFS= read -r line || [ -n "$line" ]; do
		[[ $line == "$2 = "*";" ]] || continue
		line=${line#"$2 = "}; line=${line%;}
		[[ $line == \"*\" ]] && line=${line:1:${#line}-2}
		NP_CONF_VAL=$line found=0
	done <"$1"
	return $found
}
np_conf_get() { np__conf_get "$@" && printf '%s\n' "$NP_CONF_VAL"; }

# np_fcgi_addr LISTEN: the cgi-fcgi -connect form of a listen value.
np_fcgi_addr() { local a=${1#unix:}; echo "$a"; }

# np__wrapper: the NP_DAEMON_WRAPPER words with @TMP@ replaced.
np__wrapper() {
	NP_WRAP=()
	[ -n "$NP_DAEMON_WRAPPER" ] || return 0
	read -r -a NP_WRAP <<<"${NP_DAEMON_WRAPPER//@TMP@/$NP_TMP}"
}

# np__register NAME PID ADDR LOG CONF: remember a started daemon and make it the current one.
np__register() {
	NP_D_NAMES+=("$1")
	NP_D_PID[$1]=$2; NP_D_ADDR[$1]=$3; NP_D_LOG[$1]=$4; NP_D_CONF[$1]=$5
	np_use_daemon "$1"
}

# np_use_daemon NAME: make NAME the current daemon (NP_DAEMON_PID/ADDR/LOG/CONF).
np_use_daemon() {
	NP_DAEMON_NAME=$1
	NP_DAEMON_PID=${NP_D_PID[$1]}
	NP_DAEMON_ADDR=${NP_D_ADDR[$1]}
	NP_DAEMON_LOG=${NP_D_LOG[$1]}
	NP_DAEMON_CONF=${NP_D_CONF[$1]}
}

# Sanitizer reports go to files in the temp dir too, whatever the daemon does with stderr.
np__san_env() {
	NP_SAN_ENV=()
	[ -n "${ASAN_OPTIONS:-}" ] && NP_SAN_ENV+=("ASAN_OPTIONS=$ASAN_OPTIONS:log_path=$NP_TMP/sanitizer.asan")
	[ -n "${UBSAN_OPTIONS:-}" ] && NP_SAN_ENV+=("UBSAN_OPTIONS=$UBSAN_OPTIONS:log_path=$NP_TMP/sanitizer.ubsan")
	[ -n "${LSAN_OPTIONS:-}" ] && NP_SAN_ENV+=("LSAN_OPTIONS=$LSAN_OPTIONS:log_path=$NP_TMP/sanitizer.lsan")
	return 0
}

# np_start_daemon [--name NAME] [--no-wait] [key=value...]: write NAME.conf (np_daemon_conf)
# and start neonpoold on it in the background, in its own process group, stdout and stderr
# to NAME.log; wait until /healthz answers 200 over FastCGI (10 s, scaled).
np_start_daemon() {
	local name=neonpoold wait=1
	while [ $# -gt 0 ]; do
		case $1 in
		--name) name=$2; shift 2 ;;
		--no-wait) wait=0; shift ;;
		*) break ;;
		esac
	done
	[ -x "$NEONPOOLD" ] || np_fail "neonpoold not built: $NEONPOOLD (run make)"
	local conf log addr
	np_daemon_conf "$name" "$@" >/dev/null
	conf=$NP_TMP/$name.conf
	log=$NP_TMP/$name.log
	np__conf_get "$conf" listen
	addr=${NP_CONF_VAL#unix:}
	np__wrapper; np__san_env
	(cd "$NP_TMP" && { [ ${#NP_SAN_ENV[@]} -eq 0 ] || export "${NP_SAN_ENV[@]}"; } &&
		exec setsid "${NP_WRAP[@]}" "$NEONPOOLD" -c "$conf") </dev/null >>"$log" 2>&1 &
	np__register "$name" $! "$addr" "$log" "$conf"
	np_log "started $name pid $NP_DAEMON_PID on $addr"
	[ "$wait" = 1 ] || return 0
	np_wait_ready
}

# np_start_spawnfcgi [--name NAME] [key=value...]: the daemon under `spawn-fcgi -n` on
# 127.0.0.1:free port with listen = "stdin"; waits for /healthz like np_start_daemon.
np_start_spawnfcgi() {
	local name=spawnfcgi
	[ "${1:-}" = --name ] && { name=$2; shift 2; }
	np_require spawn-fcgi
	[ -x "$NEONPOOLD" ] || np_fail "neonpoold not built: $NEONPOOLD (run make)"
	local port conf log
	port=$(np_free_port) || np_fail "no free port"
	conf=$(np_daemon_conf "$name" listen=stdin listen_mode=- listen_backlog=- "$@")
	log=$NP_TMP/$name.log
	np__wrapper; np__san_env
	(cd "$NP_TMP" && exec env "${NP_SAN_ENV[@]}" setsid spawn-fcgi -n -a 127.0.0.1 -p "$port" -b 4096 -- \
		"${NP_WRAP[@]}" "$NEONPOOLD" -c "$conf") </dev/null >>"$log" 2>&1 &
	np__register "$name" $! "127.0.0.1:$port" "$log" "$conf"
	np_log "started $name (spawn-fcgi -n) pid $NP_DAEMON_PID on 127.0.0.1:$port"
	np_wait_ready
}

# np_wait_ready [TIMEOUT_S]: wait until the current daemon answers GET /healthz with 200.
np_wait_ready() {
	local deadline
	np_now_ms; deadline=$((NP_NOW + $(np_scaled "${1:-10}") * 1000))
	while :; do
		if ! np_alive "$NP_DAEMON_PID"; then
			np_wait_status "$NP_DAEMON_PID"
			np_fail "$NP_DAEMON_NAME exited during start (status $NP_EXIT_STATUS): $(tail -n 5 "$NP_DAEMON_LOG")"
		fi
		np__ready_probe || np_fcgi GET /healthz >/dev/null 2>&1
		[ "$NP_STATUS" = 200 ] && return 0
		np_now_ms
		[ "$NP_NOW" -ge "$deadline" ] && np_fail "$NP_DAEMON_NAME not ready after ${1:-10} s (last status $NP_STATUS)"
		sleep 0.1
	done
}

# np_stop_daemon SIGNAL [TIMEOUT_MS]: signal the current master, wait for it and for every
# child it had to exit. Sets NP_EXIT_STATUS (master) and NP_STOP_MS; returns 1 on timeout.
np_stop_daemon() {
	local sig=$1 timeout=${2:-$((10000 * NP_TIMEOUT_SCALE))} kids p t0
	kids=$(np_children "$NP_DAEMON_PID" | awk '{print $1}')
	np_now_ms; t0=$NP_NOW
	kill -"$sig" "$NP_DAEMON_PID" || return 1
	np_wait_gone "$NP_DAEMON_PID" "$timeout" || return 1
	for p in $kids; do
		np_now_ms
		np_wait_gone "$p" $((timeout - (NP_NOW - t0))) || return 1
	done
	np_now_ms; NP_STOP_MS=$((NP_NOW - t0))
	np_wait_status "$NP_DAEMON_PID"
	return 0
}

# ---------------------------------------------------------------------------------------------
# Clients

# np__ready_probe: GET /healthz of the current daemon over FastCGI by the resident Python, the
# parameters np_fcgi sends (the poll above made six processes every 100 ms: env, timeout,
# cgi-fcgi, two awk and a cat); sets NP_STATUS (000: no answer); 1 where that Python does not answer
np__ready_probe() {
	local out
	np__pyj_usable || return 1
	printf '%s\0' $'\001fcgi' "$NP_DAEMON_ADDR" /healthz >&"${NP__PYJ[1]}" &&
		IFS= read -r -d '' -u "${NP__PYJ[0]}" out && [ "${out:0:1}" = 0 ] || return 1
	NP_STATUS=${out:1}
}

# np_fcgi [-a ADDR] METHOD URI [BODY_FILE|-] [NAME=VALUE...]: one request straight to the
# daemon with cgi-fcgi. Sets NP_STATUS ("000" when there was no answer); the headers and
# body are in $NP_TMP/fcgi.headers and $NP_TMP/fcgi.body; prints the body.
np_fcgi() {
	local addr=$NP_DAEMON_ADDR
	[ "$1" = -a ] && { addr=$2; shift 2; }
	local method=$1 uri=$2 body=${3:--}
	shift 2; [ $# -gt 0 ] && shift
	local path=${uri%%\?*} query=""
	[ "$path" != "$uri" ] && query=${uri#*\?}
	local -a env=(REQUEST_METHOD="$method" REQUEST_URI="$uri" SCRIPT_NAME="$path"
		DOCUMENT_URI="$path" QUERY_STRING="$query" SERVER_PROTOCOL=HTTP/1.1
		GATEWAY_INTERFACE=CGI/1.1 SERVER_NAME=localhost SERVER_PORT=80 REMOTE_ADDR=127.0.0.1
		REMOTE_PORT=40000 SERVER_ADDR=127.0.0.1 HTTP_HOST=localhost)
	local raw=$NP_TMP/fcgi.raw
	if [ "$body" != - ]; then
		env+=(CONTENT_LENGTH="$(stat -c %s "$body")" CONTENT_TYPE=application/json)
		env -i "${env[@]}" "$@" timeout 10 cgi-fcgi -bind -connect "$addr" <"$body" >"$raw" 2>"$NP_TMP/fcgi.err"
	else
		env -i "${env[@]}" "$@" timeout 10 cgi-fcgi -bind -connect "$addr" </dev/null >"$raw" 2>"$NP_TMP/fcgi.err"
	fi
	# CGI response: headers, an empty line, the body; no Status header means 200.
	awk -v h="$NP_TMP/fcgi.headers" -v b="$NP_TMP/fcgi.body" '
		BEGIN { inh = 1; printf "" > h; printf "" > b }
		inh && /^\r?$/ { inh = 0; next }
		inh { sub(/\r$/, ""); print > h; next }
		{ print > b }' "$raw"
	if [ ! -s "$raw" ]; then
		NP_STATUS=000
	else
		NP_STATUS=$(awk 'tolower($1) == "status:" { print $2; f = 1; exit } END { if (!f) print 200 }' "$NP_TMP/fcgi.headers")
	fi
	cat "$NP_TMP/fcgi.body"
}

# np_fcgi_header NAME: a header of the last np_fcgi answer (case-insensitive name).
np_fcgi_header() { np__header "$NP_TMP/fcgi.headers" "$1"; }

np__header() {
	# in bash, no process of its own (awk and tr were two per lookup)
	local want=${2,,} line name v
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		[[ $line == *:* ]] || continue
		name=${line%%:*}
		[ "${name,,}" = "$want" ] || continue
		v=${line#*:}
		printf '%s\n' "${v#"${v%%[! $'\t']*}"}"
		return 0
	done <"$1"
}

# np_curl [-X METHOD] PATH [curl args...]: one HTTP request to the current front server
# (NP_HTTP_PORT). Sets NP_STATUS; headers/body in $NP_TMP/http.headers and http.body.
# The resident Python (np_json_get) makes the request when the arguments are only -X, -H and a
# literal --data/--data-binary/-d (what curl would send: Accept */*, no Accept-Encoding, the form
# Content-Type for a body without one, POST for a body): a curl start costs 21 ms of CPU here and
# the suite made 1,500. Any other argument, or a URL Python refuses, goes to curl.
np_curl() {
	local -a method=()
	[ "$1" = -X ] && { method=(-X "$2"); shift 2; }
	local path=$1; shift
	if np__pyj_usable && np__curl_py "$path" "${method[@]}" "$@"; then
		return 0
	fi
	NP_STATUS=$(curl -sS "${method[@]}" -o "$NP_TMP/http.body" -D "$NP_TMP/http.headers" \
		-w '%{http_code}' --max-time 10 "$@" "http://127.0.0.1:$NP_HTTP_PORT$path" 2>"$NP_TMP/http.err") || true
	[ -n "$NP_STATUS" ] || NP_STATUS=000
}
# np__curl_py PATH [curl args...]: np_curl through the resident Python; status 1 (nothing sent)
# when an argument is not one it knows.
np__curl_py() {
	local path=$1 m="" data="" has_data=0 out
	local -a hdrs=()
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		-X) [ $# -ge 2 ] || return 1; m=$2; shift 2 ;;
		-H) [ $# -ge 2 ] && [[ $2 == [!:]*:* ]] && [[ $2 != *: ]] || return 1; hdrs+=("$2"); shift 2 ;;
		--data | --data-binary | -d)
			[ $# -ge 2 ] && [ $has_data = 0 ] && [[ $2 != @* ]] || return 1
			[ "$1" = --data-binary ] || [[ $2 != *[$'\r\n']* ]] || return 1
			data=$2 has_data=1; shift 2 ;;
		*) return 1 ;;
		esac
	done
	[[ ${hdrs[*]} == *$'\n'* ]] && return 1
	printf '%s\0' $'\001http' "$m" "http://127.0.0.1:$NP_HTTP_PORT$path" 10 "$NP_TMP/http.body" \
		"$NP_TMP/http.headers" "$NP_TMP/http.err" "$has_data" "$data" "${#hdrs[@]}" "${hdrs[@]}" \
		>&"${NP__PYJ[1]}" && IFS= read -r -d '' -u "${NP__PYJ[0]}" out || return 1
	[ "${out:0:1}" = 0 ] || return 1
	NP_STATUS=${out:1}
}

# np_http_header NAME: a header of the last np_curl answer.
np_http_header() { np__header "$NP_TMP/http.headers" "$1"; }

# np_json_valid FILE: the file holds one JSON document.
np_json_valid() { np_json_get "$1" 'True' >/dev/null; }

# np_json_get FILE EXPR: print EXPR evaluated with d = the parsed document, e.g. 'd["status"]';
# nothing and status 1 when the file is no JSON or EXPR fails. A resident Python started with the
# test's shell answers (np__pyj: FILE NUL EXPR NUL in, "0" VALUE NUL or "1" NUL out): a python3 start
# costs 35 ms of CPU here and the suite made 1,100. Its pipes exist only in the test's shell and
# the command substitutions under it (bash closes them in other subshells): anywhere else, and
# once it is gone, a Python of its own answers.
NP__PYJ_SRC='import json, sys
r, w = sys.stdin.buffer, sys.stdout.buffer
def field():
    b = bytearray()
    while True:
        c = r.read(1)
        if not c:
            sys.exit(0)
        if c == b"\0":
            return b.decode("utf-8", "surrogateescape")
        b += c
def do_fcgi():
    import socket, struct
    addr, uri = field(), field()
    path, _, query = uri.partition("?")
    env = dict(REQUEST_METHOD="GET", REQUEST_URI=uri, SCRIPT_NAME=path, DOCUMENT_URI=path,
               QUERY_STRING=query, SERVER_PROTOCOL="HTTP/1.1", GATEWAY_INTERFACE="CGI/1.1",
               SERVER_NAME="localhost", SERVER_PORT="80", REMOTE_ADDR="127.0.0.1", REMOTE_PORT="40000",
               SERVER_ADDR="127.0.0.1", HTTP_HOST="localhost")
    def rec(t, c=b""):
        return struct.pack(">BBHHBB", 1, t, 1, len(c), 0, 0) + c
    def ln(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    pv = b"".join(ln(len(k)) + ln(len(v)) + k.encode() + v.encode() for k, v in env.items())
    out = b""
    try:
        if addr.startswith("/") or ":" not in addr:
            so = socket.socket(socket.AF_UNIX)
            so.settimeout(10)
            so.connect(addr)
        else:
            h, _, p = addr.rpartition(":")
            so = socket.create_connection((h, int(p)), timeout=10)
        with so:
            so.sendall(rec(1, struct.pack(">HB5x", 1, 0)) + rec(4, pv) + rec(4) + rec(5))
            buf = b""
            while True:
                c = so.recv(65536)
                if not c:
                    break
                buf += c
                done = False
                while len(buf) >= 8:
                    t, n, pad = buf[1], struct.unpack(">H", buf[4:6])[0], buf[6]
                    if len(buf) < 8 + n + pad:
                        break
                    if t == 6:
                        out += buf[8:8 + n]
                    elif t == 3:
                        done = True
                    buf = buf[8 + n + pad:]
                if done:
                    break
    except OSError:
        pass  # refused, no socket yet, a timeout: no answer (000)
    except Exception:
        return b"1"  # np_fcgi asks with cgi-fcgi
    if not out:
        return b"0000"
    for line in out.replace(b"\r\n", b"\n").split(b"\n"):
        if not line:
            break
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"status":
            return b"0" + (v.split() or [b"000"])[0]
    return b"0200"
def do_http():
    import http.client, urllib.parse
    m, url, t, fbody, fhdr, ferr, has_data, data, n = (field() for _ in range(9))
    hdrs = [field() for _ in range(int(n))]
    body = data.encode("utf-8", "surrogateescape") if has_data == "1" else None
    m = m or ("POST" if body is not None else "GET")
    names = {h.split(":", 1)[0].strip().lower() for h in hdrs}
    u = urllib.parse.urlsplit(url)
    path = (u.path or "/") + ("?" + u.query if u.query else "")
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=float(t))
        c.putrequest(m, path, skip_host="host" in names, skip_accept_encoding=True)
    except Exception:
        return b"1"  # not sent: curl makes the request
    open(fbody, "wb").close()
    open(fhdr, "wb").close()
    try:
        if "user-agent" not in names: c.putheader("User-Agent", "np_curl")
        if "accept" not in names: c.putheader("Accept", "*/*")
        if body is not None and "content-type" not in names:
            c.putheader("Content-Type", "application/x-www-form-urlencoded")
        for h in hdrs:
            k, v = h.split(":", 1)
            c.putheader(k.strip(), v.strip())
        if body is not None and "content-length" not in names: c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        b = r.read()
        with open(fhdr, "wb") as fh:
            fh.write(("HTTP/%s %d %s\r\n" % ("1.0" if r.version == 10 else "1.1", r.status, r.reason)).encode("latin-1"))
            for k, v in r.getheaders():
                fh.write((k + ": " + v + "\r\n").encode("latin-1"))
            fh.write(b"\r\n")
        with open(fbody, "wb") as fh:
            fh.write(b)
        open(ferr, "wb").close()
        return b"0%d" % r.status
    except Exception as ex:
        with open(ferr, "w") as fh:
            fh.write("np_curl: %s: %s\n" % (type(ex).__name__, ex))
        return b"0000"
    finally:
        c.close()
while True:
    f = field()
    if f == "\x01bind":
        try:
            import socket
            with socket.socket() as so:
                so.bind(("127.0.0.1", int(field())))
            w.write(b"0\0")
        except Exception:
            w.write(b"1\0")
        w.flush()
        continue
    if f == "\x01fcgi":
        w.write(do_fcgi() + b"\0")
        w.flush()
        continue
    if f == "\x01http":
        w.write(do_http() + b"\0")
        w.flush()
        continue
    e = field()
    try:
        with open(f) as fh:
            d = json.load(fh)
        v = str(eval(e, {"json": json, "sys": sys, "d": d}))
        w.write(b"0" + v.encode("utf-8", "surrogateescape").replace(b"\0", b"") + b"\0")
    except BaseException:
        w.write(b"1\0")
    w.flush()'
# np__pyj_usable: the resident Python's pipes are the very ones of the test's shell ($$) here, not
# an fd of the same number reused in a subshell, and it runs
np__pyj_usable() {
	[ -n "${NP__PYJ_PID:-}" ] && [ "/dev/fd/${NP__PYJ[1]:-x}" -ef "/proc/$$/fd/${NP__PYJ[1]:-x}" ] &&
		[ "/dev/fd/${NP__PYJ[0]:-x}" -ef "/proc/$$/fd/${NP__PYJ[0]:-x}" ] && kill -0 "$NP__PYJ_PID" 2>/dev/null
}
np_json_get() {
	local out
	if np__pyj_usable; then
		printf '%s\0%s\0' "$1" "$2" >&"${NP__PYJ[1]}" && IFS= read -r -d '' -u "${NP__PYJ[0]}" out || return 1
		[ "${out:0:1}" = 0 ] || return 1
		printf '%s\n' "${out:1}"
		return 0
	fi
	"$NP_PYTHON" -c "$NP__PYJ_SRC" < <(printf '%s\0%s\0' "$1" "$2") | {
		IFS= read -r -d '' out && [ "${out:0:1}" = 0 ] && printf '%s\n' "${out:1}"
	}
}
if [ "$BASHPID" = "$$" ] && [ -z "${NP__PYJ_PID:-}" ]; then
	coproc NP__PYJ { exec "$NP_PYTHON" -c "$NP__PYJ_SRC" 2>/dev/null; }
fi

# np_other_version V: V with its last character made 9 (8 when it is 9): the version a patched
# copy of the daemon reports (np_patch_version).
np_other_version() { local v=$1; if [ "${v: -1}" = 9 ]; then echo "${v%?}8"; else echo "${v%?}9"; fi; }

# np_patch_version SRC DST FROM TO: DST is the program SRC with its version string FROM (between
# NULs) replaced by TO of the same length, executable: two builds that tell themselves apart
# (the upgrade tests). Fails the test when SRC holds no FROM.
np_patch_version() {
	"$NP_PYTHON" - "$@" <<'PY' || np_fail "np_patch_version: $3 not found in $1"
import sys
data = open(sys.argv[1], 'rb').read()
a, b = (b'\0' + v.encode() + b'\0' for v in sys.argv[3:5])
if len(a) != len(b) or data.count(a) < 1:
    sys.exit(1)
open(sys.argv[2], 'wb').write(data.replace(a, b))
PY
	chmod 0755 "$2"
}

# np_start_llm_mock [ARGS...]: tests/tools/llm_mock.py (the model stand-in) on a free port, with
# ARGS (--key KEY ...), stopped at teardown; sets mport, its port.
np_start_llm_mock() {
	"$NP_PYTHON" "$np_top/tests/tools/llm_mock.py" "$NP_TMP/mock.port" "$@" >"$NP_TMP/out/mock.out" 2>&1 &
	NP_FRONT_PIDS+=("$!")
	local i
	for ((i = 0; i < 50; i++)); do [ -s "$NP_TMP/mock.port" ] && break; sleep 0.1; done
	mport=$(<"$NP_TMP/mock.port") || np_fail "the model stand-in did not start"
}

# np_parallel N URL...: fetch every URL with up to N requests in flight (curl --parallel);
# prints one HTTP status per line into $NP_TMP/out/parallel.N.txt and sets NP_PAR_OK (200s)
# and NP_PAR_BAD (others).
np_parallel() {
	local n=$1; shift
	local out=$NP_TMP/out/parallel.$RANDOM.txt u
	local -a args=()
	for u in "$@"; do args+=(-o /dev/null "$u"); done
	curl -s --parallel --parallel-immediate --parallel-max "$n" --max-time 30 \
		-w '%{http_code}\n' "${args[@]}" >"$out" 2>&1
	NP_PAR_OK=$(grep -cx 200 "$out")
	NP_PAR_BAD=$(($# - NP_PAR_OK))
}

# ---------------------------------------------------------------------------------------------
# Front servers

# np__front_user: who the front server's workers run as when we are root.
NP_FRONT_USER=nobody
NP_FRONT_GROUP=$(id -gn nobody 2>/dev/null || echo nogroup)

# np_start_nginx UPSTREAM [PORT [NAME [CONTROL [ASK]]]]: nginx on 127.0.0.1:PORT (default: free) in front of
# UPSTREAM ("unix:/path.sock" or "127.0.0.1:PORT"), health routes to CONTROL (default UPSTREAM),
# asks (POST /api/v1/sessions/{id}/ask) to ASK (default UPSTREAM),
# serving through contrib/nginx/neonpool.conf,
# in $NP_TMP/NAME (default nginx). Sets NP_HTTP_PORT and NP_NGINX_PID; waits for the port.
# Its access log is $NP_TMP/NAME/access.log (the shipped log_format neonpool, rid=$request_id);
# the shipped limit_req lines are dropped unless NP_NGINX_LIMIT=1.
# The web page is served from $NP_WWW_ROOT (default: the source tree's www/).
# With NP_NETNS: in that network namespace, listening on NP_NGINX_ADDR (default 127.0.0.1).
np_start_nginx() {
	np_require nginx
	local upstream=$1 port=${2:-} dir=$NP_TMP/${3:-nginx} user="" control=${4:-$1} ask=${5:-$1}
	local addr=${NP_NGINX_ADDR:-127.0.0.1}
	local -a ns=()
	[ -n "${NP_NETNS:-}" ] && ns=(ip netns exec "$NP_NETNS")
	case $upstream in unix:* | [0-9]*:[0-9]*) ;; /*) upstream=unix:$upstream ;; esac
	case $control in unix:* | [0-9]*:[0-9]*) ;; /*) control=unix:$control ;; esac
	case $ask in unix:* | [0-9]*:[0-9]*) ;; /*) ask=unix:$ask ;; esac
	[ -n "$port" ] || port=$(np_free_port) || np_fail "no free port"
	mkdir -p "$dir"
	cp /etc/nginx/fastcgi_params "$dir/fastcgi_params" 2>/dev/null ||
		np_skip "nginx's fastcgi_params not found in /etc/nginx"
	# one sed (a process costs here): the addresses; the web page (www/: the source tree's, or
	# NP_WWW_ROOT); the content cache in the test's dir, off unless NP_NGINX_CACHE=1; the access log
	# in the test's dir; the per-address limits only when a test asks (NP_NGINX_LIMIT=1): the other
	# tests send bursts from one address on purpose
	local -a ed=(-e "s|127\.0\.0\.1:8080|$addr:$port|" -e "s|unix:/run/neonpool/neonpool\.sock|$upstream|"
		-e "s|unix:/run/neonpool/control\.sock|$control|" -e "s|unix:/run/neonpool/ask\.sock|$ask|"
		-e "s|/usr/share/neonpool/www|${NP_WWW_ROOT:-$np_top/www}|g" -e "s|/var/cache/neonpool/nginx|$dir/cache|"
		-e "s|/var/log/nginx/neonpool\.access\.log|$dir/access.log|")
	[ "${NP_NGINX_CACHE:-0}" = 1 ] || ed+=(-e "s|fastcgi_cache neonpool_content;|fastcgi_cache off;|")
	[ "${NP_NGINX_LIMIT:-0}" = 1 ] || ed+=(-e '/^ *limit_req zone=/d')
	sed "${ed[@]}" "$np_top/contrib/nginx/neonpool.conf" >"$dir/neonpool.conf"
	local conf=""
	IFS= read -r -d '' conf <"$dir/neonpool.conf"
	[[ $conf == *"listen $addr:$port;"* && $conf == *"server $upstream;"* ]] ||
		np_fail "contrib/nginx/neonpool.conf lost its literal listen/upstream lines"
	np_is_root && user="user $NP_FRONT_USER $NP_FRONT_GROUP;"
	sed -e "s|@PREFIX@|$dir|g" -e "s|^@USER@\$|$user|" -e "s|@SITE@|$dir/neonpool.conf|" \
		"$np_top/contrib/nginx/nginx-test.conf.in" >"$dir/nginx.conf"
	"${ns[@]}" nginx -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/nginx-t.log" 2>&1 ||
		np_fail "nginx -t: $(cat "$dir/nginx-t.log")"
	(exec setsid "${ns[@]}" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf") </dev/null >>"$dir/nginx.out.log" 2>&1 &
	NP_NGINX_PID=$!
	NP_FRONT_PIDS+=("$NP_NGINX_PID")
	NP_HTTP_PORT=$port
	np_wait_port "$port" 10 || np_fail "nginx did not listen on $port: $(tail -n 5 "$dir/error.log")"
	np_log "nginx pid $NP_NGINX_PID on $addr:$port${NP_NETNS:+ (netns $NP_NETNS)} -> $upstream"
}

# np_start_lighttpd UPSTREAM [PORT [NAME]]: lighttpd on 127.0.0.1:PORT in front of UPSTREAM (a
# unix socket path, "unix:/path" or "127.0.0.1:PORT"), serving through
# contrib/lighttpd/neonpool.conf, in $NP_TMP/NAME (default lighttpd). Sets NP_HTTP_PORT and
# NP_LIGHTTPD_PID.
np_start_lighttpd() {
	np_require lighttpd
	local upstream=${1#unix:} port=${2:-} dir=$NP_TMP/${3:-lighttpd} user="" target
	[ -n "$port" ] || port=$(np_free_port) || np_fail "no free port"
	mkdir -p "$dir/www" "$dir/uploads"
	case $upstream in
	/*) target="\"socket\" => \"$upstream\"" ;;
	*) target="\"host\" => \"${upstream%:*}\", \"port\" => ${upstream##*:}" ;;
	esac
	sed -e "s|\"socket\" => \"/run/neonpool/neonpool\.sock\"|$target|" \
		"$np_top/contrib/lighttpd/neonpool.conf" >"$dir/neonpool.conf"
	grep -qF "$target" "$dir/neonpool.conf" || np_fail "contrib/lighttpd/neonpool.conf lost its literal socket line"
	if np_is_root; then
		user="server.username = \"$NP_FRONT_USER\"
server.groupname = \"$NP_FRONT_GROUP\""
		# lighttpd opens its logs after dropping privileges.
		chown -R "$NP_FRONT_USER:$NP_FRONT_GROUP" "$dir"
	fi
	local u=${user//$'\n'/\\n}
	sed -e "s|@PREFIX@|$dir|g" -e "s|@PORT@|$port|" -e "s|^@USER@\$|$u|" -e "s|@SITE@|$dir/neonpool.conf|" \
		"$np_top/contrib/lighttpd/lighttpd-test.conf.in" >"$dir/lighttpd.conf"
	lighttpd -tt -f "$dir/lighttpd.conf" >"$dir/lighttpd-t.log" 2>&1 ||
		np_fail "lighttpd -tt: $(cat "$dir/lighttpd-t.log")"
	(exec setsid lighttpd -D -f "$dir/lighttpd.conf") </dev/null >>"$dir/lighttpd.out.log" 2>&1 &
	NP_LIGHTTPD_PID=$!
	NP_FRONT_PIDS+=("$NP_LIGHTTPD_PID")
	NP_HTTP_PORT=$port
	np_wait_port "$port" 10 || np_fail "lighttpd did not listen on $port: $(tail -n 5 "$dir/error.log")"
	np_log "lighttpd pid $NP_LIGHTTPD_PID on 127.0.0.1:$port -> $upstream"
}

# np_stop_front PID: stop a front server (fast) and wait for it.
np_stop_front() {
	kill -TERM "$1" 2>/dev/null
	np_wait_gone "$1" 5000 || kill -KILL "$1" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# Captured output

# np_capture NAME CMD...: run CMD with stdout+stderr into $NP_TMP/out/NAME.out (checked for
# secrets at teardown); sets NP_RC. Prints nothing.
np_capture() {
	local name=$1; shift
	"$@" >"$NP_TMP/out/$name.out" 2>&1
	NP_RC=$?
	return 0
}
