#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_import.sh - neonpoolctl import loads the PostgreSQL 15 manual (postgresql-doc-15) as a book: in order, idempotent, all-or-nothing on a bad page; the API serves it.
#
# NP_CTL_WRAPPER prefixes every neonpoolctl run, e.g. "valgrind --leak-check=full --log-file=@TMP@/vg.%p"
# (lib.sh's teardown fails the test on a valgrind error in @TMP@/vg.*; give NP_TIMEOUT_SCALE too).
# NP_MANUAL_DIR: the manual's HTML (default /usr/share/doc/postgresql-doc-15/html, from Debian's
# postgresql-doc-15, which scripts/install-deps.sh installs).
# np: long (waits more than it computes: started early, so that it does not end the run)
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx cgi-fcgi

MANUAL=${NP_MANUAL_DIR:-/usr/share/doc/postgresql-doc-15/html}
[ -f "$MANUAL/index.html" ] || np_skip "the PostgreSQL 15 manual is not installed ($MANUAL/index.html; apt-get install postgresql-doc-15)"
SLUG=postgresql-15-manual
TITLE="PostgreSQL 15 Documentation"
AUTHOR="The PostgreSQL Global Development Group"
NPAGES=$(find "$MANUAL" -maxdepth 1 -name '*.html' -type f | wc -l)

NP_SEED_BOOKS=2 np_db_start workers=2 budget=2 min_warm=1
NP_CTL_WRAP=()
[ -n "${NP_CTL_WRAPPER:-}" ] && read -r -a NP_CTL_WRAP <<<"${NP_CTL_WRAPPER//@TMP@/$NP_TMP}"

# imp NAME ARGS...: neonpoolctl import ARGS; output in out/NAME.out and out/NAME.err, the exit status in
# out/NAME.rc (for runs in the background); sets RC and MS.
imp() {
	local name=$1 t0; shift
	np_now_ms; t0=$NP_NOW
	"${NP_CTL_WRAP[@]}" "$NEONPOOLCTL" -c "$NP_CTL_CONF" import "$@" >"$NP_TMP/out/$name.out" 2>"$NP_TMP/out/$name.err"
	RC=$?
	echo "$RC" >"$NP_TMP/out/$name.rc"
	np_now_ms; MS=$((NP_NOW - t0))
	np_log "neonpoolctl import $* -> exit $RC in $MS ms: $(tail -n 3 "$NP_TMP/out/$name.out" | tr '\n' ' ') $(cat "$NP_TMP/out/$name.err")"
}
has() { grep -qF -- "$2" "$NP_TMP/out/$1.out" "$NP_TMP/out/$1.err"; }
q() { np_psql_super -d neonpool -At -c "$1"; }
# The book's rows and their xmin: any insert, update or delete changes this line.
state() {
	q "SELECT (SELECT count(*) || ' ' || string_agg(xmin::text || ':' || title, ',') FROM books WHERE slug = '$1') || ' | ' ||
		(SELECT count(*) || ' ' || md5(string_agg(c.id || ':' || c.xmin::text, ',' ORDER BY c.id)) FROM chapters c JOIN books b ON b.id = c.book_id WHERE b.slug = '$1') || ' | ' ||
		(SELECT count(*) || ' ' || md5(string_agg(p.id || ':' || p.xmin::text, ',' ORDER BY p.id)) FROM passages p JOIN chapters c ON c.id = p.chapter_id JOIN books b ON b.id = c.book_id WHERE b.slug = '$1')"
}

# --- the first import: the whole manual (its time is measured for bench/latency) ------------------
imp first "$MANUAL" --slug "$SLUG" --title "$TITLE" --author "$AUTHOR"
np_expect_eq "first import exits 0 ($NPAGES pages in $MS ms)" 0 "$RC"
np_measure import_ms "$MS" "neonpoolctl import of the PostgreSQL manual ($NPAGES pages)"
BOOK=$(q "SELECT id FROM books WHERE slug = '$SLUG'")
np_expect "the book exists" test -n "$BOOK"
np_expect_eq "its title and author" "$TITLE|$AUTHOR" "$(q "SELECT title || '|' || author FROM books WHERE id = $BOOK")"
np_expect_eq "one chapter per page" "$NPAGES" "$(q "SELECT count(*) FROM chapters WHERE book_id = $BOOK")"
np_expect_eq "chapter positions are 1..$NPAGES" "1 $NPAGES $NPAGES" \
	"$(q "SELECT min(position) || ' ' || max(position) || ' ' || count(DISTINCT position) FROM chapters WHERE book_id = $BOOK")"
