/* SPDX-License-Identifier: PostgreSQL */
/* expo.h - the Prometheus text exposition (format 0.0.4) of the pool, from the shared memory. */
#ifndef NP_EXPO_H
#define NP_EXPO_H

#include <stddef.h>

#include "shm.h"

/* The Content-Type Prometheus expects of this format, exactly. */
#define EXPO_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The exposition as a malloc'd string (*len its length); NULL when out of memory. The metrics
 * rows of every slot are summed: they are never reset while the daemon lives, so every counter
 * only grows (a worker's successor continues its row). */
/* The libpq version (PQlibVersion()) neonpool_build_info names: the shared-memory library does
 * not link libpq, so the worker says it once (0: "unknown"). */
void expo_set_libpq(int version);

char *expo_metrics(const struct np_shm *shm, size_t *len);

#endif
