/* SPDX-License-Identifier: PostgreSQL */
/* resolve.c - the database host names resolved with a deadline and cached per process.
 *
 * libpq resolves host names with a blocking getaddrinfo() inside PQconnectStartParams and
 * PQconnectPoll, outside every deadline of ours: a resolver that does not answer held a request
 * (and the supervisor's 50 ms tick) for the resolver's whole timeout (30 s in the test, issue 6
 * defect 8). Here names are looked up with glibc's getaddrinfo_a, waited for with gai_suspend
 * until the connect deadline, and cached with a TTL and refreshed ahead from the idle loop, so a
 * connect normally finds its addresses without any lookup. libpq then gets host = the name
 * (repeated once per address: SNI and verify-full use it) and hostaddr = the addresses.
 * A lookup that outlives its caller's deadline goes on in glibc's helper thread (it cannot be
 * cancelled once running) and the next connect uses its answer. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "resolve.h"
#include "util.h"

#define RESOLVE_CACHE 16          /* names per process: two URLs of up to 8 hosts */
#define RESOLVE_RETRY_MS 1000     /* a failed lookup is not repeated sooner (negative cache) */

struct resolve_lookup {
	struct gaicb cb;
	struct addrinfo hints;
	char name[256];
};

struct resolve_entry {
	char name[256];               /* "" free */
	char addrs[RESOLVE_MAX_ADDRS][RESOLVE_ADDR_LEN];
	int naddrs;
	int64_t resolved_ms;          /* when addrs were found */
	int64_t finished_ms;          /* when the last lookup ended */
	int64_t started_ms;           /* when the lookup in flight started */
	struct resolve_lookup *pending; /* in flight, owned until glibc is done with it */
	char error[128];              /* the last lookup's failure, "" after a success */
};

static struct {
	int ttl_ms;
	int max_wait_ms;
	struct resolve_entry cache[RESOLVE_CACHE];
	/* the last split, to spare the idle loop a PQconninfoParse per turn */
	char split_of[2][RESOLVE_LIST_LEN * 2];
	struct np_resolve_hosts split[2];
	int split_next;
} resolve_state = { .ttl_ms = 60000, .max_wait_ms = -1 };

/* ---- the conninfo ------------------------------------------------------------------------ */

/* Split a comma-separated libpq list into at most max entries of cap bytes; returns the count
 * or -1 when it does not fit. "" is one empty entry, as libpq counts it. */
static int resolve_list(const char *s, char (*out)[256], size_t cap, int max)
{
	int n = 0;
	for (;;) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		if (n >= max || len >= cap)
			return -1;
		memcpy(out[n], s, len);
		out[n][len] = '\0';
		n++;
		if (!comma)
			return n;
		s = comma + 1;
	}
}

static bool resolve_is_literal(const char *h)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

int resolve_split(const char *conninfo, struct np_resolve_hosts *h, char *err, size_t errlen)
{
	memset(h, 0, sizeof(*h));
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	if (opts == NULL) {
		snprintf(err, errlen, "invalid database URL: %s", perr ? perr : "out of memory");
		PQfreemem(perr);
		return -1;
	}
	const char *host = NULL, *port = NULL, *hostaddr = NULL, *service = NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "service") == 0)
			service = o->val;
	}
	/* libpq's environment defaults for what the string does not say */
	if (host == NULL || host[0] == '\0')
		host = getenv("PGHOST");
	if (port == NULL || port[0] == '\0')
		port = getenv("PGPORT");
	if (hostaddr == NULL || hostaddr[0] == '\0')
		hostaddr = getenv("PGHOSTADDR");
	if (service == NULL || service[0] == '\0')
		service = getenv("PGSERVICE");
	int rc = 0;
	h->pass_through = (hostaddr && hostaddr[0]) || (service && service[0]);
	if (!h->pass_through && host && host[0]) {
		char ports[RESOLVE_MAX_HOSTS][256];
		int np = 0;
		h->n = resolve_list(host, h->host, sizeof(h->host[0]), RESOLVE_MAX_HOSTS);
		if (h->n > 0 && port && port[0])
			np = resolve_list(port, ports, sizeof(h->port[0]), RESOLVE_MAX_HOSTS);
		if (h->n < 0) {
			snprintf(err, errlen, "the database URL has more than %d hosts", RESOLVE_MAX_HOSTS);
			rc = -1;
		} else if (np < 0 || (np > 1 && np != h->n)) {
			snprintf(err, errlen, "the database URL's ports do not match its hosts");
			rc = -1;
		} else {
			for (int i = 0; i < h->n; i++) {
				const char *p = np == 0 ? "" : ports[np == 1 ? 0 : i];
				size_t pl = strnlen(p, sizeof(h->port[i]) - 1); /* resolve_list kept it shorter */
				memcpy(h->port[i], p, pl);
				h->port[i][pl] = '\0';
				const char *e = h->host[i];
				if (e[0] == '\0' || e[0] == '/' || e[0] == '@')
					h->kind[i] = RESOLVE_SOCKET;
				else if (resolve_is_literal(e))
					h->kind[i] = RESOLVE_LITERAL;
				else
					h->kind[i] = RESOLVE_NAME, h->any_name = true;
			}
		}
	}
	PQconninfoFree(opts);
	if (rc < 0)
		memset(h, 0, sizeof(*h));
	return rc;
}

