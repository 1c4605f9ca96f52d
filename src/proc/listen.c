/* listen.c - open the FastCGI listen socket: TCP, unix (path, mode, owner) or inherited on fd 0. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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

static int listen_tcp(struct np_listener *l, const struct np_conf *c, char *err, size_t errlen)
{
	char host[128];
	const char *spec = c->listen, *port;
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
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int g = getaddrinfo(host[0] && strcmp(host, "*") ? host : NULL, port, &hints, &res);
	if (g != 0) {
		snprintf(err, errlen, "listen: cannot resolve '%s': %s", spec, gai_strerror(g));
		return -1;
	}
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

int listen_open(struct np_listener *l, const struct np_conf *c, char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	int rc;
	if (strcmp(c->listen, "stdin") == 0)
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
	if (l->unix_path[0])
		unlink(l->unix_path);
	l->unix_path[0] = '\0';
}
