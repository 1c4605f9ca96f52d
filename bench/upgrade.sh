#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# upgrade.sh - the long form of the binary upgrade's test: 10 upgrades alternating two builds under
# wrk -c200 on the book route, 20 writes a second with Idempotency-Keys and 20 streamed asks at a
# time on a model stand-in taking 5 s an answer, then the rollbacks, then one upgrade to a build
# whose shared-memory layout differs for real: a copy of this tree built with
# NP_SHM_LAYOUT_TEST_SHIFT=1 (another layout number, every header field after master_pid moved),
# made once into _prev/layout-shift (ignored by git; ~2 min of both cores). Prints each figure.
# Usage: bench/upgrade.sh [UPGRADES [CONNECTIONS]]
cd "$(dirname "$0")/.." || exit 1
top=$PWD
shift_dir=${NP_LAYOUT_SHIFT_DIR:-$top/_prev/layout-shift}
stamp=$(git ls-files -s src | sha1sum | cut -c1-12)
if [ ! -x "$shift_dir/src/neonpoold" ] || [ "$(cat "$shift_dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
	echo "# building the layout-shifted copy in $shift_dir"
	rm -rf "$shift_dir" && mkdir -p "$shift_dir"
	git ls-files -z | tar --null -T - -cf - | tar -x -C "$shift_dir" || exit 1
	(cd "$shift_dir" && ./autogen.sh && ./configure CPPFLAGS=-DNP_SHM_LAYOUT_TEST_SHIFT=1 && make -j2 src/neonpoold) \
		>"$shift_dir.build.log" 2>&1 || { echo "the layout-shifted build failed: see $shift_dir.build.log"; exit 1; }
	echo "$stamp" >"$shift_dir/.stamp"
fi
NP_UPGRADE_LAYOUT_BUILD=$shift_dir/src/neonpoold NP_UPGRADES=${1:-10} NP_UPGRADE_CONNS=${2:-200} NP_UPGRADE_LONG=1 \
	exec bash tests/integration/t_upgrade.sh
