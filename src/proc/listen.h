/* listen.h - open the FastCGI listen socket: TCP, unix (path, mode, owner) or inherited on fd 0. */
#ifndef NP_LISTEN_H
#define NP_LISTEN_H

#include <stddef.h>

#include "conf.h"

struct np_listener {
	int fd;
	char unix_path[108];   /* non-empty when we created a unix socket (unlinked on stop) */
	char display[160];     /* for logs: "127.0.0.1:9000", "unix:/run/x.sock", "stdin" */
};

/* Open the socket described by c->listen, non-blocking and close-on-exec, with c->listen_backlog.
 * Returns 0, or -1 with a message in err. */
int listen_open(struct np_listener *l, const struct np_conf *c, char *err, size_t errlen);
/* Close it and unlink a unix socket path we created. */
void listen_close(struct np_listener *l);

#endif
