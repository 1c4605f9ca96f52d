/* SPDX-License-Identifier: PostgreSQL */
/* api_cache.c - HTTP caching of the textbook's content: validators, freshness, 304 from shared memory.
 *
 * A content route's ETag is "<API_CACHE_FORMAT>-<generation>": the generation is the database's
 * np_content_generation (migration 008), bumped in the same transaction as any change to books,
 * chapters or passages, and read by the route's own statement, so a tag names exactly the state
 * its body was read from (a lagging replica's older state gets an older tag). Workers holding a
 * primary connection copy the generation into their slot between requests (api_cache_refresh());
 * a request whose If-None-Match names the newest copy's tag, read less than API_CACHE_TRUST_MS
 * ago, is answered 304 before any statement. */
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "api_cache.h"
#include "db.h"
#include "http.h"
#include "router.h"
#include "util.h"

/* Statement id 10 is this file's. */
static const struct np_stmt stmt_generation = {
	10, "np_content_generation", "SELECT generation FROM np_content_generation WHERE id = 1", 0, 0
};

static bool api_cache_content(const struct np_request *req)
{
	const struct np_route *r = req->match.route;
	return r && (r->flags & ROUTE_CONTENT) && (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0);
}

/* The Cache-Control of a content 200 or 304, from this process's configuration. */
static const char *api_cache_control(void)
{
	static char cc[128];
	static const struct np_conf *built;
	const struct np_conf *c = db_conf();
	if (built != c) {
		snprintf(cc, sizeof(cc), "public, max-age=%d, stale-while-revalidate=%d, stale-if-error=%d",
		         c->content_max_age_s, c->content_stale_while_revalidate_s, c->content_stale_if_error_s);
		built = c;
	}
	return cc;
}

static void api_cache_format(char *out, size_t n, int64_t gen)
{
	snprintf(out, n, "\"%d-%lld\"", API_CACHE_FORMAT, (long long)gen);
}

int64_t api_cache_generation(const struct np_shm *shm, int64_t *age_ms)
{
	int64_t best_gen = 0, best_at = 0;
	uint32_t n = shm->hdr->nslots;
	for (uint32_t i = 0; i < n; i++) {
		struct np_slot *s = &shm->slots[i];
		uint32_t q1 = atomic_load(&s->cache_seq);
		if (q1 & 1)
			continue; /* being written (or its writer died writing): skip */
		int64_t gen = atomic_load(&s->cache_gen), at = atomic_load(&s->cache_checked_us);
		if (atomic_load(&s->cache_seq) != q1 || at == 0)
			continue;
		if (at > best_at) {
			best_at = at;
			best_gen = gen;
		}
	}
	if (age_ms)
		*age_ms = best_at ? (util_now_us() - best_at) / 1000 : -1;
	return best_gen;
}

bool api_cache_precheck(struct np_request *req, struct np_response *resp)
{
	if (!api_cache_content(req))
		return false;
	struct np_shm *shm = db_shm();
	if (shm == NULL)
		return false;
	atomic_store(&shm->slots[db_slot()].cache_asked_ms, util_now_ms());
	if (req->if_none_match == NULL)
		return false;
	int64_t age_ms;
	int64_t gen = api_cache_generation(shm, &age_ms);
	if (gen <= 0 || age_ms < 0 || age_ms >= API_CACHE_TRUST_MS)
		return false;
	char tag[sizeof(resp->etag)];
	api_cache_format(tag, sizeof(tag), gen);
	/* "*" needs to know that the resource exists: the handler tells */
	if (strchr(req->if_none_match, '"') == NULL || !http_etag_match(req->if_none_match, tag))
		return false;
	resp->status = 304;
	snprintf(resp->etag, sizeof(resp->etag), "%s", tag);
	resp->cache_control = api_cache_control();
	return true;
}

bool api_cache_tag(struct np_response *resp, const char *generation)
{
	int64_t gen;
	if (generation == NULL || util_parse_i64(generation, 1, INT64_MAX, &gen) < 0)
		return false;
	api_cache_format(resp->etag, sizeof(resp->etag), gen);
	return true;
}

void api_cache_finish(struct np_request *req, struct np_response *resp)
{
	if (resp->status == 304)
		return; /* api_cache_precheck() answered */
	if (!api_cache_content(req) || resp->status != 200 || resp->streamed || resp->etag[0] == '\0') {
		resp->etag[0] = '\0';
		resp->cache_control = NULL;
		return;
	}
	resp->cache_control = api_cache_control();
	if (req->if_none_match && http_etag_match(req->if_none_match, resp->etag)) {
		http_response_free(resp);
		resp->status = 304;
	}
}

void api_cache_refresh(void)
{
	struct np_shm *shm = db_shm();
	if (shm == NULL || !db_holder(NP_EP_PRIMARY))
		return;
	int64_t now = util_now_ms();
	_Atomic int64_t *due = &shm->hdr->cache_refresh_due_ms;
	int64_t d = atomic_load(due);
	/* a little early rather than a poll late: an idle holder wakes every second */
	if (now < d - 50)
		return;
	/* only while readers ask for content */
	int64_t asked = 0;
	for (uint32_t i = 0; i < shm->hdr->nslots; i++) {
		int64_t a = atomic_load(&shm->slots[i].cache_asked_ms);
		if (a > asked)
			asked = a;
	}
	if (asked == 0 || now - asked > API_CACHE_ACTIVE_MS ||
	    !atomic_compare_exchange_strong(due, &d, now + API_CACHE_REFRESH_MS))
		return;
	int64_t t0 = util_now_us(); /* the statement's snapshot is taken after this: every commit before it is seen */
	PGresult *r = db_idle_exec(&stmt_generation, NULL);
	if (!r)
		return;
	int64_t gen;
	if (PQntuples(r) == 1 && util_parse_i64(PQgetvalue(r, 0, 0), 1, INT64_MAX, &gen) == 0) {
		struct np_slot *s = &shm->slots[db_slot()];
		uint32_t q = (atomic_load(&s->cache_seq) + 1) | 1u; /* odd while writing, whatever a dead predecessor left */
		atomic_store(&s->cache_seq, q);
		atomic_store(&s->cache_gen, gen);
		atomic_store(&s->cache_checked_us, t0);
		atomic_store(&s->cache_seq, q + 1);
	}
	PQclear(r);
}
