#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_session_token_old_hash.sh - a session token issued before SHA-256 came from libcrypto still opens its session: rows whose token_hash was written the old build's way (its own SHA-256, sent as a '\x...' bytea parameter; pinned here as a constant that build computed) are read, posted to and erased through the API by this build.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx cgi-fcgi

np_db_start workers=2 budget=2 min_warm=1
base="http://127.0.0.1:$NP_HTTP_PORT/api/v1"

# token bytes a0 a1 ... bf: the old build's sha256.c gave this digest for them (computed with that
# build's code; hashlib and PostgreSQL's sha256() must agree, or the constant is wrong)
old_hex=00e988677eecf94c0bb9233371c7c0d6f4db8ebdcdecb7c5ebaa666f17249227
old_tok=$("$NP_PYTHON" -c 'import base64; print(base64.urlsafe_b64encode(bytes(range(0xa0, 0xc0))).rstrip(b"=").decode())')
np_expect_eq "hashlib agrees with the old build's digest" "$old_hex" \
	"$("$NP_PYTHON" -c 'import hashlib; print(hashlib.sha256(bytes(range(0xa0, 0xc0))).hexdigest())')"
np_expect_eq "PostgreSQL's sha256() agrees with the old build's digest" "$old_hex" \
	"$(np_psql_super -d neonpool -At -c "SELECT encode(sha256(decode('a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf', 'hex')), 'hex')")"

# the row as the old build wrote it: INSERT INTO sessions (token_hash) VALUES ($1::bytea) with $1 = '\x' and hex
old_sid=$(np_psql_super -d neonpool -At -c "INSERT INTO sessions (token_hash) VALUES ('\\x$old_hex'::bytea) RETURNING id")
# and a random token whose hash PostgreSQL computes (the same SHA-256 over the 32 raw bytes)
raw=$("$NP_PYTHON" -c 'import os; print(os.urandom(32).hex())')
rnd_tok=$("$NP_PYTHON" -c 'import base64,sys; print(base64.urlsafe_b64encode(bytes.fromhex(sys.argv[1])).rstrip(b"=").decode())' "$raw")
rnd_sid=$(np_psql_super -d neonpool -At -c "INSERT INTO sessions (token_hash) VALUES (sha256(decode('$raw', 'hex'))) RETURNING id")
printf '%s\n%s\n' "$old_tok" "$rnd_tok" >>"$NP_TMP/out/tokens"

for pair in "old:$old_sid:$old_tok" "sql:$rnd_sid:$rnd_tok"; do
	IFS=: read -r what sid tok <<<"$pair"
	code=$(curl -s -o "$NP_TMP/out/$what-list0" -w '%{http_code}' -H "Authorization: Bearer $tok" "$base/sessions/$sid/messages")
	np_expect_eq "$what hash: the session's page opens (200)" 200 "$code"
	np_expect_eq "$what hash: the page is empty" 0 "$(np_json_get "$NP_TMP/out/$what-list0" 'len(d["messages"])')"
	code=$(curl -s -o "$NP_TMP/out/$what-post" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		-H "Authorization: Bearer $tok" --data "{\"role\":\"user\",\"content\":\"from $what\"}" "$base/sessions/$sid/messages")
	np_expect_eq "$what hash: a message is posted (201)" 201 "$code"
	mid=$(np_json_get "$NP_TMP/out/$what-post" 'd["id"]')
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		-H "Authorization: Bearer $tok" --data '{"rating":1}' "$base/messages/$mid/feedback")
	np_expect_eq "$what hash: the message is rated (201)" 201 "$code"
	curl -s -o "$NP_TMP/out/$what-list1" -H "Authorization: Bearer $tok" "$base/sessions/$sid/messages"
	np_expect_eq "$what hash: the page holds the message" "from $what" \
		"$(np_json_get "$NP_TMP/out/$what-list1" 'd["messages"][0]["content"]')"
	# one character off (the last one changes only the padding bits' neighbour): refused like no session
	wrong=$(np_wrong_token "$tok")
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $wrong" "$base/sessions/$sid/messages")
	np_expect_eq "$what hash: a wrong token is 404" 404 "$code"
	code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer $tok" "$base/sessions/$sid")
	np_expect_eq "$what hash: the session is erased (204)" 204 "$code"
done
np_expect_eq "both sessions are gone" 0 \
	"$(np_psql_super -d neonpool -At -c "SELECT count(*) FROM sessions WHERE id IN ($old_sid, $rnd_sid)")"
np_expect "no session token in the daemon's log" bash -c "! grep -qF -f '$NP_TMP/out/tokens' '$NP_DAEMON_LOG'"
echo "RESULT old-format token hashes: two sessions opened, posted to, rated and erased by this build"
np_finish
