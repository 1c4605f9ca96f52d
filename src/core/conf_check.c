/* SPDX-License-Identifier: PostgreSQL */
/* conf_check.c - the validators of the configuration's string values (listen addresses, conninfo,
 * readable and small files, allow-lists, the warm-up schedule, the language-model URL); each
 * answers 0, or -1 with a message that never echoes a secret. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* getline, strdup, explicit_bzero, asprintf: -std=c11 hides them */
#endif
#include "conf.h"
#include "conf_key.h"
#include "allowlist.h"
#include "sched.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <libconfig.h>
#include <libpq-fe.h>

static const char conf_ellipsis[] = "\xe2\x80\xa6"; /* U+2026 */

static int conf_check_port(const char *p, char *msg, size_t n)
{
	long port = 0;

	if (*p == '\0') {
		snprintf(msg, n, "missing port");
		return -1;
	}
	for (const char *q = p; *q; q++) {
		if (*q < '0' || *q > '9' || port > 65535) {
			snprintf(msg, n, "invalid port (expected 1..65535)");
			return -1;
		}
		port = port * 10 + (*q - '0');
	}
	if (port < 1 || port > 65535) {
		snprintf(msg, n, "invalid port (expected 1..65535)");
		return -1;
	}
	return 0;
}

static int conf_check_socket_path(const char *path, char *msg, size_t n)
{
	if (path[0] != '/') {
		snprintf(msg, n, "unix socket path must be absolute");
		return -1;
	}
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(msg, n, "unix socket path longer than %zu bytes",
			 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -1;
	}
	return 0;
}

int conf_check_listen(const char *v, char *msg, size_t n)
{
	static const char forms[] = "expected host:port, [ipv6]:port, /path, unix:/path or stdin";
	const char *colon;

	if (strcmp(v, "stdin") == 0)
		return 0;
	if (strncmp(v, "unix:", 5) == 0)
		return conf_check_socket_path(v + 5, msg, n);
	if (v[0] == '/')
		return conf_check_socket_path(v, msg, n);
	if (v[0] == '[') {
		char addr[INET6_ADDRSTRLEN];
		struct in6_addr a6;
		const char *end = strchr(v, ']');
		size_t len;

		if (!end || end[1] != ':') {
			snprintf(msg, n, "invalid listen address (%s)", forms);
			return -1;
		}
		len = (size_t)(end - v - 1);
		if (len == 0 || len >= sizeof(addr)) {
			snprintf(msg, n, "invalid ipv6 address");
			return -1;
		}
		memcpy(addr, v + 1, len);
		addr[len] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1) {
			snprintf(msg, n, "invalid ipv6 address");
			return -1;
		}
		return conf_check_port(end + 2, msg, n);
	}
	colon = strrchr(v, ':');
	if (!colon || colon == v) {
		snprintf(msg, n, "invalid listen address (%s)", forms);
		return -1;
	}
	for (const char *q = v; q < colon; q++) {
		if (*q == ':') {
			snprintf(msg, n, "an ipv6 address must be written in brackets, e.g. [::1]:9000");
			return -1;
		}
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
		      *q == '.' || *q == '-' || *q == '_')) {
			snprintf(msg, n, "invalid host name in listen address");
			return -1;
		}
	}
	return conf_check_port(colon + 1, msg, n);
}

/* Copy a libpq message into out, replacing every quoted fragment (which may echo a password)
 * and dropping the trailing newline. */
static void conf_scrub_quoted(const char *in, char *out, size_t n)
{
	struct conf_buf b = { out, n, 0 };
	const char *p = in;

	if (n)
		out[0] = '\0';
	while (*p) {
		if (*p == '"') {
			const char *close = strchr(p + 1, '"');
			conf_buf_putc(&b, '"');
			conf_buf_puts(&b, conf_ellipsis);
			conf_buf_putc(&b, '"');
			if (!close)
				break;
			p = close + 1;
			continue;
		}
		conf_buf_putc(&b, *p++);
	}
	while (b.len > 0 && (out[b.len - 1] == '\n' || out[b.len - 1] == '\r' || out[b.len - 1] == ' '))
		out[--b.len] = '\0';
}

/* A libpq port list: comma-separated, each entry empty (the default) or 1..65535. */
static int conf_check_port_list(const char *list)
{
	const char *p = list;

	for (;;) {
		long port = 0;
		const char *q = p;

		while (*q >= '0' && *q <= '9' && port <= 65535)
			port = port * 10 + (*q++ - '0');
		if (q != p && (port < 1 || port > 65535))
			return -1;
		if (*q == '\0')
			return 0;
		if (*q != ',')
			return -1;
		p = q + 1;
	}
}

