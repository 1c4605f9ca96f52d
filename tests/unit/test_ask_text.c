/* SPDX-License-Identifier: PostgreSQL */
/* test_ask_text.c - an answer's [n] citation markers and retrieval mode's extractive answer:
 * what is not a marker first, then the markers and the pieces. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <string.h>

#include "ask_text.h"
#include "http.h"

static size_t used(const char *text, int k, int *out)
{
	return ask_cites_used(text, k, out, 16);
}

static void test_cites_not_markers(void **state)
{
	int u[16];
	(void)state;
	assert_int_equal(used("", 5, u), 0);
	assert_int_equal(used("[0] [6] [99999] [-1] [a] [1 [2,] [,3] []", 5, u), 0);
	assert_int_equal(used("[1x] [ 2 3] [12345]", 5, u), 0);
	assert_int_equal(used("[", 5, u), 0);
	assert_int_equal(used("[1", 5, u), 0);
	assert_int_equal(used(NULL, 5, u), 0);
}

static void test_cites_markers(void **state)
{
	int u[16];
	(void)state;
	assert_int_equal(used("a [3] b [1] c [3]", 5, u), 2);
	assert_int_equal(u[0], 1);
	assert_int_equal(u[1], 3);
	assert_int_equal(used("x [2, 4][5] [1,2]", 5, u), 4);
	assert_int_equal(u[3], 5);
	assert_int_equal(used("[[2]]", 5, u), 1);
	assert_int_equal(u[0], 2);
	/* cap bounds the output */
	assert_int_equal(ask_cites_used("[1][2][3]", 3, u, 2), 2);
	char buf[16];
	int v[3] = { 1, 3, 12 };
	assert_int_equal(ask_cites_pg_array(v, 3, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "{1,3,12}");
	assert_int_equal(ask_cites_pg_array(v, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "{}");
	assert_int_equal(ask_cites_pg_array(v, 3, buf, 6), -1);
}

static void test_extract(void **state)
{
	(void)state;
	cJSON *s = cJSON_Parse("[{\"n\":2,\"sentence\":\"VACUUM  reclaims\\n space.\",\"score\":3},"
	                       "{\"n\":2,\"sentence\":\"Second of two.\",\"score\":2},"
	                       "{\"n\":2,\"sentence\":\"Third from two: over the limit.\",\"score\":2},"
	                       "{\"n\":1,\"sentence\":\"VACUUM  reclaims\\n space.\",\"score\":1},"
	                       "{\"n\":\"x\",\"sentence\":\"bad n\"},{\"n\":300,\"sentence\":\"out of range\"},"
	                       "{\"n\":1,\"sentence\":\" \\t \",\"score\":1},"
	                       "{\"n\":3,\"sentence\":\"Last one.\",\"score\":1}]");
	cJSON *p = ask_extract(s, NULL, 4, 2);
	assert_non_null(p);
	assert_int_equal(cJSON_GetArraySize(p), 4);
	assert_string_equal(cJSON_GetArrayItem(p, 0)->valuestring, "VACUUM reclaims space. [2] ");
	assert_string_equal(cJSON_GetArrayItem(p, 1)->valuestring, "Second of two. [2] ");
	/* the same sentence from another passage is another piece; the third of passage 2 is not */
	assert_string_equal(cJSON_GetArrayItem(p, 2)->valuestring, "VACUUM reclaims space. [1] ");
	assert_string_equal(cJSON_GetArrayItem(p, 3)->valuestring, "Last one. [3] ");
	cJSON_Delete(p);
	p = ask_extract(s, NULL, 1, 2);
	assert_int_equal(cJSON_GetArraySize(p), 1);
	cJSON_Delete(p);
	cJSON_Delete(s);
	/* no sentence: the snippets; nothing: one piece saying so */
	cJSON *c = cJSON_Parse("[{\"n\":1,\"snippet\":\"a snippet\"},{\"n\":2,\"snippet\":\"b\"},{\"n\":3,\"snippet\":\"c\"}]");
	p = ask_extract(NULL, c, 4, 2);
	assert_int_equal(cJSON_GetArraySize(p), 2);
	assert_string_equal(cJSON_GetArrayItem(p, 0)->valuestring, "a snippet [1] ");
	cJSON_Delete(p);
	cJSON_Delete(c);
	p = ask_extract(NULL, NULL, 4, 2);
	assert_int_equal(cJSON_GetArraySize(p), 1);
	assert_null(strchr(cJSON_GetArrayItem(p, 0)->valuestring, '['));
	cJSON_Delete(p);
}

static void test_accepts_sse(void **state)
{
	(void)state;
	assert_false(http_accepts_sse(NULL));
	assert_false(http_accepts_sse(""));
	assert_false(http_accepts_sse("application/json"));
	assert_false(http_accepts_sse("text/event-streamer"));
	assert_false(http_accepts_sse("text/event-stream;q=0"));
	assert_false(http_accepts_sse("text/event-stream; q=0.000"));
	assert_true(http_accepts_sse("text/event-stream"));
	assert_true(http_accepts_sse("Text/Event-Stream"));
	assert_true(http_accepts_sse("application/json, text/event-stream;q=0.5"));
	assert_true(http_accepts_sse("text/event-stream; q=0.1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cites_not_markers),
		cmocka_unit_test(test_cites_markers),
		cmocka_unit_test(test_extract),
		cmocka_unit_test(test_accepts_sse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
