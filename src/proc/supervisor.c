/* SPDX-License-Identifier: PostgreSQL */
/* supervisor.c - the periodic process: worker view, budget janitor, database health with its
 * circuit breaker and probes, the shed decision, and the budget's sanity against the server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "child.h"
#include "log.h"
#include "metrics.h"
#include "pgconn.h"
#include "resolve.h"
#include "supervisor.h"
#include "util.h"

#define SUPERVISOR_TICK_MS 50
#define PROBE_CONNECT_MAX_MS 2000
#define SUPERVISOR_DNS_WAIT_MS 10
#define SUP_WIN_EVERY_MS 10000       /* a snapshot of the route histograms this often */
#define SUP_WIN_SNAPS 31             /* 5 minutes of them, and the newest */

/* The windows' snapshots: each the sum over the rows of every route's total histogram, taken
 * every SUP_WIN_EVERY_MS into a ring; a window is the newest minus the one its length ago. The
 * live rows are never reset (PgBouncer's stats.c habit). */
static struct {
	struct hist *snap[SUP_WIN_SNAPS];  /* NP_MROUTES histograms each */
	int64_t at_ms[SUP_WIN_SNAPS];
	int n, head;                       /* snapshots taken (<= SUP_WIN_SNAPS), newest index */
	int64_t next_ms;
	struct hist *diff;
} sup_win;

static struct {
	const struct np_conf *conf;
	struct np_shm *shm;
	int slot;
	uint64_t ok[NP_EP_COUNT], fail[NP_EP_COUNT];
	int fail_run[NP_EP_COUNT];
	bool ever_ok[NP_EP_COUNT];
	int64_t next_probe_ms[NP_EP_COUNT];
	int64_t started_ms;
	int clamp_warned[NP_EP_COUNT];
	uint32_t last_kind[NP_EP_COUNT];  /* enum np_errkind of the newest failure seen */
	uint64_t slot_fail[NP_EP_COUNT][NP_MAX_SLOTS]; /* each slot's db_fail at the last tick */
	int64_t no_conn_since_ms;       /* primary: since when no connection is live (0: one is) */
	int64_t recovered_ms[NP_EP_COUNT]; /* when the breaker last closed: warm-up restarts there */
} S;

void supervisor_aggregate(struct np_shm *shm)
{
	uint32_t idle = 0, busy = 0, starting = 0;
	uint64_t requests = 0;
	int64_t now = util_wall_us(), longest = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		/* copy, then work on the copy: the slot may change under us */
		struct np_slot *s = &shm->slots[i];
		if (atomic_load(&s->kind) != NP_KIND_WORKER)
			continue;
		uint32_t state = atomic_load(&s->state);
		int64_t start = atomic_load(&s->req_start_us);
		requests += atomic_load(&s->requests);
		if (state == NP_SLOT_IDLE)
			idle++;
		else if (shm_state_busy(state))
			busy++;
		else if (state == NP_SLOT_STARTING)
			starting++;
		if (shm_state_busy(state) && start > 0 && now - start > longest)
			longest = now - start;
	}
	atomic_store(&shm->hdr->sup_workers_idle, idle);
	atomic_store(&shm->hdr->sup_workers_busy, busy);
	atomic_store(&shm->hdr->sup_workers_starting, starting);
	/* requests of reaped workers are lost from the sum; keep the published total monotonic */
	uint64_t prev = atomic_load(&shm->hdr->sup_requests_total);
	if (requests > prev)
		atomic_store(&shm->hdr->sup_requests_total, requests);
	atomic_store(&shm->hdr->sup_longest_busy_us, longest);
	atomic_store(&shm->hdr->sup_updated_us, now);
}

/* Take a snapshot of the routes' totals into the ring. */
static void sup_win_snapshot(struct np_shm *shm, int64_t now_ms)
{
	int i = sup_win.n == 0 ? 0 : (sup_win.head + 1) % SUP_WIN_SNAPS;
	struct hist *h = sup_win.snap[i];
	memset(h, 0, NP_MROUTES * sizeof(*h));
	for (int s = 0, end = shm_mrows_end(shm); s < end; s++) {
		const struct np_mrow *row = &shm->mrows[s];
		if (!atomic_load(&row->used))
			continue;
		for (int r = 0; r < NP_MROUTES; r++)
			hist_merge(&h[r], &row->hist[r][NP_PHASE_TOTAL]);
	}
	sup_win.at_ms[i] = now_ms;
	sup_win.head = i;
	if (sup_win.n < SUP_WIN_SNAPS)
		sup_win.n++;
}

