/* SPDX-License-Identifier: PostgreSQL */
/* asktx.c - an ask worker's short transactions as internal FastCGI requests to the main pool. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "asktx.h"
#include "util.h"

#define ASKTX_ANSWER_MAX (4u << 20)   /* bytes of an answer we read at most */
#define ASKTX_REQUEST_ID 1

static char asktx_key[65];

int asktx_init_secret(void)
{
	uint8_t r[32];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	util_hex_encode(r, sizeof(r), asktx_key);
	explicit_bzero(r, sizeof(r));
	return 0;
}

int asktx_set_secret(const char *hex, size_t len)
{
	if (len != sizeof(asktx_key) - 1)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return -1;
	memcpy(asktx_key, hex, len);
	asktx_key[len] = '\0';
	return 0;
}

const char *asktx_secret(void)
{
	return asktx_key;
}

/* A connected non-blocking socket to the unix socket sa before deadline_ms, or -1. A unix
 * socket's connect completes at once or fails with EAGAIN while the listener's backlog is full
 * (nobody accepts): it cannot be polled for, so it is retried every 5 ms until the deadline. A
 * blocking connect would wait for ever there, holding the ask pool's permit. */
static int asktx_connect_unix(const struct sockaddr_un *sa, int64_t deadline_ms, char *err, size_t errlen)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to the main socket: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
			return fd;
		if (errno != EAGAIN && errno != EINTR) {
			snprintf(err, errlen, "cannot connect to the main socket: %s", strerror(errno));
			break;
		}
		if (util_now_ms() >= deadline_ms) {
			snprintf(err, errlen, "cannot connect to the main socket: its backlog stayed full until the deadline");
			break;
		}
		struct timespec ts = { 0, 5000000L };
		nanosleep(&ts, NULL);
	}
	close(fd);
	return -1;
}

/* A connected socket to conf->listen, or -1. */
static int asktx_connect(const char *listen, int64_t deadline_ms, char *err, size_t errlen)
{
	const char *path = strncmp(listen, "unix:", 5) == 0 ? listen + 5 : listen[0] == '/' ? listen : NULL;
	int fd = -1;
	if (path) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (strlen(path) >= sizeof(sa.sun_path)) {
			snprintf(err, errlen, "the listen path is too long");
			return -1;
		}
		memcpy(sa.sun_path, path, strlen(path) + 1);
		return asktx_connect_unix(&sa, deadline_ms, err, errlen);
	}
	if (strcmp(listen, "stdin") == 0) {
		snprintf(err, errlen, "the main socket is inherited (listen = stdin): an ask worker cannot reach it");
		return -1;
	}
	char host[256], port[16];
	const char *colon = strrchr(listen, ':');
	if (!colon || (size_t)(colon - listen) >= sizeof(host) || strlen(colon + 1) >= sizeof(port)) {
		snprintf(err, errlen, "cannot parse the listen address");
		return -1;
	}
	size_t hl = (size_t)(colon - listen);
	memcpy(host, listen, hl);
	host[hl] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	char *h = host;
	if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') {
		h[hl - 1] = '\0';
		h++;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int rc = getaddrinfo(h[0] ? h : "127.0.0.1", port, &hints, &ai);
	if (rc != 0 || !ai) {
		snprintf(err, errlen, "cannot resolve the listen address: %s", gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to the main socket: %s", strerror(errno));
		return -1;
	}
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int64_t left = deadline_ms - util_now_ms();
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (poll(&p, 1, left > 0 ? (int)left : 0) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 ||
	    soerr != 0) {
		snprintf(err, errlen, "cannot connect to the main socket: %s", soerr ? strerror(soerr) : "timed out");
		close(fd);
		return -1;
	}
	return fd;
}

struct asktx_buf {
	uint8_t *d;
	size_t len, cap;
};

static int asktx_put(struct asktx_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t c = b->cap ? b->cap * 2 : 4096;
		while (c < b->len + n)
			c *= 2;
		uint8_t *d = realloc(b->d, c);
		if (!d)
			return -1;
		b->d = d;
		b->cap = c;
	}
	memcpy(b->d + b->len, p, n);
	b->len += n;
	return 0;
}

/* A record of type with content[0..n) (n <= 65535). */
static int asktx_record(struct asktx_buf *b, int type, const void *content, size_t n)
{
	uint8_t h[8] = { 1, (uint8_t)type, 0, ASKTX_REQUEST_ID, (uint8_t)(n >> 8), (uint8_t)n, 0, 0 };
	return asktx_put(b, h, 8) | (n ? asktx_put(b, content, n) : 0);
}

/* A name-value pair of the params stream. */
static int asktx_pair(struct asktx_buf *b, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	uint8_t h[8];
	size_t k = 0;
	for (size_t l = 0, *x = &nl; l < 2; l++, x = &vl) {
		if (*x < 128) {
			h[k++] = (uint8_t)*x;
		} else {
			h[k++] = (uint8_t)(0x80 | (*x >> 24));
			h[k++] = (uint8_t)(*x >> 16);
			h[k++] = (uint8_t)(*x >> 8);
			h[k++] = (uint8_t)*x;
		}
	}
	return asktx_put(b, h, k) | asktx_put(b, name, nl) | asktx_put(b, value, vl);
}