np_expect_eq "chapter 1 is index.html" "index.html" "$(q "SELECT source FROM chapters WHERE book_id = $BOOK AND position = 1")"
np_expect_eq "the manual's order: preface, then What Is PostgreSQL?" "preface.html intro-whatis.html" \
	"$(q "SELECT string_agg(source, ' ' ORDER BY position) FROM chapters WHERE book_id = $BOOK AND position IN (2, 3)")"
np_expect_eq "Routine Vacuuming follows its chapter page" "maintenance.html routine-vacuuming.html" \
	"$(q "SELECT string_agg(source, ' ' ORDER BY position) FROM chapters WHERE book_id = $BOOK AND position BETWEEN
		(SELECT position FROM chapters WHERE book_id = $BOOK AND source = 'maintenance.html') AND
		(SELECT position FROM chapters WHERE book_id = $BOOK AND source = 'maintenance.html') + 1")"
np_expect_eq "a chapter's title is its page's" "25.1. Routine Vacuuming" \
	"$(q "SELECT title FROM chapters WHERE book_id = $BOOK AND source = 'routine-vacuuming.html'")"
NPASS=$(q "SELECT count(*) FROM passages p JOIN chapters c ON c.id = p.chapter_id WHERE c.book_id = $BOOK")
np_expect "thousands of passages ($NPASS)" test "$NPASS" -gt 3000
np_expect "import printed what it inserted" has first "passages: $NPASS inserted, 0 deleted"
WORDS="array_length(regexp_split_to_array(btrim(p.body, E' \\n\\t'), E'\\\\s+'), 1)"
np_expect_eq "every passage has 1..300 words" "0" \
	"$(q "SELECT count(*) FROM passages p JOIN chapters c ON c.id = p.chapter_id WHERE c.book_id = $BOOK AND NOT ($WORDS BETWEEN 1 AND 300)")"
SHORT=$(q "SELECT count(*) FROM passages p JOIN chapters c ON c.id = p.chapter_id WHERE c.book_id = $BOOK AND $WORDS < 80")
np_expect "most passages have at least 80 words ($SHORT of $NPASS fewer)" test "$((SHORT * 10))" -lt "$NPASS"
np_expect_eq "no navigation chrome (Prev/Up/Home/Next) in the text" 0 \
	"$(q "SELECT count(*) FROM passages p JOIN chapters c ON c.id = p.chapter_id WHERE c.book_id = $BOOK AND p.body ~ 'Prev +Up +(Home|Next)'")"
# (a page may show an entity as text: "&amp;lt;" in its HTML; those pages are left out)
LITERAL=$(cd "$MANUAL" && grep -lE '&amp;(amp|lt|gt|quot);' -- *.html | sed "s/.*/'&'/" | paste -sd, -)
np_expect_eq "entities are decoded (no &amp; &lt; &gt; &quot; left outside ${LITERAL:-no page})" 0 \
	"$(q "SELECT count(*) FROM passages p JOIN chapters c ON c.id = p.chapter_id WHERE c.book_id = $BOOK
		AND p.body ~ '&(amp|lt|gt|quot);' AND c.source NOT IN (${LITERAL:-''})")"
np_expect "UTF-8 text is kept (© in the copyright line)" test "$(q "SELECT count(*) FROM passages p
	JOIN chapters c ON c.id = p.chapter_id WHERE c.book_id = $BOOK AND c.source = 'legalnotice.html' AND p.body LIKE '%Portions Copyright © 1996%'")" -ge 1
np_expect "code keeps its line breaks (SAVEPOINT's example)" test "$(q "SELECT count(*) FROM passages p JOIN chapters c ON c.id = p.chapter_id
	WHERE c.book_id = $BOOK AND c.source = 'sql-savepoint.html' AND p.body LIKE E'%BEGIN;\\n    INSERT INTO table1 VALUES (1);\\n    SAVEPOINT my_savepoint;%'")" -ge 1
np_expect "headings are kept with their passages" test "$(q "SELECT count(*) FROM passages p JOIN chapters c ON c.id = p.chapter_id
	WHERE c.book_id = $BOOK AND c.source = 'routine-vacuuming.html' AND p.heading = '25.1.1. Vacuuming Basics'")" -ge 1
np_expect "the heading weighs in the search vector" test "$(q "SELECT count(*) FROM passages p JOIN chapters c ON c.id = p.chapter_id
	WHERE c.book_id = $BOOK AND p.tsv @@ to_tsquery('english', 'vacuum:A')")" -ge 1
np_expect "the seeded books are untouched" test "$(q "SELECT count(*) FROM books WHERE slug LIKE 'sample-book-%'")" -eq 2

