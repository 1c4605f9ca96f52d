/* SPDX-License-Identifier: PostgreSQL */
/* supervisor.h - the periodic process: aggregates the worker slots into the published view. */
#ifndef NP_SUPERVISOR_H
#define NP_SUPERVISOR_H

#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "shm.h"

/* Runs in the child after fork; never returns. */
void supervisor_main(const struct np_conf *conf, struct np_shm *shm, int slot, pid_t master_pid)
	__attribute__((noreturn));

/* One aggregation pass over the slots into the header's sup_* fields (also used by tests). */
void supervisor_aggregate(struct np_shm *shm);

/* Every 10 s: a snapshot of the routes' latency histograms, and the 1 and 5 minute windows
 * (newest minus older snapshot) published in the header (also used by tests). */
void supervisor_windows(struct np_shm *shm, int64_t now_ms);

#endif