/* Append ",item" (or "item" first) to list; false when it does not fit. */
static bool resolve_append(char *list, size_t cap, bool first, const char *item)
{
	size_t len = strlen(list);
	int w = snprintf(list + len, cap - len, "%s%s", first ? "" : ",", item);
	return w >= 0 && (size_t)w < cap - len;
}

int resolve_build(const struct np_resolve_hosts *h, const char addrs[][RESOLVE_MAX_ADDRS][RESOLVE_ADDR_LEN],
                  const int *naddrs, struct np_resolved *out)
{
	memset(out, 0, sizeof(*out));
	bool any_port = false;
	for (int i = 0; i < h->n; i++)
		any_port |= h->port[i][0] != '\0';
	int n = 0;
	for (int i = 0; i < h->n; i++) {
		int k = h->kind[i] == RESOLVE_NAME ? naddrs[i] : 1;
		for (int j = 0; j < k; j++) {
			const char *a = h->kind[i] == RESOLVE_NAME ? addrs[i][j]
			              : h->kind[i] == RESOLVE_LITERAL ? h->host[i] : "";
			bool ok = resolve_append(out->host, sizeof(out->host), n == 0, h->host[i]) &&
			          resolve_append(out->hostaddr, sizeof(out->hostaddr), n == 0, a) &&
			          (!any_port || resolve_append(out->port, sizeof(out->port), n == 0, h->port[i]));
			if (!ok) {
				memset(out, 0, sizeof(*out));
				return -1;
			}
			n++;
		}
	}
	out->use = n > 0;
	return n;
}

/* ---- the cache --------------------------------------------------------------------------- */

void resolve_init(int ttl_s, int max_wait_ms)
{
	resolve_state.ttl_ms = ttl_s * 1000;
	resolve_state.max_wait_ms = max_wait_ms;
}

/* The split of conninfo, from the last two seen. NULL with err when it cannot be split. */
static const struct np_resolve_hosts *resolve_split_cached(const char *conninfo, char *err, size_t errlen)
{
	for (int i = 0; i < 2; i++)
		if (strcmp(resolve_state.split_of[i], conninfo) == 0)
			return &resolve_state.split[i];
	int i = resolve_state.split_next;
	if (resolve_split(conninfo, &resolve_state.split[i], err, errlen) < 0)
		return NULL;
	/* a conninfo too long to remember is split again each time */
	if (strlen(conninfo) < sizeof(resolve_state.split_of[i])) {
		snprintf(resolve_state.split_of[i], sizeof(resolve_state.split_of[i]), "%s", conninfo);
		resolve_state.split_next = 1 - i;
	}
	return &resolve_state.split[i];
}

