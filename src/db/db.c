/* SPDX-License-Identifier: PostgreSQL */
/* db.c - a worker's database side: the connections it holds under the budget, the gate on
 * accepting, queries with one invisible retry, and failures mapped to API errors.
 *
 * Gated accept (BASELINES.md: matched one connection per worker, with 12 spare workers costing
 * nothing): only a process that holds a live connection takes requests from the main socket.
 * Spares serve the control socket, and open a connection only when there is demand. */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "budget.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "resolve.h"
#include "sched.h"
#include "util.h"

#define DB_CLOSE_WAIT_MS 1000

static struct {
	const struct np_conf *conf;
	struct np_shm *shm;
	int slot;
	char appname[64];
	struct np_pgconn conn[NP_EP_COUNT];
	int64_t backoff_until_ms;
	int backoff_ms;
	int64_t last_ping_ms;
	bool ask;                /* an ask worker: holds a connection only inside its two transactions */
	int64_t connect_us;          /* time spent connecting, summed (acquire = wait - connect) */
	struct sched sched;          /* warmup_schedule, parsed at db_init */
} D;

void db_init(const struct np_conf *conf, struct np_shm *shm, int slot, const char *tag)
{
	memset(&D, 0, sizeof(D));
	D.conf = conf;
	D.shm = shm;
	D.slot = slot;
	D.ask = atomic_load(&shm->slots[slot].kind) == NP_KIND_ASK;
	for (int i = 0; i < NP_EP_COUNT; i++) {
		D.conn[i].tok = -1;
		D.conn[i].ep = i;
	}
	snprintf(D.appname, sizeof(D.appname), "%.40s/%s", conf->application_name, tag);
	resolve_init(conf->dns_cache_ttl_s, -1); /* a connect waits for DNS up to its own deadline */
	D.last_ping_ms = util_now_ms();
	char msg[200];
	if (sched_parse(conf->warmup_schedule, &D.sched, msg, sizeof(msg)) < 0)
		D.sched.n = 0; /* validated with the configuration: not reached */
}

bool db_configured(int ep)
{
	if (ep == NP_EP_PRIMARY)
		return true;
	return D.conf->replica_url[0] != '\0' && D.conf->replica_budget > 0;
}

bool db_holder(int ep)
{
	return D.conn[ep].pg != NULL;
}

static bool db_breaker_open(int ep)
{
	return atomic_load(&D.shm->hdr->ep[ep].breaker) == NP_BREAKER_OPEN;
}

/* A binary upgrade is under way and this worker is of the old generation: it gives its server
 * connection back after each request (db_maintain), so that the new generation's workers take
 * the tokens; and it opens none of its own accord (db_consider_connect). */
bool db_releasing(void)
{
	uint32_t rg = atomic_load(&D.shm->hdr->release_gen);
	return rg != 0 && atomic_load(&D.shm->slots[D.slot].generation) <= rg;
}

/* During an upgrade, a worker of the new generation: none of its generation holds a token yet
 * (the upgrade is ready once one does). */
static bool db_upgrade_needs_holder(int ep)
{
	uint32_t rg = atomic_load(&D.shm->hdr->release_gen);
	uint32_t gen = atomic_load(&D.shm->slots[D.slot].generation);
	if (rg == 0 || gen <= rg)
		return false;
	for (int t = 0; t < NP_MAX_BUDGET; t++) {
		int32_t owner = atomic_load(&D.shm->hdr->ep[ep].tokens[t].owner);
		if (owner == 0)
			continue;
		for (int i = 0; i < NP_MAX_SLOTS; i++)
			if (atomic_load(&D.shm->slots[i].pid) == owner && atomic_load(&D.shm->slots[i].generation) == gen)
				return false;
	}
	return true;
}

bool db_takes_main(void)
{
	return db_holder(NP_EP_PRIMARY) || db_breaker_open(NP_EP_PRIMARY);
}

bool db_accept_main(void)
{
	const struct np_endpoint_shm *e = &D.shm->hdr->ep[NP_EP_PRIMARY];
	return db_holder(NP_EP_PRIMARY) || db_breaker_open(NP_EP_PRIMARY) || atomic_load(&e->shed) != 0;
}

