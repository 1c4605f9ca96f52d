/* SPDX-License-Identifier: PostgreSQL */
/* worker_conn.c - a worker's connections around a request: accepting them (the allow-list),
 * parking those whose request head has not arrived in the inbox, looking at what arrived
 * (fcgirec_scan over MSG_PEEK), refusing (431) or lingering until the peer closes. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcgiapp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "allowlist.h"
#include "api.h"
#include "budget.h"
#include "child.h"
#include "db.h"
#include "fcgirec.h"
#include "http.h"
#include "inbox.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "worker.h"
#include "worker_int.h"

const char *worker_kind_name(enum inbox_kind k)
{
	return k == INBOX_CONTROL ? "control" : "main";
}

/* Park x, logging when that closed another connection to make room. */
void worker_park(struct worker_ctx *w, struct inbox_entry x)
{
	unsigned skipped;
	if (inbox_add(&w->inbox, x) && worker_ratelog_ok(&w->log_full, util_now_ms(), &skipped))
		log_warn("closed a parked connection to make room: inbox full (%d connections; %u more not logged)",
		         INBOX_MAX, skipped);
}
void worker_refuse(struct worker_ctx *w, struct inbox_entry x, uint16_t request_id, struct np_response resp)
{
	char head[512];
	uint8_t out[2048];
	int hl = http_format_head(&resp, "", head, sizeof(head));
	size_t n = 0;
	if (hl > 0 && resp.body && (size_t)hl + resp.body_len < sizeof(out) / 2) {
		char text[1024];
		memcpy(text, head, (size_t)hl);
		memcpy(text + hl, resp.body, resp.body_len);
		n = fcgirec_frame_answer(request_id, text, (size_t)hl + resp.body_len, out, sizeof(out));
	}
	http_response_free(&resp);
	/* non-blocking: a peer that does not read loses the answer, never the worker */
	if (n == 0 || send(x.fd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)n || shutdown(x.fd, SHUT_WR) < 0) {
		close(x.fd);
		return;
	}
	int64_t now = util_now_ms();
	worker_park(w, (struct inbox_entry){ .fd = x.fd, .kind = x.kind, .wait = INBOX_LINGER,
	                                     .deadline_ms = now + WORKER_LINGER_MS, .since_ms = now });
}

/* Answer 431 without libfcgi (its params reader would take what the peer declares), then linger. */
static void worker_refuse_large(struct worker_ctx *w, struct inbox_entry x, uint16_t request_id)
{
	struct np_response resp = { 0 };
	http_respond_error(&resp, 431, "request_header_fields_too_large", "request params exceed max_params_bytes");
	worker_refuse(w, x, request_id, resp);
}


/* A lingering connection has news: drop what came (all of it: the socket is watched
 * edge-triggered); close on EOF, error, or a peer that keeps sending. */
static enum worker_next worker_linger(struct worker_ctx *w, const struct inbox_entry *x)
{
	for (int i = 0; i < 16; i++) {
		ssize_t got = recv(x->fd, w->peek, w->lim.cap, MSG_DONTWAIT);
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return NEXT_WAIT;
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return NEXT_CLOSE;
	}
	return NEXT_CLOSE;
}

/* Look at what x's peer sent so far (x is updated: a kept connection's request starts). */
static enum worker_next worker_look(struct worker_ctx *w, struct inbox_entry *x, struct fcgirec_result *res)
{
	memset(res, 0, sizeof(*res));
	if (x->wait == INBOX_LINGER)
		return worker_linger(w, x);
	ssize_t got = recv(x->fd, w->peek, w->lim.cap, MSG_PEEK | MSG_DONTWAIT);
	w->peeked = got > 0 ? (size_t)got : 0;
	if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		return NEXT_CLOSE; /* the peer went away (a kept connection's normal end) */
	int64_t now = util_now_ms();
	if (got > 0 && x->wait == INBOX_KEPT) {
		/* a kept connection's next request: its deadline starts with its first byte */
		x->wait = INBOX_REQUEST;
		x->since_ms = now;
		x->deadline_ms = now + w->conf->request_read_timeout_ms;
	}
	fcgirec_scan(w->peek, got > 0 ? (size_t)got : 0, &w->lim, res);
	unsigned skipped;
	switch (res->status) {
	case FCGIREC_READY:
		return NEXT_SERVE;
	case FCGIREC_INCOMPLETE:
		return NEXT_WAIT;
	case FCGIREC_TOO_LARGE:
		atomic_fetch_add(&w->slot->bad_requests, 1);
		if (worker_ratelog_ok(&w->log_bad, now, &skipped))
			log_warn("refused a request on the %s socket: %s (%zu bytes of params; %u more not logged)",
			         worker_kind_name(x->kind), res->reason, res->params_bytes, skipped);
		return res->request_id != 0 ? NEXT_REFUSE_LARGE : NEXT_CLOSE;
	case FCGIREC_MALFORMED:
		atomic_fetch_add(&w->slot->bad_requests, 1);
		if (worker_ratelog_ok(&w->log_bad, now, &skipped))
			log_warn("closed a connection on the %s socket: %s (%u more not logged)", worker_kind_name(x->kind),
			         res->reason, skipped);
		return NEXT_CLOSE;
	}
	return NEXT_CLOSE;
}

