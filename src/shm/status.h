/* SPDX-License-Identifier: PostgreSQL */
/* status.h - the pool's state as one JSON document and as text, read from the shared memory:
 * what `GET /status` answers and what `neonpoolctl status` prints (out of band). */
#ifndef NP_STATUS_H
#define NP_STATUS_H

#include <stdbool.h>
#include <stdio.h>

#include "conf.h"
#include "shm.h"

struct cJSON;

/* The state: pool, workers by state (each worker's slot, pid, state, requests, route and its age
 * with full), budget, waiters, counters, errors by code, each endpoint's health and breaker,
 * warm-up policy and last ping, p50/p95/p99 per route over 1 and 5 minutes. conf may be NULL
 * (then the warm-up policy is not named). NULL when out of memory. */
struct cJSON *status_build(const struct np_shm *shm, const struct np_conf *conf, bool full);
/* The pools whose replacements wait (the master's respawn backoff): {"worker": {"alive",
 * "configured", "backoff_ms"}, ...}; NULL when none does (or out of memory). */
struct cJSON *status_backoff(const struct np_shm *shm);
/* The same for humans. */
void status_text(const struct cJSON *j, FILE *fp);

#endif