static struct resolve_entry *resolve_entry_for(const char *name)
{
	struct resolve_entry *free_e = NULL, *oldest = NULL;
	for (int i = 0; i < RESOLVE_CACHE; i++) {
		struct resolve_entry *e = &resolve_state.cache[i];
		if (strcmp(e->name, name) == 0)
			return e;
		if (e->name[0] == '\0' && free_e == NULL)
			free_e = e;
		else if (e->name[0] && e->pending == NULL && (oldest == NULL || e->finished_ms < oldest->finished_ms))
			oldest = e;
	}
	struct resolve_entry *e = free_e ? free_e : oldest;
	if (e == NULL)
		return NULL; /* every entry has a lookup in flight */
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	return e;
}

/* Take the answer of a finished lookup. */
static void resolve_collect(struct resolve_entry *e)
{
	struct resolve_lookup *l = e->pending;
	if (l == NULL)
		return;
	int rc = gai_error(&l->cb);
	if (rc == EAI_INPROGRESS)
		return;
	int64_t now = util_now_ms();
	e->pending = NULL;
	e->finished_ms = now;
	if (rc == 0) {
		int n = 0;
		for (struct addrinfo *ai = l->cb.ar_result; ai && n < RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
			char a[RESOLVE_ADDR_LEN];
			const void *src = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
			                : ai->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
			                                            : NULL;
			if (src == NULL || inet_ntop(ai->ai_family, src, a, sizeof(a)) == NULL)
				continue;
			bool dup = false;
			for (int j = 0; j < n; j++)
				dup |= strcmp(e->addrs[j], a) == 0;
			if (!dup)
				memcpy(e->addrs[n++], a, sizeof(a));
		}
		if (n > 0) {
			e->naddrs = n;
			e->resolved_ms = now;
			e->error[0] = '\0';
		} else {
			snprintf(e->error, sizeof(e->error), "no usable address");
		}
	} else {
		snprintf(e->error, sizeof(e->error), "%s", gai_strerror(rc));
		/* the name is gone: forget it; a resolver that failed (EAI_AGAIN, timeout) keeps the
		 * old addresses, so an outage of DNS alone does not stop a pool that was working */
		if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_FAIL) {
			e->naddrs = 0;
			e->resolved_ms = 0;
		}
	}
	freeaddrinfo(l->cb.ar_result);
	free(l);
}

/* Start a lookup of e's name in the background. */
static void resolve_start(struct resolve_entry *e)
{
	if (e->pending)
		return;
	struct resolve_lookup *l = calloc(1, sizeof(*l));
	if (l == NULL) {
		snprintf(e->error, sizeof(e->error), "out of memory");
		e->finished_ms = util_now_ms();
		return;
	}
	snprintf(l->name, sizeof(l->name), "%s", e->name);
	l->hints.ai_family = AF_UNSPEC;      /* as libpq asks */
	l->hints.ai_socktype = SOCK_STREAM;
	l->cb.ar_name = l->name;
	l->cb.ar_request = &l->hints;
	struct gaicb *list[1] = { &l->cb };
	int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (rc != 0) {
		snprintf(e->error, sizeof(e->error), "%s", gai_strerror(rc));
		e->finished_ms = util_now_ms();
		free(l);
		return;
	}
	e->pending = l;
	e->started_ms = util_now_ms();
}

/* Whether e's addresses are due for a refresh (3/4 of the TTL: ahead of its end). */
static bool resolve_due(const struct resolve_entry *e, int64_t now)
{
	if (e->pending)
		return false;
	if (e->naddrs == 0)
		return e->finished_ms == 0 || now - e->finished_ms >= RESOLVE_RETRY_MS;
	return now - e->resolved_ms >= (int64_t)resolve_state.ttl_ms * 3 / 4;
}

void resolve_refresh(const char *conninfo)
{
	char err[128];
	const struct np_resolve_hosts *h = resolve_split_cached(conninfo, err, sizeof(err));
	if (h == NULL || h->pass_through || !h->any_name)
		return;
	int64_t now = util_now_ms();
	for (int i = 0; i < h->n; i++) {
		if (h->kind[i] != RESOLVE_NAME)
			continue;
		struct resolve_entry *e = resolve_entry_for(h->host[i]);
		if (e == NULL)
			continue;
		resolve_collect(e);
		if (resolve_state.ttl_ms > 0 && resolve_due(e, now))
			resolve_start(e);
	}
}

