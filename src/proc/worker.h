/* SPDX-License-Identifier: PostgreSQL */
/* worker.h - a FastCGI worker process: accept loop, request reading, routing, response writing. */
#ifndef NP_WORKER_H
#define NP_WORKER_H

#include <sys/types.h>

#include "conf.h"
#include "shm.h"

/* Runs in the child after fork; never returns. Exit 0 on a clean stop, 2 on a configuration error
 * (the master then does not respawn), 1 on a runtime failure. */
void worker_main(const struct np_conf *conf, struct np_shm *shm, int slot, int listen_fd, int control_fd,
                 pid_t master_pid) __attribute__((noreturn));

#endif
