/* SPDX-License-Identifier: PostgreSQL */
/* child.h - what every child process shares: naming, flag-only signals, dying with the master. */
#ifndef NP_CHILD_H
#define NP_CHILD_H

#include <stdbool.h>
#include <sys/types.h>

/* Name the process (comm), set the log role, die with the master (PDEATHSIG plus a check), install
 * flag-only handlers and keep the signals blocked outside child_wait(). Returns 0, or -1 when the
 * master is already gone. */
int child_setup(const char *comm, const char *role, pid_t master_pid);

/* Right after fork: close every descriptor except the n in keep (what this child uses), so a
 * child never holds the master's signalfd, the keeper's receiving end or a sibling's database
 * socket. Nothing is ever exec'd, so O_CLOEXEC cannot do this. Returns 0 or -1 (errno). */
int child_close_fds_except(const int *keep, int n);

/* Wait until fd (or none when fd < 0) is readable, a signal arrived, or timeout_ms passed; the only
 * place signals are delivered. Returns true when fd is readable. Reopens the log on SIGUSR1. */
bool child_wait(int fd, int timeout_ms);

/* Like child_wait for an epoll set (epoll_pwait with the signals open): a waiter blocked here is
 * one that an EPOLLEXCLUSIVE registration may wake alone. Returns epoll_pwait's count. */
struct epoll_event;
int child_epoll(int epfd, struct epoll_event *ev, int n, int timeout_ms);

/* A stop was asked (TERM, INT, QUIT) or the master is gone. */
bool child_should_stop(void);

#endif
