#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_chapter_get.sh - GET /api/v1/books/{id}/chapters/{n}: a chapter with its passages a page at a time (limit, offset, keyset after), exact ids, text verbatim, every 400 naming its field, 404 for a missing book or chapter.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

NP_SEED_BOOKS=5
np_db_start workers=2 budget=1 min_warm=1

# the error code of the last answer, with its status
err() { echo "$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd["error"]["code"]')"; }
positions() { np_json_get "$NP_TMP/http.body" '" ".join(str(p["position"]) for p in d["passages"])'; }
field() { np_json_get "$NP_TMP/http.body" "$1"; }

b=$NP_BOOK_MIN
np_curl "/api/v1/books/$b/chapters/1"
np_expect_eq "a seeded chapter: 200" 200 "$NP_STATUS"
np_expect_eq "its id, book, position, title" \
	"$(np_psql_super -d neonpool -At -c "SELECT id || ' ' || book_id || ' 1 ' || title FROM chapters WHERE book_id = $b AND position = 1")" \
	"$(field '"%d %d %d %s" % (d["id"], d["book_id"], d["position"], d["title"])')"
np_expect_eq "all 10 passages in order (default limit 20), no next page" "1 2 3 4 5 6 7 8 9 10|10|None|0|20" \
	"$(positions)|$(field 'd["passage_count"]')|$(field 'd["next_after"]')|$(field 'd["offset"]')|$(field 'd["limit"]')"
np_expect_eq "the passage bodies are the stored ones" \
	"$(np_psql_super -d neonpool -At -c "SELECT md5(string_agg(p.body, '|' ORDER BY p.position)) FROM passages p JOIN chapters c ON c.id = p.chapter_id WHERE c.book_id = $b AND c.position = 1")" \
	"$(field '__import__("hashlib").md5("|".join(p["body"] for p in d["passages"]).encode()).hexdigest()')"

np_curl "/api/v1/books/$b/chapters/2?limit=3"
np_expect_eq "limit=3: the first three, next_after 3" "1 2 3|3" "$(positions)|$(field 'd["next_after"]')"
np_curl "/api/v1/books/$b/chapters/2?limit=3&after=3"
np_expect_eq "after=3: the next three, next_after 6" "4 5 6|6|3" \
	"$(positions)|$(field 'd["next_after"]')|$(field 'd["after"]')"
np_curl "/api/v1/books/$b/chapters/2?limit=3&after=9"
np_expect_eq "after=9: the last one, no next page" "10|None" "$(positions)|$(field 'd["next_after"]')"
np_curl "/api/v1/books/$b/chapters/2?after=10"
np_expect_eq "after the last: an empty page, the chapter still there" "200 |None|10" \
	"$NP_STATUS $(positions)|$(field 'd["next_after"]')|$(field 'd["passage_count"]')"
np_curl "/api/v1/books/$b/chapters/2?limit=4&offset=4"
np_expect_eq "offset=4 limit=4: 5..8, next_after 8" "5 6 7 8|8" "$(positions)|$(field 'd["next_after"]')"
np_curl "/api/v1/books/$b/chapters/2?offset=100000"
np_expect_eq "offset at its bound: 200, empty" "200 " "$NP_STATUS $(positions)"
np_curl "/api/v1/books/$b/chapters/2?limit=100"
np_expect_eq "limit at its bound: 200" 200 "$NP_STATUS"

# a chapter without passages, and exact ids above 2^53, text verbatim
big_book=9007199254740993 big_chapter=9007199254740995 big_passage=9007199254740997
body=$'Quotes \' " and \\ backslash; DROP TABLE passages; -- emoji \xf0\x9f\x90\x98 \xc3\xa9t\xc3\xa9\n<b>tag</b> & %s %% $1'
np_psql_super -d neonpool -v body="$body" >/dev/null <<SQL || np_fail "insert failed"
INSERT INTO books (id, slug, title) VALUES ($big_book, 'big-ids', 'Big ids');
INSERT INTO chapters (id, book_id, position, title) VALUES ($big_chapter, $big_book, 1, 'One'), ($big_chapter + 2, $big_book, 2, 'Empty');
INSERT INTO passages (id, chapter_id, position, body, heading) VALUES ($big_passage, $big_chapter, 1, :'body', 'A <heading>');
SQL
np_curl "/api/v1/books/$big_book/chapters/1"
np_expect_eq "big ids: 200" 200 "$NP_STATUS"
np_expect_eq "the chapter, book and passage ids are exact" "$big_chapter $big_book $big_passage" \
	"$(field '"%d %d %d" % (d["id"], d["book_id"], d["passages"][0]["id"])')"
np_expect "the body holds the digits as JSON numbers" grep -qF "\"id\":$big_passage," "$NP_TMP/http.body"
printf '%s' "$body" >"$NP_TMP/out/body.expected"
field 'd["passages"][0]["body"]' | head -c -1 >"$NP_TMP/out/body.got"
np_expect "SQL metacharacters, quotes, emoji, markup come back verbatim" cmp -s "$NP_TMP/out/body.expected" "$NP_TMP/out/body.got"
np_expect_eq "the passage's heading" "A <heading>" "$(field 'd["passages"][0]["heading"]')"
np_curl "/api/v1/books/$big_book/chapters/2"
np_expect_eq "a chapter without passages: 200, empty, count 0" "200 |0|None" \
	"$NP_STATUS $(positions)|$(field 'd["passage_count"]')|$(field 'd["next_after"]')"

np_curl "/api/v1/books/$((NP_BOOK_MAX + 1000))/chapters/1"
np_expect_eq "a missing book: 404 not_found" "404 not_found" "$(err)"
np_expect_eq "... that says so" "no such book" "$(field 'd["error"]["message"]')"
np_curl "/api/v1/books/$b/chapters/11"
np_expect_eq "a missing chapter: 404 not_found" "404 not_found" "$(err)"
np_expect_eq "... that says so" "no such chapter" "$(field 'd["error"]["message"]')"
np_curl "/api/v1/books/$b/chapters/2147483647"
np_expect_eq "the largest position, missing: 404" "404 not_found" "$(err)"

for bad in 0 -1 abc 007 1e3 +1 99999999999999999999; do
	np_curl "/api/v1/books/$bad/chapters/1"
	np_expect_eq "book id $bad: 400 invalid_id" "400 invalid_id" "$(err)"
done
for bad in 0 -1 abc 01 2147483648 1.5; do
	np_curl "/api/v1/books/$b/chapters/$bad"
	np_expect_eq "chapter n=$bad: 400 invalid_parameter naming n" "400 invalid_parameter n" \
		"$(err) $(field '"n" if "'"'"'n'"'"'" in d["error"]["message"] else d["error"]["message"]')"
done
for bad in limit=0 limit=101 limit=x limit= offset=-1 offset=100001 offset=%zz after=-1 after=2147483648 \
	"limit=1&limit=2"; do
	key=${bad%%=*}
	np_curl "/api/v1/books/$b/chapters/1?$bad"
	np_expect_eq "?$bad: 400 invalid_parameter naming $key" "400 invalid_parameter $key" \
		"$(err) $(field '"'"$key"'" if "'"'"$key"'"'" in d["error"]["message"] else d["error"]["message"]')"
done
np_curl "/api/v1/books/$b/chapters/1?after=2&offset=2"
np_expect_eq "after with offset: 400 invalid_parameter" "400 invalid_parameter" "$(err)"
np_curl -X POST "/api/v1/books/$b/chapters/1"
np_expect_eq "POST: 405, Allow GET, HEAD" "405 GET, HEAD" "$NP_STATUS $(np_http_header Allow)"
np_finish
