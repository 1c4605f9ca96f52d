/* SPDX-License-Identifier: PostgreSQL */
/* neonsim.c - a Neon-like remote database for tests and benchmarks: a TCP proxy in front of PostgreSQL that
 * delays each direction (fixed or jittered, through a delay queue of timestamped chunks), scales to zero
 * (closes every proxied connection after N s without client-to-server traffic and holds the next connect
 * for a cold start), and can blackhole, reset or refuse. One thread, epoll, non-blocking sockets, a timerfd
 * for the due times; each connection owns two fixed ring buffers (bounded memory, back pressure).
 *
 * Usage: neonsim --listen HOST:PORT --target HOST:PORT [options]      (the proxy)
 *        neonsim --ctl SOCKET COMMAND...                               (send one control line, print the answer)
 * Options: --control SOCKET (unix socket for control lines), --mode pass|blackhole|reset|refuse,
 *   --delay MS[:DOWN_MS] (one-way, each direction: RTT = up + down), --jitter MS (0..MS added per chunk, order
 *   kept), --suspend-after S (scale to zero; 0 = never), --cold-start MS (default 1000), --buffer KIB (per
 *   direction, default 64), --max-conns N (default 1024; more are reset), --quiet.
 * Control lines (one per line, answer "ok ..." or "error: ..."): see neonsim_cmd.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "neonsim_cmd.h"

#define CHUNKS_PER_DIR 512   /* timestamped chunks queued per direction */
#define MAX_CTL_CLIENTS 8
#define MAX_EVENTS 256

/* ---- clock, log ---------------------------------------------------------------------------- */

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int quiet;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	if (quiet)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char when[32];
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	fprintf(stderr, "neonsim %s.%03ld ", when, ts.tv_nsec / 1000000);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- state ------------------------------------------------------------------------------------ */

struct chunk {
	uint64_t due_us;
	uint32_t len;
};

/* One direction: bytes read from src wait in a ring until their chunk is due, then go to dst. */
struct dir {
	char *buf;
	size_t cap, head, used;      /* ring: bytes [head, head + used) */
	size_t ready;                /* bytes at the front whose chunk is due, not yet written */
	struct chunk chunks[CHUNKS_PER_DIR];
	unsigned chead, ccount;
	uint64_t last_due;
	int eof;                     /* src sent FIN */
	int shut;                    /* FIN passed on to dst */
};

enum cstate { C_HELD, C_CONNECTING, C_OPEN, C_SINK };

struct conn;
struct endpoint {
	int kind;                    /* EP_CLIENT, EP_SERVER */
	struct conn *c;
};
enum { EP_LISTEN = 1, EP_CONTROL, EP_CTLCLIENT, EP_TIMER, EP_SIGNAL, EP_CLIENT, EP_SERVER };

struct conn {
	struct conn *prev, *next;   /* the live list; a closed connection moves to the dead list (next) */
	int dead;                   /* closed during this batch of events: freed before the next epoll_wait */
	enum cstate st;
	int cfd, sfd;
	uint32_t cev, sev;           /* epoll interest registered */
	uint64_t release_us;         /* C_HELD: when the upstream connect starts */
	struct endpoint cep, sep;
	struct dir up, down;         /* up: client -> server; down: server -> client */
	int last_was_down;           /* the last bytes forwarded went server -> client (counts turns) */
};

struct ctlclient {
	int fd;
	size_t len;
	char in[NSIM_LINE_MAX + 2];
	struct endpoint ep;
};

static struct {
	struct sockaddr_storage listen_addr, target_addr;
	socklen_t listen_len, target_len;
	const char *control_path;
	enum nsim_mode mode;
	uint32_t up_us, down_us, jitter_us, cold_us;
	uint32_t suspend_after_s;
	size_t bufsize;
	unsigned max_conns;

	int ep, lfd, ctlfd, tfd, sfd;
	struct endpoint lep, ctlep, tep, sep_;
	struct conn *conns, *dead;
	unsigned nconns;
	struct ctlclient ctl[MAX_CTL_CLIENTS];
	uint64_t armed_us;           /* timerfd's expiry, 0 when disarmed */

	int suspended;               /* scaled to zero: the next connect is held for the cold start */
	uint64_t wake_us;            /* while waking: when held connects proceed */
	uint64_t last_up_us;         /* last client -> server bytes (or a wake) */
	uint32_t rng;

