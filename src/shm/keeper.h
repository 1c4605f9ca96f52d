/* SPDX-License-Identifier: PostgreSQL */
/* keeper.h - the master keeps a duplicate of every server connection's socket, so that a dead
 * worker's connections are closed by us and their budget freed exactly when the server closed. */
#ifndef NP_KEEPER_H
#define NP_KEEPER_H

#include <stdbool.h>
#include <sys/types.h>

#include "shm.h"

/* Master, before the first fork: the datagram socketpair workers send their sockets on.
 * Returns 0 or -1 (errno). */
int keeper_init(void);
/* Master, at exit: close the channel and every kept socket. */
void keeper_close(void);
/* A child, right after fork: drop the master's side (the receiving end and the kept sockets of
 * siblings). Returns the sending end, the one descriptor of the keeper a child keeps. */
int keeper_init_child(void);
/* A child: hand a duplicate of fd (the connection under token tok of ep) to the master.
 * Best effort: on failure the token falls back to the grace-period reclaim. */
void keeper_send(int fd, int ep, int tok);

/* Master: the descriptor to poll for incoming sockets. */
int keeper_channel_fd(void);
/* Master: take the pending messages (the channel is readable). */
void keeper_receive(struct np_shm *shm);
/* Master, after reaping pid: shut down the write side of each socket it held, so the server
 * sees EOF even mid-transaction; the token is freed when the server closed (keeper_poll). */
int keeper_on_death(struct np_shm *shm, pid_t pid);
/* Master: fill fds with the sockets being watched for the server's close. Returns the count. */
int keeper_watch_fds(int *fds, int n);
/* Master: check watched sockets and forget sockets whose token changed hands. */
void keeper_poll(struct np_shm *shm);
#endif
