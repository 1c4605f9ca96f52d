/* SPDX-License-Identifier: PostgreSQL */
/* ctl_service.h - `neonpoolctl reload` and `stop`: signal the running master and wait for the outcome. */
#ifndef NP_CTL_SERVICE_H
#define NP_CTL_SERVICE_H

#include <stdbool.h>

#include "conf.h"

/* Where the running master is: c's status_file (its header names the master), else c's pid_file. */
struct ctl_service_target {
	const char *status_file;
	const char *pid_file;
};

/* SIGHUP the master, then wait (at most timeout_ms) until the status file counts the reload:
 * print the new generation and return 0, or print the reason the master refused the new
 * configuration (it kept the running one) and return 1. 1 also when no master runs or it did not
 * answer in time; without a status file the signal is sent unconfirmed (0, with a warning). */
int ctl_service_reload(const struct ctl_service_target *t, int timeout_ms);

/* SIGTERM (graceful: SIGQUIT) the master and wait until it exited (at most timeout_ms, its
 * children included: the master leaves last). Returns 0, or 1 when none runs or it was still
 * there at the timeout. */
int ctl_service_stop(const struct ctl_service_target *t, bool graceful, int timeout_ms);

/* SIGUSR2 the master (abort_it: SIGURG, which ends a pending upgrade) and wait (at most
 * timeout_ms) until the status file counts the upgrade's outcome: print it; 0 when the new
 * master took over, 1 when it was rolled back or refused, no master runs, or none came in time. */
int ctl_service_upgrade(const struct ctl_service_target *t, bool abort_it, int timeout_ms);

#endif