	/* counters */
	uint64_t accepted, upstream_connects, upstream_failures, resets, refused_listens, blackholed, held,
		suspends, wakes, closed_by_suspend, bytes_up, bytes_down, turns, over_limit;
	uint64_t cold_total_us, cold_max_us;
} S = { .lfd = -1, .ctlfd = -1, .cold_us = 1000000, .bufsize = 64 * 1024, .max_conns = 1024, .rng = 2463534242u };

static volatile int stop;

/* ---- helpers ---------------------------------------------------------------------------------- */

static uint32_t rnd(void)
{
	S.rng ^= S.rng << 13;
	S.rng ^= S.rng >> 17;
	S.rng ^= S.rng << 5;
	return S.rng;
}

static int ep_set(int fd, uint32_t *cur, uint32_t want, void *ptr)
{
	if (cur && *cur == want)
		return 0;
	struct epoll_event ev = { .events = want, .data.ptr = ptr };
	int op = cur && *cur != UINT32_MAX ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(S.ep, op, fd, &ev) < 0) {
		logf_("epoll_ctl(%d): %s", fd, strerror(errno));
		return -1;
	}
	if (cur)
		*cur = want;
	return 0;
}

static int parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host) || colon == s || colon[1] == '\0')
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	char *h = host;
	if (h[0] == '[' && h[strlen(h) - 1] == ']') {
		h[strlen(h) - 1] = '\0';
		h++;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV }, *ai;
	if (getaddrinfo(h, colon + 1, &hints, &ai) != 0)
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* ---- the listen socket ------------------------------------------------------------------------ */

static int listen_open(void)
{
	int fd = socket(S.listen_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&S.listen_addr, S.listen_len) < 0 || listen(fd, 4096) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	S.lfd = fd;
	S.lep.kind = EP_LISTEN;
	if (ep_set(fd, NULL, EPOLLIN, &S.lep) < 0) {
		close(fd);
		S.lfd = -1;
		return -1;
	}
	return 0;
}

static void listen_close(void)
{
	if (S.lfd >= 0) {
		close(S.lfd);
		S.lfd = -1;
	}
}

/* ---- directions ------------------------------------------------------------------------------- */

static int dir_init(struct dir *d)
{
	memset(d, 0, sizeof(*d));
	d->cap = S.bufsize;
	d->buf = malloc(d->cap);
	return d->buf ? 0 : -1;
}

static int dir_can_read(const struct dir *d)
{
	return !d->eof && d->used < d->cap && d->ccount < CHUNKS_PER_DIR;
}

/* dir_promote: chunks due by NOW become ready bytes. Returns the next due time, or 0. */
static uint64_t dir_promote(struct dir *d, uint64_t now)
{
	while (d->ccount > 0) {
		struct chunk *ch = &d->chunks[d->chead];
		if (ch->due_us > now)
			return ch->due_us;
		d->ready += ch->len;
		d->chead = (d->chead + 1) % CHUNKS_PER_DIR;
		d->ccount--;
	}
	return 0;
}

/* dir_read: read what FD has into D's ring, as one chunk due after DELAY_US (+ jitter). *SHORT is set when
 * the read got less than there was room for: the socket is drained (epoll is level-triggered: no need to
 * pay a read for EAGAIN). Returns bytes read, 0 at EOF, -1 on EAGAIN (errno) or an error. */
static ssize_t dir_read(struct dir *d, int fd, uint32_t delay_us, uint64_t now, int *short_)
{
	size_t tail = (d->head + d->used) % d->cap, free_ = d->cap - d->used;
	struct iovec iov[2];
	int n = 0;
	size_t first = d->cap - tail < free_ ? d->cap - tail : free_;
	iov[n++] = (struct iovec){ d->buf + tail, first };
	if (free_ > first)
		iov[n++] = (struct iovec){ d->buf, free_ - first };
	ssize_t r = readv(fd, iov, n);
	if (r <= 0)
		return r;
	*short_ = (size_t)r < free_;
	uint64_t due = now + delay_us + (S.jitter_us ? rnd() % (S.jitter_us + 1) : 0);
	if (due < d->last_due)
		due = d->last_due;  /* TCP keeps order: a chunk never overtakes the one before */
	d->last_due = due;
	d->used += (size_t)r;
	if (due <= now && d->ccount == 0) {
		d->ready += (size_t)r;
	} else if (d->ccount > 0 && d->chunks[(d->chead + d->ccount - 1) % CHUNKS_PER_DIR].due_us == due) {
		d->chunks[(d->chead + d->ccount - 1) % CHUNKS_PER_DIR].len += (uint32_t)r;
	} else {
		d->chunks[(d->chead + d->ccount) % CHUNKS_PER_DIR] = (struct chunk){ due, (uint32_t)r };
		d->ccount++;
	}
	return r;
}

