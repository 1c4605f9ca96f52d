/* SPDX-License-Identifier: PostgreSQL */
/* status.c - the pool's state as one JSON document and as text, read from the shared memory.
 * Every field is copied from a slot or the header, then worked on (the slot may change). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "budget.h"
#include "metrics.h"
#include "status.h"
#include "util.h"

static const char *health_name(uint32_t h)
{
	static const char *n[] = { "starting", "up", "degraded", "down" };
	return h < 4 ? n[h] : "unknown";
}

static cJSON *status_endpoint(const struct np_shm *shm, int ep)
{
	const struct np_endpoint_shm *e = &shm->hdr->ep[ep];
	cJSON *o = cJSON_CreateObject();
	int in_use = 0, connected = 0, connecting = 0, closing = 0, orphaned = 0;
	cJSON *toks = cJSON_CreateArray();
	for (int i = 0; i < NP_MAX_BUDGET; i++) {
		const struct np_token *t = &e->tokens[i];
		int32_t owner = atomic_load(&t->owner);
		if (owner == 0)
			continue;
		uint32_t ph = atomic_load(&t->phase);
		in_use++;
		connected += ph == NP_TOK_CONNECTED;
		connecting += ph == NP_TOK_CONNECTING;
		closing += ph == NP_TOK_CLOSING;
		orphaned += ph == NP_TOK_ORPHANED;
		cJSON *tj = cJSON_CreateObject();
		cJSON_AddNumberToObject(tj, "token", i);
		cJSON_AddNumberToObject(tj, "pid", owner);
		cJSON_AddNumberToObject(tj, "slot", atomic_load(&t->slot));
		cJSON_AddStringToObject(tj, "phase", budget_phase_name(ph));
		cJSON_AddNumberToObject(tj, "backend_pid", atomic_load(&t->backend_pid));
		cJSON_AddItemToArray(toks, tj);
	}
	cJSON_AddNumberToObject(o, "configured", atomic_load(&e->configured));
	cJSON_AddNumberToObject(o, "limit", budget_limit(shm, ep));
	cJSON_AddNumberToObject(o, "in_use", in_use);
	cJSON_AddNumberToObject(o, "connected", connected);
	cJSON_AddNumberToObject(o, "connecting", connecting);
	cJSON_AddNumberToObject(o, "closing", closing);
	cJSON_AddNumberToObject(o, "orphaned", orphaned);
	cJSON_AddStringToObject(o, "health", health_name(atomic_load(&e->health)));
	char reason[sizeof(e->reason)];
	memcpy(reason, e->reason, sizeof(reason));
	reason[sizeof(reason) - 1] = '\0';
	cJSON_AddStringToObject(o, "reason", reason);
	cJSON_AddStringToObject(o, "breaker", atomic_load(&e->breaker) ? "open" : "closed");
	cJSON_AddNumberToObject(o, "breaker_opened_total", (double)atomic_load(&e->breaker_opened_total));
	cJSON_AddBoolToObject(o, "shedding", atomic_load(&e->shed) != 0);
	cJSON_AddNumberToObject(o, "server_max_connections", atomic_load(&e->server_max_conn));
	cJSON_AddNumberToObject(o, "server_reserved_connections", atomic_load(&e->server_reserved));
	cJSON_AddItemToObject(o, "tokens", toks);
	return o;
}

/* The windows, copied under the supervisor's sequence count (a few tries, then as they are). */
static void status_windows(const struct np_shm *shm, struct np_window out[NP_WIN_COUNT][NP_MROUTES],
                           int span[NP_WIN_COUNT])
{
	const struct np_shm_header *h = shm->hdr;
	for (int tries = 0; tries < 100; tries++) {
		uint32_t s0 = atomic_load(&h->sup_win_seq);
		for (int w = 0; w < NP_WIN_COUNT; w++) {
			span[w] = atomic_load(&h->sup_win_span_s[w]);
			for (int r = 0; r < NP_MROUTES; r++) {
				atomic_store(&out[w][r].count, atomic_load(&h->sup_win[w][r].count));
				atomic_store(&out[w][r].p50_us, atomic_load(&h->sup_win[w][r].p50_us));
				atomic_store(&out[w][r].p95_us, atomic_load(&h->sup_win[w][r].p95_us));
				atomic_store(&out[w][r].p99_us, atomic_load(&h->sup_win[w][r].p99_us));
			}
		}
		if (!(s0 & 1) && atomic_load(&h->sup_win_seq) == s0)
			return;
	}
}

