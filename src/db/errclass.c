/* SPDX-License-Identifier: PostgreSQL */
/* errclass.c - the one table of PostgreSQL error classes: connect-failure texts and SQLSTATEs.
 *
 * The daemon (pgconn: what to answer, whether the breaker counts it; the supervisor: the reason
 * in /readyz) and `neonpoolctl check-db` (the class it prints) read the same tables, so a failure
 * has one name everywhere. Connect errors are classified by text: Neon's proxy re-codes every
 * startup error as XX000 (NEON.md §1.5); in a session the SQLSTATE is real. */
#include <string.h>

#include "errclass.h"

static const struct np_errclass errclass_kinds[NP_ERR_COUNT] = {
	[NP_ERR_NONE] = { NP_ERR_NONE, "none", "no error", NP_DB_OK, false },
	[NP_ERR_OTHER] = { NP_ERR_OTHER, "other", "unclassified error", NP_DB_DOWN, false },
	[NP_ERR_DNS] = { NP_ERR_DNS, "dns", "DNS lookup failed", NP_DB_DOWN, true },
	[NP_ERR_REFUSED] = { NP_ERR_REFUSED, "refused", "TCP connection refused", NP_DB_DOWN, true },
	[NP_ERR_UNREACHABLE] = { NP_ERR_UNREACHABLE, "unreachable", "server unreachable", NP_DB_DOWN, true },
	[NP_ERR_TIMEOUT] = { NP_ERR_TIMEOUT, "timeout", "connect timed out", NP_DB_DOWN, true },
	[NP_ERR_TLS_VERIFY] = { NP_ERR_TLS_VERIFY, "tls_verify", "TLS certificate verification failed", NP_DB_CONFIG, false },
	[NP_ERR_TLS] = { NP_ERR_TLS, "tls", "TLS error", NP_DB_CONFIG, false },
	[NP_ERR_AUTH] = { NP_ERR_AUTH, "auth", "authentication failed", NP_DB_CONFIG, false },
	[NP_ERR_TOO_MANY_CLIENTS] = { NP_ERR_TOO_MANY_CLIENTS, "too_many_clients", "too many connections", NP_DB_BUSY, true },
	[NP_ERR_SERVER_UNAVAILABLE] = { NP_ERR_SERVER_UNAVAILABLE, "server_unavailable",
	                                "server starting up or shutting down", NP_DB_DOWN, true },
	[NP_ERR_CONNECTION_LOST] = { NP_ERR_CONNECTION_LOST, "connection_lost", "connection lost", NP_DB_DOWN, true },
	[NP_ERR_CONFIG] = { NP_ERR_CONFIG, "config", "connection settings rejected", NP_DB_CONFIG, false },
	[NP_ERR_NEON_SNI] = { NP_ERR_NEON_SNI, "neon_sni", "Neon: endpoint ID not specified (no SNI)", NP_DB_CONFIG, false },
	[NP_ERR_NEON_STARTUP_PARAMETER] = { NP_ERR_NEON_STARTUP_PARAMETER, "neon_startup_parameter",
	                                    "Neon: unsupported startup parameter", NP_DB_CONFIG, false },
	[NP_ERR_NEON_COMPUTE] = { NP_ERR_NEON_COMPUTE, "neon_compute", "Neon: compute unreachable", NP_DB_DOWN, true },
	[NP_ERR_NEON_QUOTA] = { NP_ERR_NEON_QUOTA, "neon_quota", "Neon: quota exceeded", NP_DB_CONFIG, false },
	[NP_ERR_NEON_ENDPOINT_LIMIT] = { NP_ERR_NEON_ENDPOINT_LIMIT, "neon_endpoint_limit",
	                                 "Neon: active endpoints limit", NP_DB_DOWN, true },
	[NP_ERR_NEON_ENDPOINT_DISABLED] = { NP_ERR_NEON_ENDPOINT_DISABLED, "neon_endpoint_disabled",
	                                    "Neon: endpoint disabled", NP_DB_CONFIG, false },
	[NP_ERR_NEON_ENDPOINT_NOT_FOUND] = { NP_ERR_NEON_ENDPOINT_NOT_FOUND, "neon_endpoint_not_found",
	                                     "Neon: endpoint not found", NP_DB_CONFIG, false },
	[NP_ERR_NEON_CONTROL_PLANE] = { NP_ERR_NEON_CONTROL_PLANE, "neon_control_plane",
	                                "Neon: control plane request failed", NP_DB_DOWN, true },
	[NP_ERR_NEON_RATE_LIMIT] = { NP_ERR_NEON_RATE_LIMIT, "neon_rate_limit", "Neon: connection rate limit",
	                             NP_DB_BUSY, true },
	[NP_ERR_STATEMENT_TIMEOUT] = { NP_ERR_STATEMENT_TIMEOUT, "statement_timeout", "statement timeout",
	                               NP_DB_CANCELED, false },
	[NP_ERR_SERIALIZATION] = { NP_ERR_SERIALIZATION, "serialization", "serialization failure or deadlock",
	                           NP_DB_TRANSIENT, true },
	[NP_ERR_IDLE_TIMEOUT] = { NP_ERR_IDLE_TIMEOUT, "idle_in_transaction_timeout", "idle-in-transaction timeout",
	                          NP_DB_TRANSIENT, true },
	[NP_ERR_QUERY] = { NP_ERR_QUERY, "query", "query failed", NP_DB_QUERY, false },
};

