/* SPDX-License-Identifier: PostgreSQL */
/* ctl_status.h - `neonpoolctl status`: the pool's state read out of band from the status file. */
#ifndef NP_CTL_STATUS_H
#define NP_CTL_STATUS_H

#include <stdbool.h>

#include "conf.h"

/* Map c->status_file read-only and print the pool's state (JSON with json). Returns the exit
 * code: 0, or 1 when the file is missing, not ours, or its master is gone. */
int ctl_status(const struct np_conf *c, bool json);

/* `status --watch N` (top false) and `top` (top true): print every interval_ms, iterations times
 * (0: until interrupted), read out of band; the screen is cleared between refreshes on a
 * terminal. top shows req/s between refreshes and p99 per route. Returns the exit code of the
 * last refresh (1 when the master is gone). */
int ctl_status_watch(const struct np_conf *c, int interval_ms, int iterations, bool top);

#endif