/* Publish the 1 and 5 minute windows of each route: newest snapshot minus an older one. */
static void sup_win_publish(struct np_shm *shm, int64_t now_ms)
{
	static const int span_s[NP_WIN_COUNT] = { 60, 300 };
	struct np_shm_header *hd = shm->hdr;
	/* the windows' lock is a sequence count with one writer (supervisors never overlap). A
	 * writer killed between its two steps left it odd: begin at the odd value, never add to
	 * it, so that the count is even again after this write (adding 1 and 1 kept a flipped
	 * parity for good: every reader then retried and took torn windows) */
	uint32_t seq = atomic_load(&hd->sup_win_seq) | 1u;
	atomic_store(&hd->sup_win_seq, seq); /* odd: writing */
	for (int w = 0; w < NP_WIN_COUNT; w++) {
		/* the oldest snapshot not older than the span (the oldest there is, early on) */
		int back = span_s[w] * 1000 / SUP_WIN_EVERY_MS;
		if (back > sup_win.n - 1)
			back = sup_win.n - 1;
		int old = (sup_win.head - back + SUP_WIN_SNAPS) % SUP_WIN_SNAPS;
		atomic_store(&hd->sup_win_span_s[w], (int32_t)((sup_win.at_ms[sup_win.head] - sup_win.at_ms[old]) / 1000));
		for (int r = 0; r < NP_MROUTES; r++) {
			hist_diff(sup_win.diff, &sup_win.snap[sup_win.head][r], &sup_win.snap[old][r]);
			struct np_window *o = &hd->sup_win[w][r];
			atomic_store(&o->count, hist_total(sup_win.diff));
			atomic_store(&o->p50_us, (uint32_t)hist_percentile(sup_win.diff, 0.50));
			atomic_store(&o->p95_us, (uint32_t)hist_percentile(sup_win.diff, 0.95));
			atomic_store(&o->p99_us, (uint32_t)hist_percentile(sup_win.diff, 0.99));
		}
	}
	atomic_store(&hd->sup_win_us, util_wall_us());
	atomic_store(&hd->sup_win_seq, seq + 1); /* even: done */
	(void)now_ms;
}

static bool sup_win_init(void)
{
	for (int i = 0; i < SUP_WIN_SNAPS; i++)
		if ((sup_win.snap[i] = calloc(NP_MROUTES, sizeof(struct hist))) == NULL)
			return false;
	return (sup_win.diff = calloc(1, sizeof(struct hist))) != NULL;
}

void supervisor_windows(struct np_shm *shm, int64_t now_ms)
{
	if (sup_win.diff == NULL && !sup_win_init()) {
		log_error("out of memory for the latency windows");
		return;
	}
	if (sup_win.n > 0 && now_ms < sup_win.next_ms)
		return;
	sup_win.next_ms = now_ms + SUP_WIN_EVERY_MS;
	sup_win_snapshot(shm, now_ms);
	sup_win_publish(shm, now_ms);
}

/* "circuit open after 3 failures (last: DNS lookup failed, dns)": the class as check-db names it. */
static void sup_reason(char *buf, size_t n, int failures, enum np_errkind kind)
{
	const struct np_errclass *ec = errclass_of_kind(kind);
	snprintf(buf, n, "circuit open after %d failures (last: %s, %s)", failures, ec->label, ec->name);
}

static void sup_set_health(struct np_endpoint_shm *e, enum np_health h, const char *reason);

/* Not ready past ready_deadline_ms: say why, with the last failure's class when there was one. */
static void sup_set_degraded(struct np_endpoint_shm *e, int ep)
{
	const struct np_errclass *ec = errclass_of_kind((enum np_errkind)S.last_kind[ep]);
	char reason[sizeof(e->reason)];
	if (S.ever_ok[ep])
		snprintf(reason, sizeof(reason), "fewer connections than min_warm");
	else if (ec->kind != NP_ERR_NONE)
		snprintf(reason, sizeof(reason), "database not reached yet (last: %s, %s)", ec->label, ec->name);
	else
		snprintf(reason, sizeof(reason), "database not reached yet");
	sup_set_health(e, NP_HEALTH_DEGRADED, reason);
}

static void sup_set_health(struct np_endpoint_shm *e, enum np_health h, const char *reason)
{
	if (atomic_load(&e->health) != (uint32_t)h)
		atomic_store(&e->health_since_us, util_wall_us());
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
	atomic_store(&e->health, (uint32_t)h);
}

/* Effective limit: the configured budget, checked (and with budget_clamp, lowered) against what
 * the server allows: max_connections - superuser_reserved_connections (Neon reserves 7). */