/* Connect failures by text, matched case-insensitively anywhere in the message. First match
 * wins: specific texts before generic ones ("does not exist", "SSL", "certificate"). */
static const struct {
	const char *needle;
	enum np_errkind kind;
} errclass_texts[] = {
	/* Neon's proxy and control plane (NEON.md §1.5) */
	{ "Endpoint ID is not specified", NP_ERR_NEON_SNI },
	{ "unsupported startup parameter", NP_ERR_NEON_STARTUP_PARAMETER },
	{ "Couldn't connect to compute node", NP_ERR_NEON_COMPUTE },
	{ "quota", NP_ERR_NEON_QUOTA },
	{ "active endpoints limit", NP_ERR_NEON_ENDPOINT_LIMIT },
	{ "concurrently active endpoints", NP_ERR_NEON_ENDPOINT_LIMIT },
	{ "endpoint is disabled", NP_ERR_NEON_ENDPOINT_DISABLED },
	{ "endpoint cannot be found", NP_ERR_NEON_ENDPOINT_NOT_FOUND },
	{ "Control plane request failed", NP_ERR_NEON_CONTROL_PLANE },
	{ "Console request failed", NP_ERR_NEON_CONTROL_PLANE },
	{ "Too many connections to this endpoint", NP_ERR_NEON_RATE_LIMIT },
	{ "Failed to acquire permit", NP_ERR_NEON_RATE_LIMIT },
	{ "connection is insecure", NP_ERR_TLS },
	/* connection slots: PostgreSQL's 53300 texts and PgBouncer's client limit */
	{ "53300", NP_ERR_TOO_MANY_CLIENTS },
	{ "too many clients", NP_ERR_TOO_MANY_CLIENTS },
	{ "remaining connection slots", NP_ERR_TOO_MANY_CLIENTS },
	{ "too many connections for", NP_ERR_TOO_MANY_CLIENTS },
	{ "max_client_conn", NP_ERR_TOO_MANY_CLIENTS },
	{ "no more connections allowed", NP_ERR_TOO_MANY_CLIENTS },
	/* the name: libpq's text, and ours when neonpool's own lookup fails or times out */
	{ "could not translate host name", NP_ERR_DNS },
	{ "Name or service not known", NP_ERR_DNS },
	{ "Temporary failure in name resolution", NP_ERR_DNS },
	{ "No address associated with hostname", NP_ERR_DNS },
	/* the server's certificate (sslmode verify-ca / verify-full) */
	{ "certificate verify failed", NP_ERR_TLS_VERIFY },
	{ "does not match host name", NP_ERR_TLS_VERIFY },
	{ "root certificate file", NP_ERR_TLS_VERIFY },
	{ "certificate has expired", NP_ERR_TLS_VERIFY },
	{ "self-signed certificate", NP_ERR_TLS_VERIFY },
	{ "self signed certificate", NP_ERR_TLS_VERIFY },
	{ "unable to get local issuer certificate", NP_ERR_TLS_VERIFY },
	/* credentials and permissions */
	{ "password authentication failed", NP_ERR_AUTH },
	{ "authentication failed", NP_ERR_AUTH },
	{ "no password supplied", NP_ERR_AUTH },
	{ "channel binding", NP_ERR_AUTH },
	{ "no pg_hba.conf entry", NP_ERR_AUTH },
	{ "role \"", NP_ERR_AUTH },
	{ "permission denied", NP_ERR_AUTH },
	/* the server is starting, stopping, or went away during the handshake */
	{ "the database system is", NP_ERR_SERVER_UNAVAILABLE },
	{ "terminating connection", NP_ERR_SERVER_UNAVAILABLE },
	{ "server closed the connection unexpectedly", NP_ERR_CONNECTION_LOST },
	{ "SSL SYSCALL error", NP_ERR_CONNECTION_LOST },
	{ "SSL connection has been closed unexpectedly", NP_ERR_CONNECTION_LOST },
	{ "unexpected eof", NP_ERR_CONNECTION_LOST },
	/* the network */
	{ "timeout expired", NP_ERR_TIMEOUT },
	{ "timed out", NP_ERR_TIMEOUT },
	{ "Connection refused", NP_ERR_REFUSED },
	{ "No route to host", NP_ERR_UNREACHABLE },
	{ "Network is unreachable", NP_ERR_UNREACHABLE },
	{ "Host is down", NP_ERR_UNREACHABLE },
	{ "No such file or directory", NP_ERR_UNREACHABLE },
	/* the connection string, then TLS in general */
	{ "does not exist", NP_ERR_CONFIG },
	{ "invalid", NP_ERR_CONFIG },
	{ "missing \"=\"", NP_ERR_CONFIG },
	{ "server does not support SSL", NP_ERR_TLS },
	{ "SSL", NP_ERR_TLS },
	{ "certificate", NP_ERR_TLS },
};

