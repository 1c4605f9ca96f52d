/* SPDX-License-Identifier: PostgreSQL */
/* sseparse.c - a Server-Sent Events parser over chunks (the WHATWG event-stream format). */
#include <stdlib.h>
#include <string.h>

#include "sseparse.h"

void sse_init(struct sse_parser *p, size_t max)
{
	memset(p, 0, sizeof(*p));
	p->max = max;
}

void sse_free(struct sse_parser *p)
{
	free(p->line);
	free(p->data);
	memset(p, 0, sizeof(*p));
}

static int sse_grow(char **buf, size_t *cap, size_t need, size_t max)
{
	if (need > max + 1)
		return -1;
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 256;
	while (c < need)
		c *= 2;
	if (c > max + 1)
		c = max + 1;
	char *b = realloc(*buf, c);
	if (!b)
		return -1;
	*buf = b;
	*cap = c;
	return 0;
}

/* One complete line (without its end). */
static int sse_line(struct sse_parser *p, sse_event_fn fn, void *ctx)
{
	const char *l = p->line ? p->line : "";
	size_t n = p->len;
	if (n == 0) {
		int rc = 0;
		if (p->has_data) {
			p->data[p->dlen] = '\0';
			rc = fn(ctx, p->event, p->data, p->dlen);
		}
		p->dlen = 0;
		p->has_data = false;
		p->event[0] = '\0';
		return rc;
	}
	if (l[0] == ':')
		return 0; /* a comment (keepalive) */
	const char *colon = memchr(l, ':', n);
	size_t fl = colon ? (size_t)(colon - l) : n;
	const char *v = colon ? colon + 1 : l + n;
	size_t vl = colon ? n - fl - 1 : 0;
	if (vl > 0 && v[0] == ' ') {
		v++;
		vl--;
	}
	if (fl == 4 && memcmp(l, "data", 4) == 0) {
		size_t need = p->dlen + (p->has_data ? 1 : 0) + vl + 1;
		if (sse_grow(&p->data, &p->dcap, need, p->max) < 0)
			return -1;
		if (p->has_data)
			p->data[p->dlen++] = '\n';
		memcpy(p->data + p->dlen, v, vl);
		p->dlen += vl;
		p->data[p->dlen] = '\0';
		p->has_data = true;
	} else if (fl == 5 && memcmp(l, "event", 5) == 0) {
		if (vl >= sizeof(p->event))
			vl = sizeof(p->event) - 1;
		memcpy(p->event, v, vl);
		p->event[vl] = '\0';
	}
	/* id, retry and unknown fields: nothing we use */
	return 0;
}

int sse_feed(struct sse_parser *p, const char *buf, size_t n, sse_event_fn fn, void *ctx)
{
	for (size_t i = 0; i < n; i++) {
		char c = buf[i];
		if (c == '\n' && p->cr) {
			p->cr = false;
			continue;
		}
		p->cr = c == '\r';
		if (c == '\n' || c == '\r') {
			int rc = sse_line(p, fn, ctx);
			p->len = 0;
			if (rc != 0)
				return rc;
			continue;
		}
		/* a run of ordinary bytes at once */
		size_t j = i;
		while (j < n && buf[j] != '\n' && buf[j] != '\r')
			j++;
		if (sse_grow(&p->line, &p->cap, p->len + (j - i) + 1, p->max) < 0)
			return -1;
		memcpy(p->line + p->len, buf + i, j - i);
		p->len += j - i;
		p->line[p->len] = '\0';
		i = j - 1;
	}
	return 0;
}