/* dir_write: write D's ready bytes to FD. Returns bytes written (0 when nothing or EAGAIN), -1 on error. */
static ssize_t dir_write(struct dir *d, int fd)
{
	if (d->ready == 0)
		return 0;
	struct iovec iov[2];
	int n = 0;
	size_t first = d->cap - d->head < d->ready ? d->cap - d->head : d->ready;
	iov[n++] = (struct iovec){ d->buf + d->head, first };
	if (d->ready > first)
		iov[n++] = (struct iovec){ d->buf, d->ready - first };
	ssize_t w = writev(fd, iov, n);
	if (w < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	d->head = (d->head + (size_t)w) % d->cap;
	d->used -= (size_t)w;
	d->ready -= (size_t)w;
	if (d->used == 0)
		d->head = 0;
	return w;
}

/* ---- connections ------------------------------------------------------------------------------ */

static void conn_close(struct conn *c, int rst)
{
	int fds[2] = { c->cfd, c->sfd };
	for (int i = 0; i < 2; i++) {
		if (fds[i] < 0)
			continue;
		if (rst) {
			struct linger lg = { 1, 0 };
			(void)setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(fds[i]);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		S.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	S.nconns--;
	c->cfd = c->sfd = -1;
	c->dead = 1;
	c->next = S.dead;
	S.dead = c;
}

/* conns_reap: free the connections closed since the last call (no event can name them any more). */
static void conns_reap(void)
{
	while (S.dead) {
		struct conn *c = S.dead;
		S.dead = c->next;
		free(c->up.buf);
		free(c->down.buf);
		free(c);
	}
}

/* conn_interest: register what C waits for, given its state and the mode. */
static int conn_interest(struct conn *c)
{
	uint32_t ce = 0, se = 0;
	switch (c->st) {
	case C_HELD:
	case C_CONNECTING:
		ce = EPOLLRDHUP;   /* only notice the client leaving */
		se = c->st == C_CONNECTING ? EPOLLOUT : 0;
		break;
	case C_SINK:
		ce = EPOLLIN;      /* read and discard: never answer */
		break;
	case C_OPEN:
		if (S.mode == NSIM_BLACKHOLE)
			break;     /* a partition: nothing moves either way */
		if (dir_can_read(&c->up))
			ce |= EPOLLIN;
		if (dir_can_read(&c->down))
			se |= EPOLLIN;
		if (c->down.ready > 0)
			ce |= EPOLLOUT;
		if (c->up.ready > 0)
			se |= EPOLLOUT;
		break;
	}
	if (ep_set(c->cfd, &c->cev, ce, &c->cep) < 0)
		return -1;
	if (c->sfd >= 0 && ep_set(c->sfd, &c->sev, se, &c->sep) < 0)
		return -1;
	return 0;
}

static int conn_start_upstream(struct conn *c)
{
	int fd = socket(S.target_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		logf_("socket: %s", strerror(errno));
		return -1;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	S.upstream_connects++;
	c->sfd = fd;
	c->sev = UINT32_MAX;
	if (connect(fd, (struct sockaddr *)&S.target_addr, S.target_len) < 0 && errno != EINPROGRESS) {
		S.upstream_failures++;
		logf_("connect to the target: %s", strerror(errno));
		return -1;
	}
	c->st = C_CONNECTING;
	return conn_interest(c);
}

/* conn_pump: move what can move on C now (reads, due chunks, writes, FINs). -1: close C. */
static int conn_pump(struct conn *c, uint64_t now, int cread, int sread)
{
	if (c->st != C_OPEN || S.mode == NSIM_BLACKHOLE)
		return 0;
	struct {
		struct dir *d;
		int src, dst, can;
		uint32_t delay;
		uint64_t *bytes;
		int is_up;
	} ways[2] = {
		{ &c->up, c->cfd, c->sfd, cread, S.up_us, &S.bytes_up, 1 },
		{ &c->down, c->sfd, c->cfd, sread, S.down_us, &S.bytes_down, 0 },
	};
	for (int i = 0; i < 2; i++) {
		struct dir *d = ways[i].d;
		int drained = 0;
		while (ways[i].can && !drained && dir_can_read(d)) {
			ssize_t r = dir_read(d, ways[i].src, ways[i].delay, now, &drained);
			if (r > 0) {
				*ways[i].bytes += (uint64_t)r;
				if (ways[i].is_up) {
					S.last_up_us = now;
					if (c->last_was_down) {
						S.turns++;
						c->last_was_down = 0;
					}
				} else {
					c->last_was_down = 1;
				}
				continue;
			}
			if (r == 0) {
				d->eof = 1;
				break;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			return -1;  /* reset by a peer: close both */
		}
		dir_promote(d, now);
		if (dir_write(d, ways[i].dst) < 0)
			return -1;
		if (d->eof && d->used == 0 && !d->shut) {
			(void)shutdown(ways[i].dst, SHUT_WR);
			d->shut = 1;
		}
	}
	if (c->up.shut && c->down.shut)
		return -1;
	return conn_interest(c);
}

static void suspend_now(const char *why)
{
	unsigned n = 0;
	while (S.conns) {
		conn_close(S.conns, 0);
		n++;
	}
	S.closed_by_suspend += n;
	S.suspended = 1;
	S.wake_us = 0;
	S.suspends++;
	logf_("scaled to zero (%s): closed %u connection(s)", why, n);
}

static void accept_one(int fd, uint64_t now)
{
	S.accepted++;
	if (S.mode == NSIM_RESET || S.nconns >= S.max_conns) {
		if (S.mode != NSIM_RESET)
			S.over_limit++;
		S.resets++;
		struct linger lg = { 1, 0 };
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c || dir_init(&c->up) < 0 || dir_init(&c->down) < 0) {
		logf_("out of memory for a connection");
		if (c) {
			free(c->up.buf);
			free(c);
		}
		close(fd);
		return;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->cfd = fd;
	c->sfd = -1;
	c->last_was_down = 1;   /* the first request counts as a turn */
	c->cev = c->sev = UINT32_MAX;
	c->cep = (struct endpoint){ EP_CLIENT, c };
	c->sep = (struct endpoint){ EP_SERVER, c };
	c->next = S.conns;
	if (S.conns)
		S.conns->prev = c;
	S.conns = c;
	S.nconns++;
	if (S.mode == NSIM_BLACKHOLE) {
		S.blackholed++;
		c->st = C_SINK;
	} else {
		if (S.suspended) {
			if (S.wake_us == 0) {
				S.wake_us = now + S.cold_us;
				logf_("cold start: holding connects for %u ms", S.cold_us / 1000);
			}
			S.held++;
			c->release_us = S.wake_us;
		} else {
			/* the TCP handshake to a remote database costs one round trip */
			c->release_us = now + S.up_us + S.down_us;
		}
		c->st = C_HELD;
	}
	if (conn_interest(c) < 0)
		conn_close(c, 1);
}

/* ---- control ---------------------------------------------------------------------------------- */

static void stats_line(char *out, size_t n)
{
	snprintf(out, n,
		 "mode=%s delay_up_ms=%.3f delay_down_ms=%.3f jitter_ms=%.3f suspend_after_s=%u cold_start_ms=%.3f "
		 "suspended=%d conns=%u accepted=%llu upstream_connects=%llu upstream_failures=%llu resets=%llu "
		 "refused_periods=%llu blackholed=%llu held=%llu suspends=%llu wakes=%llu closed_by_suspend=%llu "
		 "cold_max_ms=%.1f bytes_up=%llu bytes_down=%llu turns=%llu over_limit=%llu",
		 nsim_mode_name(S.mode), S.up_us / 1000.0, S.down_us / 1000.0, S.jitter_us / 1000.0, S.suspend_after_s,
		 S.cold_us / 1000.0, S.suspended, S.nconns, (unsigned long long)S.accepted,
		 (unsigned long long)S.upstream_connects, (unsigned long long)S.upstream_failures,
		 (unsigned long long)S.resets, (unsigned long long)S.refused_listens, (unsigned long long)S.blackholed,
		 (unsigned long long)S.held, (unsigned long long)S.suspends, (unsigned long long)S.wakes,
		 (unsigned long long)S.closed_by_suspend, S.cold_max_us / 1000.0, (unsigned long long)S.bytes_up,
		 (unsigned long long)S.bytes_down, (unsigned long long)S.turns, (unsigned long long)S.over_limit);
}

static int set_mode(enum nsim_mode m, char *err, size_t errlen)
{
	if (m == S.mode)
		return 0;
	if (m == NSIM_REFUSE) {
		listen_close();
		S.refused_listens++;
	} else if (S.mode == NSIM_REFUSE && listen_open() < 0) {
		snprintf(err, errlen, "cannot listen again: %s", strerror(errno));
		return -1;
	}
	logf_("mode %s -> %s", nsim_mode_name(S.mode), nsim_mode_name(m));
	S.mode = m;
	for (struct conn *c = S.conns, *nx; c; c = nx) {
		nx = c->next;
		if (conn_interest(c) < 0 || conn_pump(c, now_us(), 0, 0) < 0)
			conn_close(c, 0);
	}
	return 0;
}

/* control_exec: run one control line; the answer into OUT. */
static void control_exec(const char *line, size_t len, char *out, size_t n)
{
	struct nsim_cmd cmd;
	char err[160];
	if (nsim_cmd_parse(line, len, &cmd, err, sizeof(err)) < 0) {
		snprintf(out, n, "error: %s\n", err);
		return;
	}
	switch (cmd.verb) {
	case NSIM_CMD_MODE:
		if (cmd.has_delay) {
			S.up_us = cmd.up_us;
			S.down_us = cmd.down_us;
		}
		if (set_mode(cmd.mode, err, sizeof(err)) < 0) {
			snprintf(out, n, "error: %s\n", err);
			return;
		}
		break;
	case NSIM_CMD_DELAY:
		S.up_us = cmd.up_us;
		S.down_us = cmd.down_us;
		break;
	case NSIM_CMD_JITTER:
		S.jitter_us = cmd.up_us;
		break;
	case NSIM_CMD_COLD_START:
		S.cold_us = cmd.up_us;
		break;
	case NSIM_CMD_SUSPEND_AFTER:
		S.suspend_after_s = cmd.seconds;
		S.last_up_us = now_us();
		break;
	case NSIM_CMD_SUSPEND:
		suspend_now("control");
		break;
	case NSIM_CMD_KILL: {
		unsigned k = 0;
		while (S.conns) {
			conn_close(S.conns, 1);
			k++;
		}
		S.resets += k;
		logf_("reset %u connection(s) (control)", k);
		break;
	}
	case NSIM_CMD_STATS: {
		char st[900];
		stats_line(st, sizeof(st));
		snprintf(out, n, "ok %s\n", st);
		return;
	}
	case NSIM_CMD_PING:
		break;
	}
	snprintf(out, n, "ok\n");
}

static void ctl_drop(struct ctlclient *cc)
{
	close(cc->fd);
	cc->fd = -1;
}

static void ctl_readable(struct ctlclient *cc)
{
	for (;;) {
		ssize_t r = read(cc->fd, cc->in + cc->len, sizeof(cc->in) - cc->len);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			ctl_drop(cc);
			return;
		}
		if (r < 0)
			return;
		cc->len += (size_t)r;
		char *nl;
		while ((nl = memchr(cc->in, '\n', cc->len)) != NULL) {
			char out[1024];
			size_t ll = (size_t)(nl - cc->in);
			control_exec(cc->in, ll, out, sizeof(out));
			/* answers are short and the socket is blocking-sized: a client that does not read is dropped */
			if (write(cc->fd, out, strlen(out)) != (ssize_t)strlen(out)) {
				ctl_drop(cc);
				return;
			}
			memmove(cc->in, nl + 1, cc->len - ll - 1);
			cc->len -= ll + 1;
		}
		if (cc->len == sizeof(cc->in)) {
			static const char msg[] = "error: line too long\n";
			(void)!write(cc->fd, msg, sizeof(msg) - 1);
			ctl_drop(cc);
			return;
		}
	}
}

static void ctl_accept(void)
{
	for (;;) {
		int fd = accept4(S.ctlfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct ctlclient *cc = NULL;
		for (int i = 0; i < MAX_CTL_CLIENTS; i++)
			if (S.ctl[i].fd < 0) {
				cc = &S.ctl[i];
				break;
			}
		if (!cc) {
			static const char msg[] = "error: too many control clients\n";
			(void)!write(fd, msg, sizeof(msg) - 1);
			close(fd);
			continue;
		}
		cc->fd = fd;
		cc->len = 0;
		cc->ep = (struct endpoint){ EP_CTLCLIENT, NULL };
		if (ep_set(fd, NULL, EPOLLIN, &cc->ep) < 0)
			ctl_drop(cc);
	}
}

static int control_open(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "neonsim: control socket path too long\n");
		return -1;
	}
	strcpy(sun.sun_path, path);
	(void)unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 16) < 0) {
		fprintf(stderr, "neonsim: control socket %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	S.ctlfd = fd;
	S.ctlep.kind = EP_CONTROL;
	return ep_set(fd, NULL, EPOLLIN, &S.ctlep);
}

/* ctl_client: the --ctl mode: send ARGV joined by spaces as one line, print the answer line. */
static int ctl_client(const char *path, int argc, char **argv)
{
	char line[NSIM_LINE_MAX + 2] = "";
	size_t len = 0;
	for (int i = 0; i < argc; i++) {
		size_t l = strlen(argv[i]);
		if (len + l + 2 > sizeof(line)) {
			fprintf(stderr, "neonsim: command too long\n");
			return 2;
		}
		if (i)
			line[len++] = ' ';
		memcpy(line + len, argv[i], l);
		len += l;
	}
	line[len++] = '\n';
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "neonsim: control socket path too long\n");
		return 2;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "neonsim: %s: %s\n", path, strerror(errno));
		return 2;
	}
	struct timeval tv = { 5, 0 };
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, line, len) != (ssize_t)len) {
		fprintf(stderr, "neonsim: write: %s\n", strerror(errno));
		return 2;
	}
	char ans[1200];
	size_t got = 0;
	while (got < sizeof(ans) - 1 && !memchr(ans, '\n', got)) {
		ssize_t r = read(fd, ans + got, sizeof(ans) - 1 - got);
		if (r <= 0) {
			fprintf(stderr, "neonsim: no answer from %s\n", path);
			return 2;
		}
		got += (size_t)r;
	}
	ans[got] = '\0';
	close(fd);
	fputs(ans, stdout);
	return strncmp(ans, "ok", 2) == 0 ? 0 : 1;
}

