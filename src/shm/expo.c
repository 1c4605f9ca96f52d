/* SPDX-License-Identifier: PostgreSQL */
/* expo.c - the Prometheus text exposition (format 0.0.4): names neonpool_..., base units,
 * counters _total, histograms on the ladder of metrics.h (100 us .. 30 s). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

#include "budget.h"
#include "expo.h"
#include "metrics.h"
#include "version.h"

static int expo_libpq;

void expo_set_libpq(int version)
{
	expo_libpq = version;
}

/* A label value, escaped as the format says (backslash, double quote, newline). */
static void expo_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void expo_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram series on the ladder bounds (values divided by scale: 1e6 for microseconds in
 * seconds): cumulative buckets, +Inf, _sum, _count; labels "k=\"v\"," or "". */
static void expo_hist_on(FILE *f, const char *name, const char *labels, const struct np_ladder *l,
                         const uint64_t *bounds, double scale)
{
	uint64_t cum = 0;
	for (int i = 0; i < NP_LADDER; i++) {
		cum += atomic_load(&l->le[i]);
		fprintf(f, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, (double)bounds[i] / scale,
		        (unsigned long long)cum);
	}
	cum += atomic_load(&l->le[NP_LADDER]);
	fprintf(f, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
	size_t n = strlen(labels);
	/* _sum and _count carry the same labels without the trailing comma */
	fprintf(f, "%s_sum%s%.*s%s %.6f\n", name, n ? "{" : "", n ? (int)n - 1 : 0, labels, n ? "}" : "",
	        (double)atomic_load(&l->sum_us) / scale);
	fprintf(f, "%s_count%s%.*s%s %llu\n", name, n ? "{" : "", n ? (int)n - 1 : 0, labels, n ? "}" : "",
	        (unsigned long long)cum);
}

static void expo_hist(FILE *f, const char *name, const char *labels, const struct np_ladder *l)
{
	expo_hist_on(f, name, labels, l, metrics_ladder_us, 1e6);
}

static void ladder_add(struct np_ladder *d, const struct np_ladder *s)
{
	for (int i = 0; i <= NP_LADDER; i++)
		atomic_store(&d->le[i], atomic_load(&d->le[i]) + atomic_load(&s->le[i]));
	atomic_store(&d->sum_us, atomic_load(&d->sum_us) + atomic_load(&s->sum_us));
	atomic_store(&d->count, atomic_load(&d->count) + atomic_load(&s->count));
}

static const char *expo_route(const struct np_shm *shm, int r, char *buf, size_t n)
{
	snprintf(buf, n, "%.*s", (int)sizeof(shm->hdr->route_names[0]) - 1, shm->hdr->route_names[r]);
	if (!buf[0])
		snprintf(buf, n, "route%d", r);
	return buf;
}

/* The requests: their durations by route and code, their count, the error answers by code. */
static void expo_http(FILE *f, const struct np_shm *shm, const struct np_mrow *m)
{
	char route[64], labels[256];

	expo_head(f, "neonpool_http_request_duration_seconds", "histogram",
	          "Time from the front server handing the request over (NEONPOOL_QUEUE_START, its queue included; else our accept) to the answer sent, by route and status code.");
	for (int r = 0; r < NP_MROUTES; r++)
		for (int c = 0; c < NP_MCODES; c++) {
			if (atomic_load(&m->http[r][c].count) == 0)
				continue;
			expo_route(shm, r, route, sizeof(route));
			char code[16];
			if (metrics_codes[c])
				snprintf(code, sizeof(code), "%d", metrics_codes[c]);
			else
				snprintf(code, sizeof(code), "other");
			FILE *lf = fmemopen(labels, sizeof(labels), "w");
			if (!lf)
				continue;
			fputs("route=\"", lf);
			expo_label(lf, route);
			fprintf(lf, "\",code=\"%s\",", code);
			fclose(lf);
			expo_hist(f, "neonpool_http_request_duration_seconds", labels, &m->http[r][c]);
		}

	expo_head(f, "neonpool_http_requests_total", "counter", "Requests answered, by route and status code.");
	for (int r = 0; r < NP_MROUTES; r++)
		for (int c = 0; c < NP_MCODES; c++) {
			uint64_t n = 0;
			for (int i = 0; i <= NP_LADDER; i++)
				n += atomic_load(&m->http[r][c].le[i]);
			if (n == 0)
				continue;
			fputs("neonpool_http_requests_total{route=\"", f);
			expo_label(f, expo_route(shm, r, route, sizeof(route)));
			if (metrics_codes[c])
				fprintf(f, "\",code=\"%d\"} %llu\n", metrics_codes[c], (unsigned long long)n);
			else
				fprintf(f, "\",code=\"other\"} %llu\n", (unsigned long long)n);
		}

	expo_head(f, "neonpool_http_errors_total", "counter", "Error answers, by the error envelope's code (label error).");
	for (int e = 0; e < NP_MERRORS; e++)
		fprintf(f, "neonpool_http_errors_total{error=\"%s\"} %llu\n", metrics_errors[e],
		        (unsigned long long)atomic_load(&m->errors[e]));
}

/* The phases of requests by route, and the database's figures: acquire waits over every route,
 * connects over all, statement round trips by route. */
static void expo_phases(FILE *f, const struct np_shm *shm, const struct np_mrow *m)
{
	char route[64], labels[256], lab[160];

	expo_head(f, "neonpool_request_phase_seconds", "histogram",
	          "Time of each phase of requests (acquire, connect, query, upstream), by route; route pool is the "
	          "pool's own work outside requests (spares connecting, warm-up pings, probes).");
	for (int r = 0; r < NP_MROUTES; r++)
		for (int p = NP_PHASE_ACQUIRE; p < NP_PHASE_COUNT; p++) {
			if (atomic_load(&m->phase[r][p].count) == 0)
				continue;
			snprintf(lab, sizeof(lab), "%s", expo_route(shm, r, route, sizeof(route)));
			snprintf(labels, sizeof(labels), "route=\"%s\",phase=\"%s\",", lab, metrics_phase_name((enum np_phase)p));
			expo_hist(f, "neonpool_request_phase_seconds", labels, &m->phase[r][p]);
		}

	/* the database's figures: acquire over every route, query by route, connects over all */
	struct np_ladder acq, con;
	memset(&acq, 0, sizeof(acq));
	memset(&con, 0, sizeof(con));
	for (int r = 0; r < NP_MROUTES; r++) {
		if (r != NP_MROUTE_POOL)
			ladder_add(&acq, &m->phase[r][NP_PHASE_ACQUIRE]);
		ladder_add(&con, &m->phase[r][NP_PHASE_CONNECT]);
	}
	expo_head(f, "neonpool_db_acquire_wait_seconds", "histogram",
	          "Time a request waited for a database connection (0 when its worker held one).");
	expo_hist(f, "neonpool_db_acquire_wait_seconds", "", &acq);
	expo_head(f, "neonpool_db_connect_duration_seconds", "histogram", "Time to open a server connection.");
	expo_hist(f, "neonpool_db_connect_duration_seconds", "", &con);
	expo_head(f, "neonpool_db_query_duration_seconds", "histogram", "Statement round trips, by route.");
	for (int r = 0; r < NP_MROUTES; r++) {
		if (atomic_load(&m->phase[r][NP_PHASE_QUERY].count) == 0)
			continue;
		snprintf(labels, sizeof(labels), "route=\"%s\",", expo_route(shm, r, route, sizeof(route)));
		expo_hist(f, "neonpool_db_query_duration_seconds", labels, &m->phase[r][NP_PHASE_QUERY]);
	}
}

static const char *const expo_epname[NP_EP_COUNT] = { "primary", "replica" };

/* The kind label of the worker gauges: the pool a child serves. */
static const char *expo_kind(uint32_t kind)
{
	return kind == NP_KIND_ASK ? "ask" : kind == NP_KIND_SUPERVISOR ? "control" : "main";
}

/* The budget's gauges by endpoint, from the tokens and the header: connections by state, the
 * configured, effective and server limits. */
static void expo_budget(FILE *f, const struct np_shm *shm)
{
	const struct np_shm_header *h = shm->hdr;
	const char *const *epname = expo_epname;

	expo_head(f, "neonpool_db_connections", "gauge", "Server connections under the budget, by endpoint and state.");
	for (int ep = 0; ep < NP_EP_COUNT; ep++) {
		const struct np_endpoint_shm *e = &h->ep[ep];
		if (atomic_load(&e->configured) == 0)
			continue;
		int by[5] = { 0 };
		for (int i = 0; i < NP_MAX_BUDGET; i++) {
			uint32_t ph = atomic_load(&e->tokens[i].phase);
			if (atomic_load(&e->tokens[i].owner) != 0 && ph < 5)
				by[ph]++;
		}
		for (int ph = NP_TOK_CONNECTING; ph <= NP_TOK_ORPHANED; ph++)
			fprintf(f, "neonpool_db_connections{endpoint=\"%s\",state=\"%s\"} %d\n", epname[ep],
			        budget_phase_name((uint32_t)ph), by[ph]);
	}
	expo_head(f, "neonpool_db_connections_max", "gauge",
	          "The connection budget: configured, effective (after budget_clamp) and the server's "
	          "max_connections minus superuser_reserved_connections (0 until known).");
	for (int ep = 0; ep < NP_EP_COUNT; ep++) {
		const struct np_endpoint_shm *e = &h->ep[ep];
		if (atomic_load(&e->configured) == 0)
			continue;
		int smax = atomic_load(&e->server_max_conn), sres = atomic_load(&e->server_reserved);
		fprintf(f, "neonpool_db_connections_max{endpoint=\"%s\",source=\"configured\"} %u\n", epname[ep],
		        atomic_load(&e->configured));
		fprintf(f, "neonpool_db_connections_max{endpoint=\"%s\",source=\"effective\"} %d\n", epname[ep],
		        budget_limit(shm, ep));
		fprintf(f, "neonpool_db_connections_max{endpoint=\"%s\",source=\"server\"} %d\n", epname[ep],
		        smax > 0 ? smax - sres : 0);
	}
}

/* The workers and the endpoints' health: requests waiting, workers by state, the breaker. */
static void expo_workers(FILE *f, const struct np_shm *shm)
{
	const struct np_shm_header *h = shm->hdr;
	const char *const *epname = expo_epname;
	int waiting = 0, wst[NP_KIND_COUNT][8] = { { 0 } };
	uint64_t refused = 0, read_to = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		const struct np_slot *s = &shm->slots[i];
		/* never reset (a successor continues the slot's counts), whatever held the slot */
		refused += atomic_load(&s->peers_refused);
		read_to += atomic_load(&s->read_timeouts);
		uint32_t kind = atomic_load(&s->kind);
		if (kind == NP_KIND_NONE || kind >= NP_KIND_COUNT)
			continue;
		if (kind == NP_KIND_WORKER)
			waiting += (int)atomic_load(&s->waiting);
		uint32_t st = atomic_load(&s->state);
		wst[kind][st < 8 ? st : 0]++;
	}
	expo_head(f, "neonpool_db_waiting", "gauge", "Requests waiting inside workers for a database connection.");
	fprintf(f, "neonpool_db_waiting %d\n", waiting);
	expo_head(f, "neonpool_workers", "gauge",
	          "Child processes by kind (main: the main pool's workers, ask: the ask pool's, control: the supervisor) and state.");
	static const uint32_t states[] = { NP_SLOT_STARTING, NP_SLOT_IDLE, NP_SLOT_READING, NP_SLOT_BUSY, NP_SLOT_EXITING };
	for (uint32_t kind = NP_KIND_WORKER; kind < NP_KIND_COUNT; kind++)
		for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
			fprintf(f, "neonpool_workers{kind=\"%s\",state=\"%s\"} %d\n", expo_kind(kind), shm_state_name(states[i]),
			        wst[kind][states[i]]);
	expo_head(f, "neonpool_workers_configured", "gauge", "The configured number of children, by kind.");
	for (uint32_t kind = NP_KIND_WORKER; kind < NP_KIND_COUNT; kind++)
		fprintf(f, "neonpool_workers_configured{kind=\"%s\"} %d\n", expo_kind(kind),
		        shm_pool_configured(shm, (enum np_slot_kind)kind));
	expo_head(f, "neonpool_peers_refused_total", "counter",
	          "FastCGI connections closed unread: the peer is not in listen_allowed_clients.");
	fprintf(f, "neonpool_peers_refused_total %llu\n", (unsigned long long)refused);
	expo_head(f, "neonpool_request_read_timeouts_total", "counter",
	          "Connections closed because their request was not read within request_read_timeout_ms.");
	fprintf(f, "neonpool_request_read_timeouts_total %llu\n", (unsigned long long)read_to);
	expo_head(f, "neonpool_db_up", "gauge", "1 when the endpoint is up (ready), else 0.");
	for (int ep = 0; ep < NP_EP_COUNT; ep++)
		if (atomic_load(&h->ep[ep].configured))
			fprintf(f, "neonpool_db_up{endpoint=\"%s\"} %d\n", epname[ep],
			        atomic_load(&h->ep[ep].health) == NP_HEALTH_UP);
	expo_head(f, "neonpool_breaker_state", "gauge", "The circuit breaker: 0 closed, 1 open.");
	for (int ep = 0; ep < NP_EP_COUNT; ep++)
		if (atomic_load(&h->ep[ep].configured))
			fprintf(f, "neonpool_breaker_state{endpoint=\"%s\"} %u\n", epname[ep], atomic_load(&h->ep[ep].breaker));
	expo_head(f, "neonpool_breaker_opened_total", "counter", "Times the circuit breaker opened.");
	for (int ep = 0; ep < NP_EP_COUNT; ep++)
		if (atomic_load(&h->ep[ep].configured))
			fprintf(f, "neonpool_breaker_opened_total{endpoint=\"%s\"} %llu\n", epname[ep],
			        (unsigned long long)atomic_load(&h->ep[ep].breaker_opened_total));
}

