/* SPDX-License-Identifier: PostgreSQL */
/* metrics.c - request metrics in shared memory: the writer's side (one row per slot) and the
 * row sum readers use. */
#include <string.h>

#include "metrics.h"

#define RLX memory_order_relaxed

const uint64_t metrics_ladder_us[NP_LADDER] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 30000000,
};

const uint64_t metrics_tokens_le[NP_LADDER] = {
	1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 4000, 8000, 16000,
};

const int metrics_codes[NP_MCODES] = {
	200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405, 406, 408,
	409, 410, 411, 413, 414, 415, 422, 429, 431, 500, 502, 503, 504, 0 /* other */
};

const char *const metrics_errors[NP_MERRORS] = {
	"bad_request", "not_found", "method_not_allowed", "request_timeout", "payload_too_large",
	"uri_too_long", "request_header_fields_too_large", "internal", "invalid_parameter", "invalid_id",
	"invalid_query", "unsupported_media_type", "invalid_body", "invalid_idempotency_key",
	"idempotency_in_flight", "idempotency_mismatch", "db_busy", "db_unavailable", "db_outcome_unknown",
	"db_timeout", "db_error", "not_ready", "forbidden", "ask_busy", "llm_timeout", "llm_unavailable",
	"llm_busy", "rate_limited", "other",
};

static struct {
	struct np_mrow *row;
	int route;
	bool in_request;
	int64_t start_us;
	int64_t queued_us;
	int64_t sum[NP_PHASE_COUNT];
} metrics_self;

const char *metrics_phase_name(enum np_phase p)
{
	static const char *const names[NP_PHASE_COUNT] = { "total", "acquire", "connect", "query", "upstream" };
	return (unsigned)p < NP_PHASE_COUNT ? names[p] : "unknown";
}

int metrics_code_index(int status)
{
	for (int i = 0; i < NP_MCODES - 1; i++)
		if (metrics_codes[i] == status)
			return i;
	return NP_MCODES - 1;
}

int metrics_error_index(const char *code)
{
	for (int i = 0; i < NP_MERRORS - 1; i++)
		if (strcmp(metrics_errors[i], code) == 0)
			return i;
	return NP_MERRORS - 1;
}

int metrics_ladder_index(uint64_t us)
{
	for (int i = 0; i < NP_LADDER; i++)
		if (us <= metrics_ladder_us[i])
			return i;
	return NP_LADDER;
}

static void bump(_Atomic uint64_t *c, uint64_t by)
{
	/* one writer: load + store */
	atomic_store_explicit(c, atomic_load_explicit(c, RLX) + by, RLX);
}

static void ladder_record(struct np_ladder *l, uint64_t us)
{
	bump(&l->le[metrics_ladder_index(us)], 1);
	bump(&l->sum_us, us);
	atomic_store_explicit(&l->count, atomic_load_explicit(&l->count, RLX) + 1, memory_order_release);
}

void metrics_bind(struct np_mrow *row)
{
	memset(&metrics_self, 0, sizeof(metrics_self));
	metrics_self.row = row;
}

int metrics_route_id(int table_index)
{
	if (table_index < 0 || table_index + NP_MROUTE_FIRST >= NP_MROUTES)
		return NP_MROUTE_NONE;
	return table_index + NP_MROUTE_FIRST;
}

void metrics_begin(int64_t now_us)
{
	metrics_self.route = NP_MROUTE_NONE;
	metrics_self.in_request = true;
	metrics_self.start_us = now_us;
	metrics_self.queued_us = 0;
	memset(metrics_self.sum, 0, sizeof(metrics_self.sum));
}

void metrics_queued(int64_t us)
{
	metrics_self.queued_us = us > 0 ? us : 0;
}

int64_t metrics_queue_us(void)
{
	return metrics_self.queued_us;
}

void metrics_set_route(int route_id)
{
	metrics_self.route = route_id >= 0 && route_id < NP_MROUTES ? route_id : NP_MROUTE_NONE;
}

void metrics_phase_route(int route_id, enum np_phase p, int64_t us)
{
	struct np_mrow *r = metrics_self.row;
	if (r == NULL || (unsigned)p >= NP_PHASE_COUNT || route_id < 0 || route_id >= NP_MROUTES)
		return;
	if (!atomic_load_explicit(&r->used, RLX))
		atomic_store(&r->used, 1);
	uint64_t v = hist_clamp(us);
	hist_record(&r->hist[route_id][p], (int64_t)v);
	ladder_record(&r->phase[route_id][p], v);
}

void metrics_phase(enum np_phase p, int64_t us)
{
	if ((unsigned)p >= NP_PHASE_COUNT)
		return;
	if (!metrics_self.in_request) {
		metrics_phase_route(NP_MROUTE_POOL, p, us);
		return;
	}
	metrics_self.sum[p] += us > 0 ? us : 0;
	metrics_phase_route(metrics_self.route, p, us);
}

void metrics_count(enum np_mcounter c)
{
	struct np_mrow *r = metrics_self.row;
	if (r == NULL || (unsigned)c >= NP_MC_COUNT)
		return;
	if (!atomic_load_explicit(&r->used, RLX))
		atomic_store(&r->used, 1);
	bump(&r->counters[c], 1);
}

