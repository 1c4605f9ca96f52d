#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_search.sh - GET /api/v1/search: ranked hits with an escaped, highlighted snippet, their book and chapter, stable pages, the book filter, exact ids; every 400 (q empty, blank, too long, not UTF-8, NUL; limit, offset, book) and the 404 of a missing book; a stop-word query neither fails nor writes raw notices to the log.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

NP_SEED_BOOKS=5
np_db_start workers=2 budget=1 min_warm=1

err() { echo "$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd["error"]["code"]')"; }
field() { np_json_get "$NP_TMP/http.body" "$1"; }
ids() { field '" ".join(str(h["passage_id"]) for h in d["results"])'; }

# Known passages in a book of their own, ids above 2^53 (a double would round them). The words
# xylophone and quagmire appear nowhere in the seeded text.
kb=9007199254740993 kc=9007199254740995 kp=9007199254741001
np_psql_super -d neonpool >/dev/null <<SQL || np_fail "insert failed"
INSERT INTO books (id, slug, title) VALUES ($kb, 'known', 'Known <Book> & Co');
INSERT INTO chapters (id, book_id, position, title) VALUES ($kc, $kb, 1, 'Xylophones'), ($kc + 2, $kb, 2, 'Other');
INSERT INTO passages (id, chapter_id, position, body, heading) VALUES
 ($kp,     $kc,     1, 'The xylophone player fell in a quagmire: xylophone and quagmire, again a xylophone quagmire.', 'Playing'),
 ($kp + 2, $kc,     2, 'One xylophone alone, if a < b && "quoted" it''s fine.', ''),
 ($kp + 4, $kc,     3, 'Identical text about a lonely marimba.', ''),
 ($kp + 6, $kc + 2, 1, 'Identical text about a lonely marimba.', ''),
 ($kp + 8, $kc + 2, 2, 'A body without the word.', 'Glockenspiel heading');
SQL

np_curl "/api/v1/search?q=xylophone+quagmire"
np_expect_eq "two words: 200" 200 "$NP_STATUS"
np_expect_eq "both words (AND): only the passage with both" "$kp" "$(ids)"
h='d["results"][0]'
np_expect_eq "the hit's passage, book and chapter, ids exact" \
	"$kp $kb Known <Book> & Co $kc 1 Xylophones" \
	"$(field "'%d %d %s %d %d %s' % ($h['passage_id'], $h['book']['id'], $h['book']['title'], $h['chapter']['id'], $h['chapter']['position'], $h['chapter']['title'])")"
np_expect "the body holds the passage id as a JSON number" grep -qF "\"passage_id\":$kp," "$NP_TMP/http.body"
np_expect "a positive rank" test "$(field "int($h['rank'] > 0)")" = 1
np_expect_eq "the snippet marks the words" "<mark>xylophone</mark>" \
	"$(field "'<mark>xylophone</mark>' if '<mark>xylophone</mark>' in $h['snippet'] and '<mark>quagmire</mark>' in $h['snippet'] else $h['snippet']")"
np_expect_eq "the hit's heading" "Playing" "$(field "$h['heading']")"
np_expect_eq "query, book, limit, offset, next_offset echoed" "xylophone quagmire|None|10|0|None" \
	"$(field '"%s|%s|%d|%d|%s" % (d["query"], d["book"], d["limit"], d["offset"], d["next_offset"])')"

np_curl "/api/v1/search?q=xylophone"
np_expect_eq "one word: both passages, the denser first" "$kp $((kp + 2))" "$(ids)"
np_expect_eq "the snippet escapes the text around the marks" \
	'One <mark>xylophone</mark> alone, if a &lt; b &amp;&amp; &quot;quoted&quot; it&#39;s fine.' \
	"$(field 'd["results"][1]["snippet"]')"
np_curl "/api/v1/search?q=%22xylophone+player%22"
np_expect_eq "websearch syntax: a quoted phrase" "$kp" "$(ids)"
np_curl "/api/v1/search?q=xylophone+-quagmire"
np_expect_eq "websearch syntax: -word excludes" "$((kp + 2))" "$(ids)"
np_curl "/api/v1/search?q=xylophone+or+zzzznothing"
np_expect_eq "websearch syntax: or" "$kp $((kp + 2))" "$(ids)"

np_curl "/api/v1/search?q=glockenspiel"
np_expect_eq "a word of the heading alone finds the passage (tsv holds the heading)" "$((kp + 8)) Glockenspiel heading" \
	"$(ids) $(field 'd["results"][0]["heading"]')"
