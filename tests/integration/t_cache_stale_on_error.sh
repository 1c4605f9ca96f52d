#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_cache_stale_on_error.sh - nginx's content cache (contrib/nginx/neonpool.conf with its cache on): with PostgreSQL stopped a chapter and a passage read before are served 200 from the cache with X-Cache-Status: STALE, the same bytes as before, while a chapter never read gets the daemon's JSON 503 db_unavailable with Retry-After and no-store; private routes are never cached; once the database is back, a chapter changed by `neonpoolctl import` is served new through the cache within content_max_age_s + 2 s.
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

export NP_NGINX_CACHE=1
NP_SEED_BOOKS=1
max_age=2
np_db_start workers=2 budget=2 min_warm=1 content_max_age_s=$max_age content_stale_while_revalidate_s=1 \
	breaker_failures=1 breaker_probe_ms=100 retry_after_s=3

# a small book of three pages, imported like the manual
dir=$NP_TMP/book
mkdir -p "$dir"
words=$(for i in $(seq 1 90); do printf 'word%d ' "$i"; done)
page() { # FILE TITLE TEXT [NEXT]
	printf '<!DOCTYPE html>\n<html><head><title>%s</title>%s</head><body><h1>%s</h1><p>%s %s</p></body></html>\n' \
		"$2" "${4:+<link rel=\"next\" href=\"$4\">}" "$2" "$3" "$words" >"$dir/$1"
}
page index.html "Cache book" "The index page of a book about caches." one.html
page one.html "Chapter one" "Chapter one says the first thing, version one." two.html
page two.html "Chapter two" "Chapter two was never read before the outage."
"$NEONPOOLCTL" -c "$NP_CTL_CONF" import "$dir" --slug cache-book --title "Cache book" >"$NP_TMP/out/import1.out" 2>&1 ||
	np_fail "import failed: $(cat "$NP_TMP/out/import1.out")"
book=$(np_psql_super -d neonpool -At -c "SELECT id FROM books WHERE slug = 'cache-book'")
pid=$(np_psql_super -d neonpool -At -c "SELECT min(p.id) FROM passages p JOIN chapters c ON c.id = p.chapter_id WHERE c.book_id = $book")
read_url=/api/v1/books/$book/chapters/2 unread_url=/api/v1/books/$book/chapters/3 passage_url=/api/v1/passages/$pid

np_curl "$read_url"
np_expect_eq "first read of a chapter: 200 from the daemon (MISS)" "200 MISS" "$NP_STATUS $(np_http_header X-Cache-Status)"
cp "$NP_TMP/http.body" "$NP_TMP/out/read.before"
np_curl "$read_url"
np_expect_eq "second read: from the cache (HIT)" "200 HIT" "$NP_STATUS $(np_http_header X-Cache-Status)"
np_curl "$passage_url"
cp "$NP_TMP/http.body" "$NP_TMP/out/passage.before"
np_curl "/api/v1/books/$book/chapters/2?limit=1"
np_expect_eq "the query string is part of the key: another page is a MISS" "200 MISS" \
	"$NP_STATUS $(np_http_header X-Cache-Status)"
# private routes are never cached: the same session list twice reaches the daemon twice
np_session
for i in 1 2; do np_curl "/api/v1/sessions/$sid/messages" -H "Authorization: Bearer $tok"; done
np_expect_eq "a private route: no X-Cache-Status (not in the cached location), no-store" "200||no-store" \
	"$NP_STATUS|$(np_http_header X-Cache-Status)|$(np_http_header Cache-Control)"
np_expect_eq "nothing private in the cache directory" 0 \
	"$(grep -rl "sessions/$sid" "$NP_TMP/nginx/cache" 2>/dev/null | wc -l)"

# --- the outage: the copies are older than max-age by now ------------------------------------------
sleep $((max_age + 1))
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" stop -m fast >"$NP_TMP/out/pgstop.out" 2>&1 || np_fail "pg_ctl stop failed"
np_log "PostgreSQL stopped"
# For up to 2 s the daemon may still answer nginx's revalidation 304 from the generation it read
# before the stop (the copy is then fresh again for max-age: HIT); past that and the copy's
# max-age, nginx can only serve it STALE. Every answer meanwhile must be the copy.
same=0 n=0
np_now_ms; t0=$NP_NOW
while :; do
	np_curl "$read_url"
	got="$NP_STATUS $(np_http_header X-Cache-Status) $(cmp -s "$NP_TMP/http.body" "$NP_TMP/out/read.before" && echo same)"
	n=$((n + 1))
	[ "${got#200 }" != "$got" ] && [ "${got% same}" != "$got" ] && same=$((same + 1))
	np_now_ms; [ "$NP_NOW" -ge $((t0 + (max_age + 2) * 1000 + 1000)) ] && break
	sleep 0.25