int64_t metrics_end(int status, const char *error_code, int64_t now_us)
{
	int64_t total = now_us - metrics_self.start_us;
	if (total < 0)
		total = 0;
	total += metrics_self.queued_us;
	metrics_self.sum[NP_PHASE_TOTAL] = total;
	metrics_self.in_request = false;
	struct np_mrow *r = metrics_self.row;
	if (r == NULL)
		return total;
	metrics_phase_route(metrics_self.route, NP_PHASE_TOTAL, total);
	ladder_record(&r->http[metrics_self.route][metrics_code_index(status)], hist_clamp(total));
	/* error answers to clients: an internal transaction's error reaches its client as the ask's */
	if (error_code && error_code[0] && metrics_self.route != NP_MROUTE_ASK_TX)
		bump(&r->errors[metrics_error_index(error_code)], 1);
	return total;
}

void metrics_llm(int64_t first_token_us, int tokens)
{
	struct np_mrow *r = metrics_self.row;
	if (r == NULL)
		return;
	if (!atomic_load_explicit(&r->used, RLX))
		atomic_store(&r->used, 1);
	if (first_token_us >= 0)
		ladder_record(&r->llm_first_token, hist_clamp(first_token_us));
	if (tokens >= 0) {
		int i = 0;
		while (i < NP_LADDER && (uint64_t)tokens > metrics_tokens_le[i])
			i++;
		bump(&r->llm_tokens.le[i], 1);
		bump(&r->llm_tokens.sum_us, (uint64_t)tokens);
		atomic_store_explicit(&r->llm_tokens.count, atomic_load_explicit(&r->llm_tokens.count, RLX) + 1,
		                      memory_order_release);
	}
}

int64_t metrics_breakdown(enum np_phase p)
{
	return (unsigned)p < NP_PHASE_COUNT ? metrics_self.sum[p] : 0;
}

void metrics_ping(bool ok, int64_t connect_us, int64_t query_us, int64_t now_wall_us)
{
	struct np_mrow *r = metrics_self.row;
	if (r == NULL)
		return;
	metrics_count(ok ? NP_MC_WARMUP_PINGS : NP_MC_WARMUP_FAILED);
	if (connect_us > 0)
		metrics_phase_route(NP_MROUTE_POOL, NP_PHASE_CONNECT, connect_us);
	if (ok)
		metrics_phase_route(NP_MROUTE_POOL, NP_PHASE_QUERY, query_us);
	atomic_store(&r->last_ping_connect_us, (uint32_t)(connect_us > 0 && connect_us < UINT32_MAX ? connect_us : 0));
	atomic_store(&r->last_ping_query_us, (uint32_t)(query_us > 0 && query_us < UINT32_MAX ? query_us : 0));
	atomic_store(&r->last_ping_ok, ok ? 1u : 0u);
	atomic_store(&r->last_ping_us, now_wall_us);
}

static void ladder_sum(struct np_ladder *d, const struct np_ladder *s)
{
	uint64_t n = atomic_load_explicit(&s->count, memory_order_acquire);
	if (n == 0)
		return;
	/* the count is the sum of the buckets read, so that +Inf equals the buckets (a writer may be
	 * between its bucket and its count) */
	uint64_t in = 0;
	for (int i = 0; i <= NP_LADDER; i++) {
		uint64_t v = atomic_load_explicit(&s->le[i], RLX);
		in += v;
		bump(&d->le[i], v);
	}
	bump(&d->sum_us, atomic_load_explicit(&s->sum_us, RLX));
	bump(&d->count, in);
}

void metrics_row_sum(struct np_mrow *dst, const struct np_mrow *src)
{
	if (!atomic_load(&src->used))
		return;
	atomic_store(&dst->used, 1);
	for (int i = 0; i < NP_MC_COUNT; i++)
		bump(&dst->counters[i], atomic_load_explicit(&src->counters[i], RLX));
	for (int i = 0; i < NP_MERRORS; i++)
		bump(&dst->errors[i], atomic_load_explicit(&src->errors[i], RLX));
	int64_t ping = atomic_load(&src->last_ping_us);
	if (ping > atomic_load(&dst->last_ping_us)) {
		atomic_store(&dst->last_ping_us, ping);
		atomic_store(&dst->last_ping_ok, atomic_load(&src->last_ping_ok));
		atomic_store(&dst->last_ping_connect_us, atomic_load(&src->last_ping_connect_us));
		atomic_store(&dst->last_ping_query_us, atomic_load(&src->last_ping_query_us));
	}
	ladder_sum(&dst->llm_first_token, &src->llm_first_token);
	ladder_sum(&dst->llm_tokens, &src->llm_tokens);
	for (int r = 0; r < NP_MROUTES; r++) {
		for (int c = 0; c < NP_MCODES; c++)
			ladder_sum(&dst->http[r][c], &src->http[r][c]);
		for (int p = 0; p < NP_PHASE_COUNT; p++) {
			ladder_sum(&dst->phase[r][p], &src->phase[r][p]);
			hist_merge(&dst->hist[r][p], &src->hist[r][p]);
		}
	}
}
