/* SPDX-License-Identifier: PostgreSQL */
/* resolve.h - the database host names resolved with a deadline and cached per process, so that
 * libpq connects by address (hostaddr) and never blocks on DNS itself; the host name stays in
 * host, which libpq uses for TLS SNI (Neon routes by it) and verify-full. */
#ifndef NP_RESOLVE_H
#define NP_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RESOLVE_MAX_HOSTS 8       /* host entries of one conninfo */
#define RESOLVE_MAX_ADDRS 8       /* addresses kept per host name */
#define RESOLVE_ADDR_LEN 46       /* INET6_ADDRSTRLEN */
#define RESOLVE_LIST_LEN 1024

enum resolve_host_kind {
	RESOLVE_SOCKET = 0,           /* "" (libpq's default), a unix-socket directory or @abstract name */
	RESOLVE_LITERAL,              /* an IPv4 or IPv6 address: no lookup */
	RESOLVE_NAME,                 /* a name to look up */
};

/* The host entries of a conninfo, as libpq will see them (no lookup). */
struct np_resolve_hosts {
	int n;
	bool any_name;                /* some entry needs a lookup */
	bool pass_through;            /* hostaddr (conninfo or PGHOSTADDR) or a service file is in play:
	                               * leave resolution to libpq, as configured */
	char host[RESOLVE_MAX_HOSTS][256];
	char port[RESOLVE_MAX_HOSTS][16]; /* each entry's port, "" when none was given */
	enum resolve_host_kind kind[RESOLVE_MAX_HOSTS];
};

/* What to pass after dbname to PQconnectStartParams. */
struct np_resolved {
	bool use;                     /* false: pass the conninfo as it is (nothing to look up) */
	char host[RESOLVE_LIST_LEN];  /* one entry per address: the name, repeated */
	char hostaddr[RESOLVE_LIST_LEN];
	char port[RESOLVE_LIST_LEN];  /* "" when the conninfo gave none */
};

/* Split conninfo (URI or key=value) into its host entries, with PGHOST/PGPORT/PGHOSTADDR as
 * libpq applies them. Returns 0, or -1 with err when libpq cannot parse it or it has more than
 * RESOLVE_MAX_HOSTS hosts or a port list that does not match the hosts (libpq then says why). */
int resolve_split(const char *conninfo, struct np_resolve_hosts *h, char *err, size_t errlen);

/* The lists for h with addrs[i][0..naddrs[i]-1] for each RESOLVE_NAME entry i (one list entry
 * per address, in order; a name with no address is left out; sockets and literals pass as
 * they are, with hostaddr "" or the literal). Returns the number of list entries, or -1 when
 * they do not fit. */
int resolve_build(const struct np_resolve_hosts *h, const char addrs[][RESOLVE_MAX_ADDRS][RESOLVE_ADDR_LEN],
                  const int *naddrs, struct np_resolved *out);

/* Per process: keep addresses ttl_s seconds (0: look up before every connect); wait at most
 * max_wait_ms for a lookup (-1: until the caller's deadline; the supervisor passes a few ms so
 * that its 50 ms tick never waits on DNS: a lookup it started goes on in the background). */
void resolve_init(int ttl_s, int max_wait_ms);

/* The connect parameters for conninfo, looking names up (glibc getaddrinfo_a) until deadline_ms
 * at the latest unless the cache has them. Returns 0, or -1 with err ("could not translate host
 * name ...", libpq's words, so the error classes name it dns) when no host entry is left. */
int resolve_conninfo(const char *conninfo, int64_t deadline_ms, struct np_resolved *out, char *err, size_t errlen);

/* Without waiting: collect finished lookups and start those that are due (missing, or older
 * than 3/4 of the TTL), so that connects find fresh addresses. For idle loops and ticks. */
void resolve_refresh(const char *conninfo);

#endif