/* A failure the breaker counts. Not a full server (busy, not down: counting it would turn db_busy
 * into db_unavailable) and not a lost connection (reconnecting tells: two losses between requests
 * and one "starting up" opened the breaker after a server restart). */
static void db_note_fail(int ep, const struct np_dberr *err)
{
	if (err->cls == NP_DB_BUSY || err->cls == NP_DB_TRANSIENT)
		return;
	struct np_slot *s = &D.shm->slots[D.slot];
	/* the class first: the supervisor reads it when it sees the count move */
	atomic_store(&s->db_last_class[ep], (uint32_t)err->cls);
	atomic_store(&s->db_last_kind[ep], (uint32_t)err->kind);
	atomic_fetch_add(&s->db_fail[ep], 1);
}

static void db_note_ok(int ep)
{
	atomic_fetch_add(&D.shm->slots[D.slot].db_ok[ep], 1);
}

static void db_backoff(void)
{
	int lo = D.conf->reconnect_backoff_min_ms, hi = D.conf->reconnect_backoff_max_ms;
	D.backoff_ms = D.backoff_ms ? D.backoff_ms * 2 : lo;
	if (D.backoff_ms > hi)
		D.backoff_ms = hi;
	/* full jitter on half of it, so that processes that failed together do not retry together */
	int d = D.backoff_ms / 2 + (int)util_random_below((uint32_t)(D.backoff_ms / 2 + 1));
	D.backoff_until_ms = util_now_ms() + d;
}

/* Open a connection to ep under a token this process already took. */
static int db_open(int ep, int tok, int64_t deadline_ms, struct np_dberr *err)
{
	int64_t t0 = util_now_us();
	int before = budget_connected(D.shm, ep); /* 0: nothing of the pool is open (start, idle, outage) */
	int rc = pgconn_open(&D.conn[ep], D.conf, D.shm, D.slot, ep, tok, D.appname, deadline_ms, err);
	int64_t took = util_now_us() - t0;
	D.connect_us += took;
	metrics_phase(NP_PHASE_CONNECT, took);
	metrics_count(rc < 0 ? NP_MC_CONNECTS_FAILED : NP_MC_CONNECTS_OK);
	if (rc == 0 && before == 0 && took >= (int64_t)D.conf->cold_start_ms * 1000) {
		metrics_count(NP_MC_COLD_STARTS);
		char kv[64];
		snprintf(kv, sizeof(kv), " endpoint=%d connect_ms=%.1f", ep, (double)took / 1000.0);
		log_kv(NP_LOG_INFO, kv, "cold start: connected with no connection of the pool open");
	}
	if (rc < 0) {
		D.conn[ep].tok = -1;
		D.conn[ep].pg = NULL;
		db_note_fail(ep, err);
		db_backoff();
		char kv[400];
		char q[300];
		util_quote_value(err->message, q, sizeof(q));
		snprintf(kv, sizeof(kv), " endpoint=%d class=%s kind=%s error=%s", ep, pgconn_class_name(err->cls),
		         errclass_of_kind(err->kind)->name, q);
		log_kv(NP_LOG_WARN, kv, "connect failed");
		return -1;
	}
	D.backoff_ms = 0;
	db_note_ok(ep);
	return 0;
}

static void db_close(int ep, int wait_ms)
{
	pgconn_close(&D.conn[ep], D.shm, wait_ms);
}

void db_close_all(int wait_ms)
{
	for (int ep = 0; ep < NP_EP_COUNT; ep++)
		db_close(ep, wait_ms);
	/* the server sees our closes within the wait; what did not close stays counted until exit */
	int64_t end = util_now_ms() + wait_ms;
	while (pgconn_graveyard_poll(D.shm) > 0 && util_now_ms() < end) {
		int fds[8];
		int n = pgconn_graveyard_fds(fds, 8);
		struct pollfd p[8];
		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		poll(p, (nfds_t)n, 50);
	}
}

void db_close_held(void)
{
	for (int ep = 0; ep < NP_EP_COUNT; ep++)
		if (D.conn[ep].pg) {
			log_debug("giving the connection to endpoint %d back for a long request", ep);
			db_close(ep, DB_CLOSE_WAIT_MS);
		}
}

