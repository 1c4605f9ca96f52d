/* SPDX-License-Identifier: PostgreSQL */
/* digest.c - SHA-256 and constant-time comparison, done by libcrypto (EVP_Digest, CRYPTO_memcmp):
 * the library libpq and libcurl load anyway, instead of a primitive of our own. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "digest.h"

int digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_SHA256_LEN])
{
	unsigned int n = 0;
	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != DIGEST_SHA256_LEN) {
		memset(out, 0, DIGEST_SHA256_LEN);
		return -1;
	}
	return 0;
}

int digest_sha256_parts(const struct digest_part *parts, size_t n, uint8_t out[DIGEST_SHA256_LEN])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int got = 0;
	bool ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
	for (size_t i = 0; ok && i < n; i++)
		ok = EVP_DigestUpdate(c, parts[i].data, parts[i].len) == 1;
	ok = ok && EVP_DigestFinal_ex(c, out, &got) == 1 && got == DIGEST_SHA256_LEN;
	EVP_MD_CTX_free(c);
	if (!ok) {
		memset(out, 0, DIGEST_SHA256_LEN);
		return -1;
	}
	return 0;
}

bool digest_equal_ct(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
