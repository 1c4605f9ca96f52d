/* SPDX-License-Identifier: PostgreSQL */
/* test_query.c - query-string parameters: decoding, rejections first, then the accepted forms. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "query.h"

static enum query_status get(const char *query, const char *key, char *out, size_t cap)
{
	size_t len = 99;
	enum query_status st = query_param(query, key, out, cap, &len);
	if (st != QUERY_FOUND)
		assert_true(len == 0 && (cap == 0 || out[0] == '\0'));
	else
		assert_int_equal(len, strlen(out));
	return st;
}

static void test_query_rejects(void **state)
{
	char out[16];
	(void)state;
	assert_int_equal(get("q=%zz", "q", out, sizeof(out)), QUERY_MALFORMED);
	assert_int_equal(get("q=%4", "q", out, sizeof(out)), QUERY_MALFORMED);
	assert_int_equal(get("q=ab%", "q", out, sizeof(out)), QUERY_MALFORMED);
	assert_int_equal(get("q=a%00b", "q", out, sizeof(out)), QUERY_MALFORMED);
	assert_int_equal(get("q=%ff", "q", out, sizeof(out)), QUERY_NOT_UTF8);           /* a lone byte */
	assert_int_equal(get("q=%c3%28", "q", out, sizeof(out)), QUERY_NOT_UTF8);       /* bad continuation */
	assert_int_equal(get("q=%ed%a0%80", "q", out, sizeof(out)), QUERY_NOT_UTF8);    /* a surrogate */
	assert_int_equal(get("q=%c0%af", "q", out, sizeof(out)), QUERY_NOT_UTF8);       /* overlong '/' */
	assert_int_equal(get("q=\xff", "q", out, sizeof(out)), QUERY_NOT_UTF8);         /* raw, unencoded */
	assert_int_equal(get("q=a&q=b", "q", out, sizeof(out)), QUERY_REPEATED);
	assert_int_equal(get("q&q=b", "q", out, sizeof(out)), QUERY_REPEATED);
	assert_int_equal(get("q=0123456789abcdef", "q", out, sizeof(out)), QUERY_TOO_LONG); /* 16 + NUL */
	assert_int_equal(get("q=%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41", "q", out, sizeof(out)),
	                 QUERY_TOO_LONG);
	assert_int_equal(get("q=x", "q", out, 0), QUERY_TOO_LONG);
	/* a malformed value of another key does not matter */
	assert_int_equal(get("x=%zz&q=ok", "q", out, sizeof(out)), QUERY_FOUND);
	assert_string_equal(out, "ok");
}

static void test_query_absent(void **state)
{
	char out[16] = "junk";
	(void)state;
	assert_int_equal(get("", "q", out, sizeof(out)), QUERY_ABSENT);
	assert_int_equal(get("qq=1&aq=2&Q=3", "q", out, sizeof(out)), QUERY_ABSENT);
	assert_int_equal(get("%71=1", "q", out, sizeof(out)), QUERY_ABSENT); /* keys are not decoded */
	assert_int_equal(get("&&", "q", out, sizeof(out)), QUERY_ABSENT);
}

static void test_query_found(void **state)
{
	char out[64];
	(void)state;
	assert_int_equal(get("q=vacuum+freeze", "q", out, sizeof(out)), QUERY_FOUND);
	assert_string_equal(out, "vacuum freeze");
	assert_int_equal(get("limit=5&q=a%2Bb%20c&offset=2", "q", out, sizeof(out)), QUERY_FOUND);
	assert_string_equal(out, "a+b c");
	assert_int_equal(get("q=", "q", out, sizeof(out)), QUERY_FOUND);
	assert_string_equal(out, "");
	assert_int_equal(get("x=1&q", "q", out, sizeof(out)), QUERY_FOUND);
	assert_string_equal(out, "");
	assert_int_equal(get("q=a=b", "q", out, sizeof(out)), QUERY_FOUND); /* split at the first '=' */
	assert_string_equal(out, "a=b");
	assert_int_equal(get("q=%F0%9F%90%98%27%3B--", "q", out, sizeof(out)), QUERY_FOUND);
	assert_string_equal(out, "\xF0\x9F\x90\x98';--");
	assert_int_equal(get("q=0123456789abcde", "q", out, 16), QUERY_FOUND); /* exactly fits */
	assert_string_equal(out, "0123456789abcde");
	size_t len;
	assert_int_equal(query_param("a=1&&b=22&", "b", out, sizeof(out), &len), QUERY_FOUND);
	assert_int_equal(len, 2);
	assert_int_equal(query_param("b=x", "b", out, sizeof(out), NULL), QUERY_FOUND);
}

static void test_query_status_text(void **state)
{
	(void)state;
	assert_string_equal(query_status_text(QUERY_NOT_UTF8), "not valid UTF-8");
	assert_string_equal(query_status_text(QUERY_REPEATED), "given more than once");
	assert_string_equal(query_status_text((enum query_status)42), "invalid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_rejects), cmocka_unit_test(test_query_absent),
		cmocka_unit_test(test_query_found), cmocka_unit_test(test_query_status_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
