/* SPDX-License-Identifier: PostgreSQL */
/* test_digest.c - SHA-256 through libcrypto against the FIPS 180-2 test vectors (the digests stored
 * tokens were hashed with before libcrypto did it), hashing in parts, constant-time compare. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "digest.h"
#include "util.h"

static void check(const char *msg, size_t len, const char *want)
{
	uint8_t d[DIGEST_SHA256_LEN];
	char h[2 * DIGEST_SHA256_LEN + 1];
	assert_int_equal(digest_sha256(msg, len, d), 0);
	util_hex_encode(d, sizeof(d), h);
	assert_string_equal(h, want);
}

static void test_fips_vectors(void **state)
{
	/* FIPS 180-2 appendix B.1, B.2, and the empty message */
	check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* 55, 64 bytes: the padding edge cases */
	char a[200];
	memset(a, 'a', sizeof(a));
	check(a, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
	check(a, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

static void test_parts(void **state)
{
	/* in parts, the same digest as the whole: the Idempotency-Key fingerprints hash "POST messages\0",
	 * the role with its NUL, then the content */
	static const char whole[] = "POST messages\0user\0hello";
	struct digest_part p[3] = { { "POST messages", 14 }, { "user", 5 }, { "hello", 5 } };
	uint8_t x[DIGEST_SHA256_LEN], y[DIGEST_SHA256_LEN];
	assert_int_equal(digest_sha256(whole, sizeof(whole) - 1, x), 0);
	assert_int_equal(digest_sha256_parts(p, 3, y), 0);
	assert_memory_equal(x, y, sizeof(x));
	/* no parts: the empty message */
	char h[2 * DIGEST_SHA256_LEN + 1];
	assert_int_equal(digest_sha256_parts(NULL, 0, y), 0);
	util_hex_encode(y, sizeof(y), h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_million_a(void **state)
{
	/* FIPS 180-2 appendix B.3: one million 'a', in 1000 parts */
	static char a[1000];
	struct digest_part p[1000];
	memset(a, 'a', sizeof(a));
	for (int i = 0; i < 1000; i++)
		p[i] = (struct digest_part){ a, sizeof(a) };
	uint8_t d[DIGEST_SHA256_LEN];
	char h[2 * DIGEST_SHA256_LEN + 1];
	assert_int_equal(digest_sha256_parts(p, 1000, d), 0);
	util_hex_encode(d, sizeof(d), h);
	assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_equal_ct(void **state)
{
	uint8_t x[DIGEST_SHA256_LEN], y[DIGEST_SHA256_LEN];
	assert_int_equal(digest_sha256("x", 1, x), 0);
	memcpy(y, x, sizeof(y));
	assert_true(digest_equal_ct(x, y, DIGEST_SHA256_LEN));
	y[DIGEST_SHA256_LEN - 1] ^= 1;
	assert_false(digest_equal_ct(x, y, DIGEST_SHA256_LEN));
	y[DIGEST_SHA256_LEN - 1] ^= 1;
	y[0] ^= 0x80;
	assert_false(digest_equal_ct(x, y, DIGEST_SHA256_LEN));
	assert_true(digest_equal_ct(x, y, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fips_vectors),
		cmocka_unit_test(test_parts),
		cmocka_unit_test(test_million_a),
		cmocka_unit_test(test_equal_ct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
