/* SPDX-License-Identifier: PostgreSQL */
/* sseparse.h - a Server-Sent Events parser for bytes that arrive in chunks of any size (the
 * language model's stream): lines end with LF, CRLF or CR (also split across chunks), "data:"
 * lines join with LF, "event:" names the event, comments and other fields are skipped, an empty
 * line dispatches. Bounded: an event larger than max bytes is an error. Pure. */
#ifndef NP_SSEPARSE_H
#define NP_SSEPARSE_H

#include <stdbool.h>
#include <stddef.h>

/* Called per dispatched event (data non-empty): event is "" when unnamed; data is NUL-terminated
 * (len bytes). Return 0 to go on, non-zero to stop (sse_feed returns it). */
typedef int (*sse_event_fn)(void *ctx, const char *event, const char *data, size_t len);

struct sse_parser {
	char *line;         /* the current line */
	size_t len, cap;
	char *data;         /* the current event's data */
	size_t dlen, dcap;
	bool has_data;
	char event[64];
	bool cr;            /* the last byte was CR: an LF right after it ends nothing */
	size_t max;         /* largest line and event */
};

void sse_init(struct sse_parser *p, size_t max);
/* Feed n bytes. 0, -1 (an event or line over max, or out of memory), or the callback's non-zero. */
int sse_feed(struct sse_parser *p, const char *buf, size_t n, sse_event_fn fn, void *ctx);
void sse_free(struct sse_parser *p);

#endif
