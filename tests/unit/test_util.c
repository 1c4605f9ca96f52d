/* SPDX-License-Identifier: PostgreSQL */
/* test_util.c - UTF-8 validation, percent-decoding, log quoting, number parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "util.h"

static void test_utf8(void **state)
{
	assert_true(util_utf8_valid("", 0));
	assert_true(util_utf8_valid("abc", 3));
	assert_true(util_utf8_valid("h\xc3\xa9llo", 6));              /* é */
	assert_true(util_utf8_valid("\xe2\x82\xac", 3));              /* € */
	assert_true(util_utf8_valid("\xf0\x9f\x98\x80", 4));          /* emoji */
	assert_false(util_utf8_valid("\xc3", 1));                     /* truncated */
	assert_false(util_utf8_valid("\xc0\xaf", 2));                 /* overlong / */
	assert_false(util_utf8_valid("\xe0\x80\xaf", 3));             /* overlong */
	assert_false(util_utf8_valid("\xed\xa0\x80", 3));             /* surrogate */
	assert_false(util_utf8_valid("\xf4\x90\x80\x80", 4));         /* > U+10FFFF */
	assert_false(util_utf8_valid("\xff", 1));
	assert_false(util_utf8_valid("a\x80", 2));                    /* stray continuation */
}

static void test_percent(void **state)
{
	char out[32];
	assert_int_equal(util_percent_decode("/a%20b", 6, out, sizeof(out)), 4);
	assert_string_equal(out, "/a b");
	assert_int_equal(util_percent_decode("%2F%2f", 6, out, sizeof(out)), 2);
	assert_string_equal(out, "//");
	assert_int_equal(util_percent_decode("a+b", 3, out, sizeof(out)), 3);
	assert_string_equal(out, "a+b");
	assert_int_equal(util_percent_decode("%", 1, out, sizeof(out)), -1);
	assert_int_equal(util_percent_decode("%4", 2, out, sizeof(out)), -1);
	assert_int_equal(util_percent_decode("%zz", 3, out, sizeof(out)), -1);
	assert_int_equal(util_percent_decode("a%00b", 5, out, sizeof(out)), -1);
	assert_int_equal(util_percent_decode("abcdef", 6, out, 4), -1);  /* overflow */
	assert_int_equal(util_percent_decode("abc", 3, out, 4), 3);
}

static void test_quote(void **state)
{
	char out[64];
	util_quote_value("plain", out, sizeof(out));
	assert_string_equal(out, "plain");
	util_quote_value("two words", out, sizeof(out));
	assert_string_equal(out, "\"two words\"");
	util_quote_value("a\"b\\c\nd", out, sizeof(out));
	assert_string_equal(out, "\"a\\\"b\\\\c\\nd\"");
	util_quote_value("k=v", out, sizeof(out));
	assert_string_equal(out, "\"k=v\"");
	util_quote_value("", out, sizeof(out));
	assert_string_equal(out, "\"\"");
	util_quote_value("\x01", out, sizeof(out));
	assert_string_equal(out, "\"\\x01\"");
	char small[8];
	util_quote_value("a very long value with spaces", small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
}

static void test_parse(void **state)
{
	int64_t v;
	assert_int_equal(util_parse_i64("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(util_parse_i64("101", 0, 100, &v), -1);
	assert_int_equal(util_parse_i64("-1", 0, 100, &v), -1);
	assert_int_equal(util_parse_i64("4x", 0, 100, &v), -1);
	assert_int_equal(util_parse_i64("", 0, 100, &v), -1);
	/* digits only, an optional '-' (fuzz_request: CONTENT_LENGTH " 7" and path id "%207" were 7) */
	assert_int_equal(util_parse_i64(" 7", 0, 100, &v), -1);
	assert_int_equal(util_parse_i64("\t7", 0, 100, &v), -1);
	assert_int_equal(util_parse_i64("+7", 0, 100, &v), -1);
	assert_int_equal(util_parse_i64("-", -100, 100, &v), -1);
	assert_int_equal(util_parse_i64("7 ", 0, 100, &v), -1);
	assert_int_equal(util_parse_i64("-7", -100, 100, &v), 0);
	assert_int_equal(v, -7);
	assert_int_equal(util_parse_i64("99999999999999999999", 0, INT64_MAX, &v), -1);
}

static void test_random(void **state)
{
	char a[33], b[33];
	util_random_hex(a, 16);
	util_random_hex(b, 16);
	assert_int_equal(strlen(a), 32);
	assert_string_not_equal(a, b);
	for (int i = 0; i < 1000; i++)
		assert_true(util_random_below(7) < 7);
	assert_int_equal(util_random_below(0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8),  cmocka_unit_test(test_percent), cmocka_unit_test(test_quote),
		cmocka_unit_test(test_parse), cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