/* Act on a connection that is not (or no longer) in the inbox. */
static void worker_act(struct worker_ctx *w, struct inbox_entry x, enum worker_next next,
                       const struct fcgirec_result *res)
{
	switch (next) {
	case NEXT_WAIT:
		worker_park(w, x);
		return;
	case NEXT_SERVE:
		worker_serve(w, x);
		return;
	case NEXT_REFUSE_LARGE:
		worker_refuse_large(w, x, res->request_id);
		return;
	case NEXT_CLOSE:
		close(x.fd);
		return;
	}
}

/* A parked connection has news. It stays parked (and watched: no new registration, which would
 * report the bytes already seen again) unless it is served or closed now. */
void worker_on_parked(struct worker_ctx *w, int fd)
{
	int i = inbox_find(&w->inbox, fd);
	if (i < 0)
		return;
	struct fcgirec_result res;
	enum worker_next next = worker_look(w, &w->inbox.e[i], &res);
	if (next != NEXT_WAIT)
		worker_act(w, inbox_take(&w->inbox, i), next, &res);
}

/* A front server writes its request right after its connect returns: wait for it a moment
 * before parking, so that the worker that accepted serves it at once, as libfcgi's blocking
 * accept did. Parking at once let one worker accept a burst of connects faster than their
 * requests came (the kernel completes the handshake before the peer writes) and hoard them,
 * serving them one after another while other workers idled. */
enum worker_next worker_look_grace(struct worker_ctx *w, struct inbox_entry *x, struct fcgirec_result *res)
{
	int64_t until = util_now_us() + WORKER_ACCEPT_GRACE_US;
	for (;;) {
		enum worker_next next = worker_look(w, x, res);
		int64_t left = until - util_now_us();
		if (next != NEXT_WAIT || left <= 0)
			return next;
		/* nothing yet: sleep until bytes come; part of a request: poll would return at
		 * once (the bytes stay, we only peeked), so nap */
		struct timespec ts = { 0, (long)(w->peeked ? (left < 200 ? left : 200) : left) * 1000L };
		struct pollfd pf = { .fd = x->fd, .events = POLLIN };
		if (w->peeked)
			nanosleep(&ts, NULL);
		else
			ppoll(&pf, 1, &ts, NULL);
	}
}

/* Accept one connection from listen_fd (non-blocking: another worker may have taken it). */
void worker_accept(struct worker_ctx *w, int listen_fd, enum inbox_kind kind)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_warn("accept failed: %s; backing off", strerror(errno));
			child_wait(-1, 100);
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED &&
		           errno != EPROTO) {
			log_warn("accept failed: %s", strerror(errno));
		}
		return;
	}
	int64_t now = util_now_ms();
	if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
		if (!allowlist_match(&w->allow, (struct sockaddr *)&ss)) {
			atomic_fetch_add(&w->slot->peers_refused, 1);
			close(fd);
			unsigned skipped;
			if (worker_ratelog_ok(&w->log_refused, now, &skipped)) {
				char host[INET6_ADDRSTRLEN] = "?";
				const void *a = ss.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
				                                        : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
				inet_ntop(ss.ss_family, a, host, sizeof(host));
				log_warn("closed a connection on the %s socket from %s: peer not in listen_allowed_clients "
				         "(%u more not logged)", worker_kind_name(kind), host, skipped);
			}
			return;
		}
		/* room for the whole request head: TCP's initial window would hold less */
		int rcv = (int)w->lim.cap * 2;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	}
	struct inbox_entry x = { .fd = fd, .kind = kind, .wait = INBOX_REQUEST,
	                         .deadline_ms = now + w->conf->request_read_timeout_ms, .since_ms = now };
	struct fcgirec_result res;
	worker_act(w, x, worker_look_grace(w, &x, &res), &res);
}