static bool db_warmup_due(int64_t now_ms)
{
	const struct np_conf *c = D.conf;
	if (c->warmup_policy == NP_WARMUP_NEVER || now_ms - D.last_ping_ms < (int64_t)c->warmup_interval_s * 1000)
		return false;
	if (c->warmup_policy == NP_WARMUP_ALWAYS)
		return true;
	if (c->warmup_policy == NP_WARMUP_SCHEDULE)
		return D.sched.n > 0 && sched_active(&D.sched, c->warmup_timezone, (time_t)(util_wall_us() / 1000000));
	/* while-active: some request used the database within the window */
	int64_t last = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		int64_t t = atomic_load(&D.shm->slots[i].db_last_request_us);
		if (t > last)
			last = t;
	}
	return last > 0 && util_wall_us() - last < (int64_t)c->warmup_active_window_s * 1000000;
}

/* The host's one warm-up ping of this interval, taken by CAS on the shared due time: whatever
 * the number of idle holders, a host pings at most once per warmup_interval_s (a compute stays
 * awake while any backend was active within its suspend timeout, so one ping does it). */
static bool db_warmup_claim(int64_t now_ms)
{
	_Atomic int64_t *due = &D.shm->hdr->warm_ping_due_ms;
	int64_t d = atomic_load(due);
	return now_ms >= d && atomic_compare_exchange_strong(due, &d, now_ms + (int64_t)D.conf->warmup_interval_s * 1000);
}

void db_maintain(void)
{
	pgconn_graveyard_poll(D.shm);
	/* host names: refreshed ahead of their TTL here, so that connects find them resolved */
	resolve_refresh(D.conf->database_url);
	if (db_configured(NP_EP_REPLICA))
		resolve_refresh(D.conf->replica_url);
	int64_t now = util_now_ms();
	for (int ep = 0; ep < NP_EP_COUNT; ep++) {
		struct np_pgconn *c = &D.conn[ep];
		if (c->pg == NULL)
			continue;
		const char *why = NULL;
		if (c->expires_ms && now >= c->expires_ms)
			why = "max_lifetime reached";
		else if (c->tok >= budget_limit(D.shm, ep))
			why = "budget lowered";
		else if (db_releasing())
			why = "binary upgrade: the new generation takes the token";
		else if (D.conf->idle_timeout_s > 0 && now - c->last_used_ms > (int64_t)D.conf->idle_timeout_s * 1000 &&
		         budget_connected(D.shm, ep) > D.conf->min_warm)
			why = "idle_timeout reached";
		else if (PQstatus(c->pg) != CONNECTION_OK || (now - c->last_used_ms > D.conf->validate_idle_ms && !pgconn_idle_ok(c)))
			why = "connection lost";
		if (why) {
			/* a lost connection is not a failure of the database: reconnecting tells */
			log_debug("closing connection to endpoint %d: %s", ep, why);
			db_close(ep, DB_CLOSE_WAIT_MS);
			continue;
		}
		if (ep == NP_EP_PRIMARY && now - c->last_used_ms > (int64_t)D.conf->warmup_interval_s * 1000 &&
		    db_warmup_due(now) && db_warmup_claim(now)) {
			struct np_dberr err;
			D.last_ping_ms = now;
			int64_t p0 = util_now_us();
			int prc = pgconn_ping(c, D.conf, D.shm, &err);
			metrics_ping(prc == 0, 0, util_now_us() - p0, util_wall_us());
			if (prc < 0) {
				db_note_fail(ep, &err);
				db_close(ep, err.cls == NP_DB_TIMEOUT ? 0 : DB_CLOSE_WAIT_MS);
			} else {
				db_note_ok(ep);
				char kv[64];
				snprintf(kv, sizeof(kv), " endpoint=%d query_ms=%.1f", ep, (double)(util_now_us() - p0) / 1000.0);
				log_kv(NP_LOG_INFO, kv, "warm-up ping");
			}
		}
	}
}

