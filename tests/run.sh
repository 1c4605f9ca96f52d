#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# run.sh - the test command: dependencies, build, unit tests, integration tests, sanitizer build, valgrind, distcheck.
#
# Usage: tests/run.sh [--fast] [--long] [t_name...]
#   --fast    only steps 1-4 (deps, build, unit, fuzz, integration): the developer loop
#   --long    the kill tests' long forms: 50 kills (t_db_kill_reclaim, t_sessions_kill9, default 25),
#             t_kill_soak for 120 s (default 10), t_upgrade's long form (bench/upgrade.sh)
#   t_name    run only these integration tests (in every step that runs integration tests);
#             fuzz:NAME runs fuzz target NAME (with t_name arguments, only the fuzz targets named run)
# Works from a clean clone, as root (CI=true, no stdin) and as a normal user. Every test prints
# one line: "PASS name (Ns)", "FAIL name (Ns)" followed by its output, or "SKIP name: reason",
# in the order below whatever order they ran in; then the total time and the 10 slowest. The last
# line is "N passed, N failed" (", N skipped" when some were); exit 1 when one failed.
#
# Steps 1-3 run one after the other; the rest are jobs, NP_JOBS (3) at a time: a test holding a line
# "# np: serial" runs alone (these first), then those holding "# np: serial-beside-build" (alone
# among the tests, the first build beside them), then the tests holding "# np: long" (the longest start
# first, so that none ends the run alone; the sanitizer and valgrind integration tests with them, as
# soon as their build has passed), then the rest; the builds (the Debian package first,
# distcheck, which is the sanitizer build, the fuzz targets) run one at a time beside the other
# jobs, under nice 5.
#   1 scripts/install-deps.sh                    missing Debian packages (fails clearly without root)
#   2 ./autogen.sh, ./configure, make -j2         in-tree build: src/neonpoold, src/neonpoolctl
#   3 make check                                  each unit test binary / check script is one test
#   3b tests/fuzz/run.sh                          each libFuzzer target for NP_FUZZ_SECONDS (2), one test each
#   3c tools/openapi/lint.sh                      openapi-lint: @redocly/openapi-core lint of doc/openapi.yaml (skipped without npm)
#   4 tests/integration/t_*.sh                    one test each, 300 s timeout each; the tests holding
#                                                 "# np: shared-pg" get a database of their own in one
#                                                 PostgreSQL cluster (tests/integration/shared_pg.sh)
#   5a the Debian package (dpkg-buildpackage -b, nocheck) for t_deb_package, when root
#   5 sanitizers (ASan+UBSan): the unit tests' results of distcheck's build (7), then t_routes,
#     t_respawn, t_deployments and the database tests t_db_routes, t_db_terminate,
#     t_db_crash_midquery and t_db_replica against its neonpoold; any sanitizer report fails the test
#   6 valgrind: each unit test binary, then t_routes and t_db_routes with the daemon under valgrind
#   7 make distcheck, configured as the sanitizer build (its programs kept in build-asan/neonpool)
set -u -o pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top" || exit 1
exec </dev/null

FAST=0
ONLY=()
for a in "$@"; do
	case $a in
	--fast) FAST=1 ;;
	--long) export NP_KILLS=50 NP_KILL9_N=50 NP_SOAK_SECS=120 NP_UPGRADES=10 NP_UPGRADE_CONNS=200 NP_UPGRADE_LONG=1 ;;
	-h | --help) sed -n '3,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) ONLY+=("${a%.sh}") ;;
	esac
