/* SPDX-License-Identifier: PostgreSQL */
/* api_ask_sweep.c - the ask answers' leases: one worker holding a connection renews every few
 * seconds the leases of the answers this host makes, cancels those finished elsewhere, and
 * finishes 'failed' the answers of any host past their lease. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "api_ask_int.h"
#include "ask_text.h"
#include "asktx.h"
#include "db.h"
#include "digest.h"
#include "http.h"
#include "input.h"
#include "llm.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* the leases of the answers this host makes renewed: the ids not streaming any more */
static const struct np_stmt stmt_ask_renew = {
	13, "np_ask_renew", "SELECT np_ask_renew($1::bigint[], $2)", 2, 0
};
/* the answers of every session past their lease, finished failed: how many */
static const struct np_stmt stmt_ask_expire = {
	14, "np_ask_expire", "SELECT np_ask_expire(NULL, $1)", 1, 0
};

/* the answers this host streams that are not 'streaming' any more (finished on another host) */
static const struct np_stmt stmt_ask_check = {
	15, "np_ask_check",
	"SELECT m.id FROM messages m WHERE m.id = ANY ($1::bigint[]) AND m.status <> 'streaming'", 1, 0
};

/* The ids of the answers this host's slots name as a bigint[] literal in ids; false when none. */
static bool ask_host_answers(struct np_shm *shm, char *ids, size_t size)
{
	size_t len = 0;
	ids[len++] = '{';
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		int64_t a = atomic_load(&shm->slots[i].ask_answer_id);
		if (a > 0)
			len += (size_t)snprintf(ids + len, size - len, "%s%lld", len > 1 ? "," : "", (long long)a);
	}
	if (len == 1)
		return false;
	snprintf(ids + len, size - len, "}");
	return true;
}

/* A cancel in the slot of every answer the result names (the maker stops at its next tick and
 * stores what it sent). */
static void ask_cancel_found(struct np_shm *shm, PGresult *r)
{
	for (int k = 0; k < PQntuples(r); k++) {
		int64_t id;
		if (util_parse_i64(PQgetvalue(r, k, 0), 1, INT64_MAX, &id) < 0)
			continue;
		for (int i = 0; i < NP_MAX_SLOTS; i++)
			if (atomic_load(&shm->slots[i].ask_answer_id) == id)
				atomic_store(&shm->slots[i].ask_cancel_id, id);
	}
}

int api_ask_wait_ms(const struct np_conf *c)
{
	/* with a model, an answer streams for seconds and may start while every holder sleeps: a
	 * holder that slept 1 s from just before it started saw a cancel from another host 0.8 s late
	 * (t_ask_cancel_other_host). Retrieval answers are made in milliseconds: no bound for them. */
	return c->llm_url && c->llm_url[0] ? ASK_CHECK_MS : -1;
}

/* The leases of the answers this host's slots name, renewed; those found finished elsewhere get a
 * cancel in their slot (the maker stops at its next tick and stores what it sent). */
static void ask_renew(struct np_shm *shm)
{
	char ids[NP_MAX_SLOTS * 22 + 3];
	if (!ask_host_answers(shm, ids, sizeof(ids)))
		return;
	char ms[16];
	snprintf(ms, sizeof(ms), "%d", ASK_LEASE_MS);
	const char *params[2] = { ids, ms };
	PGresult *r = db_idle_exec(&stmt_ask_renew, params);
	if (!r)
		return;
	ask_cancel_found(shm, r);
	PQclear(r);
}

/* Between renewals: which of this host's answers another host finished (read only). */
static void ask_check(struct np_shm *shm, int64_t now)
{
	_Atomic int64_t *due = &shm->hdr->ask_check_due_ms;
	int64_t d = atomic_load(due);
	if (now < d)
		return;
	char ids[NP_MAX_SLOTS * 22 + 3];
	if (!ask_host_answers(shm, ids, sizeof(ids)) || !atomic_compare_exchange_strong(due, &d, now + ASK_CHECK_MS))
		return;
	const char *params[1] = { ids };
	PGresult *r = db_idle_exec(&stmt_ask_check, params);
	if (!r)
		return;
	if (PQntuples(r) > 0) {
		char kv[48];
		snprintf(kv, sizeof(kv), " answers=%d", PQntuples(r));
		log_kv(NP_LOG_INFO, kv, "answers finished on another host (a cancel there): stopping them here");
	}
	ask_cancel_found(shm, r);
	PQclear(r);
}

void api_ask_sweep(void)
{
	struct np_shm *shm = db_shm();
	if (!db_holder(NP_EP_PRIMARY))
		return;
	_Atomic int64_t *due = &shm->hdr->ask_sweep_due_ms;
	int64_t now = util_now_ms(), d = atomic_load(due);
	if (now < d || !atomic_compare_exchange_strong(due, &d, now + ASK_SWEEP_MS)) {
		ask_check(shm, now);
		return;
	}
	ask_renew(shm);
	/* only while the database is in use: a sweep every 5 s would keep a scale-to-zero server
	 * awake; an idle pool sweeps again from its next request */
	int64_t last = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		int64_t l = atomic_load(&shm->slots[i].db_last_request_us);
		if (l > last)
			last = l;
	}
	if (last == 0 || util_wall_us() - last > (int64_t)ASK_SWEEP_ACTIVE_MS * 1000)
		return;
	char rows[16];
	snprintf(rows, sizeof(rows), "%d", ASK_SWEEP_ROWS);
	const char *params[1] = { rows };
	PGresult *r = db_idle_exec(&stmt_ask_expire, params);
	if (!r)
		return;
	int64_t n = 0;
	if (PQntuples(r) == 1 && util_parse_i64(PQgetvalue(r, 0, 0), 0, INT64_MAX, &n) == 0 && n > 0) {
		char kv[48];
		snprintf(kv, sizeof(kv), " answers=%lld", (long long)n);
		log_kv(NP_LOG_WARN, kv, "answers past their lease finished failed (their worker or host is gone)");
	}
	PQclear(r);
}

