# SPDX-License-Identifier: PostgreSQL
# token.sh - session-token helpers for the integration tests (sourced by lib.sh and by
# tests/check-wrong-token.sh, so it holds functions only).
#
# np_wrong_token TOKEN: print a well-formed base64url token of the same length that is not TOKEN.
# It changes the first character, which carries six bits of the first byte: the last character
# of a 43-character token carries only four (the other two are zero), so "replace the last
# character by A" left one token in 16 unchanged (A is the last character of 1 in 16 tokens) and
# its "wrong token is 404" check then got 200 (t_sessions_bytea_escape in a CI run).
np_wrong_token() {
	local t=$1
	case $t in
	A*) printf 'B%s\n' "${t#?}" ;;
	*) printf 'A%s\n' "${t#?}" ;;
	esac
}