np_curl "/api/v1/search?q=lonely+marimba"
np_expect_eq "equal ranks: by passage id" "$((kp + 4)) $((kp + 6))" "$(ids)"
np_curl "/api/v1/search?q=lonely+marimba&limit=1"
np_expect_eq "limit=1: the first, next_offset 1" "$((kp + 4)) 1" "$(ids) $(field 'd["next_offset"]')"
np_curl "/api/v1/search?q=lonely+marimba&limit=1&offset=1"
np_expect_eq "offset=1: the second, no next page" "$((kp + 6)) None" "$(ids) $(field 'd["next_offset"]')"
np_curl "/api/v1/search?q=lonely+marimba&book=$kb"
np_expect_eq "book filter, the known book: both" "$((kp + 4)) $((kp + 6))|$kb" "$(ids)|$(field 'd["book"]')"
np_curl "/api/v1/search?q=lonely+marimba&book=$NP_BOOK_MIN"
np_expect_eq "book filter, another book: none" "200 " "$NP_STATUS $(ids)"
np_curl "/api/v1/search?q=lonely+marimba&book=$((kb + 1000))"
np_expect_eq "book filter, a missing book: 404 not_found" "404 not_found" "$(err)"

# a seeded word: hits in many books; pages do not overlap and follow each other
word=$(np_psql_super -d neonpool -At -c "SELECT word FROM ts_stat('SELECT tsv FROM passages') ORDER BY ndoc DESC LIMIT 1")
np_curl "/api/v1/search?q=$word&limit=50"
all=$(ids)
np_curl "/api/v1/search?q=$word&limit=20"
p1=$(ids)
np_curl "/api/v1/search?q=$word&limit=30&offset=20"
np_expect_eq "pages 0-19 and 20-49 make the first 50, stable" "$all" "$p1 $(ids)"
np_expect_eq "a full page of 50 at the limit bound" 50 "$(echo "$all" | wc -w)"
np_curl "/api/v1/search?q=$word&limit=50&offset=1000"
np_expect_eq "offset at its bound: 200" 200 "$NP_STATUS"

# stop words only: an empty tsquery, no hits; the server's NOTICE goes to our log as a line of its own
np_curl "/api/v1/search?q=the+and+of"
np_expect_eq "stop words only: 200, no hits" "200 " "$NP_STATUS $(ids)"
np_expect "no raw NOTICE from libpq in the daemon's log" bash -c "! grep -q '^NOTICE:' '$NP_DAEMON_LOG'"
# SQL metacharacters and emoji: text, never SQL
np_curl "/api/v1/search?q=%27%3B+DROP+TABLE+passages%3B+--+%F0%9F%90%98+xylophone"
np_expect_eq "SQL metacharacters and an emoji: 200, the query verbatim" "200 '; DROP TABLE passages; -- 🐘 xylophone" \
	"$NP_STATUS $(field 'd["query"]')"
np_expect_eq "the table is still there" 5 "$(np_psql_super -d neonpool -At -c "SELECT count(*) FROM passages p JOIN chapters c ON c.id = p.chapter_id WHERE c.book_id = $kb")"
# 256 two-byte characters are allowed (the bound counts characters, not bytes)
q256=$(printf '%%C3%%A9%.0s' $(seq 256))
np_curl "/api/v1/search?q=$q256"
np_expect_eq "256 characters (512 bytes): 200" 200 "$NP_STATUS"

np_expect_q() {
	local what=$1 q=$2
	np_curl "/api/v1/search$q"
	np_expect_eq "$what: 400 invalid_query naming q" "400 invalid_query q" \
		"$(err) $(field '"q" if "'"'"'q'"'"'" in d["error"]["message"] else d["error"]["message"]')"
}
np_expect_q "no q" ""
np_expect_q "q absent, other parameters" "?limit=5"
np_expect_q "q empty" "?q="
np_expect_q "q blank" "?q=+%20%09%0A"
np_expect_q "q of 257 characters" "?q=${q256}x"
np_expect_q "q far too long (4000 bytes)" "?q=$(printf 'a%.0s' $(seq 4000))"
np_expect_q "q not UTF-8" "?q=caf%E9"
np_expect_q "q raw bytes not UTF-8" "?q=$(printf 'caf\xe9')"
np_expect_q "q with an encoded NUL" "?q=a%00b"
np_expect_q "q malformed escape" "?q=a%zzb"
np_expect_q "q given twice" "?q=a&q=b"
for bad in limit=0 limit=51 limit=x offset=-1 offset=1001 offset=1.5 book=0 book=-1 book=abc book=007 \
	book=99999999999999999999 "book=%ff"; do
	key=${bad%%=*}
	np_curl "/api/v1/search?q=xylophone&$bad"
	np_expect_eq "?$bad: 400 invalid_parameter naming $key" "400 invalid_parameter $key" \
		"$(err) $(field '"'"$key"'" if "'"'"$key"'"'" in d["error"]["message"] else d["error"]["message"]')"
done
np_curl -X POST "/api/v1/search?q=x"
np_expect_eq "POST: 405, Allow GET, HEAD" "405 GET, HEAD" "$NP_STATUS $(np_http_header Allow)"
np_finish
