/* SPDX-License-Identifier: PostgreSQL */
/* fuzz_sse.c - libFuzzer target: sse_feed() (src/http/sseparse.c) over the same bytes cut into
 * chunks at the points the input chooses. Checks its promises: the events (name and data) do not
 * depend on where the chunks were cut, data never exceeds the bound, names are NUL-free.
 * Build: clang -fsanitize=fuzzer,address -Isrc/http tests/fuzz/fuzz_sse.c src/http/sseparse.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sseparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SSE_MAX 512

struct fuzz_sse_log {
	char *buf;
	size_t len;
};

static int fuzz_sse_on_event(void *ctx, const char *event, const char *d, size_t len)
{
	struct fuzz_sse_log *l = ctx;
	size_t el = strlen(event);
	if (len > FUZZ_SSE_MAX || strlen(d) > len || el >= 64)
		abort();
	char *b = realloc(l->buf, l->len + el + len + 2);
	if (!b)
		abort();
	l->buf = b;
	memcpy(l->buf + l->len, event, el);
	l->buf[l->len + el] = '\x01';
	memcpy(l->buf + l->len + el + 1, d, len);
	l->buf[l->len + el + 1 + len] = '\x02';
	l->len += el + len + 2;
	return 0;
}

/* Feed data in chunks: cut after every byte whose low bits match mask (mask 0: one chunk). */
static int fuzz_sse_run(const uint8_t *data, size_t size, unsigned mask, struct fuzz_sse_log *log)
{
	struct sse_parser p;
	sse_init(&p, FUZZ_SSE_MAX);
	size_t start = 0;
	int rc = 0;
	for (size_t i = 0; i < size && rc == 0; i++)
		if (i + 1 == size || (mask && (data[i] & mask) == mask)) {
			rc = sse_feed(&p, (const char *)data + start, i + 1 - start, fuzz_sse_on_event, log);
			start = i + 1;
		}
	sse_free(&p);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mask = data[0] & 7;
	struct fuzz_sse_log whole = { 0 }, cut = { 0 };
	int r1 = fuzz_sse_run(data + 1, size - 1, 0, &whole);
	int r2 = fuzz_sse_run(data + 1, size - 1, mask ? mask : 1, &cut);
	/* the same events up to an error, and the same outcome */
	if (r1 != r2 || (r1 == 0 && (whole.len != cut.len || (whole.len && memcmp(whole.buf, cut.buf, whole.len)))))
		abort();
	free(whole.buf);
	free(cut.buf);
	return 0;
}