PGresult *db_idle_exec(const struct np_stmt *st, const char *const *params)
{
	struct np_pgconn *c = &D.conn[NP_EP_PRIMARY];
	if (c->pg == NULL || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		return NULL;
	struct np_dberr err;
	PGresult *r = NULL;
	int64_t used = c->last_used_ms; /* not a use: idle_timeout and warm-up pings go on as before */
	int rc = pgconn_exec(c, D.conf, D.shm, st, params, &r, &err);
	c->last_used_ms = used;
	if (rc < 0) {
		PQclear(r);
		db_note_fail(NP_EP_PRIMARY, &err);
		char kv[400], q[300];
		util_quote_value(err.message, q, sizeof(q));
		snprintf(kv, sizeof(kv), " stmt=%s class=%s error=%s", st->name, pgconn_class_name(err.cls), q);
		log_kv(NP_LOG_WARN, kv, "statement between requests failed");
		if (err.cls == NP_DB_TRANSIENT || err.cls == NP_DB_TIMEOUT)
			db_close(NP_EP_PRIMARY, err.cls == NP_DB_TIMEOUT ? 0 : DB_CLOSE_WAIT_MS);
		return NULL;
	}
	db_note_ok(NP_EP_PRIMARY);
	return r;
}

/* Whether every live connection's holder is in a request. */
static bool db_holders_all_busy(int ep)
{
	const struct np_endpoint_shm *e = &D.shm->hdr->ep[ep];
	for (int i = 0; i < NP_MAX_BUDGET; i++) {
		const struct np_token *t = &e->tokens[i];
		if (atomic_load(&t->owner) == 0 || atomic_load(&t->phase) != NP_TOK_CONNECTED)
			continue;
		int s = atomic_load(&t->slot);
		if (s >= 0 && s < NP_MAX_SLOTS && !shm_state_busy(atomic_load(&D.shm->slots[s].state)))
			return false;
	}
	return true;
}

/* Workers holding a request while they wait for a token. */
static int db_waiting_count(void)
{
	int n = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++)
		if (atomic_load(&D.shm->slots[i].kind) == NP_KIND_WORKER)
			n += (int)atomic_load(&D.shm->slots[i].waiting);
	return n;
}

void db_consider_connect(int listen_fd)
{
	const int ep = NP_EP_PRIMARY;
	int64_t now = util_now_ms();
	if (db_holder(ep) || now < D.backoff_until_ms || db_breaker_open(ep) || db_releasing())
		return;
	int lim = budget_limit(D.shm, ep);
	if (budget_in_use(D.shm, ep) >= lim)
		return;
	/* a worker with a request in hand waits for a token: it goes first. A spare taking a freed
	 * token for min_warm or the backlog left that request to time out with 503 (t_db_waiting_reset
	 * failed that way: the token freed 148 ms after the kill, the waiter answered 503 at 4 s) */
	if (db_waiting_count() > 0)
		return;
	int connected = budget_connected(D.shm, ep);
	int warm = D.conf->min_warm < lim ? D.conf->min_warm : lim;
	bool demand = budget_in_use(D.shm, ep) < warm || db_upgrade_needs_holder(ep);
	(void)connected;
	if (!demand) {
		/* a request waits in the backlog and no holder is free to take it */
		struct pollfd p = { .fd = listen_fd, .events = POLLIN };
		demand = poll(&p, 1, 0) > 0 && db_holders_all_busy(ep);
	}
	if (!demand)
		return;
	if (!budget_permit_take(D.shm, ep, D.conf->max_concurrent_connects))
		return;
	int tok = budget_acquire(D.shm, ep, D.slot);
	if (tok >= 0) {
		struct np_dberr err;
		db_open(ep, tok, util_now_ms() + D.conf->connect_timeout_ms, &err);
	}
	budget_permit_give(D.shm, ep);
}

int db_poll_fds(int *fds, int n)
{
	int k = pgconn_graveyard_fds(fds, n);
	if (!db_holder(NP_EP_PRIMARY) && !D.ask && k < n)
		fds[k++] = D.shm->hdr->wake_fd[0];
	return k;
}

void db_on_wake(void)
{
	budget_wake_consume(D.shm);
}

int db_health(int ep, const char **reason)
{
	const struct np_endpoint_shm *e = &D.shm->hdr->ep[ep];
	*reason = e->reason;
	return (int)atomic_load(&e->health);
}

struct np_shm *db_shm(void)
{
	return D.shm;
}

int db_slot(void)
{
	return D.slot;
}

const struct np_conf *db_conf(void)
{
	return D.conf;
}

int db_retry_after_s(void)
{
	return D.conf->retry_after_s;
}

