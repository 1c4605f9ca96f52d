/* SPDX-License-Identifier: PostgreSQL */
/* conf_load.c - reading a configuration file: libconfig's parse, each setting checked against the
 * key table (type, range, validator, did-you-mean for an unknown key), no @include, the ask
 * socket's reachability, DATABASE_URL from the environment; errors name file, line and key. */
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

static const char *conf_type_word(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_FLOAT: return "a float";
	default: return "an integer";
	}
}

static bool conf_is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* A mode written as an integer. libconfig 1.5 and 1.7 read 0660 as decimal 660, so its decimal
 * digits are taken as the octal digits (as chmod does); 1.6 reads a leading 0 as octal itself;
 * a hexadecimal (or, where libconfig knows it, octal) literal is taken as is. */
static int conf_mode_from_int(const config_setting_t *s, long long *out)
{
	long long v = config_setting_get_int64(s), mode = 0, scale = 1;
	int fmt = config_setting_get_format(s);

#ifdef CONFIG_FORMAT_OCT
	if (fmt == CONFIG_FORMAT_OCT)
		fmt = CONFIG_FORMAT_HEX;
#endif
#if LIBCONFIG_VER_MAJOR == 1 && LIBCONFIG_VER_MINOR == 6
	fmt = CONFIG_FORMAT_HEX;
#endif
	if (fmt == CONFIG_FORMAT_HEX || v < 0) {
		*out = v;
		return 0;
	}
	for (; v > 0; v /= 10, scale *= 8) {   /* at most 19 digits: 8^19 fits */
		if (v % 10 > 7)
			return -1;
		mode += (v % 10) * scale;
	}
	*out = mode;
	return 0;
}

static int conf_mode_from_string(const char *str, long long *out)
{
	long long v = 0;

	if (*str == '\0' || strlen(str) > 5)
		return -1;
	for (const char *p = str; *p; p++) {
		if (*p < '0' || *p > '7')
			return -1;
		v = v * 8 + (*p - '0');
	}
	*out = v;
	return 0;
}

static int conf_set_from(struct np_conf *c, const struct conf_key *k, const config_setting_t *s,
			 const char *file, int line, struct np_conf_error *err)
{
	const char *str;
	long long v;

	if (config_setting_is_aggregate(s)) {
		conf_set_error(err, file, line, k->name, "expected %s, not %s",
			       k->type == CONF_BOOL ? "true or false" :
			       k->type == CONF_INT || k->type == CONF_MODE ? "an integer" : "a string",
			       conf_type_word(s));
		return -1;
	}
	switch (k->type) {
	case CONF_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
			conf_set_error(err, file, line, k->name, "expected true or false");
			return -1;
		}
		*conf_bool_at(c, k) = config_setting_get_bool(s) != 0;
		return 0;
	case CONF_INT:
	case CONF_MODE:
		if (conf_is_int(s)) {
			if (k->type == CONF_INT) {
				v = config_setting_get_int64(s);
			} else if (conf_mode_from_int(s, &v) < 0) {
				conf_set_error(err, file, line, k->name,
					       "expected octal digits, e.g. 0660 or \"0660\"");
				return -1;
			}
		} else if (k->type == CONF_MODE && config_setting_type(s) == CONFIG_TYPE_STRING) {
			if (conf_mode_from_string(config_setting_get_string(s), &v) < 0) {
				conf_set_error(err, file, line, k->name,
					       "expected an octal mode, e.g. \"0660\"");
				return -1;
			}
		} else {
			conf_set_error(err, file, line, k->name, "expected an integer");
			return -1;
		}
		if (v < k->min || v > k->max) {
			if (k->type == CONF_MODE && v >= 0)
				conf_set_error(err, file, line, k->name, "value %s%llo out of range (%s%llo..0%llo)",
					       v ? "0" : "", (unsigned long long)v, k->min ? "0" : "",
					       (unsigned long long)k->min, (unsigned long long)k->max);
			else
				conf_set_error(err, file, line, k->name, "value %lld out of range (%lld..%lld)",
					       v, k->min, k->max);
			return -1;
		}
		*conf_int_at(c, k) = (int)v;
		return 0;
	case CONF_STRING:
	case CONF_ENUM:
		if (config_setting_type(s) != CONFIG_TYPE_STRING) {
			conf_set_error(err, file, line, k->name, "expected a string");
			return -1;
		}
		str = config_setting_get_string(s);
		if (k->type == CONF_ENUM) {
			char allowed[256] = "";
			struct conf_buf b = { allowed, sizeof(allowed), 0 };

			for (int i = 0; k->allowed[i]; i++) {
				if (strcmp(k->allowed[i], str) == 0) {
					*conf_int_at(c, k) = i;
					return 0;
				}
				if (i)
					conf_buf_puts(&b, ", ");
				conf_buf_puts(&b, k->allowed[i]);
			}
			conf_set_error(err, file, line, k->name, "invalid value '%.64s' (allowed: %s)", str, allowed);
			return -1;
		}
		{
			char *dup = strdup(str);
			if (!dup) {
				conf_set_error(err, file, line, k->name, "out of memory");
				return -1;
			}
			free(*conf_str_at(c, k));
			*conf_str_at(c, k) = dup;
		}
		return 0;
	}
	return -1;
}

