/* SPDX-License-Identifier: PostgreSQL */
/* listen.h - open the FastCGI listen socket: TCP, unix (path, mode, owner), inherited on fd 0, or
 * passed by systemd (socket activation). */
#ifndef NP_LISTEN_H
#define NP_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

struct np_listener {
	int fd;
	char unix_path[108];   /* non-empty when we created a unix socket (unlinked on stop) */
	char display[160];     /* for logs: "127.0.0.1:9000", "unix:/run/x.sock", "stdin" */
	bool passed;           /* passed by systemd (LISTEN_FDS): never unlinked, systemd keeps it open */
};

/* Master, before anything else opens a descriptor: take the sockets systemd passed (LISTEN_FDS
 * at fd 3.. for LISTEN_PID == our pid, named by LISTEN_FDNAMES) and unset the three variables, so
 * that no child sees them. Returns how many were passed (0: none, or not for this process), or -1
 * with err (a passed descriptor that is not a listening socket, a malformed LISTEN_FDS). */
int listen_activation_init(char *err, size_t errlen);
/* After every listen_open(): close the passed sockets no role took; their names go in names.
 * Returns how many. */
int listen_activation_leftover(char *names, size_t n);

/* Open the socket for role ("main", "control", "ask") described by c->listen, non-blocking and
 * close-on-exec, with c->listen_backlog: a socket systemd passed named role (or "listen",
 * "control_listen", "ask_listen"), else an unnamed passed one bound to c->listen's address, else
 * a new one. Returns 0, or -1 with a message in err. */
int listen_open(struct np_listener *l, const struct np_conf *c, const char *role, char *err, size_t errlen);
/* Close it and unlink a unix socket path we created (a passed socket's path stays: systemd's). */
void listen_close(struct np_listener *l);

#endif