/* SQLSTATEs of errors in a session, by code or class prefix; the first match wins. The action
 * is the session's (a 57P01 mid-session is a lost connection to retry, not a server that is down). */
static const struct {
	const char *code;      /* a full code, or a two-character class */
	enum np_errkind kind;
	enum np_db_class cls;
} errclass_states[] = {
	{ "53300", NP_ERR_TOO_MANY_CLIENTS, NP_DB_BUSY },
	{ "57014", NP_ERR_STATEMENT_TIMEOUT, NP_DB_CANCELED },
	{ "57P01", NP_ERR_SERVER_UNAVAILABLE, NP_DB_TRANSIENT }, /* admin shutdown: Neon's suspend, direct */
	{ "57P02", NP_ERR_SERVER_UNAVAILABLE, NP_DB_TRANSIENT },
	{ "57P03", NP_ERR_SERVER_UNAVAILABLE, NP_DB_TRANSIENT },
	{ "25P03", NP_ERR_IDLE_TIMEOUT, NP_DB_TRANSIENT },
	{ "40001", NP_ERR_SERIALIZATION, NP_DB_TRANSIENT },
	{ "40P01", NP_ERR_SERIALIZATION, NP_DB_TRANSIENT },
	{ "08", NP_ERR_CONNECTION_LOST, NP_DB_TRANSIENT },
};

const struct np_errclass *errclass_of_kind(enum np_errkind kind)
{
	if ((unsigned)kind >= NP_ERR_COUNT)
		kind = NP_ERR_OTHER;
	return &errclass_kinds[kind];
}

const struct np_errclass *errclass_connect(const char *message)
{
	for (size_t i = 0; message && i < sizeof(errclass_texts) / sizeof(errclass_texts[0]); i++)
		if (strcasestr(message, errclass_texts[i].needle))
			return &errclass_kinds[errclass_texts[i].kind];
	return &errclass_kinds[NP_ERR_OTHER];
}

enum np_errkind errclass_sqlstate(const char *s, bool conn_bad, enum np_db_class *cls)
{
	/* no SQLSTATE, or one not in the table: a lost connection when it broke, else the query's fault */
	enum np_errkind kind = conn_bad ? NP_ERR_CONNECTION_LOST : NP_ERR_QUERY;
	enum np_db_class c = conn_bad ? NP_DB_TRANSIENT : NP_DB_QUERY;
	for (size_t i = 0; s && s[0] && i < sizeof(errclass_states) / sizeof(errclass_states[0]); i++) {
		const char *code = errclass_states[i].code;
		if (strncmp(s, code, strlen(code)) == 0) {
			kind = errclass_states[i].kind;
			c = errclass_states[i].cls;
			break;
		}
	}
	if (cls)
		*cls = c;
	return kind;
}

const char *errclass_db_class_name(enum np_db_class cls)
{
	switch (cls) {
	case NP_DB_OK: return "ok";
	case NP_DB_TRANSIENT: return "transient";
	case NP_DB_BUSY: return "busy";
	case NP_DB_TIMEOUT: return "timeout";
	case NP_DB_CANCELED: return "statement_timeout";
	case NP_DB_DOWN: return "down";
	case NP_DB_CONFIG: return "config";
	case NP_DB_QUERY: return "query";
	}
	return "unknown";
}