int conf_check_conninfo(const char *v, char *msg, size_t n)
{
	PQconninfoOption *opts;
	char *pqerr = NULL;
	char scrubbed[256];
	int rc = 0;

	if (*v == '\0')
		return 0;
	opts = PQconninfoParse(v, &pqerr);
	if (!opts) {
		conf_scrub_quoted(pqerr ? pqerr : "out of memory", scrubbed, sizeof(scrubbed));
		snprintf(msg, n, "not a valid libpq connection string: %s", scrubbed);
		PQfreemem(pqerr);
		return -1;
	}
	/* libpq only checks the port when connecting: catch a typo at load time. */
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "port") == 0 && o->val && conf_check_port_list(o->val) < 0)
			rc = -1;
	PQconninfoFree(opts);
	if (rc < 0)
		snprintf(msg, n, "not a valid libpq connection string: invalid port");
	return rc;
}

int conf_check_readable(const char *path, char *msg, size_t n)
{
	struct stat st;
	int fd;

	if (*path == '\0')
		return 0;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(msg, n, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		snprintf(msg, n, "'%s' is a directory", path);
		return -1;
	}
	close(fd);
	return 0;
}

/* The ask workers read these files at each ask with util_read_file(): the check is that same read
 * (a regular file, or a symlink to one, within the size the worker takes). */
static int conf_check_small_file(const char *path, size_t max, char *msg, size_t n)
{
	if (*path == '\0')
		return 0;
	char *text = util_read_file(path, max, msg, n);
	if (!text)
		return -1;
	explicit_bzero(text, strlen(text));
	free(text);
	return 0;
}

int conf_check_llm_key_file(const char *path, char *msg, size_t n)
{
	return conf_check_small_file(path, NP_LLM_KEY_MAX, msg, n);
}

int conf_check_llm_prompt_file(const char *path, char *msg, size_t n)
{
	return conf_check_small_file(path, NP_LLM_PROMPT_MAX, msg, n);
}
/* control_listen: "" or the same forms as listen, except stdin (only one socket can be inherited). */
int conf_check_control_listen(const char *value, char *msg, size_t n)
{
	if (value[0] == '\0')
		return 0;
	if (strcmp(value, "stdin") == 0) {
		snprintf(msg, n, "stdin is only possible for listen");
		return -1;
	}
	return conf_check_listen(value, msg, n);
}

/* listen_allowed_clients: a non-empty list of addresses or CIDRs (src/core/allowlist.c). */
int conf_check_allowed_clients(const char *value, char *msg, size_t n)
{
	struct allowlist l;
	return allowlist_parse(value, &l, msg, n);
}

/* llm_url: "" or an http(s) URL without user information (a password there would be a secret in
 * the configuration's dump and in libcurl's messages: the key goes in llm_api_key_file). */
int conf_check_llm_url(const char *value, char *msg, size_t n)
{
	if (value[0] == '\0')
		return 0;
	const char *rest = strncmp(value, "http://", 7) == 0 ? value + 7 : strncmp(value, "https://", 8) == 0 ? value + 8 : NULL;
	if (rest == NULL || rest[0] == '\0' || rest[0] == '/') {
		snprintf(msg, n, "must be an http:// or https:// URL with a host");
		return -1;
	}
	size_t host = strcspn(rest, "/?#");
	if (memchr(rest, '@', host)) {
		snprintf(msg, n, "must not contain user information (put the API key in llm_api_key_file)");
		return -1;
	}
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			snprintf(msg, n, "must not contain spaces or control characters");
			return -1;
		}
	return 0;
}

int conf_check_schedule(const char *value, char *msg, size_t n)
{
	struct sched s;
	return sched_parse(value, &s, msg, n);
}

int conf_check_timezone(const char *value, char *msg, size_t n)
{
	if (sched_tz_valid(value))
		return 0;
	snprintf(msg, n, "not a time zone this machine knows (an IANA name such as Europe/Berlin, from /usr/share/zoneinfo)");
	return -1;
}

int conf_check_admin_allow(const char *value, char *msg, size_t n)
{
	struct allowlist l;
	bool unix_ok;
	return allowlist_parse_admin(value, &l, &unix_ok, msg, n);
}

int conf_rate_parse(const char *value, int *count, int *window_s, char *msg, size_t n)
{
	*count = 0;
	*window_s = 60;
	if (value == NULL || value[0] == '\0' || strcmp(value, "0") == 0)
		return 0;
	char *end;
	errno = 0;
	long c = strtol(value, &end, 10);
	if (end == value || errno != 0 || c < 1 || c > 1000000 || *end != '/') {
		snprintf(msg, n, "expected N/s, N/min or N/h with N from 1 to 1000000 (\"5/min\"), or \"\" for no limit");
		return -1;
	}
	static const struct { const char *unit; int s; } units[] = {
		{ "s", 1 }, { "sec", 1 }, { "second", 1 }, { "m", 60 }, { "min", 60 }, { "minute", 60 },
		{ "h", 3600 }, { "hour", 3600 },
	};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end + 1, units[i].unit) == 0) {
			*count = (int)c;
			*window_s = units[i].s;
			return 0;
		}
	snprintf(msg, n, "unknown unit \"%s\": expected s, min or h (\"5/min\")", end + 1);
	return -1;
}

int conf_check_rate(const char *value, char *msg, size_t n)
{
	int c, w;
	return conf_rate_parse(value, &c, &w, msg, n);
}