/* The counters of the rows, then the pools' respawns, deaths and children alive, and the start. */
static void expo_counters(FILE *f, const struct np_shm *shm, const struct np_mrow *m)
{
	const struct np_shm_header *h = shm->hdr;

	/* counters of the rows */
	const struct {
		const char *name, *labels, *help;
		enum np_mcounter c;
	} cs[] = {
		{ "neonpool_db_acquire_timeouts_total", "", "Requests that got no database connection within acquire_timeout_ms.", NP_MC_ACQUIRE_TIMEOUTS },
		{ "neonpool_shed_total", "", "Requests answered 503 db_busy or db_unavailable.", NP_MC_SHED },
		{ "neonpool_db_retries_total", "", "Statements run again on a fresh connection or on the primary.", NP_MC_RETRIES },
		{ "neonpool_db_connects_total", "outcome=\"ok\"", "Server connection attempts, by outcome.", NP_MC_CONNECTS_OK },
		{ "neonpool_db_connects_total", "outcome=\"failed\"", NULL, NP_MC_CONNECTS_FAILED },
		{ "neonpool_warmup_pings_total", "outcome=\"ok\"", "Warm-up pings (SELECT 1) sent to keep the database awake, by outcome.", NP_MC_WARMUP_PINGS },
		{ "neonpool_warmup_pings_total", "outcome=\"failed\"", NULL, NP_MC_WARMUP_FAILED },
		{ "neonpool_db_cold_starts_total", "", "Connects slower than cold_start_ms while the pool had no connection open: the database was resuming.", NP_MC_COLD_STARTS },
	};
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		if (cs[i].help)
			expo_head(f, cs[i].name, "counter", cs[i].help);
		fprintf(f, "%s%s%s%s %llu\n", cs[i].name, cs[i].labels[0] ? "{" : "", cs[i].labels,
		        cs[i].labels[0] ? "}" : "", (unsigned long long)atomic_load(&m->counters[cs[i].c]));
	}
	expo_head(f, "neonpool_worker_respawns_total", "counter", "Children the master started again after they died.");
	fprintf(f, "neonpool_worker_respawns_total %llu\n", (unsigned long long)atomic_load(&h->respawns_total));
	expo_head(f, "neonpool_worker_crashes_total", "counter", "Children that died without exiting cleanly.");
	fprintf(f, "neonpool_worker_crashes_total %llu\n", (unsigned long long)atomic_load(&h->crashes_total));
	expo_head(f, "neonpool_upgrades_total", "counter", "Binary upgrades (SIGUSR2), by result: the new master took over, or it was rolled back.");
	fprintf(f, "neonpool_upgrades_total{result=\"ok\"} %llu\n", (unsigned long long)atomic_load(&h->upgrades_ok));
	fprintf(f, "neonpool_upgrades_total{result=\"rolled_back\"} %llu\n", (unsigned long long)atomic_load(&h->upgrades_rolled_back));
	expo_head(f, "neonpool_respawn_backoff_seconds", "gauge",
	          "How long a pool's replacements wait after a death: 0 at once; more after children died young in a row.");
	for (uint32_t kind = 1; kind < NP_KIND_COUNT; kind++)
		if (shm_pool_configured(shm, (enum np_slot_kind)kind) > 0)
			fprintf(f, "neonpool_respawn_backoff_seconds{pool=\"%s\"} %.3f\n", shm_kind_name(kind),
			        atomic_load(&h->respawn[kind].delay_ms) / 1000.0);
	expo_head(f, "neonpool_worker_deaths_total", "counter", "Children that died without exiting cleanly, by pool.");
	for (uint32_t kind = 1; kind < NP_KIND_COUNT; kind++)
		if (shm_pool_configured(shm, (enum np_slot_kind)kind) > 0)
			fprintf(f, "neonpool_worker_deaths_total{pool=\"%s\"} %llu\n", shm_kind_name(kind),
			        (unsigned long long)atomic_load(&h->respawn[kind].deaths_total));
	expo_head(f, "neonpool_workers_alive", "gauge", "Children of each pool alive now.");
	for (uint32_t kind = 1; kind < NP_KIND_COUNT; kind++)
		if (shm_pool_configured(shm, (enum np_slot_kind)kind) > 0)
			fprintf(f, "neonpool_workers_alive{pool=\"%s\"} %d\n", shm_kind_name(kind),
			        shm_pool_alive(shm, (enum np_slot_kind)kind));
	expo_head(f, "neonpool_llm_first_token_seconds", "histogram",
	          "Time from sending an ask to the LLM to its first token, for the answers that got one.");
	expo_hist(f, "neonpool_llm_first_token_seconds", "", &m->llm_first_token);
	expo_head(f, "neonpool_llm_tokens", "histogram", "Tokens (stream deltas) of each complete LLM answer.");
	expo_hist_on(f, "neonpool_llm_tokens", "", &m->llm_tokens, metrics_tokens_le, 1);
	expo_head(f, "neonpool_build_info", "gauge", "Always 1: the version of neonpoold and of the libpq it runs with.");
	fprintf(f, "neonpool_build_info{version=\"");
	expo_label(f, NP_VERSION);
	fprintf(f, "\",libpq=\"%d\",shm_layout=\"%d\"} 1\n", expo_libpq, NP_SHM_LAYOUT);
	expo_head(f, "neonpool_start_time_seconds", "gauge", "When the daemon started (Unix time): counters reset only then.");
	fprintf(f, "neonpool_start_time_seconds %.3f\n", (double)atomic_load(&h->started_us) / 1e6);
}

/* The whole exposition, in the order a scrape has always seen it. */
static void expo_write(FILE *f, const struct np_shm *shm, const struct np_mrow *m)
{
	expo_http(f, shm, m);
	expo_phases(f, shm, m);
	expo_budget(f, shm);
	expo_workers(f, shm);
	expo_counters(f, shm, m);
}

char *expo_metrics(const struct np_shm *shm, size_t *len)
{
	/* large but untouched where nothing was recorded; page-aligned as the type asks (calloc
	 * gives 16 bytes: UBSan's misaligned member access in test_metrics) */
	struct np_mrow *sum = mmap(NULL, sizeof(*sum), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sum == MAP_FAILED)
		return NULL;
	for (int i = 0, end = shm_mrows_end(shm); i < end; i++)
		metrics_row_sum(sum, &shm->mrows[i]);
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (f == NULL) {
		munmap(sum, sizeof(*sum));
		return NULL;
	}
	expo_write(f, shm, sum);
	munmap(sum, sizeof(*sum));
	if (fclose(f) != 0 || buf == NULL) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}
