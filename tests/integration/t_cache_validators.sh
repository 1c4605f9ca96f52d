#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_cache_validators.sh - HTTP caching's validators: every content route (books, a book, a chapter, a passage, search) answers an ETag "<format>-<generation>" and Cache-Control public with max-age, stale-while-revalidate and stale-if-error; If-None-Match with the current tag is 304 and the server runs no statement for it (counted in PostgreSQL's own statement log); an older tag, another format's tag or a changed generation is a 200; a statement that changes content bumps the generation and one that changes nothing does not; every private, admin and error answer is Cache-Control: no-store without an ETag.
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

NP_SEED_BOOKS=3
np_db_start workers=2 budget=2 min_warm=2 content_max_age_s=60 content_stale_while_revalidate_s=30 \
	content_stale_if_error_s=600
want_cc="public, max-age=60, stale-while-revalidate=30, stale-if-error=600"

b=$NP_BOOK_MIN p=$NP_PASSAGE_MIN
word=$(np_psql_super -d neonpool -At -c "SELECT split_part(body, ' ', 2) FROM passages WHERE id = $p")
content=("/api/v1/books" "/api/v1/books?limit=2&offset=1" "/api/v1/books/$b" "/api/v1/books/$b/chapters/1"
	"/api/v1/books/$b/chapters/2?limit=3&after=3" "/api/v1/passages/$p" "/api/v1/search?q=$word"
	"/api/v1/search?q=$word&book=$b")
