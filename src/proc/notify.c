/* SPDX-License-Identifier: PostgreSQL */
/* notify.c - tell the service manager about the daemon's state: sd_notify's datagram protocol.
 *
 * One datagram per message to the AF_UNIX socket NOTIFY_SOCKET names (a path, or "@name" for an
 * abstract one), newline-separated "KEY=value" lines (sd_notify(3)). Implemented here rather than
 * linked from libsystemd: Debian 12's libsystemd0 brings liblzma, libzstd, liblz4 and libgcrypt
 * into every worker. Only the master sends (NotifyAccess=main suffices). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

static struct {
	int fd;
	struct sockaddr_un addr;
	socklen_t addrlen;
	char given[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	int64_t watchdog_ms;
} notify_state = { .fd = -1 };

int notify_init(void)
{
	const char *wd = getenv("WATCHDOG_USEC"), *wdpid = getenv("WATCHDOG_PID");
	if (wd && (!wdpid || strtol(wdpid, NULL, 10) == (long)getpid())) {
		char *end;
		long long us = strtoll(wd, &end, 10);
		notify_state.watchdog_ms = *wd && !*end && us > 0 ? (us + 999) / 1000 : 0;
	}
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");

	const char *e = getenv("NOTIFY_SOCKET");
	char given[sizeof(notify_state.given)];
	size_t len = e ? strlen(e) : 0;
	if (e && len < sizeof(given))
		memcpy(given, e, len + 1);
	unsetenv("NOTIFY_SOCKET");
	if (!e || !len)
		return 0;
	if (len >= sizeof(notify_state.addr.sun_path) || (given[0] != '/' && given[0] != '@')) {
		errno = EINVAL; /* too long, or not a path nor an abstract name ("vsock:" is not ours) */
		return -1;
	}
	memset(&notify_state.addr, 0, sizeof(notify_state.addr));
	notify_state.addr.sun_family = AF_UNIX;
	memcpy(notify_state.addr.sun_path, given, len);
	if (given[0] == '@')
		notify_state.addr.sun_path[0] = '\0'; /* abstract: no trailing NUL counted */
	notify_state.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (given[0] == '/'));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	notify_state.fd = fd;
	memcpy(notify_state.given, given, len + 1);
	return 0;
}

bool notify_enabled(void)
{
	return notify_state.fd >= 0;
}

int notify_send(const char *fmt, ...)
{
	if (notify_state.fd < 0)
		return 0;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		errno = EMSGSIZE;
		return -1;
	}
	ssize_t w = sendto(notify_state.fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&notify_state.addr,
	                   notify_state.addrlen);
	return w == (ssize_t)n ? 0 : -1;
}

int64_t notify_watchdog_ms(void)
{
	return notify_state.watchdog_ms;
}

const char *notify_address(void)
{
	return notify_state.given;
}

void notify_close(void)
{
	if (notify_state.fd >= 0)
		close(notify_state.fd);
	notify_state.fd = -1;
}