static cJSON *status_routes(const struct np_shm *shm, const uint64_t *totals)
{
	struct np_window win[NP_WIN_COUNT][NP_MROUTES];
	int span[NP_WIN_COUNT];
	static const char *const wname[NP_WIN_COUNT] = { "1m", "5m" };
	status_windows(shm, win, span);
	cJSON *routes = cJSON_CreateObject();
	for (int r = 0; r < NP_MROUTES; r++) {
		char name[sizeof(shm->hdr->route_names[0])];
		memcpy(name, shm->hdr->route_names[r], sizeof(name));
		name[sizeof(name) - 1] = '\0';
		if (!name[0] || r == NP_MROUTE_POOL || (totals[r] == 0 && atomic_load(&win[NP_WIN_5M][r].count) == 0))
			continue;
		cJSON *o = cJSON_AddObjectToObject(routes, name);
		cJSON_AddNumberToObject(o, "requests_total", (double)totals[r]);
		for (int w = 0; w < NP_WIN_COUNT; w++) {
			cJSON *x = cJSON_AddObjectToObject(o, wname[w]);
			cJSON_AddNumberToObject(x, "span_s", span[w]);
			cJSON_AddNumberToObject(x, "requests", (double)atomic_load(&win[w][r].count));
			cJSON_AddNumberToObject(x, "p50_ms", atomic_load(&win[w][r].p50_us) / 1000.0);
			cJSON_AddNumberToObject(x, "p95_ms", atomic_load(&win[w][r].p95_us) / 1000.0);
			cJSON_AddNumberToObject(x, "p99_ms", atomic_load(&win[w][r].p99_us) / 1000.0);
		}
	}
	return routes;
}

cJSON *status_backoff(const struct np_shm *shm)
{
	cJSON *o = NULL;
	for (uint32_t kind = 1; kind < NP_KIND_COUNT; kind++) {
		uint32_t delay = atomic_load(&shm->hdr->respawn[kind].delay_ms);
		if (delay == 0)
			continue;
		if (o == NULL && (o = cJSON_CreateObject()) == NULL)
			return NULL;
		cJSON *p = cJSON_AddObjectToObject(o, shm_kind_name(kind));
		cJSON_AddNumberToObject(p, "alive", shm_pool_alive(shm, (enum np_slot_kind)kind));
		cJSON_AddNumberToObject(p, "configured", shm_pool_configured(shm, (enum np_slot_kind)kind));
		cJSON_AddNumberToObject(p, "backoff_ms", delay);
	}
	return o;
}

/* Each pool: children alive of configured, deaths, and its backoff (what the master published). */
static cJSON *status_respawn(const struct np_shm *shm)
{
	cJSON *o = cJSON_CreateObject();
	int64_t now = util_wall_us();
	for (uint32_t kind = 1; kind < NP_KIND_COUNT; kind++) {
		const struct np_respawn *r = &shm->hdr->respawn[kind];
		int configured = shm_pool_configured(shm, (enum np_slot_kind)kind);
		if (configured == 0)
			continue;
		cJSON *p = cJSON_AddObjectToObject(o, shm_kind_name(kind));
		int64_t next = atomic_load(&r->next_us);
		cJSON_AddNumberToObject(p, "configured", configured);
		cJSON_AddNumberToObject(p, "alive", shm_pool_alive(shm, (enum np_slot_kind)kind));
		cJSON_AddNumberToObject(p, "deaths_total", (double)atomic_load(&r->deaths_total));
		cJSON_AddNumberToObject(p, "young_deaths_in_a_row", atomic_load(&r->streak));
		cJSON_AddNumberToObject(p, "backoff_ms", atomic_load(&r->delay_ms));
		cJSON_AddNumberToObject(p, "next_start_in_ms", next > now ? (double)((next - now) / 1000) : 0);
	}
	return o;
}

