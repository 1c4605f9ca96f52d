/* SPDX-License-Identifier: PostgreSQL */
/* ctl_ping.h - `neonpoolctl ping [DSN]`: one connect with each phase timed, failures classified. */
#ifndef NP_CTL_PING_H
#define NP_CTL_PING_H

/* Exit codes of `neonpoolctl ping` (documented in its --help and neonpoolctl(1)). */
enum {
	CTL_PING_EXIT_OK = 0,
	CTL_PING_EXIT_OTHER = 1,  /* unclassified failure */
	CTL_PING_EXIT_USAGE = 2,  /* bad arguments, configuration or connection string */
	CTL_PING_EXIT_DNS = 3,    /* the host name did not resolve */
	CTL_PING_EXIT_TCP = 4,    /* refused, unreachable, timed out */
	CTL_PING_EXIT_TLS = 5,    /* TLS required but not offered, or the certificate not accepted */
	CTL_PING_EXIT_AUTH = 6,   /* wrong user or password */
	CTL_PING_EXIT_SERVER = 7, /* the server refused: too many clients, Neon endpoint, quota, SNI, ... */
	CTL_PING_EXIT_QUERY = 8,  /* connected, but the first query failed */
};

/* Connect to conninfo (a libpq URI or key=value string) with password (may be NULL or "": the
 * DSN's, PGPASSWORD's or .pgpass's then), print each phase with its time, the server version,
 * TLS version and cipher. On failure print the class, the message (the password masked) and a
 * hint to stderr. Returns the exit code. */
int ctl_ping(const char *conninfo, const char *password);

#endif
