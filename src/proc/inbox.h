/* SPDX-License-Identifier: PostgreSQL */
/* inbox.h - a worker's accepted FastCGI connections that are not ready to be served. */
#ifndef NP_INBOX_H
#define NP_INBOX_H

#include <stdbool.h>
#include <stdint.h>

#define INBOX_MAX 32  /* per worker; when full, one entry is closed to make room (inbox_add) */

enum inbox_kind { INBOX_MAIN = 0, INBOX_CONTROL = 1 };

enum inbox_wait {
	INBOX_REQUEST = 0, /* its request has not fully arrived (deadline: request_read_timeout_ms) */
	INBOX_KEPT,        /* fastcgi_keep_conn, idle between requests: no deadline until a byte comes */
	INBOX_LINGER,      /* answered and shut down for writing: read and dropped until the peer closes */
};

struct inbox_entry {
	int fd;
	enum inbox_kind kind;
	enum inbox_wait wait;
	int64_t deadline_ms; /* monotonic; 0 for INBOX_KEPT */
	int64_t since_ms;    /* monotonic: accepted (or, kept, when its last request ended) */
};

/* The entries' sockets are registered edge-triggered in an epoll set, polled through its fd: a
 * connection whose bytes were looked at (MSG_PEEK leaves them in the socket) is reported again
 * only when more arrive, not on every poll. */
struct inbox {
	int epfd;
	int n;
	struct inbox_entry e[INBOX_MAX];
};

/* Create the epoll set. Returns 0, or -1 with errno. */
int inbox_init(struct inbox *ib) __attribute__((warn_unused_result));
/* Fill fds (room for INBOX_MAX) with the sockets that have news since they were last reported;
 * returns how many. */
int inbox_ready(struct inbox *ib, int *fds);

/* Park x. When the inbox is full, one entry is closed to make room (a lingering one, else an idle
 * kept one, else the oldest request): returns 1 then (the caller logs), else 0. */
int inbox_add(struct inbox *ib, struct inbox_entry x);
/* Whether inbox_add would find room without closing a request younger than min_age_ms (a burst
 * of slow but honest peers is left in the backlog for other workers rather than cut off). */
bool inbox_has_room(const struct inbox *ib, int64_t now_ms, int64_t min_age_ms);
/* Whether a connection accepted less than max_age_ms ago still waits for its request. */
bool inbox_has_fresh_request(const struct inbox *ib, int64_t now_ms, int64_t max_age_ms);
/* Take entry i out (the caller owns its fd now, no longer watched); the last entry moves into its place. */
struct inbox_entry inbox_take(struct inbox *ib, int i);
/* Index of the entry holding fd, or -1. */
int inbox_find(const struct inbox *ib, int fd);
/* Close every entry past its deadline. Returns how many INBOX_REQUEST entries that was (read
 * timeouts; lingering ones are not counted) and sets *oldest_ms to the age of the oldest of them. */
int inbox_expire(struct inbox *ib, int64_t now_ms, int64_t *oldest_ms);
/* Milliseconds until the next deadline (at least 0), or -1 when there is none. */
int64_t inbox_next_ms(const struct inbox *ib, int64_t now_ms);
/* A stop: close idle kept and lingering connections now, and give requests still arriving at most
 * grace_ms more (a front server's request in transit is served; a silent peer does not hold the
 * stop). Returns how many entries remain. */
int inbox_stop(struct inbox *ib, int64_t now_ms, int64_t grace_ms);
/* Close everything and the epoll set (a stop does not wait for parked connections). */
void inbox_close_all(struct inbox *ib);

#endif
