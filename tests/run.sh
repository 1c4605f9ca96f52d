#!/usr/bin/env bash
# run.sh - the test command: dependencies, build, unit tests, integration tests, sanitizer build, valgrind, distcheck.
#
# Usage: tests/run.sh [--fast] [t_name...]
#   --fast    only steps 1-4 (deps, build, unit, fuzz, integration): the developer loop
#   t_name    run only these integration tests (in every step that runs integration tests);
#             fuzz:NAME runs fuzz target NAME (with t_name arguments, only the fuzz targets named run)
# Works from a clean clone, as root (CI=true, no stdin) and as a normal user. Every test prints
# one line: "PASS name (Ns)", "FAIL name (Ns)" followed by its output, or "SKIP name: reason".
# The last line is "N passed, N failed" (", N skipped" when some were); exit 1 when one failed.
#
# Steps
#   1 scripts/install-deps.sh                    missing Debian packages (fails clearly without root)
#   2 ./autogen.sh, ./configure, make -j2         in-tree build: src/neonpoold, src/neonpoolctl
#   3 make check                                  each unit test binary / check script is one test
#   3b tests/fuzz/run.sh                          each libFuzzer target for NP_FUZZ_SECONDS (10), one test each
#   3c tools/openapi/lint.sh                      openapi-lint: @redocly/cli lint doc/openapi.yaml (skipped without npm)
#   4 tests/integration/t_*.sh                    one test each, 300 s timeout each
#   5 sanitizer build (ASan+UBSan) in build-asan/ from a copy of the sources (an in-tree-configured
#     source dir cannot host a VPATH build): its unit tests, then t_routes, t_respawn,
#     t_deployments and the database tests t_db_routes, t_db_terminate, t_db_crash_midquery and
#     t_db_replica against its neonpoold; any sanitizer report fails the test
#   6 valgrind: each unit test binary, then t_routes and t_db_routes with the daemon under valgrind
#   7 make distcheck
set -u -o pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top" || exit 1
exec </dev/null

FAST=0
ONLY=()
for a in "$@"; do
	case $a in
	--fast) FAST=1 ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) ONLY+=("${a%.sh}") ;;
	esac
done

PASSED=0 FAILED=0 SKIPPED=0
FAILED_NAMES=()
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/np-run.XXXXXX") || exit 1
trap 'rm -rf "$RUN_DIR"' EXIT
T_START=$SECONDS
JOBS=2

# result NAME STATUS SECONDS [REASON] [LOG]
result() {
	local name=$1 st=$2 secs=$3 reason=${4:-} log=${5:-}
	case $st in
	pass) PASSED=$((PASSED + 1)); echo "PASS $name (${secs}s)" ;;
	skip) SKIPPED=$((SKIPPED + 1)); echo "SKIP $name: ${reason:-no reason given}" ;;
	*)
		FAILED=$((FAILED + 1)); FAILED_NAMES+=("$name")
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
}

# step NAME CMD...: run CMD as one test, output to a log shown only on failure.
step() {
	local name=$1; shift
	local log=$RUN_DIR/$name.log t0=$SECONDS rc
	"$@" >"$log" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then result "$name" pass $((SECONDS - t0)); else result "$name" fail $((SECONDS - t0)) "exit status $rc" "$log"; fi
	return $rc
}