static void sup_limit(int ep)
{
	struct np_endpoint_shm *e = &S.shm->hdr->ep[ep];
	int configured = (int)atomic_load(&e->configured);
	/* the most recent connect to the configured URL wins: a slot that connected before a server
	 * restart (or to the URL before a reload) remembers old limits */
	uint64_t url = util_hash64(ep == NP_EP_REPLICA ? S.conf->replica_url : S.conf->database_url);
	int maxc = 0, reserved = 0;
	int64_t newest = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		const struct np_slot *sl = &S.shm->slots[i];
		int64_t at = atomic_load(&sl->server_limits_us[ep]);
		int m = atomic_load(&sl->server_max_conn[ep]);
		if (at <= newest || m <= 0 || atomic_load(&sl->server_url_hash[ep]) != url)
			continue;
		newest = at;
		maxc = m;
		reserved = atomic_load(&sl->server_reserved[ep]);
	}
	atomic_store(&e->server_max_conn, maxc); /* 0: not known for this URL yet */
	atomic_store(&e->server_reserved, reserved);
	int limit = configured;
	if (maxc > 0) {
		int avail = maxc - reserved;
		if (configured > avail) {
			bool clamp = S.conf->budget_clamp;
			if (S.clamp_warned[ep] != configured) {
				S.clamp_warned[ep] = configured;
				log_warn("budget %d of endpoint %d does not fit the server: max_connections %d minus "
				         "superuser_reserved_connections %d leaves %d%s",
				         configured, ep, maxc, reserved, avail,
				         clamp ? "; budget_clamp lowers it" : "; set budget_clamp = true to lower it");
			}
			if (clamp)
				limit = avail > 1 ? avail : 1;
		}
	}
	atomic_store(&e->limit, (uint32_t)limit);
}

/* One probe of ep under a token of our own: connect, SELECT 1, close. */
static bool sup_probe(int ep, struct np_dberr *err)
{
	int tok = budget_acquire(S.shm, ep, S.slot);
	if (tok < 0) {
		snprintf(err->message, sizeof(err->message), "no budget token free for a probe");
		err->cls = NP_DB_BUSY;
		err->kind = NP_ERR_NONE; /* says nothing about the server */
		return false;
	}
	struct np_pgconn c;
	char appname[64];
	snprintf(appname, sizeof(appname), "%.40s/sup", S.conf->application_name);
	int cto = S.conf->connect_timeout_ms < PROBE_CONNECT_MAX_MS ? S.conf->connect_timeout_ms : PROBE_CONNECT_MAX_MS;
	int64_t t0 = util_now_us();
	int rc = pgconn_open(&c, S.conf, S.shm, S.slot, ep, tok, appname, util_now_ms() + cto, err);
	metrics_phase(NP_PHASE_CONNECT, util_now_us() - t0);
	metrics_count(rc < 0 ? NP_MC_CONNECTS_FAILED : NP_MC_CONNECTS_OK);
	if (rc < 0)
		return false;
	t0 = util_now_us();
	bool ok = pgconn_ping(&c, S.conf, S.shm, err) == 0;
	metrics_phase(NP_PHASE_QUERY, util_now_us() - t0);
	pgconn_close(&c, S.shm, ok ? 1000 : 0);
	return ok;
}

static void sup_breaker_close(int ep, struct np_endpoint_shm *e, int64_t now, const char *why)
{
	S.ever_ok[ep] = true;
	S.fail_run[ep] = 0;
	atomic_store(&e->breaker, NP_BREAKER_CLOSED);
	S.recovered_ms[ep] = now;
	log_info("endpoint %d: %s; circuit closed", ep, why);
}

/* The breaker: consecutive failures across the pool, from the slots' counters; it opens past
 * breaker_failures. Its state now. */