/* Each generation with children alive in region shm: its children by state and the budget tokens
 * they hold, added to gens (region: NULL for the instance's, else the name of the other one). */
static void status_generations(cJSON *gens, const struct np_shm *shm, const char *region)
{
	const struct np_shm_header *h = shm->hdr;
	enum { GENS = 4 };
	uint32_t gen[GENS] = { 0 };
	int kids[GENS] = { 0 }, busy[GENS] = { 0 }, exiting[GENS] = { 0 }, tokens[GENS] = { 0 }, ng = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		const struct np_slot *s = &shm->slots[i];
		if (atomic_load(&s->kind) == NP_KIND_NONE)
			continue;
		uint32_t g = atomic_load(&s->generation), st = atomic_load(&s->state);
		int32_t pid = atomic_load(&s->pid);
		int k = 0;
		while (k < ng && gen[k] != g)
			k++;
		if (k == ng && ng == GENS)
			continue;
		if (k == ng)
			gen[ng++] = g;
		kids[k]++;
		busy[k] += shm_state_busy(st);
		exiting[k] += st == NP_SLOT_EXITING;
		for (int ep = 0; ep < NP_EP_COUNT && pid > 0; ep++)
			for (int t = 0; t < NP_MAX_BUDGET; t++)
				tokens[k] += atomic_load(&h->ep[ep].tokens[t].owner) == pid;
	}
	for (int k = 0; k < ng; k++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "generation", gen[k]);
		cJSON_AddNumberToObject(o, "children", kids[k]);
		cJSON_AddNumberToObject(o, "busy", busy[k]);
		cJSON_AddNumberToObject(o, "exiting", exiting[k]);
		cJSON_AddNumberToObject(o, "tokens", tokens[k]);
		if (region)
			cJSON_AddStringToObject(o, "region", region);
		cJSON_AddItemToArray(gens, o);
	}
}

/* The binary upgrade: pending or not, the outcomes so far; and each generation with children
 * alive (two during an upgrade): its children by state and the budget tokens they hold. A new
 * master of another layout has a region of its own (status_file.next until it is ready): the
 * tokens given to it, and its generation when this build can read that region. */
static void status_upgrade(cJSON *root, const struct np_shm *shm, const struct np_conf *conf)
{
	const struct np_shm_header *h = shm->hdr;
	cJSON *u = cJSON_AddObjectToObject(root, "upgrade");
	int32_t pending = atomic_load(&h->upgrade_pid);
	int given = budget_given(shm, NP_EP_PRIMARY) + budget_given(shm, NP_EP_REPLICA);
	cJSON_AddBoolToObject(u, "pending", pending != 0);
	if (pending) {
		cJSON_AddNumberToObject(u, "new_master_pid", pending);
		cJSON_AddNumberToObject(u, "for_s", (double)(util_wall_us() - atomic_load(&h->upgrade_started_us)) / 1e6);
	}
	cJSON_AddNumberToObject(u, "given_tokens", given);
	cJSON_AddNumberToObject(u, "ok_total", (double)atomic_load(&h->upgrades_ok));
	cJSON_AddNumberToObject(u, "rolled_back_total", (double)atomic_load(&h->upgrades_rolled_back));
	char last[sizeof(h->upgrade_last)];
	memcpy(last, h->upgrade_last, sizeof(last));
	last[sizeof(last) - 1] = '\0';
	cJSON_AddStringToObject(u, "last", last);
	cJSON *gens = cJSON_AddArrayToObject(root, "generations");
	status_generations(gens, shm, NULL);
	if (given > 0 && conf && conf->status_file[0]) {
		char path[4096];
		struct np_shm next;
		if (shm_next_path(path, sizeof(path), conf->status_file) == 0 && shm_attach_readonly(&next, path) == 0) {
			status_generations(gens, &next, "its own");
			shm_detach(&next);
		}
	}
}