/* Frame stream (type) content into records of at most 32 KiB, then its empty end record. */
static int asktx_stream(struct asktx_buf *out, int type, const uint8_t *d, size_t n)
{
	int rc = 0;
	for (size_t off = 0; off < n && rc == 0; off += 32768)
		rc = asktx_record(out, type, d + off, n - off < 32768 ? n - off : 32768);
	return rc | asktx_record(out, type, NULL, 0);
}

static int asktx_io(int fd, bool out, void *buf, size_t n, int64_t deadline_ms)
{
	size_t done = 0;
	while (done < n) {
		ssize_t k = out ? send(fd, (char *)buf + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT)
		                : recv(fd, (char *)buf + done, n - done, MSG_DONTWAIT);
		if (k > 0) {
			done += (size_t)k;
			continue;
		}
		if (k == 0)
			return -1;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		int64_t left = deadline_ms - util_now_ms();
		struct pollfd p = { .fd = fd, .events = out ? POLLOUT : POLLIN };
		if (left <= 0 || poll(&p, 1, (int)left) < 0)
			return -1;
	}
	return 0;
}

int asktx_call(const struct np_conf *conf, const char *uri, const char *body, const char *request_id,
               const char *authorization, int64_t deadline_ms, int *status, char **out, char *err, size_t errlen)
{
	*out = NULL;
	*status = 0;
	struct asktx_buf req = { 0 }, params = { 0 }, ans = { 0 };
	char clen[24], rid[96];
	snprintf(clen, sizeof(clen), "%zu", strlen(body));
	snprintf(rid, sizeof(rid), "%.64s-tx", request_id);
	uint8_t begin[8] = { 0, 1, 0, 0, 0, 0, 0, 0 }; /* the responder role, no keep-alive */
	int rc = asktx_record(&req, 1, begin, sizeof(begin)) | asktx_pair(&params, "REQUEST_METHOD", "POST") |
	         asktx_pair(&params, "REQUEST_URI", uri) | asktx_pair(&params, "CONTENT_TYPE", "application/json") |
	         asktx_pair(&params, "CONTENT_LENGTH", clen) | asktx_pair(&params, "REQUEST_ID", rid) |
	         asktx_pair(&params, "NEONPOOL_ASK_TX", asktx_key) |
	         (authorization ? asktx_pair(&params, "HTTP_AUTHORIZATION", authorization) : 0);
	rc = rc || params.len > 65535 ? -1 : rc;
	if (rc == 0)
		rc = asktx_stream(&req, 4, params.d, params.len) | asktx_stream(&req, 5, (const uint8_t *)body, strlen(body));
	explicit_bzero(params.d, params.cap);
	free(params.d);
	if (rc != 0) {
		snprintf(err, errlen, "out of memory building the internal request");
		free(req.d);
		return -1;
	}
	int fd = asktx_connect(conf->listen, deadline_ms, err, errlen);
	if (fd < 0) {
		explicit_bzero(req.d, req.cap);
		free(req.d);
		return -1;
	}
	rc = asktx_io(fd, true, req.d, req.len, deadline_ms);
	int sent = rc;
	explicit_bzero(req.d, req.cap);
	free(req.d);
	bool ended = false;
	while (rc == 0 && !ended) {
		uint8_t h[8], content[65535 + 255];
		if (asktx_io(fd, false, h, 8, deadline_ms) < 0) {
			rc = -1;
			break;
		}
		size_t n = (size_t)h[4] << 8 | h[5], pad = h[6];
		if (h[0] != 1 || asktx_io(fd, false, content, n + pad, deadline_ms) < 0) {
			rc = -1;
			break;
		}
		if (h[1] == 6 && (ans.len + n > ASKTX_ANSWER_MAX || asktx_put(&ans, content, n) < 0))
			rc = -1;
		ended = h[1] == 3;
	}
	close(fd);
	/* from here the request was sent whole: the main pool may have run (and committed) it */
	if (sent != 0) {
		snprintf(err, errlen, "the internal request could not be sent in time");
		free(ans.d);
		return -1;
	}
	if (rc != 0 || asktx_put(&ans, "", 1) < 0) {
		snprintf(err, errlen, "the main pool did not answer the internal request in time (or over %u bytes)",
		         ASKTX_ANSWER_MAX);
		free(ans.d);
		return -2;
	}
	/* "Status: NNN ...\r\n" headers, an empty line, the body */
	char *text = (char *)ans.d, *sep = strstr(text, "\r\n\r\n");
	if (!sep || strncmp(text, "Status: ", 8) != 0 || text[8] < '1' || text[8] > '5' || text[9] < '0' ||
	    text[9] > '9' || text[10] < '0' || text[10] > '9') {
		snprintf(err, errlen, "malformed answer to the internal request");
		free(ans.d);
		return -2;
	}
	*status = (text[8] - '0') * 100 + (text[9] - '0') * 10 + (text[10] - '0');
	*out = strdup(sep + 4);
	free(ans.d);
	if (!*out) {
		snprintf(err, errlen, "out of memory");
		return -2;
	}
	return 0;
}