gen=$(np_psql_super -d neonpool -At -c "SELECT generation FROM np_content_generation")
# hdrs NAME...: the last answer's headers NAME..., joined with |, in one pass (in bash: the awk,
# tr and paste it ran were four processes a call)
hdrs() {
	local -A got=()
	local line h v n out="" sep=""
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		[[ $line == *:* ]] || continue
		h=${line%%:*}; h=${h,,}
		v=${line#*:}; v=${v#"${v%%[! $'\t']*}"}
		[ -v "got[$h]" ] || got[$h]=$v
	done <"$NP_TMP/http.headers"
	for n in "$@"; do
		n=${n,,}
		out+=$sep${got[$n]:-}
		sep="|"
	done
	printf '%s' "$out"
}
tag="\"1-$gen\""

# --- every content route: 200, the tag of the current generation, the configured freshness ---
for u in "${content[@]}"; do
	np_curl "$u"
	np_expect_eq "$u: 200 with ETag $tag and Cache-Control '$want_cc', no Vary" "200|$tag|$want_cc|" \
		"$NP_STATUS|$(hdrs ETag Cache-Control Vary)"
done
np_curl "/api/v1/books/$b/chapters/1" -I
np_expect_eq "HEAD of a chapter: the same validator and freshness" "200|$tag|$want_cc" "$NP_STATUS|$(hdrs ETag Cache-Control)"

# --- 304 from shared memory: no statement at the server ---------------------------------------
# PostgreSQL logs every statement from now on; a content statement names books or passages
np_psql_super -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
pglog=$NP_TMP/pg/postgresql.log
content_stmts() { tail -c +$(($1 + 1)) "$pglog" | grep -E 'statement: |execute [^:]*: ' | grep -cE 'books|passages'; }
sleep 0.5
# the workers read the generation between requests once content is asked for (at most 1 s)
np_now_ms; deadline=$((NP_NOW + 5000))
while :; do
	np_curl "/api/v1/books/$b/chapters/1" -H "If-None-Match: $tag"
	[ "$NP_STATUS" = 304 ] && break
	np_now_ms; [ "$NP_NOW" -ge "$deadline" ] && break
	sleep 0.2
done
np_expect_eq "If-None-Match with the current tag: 304 once the generation is in shared memory" 304 "$NP_STATUS"
mark=$(stat -c %s "$pglog")
n304=0 total=0
for round in 1 2; do
	for u in "${content[@]}"; do
		rm -f "$NP_TMP/http.body" # curl writes no file for an answer without a body
		np_curl "$u" -H "If-None-Match: $tag"
		total=$((total + 1))
		[ "$NP_STATUS|$(hdrs ETag Cache-Control)" = "304|$tag|$want_cc" ] &&
			[ ! -s "$NP_TMP/http.body" ] && n304=$((n304 + 1))
	done
done
sleep 0.3
np_expect_eq "$total conditional requests over every content route: 304 with ETag and Cache-Control, no body" \
	"$total" "$n304"
np_expect_eq "... and PostgreSQL logged no content statement for them" 0 "$(content_stmts "$mark")"
np_measure cache_304_of_conditional "$n304/$total"
np_curl "/api/v1/books/$b/chapters/1" -H "If-None-Match: W/$tag"
np_expect_eq "a weak tag compares equal (If-None-Match uses the weak comparison)" 304 "$NP_STATUS"
np_curl "/api/v1/passages/$p" -H "If-None-Match: \"1-1\", $tag"
np_expect_eq "a list naming the current tag: 304" 304 "$NP_STATUS"
# the counting sees statements: the same routes without a validator run one each
mark=$(stat -c %s "$pglog")
for u in "${content[@]}"; do np_curl "$u"; done
sleep 0.3
np_expect "without If-None-Match the same ${#content[@]} requests ran ${#content[@]} content statements" \
	test "$(content_stmts "$mark")" -ge "${#content[@]}"

np_curl "/api/v1/books/$b" -H 'If-None-Match: "1-1"'
np_expect_eq "an old generation's tag: 200 with the current tag" "200|$tag" "$NP_STATUS|$(hdrs ETag)"
np_curl "/api/v1/books/$b" -H "If-None-Match: \"2-$gen\""
np_expect_eq "another format version's tag: 200" 200 "$NP_STATUS"
np_curl "/api/v1/books/$b" -H 'If-None-Match: *'
np_expect_eq "If-None-Match: * on a book that exists: 304" 304 "$NP_STATUS"
np_curl "/api/v1/books/999999999" -H 'If-None-Match: *'
np_expect_eq "If-None-Match: * on a book that does not: 404, no-store, no ETag" "404|no-store|" \
	"$NP_STATUS|$(hdrs Cache-Control ETag)"

# --- the generation moves with the content, and only then ---------------------------------------
np_psql_super -d neonpool -c "UPDATE passages SET body = body WHERE false" >/dev/null
np_expect_eq "a statement that changed no row leaves the generation" "$gen" \
	"$(np_psql_super -d neonpool -At -c "SELECT generation FROM np_content_generation")"
np_psql_super -d neonpool -c "UPDATE passages SET body = body || ' (revised)' WHERE id = $p" >/dev/null
gen2=$(np_psql_super -d neonpool -At -c "SELECT generation FROM np_content_generation")
np_expect "an update of a passage bumps it" test "$gen2" -gt "$gen"
np_now_ms; t0=$NP_NOW
while :; do
	np_curl "/api/v1/passages/$p" -H "If-None-Match: $tag"
	[ "$NP_STATUS" = 200 ] && break
	np_now_ms; [ "$NP_NOW" -ge $((t0 + 5000)) ] && break
	sleep 0.05
done
np_now_ms
np_expect_eq "after the change the old tag gets the new body and tag" "200|\"1-$gen2\"|yes" \
	"$NP_STATUS|$(np_http_header ETag)|$(grep -q '(revised)' "$NP_TMP/http.body" && echo yes)"
np_expect "... within the stated bound (2 s, the generation's trust in shared memory)" test $((NP_NOW - t0)) -le 2500
np_measure cache_change_seen_ms $((NP_NOW - t0))
for t in books chapters; do
	before=$(np_psql_super -d neonpool -At -c "SELECT generation FROM np_content_generation")
	np_psql_super -d neonpool -c "UPDATE $t SET title = title || '.' WHERE id = (SELECT min(id) FROM $t)" >/dev/null
	np_expect "an update of $t bumps it" test "$(np_psql_super -d neonpool -At -c "SELECT generation FROM np_content_generation")" -gt "$before"
done

# --- no-store on every private, admin and error answer ------------------------------------------
tag=$(curl -s -D - -o /dev/null "http://127.0.0.1:$NP_HTTP_PORT/api/v1/books" | sed -n 's/^[Ee][Tt][Aa][Gg]: *\([^\r]*\).*/\1/p')
nostore() { # DESC: the last answer is no-store without an ETag
	np_expect_eq "$1: Cache-Control: no-store, no ETag" "no-store|" "$(hdrs Cache-Control ETag)"
}
np_curl /api/v1/sessions -X POST -H "If-None-Match: $tag"
np_expect_eq "sessions.create: 201" 201 "$NP_STATUS"
nostore "sessions.create"
read -r sid tok < <(np_json_get "$NP_TMP/http.body" 'd["id"], d["token"]' | tr -d "(),'")
echo "$tok" >>"$NP_TMP/out/tokens"
auth=(-H "Authorization: Bearer $tok" -H "If-None-Match: $tag")
np_curl "/api/v1/sessions/$sid/messages" -X POST "${auth[@]}" -H 'Content-Type: application/json' \
	--data '{"role":"user","content":"hello"}'
np_expect_eq "messages.create: 201" 201 "$NP_STATUS"
nostore "messages.create"
mid=$(np_json_get "$NP_TMP/http.body" 'd["id"]')
np_curl "/api/v1/sessions/$sid/messages" "${auth[@]}"
np_expect_eq "messages.list: 200 (not 304, whatever the tag)" 200 "$NP_STATUS"
nostore "messages.list"
np_curl "/api/v1/messages/$mid/feedback" -X POST "${auth[@]}" -H 'Content-Type: application/json' --data '{"rating":1}'
nostore "feedback.create ($NP_STATUS)"
np_curl "/api/v1/sessions/$sid/ask" -X POST "${auth[@]}" -H 'Content-Type: application/json' \
	-H 'Accept: application/json' --data "{\"question\":\"$word\"}"
nostore "ask ($NP_STATUS)"
np_curl "/api/v1/sessions/$sid/ask/1/cancel" -X POST "${auth[@]}"
nostore "ask.cancel ($NP_STATUS)"
np_curl "/api/v1/sessions/$sid" -X DELETE "${auth[@]}"
nostore "sessions.delete ($NP_STATUS)"
for u in /metrics /status /healthz /readyz /api/v1/version; do
	np_curl "$u" -H "If-None-Match: $tag"
	nostore "$u ($NP_STATUS)"
done
# (an error is answered to a tag only a 200 of that URL could have given: an old one here)
for u in "/api/v1/books/999999999" "/api/v1/books/$b/chapters/999" "/api/v1/passages/x" "/api/v1/search" \
	"/api/v1/books?limit=0" "/api/v1/nothing"; do
	np_curl "$u" -H 'If-None-Match: "1-1"'
	nostore "error $u ($NP_STATUS)"
done
np_curl "/api/v1/books" -X POST -H "If-None-Match: $tag"
nostore "POST on a content route ($NP_STATUS)"
np_finish
