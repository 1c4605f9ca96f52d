/* SPDX-License-Identifier: PostgreSQL */
/* errclass.h - the one table of PostgreSQL error classes, shared by the daemon and the CLI:
 * connect failures by message text, errors in a session by SQLSTATE. Pure: no libpq. */
#ifndef NP_ERRCLASS_H
#define NP_ERRCLASS_H

#include <stdbool.h>

/* What the daemon does about an error: what to answer and whether to retry. */
enum np_db_class {
	NP_DB_OK = 0,
	NP_DB_TRANSIENT,  /* connection lost, 57P01, 08xxx, 25P03, 40001: retry idempotent work once */
	NP_DB_BUSY,       /* 53300, too many clients, Neon rate limits: 503 db_busy */
	NP_DB_TIMEOUT,    /* our client-side deadline passed: server hung: 504 db_timeout */
	NP_DB_CANCELED,   /* 57014 statement_timeout: 504 db_timeout */
	NP_DB_DOWN,       /* connect refused, timed out, DNS, compute unreachable: 503 db_unavailable */
	NP_DB_CONFIG,     /* auth, TLS verification, unknown database, disabled endpoint, quota: 503, operator action */
	NP_DB_QUERY,      /* any other SQL error: 500 db_error */
};

/* What went wrong, as `neonpoolctl check-db`, the log (kind=) and the breaker's reason name it.
 * The values are stored in shared memory (a slot's last failure): append, never renumber. */
enum np_errkind {
	NP_ERR_NONE = 0,
	NP_ERR_OTHER,
	NP_ERR_DNS,
	NP_ERR_REFUSED,
	NP_ERR_UNREACHABLE,
	NP_ERR_TIMEOUT,
	NP_ERR_TLS_VERIFY,
	NP_ERR_TLS,
	NP_ERR_AUTH,
	NP_ERR_TOO_MANY_CLIENTS,
	NP_ERR_SERVER_UNAVAILABLE,
	NP_ERR_CONNECTION_LOST,
	NP_ERR_CONFIG,
	NP_ERR_NEON_SNI,
	NP_ERR_NEON_STARTUP_PARAMETER,
	NP_ERR_NEON_COMPUTE,
	NP_ERR_NEON_QUOTA,
	NP_ERR_NEON_ENDPOINT_LIMIT,
	NP_ERR_NEON_ENDPOINT_DISABLED,
	NP_ERR_NEON_ENDPOINT_NOT_FOUND,
	NP_ERR_NEON_CONTROL_PLANE,
	NP_ERR_NEON_RATE_LIMIT,
	NP_ERR_STATEMENT_TIMEOUT,
	NP_ERR_SERIALIZATION,
	NP_ERR_IDLE_TIMEOUT,
	NP_ERR_QUERY,
	NP_ERR_COUNT
};

struct np_errclass {
	enum np_errkind kind;
	const char *name;      /* "dns": check-db's class and the log's kind= */
	const char *label;     /* "DNS lookup failed": the reason in /readyz and the status */
	enum np_db_class cls;  /* what the daemon does when a connect fails this way */
	bool retryable;        /* retrying with backoff can help */
};

/* The entry of kind (NP_ERR_OTHER's for an unknown value); never NULL. */
const struct np_errclass *errclass_of_kind(enum np_errkind kind);

/* Classify a failed connect by its message (libpq's text or a proxy's: Neon's proxy sends every
 * startup error as XX000). First match in the table wins; NULL or unknown text is NP_ERR_OTHER,
 * which the daemon treats as down. Never NULL. */
const struct np_errclass *errclass_connect(const char *message);

/* Classify an error result, or a connection that broke (conn_bad), by SQLSTATE (NULL or ""
 * when there is none). Returns the kind; *cls (may be NULL) gets what the daemon does. */
enum np_errkind errclass_sqlstate(const char *sqlstate, bool conn_bad, enum np_db_class *cls);

/* "transient", "busy", ...: the daemon's action, for the log. */
const char *errclass_db_class_name(enum np_db_class cls);

#endif
