/* SPDX-License-Identifier: PostgreSQL */
/* api_chapters.c - a chapter of a book by its position, with its passages a page at a time. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "api_cache.h"
#include "db.h"
#include "http.h"

/* Page bounds (documented in doc/design.md and the OpenAPI document). */
#define CHAPTER_LIMIT_DEFAULT 20
#define CHAPTER_LIMIT_MAX 100
#define CHAPTER_OFFSET_MAX 100000
#define CHAPTER_POSITION_MAX 2147483647 /* int columns */

/* One round trip: the book (no row: no such book), its chapter at position $2 (NULL columns: no
 * such chapter), the chapter's passage count, and one page of passages, a row each (NULL when the
 * page is empty). $3 keyset (passages after that position, NULL for none), $4 limit + 1 (the
 * extra row says there is a next page), $5 offset. The last column is the content's generation
 * (the ETag, api_cache.c). */
static const struct np_stmt stmt_chapter_get = {
	8, "np_chapter_get",
	"SELECT c.id, c.title, k.n, p.id, p.position, p.body, p.heading, "
	"(SELECT generation FROM np_content_generation WHERE id = 1) "
	"FROM books b "
	"LEFT JOIN chapters c ON c.book_id = b.id AND c.position = $2 "
	"LEFT JOIN LATERAL (SELECT count(*) AS n FROM passages WHERE chapter_id = c.id) k ON true "
	"LEFT JOIN LATERAL (SELECT id, position, body, heading FROM passages "
	"  WHERE chapter_id = c.id AND ($3::int IS NULL OR position > $3) "
	"  ORDER BY position LIMIT $4 OFFSET $5) p ON true "
	"WHERE b.id = $1 ORDER BY p.position",
	5, 0
};

static cJSON *api_passage_row(PGresult *r, int row)
{
	cJSON *o = cJSON_CreateObject();
	if (o == NULL || !api_add_int(o, "id", PQgetvalue(r, row, 3)) ||
	    !api_add_int(o, "position", PQgetvalue(r, row, 4)) ||
	    !cJSON_AddStringToObject(o, "heading", PQgetvalue(r, row, 6)) ||
	    !cJSON_AddStringToObject(o, "body", PQgetvalue(r, row, 5))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

void api_chapter_get(struct np_request *req, struct np_response *resp)
{
	const char *id = api_path_id(req, resp, "id", "book", NULL), *n = router_param(&req->match, "n");
	int64_t position, limit, offset, after;
	if (id == NULL)
		return;
	if (!api_path_int(n, CHAPTER_POSITION_MAX, &position)) {
		http_respond_error(resp, 400, "invalid_parameter",
		                   "chapter number 'n' must be an integer from 1 to 2147483647");
		return;
	}
	if (api_int_param(req, resp, "limit", CHAPTER_LIMIT_DEFAULT, 1, CHAPTER_LIMIT_MAX, &limit) < 0 ||
	    api_int_param(req, resp, "offset", -1, 0, CHAPTER_OFFSET_MAX, &offset) < 0 ||
	    api_int_param(req, resp, "after", -1, 0, CHAPTER_POSITION_MAX, &after) < 0)
		return;
	if (offset >= 0 && after >= 0) {
		http_respond_error(resp, 400, "invalid_parameter",
		                   "query parameters 'after' and 'offset' exclude each other");
		return;
	}
	char pos[24], aft[24], lim[24], off[24];
	snprintf(pos, sizeof(pos), "%lld", (long long)position);
	snprintf(aft, sizeof(aft), "%lld", (long long)after);
	snprintf(lim, sizeof(lim), "%lld", (long long)limit + 1);
	snprintf(off, sizeof(off), "%lld", (long long)(offset < 0 ? 0 : offset));
	const char *params[5] = { id, pos, after >= 0 ? aft : NULL, lim, off };
	PGresult *r = db_query(req, resp, &stmt_chapter_get, params);
	if (!r)
		return;
	int rows = PQntuples(r);
	if (rows == 0 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		http_respond_error(resp, 404, "not_found", rows == 0 ? "no such book" : "no such chapter");
		return;
	}
	/* a NULL passage id: a row for the chapter alone (an empty page) */
	int got = PQgetisnull(r, 0, 3) ? 0 : rows;
	bool more = got > limit;
	if (more)
		got = (int)limit;
	cJSON *o = cJSON_CreateObject(), *arr = NULL;
	bool ok = o && api_add_int(o, "id", PQgetvalue(r, 0, 0)) && api_add_int(o, "book_id", id) &&
	          http_json_add_int64(o, "position", position) &&
	          cJSON_AddStringToObject(o, "title", PQgetvalue(r, 0, 1)) &&
	          api_add_int(o, "passage_count", PQgetvalue(r, 0, 2)) && http_json_add_int64(o, "limit", limit) &&
	          (after >= 0 ? http_json_add_int64(o, "after", after)
	                      : http_json_add_int64(o, "offset", offset < 0 ? 0 : offset)) &&
	          (arr = cJSON_AddArrayToObject(o, "passages")) != NULL && api_cache_tag(resp, PQgetvalue(r, 0, 7));
	for (int i = 0; ok && i < got; i++) {
		cJSON *p = api_passage_row(r, i);
		ok = p && cJSON_AddItemToArray(arr, p);
		if (!ok)
			cJSON_Delete(p);
	}
	/* the keyset of the next page: the last position of this one */
	if (ok)
		ok = more ? api_add_int(o, "next_after", PQgetvalue(r, got - 1, 4))
		          : cJSON_AddNullToObject(o, "next_after") != NULL;
	PQclear(r);
	if (!ok) {
		cJSON_Delete(o);
		http_respond_error(resp, 500, "internal", "malformed chapter from the database");
		return;
	}
	http_respond_json(resp, 200, o);
}
