#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# check-ask-client-token-dash.sh - tests/integration/ask_client.py takes a session token that
# starts with '-' as the token (1 token in 64 does: base64url), not as an unknown option. It took
# it for one, printed its usage and asked nothing: every ask of that test came back empty and the
# test ran into its 300 s timeout (t_ask_llm in a CI run).
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(python3 "$top/tests/integration/ask_client.py" 9 1 "-Tok3n_starting-with-a-dash" "a question" --timeout 1 2>&1)
case $out in
*usage:*|*"unrecognized arguments"*|*"required"*) echo "FAIL: a token starting with '-' was parsed as an option: $out"; exit 1 ;;
esac
# port 9 of 127.0.0.1 refuses: the client got as far as connecting
case $out in
*ConnectionRefused*|*"Connection refused"*) echo "ok - a token starting with '-' is the token" ;;
*) echo "FAIL: unexpected output: $out"; exit 1 ;;
esac
