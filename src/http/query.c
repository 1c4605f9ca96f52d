/* SPDX-License-Identifier: PostgreSQL */
/* query.c - one parameter of a raw query string (application/x-www-form-urlencoded), decoded and checked. */
#include <string.h>

#include "query.h"
#include "util.h"


/* Decode src[0..n) into out: '+' a space, %XX a byte. */
static enum query_status query_decode(const char *src, size_t n, char *out, size_t cap, size_t *len)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = src[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (n - i < 3)
				return QUERY_MALFORMED;
			int hi = util_hex_digit(src[i + 1]), lo = util_hex_digit(src[i + 2]);
			if (hi < 0 || lo < 0)
				return QUERY_MALFORMED;
			c = (char)(hi * 16 + lo);
			if (c == '\0')
				return QUERY_MALFORMED;
			i += 2;
		}
		if (o + 1 >= cap)
			return QUERY_TOO_LONG;
		out[o++] = c;
	}
	out[o] = '\0';
	*len = o;
	return QUERY_FOUND;
}

enum query_status query_param(const char *query, const char *key, char *out, size_t cap, size_t *len)
{
	size_t klen = strlen(key), dummy;
	const char *val = NULL;
	size_t vlen = 0;
	if (len == NULL)
		len = &dummy;
	*len = 0;
	if (cap == 0)
		return QUERY_TOO_LONG;
	out[0] = '\0';
	for (const char *p = query; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t plen = amp ? (size_t)(amp - p) : strlen(p);
		if (plen >= klen && strncmp(p, key, klen) == 0 && (plen == klen || p[klen] == '=')) {
			if (val)
				return QUERY_REPEATED;
			val = plen == klen ? p + plen : p + klen + 1;
			vlen = plen == klen ? 0 : plen - klen - 1;
		}
		p = amp ? amp + 1 : NULL;
	}
	if (val == NULL)
		return QUERY_ABSENT;
	enum query_status st = query_decode(val, vlen, out, cap, len);
	if (st == QUERY_FOUND && !util_utf8_valid(out, *len))
		st = QUERY_NOT_UTF8;
	if (st != QUERY_FOUND) {
		out[0] = '\0';
		*len = 0;
	}
	return st;
}

const char *query_status_text(enum query_status st)
{
	switch (st) {
	case QUERY_FOUND: return "found";
	case QUERY_ABSENT: return "absent";
	case QUERY_MALFORMED: return "malformed percent-encoding";
	case QUERY_TOO_LONG: return "too long";
	case QUERY_NOT_UTF8: return "not valid UTF-8";
	case QUERY_REPEATED: return "given more than once";
	}
	return "invalid";
}
