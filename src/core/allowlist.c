/* SPDX-License-Identifier: PostgreSQL */
/* allowlist.c - peer address allow-lists: "addr" or "addr/bits", IPv4 and IPv6, comma-separated. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "allowlist.h"

static int allowlist_item(const char *item, struct allowlist_entry *e, char *msg, size_t n)
{
	char addr[64];
	const char *slash = strchr(item, '/');
	size_t alen = slash ? (size_t)(slash - item) : strlen(item);
	if (alen == 0 || alen >= sizeof(addr)) {
		snprintf(msg, n, "'%s' is not an address or address/bits", item);
		return -1;
	}
	memcpy(addr, item, alen);
	addr[alen] = '\0';
	int maxbits;
	memset(e, 0, sizeof(*e));
	if (inet_pton(AF_INET, addr, e->addr) == 1) {
		e->family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, addr, e->addr) == 1) {
		e->family = AF_INET6;
		maxbits = 128;
	} else {
		snprintf(msg, n, "'%s' is not an IPv4 or IPv6 address", addr);
		return -1;
	}
	e->bits = maxbits;
	if (slash) {
		char *end;
		const char *b = slash + 1;
		long v = strtol(b, &end, 10);
		if (b[0] < '0' || b[0] > '9' || *end != '\0' || v < 0 || v > maxbits) {
			snprintf(msg, n, "'%s': prefix length must be 0..%d", item, maxbits);
			return -1;
		}
		e->bits = (int)v;
	}
	for (int i = 0; i < 16; i++) {
		int keep = e->bits - 8 * i;
		if (keep <= 0)
			e->addr[i] = 0;
		else if (keep < 8)
			e->addr[i] &= (uint8_t)(0xff << (8 - keep));
	}
	return 0;
}

int allowlist_parse(const char *spec, struct allowlist *out, char *msg, size_t n)
{
	memset(out, 0, sizeof(*out));
	if (!spec)
		spec = "";
	const char *p = spec;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		char item[80];
		if (len == 0) {
			snprintf(msg, n, spec[0] ? "empty item in the list" : "the list is empty");
			return -1;
		}
		if (len >= sizeof(item)) {
			snprintf(msg, n, "item '%.20s...' is too long", p);
			return -1;
		}
		if (out->n == ALLOWLIST_MAX) {
			snprintf(msg, n, "more than %d items", ALLOWLIST_MAX);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (allowlist_item(item, &out->e[out->n], msg, n) < 0)
			return -1;
		out->n++;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

static bool allowlist_in(const struct allowlist_entry *e, const uint8_t *a)
{
	for (int i = 0; i < 16 && 8 * i < e->bits; i++) {
		int keep = e->bits - 8 * i;
		uint8_t mask = keep >= 8 ? 0xff : (uint8_t)(0xff << (8 - keep));
		if ((a[i] & mask) != e->addr[i])
			return false;
	}
	return true;
}

bool allowlist_match(const struct allowlist *l, const struct sockaddr *addr)
{
	uint8_t a[16];
	int fam;
	if (addr->sa_family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)(const void *)addr)->sin_addr, 4);
		fam = AF_INET;
	} else if (addr->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(a, a6->s6_addr + 12, 4);
			fam = AF_INET;
		} else {
			memcpy(a, a6->s6_addr, 16);
			fam = AF_INET6;
		}
	} else {
		return true;
	}
	for (int i = 0; i < l->n; i++)
		if (l->e[i].family == fam && allowlist_in(&l->e[i], a))
			return true;
	return false;
}

int allowlist_parse_admin(const char *spec, struct allowlist *out, bool *unix_ok, char *msg, size_t n)
{
	char rest[ALLOWLIST_MAX * 80];
	size_t used = 0;
	*unix_ok = false;
	memset(out, 0, sizeof(*out));
	const char *p = spec ? spec : "";
	if (strlen(p) >= sizeof(rest)) {
		snprintf(msg, n, "the list is too long");
		return -1;
	}
	/* take the word unix out; the rest is an address list */
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		size_t t = len;
		while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\t'))
			t--;
		if (t == 0) {
			snprintf(msg, n, spec && spec[0] ? "empty item in the list" : "the list is empty");
			return -1;
		}
		if (t == 4 && strncmp(p, "unix", 4) == 0) {
			*unix_ok = true;
		} else {
			if (used)
				rest[used++] = ',';
			memcpy(rest + used, p, len);
			used += len;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	rest[used] = '\0';
	if (used == 0 && *unix_ok)
		return 0;
	return allowlist_parse(rest, out, msg, n);
}

bool allowlist_match_text(const struct allowlist *l, const char *addr)
{
	/* one object seen as each type through a union: a sockaddr_in filled here and read as a
	 * sockaddr in allowlist_match() is not a strict-aliasing accident (with separate objects
	 * GCC -O2 read the family before it was stored, and 10.9.8.7 matched 127.0.0.0/8) */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;
	memset(&u, 0, sizeof(u));
	if (addr && inet_pton(AF_INET, addr, &u.in.sin_addr) == 1) {
		u.in.sin_family = AF_INET;
		return allowlist_match(l, &u.sa);
	}
	memset(&u, 0, sizeof(u));
	if (addr && inet_pton(AF_INET6, addr, &u.in6.sin6_addr) == 1) {
		u.in6.sin6_family = AF_INET6;
		return allowlist_match(l, &u.sa);
	}
	return false; /* not an address: never allowed */
}
