#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# check-size.sh - the size limits of src/: no C file over 800 lines, no function over 100 lines
# (a file past the limit splits along a seam a newcomer would guess; a function past it becomes
# steps named after what they do). Prints the ten longest functions and the ten longest files, then
# each one past its limit; exits 1 when there is one. Run by `make check`.
# A function is counted from the line that names it to its closing brace: the project's style puts
# a definition's opening and closing braces alone at the start of a line.
set -u
top=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
FILE_MAX=${FILE_MAX:-800}
FUNC_MAX=${FUNC_MAX:-100}
cd "$top" || exit 2
files=$(find src -name '*.[ch]' | LC_ALL=C sort)
[ -n "$files" ] || { echo "check-size.sh: no C files under $top/src" >&2; exit 2; }

# one line per function: LINES FILE:LINE NAME
funcs=$(awk '
	FNR == 1 { sig = 0; name = "" }
	/^[A-Za-z_].*[A-Za-z0-9_]\(/ && !/;[ \t]*$/ && !/^(typedef|extern|#)/ {
		if (!(sig && open == 0 && prev_cont)) {
			s = $0; sub(/\(.*/, "", s); n = split(s, w, /[^A-Za-z0-9_]+/)
			name = w[n]; sig = FNR
		}
	}
	/^\{[ \t]*$/ { if (sig) { start = sig; fname = name; open = 1 } }
	/^\}/ { if (open) { printf "%d %s:%d %s\n", FNR - start + 1, FILENAME, start, fname; open = 0; sig = 0 } }
	{ prev_cont = /,[ \t]*$/ }
' $files | sort -k1,1nr -k2,2)
lines=$(wc -l $files | grep -v ' total$' | sort -k1,1nr -k2,2)

echo "the ten longest functions (limit $FUNC_MAX lines):"
echo "$funcs" | head -n 10 | awk '{ printf "  %5d  %s %s\n", $1, $2, $3 }'
echo "the ten longest files (limit $FILE_MAX lines):"
echo "$lines" | head -n 10 | awk '{ printf "  %5d  %s\n", $1, $2 }'

bad=0
while read -r n where name; do
	[ -n "$n" ] || continue
	if [ "$n" -gt "$FUNC_MAX" ]; then
		echo "FAIL: $where $name is $n lines (more than $FUNC_MAX): make its steps functions named after them"
		bad=1
	fi
done <<<"$funcs"
while read -r n f; do
	[ -n "$n" ] || continue
	if [ "$n" -gt "$FILE_MAX" ]; then
		echo "FAIL: $f is $n lines (more than $FILE_MAX): split it along a seam"
		bad=1
	fi
done <<<"$lines"
[ "$(echo "$funcs" | grep -c .)" -gt 100 ] || { echo "FAIL: found only $(echo "$funcs" | grep -c .) functions: the scan is broken"; bad=1; }
exit $bad
