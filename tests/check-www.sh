#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# check-www.sh - `make check` rules of the web page www/ (issue 10):
# - index.html names the current version of the assets (scripts/www-version.sh --check);
# - the page weighs under 100 KiB before compression, everything in www/ counted;
# - no HTML parsing of text: no innerHTML, outerHTML, insertAdjacentHTML, document.write,
#   DOMParser or createContextualFragment in the scripts (text goes in with textContent);
# - every local module the scripts import and every asset index.html names exists, and
#   Makefile.am installs every asset;
# - tests/browser/unit.mjs: the page's pure parsers under node (skipped without node).
# - tests/browser/session_create_retry.mjs: a new session is sent again only when nothing was written.
set -u
top=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
www=$top/www
rc=0
fail() { echo "check-www: $*" >&2; rc=1; }

sh "$top/scripts/www-version.sh" --check "$www" >/dev/null || rc=1
total=$(find "$www" -type f -exec cat {} + | wc -c)
[ "$total" -lt 102400 ] || fail "www/ weighs $total bytes, over 100 KiB"
if grep -nE 'innerHTML|outerHTML|insertAdjacentHTML|document\.write|DOMParser|createContextualFragment' "$www"/assets/*.js; then
	fail "the scripts above parse HTML; build nodes with textContent (www/assets/dom.js)"
fi
for m in $(grep -ohE "from '\./[a-z0-9_-]+\.js'" "$www"/assets/*.js | sed "s/from '\.\/\(.*\)'/\1/" | sort -u); do
	[ -f "$www/assets/$m" ] || fail "a module imports ./$m, which is not in www/assets"
done
for a in $(grep -oE '/assets/v-[0-9a-f]+/[a-z0-9_.-]+' "$www/index.html" | sed 's|.*/||' | sort -u); do
	[ -f "$www/assets/$a" ] || fail "index.html names $a, which is not in www/assets"
done
for a in "$www"/assets/*; do
	grep -q "www/assets/${a##*/}" "$top/Makefile.am" || fail "Makefile.am's dist_wwwassets_DATA does not install www/assets/${a##*/}"
done
# the pure parsers (SSE, exact ids, snippet escapes) under node, when node is there (>= 18)
if command -v node >/dev/null 2>&1 && node -e 'process.exit(parseInt(process.versions.node) >= 18 ? 0 : 1)'; then
	node "$top/tests/browser/unit.mjs" || rc=1
	node "$top/tests/browser/session_create_retry.mjs" || rc=1
else
	echo "check-www: node >= 18 not installed: tests/browser/unit.mjs not run"
fi
[ "$rc" = 0 ] && echo "check-www: ok ($total bytes)"
exit $rc