/* The master's and supervisor's pids, the generation, uptime and the respawns. */
static void status_header(cJSON *root, const struct np_shm *shm, const struct np_conf *conf)
{
	const struct np_shm_header *h = shm->hdr;
	cJSON_AddNumberToObject(root, "master_pid", atomic_load(&h->master_pid));
	cJSON_AddNumberToObject(root, "supervisor_pid", atomic_load(&h->supervisor_pid));
	cJSON_AddNumberToObject(root, "generation", atomic_load(&h->generation));
	/* wall clock of the supervisor's last tick (50 ms): a stuck supervisor shows here */
	cJSON_AddNumberToObject(root, "supervisor_updated_us", (double)atomic_load(&h->sup_updated_us));
	cJSON_AddNumberToObject(root, "uptime_s", (double)(util_wall_us() - atomic_load(&h->started_us)) / 1e6);
	cJSON_AddNumberToObject(root, "configured_workers", atomic_load(&h->configured_workers));
	cJSON_AddNumberToObject(root, "respawns_total", (double)atomic_load(&h->respawns_total));
	cJSON_AddNumberToObject(root, "crashes_total", (double)atomic_load(&h->crashes_total));
	cJSON *backoff = status_backoff(shm);
	cJSON_AddBoolToObject(root, "respawn_backoff", backoff != NULL);
	cJSON_Delete(backoff);
	cJSON_AddItemToObject(root, "respawn", status_respawn(shm));
	status_upgrade(root, shm, conf);
}

/* One worker's slot i as ?full shows it (state st, now: the wall clock). */
static cJSON *status_worker(const struct np_slot *s, int i, uint32_t st, int64_t now)
{
	cJSON *w = cJSON_CreateObject();
	cJSON_AddNumberToObject(w, "slot", i);
	cJSON_AddNumberToObject(w, "pid", atomic_load(&s->pid));
	cJSON_AddNumberToObject(w, "generation", atomic_load(&s->generation));
	cJSON_AddStringToObject(w, "state", shm_state_name(st));
	cJSON_AddNumberToObject(w, "requests", (double)atomic_load(&s->requests));
	int64_t rs = atomic_load(&s->req_start_us);
	cJSON_AddNumberToObject(w, "busy_ms", shm_state_busy(st) && rs ? (double)(now - rs) / 1000.0 : 0);
	cJSON_AddNumberToObject(w, "peers_refused", (double)atomic_load(&s->peers_refused));
	cJSON_AddNumberToObject(w, "read_timeouts", (double)atomic_load(&s->read_timeouts));
	cJSON_AddNumberToObject(w, "bad_requests", (double)atomic_load(&s->bad_requests));
	char route[sizeof(s->route)];
	memcpy(route, s->route, sizeof(route));
	route[sizeof(route) - 1] = '\0';
	cJSON_AddStringToObject(w, "route", route);
	cJSON_AddBoolToObject(w, "waiting", atomic_load(&s->waiting) != 0);
	return w;
}

/* The slots' totals (requests, connects, 503s, waiting, workers by state) into root; with full,
 * the array of the workers (the caller adds it last), else NULL. */
static cJSON *status_slots(cJSON *root, const struct np_shm *shm, bool full, int64_t now)
{
	uint64_t connects = 0, shed = 0, requests = 0;
	int waiting = 0, by_state[8] = { 0 };
	cJSON *workers = full ? cJSON_CreateArray() : NULL;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		const struct np_slot *s = &shm->slots[i];
		uint32_t kind = atomic_load(&s->kind);
		connects += atomic_load(&s->connects);
		if (kind != NP_KIND_WORKER)
			continue;
		shed += atomic_load(&s->shed_503);
		requests += atomic_load(&s->requests);
		waiting += (int)atomic_load(&s->waiting);
		uint32_t st = atomic_load(&s->state);
		by_state[st < 8 ? st : 0]++;
		if (workers)
			cJSON_AddItemToArray(workers, status_worker(s, i, st, now));
	}
	cJSON_AddNumberToObject(root, "requests_total", (double)requests);
	cJSON_AddNumberToObject(root, "connects_total", (double)connects);
	cJSON_AddNumberToObject(root, "shed_503_total", (double)shed);
	cJSON_AddNumberToObject(root, "waiting", waiting);
	cJSON *ws = cJSON_AddObjectToObject(root, "workers_by_state");
	static const uint32_t states[] = { NP_SLOT_STARTING, NP_SLOT_IDLE, NP_SLOT_READING, NP_SLOT_BUSY, NP_SLOT_EXITING };
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		cJSON_AddNumberToObject(ws, shm_state_name(states[i]), by_state[states[i]]);
	return workers;
}

