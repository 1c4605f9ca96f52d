/* SPDX-License-Identifier: PostgreSQL */
/* entity.c - HTML character references (&amp; &#233; &#x1F600;) decoded to UTF-8. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "entity.h"
#include "util.h"

/* The named references we decode (HTML's common ones), sorted by strcmp for bsearch. Any other
 * &name; is left as text, as a browser leaves an unknown one. */
struct entity_name {
	const char *name;
	uint32_t cp;
};
static const struct entity_name entity_names[] = {
	{ "AElig", 0x00C6 },
	{ "Aacute", 0x00C1 },
	{ "Agrave", 0x00C0 },
	{ "Aring", 0x00C5 },
	{ "Auml", 0x00C4 },
	{ "Ccedil", 0x00C7 },
	{ "Dagger", 0x2021 },
	{ "Delta", 0x0394 },
	{ "Eacute", 0x00C9 },
	{ "Ntilde", 0x00D1 },
	{ "Oacute", 0x00D3 },
	{ "Omega", 0x03A9 },
	{ "Oslash", 0x00D8 },
	{ "Ouml", 0x00D6 },
	{ "Prime", 0x2033 },
	{ "Sigma", 0x03A3 },
	{ "Uuml", 0x00DC },
	{ "aacute", 0x00E1 },
	{ "acirc", 0x00E2 },
	{ "aelig", 0x00E6 },
	{ "agrave", 0x00E0 },
	{ "alpha", 0x03B1 },
	{ "amp", 0x0026 },
	{ "and", 0x2227 },
	{ "apos", 0x0027 },
	{ "aring", 0x00E5 },
	{ "asymp", 0x2248 },
	{ "auml", 0x00E4 },
	{ "bdquo", 0x201E },
	{ "beta", 0x03B2 },
	{ "brvbar", 0x00A6 },
	{ "bull", 0x2022 },
	{ "cap", 0x2229 },
	{ "ccedil", 0x00E7 },
	{ "cent", 0x00A2 },
	{ "copy", 0x00A9 },
	{ "cup", 0x222A },
	{ "dArr", 0x21D3 },
	{ "dagger", 0x2020 },
	{ "darr", 0x2193 },
	{ "deg", 0x00B0 },
	{ "delta", 0x03B4 },
	{ "divide", 0x00F7 },
	{ "eacute", 0x00E9 },
	{ "ecirc", 0x00EA },
	{ "egrave", 0x00E8 },
	{ "empty", 0x2205 },
	{ "emsp", 0x2003 },
	{ "ensp", 0x2002 },
	{ "epsilon", 0x03B5 },
	{ "equiv", 0x2261 },
	{ "euml", 0x00EB },
	{ "euro", 0x20AC },
	{ "exist", 0x2203 },
	{ "forall", 0x2200 },
	{ "frac12", 0x00BD },
	{ "frac14", 0x00BC },
	{ "frac34", 0x00BE },
	{ "gamma", 0x03B3 },
	{ "ge", 0x2265 },
	{ "gt", 0x003E },
	{ "hArr", 0x21D4 },
	{ "harr", 0x2194 },
	{ "hellip", 0x2026 },
	{ "iacute", 0x00ED },
	{ "icirc", 0x00EE },
	{ "iexcl", 0x00A1 },
	{ "infin", 0x221E },
	{ "iquest", 0x00BF },
	{ "isin", 0x2208 },
	{ "iuml", 0x00EF },
	{ "lArr", 0x21D0 },
	{ "lambda", 0x03BB },
	{ "laquo", 0x00AB },
	{ "larr", 0x2190 },
	{ "ldquo", 0x201C },
	{ "le", 0x2264 },
	{ "lrm", 0x200E },
	{ "lsaquo", 0x2039 },
	{ "lsquo", 0x2018 },
	{ "lt", 0x003C },
	{ "macr", 0x00AF },
	{ "mdash", 0x2014 },
	{ "micro", 0x00B5 },
	{ "middot", 0x00B7 },
	{ "minus", 0x2212 },
	{ "mu", 0x03BC },
	{ "nabla", 0x2207 },
	{ "nbsp", 0x00A0 },
	{ "ndash", 0x2013 },
	{ "ne", 0x2260 },
	{ "not", 0x00AC },
	{ "notin", 0x2209 },
	{ "ntilde", 0x00F1 },
	{ "oacute", 0x00F3 },
	{ "ocirc", 0x00F4 },
	{ "oelig", 0x0153 },
	{ "ograve", 0x00F2 },
	{ "omega", 0x03C9 },
	{ "or", 0x2228 },
	{ "ordf", 0x00AA },
	{ "ordm", 0x00BA },
	{ "oslash", 0x00F8 },
	{ "ouml", 0x00F6 },
	{ "para", 0x00B6 },
	{ "part", 0x2202 },
	{ "permil", 0x2030 },
	{ "pi", 0x03C0 },
	{ "plusmn", 0x00B1 },
	{ "pound", 0x00A3 },
	{ "prime", 0x2032 },
	{ "prod", 0x220F },
	{ "quot", 0x0022 },
	{ "rArr", 0x21D2 },
	{ "radic", 0x221A },
	{ "raquo", 0x00BB },
	{ "rarr", 0x2192 },
	{ "rdquo", 0x201D },
	{ "reg", 0x00AE },
	{ "rlm", 0x200F },
	{ "rsaquo", 0x203A },
	{ "rsquo", 0x2019 },
	{ "sbquo", 0x201A },
	{ "sect", 0x00A7 },
	{ "shy", 0x00AD },
	{ "sigma", 0x03C3 },
	{ "sum", 0x2211 },
	{ "sup1", 0x00B9 },
	{ "sup2", 0x00B2 },
	{ "sup3", 0x00B3 },
	{ "szlig", 0x00DF },
	{ "thinsp", 0x2009 },
	{ "times", 0x00D7 },
	{ "trade", 0x2122 },
	{ "uacute", 0x00FA },
	{ "uarr", 0x2191 },
	{ "ucirc", 0x00FB },
	{ "ugrave", 0x00F9 },
	{ "uml", 0x00A8 },
	{ "uuml", 0x00FC },
	{ "yen", 0x00A5 },
	{ "yuml", 0x00FF },
	{ "zwj", 0x200D },
	{ "zwnj", 0x200C },
};