summary() {
	echo
	echo "total time: $((SECONDS - T_START)) s"
	[ ${#FAILED_NAMES[@]} -gt 0 ] && echo "failed: ${FAILED_NAMES[*]}"
	if [ "$SKIPPED" -gt 0 ]; then
		echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
	else
		echo "$PASSED passed, $FAILED failed"
	fi
	[ "$FAILED" -eq 0 ]
	exit $?
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
	local stamp=$RUN_DIR/stamp.$RANDOM
	touch "$stamp"; sleep 1   # .trs newer than the stamp, even on coarse timestamps
	(cd "$dir" && make -j$JOBS check) >"$log" 2>&1
	rc=$?
	if ! unit_results "$prefix" "$dir" "$stamp"; then
		result "${prefix}make-check" fail 0 "no unit test ran (exit status $rc)" "$log"
	elif [ $rc -ne 0 ] && ! grep -q '^# FAIL: *[1-9]\|^# ERROR: *[1-9]' "$log"; then
		result "${prefix}make-check" fail 0 "make check failed (exit status $rc)" "$log"
	fi
}

# integration PREFIX [ENV=VALUE...] -- TEST...: run integration tests with extra environment.
integration() {
	local prefix=$1; shift
	local -a envs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	local t name log t0 rc reason
	for t in "$@"; do
		name=$(basename "$t" .sh)
		if [ ${#ONLY[@]} -gt 0 ] && [[ " ${ONLY[*]} " != *" $name "* ]]; then continue; fi
		log=$RUN_DIR/$prefix$name.log
		t0=$SECONDS
		env "${envs[@]}" timeout -k 10 300 bash "$t" >"$log" 2>&1
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
		124 | 137) result "$prefix$name" fail $((SECONDS - t0)) "timed out after 300 s" "$log" ;;
		*) result "$prefix$name" fail $((SECONDS - t0)) "exit status $rc" "$log" ;;
		esac
	done
}

echo "neonpool test suite: $(uname -srm), user $(id -un), CI=${CI:-}"

# ---- 1. dependencies ----------------------------------------------------------------------
if ! step install-deps scripts/install-deps.sh; then
	echo "cannot go on without the packages (see above)"
	summary
fi

# ---- 2. build -----------------------------------------------------------------------------
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

# ---- 3. unit tests ------------------------------------------------------------------------
unit_check "" "$top"

# ---- 3b. fuzz targets ---------------------------------------------------------------------
# A short run of each libFuzzer target (tests/fuzz/fuzz_NAME.c, one test "fuzz:NAME" each, NP_FUZZ_SECONDS,
# default 10) after one build; skipped with the reason when clang or its libFuzzer runtime is missing.
# With t_name arguments, only the targets named there (fuzz:NAME) run.
fuzz_targets() {
	local probe rc f n t0 log
	local -a names=()
	for f in tests/fuzz/fuzz_*.c; do
		[ -e "$f" ] || continue
		n=$(basename "$f" .c); n=${n#fuzz_}
		if [ ${#ONLY[@]} -gt 0 ] && [[ " ${ONLY[*]} " != *" fuzz:$n "* ]]; then continue; fi
		names+=("$n")
	done
	[ ${#names[@]} -gt 0 ] || return 0
	probe=$(tests/fuzz/run.sh --probe 2>&1)
	rc=$?
	if [ $rc -eq 77 ]; then
		result fuzz skip 0 "${probe#run.sh: }"
		return 0
	elif [ $rc -ne 0 ]; then
		result fuzz-build fail 0 "$probe"
		return 1
	fi
	step fuzz-build tests/fuzz/run.sh --build || return 1
	for n in "${names[@]}"; do
		log=$RUN_DIR/fuzz_$n.log t0=$SECONDS
		if tests/fuzz/run.sh "${NP_FUZZ_SECONDS:-10}" "$n" >"$log" 2>&1; then
			result "fuzz:$n" pass $((SECONDS - t0))
			sed -n "s/^fuzz_$n: /  result: /p" "$log"
		else
			result "fuzz:$n" fail $((SECONDS - t0)) "$(sed -n "s/^fuzz_$n: //p" "$log")" "$log"
		fi
	done
}
fuzz_targets

# ---- 3c. OpenAPI lint (a pinned @redocly/cli from npm; tools/openapi/lint.sh) -------------------
openapi_lint() {
	local log=$RUN_DIR/openapi-lint.log t0=$SECONDS rc
	tools/openapi/lint.sh >"$log" 2>&1
	rc=$?
	case $rc in
	0) result openapi-lint pass $((SECONDS - t0)) ;;
	77) result openapi-lint skip $((SECONDS - t0)) "$(sed -n '1s/^openapi-lint: //p' "$log")" ;;
	*) result openapi-lint fail $((SECONDS - t0)) "exit status $rc" "$log" ;;
	esac
}
openapi_lint

# ---- 4. integration tests -----------------------------------------------------------------
TESTS=(tests/integration/t_*.sh)
integration "" -- "${TESTS[@]}"

[ "$FAST" = 1 ] && summary

# ---- 5. sanitizers ------------------------------------------------------------------------
SAN_TESTS=(tests/integration/t_routes.sh tests/integration/t_respawn.sh tests/integration/t_deployments.sh
	tests/integration/t_db_routes.sh tests/integration/t_db_terminate.sh tests/integration/t_db_crash_midquery.sh
	tests/integration/t_db_replica.sh)
# The source tree is configured in place, and automake refuses a VPATH build beside an
# in-place one: build a copy of the sources (git's file list, or `make distdir` outside git).
asan_build() (
	local dst=$top/build-asan/neonpool
	rm -rf build-asan
	mkdir -p "$dst"
	if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$top" ls-files -z -co --exclude-standard | (cd "$top" && tar --null -T - -cf -) | tar -xf - -C "$dst" || return 1
		(cd "$dst" && ./autogen.sh) || return 1
	else
		make distdir distdir="$dst" top_distdir="$dst" || return 1
	fi
	cd "$dst" || return 1
	./configure --enable-werror --enable-sanitizers CFLAGS="-O1 -g" || return 1
	make -j$JOBS
)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if step asan-build asan_build; then
	unit_check "asan:" "$top/build-asan/neonpool"
	integration "asan:" NEONPOOLD="$top/build-asan/neonpool/src/neonpoold" \
		NEONPOOLCTL="$top/build-asan/neonpool/src/neonpoolctl" NP_TIMEOUT_SCALE=3 -- "${SAN_TESTS[@]}"
fi
unset ASAN_OPTIONS UBSAN_OPTIONS

# ---- 6. valgrind --------------------------------------------------------------------------
for bin in tests/unit/test_*; do
	[ -x "$bin" ] && [ -f "$bin" ] || continue
	case $bin in *.*) continue ;; esac
	step "valgrind:$(basename "$bin")" valgrind -q --leak-check=full --errors-for-leak-kinds=definite,possible \
		--error-exitcode=1 "$bin"
done
integration "valgrind:" NP_TIMEOUT_SCALE=10 \
	NP_DAEMON_WRAPPER="valgrind --trace-children=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible --log-file=@TMP@/vg.%p" \
	-- tests/integration/t_routes.sh tests/integration/t_db_routes.sh

# ---- 7. distcheck -------------------------------------------------------------------------
step distcheck make -j$JOBS distcheck

summary
