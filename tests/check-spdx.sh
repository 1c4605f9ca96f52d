#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# check-spdx.sh - `make check`: every source file names its licence on an SPDX-License-Identifier line
# (COPYING: the PostgreSQL Licence). Applied migrations (sql/0*.sql) are checksummed by
# `neonpoolctl migrate` and cannot change; test fixtures and fuzz corpora are data.
set -u
top=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top" || exit 1
# one awk over every file (a head and a grep for each of the ~400 files cost 8 CPU s of the suite's
# critical path); an empty file is reported too
missing=$(find src tests scripts bench tools www contrib -type f \
		\( -name '*.c' -o -name '*.h' -o -name '*.sh' -o -name '*.py' -o -name '*.js' -o -name '*.mjs' \
		-o -name '*.css' -o -name '*.html' \) \
		-not -path '*/corpus/*' -not -path '*/fixtures/*' -not -path '*/node_modules/*' -not -path '*/build-*' \
		-exec awk '
		BEGIN { for (i = 1; i < ARGC; i++) seen[ARGV[i]] = 0 }
		FNR <= 3 && /SPDX-License-Identifier: PostgreSQL/ { seen[FILENAME] = 1 }
		END { for (f in seen) if (!seen[f]) print f }' {} +)
for f in Makefile.am configure.ac autogen.sh; do
	head -n 3 "$f" | grep -q 'SPDX-License-Identifier: PostgreSQL' || missing="$missing $f"
done
if [ -n "$missing" ]; then
	echo "check-spdx: no SPDX-License-Identifier line in the first 3 lines of:" $missing >&2
	exit 1
fi
exit 0
