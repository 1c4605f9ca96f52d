/* SPDX-License-Identifier: PostgreSQL */
/* master.h - the prefork master: listen socket, shared memory, forking, reaping, signals, reload. */
#ifndef NP_MASTER_H
#define NP_MASTER_H

#include "conf.h"

/* Run the master with a loaded configuration (taken over; freed here) read from conf_path.
 * Returns the process exit code: 0 clean stop, 1 runtime failure. */
int master_run(struct np_conf *conf, const char *conf_path);

#endif
