/* SPDX-License-Identifier: PostgreSQL */
/* worker.c - a FastCGI worker process: accept loop, request reading, routing, response writing.
 *
 * The worker accepts itself and serves a connection only once its request head is in the socket
 * buffer (fcgirec_scan over a MSG_PEEK); until then the connection waits in the worker's inbox.
 * libfcgi's blocking reads then find their bytes, and the rest of the body is read under a
 * deadline (an ITIMER_REAL whose handler shuts the socket down for reading). Accepting, parking
 * and refusing connections is worker_conn.c. */
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
#include "api_cache.h"
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

static uint64_t worker_tag(enum worker_ev kind, int fd)
{
	return (uint64_t)kind << 32 | (uint32_t)fd;
}


/* Watch a listening socket, or stop. EPOLLEXCLUSIVE: a connection wakes one of the workers
 * blocked in epoll_pwait on it, not all of them (without it every idle holder woke for every
 * connection and all but one found EAGAIN: 8.5 context switches per request with 8 idle workers,
 * t_accept_wakes_one). It only takes effect for a waiter blocked in epoll_wait itself, which is
 * why the worker waits on an epoll set rather than in ppoll.
 * A worker woken through an exclusive registration must accept: nobody else was woken for that
 * connection. So only those who will take it register so (holders, anyone while the breaker is
 * open, and anyone on the control socket); a spare let in while shedding registers WATCH_SHARED:
 * it is woken besides the one exclusive waiter and may still decline. With the breaker open the
 * spares woke all together for each connection: 8.66 voluntary switches per request with 8
 * workers, 1.02 now (t_accept_wakes_one). */
static void worker_watch(struct worker_ctx *w, int fd, enum worker_ev kind, enum worker_watch_how how)
{
	if (fd < 0 || w->watching[kind] == how)
		return;
	if (w->watching[kind] != WATCH_OFF && epoll_ctl(w->ep, EPOLL_CTL_DEL, fd, NULL) < 0)
		log_warn("epoll_ctl(del): %s", strerror(errno));
	w->watching[kind] = WATCH_OFF;
	if (how == WATCH_OFF)
		return;
	struct epoll_event ev = { .events = EPOLLIN | (how == WATCH_EXCLUSIVE ? EPOLLEXCLUSIVE : 0u),
		                  .data.u64 = worker_tag(kind, fd) };
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_warn("epoll_ctl(add): %s", strerror(errno));
		return;
	}
	w->watching[kind] = how;
}

/* ---- the request deadline ---------------------------------------------------------------- */

/* While armed, SIGALRM shuts down the connection being read (SHUT_RD) or answered (SHUT_RDWR):
 * libfcgi's blocked read() then sees EOF, a blocked write() fails, and the request ends. */
static volatile sig_atomic_t worker_alarm_fd = -1;
static volatile sig_atomic_t worker_alarm_how;
static volatile sig_atomic_t worker_alarm_fired;

static void worker_on_alarm(int sig)
{
	(void)sig;
	int saved = errno;
	int fd = worker_alarm_fd;
	worker_alarm_fired = 1;
	if (fd >= 0)
		shutdown(fd, worker_alarm_how);
	errno = saved;
}

static void worker_arm(int fd, int how, int64_t ms)
{
	worker_alarm_fired = 0;
	worker_alarm_how = how;
	worker_alarm_fd = fd;
	if (ms < 1)
		ms = 1;
	struct itimerval it = { .it_value = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 } };
	setitimer(ITIMER_REAL, &it, NULL);
}

static void worker_disarm(void)
{
	struct itimerval zero = { 0 };
	setitimer(ITIMER_REAL, &zero, NULL);
	worker_alarm_fd = -1;
}

bool worker_ratelog_ok(struct worker_ratelog *r, int64_t now_ms, unsigned *skipped)
{
	if (r->last_ms != 0 && now_ms - r->last_ms < 1000) {
		r->skipped++;
		return false;
	}
	*skipped = r->skipped;
	r->skipped = 0;
	r->last_ms = now_ms;
	return true;
}

static const char *worker_getparam(const char *name, void *ctx)
{
	return FCGX_GetParam(name, ((FCGX_Request *)ctx)->envp);

}

static void worker_drain(FCGX_Stream *in)
{
	char buf[8192];
	size_t total = 0;
	int n;
	while (total < WORKER_DRAIN_MAX && (n = FCGX_GetStr(buf, sizeof(buf), in)) > 0)
		total += (size_t)n;
}

