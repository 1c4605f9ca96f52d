/* SPDX-License-Identifier: PostgreSQL */
/* fuzz_percent.c - percent-decoding, UTF-8 validation, log quoting and integer parsing of query strings. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The input is a raw query string (or path). Each of its '&'-separated NAME=VALUE pairs is decoded the
 * way the API decodes a query parameter, and the whole input at several capacities, every result checked
 * against a plain reference; then UTF-8 validation, log quoting and integer parsing of the decoded text. */

static void fuzz_check(int ok)
{
	if (!ok)
		abort();
}

static int fuzz_hex(unsigned char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Reference decoder: the documented contract of util_percent_decode. */
static int fuzz_ref_decode(const unsigned char *s, size_t len, unsigned char *out, size_t cap)
{
	size_t o = 0, i = 0;
	while (i < len) {
		unsigned char c = s[i];
		if (c == '%') {
			if (len - i < 3 || fuzz_hex(s[i + 1]) < 0 || fuzz_hex(s[i + 2]) < 0)
				return -1;
			c = (unsigned char)(fuzz_hex(s[i + 1]) * 16 + fuzz_hex(s[i + 2]));
			i += 3;
		} else {
			i++;
		}
		if (c == 0 || o + 1 >= cap)
			return -1;
		out[o++] = c;
	}
	if (cap == 0)
		return -1;
	out[o] = 0;
	return (int)o;
}

/* Reference UTF-8 check by the byte ranges of Unicode's table 3-7 (well-formed sequences). */
static bool fuzz_ref_utf8(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xBF;
		size_t need;
		if (c <= 0x7F) { i++; continue; }
		else if (c >= 0xC2 && c <= 0xDF) need = 1;
		else if (c == 0xE0) { need = 2; lo = 0xA0; }
		else if (c >= 0xE1 && c <= 0xEC) need = 2;
		else if (c == 0xED) { need = 2; hi = 0x9F; }
		else if (c >= 0xEE && c <= 0xEF) need = 2;
		else if (c == 0xF0) { need = 3; lo = 0x90; }
		else if (c >= 0xF1 && c <= 0xF3) need = 3;
		else if (c == 0xF4) { need = 3; hi = 0x8F; }
		else return false;
		if (len - i <= need || s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= need; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return false;
		i += need + 1;
	}
	return true;
}

/* Decode src[0..len) into a buffer of exactly cap bytes (so ASan sees any overrun) and compare. */
static void fuzz_decode(const char *src, size_t len, size_t cap)
{
	char *out = malloc(cap ? cap : 1);
	unsigned char *ref = malloc(cap ? cap : 1);
	if (!out || !ref)
		abort();
	int n = util_percent_decode(src, len, out, cap);
	int rn = fuzz_ref_decode((const unsigned char *)src, len, ref, cap);
	fuzz_check(n == rn);
	if (n >= 0) {
		fuzz_check((size_t)n < cap && out[n] == '\0' && memcmp(out, ref, (size_t)n) == 0);
		fuzz_check(strlen(out) == (size_t)n); /* no NUL inside */
		fuzz_check(util_utf8_valid(out, (size_t)n) == fuzz_ref_utf8(ref, (size_t)n));
	}
	free(out);
	free(ref);
}

/* Quote s into exactly n bytes; with room for every byte escaped, unquote it back. */
static void fuzz_quote(const char *s, size_t n)
{
	char *out = malloc(n ? n : 1);
	if (!out)
		abort();
	util_quote_value(s, out, n);
	if (n == 0) {
		free(out);
		return;
	}
	size_t ol = strnlen(out, n);
	fuzz_check(ol < n);
	for (size_t i = 0; i < ol; i++) /* a log value never holds a control byte or a bare newline */
		fuzz_check((unsigned char)out[i] >= ' ' && (unsigned char)out[i] != 0x7f);
	size_t sl = strlen(s);
	if (n >= 4 * sl + 8) {
		if (out[0] != '"') {
			fuzz_check(strcmp(out, s) == 0 && strpbrk(s, " \"=\\") == NULL);
		} else {
			char *back = malloc(sl + 1);
			size_t b = 0;
			if (!back)
				abort();
			fuzz_check(ol >= 2 && out[ol - 1] == '"');
			for (size_t i = 1; i < ol - 1; i++) {
				if (out[i] != '\\') {
					fuzz_check(out[i] != '"');
					back[b++] = out[i];
					continue;
				}
				i++;
				fuzz_check(i < ol - 1);
				if (out[i] == 'n') {
					back[b++] = '\n';
				} else if (out[i] == 'x') {
					fuzz_check(i + 2 < ol - 1 && fuzz_hex((unsigned char)out[i + 1]) >= 0 &&
					           fuzz_hex((unsigned char)out[i + 2]) >= 0);
					back[b++] = (char)(fuzz_hex((unsigned char)out[i + 1]) * 16 + fuzz_hex((unsigned char)out[i + 2]));
					i += 2;
				} else {
					fuzz_check(out[i] == '"' || out[i] == '\\');
					back[b++] = out[i];
				}
				fuzz_check(b <= sl);
			}
			fuzz_check(b == sl && memcmp(back, s, sl) == 0);
			free(back);
		}
	}
	free(out);
}

static void fuzz_int(const char *s)
{
	static const int64_t bounds[][2] = { { 0, INT64_MAX }, { 1, 100 }, { 0, 1000000 }, { INT64_MIN, INT64_MAX } };
	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		int64_t v = 12345;
		if (util_parse_i64(s, bounds[i][0], bounds[i][1], &v) == 0) {
			char back[32];
			fuzz_check(v >= bounds[i][0] && v <= bounds[i][1]);
			snprintf(back, sizeof(back), "%lld", (long long)v);
			/* what strtoll accepts: optional space and sign, leading zeros */
			fuzz_check(strchr(s, back[strlen(back) - 1]) != NULL);
		} else {
			fuzz_check(v == 12345); /* untouched on failure */
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';

	/* the whole input, raw bytes (NUL included), at capacities around its length */
	static const size_t caps[] = { 0, 1, 2, 3, 8, 32 };
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		fuzz_decode(in, size, caps[i]);
	fuzz_decode(in, size, size / 3 + 1);
	fuzz_decode(in, size, size + 1);
	fuzz_check(util_utf8_valid(in, size) == fuzz_ref_utf8(data, size));

	/* as a query string: NAME=VALUE pairs, each value decoded into the API's 32-byte buffer */
	size_t qlen = strlen(in);
	for (const char *p = in; p < in + qlen;) {
		const char *amp = memchr(p, '&', (size_t)(in + qlen - p));
		size_t len = amp ? (size_t)(amp - p) : (size_t)(in + qlen - p);
		const char *eq = memchr(p, '=', len);
		char value[32];
		if (eq) {
			fuzz_decode(p, (size_t)(eq - p), 64);
			fuzz_decode(eq + 1, len - (size_t)(eq - p) - 1, sizeof(value));
			if (util_percent_decode(eq + 1, len - (size_t)(eq - p) - 1, value, sizeof(value)) >= 0)
				fuzz_int(value);
		}
		p += len + 1;
	}

	/* the decoded text as a log value, at small and ample sizes */
	char *dec = malloc(size + 1);
	if (dec == NULL)
		abort();
	if (util_percent_decode(in, qlen, dec, size + 1) < 0)
		memcpy(dec, in, qlen + 1);
	static const size_t qn[] = { 0, 1, 2, 3, 6, 7, 16 };
	for (size_t i = 0; i < sizeof(qn) / sizeof(qn[0]); i++)
		fuzz_quote(dec, qn[i]);
	fuzz_quote(dec, 4 * strlen(dec) + 8);
	fuzz_int(in);
	free(dec);
	free(in);
	return 0;
}