done

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/np-run.XXXXXX") || exit 1
chmod 0755 "$RUN_DIR"   # the shared PostgreSQL cluster lives under it and runs as `postgres` when we are root
LEDGER=$RUN_DIR/ledger  # one line per result, in the order printed: "pass|fail|skip SECONDS NAME"
RES=$LEDGER             # where result() records; a job records into a file of its own
: >"$LEDGER"
mkdir -p "$RUN_DIR/jobs"
T_START=$SECONDS
JOBS=${NP_JOBS:-3}
declare -A J_PIDS=()
# kill_tree PID: SIGTERM to PID and every descendant (a test's bash runs its teardown once its
# foreground child has gone too)
kill_tree() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do kill_tree "$c"; done
	kill -TERM "$1" 2>/dev/null
}
cleanup() {
	local p i
	for p in "${!J_PIDS[@]}"; do kill_tree "$p"; done
	[ -n "${NP_SAMPLER:-}" ] && kill "$NP_SAMPLER" 2>/dev/null
	# the tests' teardowns stop what they started
	for i in $(seq 1 100); do
		for p in "${!J_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && break; p=; done
		[ -z "${p:-}" ] && break
		sleep 0.2
	done
	[ -n "${SHARED_PG_DIR:-}" ] && tests/integration/shared_pg.sh stop "$SHARED_PG_DIR" >/dev/null 2>&1
	[ -n "${NP_CG:-}" ] && rmdir "$NP_CG/np-$$"/* "$NP_CG/np-$$" 2>/dev/null
	rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# result NAME STATUS SECONDS [REASON] [LOG]
result() {
	local name=$1 st=$2 secs=$3 reason=${4:-} log=${5:-}
	case $st in
	pass) echo "PASS $name (${secs}s)" ;;
	skip) echo "SKIP $name: ${reason:-no reason given}" ;;
	*)
		st=fail
		echo "FAIL $name (${secs}s)${reason:+: $reason}"
		if [ -n "$log" ] && [ -s "$log" ]; then
			# the failed checks first: the server logs dumped at teardown can be long
			grep -E '^(not ok|FAIL)' "$log" | head -n 20 | sed 's/^/  /'
			echo "---- output of $name (last 200 lines) ----"
			tail -n 200 "$log"
			echo "---- end of $name ----"
		fi
		;;
	esac
	printf '%s %s %s\n' "$st" "$secs" "$name" >>"$RES"
}

# step NAME CMD...: run CMD as one test, output to a log shown only on failure.
step() {
	local name=$1; shift
	local log=$RUN_DIR/${name//[:\/]/_}.log t0=$SECONDS rc
	"$@" >"$log" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then result "$name" pass $((SECONDS - t0)); else result "$name" fail $((SECONDS - t0)) "exit status $rc" "$log"; fi
	return $rc
}

summary() {
	local passed failed skipped
	passed=$(grep -c '^pass ' "$LEDGER") failed=$(grep -c '^fail ' "$LEDGER") skipped=$(grep -c '^skip ' "$LEDGER")
	echo
	echo "total time: $((SECONDS - T_START)) s"
	# NP_TIMELINE=FILE: each job's start and end (seconds from the start), CPU seconds (- when no cgroup), kind and name
	[ -n "${NP_TIMELINE:-}" ] && [ -f "$RUN_DIR/timeline" ] && sort -n "$RUN_DIR/timeline" >"$NP_TIMELINE"
	# the shared PostgreSQL's CPU (the postmaster and its reaped backends), not in any job's cgroup
	if [ -n "${NP_TIMELINE:-}" ] && [ -n "${SHARED_PG_DIR:-}" ] && [ -f "$SHARED_PG_DIR/env" ]; then
		local pm st
		pm=$(. "$SHARED_PG_DIR/env" && head -n 1 "$NP_SHARED_PG_DIR/data/postmaster.pid" 2>/dev/null)
		read -r -a st <"/proc/$pm/stat" 2>/dev/null &&
			printf '%4d %4d %4d %-6s %s\n' 0 $((SECONDS - T_START)) $(((st[13] + st[14] + st[15] + st[16]) / $(getconf CLK_TCK))) \
				shared shared-pg >>"$NP_TIMELINE"
	fi
	if [ -n "${NP_SAMPLER:-}" ]; then
		kill "$NP_SAMPLER" 2>/dev/null
		awk -v t0="$T_START" 'NR > 1 && $3 + $2 > pi + pb { printf "%d %.0f\n", $1 - t0, 100 * ($2 - pb) / ($2 - pb + $3 - pi) } { pb = $2; pi = $3 }' \
			"$RUN_DIR/cpu.samples" >"$NP_TIMELINE.cpu"
	fi
	if [ "$failed" -gt 0 ]; then echo "failed: $(awk '$1 == "fail" { printf "%s%s", s, $3; s = " " }' "$LEDGER")"; fi
	echo "slowest:"
	grep -v '^skip ' "$LEDGER" | sort -k2,2nr -k3,3 | head -n 10 | awk '{ printf "  %4d s  %s\n", $2, $3 }'
	if [ "$skipped" -gt 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
	[ "$failed" -eq 0 ]
	exit $?
}

# ---- jobs ---------------------------------------------------------------------------------
# job KIND PRIO AFTER NAME CMD...: queue CMD (a function of this script, run in a subshell) as one job.
#   KIND   par: up to JOBS at once; serial: alone (the tests whose assertions are ratios or counts
#          a concurrent test would disturb); serialb: alone among the tests, but a bg build may run
#          beside it (its counts have a wide margin; after every serial job); bg: a build, one at a
#          time beside the par jobs or a serialb job, under
#          nice 5 (the tests leave CPU idle while they wait; niced further, a build starved on a
#          machine loaded by others and ended on the critical path; as SCHED_IDLE beside the serial
#          tests it failed t_db_steady's ratio, 0.857, and saved no time)
#   PRIO   start order: 0 first (the serial tests, the first builds), then 1, 2 and 3 (the short jobs
#          last); the output keeps the queue order
#   AFTER  - or the NAME of a queued job that must pass first (when it fails, this one does not run)
# jobs_run runs the queue and prints each job's output in queue order as soon as it and every job
# queued before it are done.
declare -a J_KIND=() J_PRIO=() J_AFTER=() J_NAME=() J_CMD=() J_STATE=() J_T0=()
job() {
	J_KIND+=("$1"); J_PRIO+=("$2"); J_AFTER+=("$3"); J_NAME+=("$4"); shift 4
	J_CMD+=("$(printf '%q ' "$@")"); J_STATE+=(queued)
}


# jobs_ready I: 0 when job I's AFTER has passed (or it has none), 1 while it has not run yet, 2 when
# it failed or was skipped.
jobs_ready() {
	[ "${J_AFTER[$1]}" = - ] && return 0
	case ${J_STATE[${J_INDEX[${J_AFTER[$1]}]:-x}]:-failed} in
	ok) return 0 ;;
	failed | skipped) return 2 ;;
	esac
	return 1
}

# With NP_TIMELINE and a writable cgroup-v1 cpuacct hierarchy (root), each job runs in a cgroup of its
# own: the timeline gets the CPU seconds of everything the job started (daemonized servers included).
NP_CG=/sys/fs/cgroup/cpuacct
{ [ -n "${NP_TIMELINE:-}" ] && mkdir "$NP_CG/np-$$" 2>/dev/null; } || NP_CG=
# With NP_TIMELINE, the machine's busy share each second (from /proc/stat, read without a process
# of its own) goes to NP_TIMELINE.cpu: "SECOND BUSY%" lines, where the idle time of the run is.
if [ -n "${NP_TIMELINE:-}" ]; then
	export NP_PGSTAT_LOG=$NP_TIMELINE.pgstat   # lib.sh: what each test cost the shared PostgreSQL
	: >"$NP_PGSTAT_LOG"
	(
		enable -f /usr/lib/bash/sleep sleep 2>/dev/null
		while :; do read -r _ u n s i w q sq st _ </proc/stat && echo "$SECONDS $((u + n + s + q + sq + st)) $((i + w))"; sleep 1; done
	) >"$RUN_DIR/cpu.samples" 2>/dev/null &
	NP_SAMPLER=$!
fi
jobs_cpu() {
	local ns
	[ -n "$NP_CG" ] && ns=$(cat "$NP_CG/np-$$/$1/cpuacct.usage" 2>/dev/null) && echo $((ns / 1000000000)) && return
	echo -
}
jobs_start() {
	local i=$1 out=$RUN_DIR/jobs/$1
	[ -n "$NP_CG" ] && mkdir -p "$NP_CG/np-$$/$i"
	if [ "${J_KIND[i]}" = bg ]; then
		( [ -n "$NP_CG" ] && echo $BASHPID >"$NP_CG/np-$$/$i/cgroup.procs"
		RES=$out.res; : >"$RES"; renice -n 5 -p $BASHPID >/dev/null 2>&1; eval "${J_CMD[i]}" ) >"$out.out" 2>&1 &
	else
		( [ -n "$NP_CG" ] && echo $BASHPID >"$NP_CG/np-$$/$i/cgroup.procs"
		RES=$out.res; : >"$RES"; eval "${J_CMD[i]}" ) >"$out.out" 2>&1 &
	fi
	J_PIDS[$!]=$i
	[ -n "${NP_TIMELINE:-}" ] && echo "$! ${J_NAME[i]}" >>"$NP_TIMELINE.pids"   # for a process tree (perf)
	J_STATE[i]=running
	J_T0[i]=$SECONDS
}

jobs_run() {
	local n=${#J_NAME[@]} printed=0 par=0 bg=0 serial=0 i p pid rc sw
	local -a order=()
	declare -gA J_INDEX=()
	for ((i = 0; i < n; i++)); do J_INDEX[${J_NAME[i]}]=$i; done
	for p in 0 1 2 3; do
		for ((i = 0; i < n; i++)); do [ "${J_PRIO[i]}" = "$p" ] && order+=("$i"); done
	done
	while [ $printed -lt "$n" ]; do
		# a serial job ready to run: no par job starts (the par jobs drain for it); sws: one that
		# runs without a build beside it (serial), which goes before those that may (serialb)
		sw=0 sws=0
		for i in "${order[@]}"; do
			case ${J_KIND[i]} in serial | serialb) ;; *) continue ;; esac
			[ "${J_STATE[i]}" = queued ] && jobs_ready "$i" || continue
			sw=1
			[ "${J_KIND[i]}" = serial ] && { sws=1; break; }
		done
		for i in "${order[@]}"; do
			[ "${J_STATE[i]}" = queued ] || continue
			jobs_ready "$i"
			case $? in
			1) continue ;;
			2) J_STATE[i]=skipped; : >"$RUN_DIR/jobs/$i.out"; : >"$RUN_DIR/jobs/$i.res"; continue ;;
			esac
			case ${J_KIND[i]} in
			bg) [ $serial != 1 ] && [ $sws = 0 ] && [ $bg -lt 1 ] || continue; bg=$((bg + 1)) ;;
			serial) [ $serial = 0 ] && [ $par -eq 0 ] && [ $bg -eq 0 ] || continue; serial=1 ;;
			serialb) [ $serial = 0 ] && [ $sws = 0 ] && [ $par -eq 0 ] || continue; serial=2 ;;
			*) [ $serial = 0 ] && [ $sw = 0 ] && [ $par -lt "$JOBS" ] || continue; par=$((par + 1)) ;;
			esac
			jobs_start "$i"
		done
		while [ $printed -lt "$n" ]; do
			case ${J_STATE[printed]} in queued | running) break ;; esac
			cat "$RUN_DIR/jobs/$printed.out"
			cat "$RUN_DIR/jobs/$printed.res" >>"$LEDGER"
			printed=$((printed + 1))
		done
		[ $printed -lt "$n" ] || break
		[ ${#J_PIDS[@]} -gt 0 ] || { echo "run.sh: no job can run (a job waits for one that is not queued)"; break; }
		wait -n -p pid "${!J_PIDS[@]}"
		rc=$?
		i=${J_PIDS[$pid]}
		unset "J_PIDS[$pid]"
		case ${J_KIND[i]} in serial | serialb) serial=0 ;; bg) bg=$((bg - 1)) ;; *) par=$((par - 1)) ;; esac
		if [ $rc -eq 0 ]; then J_STATE[i]=ok; else J_STATE[i]=failed; fi
		printf '%4d %4d %4s %-6s %s\n' $((J_T0[i] - T_START)) $((SECONDS - T_START)) "$(jobs_cpu "$i")" "${J_KIND[i]}" "${J_NAME[i]}" >>"$RUN_DIR/timeline"
	done
	J_KIND=() J_PRIO=() J_AFTER=() J_NAME=() J_CMD=() J_STATE=()
}

# unit_results PREFIX DIR STAMP: one test per automake .trs written after STAMP under DIR.
unit_results() {
	local prefix=$1 dir=$2 stamp=$3 trs name res n=0
	while IFS= read -r trs; do
		n=$((n + 1))
		name=${trs#"$dir"/}; name=${name%.trs}
		res=$(sed -n 's/^:test-result: *//p' "$trs" | sort -u | tr '\n' ' ')
		case $res in
		*FAIL* | *ERROR* | *XPASS*) result "$prefix$name" fail 0 "$res" "${trs%.trs}.log" ;;
		"SKIP ") result "$prefix$name" skip 0 "$(tail -n 1 "${trs%.trs}.log")" ;;
		"") result "$prefix$name" fail 0 "no result" "${trs%.trs}.log" ;;
		*) result "$prefix$name" pass 0 ;;
		esac
	done < <(find "$dir/tests" -name '*.trs' -newer "$stamp" | sort)
	[ $n -gt 0 ]
}

