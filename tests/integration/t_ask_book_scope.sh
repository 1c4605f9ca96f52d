#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_book_scope.sh - an ask limited to one book ({"question", "book"}): every citation is a passage
# of that book, where the same question without a book cites others too; a book that does not exist
# is 404 not_found "no such book" (nothing stored); a book that is not a positive integer is 400; an
# Idempotency-Key reused with another book is 422 (the scope is part of the request's fingerprint),
# and without a book the fingerprint is the one it was before the scope existed (a replay of an
# earlier ask still matches).
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

NP_SEED_BOOKS=50
np_db_start workers=2 budget=2 min_warm=1
np_session
ask() { "$NP_PYTHON" "$np_top/tests/integration/ask_client.py" "$NP_HTTP_PORT" "$sid" "$tok" "$@"; }
j() { np_json_get "$1" "$2"; }
# a word of the sample text found in many books
word=$(np_psql_super -d neonpool -At -c "SELECT word FROM ts_stat('SELECT tsv FROM passages') ORDER BY ndoc DESC LIMIT 1")
q="What is $word?"
books='" ".join(sorted(set(c["book_id"] for c in d["body"]["citations"])))'

ask "$q" >"$NP_TMP/out/all.json"
all=$(j "$NP_TMP/out/all.json" "$books")
np_expect_eq "without a book: 200 with 5 citations" "200 5" \
	"$(j "$NP_TMP/out/all.json" '"%s %d" % (d["status"], len(d["body"]["citations"]))')"
np_expect "without a book: the citations come from more than one book ($all)" test "$(echo "$all" | wc -w)" -gt 1
target=$NP_BOOK_MAX
ask "$q" --book "$target" >"$NP_TMP/out/one.json"
np_expect_eq "book $target: 200 with citations of that book only" "200 $target" \
	"$(j "$NP_TMP/out/one.json" '"%s %s" % (d["status"], '"$books"')')"
np_expect "book $target: some citations" test "$(j "$NP_TMP/out/one.json" 'len(d["body"]["citations"])')" -ge 1
ask "$q" --book "$target" --sse >"$NP_TMP/out/one-sse.json"
np_expect_eq "book $target, streamed: the citations event names that book only" "$target" \
	"$(j "$NP_TMP/out/one-sse.json" '" ".join(sorted(set(c["book_id"] for c in d["events"][0]["data"]["citations"])))')"

ask "$q" --book null >"$NP_TMP/out/null.json"
np_expect_eq "book null: every book, as when absent" "200 $all" "$(j "$NP_TMP/out/null.json" '"%s %s" % (d["status"], '"$books"')')"
rows0=$(np_psql_super -d neonpool -At -c "SELECT count(*) FROM messages WHERE session_id = $sid")
ask "$q" --book $((NP_BOOK_MAX + 1000)) >"$NP_TMP/out/nobook.json"
np_expect_eq "a book that does not exist: 404 not_found, no such book" "404 not_found no such book" \
	"$(j "$NP_TMP/out/nobook.json" '"%s %s %s" % (d["status"], d["body"]["error"]["code"], d["body"]["error"]["message"])')"
np_expect_eq "... and nothing stored" "$rows0" "$(np_psql_super -d neonpool -At -c "SELECT count(*) FROM messages WHERE session_id = $sid")"
for bad in '"1"' 0 -3 1.5 true '[1]' 9007199254740992; do
	ask "$q" --book "$bad" >"$NP_TMP/out/bad.json"
	np_expect_eq "book $bad: 400 invalid_body" "400 invalid_body" \
		"$(j "$NP_TMP/out/bad.json" '"%s %s" % (d["status"], d["body"]["error"]["code"])')"
done

ask "$q" --key scope-key-1 --book "$target" >"$NP_TMP/out/k1.json"
ask "$q" --key scope-key-1 --book "$NP_BOOK_MIN" >"$NP_TMP/out/k2.json"
np_expect_eq "a key reused with another book: 422 idempotency_mismatch" "200 422 idempotency_mismatch" \
	"$(j "$NP_TMP/out/k1.json" 'd["status"]') $(j "$NP_TMP/out/k2.json" '"%s %s" % (d["status"], d["body"]["error"]["code"])')"
ask "$q" --key scope-key-1 --book "$target" >"$NP_TMP/out/k3.json"
np_expect_eq "the same key with the same book: the first answer again" "200 $(j "$NP_TMP/out/k1.json" 'd["body"]["message_id"]')" \
	"$(j "$NP_TMP/out/k3.json" '"%s %s" % (d["status"], d["body"]["message_id"])')"
ask "$q" --key scope-key-2 >"$NP_TMP/out/k4.json"
ask "$q" --key scope-key-2 --book "$target" >"$NP_TMP/out/k5.json"
np_expect_eq "a key first used without a book, then with one: 422" "200 422" \
	"$(j "$NP_TMP/out/k4.json" 'd["status"]') $(j "$NP_TMP/out/k5.json" 'd["status"]')"
echo "RESULT without a book: citations from books $all; with book $target: only $target"
np_finish
