#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# www-version.sh - stamp www/index.html with the version of www/assets: the first 10 hex digits of
# the SHA-256 of every asset (name and content, in name order). index.html names the assets as
# /assets/v-VERSION/NAME; nginx serves them from www/assets/NAME with a year's max-age
# (immutable), and index.html itself with no-cache, so a changed asset gets a new URL and a
# reader never mixes old and new files. No build step: run this after editing an asset
# (tests/check-www.sh, in `make check`, fails while the stamp is stale).
#
# Usage: scripts/www-version.sh [--check] [WWW_DIR]
set -eu
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
www=${1:-$(cd "$(dirname "$0")/.." && pwd)/www}
version=$(cd "$www/assets" && for f in $(ls | LC_ALL=C sort); do printf '%s\n' "$f"; cat "$f"; done | sha256sum | cut -c1-10)
if [ "$check" = 1 ]; then
	stamped=$(grep -o '/assets/v-[0-9a-f]*/' "$www/index.html" | sort -u)
	if [ "$stamped" != "/assets/v-$version/" ]; then
		echo "www-version: www/index.html names $(echo "$stamped" | tr '\n' ' ')but the assets are v-$version: run scripts/www-version.sh" >&2
		exit 1
	fi
	echo "$version"
	exit 0
fi
sed -i "s|/assets/v-[0-9a-f]*/|/assets/v-$version/|g" "$www/index.html"
echo "www-version: www/index.html now names /assets/v-$version/"
