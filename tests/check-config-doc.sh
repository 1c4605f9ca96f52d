#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# check-config-doc.sh - the key table in src/core/conf.c, etc/neonpool.conf.sample and
# doc/configuration.md name exactly the same keys (STYLE.md rule 9; PgBouncer's optscan).
#
# A table entry is a line starting with KEY_<TYPE>("name" ; a sample key is a line
# `#name =` or `name =` ; a documented key is a heading `### name`.
# Run by `make check` with top_srcdir set; falls back to the directory above this script.

set -u
top=${top_srcdir:-$(dirname "$0")/..}
table=$top/src/core/conf.c
sample=$top/etc/neonpool.conf.sample
doc=$top/doc/configuration.md

for f in "$table" "$sample" "$doc"; do
	if [ ! -r "$f" ]; then
		echo "check-config-doc: cannot read $f" >&2
		exit 1
	fi
done

table_keys=$(sed -n 's/^[[:space:]]*KEY_[A-Z][A-Z0-9_]*([[:space:]]*"\([a-z][a-z0-9_]*\)".*/\1/p' "$table")
sample_keys=$(sed -n 's/^#\{0,1\}\([a-z][a-z0-9_]*\)[[:space:]]*=.*/\1/p' "$sample")
doc_keys=$(sed -n 's/^###[[:space:]]\{1,\}\([a-z][a-z0-9_]*\)[[:space:]]*$/\1/p' "$doc")

if [ -z "$table_keys" ]; then
	echo "check-config-doc: no KEY_<TYPE>(\"name\", ...) entries found in $table" >&2
	exit 1
fi

# not_in LIST1 LIST2: the words of LIST1 missing from LIST2, space-separated.
not_in() {
	out=
	for k in $1; do
		case " $(echo $2) " in
		*" $k "*) ;;
		*) out="$out $k" ;;
		esac
	done
	echo "${out# }"
}

status=0
report() {
	if [ -n "$2" ]; then
		echo "check-config-doc: $1: $2" >&2
		status=1
	fi
}

dups=$(printf '%s\n' $table_keys | sort | uniq -d | tr '\n' ' ')
report "$table: keys defined twice" "${dups% }"
report "$sample: keys of the table not documented" "$(not_in "$table_keys" "$sample_keys")"
report "$doc: keys of the table without a '### key' heading" "$(not_in "$table_keys" "$doc_keys")"
report "$sample: keys not in the table of $table" "$(not_in "$sample_keys" "$table_keys")"
report "$doc: '### key' headings not in the table of $table" "$(not_in "$doc_keys" "$table_keys")"

if [ "$status" -eq 0 ]; then
	echo "check-config-doc: $(echo $table_keys | wc -w) keys documented in $sample and $doc"
fi
exit "$status"
