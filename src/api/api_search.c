/* SPDX-License-Identifier: PostgreSQL */
/* api_search.c - full-text search over the passages: ranked hits with a highlighted snippet, their book and chapter. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_cache.h"
#include "db.h"
#include "http.h"
#include "query.h"

/* Bounds (documented in doc/design.md and the OpenAPI document). q is counted in code points. */
#define SEARCH_Q_MAX_CHARS 256
#define SEARCH_LIMIT_DEFAULT 10
#define SEARCH_LIMIT_MAX 50
#define SEARCH_OFFSET_MAX 1000

/* Rank every match through the GIN index (websearch_to_tsquery, ts_rank_cd), keep one page plus
 * one row (which says a next page exists), ties broken by passage id so that pages are stable;
 * then ts_headline only over the page's rows (it parses the whole passage: the costly part).
 * The heading (weight A in tsv, migration 002) comes as it is; the snippet is the body's. It
 * marks hits with \x02 and \x03, which api_snippet() turns into <mark> tags after escaping the
 * text. The first column says whether the book filter names a book: the query
 * always returns one row (NULL hit columns when nothing matched); its last column is the
 * content's generation (the ETag, api_cache.c).
 * $1 q, $2 book id or NULL, $3 limit, $4 offset. */
static const struct np_stmt stmt_search = {
	9, "np_search",
	"WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('english', $1) AS query), "
	"hits AS (SELECT p.id, p.chapter_id, ts_rank_cd(p.tsv, q.query) AS rank FROM q, passages p "
	"  WHERE p.tsv @@ q.query "
	"  AND ($2::bigint IS NULL OR p.chapter_id IN (SELECT id FROM chapters WHERE book_id = $2)) "
	"  ORDER BY rank DESC, p.id LIMIT $3::int + 1 OFFSET $4), "
	"page AS (SELECT h.*, row_number() OVER (ORDER BY h.rank DESC, h.id) AS n FROM hits h) "
	"SELECT $2::bigint IS NULL OR EXISTS (SELECT 1 FROM books WHERE id = $2), "
	"  g.id, g.rank, b.id, b.title, c.id, c.position, c.title, "
	"  CASE WHEN g.n <= $3 THEN ts_headline('english', p.body, q.query, "
	"    E'StartSel=\\x02, StopSel=\\x03, MaxWords=35, MinWords=15, ShortWord=3') END, p.heading, "
	"  a.generation "
	"FROM (SELECT generation FROM np_content_generation WHERE id = 1) a LEFT JOIN (page g JOIN passages p ON p.id = g.id "
	"  JOIN chapters c ON c.id = g.chapter_id JOIN books b ON b.id = c.book_id CROSS JOIN q) ON true "
	"ORDER BY g.n",
	4, 0
};

/* Code points of a valid UTF-8 string. */
static size_t api_utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static bool api_blank(const char *s)
{
	for (; *s; s++)
		if (!strchr(" \t\n\r\f\v", *s))
			return false;
	return true;
}

/* The headline as HTML-safe text: & < > " ' escaped, the \x02 \x03 marks as balanced <mark> tags.
 * malloc'd; NULL when out of memory. */
static char *api_snippet(const char *in)
{
	size_t n = strlen(in);
	char *out = malloc(n * 7 + 8), *o = out;
	if (out == NULL)
		return NULL;
	bool open = false;
	for (; *in; in++) {
		const char *rep = NULL;
		switch (*in) {
		case '\x02': rep = open ? "" : "<mark>"; open = true; break;
		case '\x03': rep = open ? "</mark>" : ""; open = false; break;
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: *o++ = *in; continue;
		}
		size_t l = strlen(rep);
		memcpy(o, rep, l);
		o += l;
	}
	if (open) {
		memcpy(o, "</mark>", 7);
		o += 7;
	}
	*o = '\0';
	return out;
}