/* After Content-Length bytes, the empty STDIN record that ends the stream: read before answering,
 * within the request's deadline, because closing over it unread resets the connection, and a
 * peer still sending it (nginx writes a body from its temporary file in several writes) gets
 * EPIPE and answers 502 (t_fcgi_body_end_awaited). More bytes than Content-Length: 400. */
static int worker_read_end(struct worker_ctx *w, const char **code, const char **message)
{
	char extra;
	if (FCGX_GetStr(&extra, 1, w->cur->in) <= 0)
		return 0;
	worker_drain(w->cur->in);
	*code = "bad_request";
	*message = "request body longer than Content-Length";
	return 400;
}

/* Read the body bounded by max_body_bytes. Returns 0, or an HTTP status with code/message. */
static int worker_read_body(struct worker_ctx *w, struct np_request *req, const char **code,
                            const char **message)
{
	size_t max = (size_t)w->conf->max_body_bytes;
	if (req->content_length > (int64_t)max) {
		worker_drain(w->cur->in);
		*code = "payload_too_large";
		*message = "request body exceeds max_body_bytes";
		return 413;
	}
	size_t want = req->content_length >= 0 ? (size_t)req->content_length : max + 1;
	if (want == 0)
		return worker_read_end(w, code, message);
	/* Without a Content-Length (nginx sends an empty one on every GET) the body is most likely
	 * empty: start small and grow, instead of a max_body_bytes allocation per request. */
	size_t cap = req->content_length >= 0 ? want : 4096;
	char *buf = malloc(cap + 1);
	if (!buf) {
		*code = "internal";
		*message = "out of memory";
		return 500;
	}
	size_t got = 0;
	while (got < want) {
		if (got == cap) {
			size_t ncap = cap * 2 < want ? cap * 2 : want;
			char *nb = realloc(buf, ncap + 1);
			if (!nb) {
				free(buf);
				*code = "internal";
				*message = "out of memory";
				return 500;
			}
			buf = nb;
			cap = ncap;
		}
		size_t room = cap - got;
		int n = FCGX_GetStr(buf + got, (int)(room > 65536 ? 65536 : room), w->cur->in);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == 0 && req->content_length < 0) {
		free(buf);
		return 0;
	}
	if (got > max) {
		free(buf);
		worker_drain(w->cur->in);
		*code = "payload_too_large";
		*message = "request body exceeds max_body_bytes";
		return 413;
	}
	if (req->content_length >= 0 && got < (size_t)req->content_length) {
		free(buf);
		*code = "bad_request";
		*message = "request body shorter than Content-Length";
		return 400;
	}
	if (req->content_length >= 0) {
		int st = worker_read_end(w, code, message);
		if (st != 0) {
			free(buf);
			return st;
		}
	}
	buf[got] = '\0';
	req->body = buf;
	req->body_len = got;
	return 0;
}

static void worker_send(struct worker_ctx *w, struct np_request *req, struct np_response *resp)
{
	char head[512];
	int hl = http_format_head(resp, req->request_id, head, sizeof(head));
	if (hl < 0) {
		http_respond_error(resp, 500, "internal", "response head too large");
		hl = http_format_head(resp, req->request_id, head, sizeof(head));
	}
	FCGX_PutStr(head, hl, w->cur->out);
	/* HEAD: the head GET would send, its Content-Length included, and no body (RFC 9110 9.3.2) */
	if (resp->body_len && strcmp(req->method, "HEAD") != 0)
		FCGX_PutStr(resp->body, (int)resp->body_len, w->cur->out);
}

static void worker_ask_gate(void *ctx);

/* A streamed answer (np_stream): each write and flush has the answer's deadline. */
static int worker_stream_write(void *ctx, const char *buf, size_t n)
{
	struct worker_ctx *w = ctx;
	if (w->stream_gone)
		return -1;
	worker_arm(w->cur->ipcFd, SHUT_RDWR, w->conf->request_read_timeout_ms);
	if (FCGX_PutStr(buf, (int)n, w->cur->out) != (int)n)
		w->stream_gone = true;
	worker_disarm();
	return w->stream_gone ? -1 : 0;
}

