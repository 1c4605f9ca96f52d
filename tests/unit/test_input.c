/* SPDX-License-Identifier: PostgreSQL */
/* test_input.c - write-route input: media type, strict JSON bodies, field limits, bearer tokens,
 * Idempotency-Key. Invalid inputs first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "input.h"

static void test_content_type(void **state)
{
	assert_false(input_content_type_json(NULL));
	assert_false(input_content_type_json(""));
	assert_false(input_content_type_json("text/plain"));
	assert_false(input_content_type_json("application/jsonx"));
	assert_false(input_content_type_json("application/json; charset=latin1"));
	assert_false(input_content_type_json("application/x-www-form-urlencoded"));
	assert_true(input_content_type_json("application/json"));
	assert_true(input_content_type_json("Application/JSON"));
	assert_true(input_content_type_json("application/json; charset=utf-8"));
	assert_true(input_content_type_json("application/json;charset=\"UTF-8\""));
}

static cJSON *parse(const char *s, struct input_err *e)
{
	return input_json_object(s, strlen(s), e);
}

static void test_json_object(void **state)
{
	struct input_err e;
	assert_null(input_json_object("", 0, &e));
	assert_string_equal(e.code, "invalid_body");
	assert_null(input_json_object("{\"a\":\"x\0\"}", 10, &e));        /* a NUL byte */
	assert_null(parse("{\"a\":\"\xff\"}", &e));                        /* not UTF-8 */
	assert_null(parse("{\"a\":\"\xed\xa0\x80\"}", &e));                /* a surrogate */
	assert_null(parse("{\"a\":\"x\\u0000y\"}", &e));                   /* an escaped NUL */
	assert_null(parse("{\"a\":1} x", &e));                             /* trailing data */
	assert_null(parse("[1]", &e));                                     /* not an object */
	assert_null(parse("{\"a\":1,\"a\":2}", &e));                       /* a member twice */
	assert_null(parse("{\"a\":", &e));
	assert_null(parse("{\"a\":01}", &e));                             /* numbers as JSON has them */
	assert_null(parse("{\"a\":1.}", &e));
	assert_null(parse("{\"a\":-01.5}", &e));
	assert_null(parse("{\"a\":[1,2,00]}", &e));
	cJSON *n = parse("{\"a\":[0,-0,1.5e+3,-2E-2,10],\"b\":\"01 1. \\\"02\"}", &e);
	assert_non_null(n);
	cJSON_Delete(n);
	cJSON *o = parse("{\"a\":\"x\\\\u0000y\"} \n", &e);                /* an escaped backslash */
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(o, "a")->valuestring, "x\\u0000y");
	cJSON_Delete(o);
}

static void test_fields(void **state)
{
	struct input_err e;
	static const char *const allowed[] = { "role", "content", "n", NULL };
	cJSON *o = parse("{\"role\":\"user\",\"contnet\":\"x\"}", &e);
	assert_int_equal(input_only_fields(o, allowed, &e), -1);
	assert_string_equal(e.field, "contnet");
	cJSON_Delete(o);

	const char *s;
	bool present;
	int64_t n;
	o = parse("{\"role\":5,\"content\":\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\",\"n\":1.5}", &e);
	assert_int_equal(input_only_fields(o, allowed, &e), 0);
	assert_int_equal(input_string(o, "role", true, 1, 16, &s, &e), -1);
	assert_string_equal(e.field, "role");
	assert_int_equal(input_string(o, "missing", true, 1, 16, &s, &e), -1);
	assert_int_equal(input_string(o, "missing", false, 1, 16, &s, &e), 0);
	assert_null(s);
	/* two emoji are two characters (eight bytes) */
	assert_int_equal(input_string(o, "content", true, 1, 1, &s, &e), -1);
	assert_int_equal(input_string(o, "content", true, 1, 2, &s, &e), 0);
	assert_int_equal(input_int(o, "n", true, -1, 1, &present, &n, &e), -1);      /* a fraction */
	cJSON_Delete(o);
	o = parse("{\"n\":2}", &e);
	assert_int_equal(input_int(o, "n", true, -1, 1, &present, &n, &e), -1);      /* out of range */
	cJSON_Delete(o);
	o = parse("{\"n\":-1}", &e);
	assert_int_equal(input_int(o, "n", true, -1, 1, &present, &n, &e), 0);
	assert_true(present);
	assert_int_equal(n, -1);
	cJSON_Delete(o);
}

