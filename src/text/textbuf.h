/* SPDX-License-Identifier: PostgreSQL */
/* textbuf.h - a growable NUL-terminated byte buffer for the text library. */
#ifndef NP_TEXTBUF_H
#define NP_TEXTBUF_H

#include <stddef.h>

struct textbuf {
	char *p;      /* NULL until the first append; then always NUL-terminated */
	size_t len;
	size_t cap;
};

/* Append s[0..n). Returns 0, or -1 when out of memory (b is unchanged). */
__attribute__((warn_unused_result))
int textbuf_append(struct textbuf *b, const char *s, size_t n);
/* Append one byte. Returns 0 or -1 (out of memory). */
__attribute__((warn_unused_result))
int textbuf_putc(struct textbuf *b, char c);
/* Hand over the contents as a malloc'd string ("" when empty) and reset b; NULL when out of memory. */
char *textbuf_take(struct textbuf *b);
/* Forget the contents, keep the allocation. */
void textbuf_clear(struct textbuf *b);
void textbuf_free(struct textbuf *b);

#endif