/* ---- in a request ----------------------------------------------------------------------- */

static void db_respond(struct np_response *resp, int status, const char *code, const char *msg)
{
	log_debug("answering %d %s: %s", status, code, msg);
	http_respond_error(resp, status, code, msg);
	if (status == 503) {
		resp->retry_after_s = db_retry_after_s();
		atomic_fetch_add(&D.shm->slots[D.slot].shed_503, 1);
		metrics_count(NP_MC_SHED);
	}
}

/* Take a token for ep before deadline_ms, waiting (bounded by max_waiters) for one to be freed. */
static int db_take_token(int ep, int64_t deadline_ms)
{
	int tok = budget_acquire(D.shm, ep, D.slot);
	if (tok >= 0 || util_now_ms() >= deadline_ms)
		return tok;
	if (db_waiting_count() >= D.conf->max_waiters)
		return -1;
	struct np_slot *s = &D.shm->slots[D.slot];
	atomic_store(&s->waiting, 1);
	while (tok < 0) {
		int64_t left = deadline_ms - util_now_ms();
		if (left <= 0)
			break;
		struct pollfd p = { .fd = D.shm->hdr->wake_fd[0], .events = POLLIN };
		/* also re-check now and then: a wake byte may have been taken by another process */
		if (poll(&p, 1, left > 20 ? 20 : (int)left) > 0)
			budget_wake_consume(D.shm);
		tok = budget_acquire(D.shm, ep, D.slot);
	}
	atomic_store(&s->waiting, 0);
	return tok;
}

/* Make sure this process holds a usable connection to ep for req, reconnecting under tok when
 * tok >= 0 (a token kept from a lost connection). 0, or -1 with resp set. */
/* A failed db_ensure: the primary answers 503 with code; the replica says nothing, its caller
 * falls back to the primary. Returns -1. */
static int db_ensure_fail(struct np_response *resp, int ep, const char *code, const char *msg)
{
	if (ep == NP_EP_PRIMARY)
		db_respond(resp, 503, code, msg);
	return -1;
}

static int db_ensure(struct np_request *req, struct np_response *resp, int ep, int tok)
{
	if (db_breaker_open(ep)) {
		if (tok >= 0)
			budget_release(D.shm, ep, tok);
		return db_ensure_fail(resp, ep, "db_unavailable", "the database is unavailable; retry later");
	}
	struct np_pgconn *c = &D.conn[ep];
	if (c->pg) {
		if (util_now_ms() - c->last_used_ms <= D.conf->validate_idle_ms || pgconn_idle_ok(c))
			return 0;
		tok = pgconn_close_keep(c, D.shm, DB_CLOSE_WAIT_MS, true);
	}
	if (tok >= 0)
		goto connect;
	int64_t queued_ms = req->queued_us > 0 ? req->queued_us / 1000 : 0;
	if (queued_ms >= D.conf->acquire_timeout_ms) {
		return db_ensure_fail(resp, ep, "db_busy", "the request waited in the queue longer than acquire_timeout_ms; retry later");
	}
	/* the replica is an optimisation: never wait for one of its tokens, fall back at once */
	int64_t deadline = ep == NP_EP_REPLICA ? util_now_ms() : util_now_ms() + D.conf->acquire_timeout_ms - queued_ms;
	tok = db_take_token(ep, deadline);
	if (tok < 0) {
		if (ep == NP_EP_PRIMARY)
			metrics_count(NP_MC_ACQUIRE_TIMEOUTS);
		return db_ensure_fail(resp, ep, "db_busy", "no database connection became free within acquire_timeout_ms; retry later");
	}
connect:;
	int cto = D.conf->acquire_timeout_ms > 1000 ? D.conf->acquire_timeout_ms : 1000;
	if (cto > D.conf->connect_timeout_ms)
		cto = D.conf->connect_timeout_ms;
	struct np_dberr err;
	if (db_open(ep, tok, util_now_ms() + cto, &err) < 0) {
		if (err.cls == NP_DB_BUSY)
			return db_ensure_fail(resp, ep, "db_busy", "the database has no free connection slot; retry later");
		return db_ensure_fail(resp, ep, "db_unavailable", "the database is unavailable; retry later");
	}
	return 0;
}

