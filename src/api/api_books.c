/* api_books.c - the textbook read routes: books, a book with its chapters, a passage. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "http.h"
#include "util.h"

static const struct np_stmt stmt_books_list = {
	0, "np_books_list",
	"SELECT id, slug, title, author, language FROM books ORDER BY id LIMIT $1 OFFSET $2", 2
};
/* the book and its chapters in one round trip */
static const struct np_stmt stmt_book_get = {
	1, "np_book_get",
	"SELECT b.id, b.slug, b.title, b.author, b.language, "
	"COALESCE(json_agg(json_build_object('id', c.id, 'position', c.position, 'title', c.title) "
	"ORDER BY c.position) FILTER (WHERE c.id IS NOT NULL), '[]'::json) "
	"FROM books b LEFT JOIN chapters c ON c.book_id = b.id WHERE b.id = $1 GROUP BY b.id", 1
};
static const struct np_stmt stmt_passage_get = {
	2, "np_passage_get",
	"SELECT p.id, p.chapter_id, c.book_id, p.position, p.body FROM passages p "
	"JOIN chapters c ON c.id = p.chapter_id WHERE p.id = $1", 1
};

/* A path id: a positive decimal that fits a bigint. */
static bool api_id(const char *s)
{
	int64_t v;
	return s && util_parse_i64(s, 1, INT64_MAX, &v) == 0 && s[0] != '+' && s[0] != '0';
}

/* The value of key in a raw query string, percent-decoded into out. Returns 1 found, 0 absent,
 * -1 malformed. */
static int api_query_param(const char *query, const char *key, char *out, size_t n)
{
	size_t klen = strlen(key);
	const char *p = query;
	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			if (util_percent_decode(p + klen + 1, len - klen - 1, out, n) < 0)
				return -1;
			return 1;
		}
		p = amp ? amp + 1 : NULL;
	}
	return 0;
}

static int api_int_param(struct np_request *req, struct np_response *resp, const char *key, int64_t def,
                         int64_t min, int64_t max, int64_t *out)
{
	char buf[32];
	int f = api_query_param(req->query, key, buf, sizeof(buf));
	if (f == 0) {
		*out = def;
		return 0;
	}
	if (f < 0 || util_parse_i64(buf, min, max, out) < 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "query parameter '%s' must be an integer from %lld to %lld", key,
		         (long long)min, (long long)max);
		http_respond_error(resp, 400, "invalid_parameter", msg);
		return -1;
	}
	return 0;
}

static cJSON *api_book_json(PGresult *r, int row)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "id", strtod(PQgetvalue(r, row, 0), NULL));
	cJSON_AddStringToObject(o, "slug", PQgetvalue(r, row, 1));
	cJSON_AddStringToObject(o, "title", PQgetvalue(r, row, 2));
	if (PQgetisnull(r, row, 3))
		cJSON_AddNullToObject(o, "author");
	else
		cJSON_AddStringToObject(o, "author", PQgetvalue(r, row, 3));
	cJSON_AddStringToObject(o, "language", PQgetvalue(r, row, 4));
	return o;
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
	cJSON *arr = cJSON_AddArrayToObject(root, "books");
	for (int i = 0; i < PQntuples(r); i++)
		cJSON_AddItemToArray(arr, api_book_json(r, i));
	cJSON_AddNumberToObject(root, "limit", (double)limit);
	cJSON_AddNumberToObject(root, "offset", (double)offset);
	PQclear(r);
	http_respond_json(resp, 200, root);
}

/* The one row of st for the path's {id}: NULL with resp set (400 invalid_id, 404 not_found, or the
 * database's error) when there is none. what names the resource in messages. */
static PGresult *api_row_by_id(struct np_request *req, struct np_response *resp, const struct np_stmt *st,
                               const char *what)
{
	char msg[64];
	const char *id = router_param(&req->match, "id");
	if (!api_id(id)) {
		snprintf(msg, sizeof(msg), "%s id must be a positive integer", what);
		http_respond_error(resp, 400, "invalid_id", msg);
		return NULL;
	}
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
	cJSON *chapters = cJSON_Parse(PQgetvalue(r, 0, 5));
	PQclear(r);
	if (!chapters) {
		cJSON_Delete(book);
		http_respond_error(resp, 500, "internal", "malformed chapter list from the database");
		return;
	}
	cJSON_AddItemToObject(book, "chapters", chapters);
	http_respond_json(resp, 200, book);
}

void api_passage_get(struct np_request *req, struct np_response *resp)
{
	PGresult *r = api_row_by_id(req, resp, &stmt_passage_get, "passage");
	if (!r)
		return;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "id", strtod(PQgetvalue(r, 0, 0), NULL));
	cJSON_AddNumberToObject(o, "chapter_id", strtod(PQgetvalue(r, 0, 1), NULL));
	cJSON_AddNumberToObject(o, "book_id", strtod(PQgetvalue(r, 0, 2), NULL));
	cJSON_AddNumberToObject(o, "position", strtod(PQgetvalue(r, 0, 3), NULL));
	cJSON_AddStringToObject(o, "body", PQgetvalue(r, 0, 4));
	PQclear(r);
	http_respond_json(resp, 200, o);
}
