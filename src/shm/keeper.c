/* SPDX-License-Identifier: PostgreSQL */
/* keeper.c - the master keeps a duplicate of every server connection's socket, so that a dead
 * worker's connections are closed by us and their budget freed exactly when the server closed.
 *
 * Without it a worker killed with SIGKILL closes its sockets in the kernel and nobody can tell
 * when the backend is gone: a backend in the middle of a statement lives on until the statement
 * ends. With a duplicate held here, the socket survives the worker; the master shuts down its
 * write side (the backend reads EOF, rolls back, exits) and frees the token on the server's EOF. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "budget.h"
#include "keeper.h"
#include "log.h"
#include "util.h"

struct keeper_msg {
	int32_t pid;
	int32_t ep;
	int32_t tok;
};

struct kept {
	int fd;           /* -1: none */
	int32_t pid;      /* the owner when it was sent */
	bool watching;    /* owner dead: waiting for the server's EOF */
	int64_t since_ms;
};

static int keeper_sv[2] = { -1, -1 };
static struct kept kept[NP_EP_COUNT][NP_MAX_BUDGET];

int keeper_init(void)
{
	for (int e = 0; e < NP_EP_COUNT; e++)
		for (int t = 0; t < NP_MAX_BUDGET; t++)
			kept[e][t].fd = -1;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, keeper_sv) < 0)
		return -1;
	int fl = fcntl(keeper_sv[0], F_GETFL);
	fcntl(keeper_sv[0], F_SETFL, fl | O_NONBLOCK);
	/* a full channel must not block a worker: it falls back to the grace period */
	fl = fcntl(keeper_sv[1], F_GETFL);
	fcntl(keeper_sv[1], F_SETFL, fl | O_NONBLOCK);
	return 0;
}

void keeper_close(void)
{
	for (int e = 0; e < NP_EP_COUNT; e++)
		for (int t = 0; t < NP_MAX_BUDGET; t++)
			if (kept[e][t].fd >= 0) {
				close(kept[e][t].fd);
				kept[e][t].fd = -1;
			}
	for (int i = 0; i < 2; i++)
		if (keeper_sv[i] >= 0) {
			close(keeper_sv[i]);
			keeper_sv[i] = -1;
		}
}

int keeper_init_child(void)
{
	for (int e = 0; e < NP_EP_COUNT; e++)
		for (int t = 0; t < NP_MAX_BUDGET; t++)
			if (kept[e][t].fd >= 0) {
				close(kept[e][t].fd);
				kept[e][t] = (struct kept){ .fd = -1 };
			}
	if (keeper_sv[0] >= 0)
		close(keeper_sv[0]);
	keeper_sv[0] = -1;
	return keeper_sv[1];
}

void keeper_send(int fd, int ep, int tok)
{
	if (keeper_sv[1] < 0 || fd < 0)
		return;
	struct keeper_msg m = { (int32_t)getpid(), ep, tok };
	struct iovec iov = { &m, sizeof(m) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(keeper_sv[1], &mh, MSG_NOSIGNAL) < 0)
		log_warn("cannot hand the connection socket to the master: %s", strerror(errno));
}

int keeper_channel_fd(void)
{
	return keeper_sv[0];
}

static void keeper_forget(int ep, int tok)
{
	struct kept *k = &kept[ep][tok];
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	k->pid = 0;
	k->watching = false;
}

/* The owner of kept[ep][tok] is dead: shut down the write side of its socket (the server reads
 * EOF, rolls back, exits) and watch it; the token stays orphaned with no deadline, freed on the
 * server's EOF (keeper_poll), not by the janitor. */
static void keeper_orphan(struct np_shm *shm, int ep, int tok)
{
	struct kept *k = &kept[ep][tok];
	struct np_token *t = &shm->hdr->ep[ep].tokens[tok];
	shutdown(k->fd, SHUT_WR);
	atomic_store(&t->free_after_us, INT64_MAX);
	atomic_store(&t->since_us, util_wall_us());
	atomic_store(&t->phase, NP_TOK_ORPHANED);
	k->watching = true;
	k->since_ms = util_now_ms();
}

void keeper_receive(struct np_shm *shm)
{
	for (;;) {
		struct keeper_msg m;
		struct iovec iov = { &m, sizeof(m) };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
		ssize_t n = recvmsg(keeper_sv[0], &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0)
			return;
		int fd = -1;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
		if (n != (ssize_t)sizeof(m) || m.ep < 0 || m.ep >= NP_EP_COUNT || m.tok < 0 || m.tok >= NP_MAX_BUDGET) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (fd < 0)
			continue;
		/* only for a token that this pid really owns; a stale message is dropped */
		if (atomic_load(&shm->hdr->ep[m.ep].tokens[m.tok].owner) != m.pid) {
			close(fd);
			continue;
		}
		keeper_forget(m.ep, m.tok);
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		kept[m.ep][m.tok] = (struct kept){ .fd = fd, .pid = m.pid, .watching = false, .since_ms = util_now_ms() };
		/* The sender died and was reaped before its message was read (it sent, then died, and
		 * the master reaped it before reading the channel; or the janitor found it gone): the
		 * token is already orphaned, under a grace. Close and watch now, as on death. */
		if (atomic_load(&shm->hdr->ep[m.ep].tokens[m.tok].phase) == NP_TOK_ORPHANED)
			keeper_orphan(shm, m.ep, m.tok);
	}
}

int keeper_on_death(struct np_shm *shm, pid_t pid)
{
	int n = 0;
	for (int e = 0; e < NP_EP_COUNT; e++)
		for (int t = 0; t < NP_MAX_BUDGET; t++) {
			struct kept *k = &kept[e][t];
			if (k->fd < 0 || k->pid != (int32_t)pid)
				continue;
			if (atomic_load(&shm->hdr->ep[e].tokens[t].owner) != (int32_t)pid) {
				keeper_forget(e, t); /* the worker had released it already */
				continue;
			}
			keeper_orphan(shm, e, t);
			n++;
		}
	return n;
}

int keeper_watch_fds(int *fds, int n)
{
	int c = 0;
	for (int e = 0; e < NP_EP_COUNT; e++)
		for (int t = 0; t < NP_MAX_BUDGET && c < n; t++)
			if (kept[e][t].fd >= 0 && kept[e][t].watching)
				fds[c++] = kept[e][t].fd;
	return c;
}

void keeper_poll(struct np_shm *shm)
{
	for (int e = 0; e < NP_EP_COUNT; e++)
		for (int t = 0; t < NP_MAX_BUDGET; t++) {
			struct kept *k = &kept[e][t];
			if (k->fd < 0)
				continue;
			struct np_token *tok = &shm->hdr->ep[e].tokens[t];
			int32_t owner = atomic_load(&tok->owner);
			if (!k->watching) {
				/* released by its live owner (or taken by another): not ours to watch */
				if (owner != k->pid)
					keeper_forget(e, t);
				continue;
			}
			if (owner != k->pid) {
				/* no longer the dead worker's: whoever took it writes it, not us */
				keeper_forget(e, t);
				continue;
			}
			if (!util_fd_closed(k->fd))
				continue;
			char kv[96];
			snprintf(kv, sizeof(kv), " endpoint=%d token=%d dead_pid=%d after_ms=%lld", e, t, (int)k->pid,
			         (long long)(util_now_ms() - k->since_ms));
			if (budget_free_dead(shm, e, t, k->pid))
				log_kv(NP_LOG_INFO, kv, "server closed a dead worker's connection; budget token freed");
			keeper_forget(e, t);
		}
}