int resolve_conninfo(const char *conninfo, int64_t deadline_ms, struct np_resolved *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	const struct np_resolve_hosts *h = resolve_split_cached(conninfo, err, errlen);
	if (h == NULL || h->pass_through || !h->any_name)
		return 0; /* nothing to look up, or libpq's own words about the URL are better */

	int64_t now = util_now_ms(), t0 = now;
	struct resolve_entry *ent[RESOLVE_MAX_HOSTS] = { 0 };
	bool wait[RESOLVE_MAX_HOSTS] = { 0 };
	for (int i = 0; i < h->n; i++) {
		if (h->kind[i] != RESOLVE_NAME)
			continue;
		struct resolve_entry *e = ent[i] = resolve_entry_for(h->host[i]);
		if (e == NULL)
			continue;
		resolve_collect(e);
		if (resolve_state.ttl_ms == 0) {
			/* no cache: a fresh answer every time (one lookup in flight per name) */
			resolve_start(e);
			wait[i] = true;
		} else if (e->naddrs > 0) {
			if (resolve_due(e, now))
				resolve_start(e); /* ahead of the TTL's end; this connect uses what we have */
		} else if (resolve_due(e, now) || e->pending) {
			resolve_start(e);
			wait[i] = true;
		}
	}
	/* wait for what we need, until the deadline (or the caller's cap on waiting) */
	int64_t until = deadline_ms;
	if (resolve_state.max_wait_ms >= 0 && now + resolve_state.max_wait_ms < until)
		until = now + resolve_state.max_wait_ms;
	for (;;) {
		const struct gaicb *list[RESOLVE_MAX_HOSTS];
		int n = 0;
		for (int i = 0; i < h->n; i++) {
			if (!wait[i] || ent[i] == NULL)
				continue;
			resolve_collect(ent[i]);
			if (ent[i]->pending)
				list[n++] = &ent[i]->pending->cb;
			else
				wait[i] = false;
		}
		now = util_now_ms();
		if (n == 0 || now >= until)
			break;
		int64_t left = until - now;
		struct timespec ts = { .tv_sec = (time_t)(left / 1000), .tv_nsec = (long)(left % 1000) * 1000000L };
		gai_suspend(list, n, &ts); /* returns on an answer, the timeout or a signal: loop decides */
	}

	char addrs[RESOLVE_MAX_HOSTS][RESOLVE_MAX_ADDRS][RESOLVE_ADDR_LEN];
	int naddrs[RESOLVE_MAX_HOSTS] = { 0 };
	err[0] = '\0';
	for (int i = 0; i < h->n; i++) {
		if (h->kind[i] != RESOLVE_NAME)
			continue;
		struct resolve_entry *e = ent[i];
		if (e && e->naddrs > 0) {
			naddrs[i] = e->naddrs;
			memcpy(addrs[i], e->addrs, sizeof(e->addrs));
		} else if (err[0] == '\0') {
			/* libpq's wording, so that the error classes (and people) read it as DNS */
			if (e == NULL)
				snprintf(err, errlen, "could not translate host name \"%s\" to address: too many lookups in flight",
				         h->host[i]);
			else if (e->pending)
				snprintf(err, errlen,
				         "could not translate host name \"%s\" to address: no answer from the resolver within %lld ms "
				         "(lookup started %lld ms ago; deadline enforced by neonpool)",
				         h->host[i], (long long)(now - t0), (long long)(now - e->started_ms));
			else
				snprintf(err, errlen, "could not translate host name \"%s\" to address: %s", h->host[i],
				         e->error[0] ? e->error : "no address");
		}
	}
	int n = resolve_build(h, (const char(*)[RESOLVE_MAX_ADDRS][RESOLVE_ADDR_LEN])addrs, naddrs, out);
	if (n < 0) {
		snprintf(err, errlen, "the database URL's hosts have too many addresses to pass to libpq");
		return -1;
	}
	if (n == 0)
		return -1; /* every host entry was a name without an address: err says which */
	err[0] = '\0';
	return 0;
}
