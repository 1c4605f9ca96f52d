/* SPDX-License-Identifier: PostgreSQL */
/* fuzz_query.c - libFuzzer target: query_param() (src/http/query.c) on any query string and key.
 * Checks its promises: a found value is valid UTF-8 without NUL, its length as reported and below
 * the capacity, the same on a second call, and a value that fits a larger buffer fits only there;
 * any other answer leaves the buffer empty. Build: clang -fsanitize=fuzzer,address -D_GNU_SOURCE
 * -Isrc/core -Isrc/http tests/fuzz/fuzz_query.c src/http/query.c src/core/util.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	/* first byte: the capacity (0..255); then the key up to the first NUL, then the query */
	size_t cap = data[0];
	const uint8_t *k = data + 1, *nul = memchr(k, '\0', size - 1);
	if (nul == NULL)
		return 0;
	char *key = strndup((const char *)k, (size_t)(nul - k));
	char *query = strndup((const char *)nul + 1, size - (size_t)(nul + 1 - data));
	char *out = malloc(cap ? cap : 1), big[4100];
	if (!key || !query || !out)
		abort();
	size_t len = 12345, len2;
	enum query_status st = query_param(query, key, out, cap, &len);
	if (st == QUERY_FOUND) {
		if (len >= cap || strlen(out) != len || !util_utf8_valid(out, len))
			abort();
		if (query_param(query, key, big, sizeof(big), &len2) != QUERY_FOUND || len2 != len || memcmp(big, out, len))
			abort();
	} else {
		if (len != 0 || (cap > 0 && out[0] != '\0'))
			abort();
		if (st == QUERY_TOO_LONG && cap > 0 && strlen(query) < sizeof(big) &&
		    query_param(query, key, big, sizeof(big), &len2) == QUERY_FOUND && len2 + 1 <= cap)
			abort(); /* fitted after all */
		if (st != QUERY_ABSENT && st != QUERY_MALFORMED && st != QUERY_TOO_LONG && st != QUERY_NOT_UTF8 &&
		    st != QUERY_REPEATED)
			abort();
	}
	(void)query_status_text(st);
	free(key);
	free(query);
	free(out);
	return 0;
}
