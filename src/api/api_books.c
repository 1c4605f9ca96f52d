/* SPDX-License-Identifier: PostgreSQL */
/* api_books.c - the textbook read routes: books, a book with its chapters, a passage. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_cache.h"
#include "db.h"
#include "http.h"
#include "util.h"

/* The last column of every content statement is the content's generation (migration 008), read
 * in the same snapshot as the rows: the answer's ETag (api_cache.c). The book list always has one
 * row: NULL book columns when the page is empty. */
static const struct np_stmt stmt_books_list = {
	0, "np_books_list",
	"SELECT b.id, b.slug, b.title, b.author, b.language, g.generation FROM np_content_generation g "
	"LEFT JOIN LATERAL (SELECT id, slug, title, author, language FROM books ORDER BY id LIMIT $1 OFFSET $2) b "
	"ON true WHERE g.id = 1 ORDER BY b.id", 2, 0
};
/* the book and its chapters in one round trip. The chapter list is PostgreSQL's JSON, put into the
 * answer as it is (cJSON raw): a bigint id comes out of json_build_object as exact digits, and
 * parsing it only to print it again cost 100k instructions of a book request's 160k (callgrind,
 * 301 requests of 50 chapters each: cJSON_Parse 46.6k and its re-printing 53.6k per request). */
static const struct np_stmt stmt_book_get = {
	1, "np_book_get",
	"SELECT b.id, b.slug, b.title, b.author, b.language, "
	"COALESCE(json_agg(json_build_object('id', c.id, 'position', c.position, 'title', c.title) "
	"ORDER BY c.position) FILTER (WHERE c.id IS NOT NULL), '[]'::json), "
	"(SELECT generation FROM np_content_generation WHERE id = 1) "
	"FROM books b LEFT JOIN chapters c ON c.book_id = b.id WHERE b.id = $1 GROUP BY b.id", 1, 0
};
static const struct np_stmt stmt_passage_get = {
	2, "np_passage_get",
	"SELECT p.id, p.chapter_id, c.book_id, p.position, p.body, "
	"(SELECT generation FROM np_content_generation WHERE id = 1) FROM passages p "
	"JOIN chapters c ON c.id = p.chapter_id WHERE p.id = $1", 1, 0
};

/* A book row as JSON; NULL when out of memory or the id is not an integer. */
static cJSON *api_book_json(PGresult *r, int row)
{
	cJSON *o = cJSON_CreateObject();
	if (o == NULL || !api_add_int(o, "id", PQgetvalue(r, row, 0)) ||
	    !cJSON_AddStringToObject(o, "slug", PQgetvalue(r, row, 1)) ||
	    !cJSON_AddStringToObject(o, "title", PQgetvalue(r, row, 2)) ||
	    !(PQgetisnull(r, row, 3) ? cJSON_AddNullToObject(o, "author")
	                             : cJSON_AddStringToObject(o, "author", PQgetvalue(r, row, 3))) ||
	    !cJSON_AddStringToObject(o, "language", PQgetvalue(r, row, 4))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* The chapter list the database built (a JSON array, see stmt_book_get), as a raw item; NULL when
 * it is not an array or out of memory. Without the blanks PostgreSQL puts after every key and
 * element: 8 bytes a chapter. */
static cJSON *api_chapters_json(const char *text)
{
	return text[0] == '[' ? http_json_raw_compact(text) : NULL;
}

void api_books_list(struct np_request *req, struct np_response *resp)
{
	int64_t limit, offset;
	if (api_int_param(req, resp, "limit", 20, 1, 100, &limit) < 0 ||
	    api_int_param(req, resp, "offset", 0, 0, 1000000, &offset) < 0)
		return;
	char l[24], o[24];
	snprintf(l, sizeof(l), "%lld", (long long)limit);
	snprintf(o, sizeof(o), "%lld", (long long)offset);
	const char *params[2] = { l, o };
	PGresult *r = db_query(req, resp, &stmt_books_list, params);
	if (!r)
		return;
	cJSON *root = cJSON_CreateObject();
	cJSON *arr = root ? cJSON_AddArrayToObject(root, "books") : NULL;
	bool ok = arr && http_json_add_int64(root, "limit", limit) && http_json_add_int64(root, "offset", offset) &&
	          PQntuples(r) >= 1 && api_cache_tag(resp, PQgetvalue(r, 0, 5));
	/* an empty page: one row of NULL book columns */
	int rows = PQntuples(r) >= 1 && PQgetisnull(r, 0, 0) ? 0 : PQntuples(r);
	for (int i = 0; ok && i < rows; i++) {
		cJSON *b = api_book_json(r, i);
		ok = b && cJSON_AddItemToArray(arr, b);
		if (!ok)
			cJSON_Delete(b);
	}
	PQclear(r);
	if (!ok) {
		cJSON_Delete(root);
		http_respond_error(resp, 500, "internal", "could not build the book list");
		return;
	}
	http_respond_json(resp, 200, root);
}

/* The one row of st for the path's {id}: NULL with resp set (400 invalid_id, 404 not_found, or the
 * database's error) when there is none. what names the resource in messages. */
static PGresult *api_row_by_id(struct np_request *req, struct np_response *resp, const struct np_stmt *st,
                               const char *what)
{
	char msg[64];
	const char *id = api_path_id(req, resp, "id", what, NULL);
	if (id == NULL)
		return NULL;
	const char *params[1] = { id };
	PGresult *r = db_query(req, resp, st, params);
	if (r && PQntuples(r) == 0) {
		PQclear(r);
		snprintf(msg, sizeof(msg), "no such %s", what);
		http_respond_error(resp, 404, "not_found", msg);
		return NULL;
	}
	return r;
}

void api_book_get(struct np_request *req, struct np_response *resp)
{
	PGresult *r = api_row_by_id(req, resp, &stmt_book_get, "book");
	if (!r)
		return;
	cJSON *book = api_book_json(r, 0);
	cJSON *chapters = api_chapters_json(PQgetvalue(r, 0, 5));
	bool tagged = api_cache_tag(resp, PQgetvalue(r, 0, 6));
	PQclear(r);
	if (!book || !chapters || !tagged || !cJSON_AddItemToObject(book, "chapters", chapters)) {
		cJSON_Delete(book);
		cJSON_Delete(chapters);
		http_respond_error(resp, 500, "internal", "malformed book or chapter list from the database");
		return;
	}
	http_respond_json(resp, 200, book);
}

void api_passage_get(struct np_request *req, struct np_response *resp)
{
	PGresult *r = api_row_by_id(req, resp, &stmt_passage_get, "passage");
	if (!r)
		return;
	cJSON *o = cJSON_CreateObject();
	bool ok = o && api_add_int(o, "id", PQgetvalue(r, 0, 0)) && api_add_int(o, "chapter_id", PQgetvalue(r, 0, 1)) &&
	          api_add_int(o, "book_id", PQgetvalue(r, 0, 2)) && api_add_int(o, "position", PQgetvalue(r, 0, 3)) &&
	          cJSON_AddStringToObject(o, "body", PQgetvalue(r, 0, 4)) && api_cache_tag(resp, PQgetvalue(r, 0, 5));
	PQclear(r);
	if (!ok) {
		cJSON_Delete(o);
		http_respond_error(resp, 500, "internal", "malformed passage from the database");
		return;
	}
	http_respond_json(resp, 200, o);
}