done
np_expect_eq "database down: $n reads of the chapter read before over $((NP_NOW - t0)) ms: 200 with the same bytes" "$n" "$same"
# STALE, or UPDATING when the background revalidation an earlier read started (background_update
# on) is still in flight: nginx then serves the same stale copy under that name (seen once in a
# fresh-clone run: "200 UPDATING same"). At least one of the four reads is STALE.
stale=0
for i in 1 2 3; do
	np_curl "$read_url"
	got="$NP_STATUS $(np_http_header X-Cache-Status) $(cmp -s "$NP_TMP/http.body" "$NP_TMP/out/read.before" && echo same)"
	[ "$got" = "200 STALE same" ] && stale=$((stale + 1))
	np_expect_eq "database down: the chapter read before, 200 STALE (or UPDATING) with the same bytes" "200 STALE same" \
		"${got/ UPDATING / STALE }"
done
np_curl "$passage_url"
got="$NP_STATUS $(np_http_header X-Cache-Status) $(cmp -s "$NP_TMP/http.body" "$NP_TMP/out/passage.before" && echo same)"
[ "$got" = "200 STALE same" ] && stale=$((stale + 1))
np_expect_eq "database down: the passage read before, 200 STALE (or UPDATING)" "200 STALE same" "${got/ UPDATING / STALE }"
np_expect "database down: X-Cache-Status STALE in $stale of the 4 reads (at least 1)" test "$stale" -ge 1
np_curl "$unread_url"
np_expect_eq "database down: a chapter never read: the daemon's JSON 503 db_unavailable, Retry-After 3, no-store" \
	"503 db_unavailable 3 no-store" \
	"$NP_STATUS $(np_json_get "$NP_TMP/http.body" 'd["error"]["code"]') $(np_http_header Retry-After) $(np_http_header Cache-Control)"
np_curl "$unread_url"
np_expect_eq "... and the 503 was not stored: asked again, the daemon answers again" "503 MISS" \
	"$NP_STATUS $(np_http_header X-Cache-Status)"

np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" -l "$NP_TMP/pg/postgresql.log" -w start >"$NP_TMP/out/pgstart.out" 2>&1 ||
	np_fail "pg_ctl start failed"
np_wait_db_ready 20
np_now_ms; t0=$NP_NOW
while :; do
	np_curl "$unread_url"
	[ "$NP_STATUS" = 200 ] && break
	np_now_ms; [ "$NP_NOW" -ge $((t0 + 10000)) ] && break
	sleep 0.1
done
np_expect_eq "database back: the unread chapter answers 200" 200 "$NP_STATUS"

# --- an import that changes the chapter is seen through the cache within max-age + 2 s ------------
np_curl "$read_url"
np_curl "$read_url"
np_log "before the import: $(np_http_header X-Cache-Status) $(np_http_header ETag)"
page one.html "Chapter one" "Chapter one says the first thing, version two." two.html
np_now_ms; t0=$NP_NOW
"$NEONPOOLCTL" -c "$NP_CTL_CONF" import "$dir" --slug cache-book --title "Cache book" >"$NP_TMP/out/import2.out" 2>&1 ||
	np_fail "import failed: $(cat "$NP_TMP/out/import2.out")"
np_now_ms; t1=$NP_NOW
seen=0
while :; do
	np_curl "$read_url"
	grep -q 'version two' "$NP_TMP/http.body" && { seen=1; break; }
	np_now_ms; [ "$NP_NOW" -ge $((t1 + (max_age + 2) * 1000 + 3000)) ] && break
	sleep 0.1
done
np_now_ms
np_expect_eq "the changed chapter is served through the cache" 1 "$seen"
np_log "import took $((t1 - t0)) ms; the new chapter seen $((NP_NOW - t1)) ms after it committed ($(np_http_header X-Cache-Status))"
np_expect "... within content_max_age_s + 2 s (+ 0.5 s for polling)" test $((NP_NOW - t1)) -le $(((max_age + 2) * 1000 + 500))
np_measure cache_import_seen_ms $((NP_NOW - t1)) "content_max_age_s=$max_age"
np_finish
