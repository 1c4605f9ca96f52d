/* SPDX-License-Identifier: PostgreSQL */
/* test_http.c - request parsing from FastCGI params, error envelopes, response heads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "util.h"

struct kv { const char *k, *v; };

static const char *get(const char *name, void *ctx)
{
	for (const struct kv *p = ctx; p->k; p++)
		if (strcmp(p->k, name) == 0)
			return p->v;
	return NULL;
}

static int parse(struct np_request *r, struct kv *params, const char **code)
{
	const char *msg;
	*code = NULL;
	return http_parse_request(r, get, params, code, &msg);
}

static void test_parse_basic(void **state)
{
	struct np_request r;
	const char *code;
	struct kv p[] = { { "REQUEST_METHOD", "GET" }, { "REQUEST_URI", "/api/v1/books/4%32?x=1&y=%20" },
	                  { "REQUEST_ID", "abc-123" }, { NULL, NULL } };
	assert_int_equal(parse(&r, p, &code), 0);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.path, "/api/v1/books/42");
	assert_string_equal(r.query, "x=1&y=%20");
	assert_string_equal(r.request_id, "abc-123");
	assert_int_equal(r.content_length, -1);
}

static void test_parse_lighttpd_fallback(void **state)
{
	struct np_request r;
	const char *code;
	struct kv p[] = { { "REQUEST_METHOD", "GET" }, { "SCRIPT_NAME", "" }, { "PATH_INFO", "/healthz" },
	                  { NULL, NULL } };
	assert_int_equal(parse(&r, p, &code), 0);
	assert_string_equal(r.path, "/healthz");
	assert_int_equal(strlen(r.request_id), 32); /* generated */
}

static void test_parse_rejects(void **state)
{
	struct np_request r;
	const char *code;
	struct kv bad_pct[] = { { "REQUEST_METHOD", "GET" }, { "REQUEST_URI", "/a%zz" }, { NULL, NULL } };
	assert_int_equal(parse(&r, bad_pct, &code), 400);
	assert_string_equal(code, "bad_request");
	struct kv nul[] = { { "REQUEST_METHOD", "GET" }, { "REQUEST_URI", "/a%00b" }, { NULL, NULL } };
	assert_int_equal(parse(&r, nul, &code), 400);
	struct kv utf[] = { { "REQUEST_METHOD", "GET" }, { "REQUEST_URI", "/a%C3%28" }, { NULL, NULL } };
	assert_int_equal(parse(&r, utf, &code), 400);
	struct kv nomethod[] = { { "REQUEST_URI", "/" }, { NULL, NULL } };
	assert_int_equal(parse(&r, nomethod, &code), 400);
	struct kv rel[] = { { "REQUEST_METHOD", "GET" }, { "REQUEST_URI", "healthz" }, { NULL, NULL } };
	assert_int_equal(parse(&r, rel, &code), 400);
	struct kv cl[] = { { "REQUEST_METHOD", "POST" }, { "REQUEST_URI", "/" }, { "CONTENT_LENGTH", "-5" },
	                   { NULL, NULL } };
	assert_int_equal(parse(&r, cl, &code), 400);
	struct kv cl2[] = { { "REQUEST_METHOD", "POST" }, { "REQUEST_URI", "/" }, { "CONTENT_LENGTH", "12ab" },
	                    { NULL, NULL } };
	assert_int_equal(parse(&r, cl2, &code), 400);
	static char longuri[HTTP_MAX_PATH + 10];
	memset(longuri, 'a', sizeof(longuri) - 1);
	longuri[0] = '/';
	struct kv lu[] = { { "REQUEST_METHOD", "GET" }, { "REQUEST_URI", longuri }, { NULL, NULL } };
	assert_int_equal(parse(&r, lu, &code), 414);
}

static void test_request_id_sanitised(void **state)
{
	struct np_request r;
	const char *code;
	struct kv p[] = { { "REQUEST_METHOD", "GET" }, { "REQUEST_URI", "/" },
	                  { "REQUEST_ID", "evil\r\nSet-Cookie: x" }, { NULL, NULL } };
	assert_int_equal(parse(&r, p, &code), 0);
	assert_null(strchr(r.request_id, '\r'));
	assert_int_equal(strlen(r.request_id), 32);
}

static void test_error_envelope(void **state)
{
	struct np_response resp = { 0 };
	http_respond_error(&resp, 404, "not_found", "no \"such\" route");
	assert_int_equal(resp.status, 404);
	cJSON *j = cJSON_Parse(resp.body);
	assert_non_null(j);
	cJSON *e = cJSON_GetObjectItem(j, "error");
	assert_string_equal(cJSON_GetObjectItem(e, "code")->valuestring, "not_found");
	assert_string_equal(cJSON_GetObjectItem(e, "message")->valuestring, "no \"such\" route");
	cJSON_Delete(j);
	http_response_free(&resp);
}