static int worker_stream_flush(void *ctx)
{
	struct worker_ctx *w = ctx;
	if (w->stream_gone)
		return -1;
	worker_arm(w->cur->ipcFd, SHUT_RDWR, w->conf->request_read_timeout_ms);
	if (FCGX_FFlush(w->cur->out) < 0 || FCGX_GetError(w->cur->out) != 0)
		w->stream_gone = true;
	worker_disarm();
	return w->stream_gone ? -1 : 0;
}

/* Whether the client of the request in hand may read an admin route: REMOTE_ADDR when the front
 * server passed one, else the FastCGI peer (a unix socket matches the word unix). */
static bool worker_admin_ok(struct worker_ctx *w)
{
	const char *ra = FCGX_GetParam("REMOTE_ADDR", w->cur->envp);
	if (ra && ra[0])
		return allowlist_match_text(&w->admin, ra) || (w->admin_unix && strcmp(ra, "unix:") == 0);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getpeername(w->cur->ipcFd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (ss.ss_family == AF_UNIX)
		return w->admin_unix;
	return w->admin.n > 0 && allowlist_match(&w->admin, (struct sockaddr *)&ss);
}

/* The request just answered took total_us: past slow_request_ms, one line with its phases. */
static void worker_slow_log(struct worker_ctx *w, int64_t total_us)
{
	if (w->conf->slow_request_ms <= 0 || total_us < (int64_t)w->conf->slow_request_ms * 1000)
		return;
	char kv[400];
	snprintf(kv, sizeof(kv),
	         " request_id=%s route=%s status=%d ms=%.1f queue_ms=%.1f acquire_ms=%.1f connect_ms=%.1f query_ms=%.1f "
	         "upstream_ms=%.1f",
	         w->last_id[0] ? w->last_id : "-", w->last_route ? w->last_route : "-", w->last_status,
	         (double)total_us / 1000.0, (double)metrics_queue_us() / 1000.0,
	         (double)metrics_breakdown(NP_PHASE_ACQUIRE) / 1000.0,
	         (double)metrics_breakdown(NP_PHASE_CONNECT) / 1000.0, (double)metrics_breakdown(NP_PHASE_QUERY) / 1000.0,
	         (double)metrics_breakdown(NP_PHASE_UPSTREAM) / 1000.0);
	log_kv(NP_LOG_WARN, kv, "slow request");
}

/* access_log: one line per request at info level, with the id the front server passed. */
static void worker_access_log(struct worker_ctx *w, int64_t total_us)
{
	if (!w->conf->access_log)
		return;
	char kv[300], method[40];
	/* the method is the peer's text (a raw FastCGI client may send anything): quoted */
	util_quote_value(w->last_method[0] ? w->last_method : "-", method, sizeof(method));
	snprintf(kv, sizeof(kv), " request_id=%s method=%s route=%s status=%d ms=%.1f queue_ms=%.1f",
	         w->last_id[0] ? w->last_id : "-", method,
	         w->last_route ? w->last_route : "-", w->last_status, (double)total_us / 1000.0,
	         (double)metrics_queue_us() / 1000.0);
	log_kv(NP_LOG_INFO, kv, "access");
}

static void worker_handle(struct worker_ctx *w)
{
	struct np_request req;
	struct np_response resp = { 0 };
	const char *code = NULL, *message = NULL;
	int64_t t0 = util_now_us();

	int st = http_parse_request(&req, worker_getparam, w->cur, &code, &message);
	metrics_queued(req.queued_us); /* the front server's queue: part of the time its client saw */
	if (st == 0)
		st = worker_read_body(w, &req, &code, &message);
	/* the request is read: its deadline ends here, whether it passed or not */
	worker_disarm();
	if (worker_alarm_fired && (st == 400 || (st == 0 && req.content_length < 0))) {
		free(req.body);
		req.body = NULL;
		req.body_len = 0;
		atomic_fetch_add(&w->slot->read_timeouts, 1);
		st = 408;
		code = "request_timeout";
		message = "request body not received within request_read_timeout_ms";
	}
	atomic_store(&w->slot->state, NP_SLOT_BUSY);
	if (st != 0) {
		http_respond_error(&resp, st, code, message);
	} else {
		enum router_result r = router_match(w->routes, w->nroutes, req.method, req.path, &req.match);
		if (r == ROUTER_NOT_FOUND) {
			http_respond_error(&resp, 404, "not_found", "no such route");
		} else if (r == ROUTER_METHOD_NOT_ALLOWED) {
			snprintf(resp.allow, sizeof(resp.allow), "%s", req.match.allow);
			http_respond_error(&resp, 405, "method_not_allowed", "method not allowed for this route");
		} else {
			snprintf(w->slot->route, sizeof(w->slot->route), "%s", req.match.route->name);
			metrics_set_route(metrics_route_id((int)(req.match.route - w->routes)));
			w->last_route = req.match.route->name;
			req.worker = w;
			struct np_stream stream = { worker_stream_write, worker_stream_flush, w, w->ask ? w->listen_fd : -1,
			                            worker_ask_gate };
			w->stream_gone = false;
			req.stream = &stream;
			/* the peer checked only where a route asks (a text match of REMOTE_ADDR per request
			 * on the content routes otherwise) */
			req.admin = (req.match.route->flags & (ROUTE_ADMIN | ROUTE_ADMIN_DETAIL)) && worker_admin_ok(w);
			if ((req.match.route->flags & ROUTE_ADMIN) && !req.admin) {
				http_respond_error(&resp, 403, "forbidden", "this route answers only to admin_allow");
			} else if (!api_cache_precheck(&req, &resp)) {
				req.match.route->handler(&req, &resp);
				if (resp.body == NULL && !resp.streamed)
					http_respond_error(&resp, 500, "internal", "handler produced no response");
			}
			req.stream = NULL;
		}
	}
	api_cache_finish(&req, &resp);
	/* the answer, and the close, have a deadline of their own */
	worker_arm(w->cur->ipcFd, SHUT_RDWR, w->conf->request_read_timeout_ms);
	if (!resp.streamed)
		worker_send(w, &req, &resp);
	w->last_status = resp.status;
	snprintf(w->last_code, sizeof(w->last_code), "%s", resp.error_code);
	snprintf(w->last_id, sizeof(w->last_id), "%s", req.request_id);
	snprintf(w->last_method, sizeof(w->last_method), "%s", req.method);
	if (resp.status >= 500)
		atomic_fetch_add(&w->slot->errors_5xx, 1);
	else if (resp.status >= 400)
		atomic_fetch_add(&w->slot->errors_4xx, 1);
	if (log_get_level() >= NP_LOG_DEBUG) {
		char kv[256];
		snprintf(kv, sizeof(kv), " request_id=%s method=%s status=%d us=%lld", req.request_id,
		         req.method[0] ? req.method : "-", resp.status, (long long)(util_now_us() - t0));
		log_kv(NP_LOG_DEBUG, kv, "request");
	}
	free(req.body);
	http_response_free(&resp);
}


/* Serve the request whose head is in x's socket buffer, then park or close the connection. */
void worker_serve(struct worker_ctx *w, struct inbox_entry x)
{
	FCGX_Request *r = &w->fcgx;
	atomic_store(&w->slot->req_start_us, util_wall_us());
	atomic_store(&w->slot->state, NP_SLOT_READING);
	metrics_begin(util_now_us());
	w->last_route = NULL;
	w->last_status = 0;
	w->last_code[0] = w->last_id[0] = w->last_method[0] = '\0';
	r->ipcFd = x.fd;
	r->keepConnection = 1; /* FCGX_Accept_r first "finishes" the previous request: keep our fd */
	worker_arm(x.fd, SHUT_RD, x.deadline_ms - util_now_ms());
	int rc = FCGX_Accept_r(r);
	if (rc < 0) {
		/* libfcgi closed the connection (a protocol error, or the deadline shut it down) and
		 * found no listen socket to accept from (ours is not given to it) */
		worker_disarm();
		if (worker_alarm_fired) {
			atomic_fetch_add(&w->slot->read_timeouts, 1);
			log_info("request read timeout: closed a %s connection inside its request head",
			         worker_kind_name(x.kind));
		} else {
			log_debug("libfcgi refused a request head (%d)", rc);
		}
		if (r->ipcFd >= 0)
			close(r->ipcFd);
		r->ipcFd = -1;
		atomic_store(&w->slot->req_start_us, 0);
		atomic_store(&w->slot->state, NP_SLOT_IDLE);
		return;
	}
	w->cur = r;
	worker_handle(w);
	bool keep = r->keepConnection;
	r->keepConnection = 1; /* flush, but leave the close to us: libfcgi's lingers for up to 2 s */
	FCGX_Finish_r(r);
	worker_disarm();
	int64_t total_us = metrics_end(w->last_status, w->last_code, util_now_us());
	worker_slow_log(w, total_us);
	worker_access_log(w, total_us);
	atomic_fetch_add(&w->slot->requests, 1);
	atomic_store(&w->slot->req_start_us, 0);
	atomic_store(&w->slot->state, NP_SLOT_IDLE);
	int fd = r->ipcFd;
	r->ipcFd = -1;
	if (fd < 0)
		return; /* libfcgi closed it after an error */
	int64_t now = util_now_ms();
	if (keep && !worker_alarm_fired) {
		worker_park(w, (struct inbox_entry){ .fd = fd, .kind = x.kind, .wait = INBOX_KEPT, .since_ms = now });
		return;
	}
	/* drop what the peer already sent and we did not read (the STDIN end record after a body
	 * read to its Content-Length): closing over unread bytes would reset the connection, and
	 * the peer could lose the answer. Nothing waits for the peer: libfcgi's own close waits up
	 * to 2 s per read for the peer's EOF. */
	for (int i = 0; i < 16; i++) {
		ssize_t got = recv(fd, w->peek, w->lim.cap, MSG_DONTWAIT);
		if (got <= 0 && !(got < 0 && errno == EINTR))
			break;
	}
	close(fd);
}

/* Answer resp without libfcgi, then linger. */

/* An ask worker inside a long answer, its socket readable: when no other ask worker is idle, the
 * new ask is answered 503 ask_busy (Retry-After) at once instead of waiting in the backlog for
 * the end of an answer. An idle ask worker is left to take it. */
static void worker_ask_gate(void *ctx)
{
	struct worker_ctx *w = ctx;
	/* the old generation of an upgrade leaves new asks to the new one, whose idle ask workers may
	 * be in a region of their own that this one cannot see (another layout: 55 of 490 asks were
	 * answered ask_busy in bench/upgrade.sh while the new ask workers idled) */
	if (db_releasing())
		return;
	for (int i = 0; i < NP_MAX_SLOTS; i++)
		if (i != w->slot_idx && atomic_load(&w->shm->slots[i].kind) == NP_KIND_ASK &&
		    atomic_load(&w->shm->slots[i].state) == NP_SLOT_IDLE)
			return;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(w->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if ((ss.ss_family == AF_INET || ss.ss_family == AF_INET6) && !allowlist_match(&w->allow, (struct sockaddr *)&ss)) {
		atomic_fetch_add(&w->slot->peers_refused, 1);
		close(fd);
		return;
	}
	int64_t now = util_now_ms();
	struct inbox_entry x = { .fd = fd, .kind = INBOX_MAIN, .wait = INBOX_REQUEST,
	                         .deadline_ms = now + w->conf->request_read_timeout_ms, .since_ms = now };
	struct fcgirec_result res;
	enum worker_next next = worker_look_grace(w, &x, &res);
	if ((next != NEXT_SERVE && next != NEXT_REFUSE_LARGE) || res.request_id == 0) {
		close(fd);
		return;
	}
	struct np_response resp = { 0 };
	http_respond_error(&resp, 503, "ask_busy", "every ask worker is busy answering; retry later");
	resp.retry_after_s = w->conf->retry_after_s;
	atomic_fetch_add(&w->slot->errors_5xx, 1);
	worker_refuse(w, x, res.request_id, resp);
	log_debug("answered 503 ask_busy: every ask worker is busy");
}

/* Close parked connections whose request did not arrive in time. */
static void worker_expire(struct worker_ctx *w)
{
	int64_t now = util_now_ms(), oldest;
	int k = inbox_expire(&w->inbox, now, &oldest);
	if (k == 0)
		return;
	atomic_fetch_add(&w->slot->read_timeouts, (uint64_t)k);
	unsigned skipped;
	if (worker_ratelog_ok(&w->log_timeout, now, &skipped))
		log_info("request read timeout: closed %d connection(s) without a complete request after %lld ms "
		         "(%u more not logged)", k, (long long)oldest, skipped);
}

/* The worker's context: its request buffer, epoll set and inbox, allow-lists, metrics row, the
 * deadline's alarm handler, the database side and libfcgi. Exits (1; 2 for a configuration error)
 * when one of them cannot be had. */
static void worker_init(struct worker_ctx *w, const struct np_conf *conf, struct np_shm *shm, int slot, int listen_fd,
                        bool ask)
{
	memset(w, 0, sizeof(*w));
	w->conf = conf;
	w->shm = shm;
	w->slot_idx = slot;
	w->slot = &shm->slots[slot];
	w->ask = ask;
	w->listen_fd = listen_fd;
	w->routes = api_routes(&w->nroutes);
	w->lim.max_params = (size_t)conf->max_params_bytes;
	w->lim.stdin_ready = WORKER_STDIN_READY;
	w->lim.cap = w->lim.max_params + WORKER_STDIN_READY + WORKER_HEAD_SLACK;
	w->peek = malloc(w->lim.cap);
	char msg[160];
	if (!w->peek) {
		log_error("out of memory for the request buffer");
		_exit(1);
	}
	struct epoll_event iev = { .events = EPOLLIN, .data.u64 = worker_tag(WORKER_EV_INBOX, 0) };
	if (inbox_init(&w->inbox) < 0 || (w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    epoll_ctl(w->ep, EPOLL_CTL_ADD, w->inbox.epfd, &iev) < 0) {
		log_error("epoll: %s", strerror(errno));
		_exit(1);
	}
	if (allowlist_parse(conf->listen_allowed_clients, &w->allow, msg, sizeof(msg)) < 0) {
		log_error("listen_allowed_clients: %s", msg);
		_exit(2);
	}
	if (allowlist_parse_admin(conf->admin_allow, &w->admin, &w->admin_unix, msg, sizeof(msg)) < 0) {
		log_error("admin_allow: %s", msg);
		_exit(2);
	}
	metrics_bind(&shm->mrows[slot]);
	api_admin_init(conf, shm);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = worker_on_alarm; /* no SA_RESTART: a blocked read returns */
	sigaction(SIGALRM, &sa, NULL);
	char tag[16];
	snprintf(tag, sizeof(tag), "w%d", slot);
	db_init(conf, shm, slot, tag);
	/* no listen socket for libfcgi: it reads only the connections we hand it, and a failed
	 * request head makes FCGX_Accept_r return instead of accepting (blocking) on its own */
	if (FCGX_Init() != 0 || FCGX_InitRequest(&w->fcgx, -1, 0) != 0) {
		log_error("libfcgi initialisation failed");
		_exit(1);
	}
}

/* What one wait of the loop woke for. */
struct worker_wake {
	bool inbox, main, control;
};

/* One wait of the loop: the listening sockets registered as far as the worker may take from them
 * now (an inbox full of requests that may still come stops accepting for a while; a stop stops
 * it), the database layer's descriptors for this wait only, and the nearest inbox deadline. The
 * number of events (0 or less: none), and what they were in *wk. */
static int worker_wait(struct worker_ctx *w, int listen_fd, int control_fd, bool stopping, struct worker_wake *wk)
{
	const struct np_conf *conf = w->conf;
	int64_t min_age = conf->request_read_timeout_ms / 2 < 1000 ? conf->request_read_timeout_ms / 2 : 1000;
	int64_t now = util_now_ms();
	bool room = inbox_has_room(&w->inbox, now, min_age);
	/* an ask worker holding a connection whose request is on its way takes no other: that
	 * request may be a long answer, and a second one parked here would wait for its end while
	 * another ask worker idles (t_ask_parked_not_behind_answer). A peer that sends nothing
	 * blocks it for min_age at most. */
	bool main_open = !stopping && room &&
	                 (w->ask ? !inbox_has_fresh_request(&w->inbox, now, min_age) : db_accept_main());
	worker_watch(w, listen_fd, WORKER_EV_MAIN,
	             !main_open ? WATCH_OFF
	             : w->ask || db_takes_main() ? WATCH_EXCLUSIVE : WATCH_SHARED);
	worker_watch(w, control_fd, WORKER_EV_CONTROL, room && !stopping ? WATCH_EXCLUSIVE : WATCH_OFF);
	/* the database layer's descriptors (closing connections; a spare's wake pipe): rarely any
	 * for a holder, so registered for this wait only */
	int extra[14];
	int ne = db_poll_fds(extra, 14);
	for (int k = 0; k < ne; k++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = worker_tag(WORKER_EV_EXTRA, extra[k]) };
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, extra[k], &ev) < 0 && errno != EEXIST)
			log_warn("epoll_ctl: %s", strerror(errno));
	}
	int64_t timeout = db_holder(NP_EP_PRIMARY) ? WORKER_POLL_MS : WORKER_SPARE_POLL_MS;
	/* a holder while this host streams answers: the cross-host cancel check (api_ask_sweep) */
	int ask_ms = db_holder(NP_EP_PRIMARY) && !w->ask ? api_ask_wait_ms(w->conf) : -1;
	if (ask_ms >= 0 && ask_ms < timeout)
		timeout = ask_ms;
	int64_t next = inbox_next_ms(&w->inbox, now);
	if (next >= 0 && next < timeout)
		timeout = next + 1;
	struct epoll_event evs[20];
	int rc = child_epoll(w->ep, evs, 20, (int)timeout);
	for (int k = 0; k < ne; k++)
		epoll_ctl(w->ep, EPOLL_CTL_DEL, extra[k], NULL);
	*wk = (struct worker_wake){ false, false, false };
	for (int k = 0; k < rc; k++) {
		int fd = (int)(uint32_t)evs[k].data.u64;
		switch ((int)(evs[k].data.u64 >> 32)) {
		case WORKER_EV_INBOX: wk->inbox = true; break;
		case WORKER_EV_MAIN: wk->main = true; break;
		case WORKER_EV_CONTROL: wk->control = true; break;
		default:
			if (fd == w->shm->hdr->wake_fd[0])
				db_on_wake();
		}
	}
	return rc;
}

