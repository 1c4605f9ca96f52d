#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# check-fuzz-probe-private.sh - tests/fuzz/run.sh's toolchain probe compiles in files of its own.
# tests/run.sh runs two fuzz targets at once and each run.sh probes clang first; the probe wrote
# and linked FUZZ_BUILD_DIR/probe.c, so one run truncated the file while the other compiled it and
# the second reported "clang cannot link -fsanitize=fuzzer" (fuzz:router in a CI run). Here another
# writer keeps truncating that old shared path while the probe runs again: it must pass (the
# shared-file probe failed at its first run beside that writer; one run is the suite's critical path).
# Skipped (77) without clang and its libFuzzer runtime.
top=$(cd "$(dirname "$0")/.." && pwd)
B=$(mktemp -d "${TMPDIR:-/tmp}/np-probe.XXXXXX") || exit 1
trap 'kill $w 2>/dev/null; rm -rf "$B"' EXIT
FUZZ_BUILD_DIR=$B bash "$top/tests/fuzz/run.sh" --probe >"$B/first" 2>&1
rc=$?
if [ $rc -eq 77 ]; then cat "$B/first"; exit 77; fi
[ $rc -eq 0 ] || { echo "FAIL: the probe failed alone: $(cat "$B/first")"; exit 1; }
(while :; do : >"$B/probe.c"; done) &
w=$!
if ! out=$(FUZZ_BUILD_DIR=$B bash "$top/tests/fuzz/run.sh" --probe 2>&1); then
	echo "FAIL: the probe failed while another run rewrote $B/probe.c: $out"
	exit 1
fi
echo "ok - the probe passed while another writer truncated the shared probe path"
