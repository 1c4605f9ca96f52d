/* SPDX-License-Identifier: PostgreSQL */
/* listen.c - open the FastCGI listen socket: TCP, unix (path, mode, owner), inherited on fd 0, or
 * passed by systemd (socket activation, the LISTEN_FDS protocol of sd_listen_fds(3)). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <unistd.h>

#include "listen.h"

static int listen_set_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	int fdfl = fcntl(fd, F_GETFD);
	if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

static int listen_inherited(struct np_listener *l, char *err, size_t errlen)
{
	int acc = 0;
	socklen_t len = sizeof(acc);
	if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 || !acc) {
		snprintf(err, errlen, "listen = \"stdin\" but fd 0 is not a listening socket (start it with spawn-fcgi)");
		return -1;
	}
	/* move it off fd 0 so that stdin can be /dev/null */
	int fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		snprintf(err, errlen, "dup of fd 0: %s", strerror(errno));
		return -1;
	}
	int devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0) {
		dup2(devnull, 0);
		if (devnull != 0)
			close(devnull);
	}
	l->fd = fd;
	snprintf(l->display, sizeof(l->display), "stdin");
	return 0;
}

static int listen_unix(struct np_listener *l, const struct np_conf *c, const char *path, char *err,
                       size_t errlen)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "unix socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* A leftover socket file: in use if something answers, else stale and removed. */
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			close(fd);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			close(fd);
			snprintf(err, errlen, "%s is in use by another process", path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	/* created with its final mode (no chmod by path afterwards: between bind and chmod the
	 * path could be swapped for a symlink, and a root master would change the target) */
	mode_t old = umask((mode_t)(~c->listen_mode & 0777));
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	if (rc < 0) {
		snprintf(err, errlen, "bind %s: %s", path, strerror(e));
		close(fd);
		return -1;
	}
	snprintf(l->unix_path, sizeof(l->unix_path), "%s", path);
	if (c->listen_owner[0] || c->listen_group[0]) {
		uid_t uid = (uid_t)-1;
		gid_t gid = (gid_t)-1;
		if (c->listen_owner[0]) {
			struct passwd *pw = getpwnam(c->listen_owner);
			if (!pw) {
				snprintf(err, errlen, "listen_owner: unknown user '%s'", c->listen_owner);
				goto fail;
			}
			uid = pw->pw_uid;
		}
		if (c->listen_group[0]) {
			struct group *gr = getgrnam(c->listen_group);
			if (!gr) {
				snprintf(err, errlen, "listen_group: unknown group '%s'", c->listen_group);
				goto fail;
			}
			gid = gr->gr_gid;
		}
		/* the socket file itself, never a symlink's target */
		if (fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
			snprintf(err, errlen, "chown %s: %s", path, strerror(errno));
			goto fail;
		}
	}
	if (listen(fd, c->listen_backlog) < 0) {
		snprintf(err, errlen, "listen %s: %s", path, strerror(errno));
		goto fail;
	}
	l->fd = fd;
	snprintf(l->display, sizeof(l->display), "unix:%s", path);
	return 0;
fail:
	close(fd);
	unlink(path);
	l->unix_path[0] = '\0';
	return -1;
}

/* Resolve a "host:port", "[v6]:port" or "*:port" listen value (passive). 0, or -1 with err. */
static int listen_resolve(const char *spec, struct addrinfo **res, char *err, size_t errlen)
{
	char host[128];
	const char *port;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "listen: bad address '%s'", spec);
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(close - spec - 1), spec + 1);
		port = close + 2;
	} else {
		const char *colon = strrchr(spec, ':');
		if (!colon) {
			snprintf(err, errlen, "listen: bad address '%s'", spec);
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
		port = colon + 1;
	}
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int g = getaddrinfo(host[0] && strcmp(host, "*") ? host : NULL, port, &hints, res);
	if (g != 0) {
		snprintf(err, errlen, "listen: cannot resolve '%s': %s", spec, gai_strerror(g));
		return -1;
	}
	return 0;
}