static void test_head(void **state)
{
	struct np_response resp = { 0 };
	http_respond_error(&resp, 405, "method_not_allowed", "x");
	strcpy(resp.allow, "GET, POST");
	resp.retry_after_s = 0;
	char head[512];
	int n = http_format_head(&resp, "rid", head, sizeof(head));
	assert_true(n > 0);
	assert_non_null(strstr(head, "Status: 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(head, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(head, "Allow: GET, POST\r\n"));
	assert_non_null(strstr(head, "X-Request-Id: rid\r\n"));
	assert_non_null(strstr(head, "X-Content-Type-Options: nosniff\r\n"));
	assert_null(strstr(head, "Retry-After"));
	char cl[64];
	snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", resp.body_len);
	assert_non_null(strstr(head, cl));
	assert_int_equal(memcmp(head + n - 4, "\r\n\r\n", 4), 0);
	resp.retry_after_s = 2;
	n = http_format_head(&resp, "rid", head, sizeof(head));
	assert_non_null(strstr(head, "Retry-After: 2\r\n"));
	assert_int_equal(http_format_head(&resp, "rid", head, 40), -1);
	http_response_free(&resp);
}

/* A content answer names its validator and freshness; a 304 has no Content-Type nor
 * Content-Length; an answer that names neither is no-store. */
static void test_head_cache(void **state)
{
	struct np_response resp = { 0 };
	char head[512];
	http_respond_raw(&resp, 200, "{}");
	assert_true(http_format_head(&resp, "rid", head, sizeof(head)) > 0);
	assert_non_null(strstr(head, "Cache-Control: no-store\r\n"));
	assert_null(strstr(head, "ETag"));
	snprintf(resp.etag, sizeof(resp.etag), "\"1-42\"");
	resp.cache_control = "public, max-age=60";
	assert_true(http_format_head(&resp, "rid", head, sizeof(head)) > 0);
	assert_non_null(strstr(head, "Cache-Control: public, max-age=60\r\n"));
	assert_non_null(strstr(head, "ETag: \"1-42\"\r\n"));
	assert_null(strstr(head, "no-store"));
	resp.status = 304;
	assert_true(http_format_head(&resp, "rid", head, sizeof(head)) > 0);
	assert_non_null(strstr(head, "Status: 304 Not Modified\r\n"));
	assert_non_null(strstr(head, "ETag: \"1-42\"\r\n"));
	assert_null(strstr(head, "\r\nContent-Type:"));
	assert_null(strstr(head, "\r\nContent-Length:"));
	http_response_free(&resp);
}

/* If-None-Match by the weak comparison; malformed lists match nothing (invalid input first). */
static void test_etag_match(void **state)
{
	const char *tag = "\"1-42\"";
	assert_false(http_etag_match(NULL, tag));
	assert_false(http_etag_match("", tag));
	assert_false(http_etag_match("1-42", tag));             /* not quoted */
	assert_false(http_etag_match("\"1-42", tag));           /* unterminated */
	assert_false(http_etag_match("\"1-42\"x", tag));        /* junk after the tag */
	assert_false(http_etag_match("\"1 42\"", "\"1 42\""));  /* a space is not an etagc */
	assert_false(http_etag_match("* , \"1-42\"", tag));     /* "*" stands alone */
	assert_false(http_etag_match("\"1-4\"", tag));
	assert_false(http_etag_match("\"1-421\"", tag));
	assert_false(http_etag_match("\"2-42\"", tag));
	assert_false(http_etag_match("\"1-42\"", "1-42"));      /* the tag itself must be quoted */
	assert_true(http_etag_match("\"1-42\"", tag));
	assert_true(http_etag_match("W/\"1-42\"", tag));
	assert_true(http_etag_match(" \"1-41\" , W/\"1-42\"", tag));
	assert_true(http_etag_match("\"x\",\"1-42\",\"y\"", tag));
	assert_true(http_etag_match("*", tag));
	assert_true(http_etag_match(" * ", tag));
}

/* Every status the daemon can answer goes out with its registered reason phrase (RFC 9110,
 * RFC 6585): a 502 from the model's upstream once went out as "502 Unknown". */
static void test_status_reason_phrases(void **state)
{
	static const struct { int code; const char *text; } want[] = {
		{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" }, { 204, "No Content" },
		{ 301, "Moved Permanently" }, { 302, "Found" }, { 304, "Not Modified" },
		{ 400, "Bad Request" }, { 401, "Unauthorized" }, { 403, "Forbidden" }, { 404, "Not Found" },
		{ 405, "Method Not Allowed" }, { 406, "Not Acceptable" }, { 408, "Request Timeout" },
		{ 409, "Conflict" }, { 410, "Gone" }, { 411, "Length Required" }, { 412, "Precondition Failed" },
		{ 413, "Content Too Large" }, { 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
		{ 422, "Unprocessable Content" }, { 428, "Precondition Required" }, { 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" }, { 500, "Internal Server Error" },
		{ 501, "Not Implemented" }, { 502, "Bad Gateway" }, { 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_string_equal(http_status_text(want[i].code), want[i].text);
	/* an unregistered code still gets a phrase of its class, never "Unknown" */
	for (int c = 100; c <= 599; c++)
		assert_null(strstr(http_status_text(c), "Unknown"));
	struct np_response resp = { 0 };
	http_respond_error(&resp, 502, "llm_unavailable", "x");
	char head[512];
	assert_true(http_format_head(&resp, "rid", head, sizeof(head)) > 0);
	assert_non_null(strstr(head, "Status: 502 Bad Gateway\r\n"));
	http_response_free(&resp);
}

static void test_json_int64_exact(void **state)
{
	const int64_t vals[] = { 9007199254740993LL, INT64_MAX, INT64_MIN, 0, -1 };
	const char *want = "{\"a\":9007199254740993,\"b\":9223372036854775807,\"c\":-9223372036854775808,\"d\":0,\"e\":-1}";
	cJSON *o = cJSON_CreateObject();
	const char *keys[] = { "a", "b", "c", "d", "e" };
	for (int i = 0; i < 5; i++)
		assert_true(http_json_add_int64(o, keys[i], vals[i]));
	char *s = cJSON_PrintUnformatted(o);
	assert_string_equal(s, want);
	cJSON_free(s);
	cJSON_Delete(o);
}

/* queued_us for a NEONPOOL_QUEUE_START value (nginx's $msec: seconds since the epoch, a fraction). */
static int64_t queued(const char *qs)
{
	struct np_request r;
	const char *code;
	struct kv p[] = { { "REQUEST_METHOD", "GET" }, { "REQUEST_URI", "/x" }, { "NEONPOOL_QUEUE_START", qs },
	                  { NULL, NULL } };
	assert_int_equal(parse(&r, p, &code), 0);
	return r.queued_us;
}

static void test_queue_start_rejects(void **state)
{
	static const char *bad[] = {
		"nan", "NaN", "inf", "-inf", "infinity", "1e300", "-1e300", "1e19", "9.3e12", "-5", "-1700000000.123",
		"0", "0.000", "1.5", "abc", "", " 1700000000.123", "1700000000.123x", "0x1p30", "1e9",
		"99999999999999999999999999999999999999", "99999999999999999999999999999.5",
		"1700000000.1234567890123456789012345", "+1700000000", "1700000000..1", ".5",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (queued(bad[i]) != -1)
			fail_msg("NEONPOOL_QUEUE_START=\"%s\" was not ignored (queued %lld us)", bad[i],
			         (long long)queued(bad[i]));
	}
}

static void test_queue_start_accepts(void **state)
{
	char buf[64];
	int64_t now = util_wall_us();
	/* 2.5 s ago, as nginx writes it (milliseconds) */
	int64_t t = now - 2500000;
	snprintf(buf, sizeof(buf), "%lld.%03lld", (long long)(t / 1000000), (long long)(t % 1000000 / 1000));
	int64_t q = queued(buf);
	assert_true(q >= 2499000 && q < 3500000);
	/* no fraction; and microseconds */
	snprintf(buf, sizeof(buf), "%lld", (long long)(now / 1000000 - 10));
	q = queued(buf);
	assert_true(q >= 9000000 && q < 12000000);
	snprintf(buf, sizeof(buf), "%lld.%06lld", (long long)(t / 1000000), (long long)(t % 1000000));
	q = queued(buf);
	assert_true(q >= 2500000 && q < 3500000);
	/* a little in the future (clocks): not queued at all */
	snprintf(buf, sizeof(buf), "%lld.000", (long long)(now / 1000000 + 5));
	assert_int_equal(queued(buf), 0);
}

/* issue 7 (h7c): the headers a write route reads, the error's field, raw bodies, 204 */
static void test_write_route_parts(void **state)
{
	struct np_request r;
	const char *code;
	struct kv p[] = { { "REQUEST_METHOD", "POST" }, { "REQUEST_URI", "/api/v1/sessions/1/messages" },
	                  { "HTTP_AUTHORIZATION", "Bearer x" }, { "HTTP_IDEMPOTENCY_KEY", "\"k\"" }, { NULL, NULL } };
	assert_int_equal(parse(&r, p, &code), 0);
	assert_string_equal(r.authorization, "Bearer x");
	assert_string_equal(r.idempotency_key, "\"k\"");
	struct kv q[] = { { "REQUEST_METHOD", "GET" }, { "REQUEST_URI", "/" }, { NULL, NULL } };
	assert_int_equal(parse(&r, q, &code), 0);
	assert_null(r.authorization);
	assert_null(r.idempotency_key);

	struct np_response resp = { 0 };
	http_respond_error_field(&resp, 400, "invalid_body", "'content' is required", "content");
	cJSON *j = cJSON_Parse(resp.body);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "field")->valuestring, "content");
	cJSON_Delete(j);
	http_respond_error(&resp, 404, "not_found", "x");
	assert_null(strstr(resp.body, "field"));
	http_respond_raw(&resp, 201, "{\"id\" : 1}");
	assert_int_equal(resp.status, 201);
	assert_string_equal(resp.body, "{\"id\" : 1}");
	char head[512];
	http_respond_raw(&resp, 204, "ignored");
	assert_int_equal(resp.body_len, 0);
	assert_non_null(resp.body); /* an answer, if an empty one */
	int n = http_format_head(&resp, "rid", head, sizeof(head));
	assert_true(n > 0);
	assert_non_null(strstr(head, "Status: 204 No Content\r\n"));
	assert_non_null(strstr(head, "X-Content-Type-Options: nosniff\r\n"));
	assert_null(strstr(head, "Content-Length"));
	assert_null(strstr(head, "\nContent-Type:"));
	assert_true(http_format_sse_head("rid", head, sizeof(head)) > 0);
	assert_non_null(strstr(head, "X-Content-Type-Options: nosniff\r\n"));
	http_response_free(&resp);
}

static void test_json_raw_compact(void **state)
{
	(void)state;
	const char *in = "[{\"id\" : 3, \"title\" : \"a \\\" : b,\\n c\"}, \n {\"id\" : 4, \"t\" : \"\\\\\"}]";
	cJSON *raw = http_json_raw_compact(in);
	assert_non_null(raw);
	assert_true(cJSON_IsRaw(raw));
	assert_string_equal(raw->valuestring, "[{\"id\":3,\"title\":\"a \\\" : b,\\n c\"},{\"id\":4,\"t\":\"\\\\\"}]");
	/* the same document once parsed: nothing but blanks went */
	cJSON *a = cJSON_Parse(in), *b = cJSON_Parse(raw->valuestring);
	assert_true(cJSON_Compare(a, b, true));
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(raw);
	assert_null(http_json_raw_compact(""));
	assert_null(http_json_raw_compact("null"));
	raw = http_json_raw_compact("[]");
	assert_string_equal(raw->valuestring, "[]");
	cJSON_Delete(raw);
}

/* Why http_json_raw_compact is ours and not cJSON_Minify: cJSON 1.7.15 (Debian 12) takes the quote
 * after an escaped backslash ("a\\") for an escaped quote, so it thinks the string goes on:
 * ["a\\" , "b c"] came out of it as ["a\\" , "bc"], a chapter title changed and the blank
 * before the comma kept. A title ending in a backslash is a title a manual can have. */
static void test_json_raw_compact_escaped_backslash(void **state)
{
	(void)state;
	cJSON *raw = http_json_raw_compact("[\"a\\\\\" , \"b c\"]");
	assert_non_null(raw);
	assert_string_equal(raw->valuestring, "[\"a\\\\\",\"b c\"]");
	cJSON_Delete(raw);
	raw = http_json_raw_compact("[{\"t\" : \"\\\\\\\\\"} , {\"t\" : \"x y\"}]"); /* "\\\\" then "x y" */
	assert_non_null(raw);
	assert_string_equal(raw->valuestring, "[{\"t\":\"\\\\\\\\\"},{\"t\":\"x y\"}]");
	cJSON_Delete(raw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_basic),    cmocka_unit_test(test_parse_lighttpd_fallback),
		cmocka_unit_test(test_parse_rejects),  cmocka_unit_test(test_request_id_sanitised),
		cmocka_unit_test(test_error_envelope), cmocka_unit_test(test_head),
		cmocka_unit_test(test_json_int64_exact), cmocka_unit_test(test_json_raw_compact), cmocka_unit_test(test_json_raw_compact_escaped_backslash), cmocka_unit_test(test_queue_start_rejects),
		cmocka_unit_test(test_queue_start_accepts), cmocka_unit_test(test_write_route_parts),
		cmocka_unit_test(test_status_reason_phrases), cmocka_unit_test(test_head_cache),
		cmocka_unit_test(test_etag_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