# unit_check PREFIX DIR: `make check` in DIR, each .trs one test.
unit_check() {
	local prefix=$1 dir=$2 log=$RUN_DIR/${1//[:\/]/_}make-check.log rc
	local stamp=$RUN_DIR/stamp.${1//[:\/]/_}$RANDOM
	touch -d "@$((EPOCHSECONDS - 1))" "$stamp"   # .trs newer than the stamp, even on coarse timestamps
	(cd "$dir" && make -j$JOBS check) >"$log" 2>&1
	rc=$?
	if ! unit_results "$prefix" "$dir" "$stamp"; then
		result "${prefix}make-check" fail 0 "no unit test ran (exit status $rc)" "$log"
	elif [ $rc -ne 0 ] && ! grep -q '^# FAIL: *[1-9]\|^# ERROR: *[1-9]' "$log"; then
		result "${prefix}make-check" fail 0 "make check failed (exit status $rc)" "$log"
	fi
}

# selected NAME: the test is one of the t_name arguments (or there were none).
selected() { [ ${#ONLY[@]} -eq 0 ] || [[ " ${ONLY[*]} " == *" $1 "* ]]; }

# itest PREFIX ENVS TEST: run one integration test (300 s timeout) with the extra environment ENVS
# (NAME=VALUE words separated by newlines); returns 1 when it failed.
itest() {
	local prefix=$1 envs=$2 t=$3 name log t0 rc reason
	local -a env=()
	[ -n "$envs" ] && mapfile -t env <<<"$envs"
	name=$(basename "$t" .sh)
	log=$RUN_DIR/${prefix//[:\/]/_}$name.log
	t0=$SECONDS
	env "${env[@]}" timeout -k 10 300 bash "$t" >"$log" 2>&1
	rc=$?
	case $rc in
	0)
		result "$prefix$name" pass $((SECONDS - t0))
		sed -n 's/^RESULT /  result: /p' "$log"
		;;
	77)
		reason=$(sed -n 's/^SKIP: *//p' "$log" | head -n 1)
		result "$prefix$name" skip $((SECONDS - t0)) "$reason"
		;;
	124 | 137) result "$prefix$name" fail $((SECONDS - t0)) "timed out after 300 s" "$log"; return 1 ;;
	*) result "$prefix$name" fail $((SECONDS - t0)) "exit status $rc" "$log"; return 1 ;;
	esac
	return 0
}

# integration PREFIX [ENV=VALUE...] -- TEST...: queue integration tests with extra environment; a test
# holding a line "# np: serial" runs alone (with --fast or an asan:/valgrind: prefix too).
integration() {
	local prefix=$1; shift
	local envs="" t name
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+="$1"$'\n'; shift; done
	shift
	envs=${envs%$'\n'}
	for t in "$@"; do
		name=$(basename "$t" .sh)
		selected "$name" || continue
		if grep -q '^# np: serial-beside-build' "$t"; then
			job serialb 0 "${AFTER:--}" "$prefix$name" itest "$prefix" "$envs" "$t"
		elif grep -q '^# np: serial' "$t"; then
			job serial 0 "${AFTER:--}" "$prefix$name" itest "$prefix" "$envs" "$t"
		elif [ -z "$prefix" ] && grep -q '^# np: long' "$t"; then
			job par 0 "${AFTER:--}" "$prefix$name" itest "$prefix" "$envs" "$t"
		else
			job par "${PRIO:-1}" "${AFTER:--}" "$prefix$name" itest "$prefix" "$envs" "$t"
		fi
	done
}

echo "neonpool test suite: $(uname -srm), user $(id -un), CI=${CI:-}"

# ---- 1. dependencies ----------------------------------------------------------------------
if ! step install-deps scripts/install-deps.sh; then
	echo "cannot go on without the packages (see above)"
	summary
fi

# fuzz_names: the fuzz targets this run selects (tests/fuzz/fuzz_NAME.c; with t_name arguments, the
# fuzz:NAME among them)
fuzz_names() {
	local f n
	for f in tests/fuzz/fuzz_*.c; do
		[ -e "$f" ] || continue
		n=${f##*/fuzz_}; n=${n%.c}
		if [ ${#ONLY[@]} -gt 0 ] && [[ " ${ONLY[*]} " != *" fuzz:$n "* ]]; then continue; fi
		printf '%s ' "$n"
	done
}

# ---- 2. build -----------------------------------------------------------------------------
# The fuzz targets' build (3b) needs clang and the sources only: it runs beside this step, at nice 5,
# on the CPU that autogen and configure (one process each) leave idle; the fuzz-build job reports it.
# The toolchain is probed once, here (after step 1 installed it); fuzz_targets reports the outcome.
FUZZ_EARLY= FUZZ_PROBE_RC=
[ -n "$(fuzz_names)" ] && { tests/fuzz/run.sh --probe >"$RUN_DIR/fuzz-probe.log" 2>&1; FUZZ_PROBE_RC=$?; }
if [ "$FUZZ_PROBE_RC" = 0 ]; then
	(renice -n 5 -p $BASHPID >/dev/null 2>&1; tests/fuzz/run.sh --build >"$RUN_DIR/fuzz-build.log" 2>&1
		echo $? >"$RUN_DIR/fuzz-build.rc") &
	FUZZ_EARLY=$!
fi
build() {
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
		./autogen.sh || return 1
	fi
	if [ ! -f Makefile ] || [ ! -f config.status ] || [ configure -nt config.status ]; then
		./configure --enable-werror || return 1
	fi
	make -j$JOBS
}
if ! step build build; then
	echo "the build failed: nothing else can run"
	summary
fi

# One initdb for every private cluster (lib.sh np_start_pg copies it): the same options as there
pg_initdb_cache() {
	local bin=${PGBIN:-/usr/lib/postgresql/15/bin} d=$RUN_DIR/pginit
	[ -x "$bin/initdb" ] || return 1
	mkdir -p "$d" && chmod 0755 "$d" || return 1
	if [ "$(id -u)" = 0 ]; then
		chown postgres: "$d" && (cd "$d" && runuser -u postgres -- "$bin/initdb" -N -D "$d/data" -U postgres -E UTF8 \
			--locale=C --auth-local=peer --auth-host=scram-sha-256) >"$RUN_DIR/pginit.log" 2>&1
	else
		"$bin/initdb" -N -D "$d/data" -U postgres -E UTF8 --locale=C --auth-local=peer \
			--auth-host=scram-sha-256 >"$RUN_DIR/pginit.log" 2>&1
	fi
}
# pg_setup: the initdb cache, then the shared cluster (migrated and seeded with the programs of
# step 2). It runs beside step 3 (the unit tests leave a core idle at times): 7 s of wall that the
# integration tests waited for. The shared cluster is stopped in cleanup, whoever started it.
pg_setup() {
	pg_initdb_cache && export NP_PG_INITDB_CACHE=$RUN_DIR/pginit
	tests/integration/shared_pg.sh start "$RUN_DIR/pg" >"$RUN_DIR/shared-pg.log" 2>&1
	echo $? >"$RUN_DIR/shared-pg.rc"
}
SHARED_PG_DIR=$RUN_DIR/pg   # for cleanup, should the run end before step 4
pg_setup </dev/null &
PG_SETUP_PID=$!

# ---- 3. unit tests ------------------------------------------------------------------------
unit_check "" "$top"
if [ -n "${NP_TIMELINE:-}" ]; then   # steps 1-3 in the timeline: what this shell's children used
	read -r -a st </proc/$$/stat
	printf '%4d %4d %4d %-6s %s\n' 0 $((SECONDS - T_START)) $(((st[15] + st[16]) / $(getconf CLK_TCK))) step steps-1-3 >>"$RUN_DIR/timeline"
fi

# ---- 3b. fuzz targets ---------------------------------------------------------------------
# A short run of each libFuzzer target (tests/fuzz/fuzz_NAME.c, one test "fuzz:NAME" each, NP_FUZZ_SECONDS,
# default 5) after one build, two at a time; skipped with the reason when clang or its libFuzzer runtime
# is missing. With t_name arguments, only the targets named there (fuzz:NAME) run.
fuzz_one() {
	local n=$1 log=$RUN_DIR/fuzz_$1.log t0=$SECONDS
	if tests/fuzz/run.sh --no-build "${NP_FUZZ_SECONDS:-2}" "$n" >"$log" 2>&1; then
		result "fuzz:$n" pass $((SECONDS - t0))
		sed -n "s/^fuzz_$n: /  result: /p" "$log"
	else
		result "fuzz:$n" fail $((SECONDS - t0)) "$(sed -n "s/^fuzz_$n: //p" "$log")" "$log"
		return 1
	fi
}
# fuzz_build_result: the outcome of the build started beside step 2 (its log is the job's output)
fuzz_build_result() {
	cat "$RUN_DIR/fuzz-build.log"
	return "$(cat "$RUN_DIR/fuzz-build.rc" 2>/dev/null || echo 1)"
}
fuzz_targets() {
	local probe rc n
	local -a names=()
	read -r -a names <<<"$(fuzz_names)"
	[ ${#names[@]} -gt 0 ] || return 0
	probe=$(cat "$RUN_DIR/fuzz-probe.log") rc=$FUZZ_PROBE_RC
	if [ $rc -eq 77 ]; then
		result fuzz skip 0 "${probe#run.sh: }"
		return 0
	elif [ $rc -ne 0 ]; then
		result fuzz-build fail 0 "$probe"
		return 1
	fi
	wait "$FUZZ_EARLY"   # started beside step 2
	job bg 1 - fuzz-build step fuzz-build fuzz_build_result
	for n in "${names[@]}"; do
		job par 1 fuzz-build "fuzz:$n" fuzz_one "$n"
	done
}
fuzz_targets

# ---- 3c. OpenAPI lint (a pinned @redocly/openapi-core from npm; tools/openapi/lint.sh) -------------------
openapi_lint() {
	local log=$RUN_DIR/openapi-lint.log t0=$SECONDS rc
	tools/openapi/lint.sh >"$log" 2>&1
	rc=$?
	case $rc in
	0) result openapi-lint pass $((SECONDS - t0)) ;;
	77) result openapi-lint skip $((SECONDS - t0)) "$(sed -n '1s/^openapi-lint: //p' "$log")" ;;
	*) result openapi-lint fail $((SECONDS - t0)) "exit status $rc" "$log"; return 1 ;;
	esac
	return 0
}
# it installs the pinned tools t_openapi_contract uses: that test waits for it
job par 1 - openapi-lint openapi_lint

# ---- 4. integration tests -----------------------------------------------------------------
# One PostgreSQL cluster for the tests that hold a line "# np: shared-pg" (each gets a database of its
# own, copied from a migrated and seeded template: tests/integration/shared_pg.sh); every other test
# starts a private one.
# The clusters (pg_setup, beside step 3): wait for them
wait "$PG_SETUP_PID"
[ -f "$RUN_DIR/pginit/data/PG_VERSION" ] && export NP_PG_INITDB_CACHE=$RUN_DIR/pginit
SHARED_PG_DIR=$RUN_DIR/pg
if [ "$(cat "$RUN_DIR/shared-pg.rc" 2>/dev/null)" = 0 ]; then
	export NP_SHARED_PG=$SHARED_PG_DIR/env
else
	echo "note: no shared PostgreSQL cluster (each test starts its own): $(tail -n 1 "$RUN_DIR/shared-pg.log")"
	SHARED_PG_DIR=
fi
TESTS=(tests/integration/t_*.sh)
integration "" -- "${TESTS[@]}"
for i in "${!J_NAME[@]}"; do
	[ "${J_NAME[i]}" = t_openapi_contract ] && J_AFTER[i]=openapi-lint
done

if [ "$FAST" = 1 ]; then
	jobs_run
	summary
fi

# ---- 5a. the Debian package, built beside the tests (a bg job, the first: the longest build, and a
# test waits for it); t_deb_package checks and installs it
# (run alone, the test builds one itself: NP_DEB unset)
deb_build() (
	local dst=$RUN_DIR/deb/neonpool
	rm -rf "$RUN_DIR/deb"
	NP_NO_AUTOGEN=1 tree_copy "$dst" || return 1   # dh_autoreconf runs ./autogen.sh
	cd "$dst" && DEB_BUILD_OPTIONS="nocheck parallel=$JOBS" DEB_BUILD_PROFILES=nocheck dpkg-buildpackage -us -uc -b
)
if [ "$(id -u)" = 0 ] && command -v dpkg-buildpackage >/dev/null && selected t_deb_package; then
	job bg 0 - deb-build step deb-build deb_build
	for i in "${!J_NAME[@]}"; do
		[ "${J_NAME[i]}" = t_deb_package ] || continue
		J_AFTER[i]=deb-build
		J_CMD[i]=$(printf '%q ' itest "" "NP_DEB=$RUN_DIR/deb/neonpool_$(sed -n '1s/^neonpool (\([^)]*\)).*/\1/p' debian/changelog)_$(dpkg --print-architecture).deb" tests/integration/t_deb_package.sh)
	done
fi

# ---- 5. sanitizers ------------------------------------------------------------------------
SAN_TESTS=(tests/integration/t_routes.sh tests/integration/t_respawn.sh tests/integration/t_deployments.sh
	tests/integration/t_db_routes.sh tests/integration/t_db_terminate.sh tests/integration/t_db_crash_midquery.sh
	tests/integration/t_db_replica.sh)
# tree_copy DST: the sources into DST for a build of its own, the package's (git's tracked and new
# files, then ./autogen.sh unless NP_NO_AUTOGEN is set; or `make distdir` outside git): the source
# tree is configured in place, and automake refuses a VPATH build beside an in-place one.
tree_copy() {
	mkdir -p "$1"
	if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$top" ls-files -z -co --exclude-standard | (cd "$top" && tar --null -T - -cf -) | tar -xf - -C "$1" || return 1
		[ -n "${NP_NO_AUTOGEN:-}" ] || (cd "$1" && ./autogen.sh) || return 1
	else
		make distdir distdir="$1" top_distdir="$1" || return 1
	fi
}
ASAN_ENV=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
asan_env() { env "${ASAN_ENV[@]}" "$@"; }
# distcheck's build is the sanitizer build (7): the programs and the unit tests' results it kept
distcheck_asan() (
	rm -rf build-asan && mkdir -p build-asan/neonpool && touch build-asan/stamp || return 1
	asan_env NP_KEEP_BUILD="$top/build-asan/neonpool" \
		make -j$JOBS distcheck DISTCHECK_CONFIGURE_FLAGS="--enable-sanitizers CFLAGS='-O1 -g1'" NP_SOURCE_CHECKS=
)
asan_unit_results() {
	unit_results "asan:" "$top/build-asan/neonpool" "$top/build-asan/stamp" ||
		result "asan:make-check" fail 0 "distcheck kept no unit test result in build-asan/neonpool/tests"
}
job par 2 distcheck asan:make-check asan_unit_results
# PRIO 0: as soon as distcheck has passed, before the short tests still queued (at PRIO 2 they
# waited for every other test, and asan:t_db_terminate, 20 s of load, ran alone at the end). Its
# load lasts 10 s here (NP_WRK_SECONDS: 4 rounds of terminations, not 9): the same paths under ASan,
# 9 CPU s less
PRIO=0 AFTER=distcheck integration "asan:" NEONPOOLD="$top/build-asan/neonpool/src/neonpoold" \
	NEONPOOLCTL="$top/build-asan/neonpool/src/neonpoolctl" NP_TIMEOUT_SCALE=3 NP_WRK_SECONDS=10 \
	"${ASAN_ENV[@]}" -- "${SAN_TESTS[@]}"

# ---- 6. valgrind --------------------------------------------------------------------------
for bin in tests/unit/test_*; do
	[ -x "$bin" ] && [ -f "$bin" ] || continue
	case $bin in *.*) continue ;; esac
	job par 3 - "valgrind:$(basename "$bin")" step "valgrind:$(basename "$bin")" env NP_VALGRIND=1 valgrind -q --leak-check=full \
		--errors-for-leak-kinds=definite,possible --error-exitcode=1 "$bin"
done
PRIO=0 integration "valgrind:" NP_TIMEOUT_SCALE=10 \
	"NP_DAEMON_WRAPPER=valgrind --trace-children=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible --log-file=@TMP@/vg.%p" \
	-- tests/integration/t_routes.sh tests/integration/t_db_routes.sh

# ---- 7. distcheck, which is also the sanitizer build (5) ------------------------------------
# `make distcheck` builds the release tarball in a VPATH directory of its own, runs its unit tests,
# installs and uninstalls it. Configured with --enable-sanitizers (-O1 -g), that build is the
# sanitizer build: its make check runs the unit tests under ASan+UBSan, and its installcheck
# (Makefile.am, NP_KEEP_BUILD) keeps the two programs and the unit tests' results in
# build-asan/neonpool for step 5. One build where there were two (distcheck at -O0 and a
# sanitizer build of a copy of the tree took 64 + 45 + 30 s of CPU). A bg job, started before the
# fuzz targets' build: the sanitizer tests wait for it.
job bg 0 - distcheck step distcheck distcheck_asan

jobs_run
summary