/* Keys that were removed: the error says what replaced them instead of guessing a name. */
static const char *conf_retired(const char *name)
{
	static const struct {
		const char *name, *why;
	} retired[] = {
		{ "crash_max", "no longer a key: the master never stops respawning, it backs off (respawn_backoff_max_ms); remove it" },
		{ "crash_window_s", "no longer a key: the master never stops respawning, it backs off (respawn_stable_ms); remove it" },
	};
	for (size_t i = 0; i < sizeof(retired) / sizeof(retired[0]); i++)
		if (strcmp(retired[i].name, name) == 0)
			return retired[i].why;
	return NULL;
}

static int conf_load_settings(struct np_conf *c, config_t *cfg, const char *path, int *lines,
			      struct np_conf_error *err)
{
	config_setting_t *root;

	if (!config_read_file(cfg, path)) {
		if (config_error_type(cfg) == CONFIG_ERR_FILE_IO && !config_error_file(cfg))
			conf_set_error(err, path, 0, "", "cannot read the file");
		else
			conf_set_error(err, config_error_file(cfg) ? config_error_file(cfg) : path,
				       config_error_line(cfg), "", "%s", config_error_text(cfg));
		return -1;
	}
	root = config_root_setting(cfg);
	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned int)i);
		const char *name = config_setting_name(s);
		const char *file = config_setting_source_file(s) ? config_setting_source_file(s) : path;
		int line = config_setting_source_line(s);
		const struct conf_key *k = name ? conf_find(name) : NULL;

		if (!k) {
			const char *hint = name ? conf_closest(name) : NULL;
			const char *retired = name ? conf_retired(name) : NULL;
			if (retired)
				conf_set_error(err, file, line, name, "%s", retired);
			else if (hint)
				conf_set_error(err, file, line, name, "unknown key (did you mean '%s'?)", hint);
			else
				conf_set_error(err, file, line, name ? name : "", "unknown key");
			return -1;
		}
		if (conf_set_from(c, k, s, file, line, err) < 0)
			return -1;
		lines[k - conf_keys] = line;
	}
	return 0;
}

/* Refuse @include before libconfig reads the file. The configuration is one flat table, and libconfig 1.5
 * (Debian 12) has no hook for includes: one that names a directory makes it call exit(2) ("input in flex
 * scanner failed"), one that names a FIFO blocks, so a reload would end or hang the master (libconfig
 * issue 292; reproduced by fuzz_conf and a live SIGHUP). Its scanner takes "@include" only at the start
 * of a line, after blanks. Also reports a file that cannot be read (a directory) with its reason. */
static int conf_check_no_include(FILE *fp, const char *path, struct np_conf_error *err)
{
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, rc = 0;

	errno = 0;
	while (getline(&line, &cap, fp) >= 0) {
		const char *p = line;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "@include", 8) == 0) {
			conf_set_error(err, path, lineno, "",
				       "@include is not supported (every key belongs in this one file)");
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(fp)) {
		conf_set_error(err, path, 0, "", "cannot read: %s", strerror(errno ? errno : EIO));
		rc = -1;
	}
	free(line);
	return rc;
}

/* The address an ask worker's internal request comes from: asktx connects to listen's host (the
 * first address it resolves to, 127.0.0.1 for an empty host), and a connection to a local
 * address has that address as its source, except that a wildcard or loopback host is reached
 * over loopback (127.0.0.1, ::1). Written into ss and text; -1 when the host does not resolve
 * (then binding it fails at start, with its own message). */
static int conf_ask_peer(const char *listen, struct sockaddr_storage *ss, char *text, size_t n)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	size_t hl = colon ? (size_t)(colon - listen) : 0;
	if (colon == NULL || hl >= sizeof(host))
		return -1;
	memcpy(host, listen, hl);
	host[hl] = '\0';
	char *h = host;
	if (hl > 1 && h[0] == '[' && h[hl - 1] == ']') {
		h[hl - 1] = '\0';
		h++;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	if (getaddrinfo(h[0] ? h : "127.0.0.1", NULL, &hints, &ai) != 0 || ai == NULL)
		return -1;
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen < sizeof(*ss) ? ai->ai_addrlen : sizeof(*ss));
	freeaddrinfo(ai);
	const void *bin;
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		uint32_t v = ntohl(a->sin_addr.s_addr);
		if (v == INADDR_ANY || v >> 24 == 127)
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		bin = &a->sin_addr;
	} else if (ss->ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
			a->sin6_addr = in6addr_loopback;
		bin = &a->sin6_addr;
	} else {
		return -1;
	}
	return inet_ntop(ss->ss_family, bin, text, (socklen_t)n) ? 0 : -1;
}