static uint32_t sup_breaker(int ep, struct np_endpoint_shm *e, int64_t now)
{
	uint64_t ok = 0, fail = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		ok += atomic_load(&S.shm->slots[i].db_ok[ep]);
		fail += atomic_load(&S.shm->slots[i].db_fail[ep]);
		/* the class of the slot whose failures moved: the newest news */
		uint64_t f = atomic_load(&S.shm->slots[i].db_fail[ep]);
		if (f > S.slot_fail[ep][i])
			S.last_kind[ep] = atomic_load(&S.shm->slots[i].db_last_kind[ep]);
		S.slot_fail[ep][i] = f;
	}
	uint64_t dok = ok > S.ok[ep] ? ok - S.ok[ep] : 0, dfail = fail > S.fail[ep] ? fail - S.fail[ep] : 0;
	S.ok[ep] = ok;
	S.fail[ep] = fail;
	if (dok > 0) {
		S.fail_run[ep] = 0;
		S.ever_ok[ep] = true;
	} else {
		S.fail_run[ep] += (int)dfail;
	}
	uint32_t breaker = atomic_load(&e->breaker);
	if (breaker == NP_BREAKER_OPEN && dok > 0) {
		/* a statement or a connect of the pool succeeded since it opened: as good as a probe, and
		 * the only news when the pool's own connections hold every token or every slot the server
		 * has (a probe then never gets through, and the breaker stayed open until a reload) */
		sup_breaker_close(ep, e, now, "a pool connection succeeded");
		return NP_BREAKER_CLOSED;
	}
	if (breaker == NP_BREAKER_CLOSED && S.fail_run[ep] >= S.conf->breaker_failures) {
		atomic_store(&e->breaker, NP_BREAKER_OPEN);
		atomic_fetch_add(&e->breaker_opened_total, 1);
		S.next_probe_ms[ep] = now + S.conf->breaker_probe_ms;
		char reason[sizeof(e->reason)];
		sup_reason(reason, sizeof(reason), S.fail_run[ep], (enum np_errkind)S.last_kind[ep]);
		sup_set_health(e, NP_HEALTH_DOWN, reason);
		log_error("endpoint %d: %s; requests get 503 db_unavailable until a probe succeeds", ep, reason);
		breaker = NP_BREAKER_OPEN;
	}
	return breaker;
}

/* A probe when one is due: the breaker is open, or nothing ever connected and nothing is kept
 * warm to find out. A success closes the breaker; a failure names the newest reason. The breaker's
 * state after it (*now advanced past the probe). */
static uint32_t sup_probe_due(int ep, struct np_endpoint_shm *e, uint32_t breaker, int64_t *now)
{
	bool need_probe = breaker == NP_BREAKER_OPEN ||
	                  (!S.ever_ok[ep] && budget_connected(S.shm, ep) == 0 && S.conf->min_warm == 0);
	if (need_probe && *now >= S.next_probe_ms[ep]) {
		struct np_dberr err;
		if (sup_probe(ep, &err)) {
			S.ever_ok[ep] = true;
			S.fail_run[ep] = 0;
			if (breaker == NP_BREAKER_OPEN)
				sup_breaker_close(ep, e, *now, "probe succeeded");
		} else if (breaker == NP_BREAKER_OPEN && err.cls == NP_DB_BUSY && err.kind == NP_ERR_TOO_MANY_CLIENTS) {
			/* the server answered, and it is full: busy, not down (requests get db_busy, and the
			 * pool's own connections, which may be what fills it, serve again) */
			sup_breaker_close(ep, e, *now, "probe answered: server full (too many clients), so it is up");
		} else {
			char q[300];
			util_quote_value(err.message, q, sizeof(q));
			log_debug("endpoint %d: probe failed (%s): %s", ep, errclass_of_kind(err.kind)->name, q);
			if (err.kind != NP_ERR_NONE)
				S.last_kind[ep] = (uint32_t)err.kind; /* the newest news about the endpoint */
			if (breaker == NP_BREAKER_OPEN && err.kind != NP_ERR_NONE) {
				char reason[sizeof(e->reason)];
				sup_reason(reason, sizeof(reason), S.fail_run[ep], err.kind);
				sup_set_health(e, NP_HEALTH_DOWN, reason);
			}
		}
		S.next_probe_ms[ep] = util_now_ms() + S.conf->breaker_probe_ms;
		breaker = atomic_load(&e->breaker);
		*now = util_now_ms();
	}
	return breaker;
}

/* Shed (the primary only): nobody can take requests from the main socket within
 * acquire_timeout_ms. The number of connected tokens. */
static int sup_shed(int ep, struct np_endpoint_shm *e, int64_t now)
{
	int connected = 0;
	bool all_stuck = true;
	int64_t wall = util_wall_us();
	for (int i = 0; i < NP_MAX_BUDGET; i++) {
		const struct np_token *t = &e->tokens[i];
		if (atomic_load(&t->owner) == 0 || atomic_load(&t->phase) != NP_TOK_CONNECTED)
			continue;
		connected++;
		int s = atomic_load(&t->slot);
		if (s < 0 || s >= NP_MAX_SLOTS || atomic_load(&S.shm->slots[s].kind) != NP_KIND_WORKER)
			continue;
		int64_t start = atomic_load(&S.shm->slots[s].req_start_us);
		if (!shm_state_busy(atomic_load(&S.shm->slots[s].state)) || start == 0 ||
		    wall - start < (int64_t)S.conf->acquire_timeout_ms * 1000)
			all_stuck = false;
	}
	if (ep == NP_EP_PRIMARY) {
		/* no live connection for longer than a request may wait (a reconnect after a
		 * pg_terminate_backend takes milliseconds and must not shed) */
		if (connected > 0)
			S.no_conn_since_ms = 0;
		else if (S.no_conn_since_ms == 0)
			S.no_conn_since_ms = now;
		bool starved = connected == 0 && now - S.no_conn_since_ms >= S.conf->acquire_timeout_ms;
		atomic_store(&e->shed, (starved || (connected > 0 && all_stuck)) ? 1u : 0u);
	}
	return connected;
}