/* Act on what woke the worker: parked connections first (they were accepted before anything
 * waiting in the backlogs), expiries, then new connections. */
static void worker_on_wake(struct worker_ctx *w, int listen_fd, int control_fd, const struct worker_wake *wk)
{
	if (wk->inbox) {
		int fds[INBOX_MAX];
		int nready = inbox_ready(&w->inbox, fds);
		for (int k = 0; k < nready; k++)
			worker_on_parked(w, fds[k]);
	}
	/* after the news: a request that arrived while this worker was busy is served, not expired */
	worker_expire(w);
	/* woken through an exclusive registration: take it, even if a stop came meanwhile (the
	 * stop's grace serves it), since no other worker was woken for it. A spare that was let
	 * in (shedding) re-checks: the supervisor may have closed the gate while it slept, and a
	 * holder (woken too) should take the request. */
	if (wk->main && (w->watching[WORKER_EV_MAIN] == WATCH_EXCLUSIVE || (!child_should_stop() && (w->ask || db_accept_main()))))
		worker_accept(w, listen_fd, INBOX_MAIN);
	if (wk->control)
		worker_accept(w, control_fd, INBOX_CONTROL);
}

void worker_main(const struct np_conf *conf, struct np_shm *shm, int slot, int listen_fd, int control_fd,
                 pid_t master_pid)
{
	char role[32];
	bool ask = atomic_load(&shm->slots[slot].kind) == NP_KIND_ASK;
	snprintf(role, sizeof(role), "%s.%d", ask ? "ask" : "worker", slot);
	if (child_setup(ask ? "np-ask" : "np-worker", role, master_pid) < 0)
		_exit(0);
	struct worker_ctx w;
	worker_init(&w, conf, shm, slot, listen_fd, ask);
	atomic_store(&w.slot->state, NP_SLOT_IDLE);
	log_debug("worker started");

	int64_t stop_ms = 0;
	for (;;) {
		/* a stop: no more accepting; requests still arriving get WORKER_STOP_GRACE_MS */
		bool stopping = child_should_stop();
		if (stopping) {
			if (stop_ms == 0)
				stop_ms = util_now_ms();
			/* every turn: a request served meanwhile may have left its connection kept */
			if (inbox_stop(&w.inbox, stop_ms, WORKER_STOP_GRACE_MS) == 0)
				break;
		}
		db_maintain();
		if (!stopping)
			api_ask_sweep();
		if (!stopping)
			api_cache_refresh();
		if (!stopping && !w.ask && !db_holder(NP_EP_PRIMARY))
			db_consider_connect(listen_fd);
		struct worker_wake wk;
		if (worker_wait(&w, listen_fd, control_fd, stopping, &wk) <= 0)
			worker_expire(&w);
		else
			worker_on_wake(&w, listen_fd, control_fd, &wk);
	}
	atomic_store(&w.slot->state, NP_SLOT_EXITING);
	inbox_close_all(&w.inbox);
	db_close_all(1000);
	free(w.peek);
	log_debug("worker exiting");
	/* unmapped before the exit: under valgrind an exit scans every mapping for leaks, and the
	 * region's 698 MB (sparse) cost 1-2 CPU s a process */
	shm_detach(shm);
	_exit(0);
}