/* ask_listen needs a main socket its workers can reach (their two short transactions are an
 * internal request to listen): not the inherited stdin, and on TCP from an address
 * listen_allowed_clients allows. 0, or -1 with err naming the key to change. */
static int conf_check_ask_reach(const struct np_conf *c, const char *path, const int *lines,
                                struct np_conf_error *err)
{
	int ask_line = lines[conf_find("ask_listen") - conf_keys];
	int acl_line = lines[conf_find("listen_allowed_clients") - conf_keys];
	if (c->ask_listen[0] == '\0')
		return 0;
	if (strcmp(c->listen, "stdin") == 0) {
		conf_set_error(err, path, ask_line, "ask_listen",
		               "needs a main socket the ask workers can connect to, but listen = \"stdin\" is "
		               "inherited: set listen to a socket path or address, or ask_listen = \"\"");
		return -1;
	}
	if (c->listen[0] == '/' || strncmp(c->listen, "unix:", 5) == 0)
		return 0;
	struct sockaddr_storage ss;
	char peer[INET6_ADDRSTRLEN], msg[128];
	struct allowlist acl;
	if (conf_ask_peer(c->listen, &ss, peer, sizeof(peer)) < 0 ||
	    allowlist_parse(c->listen_allowed_clients, &acl, msg, sizeof(msg)) < 0 ||
	    allowlist_match(&acl, (struct sockaddr *)&ss))
		return 0;
	conf_set_error(err, path, acl_line, "listen_allowed_clients",
	               "does not allow %s, from which the ask workers (ask_listen) connect to listen = \"%s\": "
	               "add %s, or leave ask_listen empty",
	               peer, c->listen, peer);
	return -1;
}

int conf_load(struct np_conf *c, const char *path, struct np_conf_error *err)
{
	int lines[CONF_KEYS_MAX] = { 0 };
	bool url_from_env = false;
	config_t cfg;
	FILE *fp;
	int rc;

	if (err)
		memset(err, 0, sizeof(*err));
	if (!path)
		path = NP_DEFAULT_CONFIG;
	if (conf_defaults(c) < 0) {
		conf_set_error(err, path, 0, "", "out of memory");
		return -1;
	}
	free(c->file);
	c->file = strdup(path);
	if (!c->file) {
		conf_set_error(err, path, 0, "", "out of memory");
		conf_free(c);
		return -1;
	}
	/* libconfig reports only "file I/O error": open it first for the reason. */
	fp = fopen(path, "r");
	if (!fp) {
		conf_set_error(err, path, 0, "", "cannot open: %s", strerror(errno));
		conf_free(c);
		return -1;
	}
	rc = conf_check_no_include(fp, path, err);
	fclose(fp);
	if (rc < 0) {
		conf_free(c);
		return -1;
	}

	config_init(&cfg);
	rc = conf_load_settings(c, &cfg, path, lines, err);
	config_destroy(&cfg);
	if (rc < 0) {
		conf_free(c);
		return -1;
	}

	if (c->database_url[0] == '\0') {
		const char *env = getenv("DATABASE_URL");
		if (env && *env) {
			char *dup = strdup(env);
			if (!dup) {
				conf_set_error(err, path, 0, "database_url", "out of memory");
				conf_free(c);
				return -1;
			}
			free(c->database_url);
			c->database_url = dup;
			url_from_env = true;
		}
	}

	for (size_t i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];
		char msg[sizeof(err->message) - 64];

		if (k->type != CONF_STRING || !k->check)
			continue;
		if (k->check(*conf_str_at(c, k), msg, sizeof(msg)) == 0)
			continue;
		if (k->offset == offsetof(struct np_conf, database_url) && url_from_env)
			conf_set_error(err, "", 0, k->name, "%s (from the environment variable DATABASE_URL)", msg);
		else
			conf_set_error(err, path, lines[i], k->name, "%s", msg);
		conf_free(c);
		return -1;
	}
	if (conf_check_ask_reach(c, path, lines, err) < 0) {
		conf_free(c);
		return -1;
	}
	return 0;
}

void conf_error_format(const struct np_conf_error *err, char *buf, size_t n)
{
	struct conf_buf b = { buf, n, 0 };
	char num[16];

	if (n == 0)
		return;
	buf[0] = '\0';
	if (err->file[0]) {
		conf_buf_puts(&b, err->file);
		if (err->line > 0) {
			snprintf(num, sizeof(num), ":%d", err->line);
			conf_buf_puts(&b, num);
		}
		conf_buf_puts(&b, ": ");
	}
	if (err->key[0]) {
		conf_buf_puts(&b, "key '");
		conf_buf_puts(&b, err->key);
		conf_buf_puts(&b, "': ");
	}
	conf_buf_puts(&b, err->message);
}