size_t entity_utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp >= 0xD800 && cp <= 0xDFFF)
		return 0;
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	if (cp <= 0x10FFFF) {
		out[0] = (char)(0xF0 | (cp >> 18));
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[3] = (char)(0x80 | (cp & 0x3F));
		return 4;
	}
	return 0;
}

static int entity_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct entity_name *)elem)->name);
}

static bool entity_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}


/* &#NNN; or &#xHHH; at s (s[1] == '#'). */
static int entity_numeric(const char *s, size_t n, char out[4], size_t *outlen, const char **reason)
{
	size_t i = 2;
	int base = 10;
	if (i < n && (s[i] == 'x' || s[i] == 'X')) {
		base = 16;
		i++;
	}
	size_t start = i;
	uint32_t cp = 0;
	while (i < n) {
		int d = base == 16 ? util_hex_digit(s[i]) : (s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : -1);
		if (d < 0)
			break;
		if (i - start >= 8) {
			*reason = "numeric character reference with more than 8 digits";
			return -1;
		}
		cp = cp * (uint32_t)base + (uint32_t)d;
		i++;
	}
	if (i == start || i >= n || s[i] != ';')
		return 0;   /* "&#", "&#x;", "&#12" without ';': text */
	if (cp == 0) {
		*reason = "numeric character reference to NUL";
		return -1;
	}
	if (cp > 0x10FFFF) {
		*reason = "numeric character reference beyond U+10FFFF";
		return -1;
	}
	if (cp >= 0xD800 && cp <= 0xDFFF) {
		*reason = "numeric character reference to a surrogate (U+D800-U+DFFF)";
		return -1;
	}
	if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || (cp >= 0x7F && cp <= 0x9F)) {
		*reason = "numeric character reference to a control character";
		return -1;
	}
	*outlen = entity_utf8_encode(cp, out);
	return (int)(i + 1);
}

int entity_decode_one(const char *s, size_t n, char out[4], size_t *outlen, const char **reason)
{
	if (n < 3 || s[0] != '&')
		return 0;
	if (n > ENTITY_MAX_LEN)
		n = ENTITY_MAX_LEN;
	if (s[1] == '#')
		return entity_numeric(s, n, out, outlen, reason);
	char name[ENTITY_MAX_LEN];
	size_t i = 1;
	while (i < n && entity_is_alnum(s[i]))
		i++;
	if (i == 1 || i >= n || s[i] != ';')
		return 0;
	memcpy(name, s + 1, i - 1);
	name[i - 1] = '\0';
	const struct entity_name *e = bsearch(name, entity_names, sizeof(entity_names) / sizeof(entity_names[0]),
	                                      sizeof(entity_names[0]), entity_cmp);
	if (!e)
		return 0;
	*outlen = entity_utf8_encode(e->cp, out);
	return (int)(i + 1);
}

int entity_decode(const char *s, size_t n, struct textbuf *b, const char **reason, size_t *at)
{
	size_t i = 0, run = 0;   /* s[run..i) is plain text not yet appended */
	while (i < n) {
		const char *amp = memchr(s + i, '&', n - i);
		if (!amp)
			break;
		i = (size_t)(amp - s);
		char out[4];
		size_t outlen = 0;
		int k = entity_decode_one(s + i, n - i, out, &outlen, reason);
		if (k < 0) {
			*at = i;
			return -1;
		}
		if (k == 0) {
			i++;
			continue;
		}
		if (textbuf_append(b, s + run, i - run) < 0 || textbuf_append(b, out, outlen) < 0)
			goto nomem;
		i += (size_t)k;
		run = i;
	}
	if (textbuf_append(b, s + run, n - run) < 0)
		goto nomem;
	return 0;
nomem:
	*reason = "out of memory";
	*at = i;
	return -1;
}