/* ---- the loop --------------------------------------------------------------------------------- */

/* timers: act on everything due by NOW; arm the timerfd for the next due time. */
static void timers(uint64_t now)
{
	uint64_t next = 0;
#define NEXT(t) do { if ((t) && (!next || (t) < next)) next = (t); } while (0)
	if (S.suspend_after_s && !S.suspended) {
		uint64_t at = S.last_up_us + (uint64_t)S.suspend_after_s * 1000000u;
		if (at <= now)
			suspend_now("idle");
		else
			NEXT(at);
	}
	if (S.suspended && S.wake_us && S.wake_us <= now) {
		uint64_t cold = now - (S.wake_us - S.cold_us);
		S.cold_total_us += cold;
		if (cold > S.cold_max_us)
			S.cold_max_us = cold;
		S.suspended = 0;
		S.wake_us = 0;
		S.wakes++;
		S.last_up_us = now;
		logf_("woke up");
		if (S.suspend_after_s)
			NEXT(now + (uint64_t)S.suspend_after_s * 1000000u);
	}
	for (struct conn *c = S.conns, *nx; c; c = nx) {
		nx = c->next;
		if (c->st == C_HELD) {
			if (S.suspended) {
				NEXT(S.wake_us);
			} else if (c->release_us <= now) {
				if (conn_start_upstream(c) < 0)
					conn_close(c, 1);
			} else {
				NEXT(c->release_us);
			}
		} else if (c->st == C_OPEN && S.mode != NSIM_BLACKHOLE) {
			if ((c->up.ccount && c->up.chunks[c->up.chead].due_us <= now) ||
			    (c->down.ccount && c->down.chunks[c->down.chead].due_us <= now)) {
				if (conn_pump(c, now, 0, 0) < 0) {
					conn_close(c, 0);
					continue;
				}
			}
			if (c->up.ccount)
				NEXT(c->up.chunks[c->up.chead].due_us);
			if (c->down.ccount)
				NEXT(c->down.chunks[c->down.chead].due_us);
		}
	}
#undef NEXT
	if (next != S.armed_us) {
		struct itimerspec its = { 0 };
		if (next) {
			its.it_value.tv_sec = (time_t)(next / 1000000u);
			its.it_value.tv_nsec = (long)(next % 1000000u) * 1000;
		}
		if (timerfd_settime(S.tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
			logf_("timerfd_settime: %s", strerror(errno));
		S.armed_us = next;
	}
}

static void on_conn_event(struct endpoint *e, uint32_t ev, uint64_t now)
{
	struct conn *c = e->c;
	int is_client = e->kind == EP_CLIENT;
	switch (c->st) {
	case C_HELD:
		if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			conn_close(c, 0);
		return;
	case C_SINK: {
		char junk[4096];
		ssize_t r = read(c->cfd, junk, sizeof(junk));
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			conn_close(c, 0);
		return;
	}
	case C_CONNECTING:
		if (is_client) {
			if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				conn_close(c, 0);
			return;
		}
		{
			int err = 0;
			socklen_t el = sizeof(err);
			if (getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
				S.upstream_failures++;
				logf_("connect to the target: %s", strerror(err ? err : errno));
				conn_close(c, 1);
				return;
			}
		}
		c->st = C_OPEN;
		if (conn_pump(c, now, 1, 1) < 0)
			conn_close(c, 0);
		return;
	case C_OPEN:
		if (conn_pump(c, now, is_client && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)),
			      !is_client && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))) < 0)
			conn_close(c, 0);
		else if ((ev & (EPOLLERR | EPOLLHUP)) && S.mode == NSIM_BLACKHOLE)
			conn_close(c, 0);   /* no interest while partitioned: a dead peer must not spin the loop */
		return;
	}
}

