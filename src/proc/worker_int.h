/* SPDX-License-Identifier: PostgreSQL */
/* worker_int.h - private to worker*.c: the worker's context and limits, and what worker.c (the
 * loop, a request served, the deadline) and worker_conn.c (accepting, parking, looking at and
 * refusing connections) share. */
#ifndef NP_WORKER_INT_H
#define NP_WORKER_INT_H

#include <fcgiapp.h>
#include <stdbool.h>
#include <stdint.h>

#include "allowlist.h"
#include "conf.h"
#include "fcgirec.h"
#include "http.h"
#include "inbox.h"
#include "router.h"
#include "shm.h"

#define WORKER_POLL_MS 1000          /* how often a holder checks its master and connections */
#define WORKER_SPARE_POLL_MS 100     /* how often a spare looks for demand */
#define WORKER_DRAIN_MAX (64u << 20) /* body bytes read and dropped after a 413, at most */
#define WORKER_STDIN_READY 16384     /* body bytes that must be there before a request is served */
#define WORKER_HEAD_SLACK 4096       /* record headers, padding and BEGIN_REQUEST around the params */
#define WORKER_ACCEPT_GRACE_US 5000  /* a new connection's request may take this long before it is parked */
#define WORKER_STOP_GRACE_MS 1000    /* on a stop, parked requests get at most this long to arrive */
#define WORKER_LINGER_MS 2000        /* after a 431, the connection waits this long at most for the peer's close */

/* Log at most once a second per kind, with the number of events not logged. */
struct worker_ratelog {
	int64_t last_ms;
	unsigned skipped;
};

/* How a listening socket is in the worker's epoll set. */
enum worker_watch_how { WATCH_OFF = 0, WATCH_SHARED, WATCH_EXCLUSIVE };

struct worker_ctx {
	const struct np_conf *conf;
	struct np_shm *shm;
	struct np_slot *slot;
	int slot_idx;
	FCGX_Request fcgx;           /* the request being served; its fd comes from our own accept */
	FCGX_Request *cur;
	const struct np_route *routes;
	size_t nroutes;
	struct inbox inbox;          /* accepted connections not ready to be served */
	uint8_t *peek;               /* MSG_PEEK buffer of fcgirec_scan */
	size_t peeked;               /* bytes in it after the last look */
	struct fcgirec_limits lim;
	struct allowlist allow;      /* listen_allowed_clients, for TCP peers */
	struct allowlist admin;      /* admin_allow: who may read the admin routes */
	bool admin_unix;             /* admin_allow names unix */
	int last_status;             /* the request just answered, for metrics and the slow log */
	char last_code[40];
	char last_id[72];
	char last_method[16];
	const char *last_route;
	struct worker_ratelog log_refused, log_timeout, log_bad, log_full;
	int ep;                      /* what the worker waits on (worker_main's loop) */
	enum worker_watch_how watching[2]; /* how the main and control sockets are in ep */
	bool stream_gone;            /* a streamed answer's peer went away */
	bool ask;                    /* a worker of the ask pool: its own socket, no connection held */
	int listen_fd;
};

/* What an event in the worker's epoll set is about: the kind in the high half of data.u64, the fd
 * in the low half. */
enum worker_ev { WORKER_EV_MAIN = 0, WORKER_EV_CONTROL = 1, WORKER_EV_INBOX = 2, WORKER_EV_EXTRA = 3 };

/* What to do with a connection next. */
enum worker_next { NEXT_WAIT, NEXT_SERVE, NEXT_CLOSE, NEXT_REFUSE_LARGE };

/* worker.c: a log line per kind at most once a second (*skipped: how many were not), and a
 * connection whose request head arrived served. */
bool worker_ratelog_ok(struct worker_ratelog *r, int64_t now_ms, unsigned *skipped);
void worker_serve(struct worker_ctx *w, struct inbox_entry x);

/* worker_conn.c: the socket's name in logs; a connection parked in the inbox; a request refused
 * with resp; a parked connection with news; a first look with a short grace for the head; an
 * accept from listen_fd. */
const char *worker_kind_name(enum inbox_kind k);
void worker_park(struct worker_ctx *w, struct inbox_entry x);
void worker_refuse(struct worker_ctx *w, struct inbox_entry x, uint16_t request_id, struct np_response resp);
void worker_on_parked(struct worker_ctx *w, int fd);
enum worker_next worker_look_grace(struct worker_ctx *w, struct inbox_entry *x, struct fcgirec_result *res);
void worker_accept(struct worker_ctx *w, int listen_fd, enum inbox_kind kind);

#endif
