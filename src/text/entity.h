/* SPDX-License-Identifier: PostgreSQL */
/* entity.h - HTML character references (&amp; &#233; &#x1F600;) decoded to UTF-8. */
#ifndef NP_ENTITY_H
#define NP_ENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "textbuf.h"

/* Longest reference we read: "&#x" + 8 digits + ";" or a named one of up to 31 letters. */
#define ENTITY_MAX_LEN 34

/* Encode code point cp (≤ U+10FFFF, not a surrogate) as UTF-8 into out; returns 1 to 4, or 0
 * when cp is not a Unicode scalar value. */
size_t entity_utf8_encode(uint32_t cp, char out[4]);

/* Decode the reference that s[0..n) starts with (s[0] == '&').
 * Returns the bytes consumed (≥ 4, the ';' included) with the character's UTF-8 in out[0..*outlen);
 * 0 when s does not start a reference we know (an unknown name such as "&foo;", no ';', a lone
 * '&'): the '&' is then ordinary text, as browsers treat it;
 * -1 when s starts a numeric reference that names no character we accept: NUL, a surrogate,
 * beyond U+10FFFF, more than 8 digits, or a control character other than tab, line feed and
 * carriage return (U+0001-U+001F, U+007F-U+009F); *reason then says which. */
int entity_decode_one(const char *s, size_t n, char out[4], size_t *outlen, const char **reason);

/* Append s[0..n) to b with every reference decoded. Returns 0; -1 on an invalid numeric reference
 * (*reason says why; *at is its offset in s) or when out of memory (*reason "out of memory"). */
__attribute__((warn_unused_result))
int entity_decode(const char *s, size_t n, struct textbuf *b, const char **reason, size_t *at);

#endif
