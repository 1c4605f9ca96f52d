/* worker.c - a FastCGI worker process: accept loop, request reading, routing, response writing. */
#include <errno.h>
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "child.h"
#include "db.h"
#include "budget.h"
#include <poll.h>
#include "http.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define WORKER_POLL_MS 1000          /* how often a holder checks its master and connections */
#define WORKER_SPARE_POLL_MS 100     /* how often a spare looks for demand */
#define WORKER_DRAIN_MAX (64u << 20) /* body bytes read and dropped after a 413, at most */

struct worker_ctx {
	const struct np_conf *conf;
	struct np_shm *shm;
	struct np_slot *slot;
	int slot_idx;
	FCGX_Request fcgx;           /* main socket */
	FCGX_Request ctl;            /* control socket (routes that need no database) */
	FCGX_Request *cur;
	const struct np_route *routes;
	size_t nroutes;
};

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
		return 0;
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
	if (resp->body_len)
		FCGX_PutStr(resp->body, (int)resp->body_len, w->cur->out);
}

static void worker_handle(struct worker_ctx *w)
{
	struct np_request req;
	struct np_response resp = { 0 };
	const char *code = NULL, *message = NULL;
	int64_t t0 = util_now_us();

	int st = http_parse_request(&req, worker_getparam, w->cur, &code, &message);
	if (st == 0)
		st = worker_read_body(w, &req, &code, &message);
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
			req.worker = w;
			req.match.route->handler(&req, &resp);
			if (resp.body == NULL)
				http_respond_error(&resp, 500, "internal", "handler produced no response");
		}
	}
	worker_send(w, &req, &resp);
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

/* Serve one request from r (main or control socket). */
static void worker_serve(struct worker_ctx *w, FCGX_Request *r)
{
	int rc = FCGX_Accept_r(r);
	if (rc < 0) {
		/* another worker won the race (EAGAIN), or the peer went away: nothing to do */
		if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR || rc == -ECONNABORTED || rc == -EPROTO ||
		    rc == -ECONNRESET || rc == -EPIPE)
			return;
		if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
			log_warn("accept failed: %s; backing off", strerror(-rc));
			child_wait(-1, 100);
			return;
		}
		log_warn("FCGX_Accept_r failed (%d)", rc);
		return;
	}
	w->cur = r;
	atomic_store(&w->slot->req_start_us, util_wall_us());
	atomic_store(&w->slot->state, NP_SLOT_BUSY);
	worker_handle(w);
	FCGX_Finish_r(r);
	atomic_fetch_add(&w->slot->requests, 1);
	atomic_store(&w->slot->req_start_us, 0);
	atomic_store(&w->slot->state, NP_SLOT_IDLE);
}

/* The fd to watch for r: its kept connection (fastcgi_keep_conn), else the listen socket. */
static int worker_fd(FCGX_Request *r, int listen_fd)
{
	return r->ipcFd >= 0 ? r->ipcFd : listen_fd;
}

void worker_main(const struct np_conf *conf, struct np_shm *shm, int slot, int listen_fd, int control_fd,
                 pid_t master_pid)
{
	char role[32];
	snprintf(role, sizeof(role), "worker.%d", slot);
	if (child_setup("np-worker", role, master_pid) < 0)
		_exit(0);

	struct worker_ctx w;
	memset(&w, 0, sizeof(w));
	w.conf = conf;
	w.shm = shm;
	w.slot_idx = slot;
	w.slot = &shm->slots[slot];
	w.routes = api_routes(&w.nroutes);
	char tag[16];
	snprintf(tag, sizeof(tag), "w%d", slot);
	db_init(conf, shm, slot, tag);

	if (FCGX_Init() != 0 || FCGX_InitRequest(&w.fcgx, listen_fd, 0) != 0 ||
	    (control_fd >= 0 && FCGX_InitRequest(&w.ctl, control_fd, 0) != 0)) {
		log_error("libfcgi initialisation failed");
		_exit(1);
	}
	atomic_store(&w.slot->state, NP_SLOT_IDLE);
	log_debug("worker started");

	while (!child_should_stop()) {
		db_maintain();
		if (!db_holder(NP_EP_PRIMARY))
			db_consider_connect(listen_fd);
		bool main_open = db_accept_main();
		struct pollfd p[16];
		int n = 0, i_main = -1, i_ctl = -1;
		if (main_open || w.fcgx.ipcFd >= 0) {
			i_main = n;
			p[n++] = (struct pollfd){ .fd = worker_fd(&w.fcgx, listen_fd), .events = POLLIN };
		}
		if (control_fd >= 0) {
			i_ctl = n;
			p[n++] = (struct pollfd){ .fd = worker_fd(&w.ctl, control_fd), .events = POLLIN };
		}
		int extra[14];
		int ne = db_poll_fds(extra, 14 - n > 0 ? 14 - n : 0);
		int i_extra = n;
		for (int k = 0; k < ne; k++)
			p[n++] = (struct pollfd){ .fd = extra[k], .events = POLLIN };
		int rc = child_poll(p, n, db_holder(NP_EP_PRIMARY) ? WORKER_POLL_MS : WORKER_SPARE_POLL_MS);
		if (rc <= 0 || child_should_stop())
			continue;
		for (int k = i_extra; k < n; k++)
			if (p[k].revents && p[k].fd == shm->hdr->wake_fd[0])
				db_on_wake();
		/* a spare that was let in (shedding) re-checks: the supervisor may have closed the gate
		 * while it slept, and a holder should take the request */
		if (i_main >= 0 && (p[i_main].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    (w.fcgx.ipcFd >= 0 || db_accept_main()))
			worker_serve(&w, &w.fcgx);
		if (i_ctl >= 0 && (p[i_ctl].revents & (POLLIN | POLLHUP | POLLERR)) && !child_should_stop())
			worker_serve(&w, &w.ctl);
	}
	atomic_store(&w.slot->state, NP_SLOT_EXITING);
	if (w.fcgx.ipcFd >= 0)
		FCGX_Free(&w.fcgx, 1);
	if (control_fd >= 0 && w.ctl.ipcFd >= 0)
		FCGX_Free(&w.ctl, 1);
	db_close_all(1000);
	log_debug("worker exiting");
	_exit(0);
}