/* The metrics rows summed: counters, errors by code, totals per route, the newest warm-up ping. */
struct status_sums {
	uint64_t counters[NP_MC_COUNT], errors[NP_MERRORS], totals[NP_MROUTES];
	int64_t ping_us;
	uint32_t ping_ok, ping_c, ping_q;
};

static void status_sum_rows(const struct np_shm *shm, struct status_sums *t)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0, end = shm_mrows_end(shm); i < end; i++) {
		const struct np_mrow *row = &shm->mrows[i];
		if (!atomic_load(&row->used))
			continue;
		for (int c = 0; c < NP_MC_COUNT; c++)
			t->counters[c] += atomic_load(&row->counters[c]);
		for (int c = 0; c < NP_MERRORS; c++)
			t->errors[c] += atomic_load(&row->errors[c]);
		for (int r = 0; r < NP_MROUTES; r++)
			t->totals[r] += atomic_load(&row->hist[r][NP_PHASE_TOTAL].count);
		int64_t p = atomic_load(&row->last_ping_us);
		if (p > t->ping_us) {
			t->ping_us = p;
			t->ping_ok = atomic_load(&row->last_ping_ok);
			t->ping_c = atomic_load(&row->last_ping_connect_us);
			t->ping_q = atomic_load(&row->last_ping_query_us);
		}
	}
}

/* The warm-up: the policy (when conf is known), its pings and the last one. */
static void status_warmup(cJSON *root, const struct np_conf *conf, const struct status_sums *t, int64_t now)
{
	cJSON *wu = cJSON_AddObjectToObject(root, "warmup");
	if (conf) {
		static const char *const pol[] = { "always", "while-active", "never", "schedule" };
		cJSON_AddStringToObject(wu, "policy", conf->warmup_policy >= 0 && conf->warmup_policy < 4
		                                              ? pol[conf->warmup_policy] : "unknown");
		cJSON_AddNumberToObject(wu, "interval_s", conf->warmup_interval_s);
		if (conf->warmup_policy == NP_WARMUP_SCHEDULE) {
			cJSON_AddStringToObject(wu, "schedule", conf->warmup_schedule);
			cJSON_AddStringToObject(wu, "timezone", conf->warmup_timezone);
		}
	}
	cJSON_AddNumberToObject(wu, "pings_total", (double)t->counters[NP_MC_WARMUP_PINGS]);
	cJSON_AddNumberToObject(wu, "pings_failed_total", (double)t->counters[NP_MC_WARMUP_FAILED]);
	if (t->ping_us > 0) {
		cJSON *lp = cJSON_AddObjectToObject(wu, "last_ping");
		cJSON_AddNumberToObject(lp, "age_s", (double)(now - t->ping_us) / 1e6);
		cJSON_AddBoolToObject(lp, "ok", t->ping_ok != 0);
		cJSON_AddNumberToObject(lp, "connect_ms", t->ping_c / 1000.0);
		cJSON_AddNumberToObject(lp, "query_ms", t->ping_q / 1000.0);
	} else {
		cJSON_AddNullToObject(wu, "last_ping");
	}
}