# --- a second run changes nothing --------------------------------------------------------------
BEFORE=$(state "$SLUG")
imp second "$MANUAL" --slug "$SLUG" --title "$TITLE" --author "$AUTHOR"
np_expect_eq "second import exits 0" 0 "$RC"
np_expect "second import reports 0 changed rows" has second "changed rows: 0"
np_expect "second import: all chapters unchanged" has second "chapters: 0 inserted, 0 deleted, $NPAGES unchanged"
np_expect_eq "second import: the same rows with the same xmin" "$BEFORE" "$(state "$SLUG")"

# --- one changed page: only its chapter is replaced ------------------------------------------
COPY=$NP_TMP/manual-copy
mkdir -p "$COPY"
cp "$MANUAL"/*.html "$COPY/"
sed -i 's|databases require periodic|databases require regular and periodic|' "$COPY/routine-vacuuming.html"
imp changed "$COPY" --slug "$SLUG" --title "$TITLE" --author "$AUTHOR"
np_expect_eq "import of a changed page exits 0" 0 "$RC"
np_expect "only that chapter is replaced" has changed "chapters: 1 inserted, 1 deleted, $((NPAGES - 1)) unchanged"
np_expect_eq "the new text is there" 1 "$(q "SELECT count(*) FROM passages p JOIN chapters c ON c.id = p.chapter_id
	WHERE c.book_id = $BOOK AND p.body LIKE '%require regular and periodic%'")"
imp restore "$MANUAL" --slug "$SLUG" --title "$TITLE" --author "$AUTHOR"
np_expect_eq "import of the original again exits 0" 0 "$RC"
np_expect "the original chapter is back" has restore "chapters: 1 inserted, 1 deleted, $((NPAGES - 1)) unchanged"

# --- the book row: a new title is one changed row; SQL metacharacters are stored verbatim -----------
ODD="PostgreSQL's 15 \"Docs\"; DROP TABLE books; -- ✓ 📘"
imp retitle "$MANUAL" --slug "$SLUG" --title "$ODD" --author "$AUTHOR"
np_expect_eq "a new title: exit 0" 0 "$RC"
np_expect "a new title changes one row" has retitle "changed rows: 1"
np_expect_eq "the title is stored verbatim" "$ODD" "$(q "SELECT title FROM books WHERE id = $BOOK")"
imp retitle-back "$MANUAL" --slug "$SLUG" --title "$TITLE" --author "$AUTHOR"
np_expect "the title back: one changed row" has retitle-back "changed rows: 1"
BEFORE=$(state "$SLUG")

# --- two imports of one new book at once: the book's row lock serializes them ------------------
SMALL=$NP_TMP/manual-small
mkdir -p "$SMALL"
cp "$MANUAL"/index.html "$MANUAL"/preface.html "$MANUAL"/intro-whatis.html "$SMALL/"
imp conc-a "$SMALL" --slug pg-small & pa=$!
imp conc-b "$SMALL" --slug pg-small & pb=$!
wait "$pa"
wait "$pb"
np_expect_eq "both concurrent imports exit 0" "0 0" "$(cat "$NP_TMP/out/conc-a.rc") $(cat "$NP_TMP/out/conc-b.rc")"
np_expect_eq "one inserted the 3 chapters, the other changed nothing" "0 7" \
	"$(sed -n 's/^import: changed rows: //p' "$NP_TMP/out/conc-a.out" "$NP_TMP/out/conc-b.out" | sort -n | paste -sd ' ' -)"
np_expect_eq "the small book has its 3 chapters once" "1 3" \
	"$(q "SELECT count(DISTINCT b.id) || ' ' || count(*) FROM books b JOIN chapters c ON c.book_id = b.id WHERE b.slug = 'pg-small'")"

# --- a bad page: the error names it, exit 1, nothing written --------------------------------
BAD=$NP_TMP/manual-bad
mkdir -p "$BAD"
cp "$MANUAL"/index.html "$MANUAL"/preface.html "$MANUAL"/intro-whatis.html "$BAD/"
printf '<html><head><title>Bad \xff\xfe page</title></head><body><p>text</p></body></html>\n' >"$BAD/bad-utf8.html"
imp bad "$BAD" --slug postgresql-bad --title "Bad"
np_expect_eq "a page with invalid UTF-8: exit 1" 1 "$RC"
np_expect "the error names the file and says why" grep -qE "bad-utf8\.html:1: invalid UTF-8" "$NP_TMP/out/bad.err"
np_expect_eq "no book was created" 0 "$(q "SELECT count(*) FROM books WHERE slug = 'postgresql-bad'")"
imp bad-into "$BAD" --slug "$SLUG" --title "$TITLE" --author "$AUTHOR"
np_expect_eq "the bad folder into the manual's slug: exit 1" 1 "$RC"
np_expect_eq "the manual is untouched" "$BEFORE" "$(state "$SLUG")"

rm "$BAD/bad-utf8.html"
printf '<html><head><title>Cut</title></head><body><p>text <a href="x' >"$BAD/cut.html"
imp cut "$BAD" --slug postgresql-bad
np_expect_eq "an unterminated tag: exit 1" 1 "$RC"
np_expect "the error names the file and the line" grep -qE "cut\.html:1: unterminated tag" "$NP_TMP/out/cut.err"
rm "$BAD/cut.html"
head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$BAD/huge.html"
imp huge "$BAD" --slug postgresql-bad
np_expect_eq "a page over the size limit: exit 1" 1 "$RC"
np_expect "the error names the file and the limit" grep -qE "huge\.html: larger than the limit of [0-9]+ bytes" "$NP_TMP/out/huge.err"
rm "$BAD/huge.html"
{ printf '<html><head><title>Blob</title></head><body><p>'; head -c 100000 /dev/zero | tr '\0' 'x'; printf '</p></body></html>'; } >"$BAD/blob.html"
imp blob "$BAD" --slug postgresql-bad
np_expect_eq "a page whose passage is a 100 kB word: exit 1" 1 "$RC"
np_expect "the error names the file and the passage" grep -qE "blob\.html: passage 1 has [0-9]+ bytes, more than the limit" "$NP_TMP/out/blob.err"
rm "$BAD/blob.html"
printf '<html><body><p>no title anywhere</p></body></html>' >"$BAD/untitled.html"
imp untitled "$BAD" --slug postgresql-bad
np_expect_eq "a page without a title: exit 1" 1 "$RC"
np_expect "the error names the file" grep -qE "untitled\.html: no title" "$NP_TMP/out/untitled.err"
rm "$BAD/untitled.html"
ln -s /etc/passwd "$BAD/link.html"
imp link "$BAD" --slug postgresql-bad
np_expect_eq "a symbolic link: exit 1" 1 "$RC"
np_expect "the error names the link" grep -qF "link.html: a symbolic link (not followed)" "$NP_TMP/out/link.err"
rm "$BAD/link.html"
np_expect_eq "still no partial book" 0 "$(q "SELECT count(*) FROM books WHERE slug = 'postgresql-bad'")"
imp nodir "$NP_TMP/no-such-dir" --slug postgresql-bad
np_expect_eq "a missing folder: exit 1" 1 "$RC"
imp badslug "$MANUAL" --slug 'Bad Slug;--'
np_expect_eq "a bad slug: exit 1" 1 "$RC"
np_expect "the error names --slug" has badslug "--slug"

# --- the API serves the book ------------------------------------------------------------------
np_curl "/api/v1/books/$BOOK"
np_expect_eq "GET the book: 200" 200 "$NP_STATUS"
np_expect_eq "the book's title" "$TITLE" "$(np_json_get "$NP_TMP/http.body" 'd["title"]')"
np_expect_eq "all $NPAGES chapters, in order" "$NPAGES True" \
	"$(np_json_get "$NP_TMP/http.body" '"%d %s" % (len(d["chapters"]), [c["position"] for c in d["chapters"]] == list(range(1, len(d["chapters"]) + 1)))')"
q "SELECT title FROM chapters WHERE book_id = $BOOK ORDER BY position" >"$NP_TMP/out/titles.db"
np_json_get "$NP_TMP/http.body" '"\n".join(c["title"] for c in d["chapters"])' >"$NP_TMP/out/titles.api"
np_expect "the chapters' titles are the pages' titles, in the manual's order" \
	bash -c "[ \$(grep -c . '$NP_TMP/out/titles.api') -eq $NPAGES ] && cmp -s '$NP_TMP/out/titles.db' '$NP_TMP/out/titles.api'"
np_expect_eq "chapter 3's title" "1. What Is PostgreSQL?" "$(np_json_get "$NP_TMP/http.body" 'd["chapters"][2]["title"]')"
PID=$(q "SELECT p.id FROM passages p JOIN chapters c ON c.id = p.chapter_id WHERE c.book_id = $BOOK AND c.source = 'routine-vacuuming.html' ORDER BY p.position LIMIT 1")
np_curl "/api/v1/passages/$PID"
np_expect_eq "GET one of its passages: 200" 200 "$NP_STATUS"
np_expect "the passage's text" bash -c "grep -q 'require periodic' '$NP_TMP/http.body'"
np_finish
