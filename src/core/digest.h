/* SPDX-License-Identifier: PostgreSQL */
/* digest.h - SHA-256 and constant-time comparison through OpenSSL's libcrypto: session tokens are
 * stored as their hash, requests are fingerprinted for Idempotency-Key, migrations are checksummed. */
#ifndef NP_DIGEST_H
#define NP_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIGEST_SHA256_LEN 32

/* One piece of a message hashed in parts (data[0..len)). */
struct digest_part {
	const void *data;
	size_t len;
};

/* The SHA-256 of data[0..len) into out. 0, or -1 when libcrypto failed (out is then zeroed). */
__attribute__((warn_unused_result))
int digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_SHA256_LEN]);

/* The SHA-256 of the n parts one after the other (as if concatenated). 0, or -1 (out zeroed). */
__attribute__((warn_unused_result))
int digest_sha256_parts(const struct digest_part *parts, size_t n, uint8_t out[DIGEST_SHA256_LEN]);

/* Whether a[0..n) equals b[0..n), in time that depends only on n (CRYPTO_memcmp). */
bool digest_equal_ct(const void *a, const void *b, size_t n);

#endif
