#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# run.sh - build every libFuzzer target tests/fuzz/fuzz_*.c with clang (ASan+UBSan) and run each on a copy of its seeds.
#
# Usage: tests/fuzz/run.sh [SECONDS | -runs=N] [NAME...]
#        tests/fuzz/run.sh --probe       exit 0 when clang and its libFuzzer runtime work, else 77 with the reason
#        tests/fuzz/run.sh --build       build the targets only
#        tests/fuzz/run.sh --no-build SECONDS NAME...   run targets built before (tests/run.sh: 0.9 s less a run)
#   SECONDS   time per target (default 60); -runs=N runs N inputs per target instead
#   NAME      only these targets (fuzz_NAME.c; "fuzz_" and ".c" may be given); default: every tests/fuzz/fuzz_*.c
# A target fuzz_NAME.c is linked with the pure libraries src/text, src/http and src/core (compiled here with clang and
# coverage instrumentation; -Wl,--as-needed keeps only the shared libraries it uses) and starts from a copy
# of tests/fuzz/corpus/NAME/ (the source tree is never written), with tests/fuzz/NAME.dict when present.
# Environment: FUZZ_BUILD_DIR (default <top>/build-fuzz), FUZZ_CC (clang), FUZZ_TIMEOUT (s per input, 10),
# FUZZ_RSS_MB (2048). Crash, leak, timeout and out-of-memory inputs are kept in FUZZ_BUILD_DIR/artifacts/NAME/.
# Prints per target "fuzz_NAME: N execs, N exec/s, N crashes, N new units" and a total line; exits 1 on any
# crash, timeout, leak, sanitizer report or build failure, 77 when the toolchain is missing.
set -u -o pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
src=$top/tests/fuzz
B=${FUZZ_BUILD_DIR:-$top/build-fuzz}
CC=${FUZZ_CC:-clang}
TIMEOUT=${FUZZ_TIMEOUT:-10}
RSS_MB=${FUZZ_RSS_MB:-2048}
LIBDIRS=(core http text) # the pure libraries, in dependency order: http needs core; text needs core
PKGS="libcjson libconfig libpq libcrypto"

MODE=run
LIMIT=(-max_total_time=60)
NAMES=()
for a in "$@"; do
	case $a in
	--probe) MODE=probe ;;
	--build) MODE=build ;;
	--no-build) MODE=nobuild ;;
	-runs=[0-9]*) LIMIT=("$a") ;;
	[0-9]*) LIMIT=(-max_total_time="$a") ;;
	-h | --help) sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run.sh: unknown option $a" >&2; exit 2 ;;
	*) a=${a%.c}; NAMES+=("${a#fuzz_}") ;;
	esac
done

# ---- toolchain ----------------------------------------------------------------------------
probe() {
	if ! command -v "$CC" >/dev/null 2>&1; then
		echo "$CC not found (install the Debian packages clang and libclang-rt-14-dev)"
		return 77
	fi
	# files of its own: tests/run.sh runs two targets at once, and each probes (check-fuzz-probe-private.sh)
	mkdir -p "$B" && P=$(mktemp -d "$B/probe.XXXXXX") || return 1
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' >"$P/probe.c"
	if ! "$CC" -fsanitize=fuzzer,address,undefined "$P/probe.c" -o "$P/probe" >"$P/probe.log" 2>&1; then
		echo "$CC cannot link -fsanitize=fuzzer,address,undefined (install libclang-rt-14-dev): $(head -n 1 "$P/probe.log")"
		rm -rf "$P"
		return 77
	fi
	rm -rf "$P"
	if ! pkg-config --exists $PKGS; then
		echo "pkg-config does not know $PKGS (install libcjson-dev libconfig-dev libpq-dev libssl-dev)"
		return 77
	fi
	return 0
}
if [ "$MODE" != nobuild ]; then
	reason=$(probe)
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "run.sh: $reason"
		exit $rc
	fi
fi
[ "$MODE" = probe ] && exit 0

