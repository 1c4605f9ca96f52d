#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_ids_exact.sh - ids above 2^53 come back exactly in every route (JSON numbers never go through a double).
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

NP_SEED_BOOKS=5
# 2^53 + 1, + 3, + 5, + 7: a double rounds each of them to an even neighbour
big_book=9007199254740993 big_chapter=9007199254740995 big_passage=9007199254740997 big_max=9223372036854775807
np_db_start workers=2 budget=1 min_warm=1
np_psql_super -d neonpool -c "
INSERT INTO books (id, slug, title) VALUES ($big_book, 'big-ids', 'Big ids'), ($big_max, 'max-id', 'Max id');
INSERT INTO chapters (id, book_id, position, title) VALUES ($big_chapter, $big_book, 1, 'One');
INSERT INTO passages (id, chapter_id, position, body) VALUES ($big_passage, $big_chapter, 1, 'Text.');" >/dev/null ||
	np_fail "insert failed"

np_curl "/api/v1/books/$big_book"
np_expect_eq "GET book $big_book: 200" 200 "$NP_STATUS"
np_expect_eq "the book's id is exact" "$big_book" "$(np_json_get "$NP_TMP/http.body" 'd["id"]')"
np_expect_eq "its chapter's id is exact" "$big_chapter" "$(np_json_get "$NP_TMP/http.body" 'd["chapters"][0]["id"]')"
np_expect "the body holds the digits as a JSON number" grep -qF "\"id\":$big_book," "$NP_TMP/http.body"
np_curl "/api/v1/books/$big_max"
np_expect_eq "the largest bigint id is exact" "$big_max" "$(np_json_get "$NP_TMP/http.body" 'd["id"]')"

np_curl "/api/v1/passages/$big_passage"
np_expect_eq "GET passage $big_passage: 200" 200 "$NP_STATUS"
np_expect_eq "the passage's ids are exact" "$big_passage $big_chapter $big_book" \
	"$(np_json_get "$NP_TMP/http.body" '"%d %d %d" % (d["id"], d["chapter_id"], d["book_id"])')"

np_curl "/api/v1/books?limit=2&offset=$NP_SEED_BOOKS"
np_expect_eq "the book list: 200" 200 "$NP_STATUS"
np_expect_eq "the book list's ids are exact" "$big_book $big_max" \
	"$(np_json_get "$NP_TMP/http.body" '" ".join(str(b["id"]) for b in d["books"])')"
np_finish
