#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# check-wrong-token.sh - np_wrong_token (tests/integration/token.sh) never returns the token it
# was given, whatever its first and last characters, and keeps it well formed (same length,
# base64url): a "wrong token is 404" check must not pass or fail by chance. The tests built a
# wrong token as "${tok%?}A", which is the token itself for 1 token in 16 (those ending in A),
# and t_sessions_bytea_escape got 200 instead of 404 in a CI run. No test may build one that way.
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/integration/token.sh"
alphabet=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_
body=Qk9vTmVvbnBvb2wtc2Vzc2lvbi10b2tlbi10ZXN0
fails=0 n=0 f=$(mktemp) || exit 1
trap 'rm -f "$f"' EXIT
for ((i = 0; i < 64; i++)); do
	c=${alphabet:i:1}
	# the last character of a 32-byte token is one of A E I M ... (its two low bits are zero)
	for tok in "$c${body}A" "$c${body}E" "A$body$c"; do
		n=$((n + 1))
		np_wrong_token "$tok" >"$f" && read -r w <"$f"   # no subshell: 192 forks were 1 CPU s
		if [ "$w" = "$tok" ] || [ ${#w} -ne ${#tok} ] || [[ ! $w =~ ^[A-Za-z0-9_-]+$ ]]; then
			echo "FAIL: np_wrong_token '$tok' gave '$w'"
			fails=$((fails + 1))
		fi
	done
done
# the pattern that failed: a token ending in A replaced by "A"
if grep -rnE '\$\{[A-Za-z_]*tok[A-Za-z_]*%\?\}(A|\$)' "$top/tests/integration"/*.sh; then
	echo "FAIL: a test above forms a wrong token by replacing its last character: use np_wrong_token"
	fails=$((fails + 1))
fi
[ "$fails" -eq 0 ] || exit 1
echo "ok - np_wrong_token differs from each of $n tokens and keeps them well formed"