static cJSON *api_hit_json(PGresult *r, int row)
{
	cJSON *o = cJSON_CreateObject(), *b = NULL, *c = NULL;
	char *snippet = api_snippet(PQgetvalue(r, row, 8));
	bool ok = o && snippet && api_add_int(o, "passage_id", PQgetvalue(r, row, 1)) &&
	          cJSON_AddNumberToObject(o, "rank", strtod(PQgetvalue(r, row, 2), NULL)) &&
	          cJSON_AddStringToObject(o, "heading", PQgetvalue(r, row, 9)) &&
	          cJSON_AddStringToObject(o, "snippet", snippet) && (b = cJSON_AddObjectToObject(o, "book")) &&
	          api_add_int(b, "id", PQgetvalue(r, row, 3)) && cJSON_AddStringToObject(b, "title", PQgetvalue(r, row, 4)) &&
	          (c = cJSON_AddObjectToObject(o, "chapter")) && api_add_int(c, "id", PQgetvalue(r, row, 5)) &&
	          api_add_int(c, "position", PQgetvalue(r, row, 6)) &&
	          cJSON_AddStringToObject(c, "title", PQgetvalue(r, row, 7));
	free(snippet);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* q: required, valid UTF-8 without NUL, not blank, at most SEARCH_Q_MAX_CHARS code points. */
static bool api_search_q(struct np_request *req, struct np_response *resp, char *q, size_t cap)
{
	char msg[128];
	enum query_status st = query_param(req->query, "q", q, cap, NULL);
	if (st == QUERY_FOUND && api_utf8_chars(q) > SEARCH_Q_MAX_CHARS)
		st = QUERY_TOO_LONG;
	switch (st) {
	case QUERY_FOUND:
		if (!api_blank(q))
			return true;
		snprintf(msg, sizeof(msg), "query parameter 'q' must not be empty");
		break;
	case QUERY_ABSENT:
		snprintf(msg, sizeof(msg), "query parameter 'q' is required");
		break;
	case QUERY_TOO_LONG:
		snprintf(msg, sizeof(msg), "query parameter 'q' must be at most %d characters", SEARCH_Q_MAX_CHARS);
		break;
	default:
		snprintf(msg, sizeof(msg), "query parameter 'q' is %s", query_status_text(st));
		break;
	}
	http_respond_error(resp, 400, "invalid_query", msg);
	return false;
}

void api_search(struct np_request *req, struct np_response *resp)
{
	/* room for SEARCH_Q_MAX_CHARS four-byte code points: anything longer is too long */
	char q[SEARCH_Q_MAX_CHARS * 4 + 1], book[32];
	int64_t limit, offset;
	if (!api_search_q(req, resp, q, sizeof(q)))
		return;
	int fb = api_str_param(req, resp, "book", "invalid_parameter", book, sizeof(book), NULL);
	if (fb < 0)
		return;
	if (fb == 1 && !api_path_int(book, INT64_MAX, NULL)) {
		http_respond_error(resp, 400, "invalid_parameter", "query parameter 'book' must be a book id (a positive integer)");
		return;
	}
	if (api_int_param(req, resp, "limit", SEARCH_LIMIT_DEFAULT, 1, SEARCH_LIMIT_MAX, &limit) < 0 ||
	    api_int_param(req, resp, "offset", 0, 0, SEARCH_OFFSET_MAX, &offset) < 0)
		return;
	char lim[24], off[24];
	snprintf(lim, sizeof(lim), "%lld", (long long)limit);
	snprintf(off, sizeof(off), "%lld", (long long)offset);
	const char *params[4] = { q, fb == 1 ? book : NULL, lim, off };
	PGresult *r = db_query(req, resp, &stmt_search, params);
	if (!r)
		return;
	int rows = PQntuples(r);
	if (rows < 1 || strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		PQclear(r);
		if (rows < 1)
			http_respond_error(resp, 500, "internal", "no answer row from the search");
		else
			http_respond_error(resp, 404, "not_found", "no such book");
		return;
	}
	int got = PQgetisnull(r, 0, 1) ? 0 : rows;
	bool more = got > limit;
	if (more)
		got = (int)limit;
	cJSON *o = cJSON_CreateObject(), *arr = NULL;
	bool ok = o && cJSON_AddStringToObject(o, "query", q) &&
	          (fb == 1 ? api_add_int(o, "book", book) : cJSON_AddNullToObject(o, "book") != NULL) &&
	          http_json_add_int64(o, "limit", limit) && http_json_add_int64(o, "offset", offset) &&
	          (arr = cJSON_AddArrayToObject(o, "results")) != NULL && api_cache_tag(resp, PQgetvalue(r, 0, 10));
	for (int i = 0; ok && i < got; i++) {
		cJSON *h = api_hit_json(r, i);
		ok = h && cJSON_AddItemToArray(arr, h);
		if (!ok)
			cJSON_Delete(h);
	}
	PQclear(r);
	/* the next page exists and is within the offset bound */
	if (ok)
		ok = more && offset + limit <= SEARCH_OFFSET_MAX ? http_json_add_int64(o, "next_offset", offset + limit)
		                                                 : cJSON_AddNullToObject(o, "next_offset") != NULL;
	if (!ok) {
		cJSON_Delete(o);
		http_respond_error(resp, 500, "internal", "malformed search result from the database");
		return;
	}
	http_respond_json(resp, 200, o);
}