enum db_retry db_retry_plan(bool idempotent, int ep, enum np_db_class cls, int attempt)
{
	if (!idempotent || attempt > 0)
		return DB_RETRY_NONE;
	/* whatever failed on the replica (lost connection, timeout, recovery conflict, a relation
	 * it lacks, read-only): the primary can answer the same read */
	if (ep == NP_EP_REPLICA)
		return DB_RETRY_PRIMARY;
	return cls == NP_DB_TRANSIENT ? DB_RETRY_SAME : DB_RETRY_NONE;
}

/* After a failed query on ep: close the connection when the error left it unusable or says the
 * server is unwell, and count a failure for the breaker where it is one. Returns the token kept
 * for a reconnect on ep (keep), else -1. */
static int db_after_error(int ep, const struct np_dberr *err, bool keep)
{
	switch (err->cls) {
	case NP_DB_TRANSIENT:
		/* not counted for the breaker: the reconnect is what tells whether it is down */
		return pgconn_close_keep(&D.conn[ep], D.shm, DB_CLOSE_WAIT_MS, keep);
	case NP_DB_TIMEOUT:
		db_note_fail(ep, err);
		db_close(ep, 0); /* the server is not answering: the token waits for its close */
		return -1;
	case NP_DB_DOWN:
	case NP_DB_CONFIG:
		db_note_fail(ep, err);
		db_close(ep, DB_CLOSE_WAIT_MS);
		return -1;
	default:
		/* the session is still usable (statement_timeout, a full server, an SQL error) */
		return -1;
	}
}

/* How a statement runs: as the route's method and flags say (db_query), as a read on the primary
 * (db_read_primary), or as a write (db_write). */
enum db_mode { DB_MODE_ROUTE, DB_MODE_READ_PRIMARY, DB_MODE_WRITE };

/* The answer to a statement that failed and is not tried again, by the failure's class (logged
 * with kv, the request's and the error's fields). */
static void db_answer_error(struct np_response *resp, enum np_db_class cls, const char *kv)
{
	switch (cls) {
	case NP_DB_TRANSIENT:
		log_kv(NP_LOG_WARN, kv, "connection lost");
		db_respond(resp, 503, "db_unavailable", "the database connection was lost; retry later");
		break;
	case NP_DB_TIMEOUT:
		log_kv(NP_LOG_WARN, kv, "database did not answer before the deadline");
		db_respond(resp, 504, "db_timeout", "the database did not answer in time");
		break;
	case NP_DB_CANCELED:
		log_kv(NP_LOG_WARN, kv, "statement_timeout");
		db_respond(resp, 504, "db_timeout", "the query took longer than query_timeout_ms");
		break;
	case NP_DB_BUSY:
		db_respond(resp, 503, "db_busy", "the database has no free connection slot; retry later");
		break;
	case NP_DB_DOWN:
	case NP_DB_CONFIG:
		db_respond(resp, 503, "db_unavailable", "the database is unavailable; retry later");
		break;
	default:
		log_kv(NP_LOG_ERROR, kv, "query failed");
		db_respond(resp, 500, "db_error", "the query failed");
		break;
	}
}