static int listen_tcp(struct np_listener *l, const struct np_conf *c, char *err, size_t errlen)
{
	const char *spec = c->listen;
	struct addrinfo *res = NULL;
	if (listen_resolve(spec, &res, err, errlen) < 0)
		return -1;
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
		snprintf(err, errlen, "bind %s: %s", spec, strerror(errno));
		goto fail;
	}
	if (listen(fd, c->listen_backlog) < 0) {
		snprintf(err, errlen, "listen %s: %s", spec, strerror(errno));
		goto fail;
	}
	freeaddrinfo(res);
	l->fd = fd;
	snprintf(l->display, sizeof(l->display), "%s", spec);
	return 0;
fail:
	freeaddrinfo(res);
	close(fd);
	return -1;
}

/* ---- socket activation ------------------------------------------------------------------
 * systemd passes LISTEN_FDS sockets at fd 3.., for the process LISTEN_PID, with LISTEN_FDNAMES
 * (colon-separated, the socket units' FileDescriptorName=). The protocol is a few lines of
 * environment parsing, done here: libsystemd would bring liblzma, libzstd, liblz4 and libgcrypt
 * into every worker. */

#define LISTEN_ACT_FIRST_FD 3
#define LISTEN_ACT_MAX 16

static struct {
	int n;
	int fd[LISTEN_ACT_MAX];
	char name[LISTEN_ACT_MAX][64];
	bool taken[LISTEN_ACT_MAX];
} listen_act;

int listen_activation_init(char *err, size_t errlen)
{
	memset(&listen_act, 0, sizeof(listen_act));
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID"), *names = getenv("LISTEN_FDNAMES");
	char namebuf[LISTEN_ACT_MAX * 64 + LISTEN_ACT_MAX] = "";
	if (names)
		snprintf(namebuf, sizeof(namebuf), "%s", names);
	bool ours = false;
	long n = 0;
	if (fds && pid) {
		char *end;
		long p = strtol(pid, &end, 10);
		ours = *pid && !*end && p == (long)getpid();
		n = strtol(fds, &end, 10);
		if (ours && (!*fds || *end || n < 0)) {
			snprintf(err, errlen, "LISTEN_FDS: not a number: '%s'", fds);
			ours = false;
			n = -1;
		}
	}
	/* children never see them (sd_listen_fds(3) with unset_environment) */
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (n < 0)
		return -1;
	if (!ours || n == 0)
		return 0;
	if (n > LISTEN_ACT_MAX) {
		snprintf(err, errlen, "LISTEN_FDS: %ld sockets passed, at most %d are taken", n, LISTEN_ACT_MAX);
		return -1;
	}
	char *tok = names ? namebuf : NULL;
	for (int i = 0; i < (int)n; i++) {
		int fd = LISTEN_ACT_FIRST_FD + i;
		int acc = 0;
		socklen_t len = sizeof(acc);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 || !acc) {
			snprintf(err, errlen, "LISTEN_FDS: fd %d is not a listening socket", fd);
			return -1;
		}
		/* names: "a:b:c" (names go into logfmt lines: no spaces); an empty one, a missing one or "unknown" (systemd's default for
		 * sockets passed without a name) is matched by address */
		char *nm = tok ? strsep(&tok, ":") : NULL;
		snprintf(listen_act.name[i], sizeof(listen_act.name[i]), "%s",
		         nm && strcmp(nm, "unknown") != 0 ? nm : "");
		listen_act.fd[i] = fd;
		int fdfl = fcntl(fd, F_GETFD);
		if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) {
			snprintf(err, errlen, "LISTEN_FDS: fcntl on fd %d: %s", fd, strerror(errno));
			return -1;
		}
	}
	listen_act.n = (int)n;
	return listen_act.n;
}

/* fd's bound address is the one spec ("unix:/p", "/p", "host:port") names. */
static bool listen_addr_matches(int fd, const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (strncmp(spec, "unix:", 5) == 0 || spec[0] == '/') {
		const char *path = spec[0] == '/' ? spec : spec + 5;
		const struct sockaddr_un *su = (const struct sockaddr_un *)&ss;
		return ss.ss_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path) &&
		       strncmp(su->sun_path, path, sizeof(su->sun_path)) == 0;
	}
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return false;
	struct addrinfo *res = NULL;
	char err[160];
	if (listen_resolve(spec, &res, err, sizeof(err)) < 0)
		return false;
	bool match = false;
	for (const struct addrinfo *a = res; a && !match; a = a->ai_next) {
		if (a->ai_family != ss.ss_family)
			continue;
		if (a->ai_family == AF_INET) {
			const struct sockaddr_in *x = (const struct sockaddr_in *)a->ai_addr, *y = (const struct sockaddr_in *)&ss;
			match = x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
		} else {
			const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a->ai_addr, *y = (const struct sockaddr_in6 *)&ss;
			match = x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
		}
	}
	freeaddrinfo(res);
	return match;
}

