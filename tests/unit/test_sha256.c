/* test_sha256.c - SHA-256 against the FIPS 180-2 test vectors, split updates, constant-time compare. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "sha256.h"

static void hex(const uint8_t *d, char *out)
{
	for (int i = 0; i < SHA256_LEN; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void check(const char *msg, size_t len, const char *want)
{
	uint8_t d[SHA256_LEN];
	char h[2 * SHA256_LEN + 1];
	sha256(msg, len, d);
	hex(d, h);
	assert_string_equal(h, want);
}

static void test_fips_vectors(void **state)
{
	/* FIPS 180-2 appendix B.1, B.2, and the empty message */
	check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* 55, 56, 64 bytes: the padding edge cases */
	char a[200];
	memset(a, 'a', sizeof(a));
	check(a, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
	check(a, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

static void test_million_a(void **state)
{
	/* FIPS 180-2 appendix B.3: one million 'a', fed in uneven pieces */
	struct sha256_ctx c;
	char a[1000];
	memset(a, 'a', sizeof(a));
	sha256_init(&c);
	size_t left = 1000000, step = 1;
	while (left) {
		size_t n = step < left ? step : left;
		sha256_update(&c, a, n);
		left -= n;
		step = step % 900 + 13; /* stays within a[] */
	}
	uint8_t d[SHA256_LEN];
	char h[2 * SHA256_LEN + 1];
	sha256_final(&c, d);
	hex(d, h);
	assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_equal_ct(void **state)
{
	uint8_t x[SHA256_LEN], y[SHA256_LEN];
	sha256("x", 1, x);
	memcpy(y, x, sizeof(y));
	assert_true(sha256_equal_ct(x, y, SHA256_LEN));
	y[SHA256_LEN - 1] ^= 1;
	assert_false(sha256_equal_ct(x, y, SHA256_LEN));
	y[SHA256_LEN - 1] ^= 1;
	y[0] ^= 0x80;
	assert_false(sha256_equal_ct(x, y, SHA256_LEN));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fips_vectors),
		cmocka_unit_test(test_million_a),
		cmocka_unit_test(test_equal_ct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