static PGresult *db_run(struct np_request *req, struct np_response *resp, const struct np_stmt *st,
                        const char *const *params, enum db_mode mode)
{
	unsigned flags = req->match.route ? req->match.route->flags : 0;
	bool idempotent = mode == DB_MODE_READ_PRIMARY ||
	                  (mode == DB_MODE_ROUTE && (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0));
	int ep = NP_EP_PRIMARY;
	if (mode == DB_MODE_ROUTE && (flags & ROUTE_READ_ONLY) && db_configured(NP_EP_REPLICA) &&
	    !db_breaker_open(NP_EP_REPLICA))
		ep = NP_EP_REPLICA;
	atomic_store(&D.shm->slots[D.slot].db_last_request_us, util_wall_us());

	int kept = -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		/* a write first checks that its idle connection is still there (a poll, no round
		 * trip), whatever validate_idle_ms says: a write sent on a dead connection has an
		 * unknown outcome, one never sent can be sent again */
		if (mode == DB_MODE_WRITE && D.conn[ep].pg && kept < 0 && !pgconn_idle_ok(&D.conn[ep]))
			kept = pgconn_close_keep(&D.conn[ep], D.shm, DB_CLOSE_WAIT_MS, true);
		/* acquire: from asking for a connection to holding one, its connect excluded */
		int64_t a0 = util_now_us(), c0 = D.connect_us;
		int rc = db_ensure(req, resp, ep, kept);
		metrics_phase(NP_PHASE_ACQUIRE, util_now_us() - a0 - (D.connect_us - c0));
		kept = -1;
		if (rc < 0) {
			if (ep == NP_EP_REPLICA) {
				/* the replica cannot serve: fall back to the primary */
				ep = NP_EP_PRIMARY;
				attempt--;
				continue;
			}
			return NULL;
		}
		struct np_dberr err;
		PGresult *res = NULL;
		int64_t q0 = util_now_us();
		int qrc = pgconn_exec(&D.conn[ep], D.conf, D.shm, st, params, &res, &err);
		metrics_phase(NP_PHASE_QUERY, util_now_us() - q0);
		if (qrc == 0) {
			db_note_ok(ep);
			return res;
		}
		char kv[512], q[300];
		util_quote_value(err.message, q, sizeof(q));
		snprintf(kv, sizeof(kv), " request_id=%s endpoint=%d class=%s kind=%s sqlstate=%s error=%s",
		         req->request_id, ep, pgconn_class_name(err.cls), errclass_of_kind(err.kind)->name,
		         err.sqlstate[0] ? err.sqlstate : "-", q);
		enum db_retry plan = db_retry_plan(idempotent, ep, err.cls, attempt);
		/* a write that never left: the outcome is known (nothing ran), so once more is safe */
		if (mode == DB_MODE_WRITE && !err.sent && err.cls == NP_DB_TRANSIENT && attempt == 0)
			plan = DB_RETRY_SAME;
		/* an error the server sent on a connection that still works (40001, ...) rolled back:
		 * known; a broken connection or no answer at all after sending: unknown */
		bool broken = D.conn[ep].pg == NULL || PQstatus(D.conn[ep].pg) != CONNECTION_OK;
		bool unknown = mode == DB_MODE_WRITE && err.sent &&
		               (err.cls == NP_DB_TIMEOUT || (err.cls == NP_DB_TRANSIENT && broken));
		kept = db_after_error(ep, &err, plan == DB_RETRY_SAME);
		if (unknown) {
			/* the connection broke (or the server stopped answering) after the statement was
			 * sent: it may have committed. Never retried: the client decides, and with its
			 * Idempotency-Key a retry cannot duplicate. */
			log_kv(NP_LOG_WARN, kv, "write outcome unknown");
			db_respond(resp, 503, "db_outcome_unknown",
			           "the database connection was lost after the write was sent: whether it committed is "
			           "unknown; retry with the same Idempotency-Key");
			return NULL;
		}
		if (plan == DB_RETRY_PRIMARY || plan == DB_RETRY_SAME)
			metrics_count(NP_MC_RETRIES);
		if (plan == DB_RETRY_PRIMARY) {
			log_kv(err.cls == NP_DB_TRANSIENT ? NP_LOG_INFO : NP_LOG_WARN, kv,
			       "query failed on the replica; retrying on the primary");
			ep = NP_EP_PRIMARY;
			continue;
		}
		if (plan == DB_RETRY_SAME) {
			log_kv(NP_LOG_INFO, kv, "connection lost; retrying once on a fresh connection");
			continue;
		}
		db_answer_error(resp, err.cls, kv);
		return NULL;
	}
	db_respond(resp, 503, "db_unavailable", "the database is unavailable; retry later");
	return NULL;
}

PGresult *db_query(struct np_request *req, struct np_response *resp, const struct np_stmt *st,
                   const char *const *params)
{
	return db_run(req, resp, st, params, DB_MODE_ROUTE);
}

PGresult *db_read_primary(struct np_request *req, struct np_response *resp, const struct np_stmt *st,
                          const char *const *params)
{
	return db_run(req, resp, st, params, DB_MODE_READ_PRIMARY);
}

PGresult *db_write(struct np_request *req, struct np_response *resp, const struct np_stmt *st,
                   const char *const *params)
{
	return db_run(req, resp, st, params, DB_MODE_WRITE);
}
