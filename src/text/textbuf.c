/* SPDX-License-Identifier: PostgreSQL */
/* textbuf.c - a growable NUL-terminated byte buffer for the text library. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "textbuf.h"

int textbuf_append(struct textbuf *b, const char *s, size_t n)
{
	if (n > SIZE_MAX / 2 - b->len)
		return -1;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int textbuf_putc(struct textbuf *b, char c)
{
	return textbuf_append(b, &c, 1);
}

char *textbuf_take(struct textbuf *b)
{
	char *p = b->p;
	if (!p)
		p = calloc(1, 1);
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void textbuf_clear(struct textbuf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void textbuf_free(struct textbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