static void test_bearer(void **state)
{
	uint8_t tok[INPUT_TOKEN_BYTES], back[INPUT_TOKEN_BYTES];
	char enc[INPUT_TOKEN_CHARS + 1], hdr[80];
	for (int i = 0; i < INPUT_TOKEN_BYTES; i++)
		tok[i] = (uint8_t)(i * 37 + 250);
	input_token_encode(tok, enc);
	assert_int_equal(strlen(enc), INPUT_TOKEN_CHARS);
	assert_int_equal(input_bearer(NULL, back), -1);
	assert_int_equal(input_bearer(enc, back), -1);                       /* no scheme */
	snprintf(hdr, sizeof(hdr), "Basic %s", enc);
	assert_int_equal(input_bearer(hdr, back), -1);
	snprintf(hdr, sizeof(hdr), "Bearer %.42s", enc);                     /* one short */
	assert_int_equal(input_bearer(hdr, back), -1);
	snprintf(hdr, sizeof(hdr), "Bearer %s=", enc);                       /* padding */
	assert_int_equal(input_bearer(hdr, back), -1);
	snprintf(hdr, sizeof(hdr), "Bearer %.42s+", enc);                    /* not base64url */
	assert_int_equal(input_bearer(hdr, back), -1);
	snprintf(hdr, sizeof(hdr), "bearer  %s ", enc);
	assert_int_equal(input_bearer(hdr, back), 0);
	assert_memory_equal(tok, back, sizeof(tok));
	/* a last character with non-zero unused bits is another spelling: refused */
	char alt[INPUT_TOKEN_CHARS + 1];
	memcpy(alt, enc, sizeof(alt));
	alt[INPUT_TOKEN_CHARS - 1] = alt[INPUT_TOKEN_CHARS - 1] == 'B' ? 'C' : 'B';
	snprintf(hdr, sizeof(hdr), "Bearer %s", alt);
	if (strcmp(alt, enc) != 0)
		assert_true(input_bearer(hdr, back) == -1 || memcmp(tok, back, sizeof(tok)) != 0);
}

/* base64url through libcrypto: the URL-safe alphabet both ways, no padding, strict decoding */
static void test_base64url(void **state)
{
	uint8_t tok[INPUT_TOKEN_BYTES], back[INPUT_TOKEN_BYTES];
	char enc[INPUT_TOKEN_CHARS + 1], hdr[80];
	for (int i = 0; i < INPUT_TOKEN_BYTES; i++)
		tok[i] = (uint8_t)(0xa0 + i);
	input_token_encode(tok, enc);
	assert_string_equal(enc, "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8"); /* Python's urlsafe_b64encode */
	memset(tok, 0xff, sizeof(tok));
	tok[0] = 0xfb;
	input_token_encode(tok, enc);
	assert_string_equal(enc, "-_________________________________________8"); /* '-' and '_', never '+' '/' */
	snprintf(hdr, sizeof(hdr), "Bearer %s", enc);
	assert_int_equal(input_bearer(hdr, back), 0);
	assert_memory_equal(tok, back, sizeof(tok));
	/* the standard alphabet's '+' and '/' are not base64url */
	snprintf(hdr, sizeof(hdr), "Bearer +%s", enc + 1);
	assert_int_equal(input_bearer(hdr, back), -1);
	snprintf(hdr, sizeof(hdr), "Bearer %.20s/%s", enc, enc + 21);
	assert_int_equal(input_bearer(hdr, back), -1);
	/* padding, white space or a NUL inside: refused (libcrypto's decoder would skip white space) */
	snprintf(hdr, sizeof(hdr), "Bearer %.41s==", enc);
	assert_int_equal(input_bearer(hdr, back), -1);
	snprintf(hdr, sizeof(hdr), "Bearer %.20s %s", enc, enc + 21);
	assert_int_equal(input_bearer(hdr, back), -1);
	snprintf(hdr, sizeof(hdr), "Bearer %.20s\t%s", enc, enc + 21);
	assert_int_equal(input_bearer(hdr, back), -1);
	/* 'x' (49 = 0b110001) as the last character: its unused low bits are not zero */
	snprintf(hdr, sizeof(hdr), "Bearer %.42sx", enc);
	assert_int_equal(input_bearer(hdr, back), -1);
	/* 'w' (48 = 0b110000): unused bits zero, so a token (another one) */
	snprintf(hdr, sizeof(hdr), "Bearer %.42sw", enc);
	assert_int_equal(input_bearer(hdr, back), 0);
	assert_int_equal(back[INPUT_TOKEN_BYTES - 1], 0xfc);
}

static void test_idempotency_key(void **state)
{
	struct input_err e;
	char out[INPUT_KEY_MAX + 1], big[300];
	assert_int_equal(input_idempotency_key(NULL, out, &e), 0);
	assert_int_equal(input_idempotency_key("", out, &e), -1);
	assert_int_equal(input_idempotency_key("\"\"", out, &e), -1);
	assert_int_equal(input_idempotency_key("a b", out, &e), -1);          /* bare with a space */
	assert_int_equal(input_idempotency_key("\"a\\b\"", out, &e), -1);
	assert_int_equal(input_idempotency_key("caf\xc3\xa9", out, &e), -1);
	memset(big, 'k', 256);
	big[256] = '\0';
	assert_int_equal(input_idempotency_key(big, out, &e), -1);
	assert_string_equal(e.code, "invalid_idempotency_key");
	big[255] = '\0';
	assert_int_equal(input_idempotency_key(big, out, &e), 1);
	assert_int_equal(strlen(out), 255);
	assert_int_equal(input_idempotency_key("\"8e03978e-40d5 x\"", out, &e), 1);
	assert_string_equal(out, "8e03978e-40d5 x");
	assert_int_equal(input_idempotency_key("8e03978e-40d5", out, &e), 1);
	assert_string_equal(out, "8e03978e-40d5");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_type), cmocka_unit_test(test_json_object), cmocka_unit_test(test_fields),
		cmocka_unit_test(test_bearer), cmocka_unit_test(test_base64url), cmocka_unit_test(test_idempotency_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
