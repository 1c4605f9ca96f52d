/* SPDX-License-Identifier: PostgreSQL */
/* metrics.h - request metrics in shared memory: one row per slot, written only by the process
 * that holds the slot, never reset while the daemon lives; readers sum the rows. */
#ifndef NP_METRICS_H
#define NP_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hist.h"

/* Phases of a request, each a histogram per route. */
enum np_phase {
	NP_PHASE_TOTAL = 0,   /* the whole request, read to answer sent */
	NP_PHASE_ACQUIRE,     /* waiting for a connection token */
	NP_PHASE_CONNECT,     /* opening a server connection */
	NP_PHASE_QUERY,       /* statements, round trip included */
	NP_PHASE_UPSTREAM,    /* an upstream call (the LLM of the ask route) */
	NP_PHASE_COUNT
};

/* Route ids: 0 no route (unreadable request, 404, 405), 1 the pool's own work outside requests
 * (spares connecting, warm-up pings, probes), 2 the ask pool's internal transactions served by
 * the main pool ("ask.tx": an ask counts once, under "ask", with what its client was told), then
 * the route table's entries in order (metrics_route_id()). A table longer than that counts its
 * tail as 0. */
#define NP_MROUTE_NONE 0
#define NP_MROUTE_POOL 1
#define NP_MROUTE_ASK_TX 2
#define NP_MROUTE_FIRST 3
#define NP_MROUTES 24

/* The bucket ladder of the exposition (microseconds; +Inf is the count): 100 us .. 30 s. */
#define NP_LADDER 17
extern const uint64_t metrics_ladder_us[NP_LADDER];
/* The ladder of neonpool_llm_tokens (tokens per answer), as many bounds as metrics_ladder_us. */
extern const uint64_t metrics_tokens_le[NP_LADDER];

/* Status codes counted each on its own (others: the last entry, code "other"). */
#define NP_MCODES 28
extern const int metrics_codes[NP_MCODES];
/* Error codes of the envelope (doc/openapi.yaml ErrorCode), then "other". */
#define NP_MERRORS 29
extern const char *const metrics_errors[NP_MERRORS];

/* Counters that are not per route. */
enum np_mcounter {
	NP_MC_RETRIES = 0,          /* statements run again (fresh connection, or the primary) */
	NP_MC_CONNECTS_OK,          /* server connections opened */
	NP_MC_CONNECTS_FAILED,
	NP_MC_ACQUIRE_TIMEOUTS,     /* no token within acquire_timeout_ms */
	NP_MC_SHED,                 /* answered 503 db_busy / db_unavailable */
	NP_MC_WARMUP_PINGS,         /* warm-up pings sent */
	NP_MC_WARMUP_FAILED,
	NP_MC_COLD_STARTS,          /* a slow first connect after the database idled */
	NP_MC_COUNT
};

struct np_ladder {
	_Atomic uint64_t le[NP_LADDER + 1]; /* samples <= metrics_ladder_us[i] and > the one before
	                                     * (not cumulative); [NP_LADDER]: above the top */
	_Atomic uint64_t count;             /* written last; readers take the sum of le[] as the count */
	_Atomic uint64_t sum_us;
};

/* One slot's row. The slot's holder is its only writer; a new child in the slot continues the
 * row its predecessor left, so a sum over rows never goes backwards while the daemon lives. */
struct np_mrow {
	_Atomic uint32_t used;                             /* 1 once anything was recorded */
	_Atomic uint64_t counters[NP_MC_COUNT];
	_Atomic uint64_t errors[NP_MERRORS];
	_Atomic int64_t last_ping_us;                      /* wall clock of this row's last warm-up ping */
	_Atomic uint32_t last_ping_ok;
	_Atomic uint32_t last_ping_connect_us, last_ping_query_us;
	struct np_ladder http[NP_MROUTES][NP_MCODES];      /* request duration by route and status */
	struct np_ladder phase[NP_MROUTES][NP_PHASE_COUNT];
	struct hist hist[NP_MROUTES][NP_PHASE_COUNT];
	/* issue 20: the LLM's time to first token (on the us ladder) and tokens per answer (on
	 * metrics_tokens_le: sum_us holds the tokens) */
	struct np_ladder llm_first_token;
	struct np_ladder llm_tokens;
} __attribute__((aligned(4096)));

const char *metrics_phase_name(enum np_phase p);
int metrics_code_index(int status);
int metrics_error_index(const char *code);
/* The ladder bucket of a value: the first bound >= us, NP_LADDER when above all. */
int metrics_ladder_index(uint64_t us);

/* ---- the writer (the process that holds the slot) ------------------------------------------ */

/* Bind this process to its row (after fork). */
void metrics_bind(struct np_mrow *row);
/* Map a route table index to a route id. */
int metrics_route_id(int table_index);
/* A request begins; its phases are accounted to route id 0 until metrics_set_route(). */
void metrics_begin(int64_t now_us);
void metrics_set_route(int route_id);
/* A phase took us microseconds: recorded in the current route's histogram and summed into the
 * current request's breakdown. Outside a request (after metrics_end), under NP_MROUTE_POOL. */
void metrics_phase(enum np_phase p, int64_t us);
void metrics_phase_route(int route_id, enum np_phase p, int64_t us);
void metrics_count(enum np_mcounter c);
/* The front server says the request waited us in its queue before we accepted it
 * (NEONPOOL_QUEUE_START): counted in the request's total, as the client saw it. */
void metrics_queued(int64_t us);
/* The request ended with status (error_code: the envelope's, or "" / NULL). Returns its total. */
int64_t metrics_end(int status, const char *error_code, int64_t now_us);
/* The current request's phase sums (after metrics_end: the last request's). */
int64_t metrics_breakdown(enum np_phase p);
/* The last request's queue wait before we accepted it (0 when the front server did not say). */
int64_t metrics_queue_us(void);
/* A warm-up ping: connect_us (0 when it used an open connection) and query_us. */
void metrics_ping(bool ok, int64_t connect_us, int64_t query_us, int64_t now_wall_us);

/* An answer of the LLM: its time to first token (< 0: none came) and its tokens (< 0: unknown). */
void metrics_llm(int64_t first_token_us, int tokens);

/* ---- readers -------------------------------------------------------------------------------- */

/* dst += src for a row (dst is the reader's own memory, one writer). */
void metrics_row_sum(struct np_mrow *dst, const struct np_mrow *src);

#endif
