/* SPDX-License-Identifier: PostgreSQL */
/* notify.h - tell the service manager about the daemon's state: sd_notify's datagram protocol. */
#ifndef NP_NOTIFY_H
#define NP_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Master, at start: take NOTIFY_SOCKET (a path, or "@name" for an abstract socket) and
 * WATCHDOG_USEC (with WATCHDOG_PID, when set, naming us) and unset them, so that no child sees
 * them. Returns 0; -1 when NOTIFY_SOCKET is set but unusable (then nothing is sent; the caller
 * logs it). */
int notify_init(void);
/* NOTIFY_SOCKET was given and opened. */
bool notify_enabled(void);
/* Send one datagram of newline-separated "KEY=value" lines (printf format). Returns 0, or -1
 * with errno (nothing listens there, the message is too long); a no-op returning 0 when not
 * enabled. */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog interval asked for in WATCHDOG_USEC, in ms (0: none). Send WATCHDOG=1 at half. */
int64_t notify_watchdog_ms(void);
/* The socket's address as it was given (for a successor master), "" when none. */
const char *notify_address(void);
/* Close the socket (the master, at exit). */
void notify_close(void);

#endif
