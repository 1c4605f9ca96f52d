#!/bin/sh
# check-www.sh - `make check` rules of the web page www/ (issue 10):
# - index.html names the current version of the assets (scripts/www-version.sh --check);
# - the page weighs under 100 KiB before compression, everything in www/ counted;
# - no HTML parsing of text: no innerHTML, outerHTML, insertAdjacentHTML, document.write,
#   DOMParser or createContextualFragment in the scripts (text goes in with textContent);
# - every local module the scripts import and every asset index.html names exists.
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
[ "$rc" = 0 ] && echo "check-www: ok ($total bytes)"
exit $rc