# ---- build --------------------------------------------------------------------------------
# configure's warnings, except one where clang and gcc differ: clang flags vsnprintf(fmt, ap) in a helper
# without a format attribute (-Wformat-nonliteral), gcc does not; the gcc build is the -Werror gate for that.
CFLAGS=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror -Wshadow -Wformat=2
	-Wno-format-nonliteral -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -fno-sanitize-recover=all)
for d in "${LIBDIRS[@]}"; do CFLAGS+=(-iquote "$top/src/$d"); done # -iquote: core/sched.h is no <sched.h>
read -r -a PKG_CFLAGS <<<"$(pkg-config --cflags $PKGS)"
read -r -a PKG_LIBS <<<"$(pkg-config --libs $PKGS)"
CFLAGS+=("${PKG_CFLAGS[@]}")

# newer SRC OUT: whether OUT is missing or older than SRC or any header of the pure libraries
# (each directory's headers: "${LIBDIRS[@]/#/$top/src/}"/*.h globbed only the last one and compared
# the others' directories, whose times change with every object the in-tree build writes there, so
# a fuzz run after that build rebuilt every object, two runs at once side by side)
newer() {
	local d h
	[ -e "$2" ] && [ ! "$1" -nt "$2" ] || return 0
	for d in "${LIBDIRS[@]/#/$top/src/}" "$src"; do
		for h in "$d"/*.h; do
			[ -e "$h" ] && [ "$h" -nt "$2" ] && return 0
		done
	done
	for h in "$top"/tests/tools/*.[ch]; do
		[ -e "$h" ] && [ "$h" -nt "$2" ] && return 0
	done
	return 1
}

build() {
	local d c o lib name rebuilt f stale
	mkdir -p "$B/obj" "$B/bin" || return 1
	LIBS=()
	for d in "${LIBDIRS[@]}"; do
		lib=$B/libnp$d.a rebuilt=0
		mkdir -p "$B/obj/$d"
		for c in "$top/src/$d"/*.c; do
			o=$B/obj/$d/$(basename "$c" .c).o
			if newer "$c" "$o"; then
				"$CC" "${CFLAGS[@]}" -fsanitize=fuzzer-no-link,address,undefined -c "$c" -o "$o" || return 1
				rebuilt=1
			fi
		done
		# drop objects whose source is gone, then (re)archive
		for o in "$B/obj/$d"/*.o; do
			[ -e "$top/src/$d/$(basename "$o" .o).c" ] || { rm -f "$o"; rebuilt=1; }
		done
		if [ $rebuilt = 1 ] || [ ! -e "$lib" ]; then
			rm -f "$lib"
			ar rcs "$lib" "$B/obj/$d"/*.o || return 1
		fi
		LIBS=("$lib" "${LIBS[@]}")   # dependants first
	done
	# The router target matches the real route table: the entries of src/api/*.c, with a stub handler
	# (the handlers need libpq). No entry found means the table's shape changed: fail loudly.
	sed -n -E 's/^[[:space:]]*\{ *("[A-Z]+"), *("\/[^"]*"), *[A-Za-z_0-9]+, *[^,]*, *("[^"]*") *\},?.*$/\t{ \1, \2, fuzz_route_handler, 0, \3 },/p' \
		"$top"/src/api/*.c >"$B/api_routes.inc.new.$$" || return 1
	if [ ! -s "$B/api_routes.inc.new.$$" ]; then
		rm -f "$B/api_routes.inc.new.$$"
		echo "run.sh: no route entry found in src/api/*.c (the table's shape changed: update the sed in $0)" >&2
		return 1
	fi
	# a file of its own per run and an atomic rename: tests/run.sh runs two targets at once
	if cmp -s "$B/api_routes.inc.new.$$" "$B/api_routes.inc"; then rm -f "$B/api_routes.inc.new.$$"
	else mv "$B/api_routes.inc.new.$$" "$B/api_routes.inc"; fi
	for f in "$src"/fuzz_*.c; do
		[ -e "$f" ] || continue
		name=$(basename "$f" .c)
		stale=0
		newer "$f" "$B/bin/$name" && stale=1
		for lib in "${LIBS[@]}" "$B/api_routes.inc"; do   # every library, not just the first two
			[ "$lib" -nt "$B/bin/$name" ] && stale=1
		done
		if [ $stale = 1 ]; then
			"$CC" "${CFLAGS[@]}" -I"$B" -fsanitize=fuzzer,address,undefined "$f" -o "$B/bin/$name" \
				"${LIBS[@]}" -Wl,--as-needed "${PKG_LIBS[@]}" || return 1
		fi
	done
}
if [ "$MODE" != nobuild ] && ! build; then
	echo "run.sh: build failed"
	exit 1
fi
if [ ${#NAMES[@]} -eq 0 ]; then
	for f in "$src"/fuzz_*.c; do
		[ -e "$f" ] || continue
		f=$(basename "$f" .c)
		NAMES+=("${f#fuzz_}")
	done
fi
for n in "${NAMES[@]}"; do
	if [ ! -x "$B/bin/fuzz_$n" ]; then
		echo "run.sh: no target fuzz_$n (tests/fuzz/fuzz_$n.c)" >&2
		exit 2
	fi
done
if [ "$MODE" = build ]; then
	echo "run.sh: built ${NAMES[*]/#/fuzz_} in $B/bin"
	exit 0
fi

# ---- run ----------------------------------------------------------------------------------
RUN=$(mktemp -d "${TMPDIR:-/tmp}/np-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$RUN"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$src/lsan.supp:print_suppressions=0}
TOTAL_EXECS=0 TOTAL_CRASHES=0 BAD=()
for n in "${NAMES[@]}"; do
	w=$RUN/$n art=$B/artifacts/$n
	mkdir -p "$w/corpus" "$w/art" "$w/cwd"
	[ -d "$src/corpus/$n" ] && cp -R "$src/corpus/$n/." "$w/corpus/"
	opts=("${LIMIT[@]}" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" -print_final_stats=1
		-artifact_prefix="$w/art/")
	[ -f "$src/$n.dict" ] && opts+=(-dict="$src/$n.dict")
	t0=$SECONDS
	(cd "$w/cwd" && "$B/bin/fuzz_$n" "${opts[@]}" "$w/corpus") >"$w/log" 2>&1
	rc=$?
	secs=$((SECONDS - t0))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$w/log" | tail -n 1)
	[ -n "$execs" ] || execs=$(sed -n -E 's/^#([0-9]+).*/\1/p' "$w/log" | tail -n 1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$w/log" | tail -n 1)
	newu=$(sed -n 's/^stat::new_units_added: *//p' "$w/log" | tail -n 1)
	crashes=$(find "$w/art" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
		-o -name 'oom-*' \) | wc -l)
	reports=$(grep -c -E '^==[0-9]+==ERROR|runtime error:|^ERROR: libFuzzer|^SUMMARY: ' "$w/log")
	execs=${execs:-0} eps=${eps:-0} newu=${newu:-0}
	TOTAL_EXECS=$((TOTAL_EXECS + execs)) TOTAL_CRASHES=$((TOTAL_CRASHES + crashes))
	echo "fuzz_$n: $execs execs, $eps exec/s, $crashes crashes, $newu new units (${secs}s)"
	if [ $rc -ne 0 ] || [ "$crashes" -gt 0 ] || [ "$reports" -gt 0 ]; then
		BAD+=("fuzz_$n")
		[ "$crashes" -gt 0 ] && mkdir -p "$art" && cp "$w/art"/* "$art/" &&
			echo "  inputs kept in $art/ (reproduce: $B/bin/fuzz_$n FILE)"
		echo "  exit status $rc, $reports sanitizer or libFuzzer reports; output (last 60 lines):"
		tail -n 60 "$w/log" | sed 's/^/  | /'
	fi
done
echo "total: ${#NAMES[@]} targets, $TOTAL_EXECS execs, $TOTAL_CRASHES crashes${BAD[*]:+, failed: ${BAD[*]}}"
[ ${#BAD[@]} -eq 0 ]
