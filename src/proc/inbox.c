/* SPDX-License-Identifier: PostgreSQL */
/* inbox.c - a worker's accepted FastCGI connections that are not ready to be served.
 *
 * A connection whose request has not fully arrived is parked here instead of being read with
 * blocking reads, and polled in the worker loop with the sockets the worker already polls: a
 * peer that sends nothing costs an fd, not a worker (doc/design.md, "Reading a request"). Kept
 * connections idle between requests, and answered ones waiting for the peer's close, wait here too. */
#include <sys/epoll.h>
#include <unistd.h>

#include "inbox.h"

int inbox_init(struct inbox *ib)
{
	ib->n = 0;
	ib->epfd = epoll_create1(EPOLL_CLOEXEC);
	return ib->epfd < 0 ? -1 : 0;
}

int inbox_ready(struct inbox *ib, int *fds)
{
	struct epoll_event ev[INBOX_MAX];
	int k = epoll_wait(ib->epfd, ev, INBOX_MAX, 0);
	for (int i = 0; i < k; i++)
		fds[i] = ev[i].data.fd;
	return k > 0 ? k : 0;
}

int inbox_add(struct inbox *ib, struct inbox_entry x)
{
	int evicted = 0;
	if (ib->n == INBOX_MAX) {
		/* answered connections first, then idle kept ones, then the oldest request */
		static const int rank[] = { [INBOX_LINGER] = 0, [INBOX_KEPT] = 1, [INBOX_REQUEST] = 2 };
		int old = 0;
		for (int i = 1; i < ib->n; i++) {
			int ri = rank[ib->e[i].wait], ro = rank[ib->e[old].wait];
			if (ri < ro || (ri == ro && ib->e[i].since_ms < ib->e[old].since_ms))
				old = i;
		}
		close(inbox_take(ib, old).fd);
		evicted = 1;
	}
	/* a socket that already holds bytes is reported once at once, then only on news */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = x.fd };
	if (epoll_ctl(ib->epfd, EPOLL_CTL_ADD, x.fd, &ev) < 0) {
		close(x.fd);
		return evicted;
	}
	ib->e[ib->n++] = x;
	return evicted;
}

bool inbox_has_room(const struct inbox *ib, int64_t now_ms, int64_t min_age_ms)
{
	if (ib->n < INBOX_MAX)
		return true;
	for (int i = 0; i < ib->n; i++)
		if (ib->e[i].wait != INBOX_REQUEST || now_ms - ib->e[i].since_ms >= min_age_ms)
			return true;
	return false;
}

bool inbox_has_fresh_request(const struct inbox *ib, int64_t now_ms, int64_t max_age_ms)
{
	for (int i = 0; i < ib->n; i++)
		if (ib->e[i].wait == INBOX_REQUEST && now_ms - ib->e[i].since_ms < max_age_ms)
			return true;
	return false;
}

struct inbox_entry inbox_take(struct inbox *ib, int i)
{
	struct inbox_entry x = ib->e[i];
	epoll_ctl(ib->epfd, EPOLL_CTL_DEL, x.fd, NULL);
	ib->e[i] = ib->e[--ib->n];
	return x;
}

int inbox_find(const struct inbox *ib, int fd)
{
	for (int i = 0; i < ib->n; i++)
		if (ib->e[i].fd == fd)
			return i;
	return -1;
}

int inbox_expire(struct inbox *ib, int64_t now_ms, int64_t *oldest_ms)
{
	int k = 0;
	*oldest_ms = 0;
	for (int i = 0; i < ib->n;) {
		if (ib->e[i].deadline_ms == 0 || ib->e[i].deadline_ms > now_ms) {
			i++;
			continue;
		}
		struct inbox_entry x = inbox_take(ib, i);
		if (x.wait == INBOX_REQUEST) {
			k++;
			if (now_ms - x.since_ms > *oldest_ms)
				*oldest_ms = now_ms - x.since_ms;
		}
		close(x.fd);
	}
	return k;
}

int inbox_stop(struct inbox *ib, int64_t now_ms, int64_t grace_ms)
{
	for (int i = 0; i < ib->n;) {
		if (ib->e[i].wait != INBOX_REQUEST) {
			close(inbox_take(ib, i).fd);
			continue;
		}
		if (ib->e[i].deadline_ms > now_ms + grace_ms)
			ib->e[i].deadline_ms = now_ms + grace_ms;
		i++;
	}
	return ib->n;
}

int64_t inbox_next_ms(const struct inbox *ib, int64_t now_ms)
{
	int64_t best = -1;
	for (int i = 0; i < ib->n; i++) {
		int64_t d = ib->e[i].deadline_ms;
		if (d == 0)
			continue;
		int64_t left = d > now_ms ? d - now_ms : 0;
		if (best < 0 || left < best)
			best = left;
	}
	return best;
}

void inbox_close_all(struct inbox *ib)
{
	for (int i = 0; i < ib->n; i++)
		close(ib->e[i].fd);
	ib->n = 0;
	if (ib->epfd >= 0)
		close(ib->epfd);
	ib->epfd = -1;
}
