/* SPDX-License-Identifier: PostgreSQL */
/* api_cache.h - HTTP caching of the textbook's content: validators, freshness, 304 from shared memory. */
#ifndef NP_API_CACHE_H
#define NP_API_CACHE_H

#include <stdbool.h>
#include <stdint.h>

struct np_request;
struct np_response;
struct np_shm;

/* The format version of the content routes' JSON, the first part of their ETag
 * ("<API_CACHE_FORMAT>-<generation>"). Bump it with any change to what a content route answers
 * (a member added, renamed or formatted otherwise): two builds side by side during an upgrade
 * must never share a tag for differently shaped JSON. */
#define API_CACHE_FORMAT 1

/* The generation read from the primary is trusted this long for a 304 without a query (the
 * staleness bound of a validator); it is refreshed at most once per API_CACHE_REFRESH_MS. */
#define API_CACHE_TRUST_MS 2000
#define API_CACHE_REFRESH_MS 1000
/* Refreshed only while some worker answered a content route this recently: an idle pool asks the
 * database nothing (a scale-to-zero server may suspend). */
#define API_CACHE_ACTIVE_MS 10000

/* Before the handler of a ROUTE_CONTENT route: when If-None-Match names the tag of the content's
 * current generation, known in shared memory and younger than API_CACHE_TRUST_MS, fill resp with
 * 304 (ETag, Cache-Control) and return true: no statement runs. false otherwise. */
bool api_cache_precheck(struct np_request *req, struct np_response *resp);

/* A content handler's 200: its ETag from the generation its statement read (the column's text,
 * decimal digits). false (no tag set) when the text is not a generation. */
bool api_cache_tag(struct np_response *resp, const char *generation);

/* After the handler, on every answer: a content route's 200 with a tag gets the shared-cache
 * freshness (content_max_age_s, stale-while-revalidate, stale-if-error), or 304 when
 * If-None-Match names that tag; everything else (private and admin routes, every error) is
 * Cache-Control: no-store and carries no ETag. */
void api_cache_finish(struct np_request *req, struct np_response *resp);

/* Between requests, in a worker holding a primary connection: read the generation when due (one
 * worker of the pool at a time, at most once per API_CACHE_REFRESH_MS, only while content is
 * being asked for) into this worker's slot. */
void api_cache_refresh(void);

/* The newest generation any slot read (0 when none) and how long ago it was read, in ms (-1 when
 * none). */
int64_t api_cache_generation(const struct np_shm *shm, int64_t *age_ms);

#endif