/* Health for /readyz, with the breaker closed (open, it stays DOWN with its reason). */
static void sup_health(int ep, struct np_endpoint_shm *e, int connected, int64_t now)
{
	int limit = budget_limit(S.shm, ep);
	int warm = S.conf->min_warm < limit ? S.conf->min_warm : limit;
	if (ep == NP_EP_REPLICA)
		warm = warm > 0 ? 1 : 0;
	if ((warm > 0 && connected >= warm) || (warm == 0 && S.ever_ok[ep]))
		sup_set_health(e, NP_HEALTH_UP, "");
	else if (atomic_load(&e->health) == NP_HEALTH_UP && S.ever_ok[ep])
		; /* a dip below min_warm while reconnecting is not a readiness change */
	else if (now - (S.recovered_ms[ep] > S.started_ms ? S.recovered_ms[ep] : S.started_ms) > S.conf->ready_deadline_ms)
		/* after an outage, as at start: min_warm connections get ready_deadline_ms to open
		 * before /readyz says ready while degraded (t_warmup_ready_after_outage: ready with 2
		 * of 3 warm in 1 of 3 runs, 60 ms after the database came back) */
		sup_set_degraded(e, ep);
	else
		sup_set_health(e, NP_HEALTH_STARTING, "opening connections");
}

static void sup_endpoint(int ep)
{
	struct np_endpoint_shm *e = &S.shm->hdr->ep[ep];
	if (atomic_load(&e->configured) == 0)
		return;
	sup_limit(ep);
	int64_t now = util_now_ms();
	uint32_t breaker = sup_probe_due(ep, e, sup_breaker(ep, e, now), &now);
	int connected = sup_shed(ep, e, now);
	if (breaker != NP_BREAKER_OPEN)
		sup_health(ep, e, connected, now);
}

void supervisor_main(const struct np_conf *conf, struct np_shm *shm, int slot, pid_t master_pid)
{
	if (child_setup("np-supervisor", "supervisor", master_pid) < 0)
		_exit(0);
	memset(&S, 0, sizeof(S));
	S.conf = conf;
	S.shm = shm;
	S.slot = slot;
	S.started_ms = util_now_ms();
	for (int ep = 0; ep < NP_EP_COUNT; ep++) {
		/* a previous supervisor's view survives in shared memory: start from it */
		S.ever_ok[ep] = atomic_load(&shm->hdr->ep[ep].health) == NP_HEALTH_UP;
		for (int i = 0; i < NP_MAX_SLOTS; i++) {
			S.ok[ep] += atomic_load(&shm->slots[i].db_ok[ep]);
			S.fail[ep] += atomic_load(&shm->slots[i].db_fail[ep]);
		}
	}
	/* a probe never waits on DNS beyond a few ms: the lookup goes on and the next probe uses it */
	resolve_init(conf->dns_cache_ttl_s, SUPERVISOR_DNS_WAIT_MS);
	metrics_bind(&shm->mrows[slot]);
	atomic_store(&shm->hdr->supervisor_pid, (int32_t)getpid());
	atomic_store(&shm->slots[slot].state, NP_SLOT_IDLE);
	log_debug("supervisor started");

	while (!child_should_stop()) {
		child_wait(-1, SUPERVISOR_TICK_MS);
		supervisor_aggregate(shm);
		supervisor_windows(shm, util_now_ms());
		budget_janitor(shm, conf->orphan_grace_ms);
		resolve_refresh(conf->database_url);
		if (conf->replica_url[0])
			resolve_refresh(conf->replica_url);
		for (int ep = 0; ep < NP_EP_COUNT; ep++)
			sup_endpoint(ep);
		pgconn_graveyard_poll(shm);
	}
	atomic_store(&shm->slots[slot].state, NP_SLOT_EXITING);
	log_debug("supervisor exiting");
	shm_detach(shm); /* as a worker does: no leak scan of the region under valgrind */
	_exit(0);
}