/* The names a role's socket may carry: the role ("main", "control", "ask") or its key. */
static bool listen_name_is(const char *name, const char *role)
{
	if (!name[0])
		return false;
	if (strcmp(name, role) == 0)
		return true;
	if (strcmp(role, "main") == 0)
		return strcmp(name, "listen") == 0;
	char key[64];
	snprintf(key, sizeof(key), "%s_listen", role);
	return strcmp(name, key) == 0;
}

/* The passed socket for role: by name, else an unnamed one bound to spec's address. -1: none. */
static int listen_activation_take(const char *role, const char *spec)
{
	for (int i = 0; i < listen_act.n; i++)
		if (!listen_act.taken[i] && listen_name_is(listen_act.name[i], role)) {
			listen_act.taken[i] = true;
			return i;
		}
	for (int i = 0; i < listen_act.n; i++)
		if (!listen_act.taken[i] && !listen_act.name[i][0] && listen_addr_matches(listen_act.fd[i], spec)) {
			listen_act.taken[i] = true;
			return i;
		}
	return -1;
}

int listen_activation_leftover(char *names, size_t n)
{
	int left = 0;
	size_t used = 0;
	if (n)
		names[0] = '\0';
	for (int i = 0; i < listen_act.n; i++) {
		if (listen_act.taken[i])
			continue;
		if (used < n) {
			int w = snprintf(names + used, n - used, "%sfd %d (%s)", left ? ", " : "", listen_act.fd[i],
			                 listen_act.name[i][0] ? listen_act.name[i] : "no name");
			used += w > 0 ? (size_t)w : 0;
		}
		close(listen_act.fd[i]);
		listen_act.taken[i] = true;
		left++;
	}
	return left;
}

/* Describe a passed socket's address for the logs. */
static void listen_describe(int fd, char *out, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		snprintf(out, n, "?");
		return;
	}
	char host[64] = "?";
	if (ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *su = (const struct sockaddr_un *)&ss;
		snprintf(out, n, "unix:%.108s", su->sun_path[0] ? su->sun_path : "@abstract");
	} else if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *si = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &si->sin_addr, host, sizeof(host));
		snprintf(out, n, "%s:%u", host, (unsigned)ntohs(si->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *si = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &si->sin6_addr, host, sizeof(host));
		snprintf(out, n, "[%s]:%u", host, (unsigned)ntohs(si->sin6_port));
	} else {
		snprintf(out, n, "family %d", (int)ss.ss_family);
	}
}

static int listen_passed(struct np_listener *l, int i)
{
	char addr[128];
	listen_describe(listen_act.fd[i], addr, sizeof(addr));
	l->fd = listen_act.fd[i];
	l->passed = true;
	snprintf(l->display, sizeof(l->display), "%.120s[systemd:%d%s%.20s]", addr, listen_act.fd[i],
	         listen_act.name[i][0] ? ":" : "", listen_act.name[i]);
	return 0;
}

int listen_open(struct np_listener *l, const struct np_conf *c, const char *role, char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	int rc, act = strcmp(c->listen, "stdin") == 0 ? -1 : listen_activation_take(role, c->listen);
	if (act >= 0)
		rc = listen_passed(l, act);
	else if (strcmp(c->listen, "stdin") == 0)
		rc = listen_inherited(l, err, errlen);
	else if (strncmp(c->listen, "unix:", 5) == 0)
		rc = listen_unix(l, c, c->listen + 5, err, errlen);
	else if (c->listen[0] == '/')
		rc = listen_unix(l, c, c->listen, err, errlen);
	else
		rc = listen_tcp(l, c, err, errlen);
	if (rc < 0)
		return -1;
	if (listen_set_flags(l->fd) < 0) {
		snprintf(err, errlen, "fcntl on the listen socket: %s", strerror(errno));
		listen_close(l);
		return -1;
	}
	return 0;
}

void listen_close(struct np_listener *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->passed = false;
	if (l->unix_path[0])
		unlink(l->unix_path);
	l->unix_path[0] = '\0';
}
