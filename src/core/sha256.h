/* sha256.h - SHA-256 (FIPS 180-4): session tokens are stored as their hash, requests are
 * fingerprinted for Idempotency-Key. Pure; no libcrypto. */
#ifndef NP_SHA256_H
#define NP_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

struct sha256_ctx {
	uint32_t h[8];
	uint64_t total;       /* bytes hashed so far */
	uint8_t buf[64];
	size_t used;          /* bytes waiting in buf */
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN]);
/* The digest of data[0..len) in one call. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

/* Whether a[0..n) equals b[0..n), in time that depends only on n (no early exit). */
bool sha256_equal_ct(const uint8_t *a, const uint8_t *b, size_t n);

#endif