static void usage(void)
{
	fputs("usage: neonsim --listen HOST:PORT --target HOST:PORT [--control SOCKET] [--mode pass|blackhole|reset|refuse]\n"
	      "               [--delay MS[:DOWN_MS]] [--jitter MS] [--suspend-after S] [--cold-start MS]\n"
	      "               [--buffer KIB] [--max-conns N] [--quiet]\n"
	      "       neonsim --ctl SOCKET COMMAND...\n",
	      stderr);
}

int main(int argc, char **argv)
{
	const char *listen_s = NULL, *target_s = NULL;
	if (argc >= 3 && strcmp(argv[1], "--ctl") == 0)
		return ctl_client(argv[2], argc - 3, argv + 3);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--quiet") == 0) {
			quiet = 1;
			continue;
		}
		if (!v) {
			usage();
			return 2;
		}
		i++;
		uint32_t u;
		if (strcmp(a, "--listen") == 0) {
			listen_s = v;
		} else if (strcmp(a, "--target") == 0) {
			target_s = v;
		} else if (strcmp(a, "--control") == 0) {
			S.control_path = v;
		} else if (strcmp(a, "--mode") == 0) {
			if (nsim_mode_parse(v, &S.mode) < 0) {
				fprintf(stderr, "neonsim: unknown mode '%s'\n", v);
				return 2;
			}
		} else if (strcmp(a, "--delay") == 0) {
			char up[32];
			const char *colon = strchr(v, ':');
			size_t l = colon ? (size_t)(colon - v) : strlen(v);
			if (l >= sizeof(up)) {
				fprintf(stderr, "neonsim: bad --delay\n");
				return 2;
			}
			memcpy(up, v, l);
			up[l] = '\0';
			if (nsim_ms_parse(up, NSIM_MAX_DELAY_US, &S.up_us) < 0 ||
			    nsim_ms_parse(colon ? colon + 1 : up, NSIM_MAX_DELAY_US, &S.down_us) < 0) {
				fprintf(stderr, "neonsim: bad --delay '%s' (MS or UP_MS:DOWN_MS)\n", v);
				return 2;
			}
		} else if (strcmp(a, "--jitter") == 0 || strcmp(a, "--cold-start") == 0) {
			if (nsim_ms_parse(v, NSIM_MAX_DELAY_US, &u) < 0) {
				fprintf(stderr, "neonsim: bad %s '%s'\n", a, v);
				return 2;
			}
			*(a[2] == 'j' ? &S.jitter_us : &S.cold_us) = u;
		} else if (strcmp(a, "--suspend-after") == 0 || strcmp(a, "--buffer") == 0 ||
			   strcmp(a, "--max-conns") == 0) {
			char *end;
			unsigned long n = strtoul(v, &end, 10);
			if (*v < '0' || *v > '9' || *end || n > 1000000) {
				fprintf(stderr, "neonsim: bad %s '%s'\n", a, v);
				return 2;
			}
			if (a[2] == 's')
				S.suspend_after_s = (uint32_t)n;
			else if (a[2] == 'b' && n >= 1 && n <= 16384)
				S.bufsize = n * 1024;
			else if (a[2] == 'm' && n >= 1)
				S.max_conns = (unsigned)n;
			else {
				fprintf(stderr, "neonsim: %s '%s' out of range\n", a, v);
				return 2;
			}
		} else {
			usage();
			return 2;
		}
	}
	if (!listen_s || !target_s) {
		usage();
		return 2;
	}
	if (parse_hostport(listen_s, &S.listen_addr, &S.listen_len) < 0 ||
	    parse_hostport(target_s, &S.target_addr, &S.target_len) < 0) {
		fprintf(stderr, "neonsim: addresses are numeric HOST:PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	S.rng ^= (uint32_t)getpid();
	for (int i = 0; i < MAX_CTL_CLIENTS; i++)
		S.ctl[i].fd = -1;
	S.ep = epoll_create1(EPOLL_CLOEXEC);
	S.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	S.sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
	if (S.ep < 0 || S.tfd < 0 || S.sfd < 0) {
		fprintf(stderr, "neonsim: epoll/timerfd/signalfd: %s\n", strerror(errno));
		return 1;
	}
	S.tep.kind = EP_TIMER;
	S.sep_.kind = EP_SIGNAL;
	if (ep_set(S.tfd, NULL, EPOLLIN, &S.tep) < 0 || ep_set(S.sfd, NULL, EPOLLIN, &S.sep_) < 0)
		return 1;
	if (S.mode != NSIM_REFUSE && listen_open() < 0) {
		fprintf(stderr, "neonsim: listen on %s: %s\n", listen_s, strerror(errno));
		return 1;
	}
	if (S.control_path && control_open(S.control_path) < 0)
		return 1;
	S.last_up_us = now_us();
	logf_("listening on %s -> %s, mode %s, delay %.3f/%.3f ms, jitter %.3f ms, suspend after %u s, cold start %u ms",
	      listen_s, target_s, nsim_mode_name(S.mode), S.up_us / 1000.0, S.down_us / 1000.0, S.jitter_us / 1000.0,
	      S.suspend_after_s, S.cold_us / 1000);

	struct epoll_event evs[MAX_EVENTS];
	while (!stop) {
		timers(now_us());
		conns_reap();
		int n = epoll_wait(S.ep, evs, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			logf_("epoll_wait: %s", strerror(errno));
			return 1;
		}
		uint64_t now = now_us();
		/* a connection closed by an earlier event of this batch is marked dead, freed after the batch */
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (!p)
				continue;
			int kind = *(int *)p;
			if (kind == EP_LISTEN) {
				for (int k = 0; k < 64 && S.lfd >= 0; k++) {
					int fd = accept4(S.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					accept_one(fd, now);
				}
			} else if (kind == EP_CONTROL) {
				ctl_accept();
			} else if (kind == EP_CTLCLIENT) {
				struct ctlclient *cc = (struct ctlclient *)((char *)p - offsetof(struct ctlclient, ep));
				if (cc->fd >= 0)
					ctl_readable(cc);
			} else if (kind == EP_TIMER) {
				uint64_t x;
				(void)!read(S.tfd, &x, sizeof(x));
				S.armed_us = 0;
			} else if (kind == EP_SIGNAL) {
				stop = 1;
			} else if (!((struct endpoint *)p)->c->dead) {
				on_conn_event(p, evs[i].events, now);
			}
		}
	}
	logf_("stopping: %u connection(s) open", S.nconns);
	while (S.conns)
		conn_close(S.conns, 0);
	conns_reap();
	if (S.control_path)
		(void)unlink(S.control_path);
	return 0;
}