cJSON *status_build(const struct np_shm *shm, const struct np_conf *conf, bool full)
{
	cJSON *root = cJSON_CreateObject();
	if (root == NULL)
		return NULL;
	int64_t now = util_wall_us();
	status_header(root, shm, conf);
	cJSON *workers = status_slots(root, shm, full, now);
	struct status_sums t;
	status_sum_rows(shm, &t);
	cJSON *cj = cJSON_AddObjectToObject(root, "counters");
	cJSON_AddNumberToObject(cj, "retries", (double)t.counters[NP_MC_RETRIES]);
	cJSON_AddNumberToObject(cj, "connects_ok", (double)t.counters[NP_MC_CONNECTS_OK]);
	cJSON_AddNumberToObject(cj, "connects_failed", (double)t.counters[NP_MC_CONNECTS_FAILED]);
	cJSON_AddNumberToObject(cj, "acquire_timeouts", (double)t.counters[NP_MC_ACQUIRE_TIMEOUTS]);
	cJSON_AddNumberToObject(cj, "shed", (double)t.counters[NP_MC_SHED]);
	cJSON_AddNumberToObject(cj, "cold_starts", (double)t.counters[NP_MC_COLD_STARTS]);
	cJSON *ej = cJSON_AddObjectToObject(root, "errors");
	for (int c = 0; c < NP_MERRORS; c++)
		if (t.errors[c])
			cJSON_AddNumberToObject(ej, metrics_errors[c], (double)t.errors[c]);
	status_warmup(root, conf, &t, now);
	cJSON *eps = cJSON_AddObjectToObject(root, "endpoints");
	cJSON_AddItemToObject(eps, "primary", status_endpoint(shm, NP_EP_PRIMARY));
	if (atomic_load(&shm->hdr->ep[NP_EP_REPLICA].configured))
		cJSON_AddItemToObject(eps, "replica", status_endpoint(shm, NP_EP_REPLICA));
	cJSON_AddItemToObject(root, "routes", status_routes(shm, t.totals));
	if (workers)
		cJSON_AddItemToObject(root, "workers", workers);
	return root;
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

void status_text(const cJSON *j, FILE *fp)
{
	fprintf(fp, "master pid %d, supervisor pid %d, generation %d, up %.0f s\n", (int)num(j, "master_pid"),
	        (int)num(j, "supervisor_pid"), (int)num(j, "generation"), num(j, "uptime_s"));
	fprintf(fp, "requests %.0f, connects %.0f, shed (503) %.0f, waiting %d, respawns %.0f\n",
	        num(j, "requests_total"), num(j, "connects_total"), num(j, "shed_503_total"), (int)num(j, "waiting"),
	        num(j, "respawns_total"));
	const cJSON *pool;
	cJSON_ArrayForEach(pool, cJSON_GetObjectItem(j, "respawn"))
	{
		if (num(pool, "backoff_ms") > 0)
			fprintf(fp, "RESPAWN BACKOFF: %s pool %d of %d alive, %d died young in a row, next start in %.1f s "
			        "(backoff %.1f s)\n", pool->string, (int)num(pool, "alive"), (int)num(pool, "configured"),
			        (int)num(pool, "young_deaths_in_a_row"), num(pool, "next_start_in_ms") / 1000.0,
			        num(pool, "backoff_ms") / 1000.0);
	}
	const cJSON *up = cJSON_GetObjectItem(j, "upgrade"), *g;
	if (cJSON_IsTrue(cJSON_GetObjectItem(up, "pending")))
		fprintf(fp, "UPGRADE under way: new master pid %d for %.1f s\n", (int)num(up, "new_master_pid"), num(up, "for_s"));
	if (num(up, "given_tokens") > 0)
		fprintf(fp, "the new master has a region of its own (another shared-memory layout): %d budget tokens given "
		        "to it\n", (int)num(up, "given_tokens"));
	if (num(up, "ok_total") + num(up, "rolled_back_total") > 0)
		fprintf(fp, "upgrades %.0f ok, %.0f rolled back; last: %s\n", num(up, "ok_total"), num(up, "rolled_back_total"),
		        str(up, "last"));
	cJSON_ArrayForEach(g, cJSON_GetObjectItem(j, "generations"))
		fprintf(fp, "generation %d: %d children (%d busy, %d exiting), %d budget tokens held%s\n",
		        (int)num(g, "generation"), (int)num(g, "children"), (int)num(g, "busy"), (int)num(g, "exiting"),
		        (int)num(g, "tokens"), str(g, "region")[0] ? " (in its region of its own)" : "");
	const cJSON *ws = cJSON_GetObjectItem(j, "workers_by_state"), *x;
	fprintf(fp, "workers");
	cJSON_ArrayForEach(x, ws)
		fprintf(fp, " %s %d", x->string, (int)x->valuedouble);
	fprintf(fp, "\n");
	const cJSON *ep;
	cJSON_ArrayForEach(ep, cJSON_GetObjectItem(j, "endpoints"))
	{
		fprintf(fp,
		        "%-8s %s%s%s  budget %d/%d in use (connected %d, connecting %d, closing %d, orphaned %d)  "
		        "breaker %s  server max_connections %d (reserved %d)\n",
		        ep->string, str(ep, "health"), str(ep, "reason")[0] ? ": " : "", str(ep, "reason"),
		        (int)num(ep, "in_use"), (int)num(ep, "limit"), (int)num(ep, "connected"), (int)num(ep, "connecting"),
		        (int)num(ep, "closing"), (int)num(ep, "orphaned"), str(ep, "breaker"),
		        (int)num(ep, "server_max_connections"), (int)num(ep, "server_reserved_connections"));
	}
	const cJSON *wu = cJSON_GetObjectItem(j, "warmup"), *lp = cJSON_GetObjectItem(wu, "last_ping");
	fprintf(fp, "warm-up %s every %d s, %.0f pings", str(wu, "policy")[0] ? str(wu, "policy") : "-",
	        (int)num(wu, "interval_s"), num(wu, "pings_total"));
	if (cJSON_IsObject(lp))
		fprintf(fp, ", last %.0f s ago (%s, query %.1f ms)", num(lp, "age_s"),
		        cJSON_IsTrue(cJSON_GetObjectItem(lp, "ok")) ? "ok" : "failed", num(lp, "query_ms"));
	fprintf(fp, "\n");
	const cJSON *errs = cJSON_GetObjectItem(j, "errors");
	if (cJSON_GetArraySize(errs) > 0) {
		fprintf(fp, "errors");
		cJSON_ArrayForEach(x, errs)
			fprintf(fp, " %s %.0f", x->string, x->valuedouble);
		fprintf(fp, "\n");
	}
	const cJSON *routes = cJSON_GetObjectItem(j, "routes");
	if (cJSON_GetArraySize(routes) > 0) {
		fprintf(fp, "%-18s %10s %8s %9s %9s %9s %8s %9s\n", "route", "requests", "1m req", "1m p50ms", "1m p95ms",
		        "1m p99ms", "5m req", "5m p99ms");
		cJSON_ArrayForEach(x, routes)
		{
			const cJSON *m1 = cJSON_GetObjectItem(x, "1m"), *m5 = cJSON_GetObjectItem(x, "5m");
			fprintf(fp, "%-18s %10.0f %8.0f %9.2f %9.2f %9.2f %8.0f %9.2f\n", x->string, num(x, "requests_total"),
			        num(m1, "requests"), num(m1, "p50_ms"), num(m1, "p95_ms"), num(m1, "p99_ms"), num(m5, "requests"),
			        num(m5, "p99_ms"));
		}
	}
	const cJSON *workers = cJSON_GetObjectItem(j, "workers"), *w;
	if (!workers)
		return;
	fprintf(fp, "%5s %8s %4s %-9s %10s %9s  %s\n", "slot", "pid", "gen", "state", "requests", "busy_ms", "route");
	cJSON_ArrayForEach(w, workers)
	{
		fprintf(fp, "%5d %8d %4d %-9s %10.0f %9.1f  %s\n", (int)num(w, "slot"), (int)num(w, "pid"),
		        (int)num(w, "generation"), str(w, "state"), num(w, "requests"), num(w, "busy_ms"), str(w, "route"));
	}
}
