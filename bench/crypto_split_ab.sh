#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# crypto_split_ab.sh - the book and passage routes' throughput, the build before libcrypto and the
# file splits (OLD, default 30aca63) against the one after (NEW, default HEAD), side by side in one
# run: both trees are built from git with the same flags, both daemons run on the same PostgreSQL
# (lib.sh's, seeded) each behind its own nginx, and wrk measures them in alternating rounds
# (old, new, new, old, ...: ABBA, so that a drift of the machine weighs on both alike). Prints
# req/s per round and route, then each route's medians and the new/old ratio. Not in the suite.
# Usage: bench/crypto_split_ab.sh [SECONDS [ROUNDS]]   (default 6 s, 4 rounds: 2 runs of each build
#        per round and route, 96 s of measurement)
#   OLD, NEW         the commits to build (default 30aca63, HEAD)
#   NP_AB_DIR        where the trees are built and kept between runs (default /tmp/np-crypto-ab)
#   NP_AB_CONN       wrk connections (default 8; one thread)
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
secs=${1:-6}
rounds=${2:-4}
OLD=${OLD:-30aca63}
NEW=${NEW:-HEAD}
AB=${NP_AB_DIR:-/tmp/np-crypto-ab}
CONN=${NP_AB_CONN:-8}

# ---- the two builds, from git, with the same flags ---------------------------------------------
build() { # build REV: prints the tree's path once src/neonpoold and src/neonpoolctl are built
	local rev sha dir
	rev=$1
	sha=$(git -C "$top" rev-parse --verify "$rev^{commit}") || { echo "crypto_split_ab: no commit $rev" >&2; return 1; }
	dir=$AB/$sha
	if [ ! -x "$dir/src/neonpoold" ] || [ ! -x "$dir/src/neonpoolctl" ]; then
		rm -rf "$dir" && mkdir -p "$dir" || return 1
		git -C "$top" archive "$sha" | tar -x -C "$dir" || return 1
		echo "crypto_split_ab: building $rev ($sha) in $dir" >&2
		(cd "$dir" && ./autogen.sh && ./configure && nice -n 10 make -j2 src/neonpoold src/neonpoolctl) \
			>"$dir.build.log" 2>&1 || { echo "crypto_split_ab: build of $rev failed: $dir.build.log" >&2; return 1; }
	fi
	echo "$dir"
}
old_dir=$(build "$OLD") || exit 1
new_dir=$(build "$NEW") || exit 1

# ---- PostgreSQL, the two daemons, their nginx ----------------------------------------------------
# lib.sh's helpers, with the new tree's neonpoolctl for the schema (the migrations are the same files)
export NEONPOOLCTL=$new_dir/src/neonpoolctl
. "$top/tests/integration/lib.sh"
. "$top/tests/integration/dblib.sh"
np_require wrk nginx
[ "$(git -C "$top" diff --stat "$OLD" "$NEW" -- sql | wc -l)" = 0 ] ||
	np_skip "the migrations differ between $OLD and $NEW: one database cannot serve both"

NP_SEED_BOOKS=${NP_SEED_BOOKS:-50}
np_db_prepare
declare -A port
for b in old new; do
	dir=old_dir; [ "$b" = new ] && dir=new_dir
	NEONPOOLD=${!dir}/src/neonpoold np_start_daemon --name "$b" database_url="$(np_db_url)" \
		database_password_file="$NP_TMP/db.password" workers=4 budget=4 min_warm=4 log_level=warn
	np_start_nginx "unix:$NP_TMP/$b.sock" "" "nginx-$b"
	port[$b]=$NP_HTTP_PORT
done

declare -A path=([books]="/api/v1/books/$NP_BOOK_MIN" [passages]="/api/v1/passages/$NP_PASSAGE_MIN")
for b in old new; do
	for r in books passages; do
		code=$(curl -s -o "$NP_TMP/out/$b-$r.json" -w '%{http_code}' "http://127.0.0.1:${port[$b]}${path[$r]}")
		[ "$code" = 200 ] || np_fail "$b: ${path[$r]} answered $code"
	done
done
cmp -s "$NP_TMP/out/old-books.json" "$NP_TMP/out/new-books.json" || np_fail "the book's bodies differ between the builds"
cmp -s "$NP_TMP/out/old-passages.json" "$NP_TMP/out/new-passages.json" || np_fail "the passage's bodies differ between the builds"

# ---- the rounds ------------------------------------------------------------------------------------
run() { # run BUILD ROUTE SECONDS: prints req/s (fails on a non-2xx or a socket error)
	local out=$NP_TMP/out/wrk-$1-$2.out
	wrk -t1 -c"$CONN" -d"$3s" "http://127.0.0.1:${port[$1]}${path[$2]}" >"$out" 2>&1
	grep -q 'Non-2xx\|Socket errors' "$out" && np_fail "$1 $2: errors under wrk: $(grep 'Non-2xx\|Socket errors' "$out")"
	sed -n 's/^Requests\/sec: *//p' "$out"
}
# warm both (connections open, caches filled), not measured
for b in old new; do for r in books passages; do run "$b" "$r" 2 >/dev/null; done; done

declare -A got
echo "round  route      old req/s   new req/s"
for ((i = 1; i <= rounds; i++)); do
	order="old new"; [ $((i % 2)) = 0 ] && order="new old"
	for r in books passages; do
		for b in $order; do got[$b-$r]+="$(run "$b" "$r" "$secs") "; done
		printf '%5d  %-9s %10s  %10s\n' "$i" "$r" "$(echo "${got[old-$r]}" | awk '{print $NF}')" \
			"$(echo "${got[new-$r]}" | awk '{print $NF}')"
	done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for r in books passages; do
	mo=$(echo "${got[old-$r]}" | median)
	mn=$(echo "${got[new-$r]}" | median)
	echo "RESULT $r (${path[$r]}): median old $mo req/s, new $mn req/s, new/old $(awk -v a="$mn" -v b="$mo" 'BEGIN { printf "%.3f", a / b }') ($rounds rounds of $secs s, ABBA, wrk -t1 -c$CONN, workers=4 budget=4)"
done
np_finish
