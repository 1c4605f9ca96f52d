/* SPDX-License-Identifier: PostgreSQL */
/* ctl_ping.c - `neonpoolctl ping [DSN]`: one connect, each phase timed (DNS, TCP, TLS,
 * authentication, first query), the server and TLS versions; a failure classified with a hint
 * and an exit code per class. */
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctl_db.h"
#include "ctl_ping.h"
#include "errclass.h"
#include "util.h"

#define PING_TIMEOUT_MS 10000

/* What to try for each class: the operator's next step. */
static const char *ping_hint(enum np_errkind k)
{
	switch (k) {
	case NP_ERR_DNS: return "check the host name in the DSN (Neon's look like ep-name-123456.region.aws.neon.tech)";
	case NP_ERR_REFUSED: return "nothing listens on that host and port: is the server running, is the port right?";
	case NP_ERR_UNREACHABLE:
	case NP_ERR_TIMEOUT: return "no answer from that address: a firewall, a wrong address, or the network";
	case NP_ERR_TLS_VERIFY: return "the server's certificate was not accepted: check sslrootcert, and that the host name matches it (sslmode=verify-full)";
	case NP_ERR_TLS: return "TLS was required and failed: the server may not offer TLS (Neon always does; a local server needs ssl = on, or sslmode=disable for a test)";
	case NP_ERR_AUTH: return "wrong user or password: check database_password_file or the DSN (on Neon, reset the role's password in the console)";
	case NP_ERR_TOO_MANY_CLIENTS: return "the server is at max_connections: lower budget, close other clients, or use Neon's -pooler host";
	case NP_ERR_NEON_SNI: return "Neon could not tell the endpoint (this libpq sent no SNI): add options=endpoint%3Dep-... to the DSN, or use libpq >= 14";
	case NP_ERR_NEON_QUOTA: return "the Neon project's compute-time quota is used up: raise it or wait for the next period";
	case NP_ERR_NEON_ENDPOINT_NOT_FOUND: return "no such Neon endpoint: check the endpoint id in the host name";
	case NP_ERR_NEON_ENDPOINT_DISABLED: return "the Neon endpoint is disabled: enable it in the console";
	case NP_ERR_NEON_ENDPOINT_LIMIT: return "the Neon endpoint's connection limit is reached: lower budget or use the -pooler host";
	case NP_ERR_NEON_COMPUTE: return "Neon could not start or reach the compute: retry; see Neon's status page";
	case NP_ERR_NEON_RATE_LIMIT: return "Neon rate-limits connection attempts: lower max_concurrent_connects, retry later";
	case NP_ERR_CONFIG: return "the server rejected a connection setting: check the database name and options in the DSN";
	default: return NULL;
	}
}

/* The exit code of a class (documented in --help and neonpoolctl(1)). */
static int ping_exit(enum np_errkind k)
{
	switch (k) {
	case NP_ERR_DNS: return CTL_PING_EXIT_DNS;
	case NP_ERR_REFUSED:
	case NP_ERR_UNREACHABLE:
	case NP_ERR_TIMEOUT: return CTL_PING_EXIT_TCP;
	case NP_ERR_TLS_VERIFY:
	case NP_ERR_TLS: return CTL_PING_EXIT_TLS;
	case NP_ERR_AUTH: return CTL_PING_EXIT_AUTH;
	case NP_ERR_TOO_MANY_CLIENTS:
	case NP_ERR_SERVER_UNAVAILABLE:
	case NP_ERR_NEON_SNI:
	case NP_ERR_NEON_STARTUP_PARAMETER:
	case NP_ERR_NEON_COMPUTE:
	case NP_ERR_NEON_QUOTA:
	case NP_ERR_NEON_ENDPOINT_LIMIT:
	case NP_ERR_NEON_ENDPOINT_DISABLED:
	case NP_ERR_NEON_ENDPOINT_NOT_FOUND:
	case NP_ERR_NEON_CONTROL_PLANE:
	case NP_ERR_NEON_RATE_LIMIT:
	case NP_ERR_CONFIG: return CTL_PING_EXIT_SERVER;
	default: return CTL_PING_EXIT_OTHER;
	}
}

static void ping_phase(const char *name, int64_t us, const char *what)
{
	printf("  %-12s %9.2f ms%s%s\n", name, (double)us / 1000.0, what && what[0] ? "  " : "", what ? what : "");
}

static int ping_fail(const char *phase, enum np_errkind kind, const char *message, const char *secret)
{
	const struct np_errclass *ec = errclass_of_kind(kind);
	char line[1024];
	ctl_db_oneline(message, secret, line, sizeof(line));
	printf("  %-12s failed\n", phase);
	fprintf(stderr, "neonpoolctl: ping: %s (%s) during %s: %s\n", ec->label, ec->name, phase, line);
	const char *hint = ping_hint(kind);
	if (hint)
		fprintf(stderr, "neonpoolctl: ping: hint: %s\n", hint);
	return ping_exit(kind);
}

/* The first host's name and port of conninfo, when it is one TCP host name without hostaddr. */
static void ping_target(const char *conninfo, char *host, size_t hn, char *port, size_t pn, bool *hostaddr)
{
	host[0] = '\0';
	snprintf(port, pn, "5432");
	*hostaddr = false;
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	if (!opts)
		return;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !o->val[0])
			continue;
		if (strcmp(o->keyword, "host") == 0)
			snprintf(host, hn, "%s", o->val);
		else if (strcmp(o->keyword, "port") == 0)
			snprintf(port, pn, "%s", o->val);
		else if (strcmp(o->keyword, "hostaddr") == 0)
			*hostaddr = true;
	}
	PQconninfoFree(opts);
	/* several hosts, a unix socket directory or an address: libpq's own handling, no DNS phase */
	if (strchr(host, ',') || strchr(port, ',') || host[0] == '/' || host[0] == '@')
		host[0] = '\0';
}

/* Check the DSN and find the secret to mask in every message: the one given, else the DSN's own
 * (into dsn_pw). 0, or CTL_PING_EXIT_USAGE after saying why. */
static int ping_secret(const char *conninfo, const char *password, char *dsn_pw, size_t n)
{
	char *errmsg = NULL;
	PQconninfoOption *check = PQconninfoParse(conninfo, &errmsg);
	if (!check) {
		char line[512];
		ctl_db_oneline(errmsg ? errmsg : "out of memory", password, line, sizeof(line));
		fprintf(stderr, "neonpoolctl: ping: the connection string is invalid: %s\n", line);
		PQfreemem(errmsg);
		return CTL_PING_EXIT_USAGE;
	}
	dsn_pw[0] = '\0';
	for (PQconninfoOption *o = check; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val)
			snprintf(dsn_pw, n, "%s", o->val);
	PQconninfoFree(check);
	return 0;
}

/* DNS, on its own (libpq would do it inside its connect): the address into addr ("" when libpq
 * is left to it: hostaddr given, several hosts, a unix socket). 0, or the exit code of a failure. */
static int ping_dns(const char *conninfo, const char *password, char *addr, size_t an)
{
	char host[256], port[32];
	bool has_hostaddr;
	ping_target(conninfo, host, sizeof(host), port, sizeof(port), &has_hostaddr);
	addr[0] = '\0';
	if (!host[0] || has_hostaddr) {
		printf("  %-12s %12s  %s\n", "dns", "-", host[0] ? "hostaddr given" : "several hosts or a unix socket: inside tcp");
		return 0;
	}
	int64_t t0 = util_now_us();
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		char m[sizeof(host) + 128];
		snprintf(m, sizeof(m), "could not translate host name \"%s\" to address: %s", host, gai_strerror(rc));
		return ping_fail("dns", NP_ERR_DNS, m, password);
	}
	void *a = ai->ai_family == AF_INET ? (void *)&((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr
	                                   : (void *)&((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_addr;
	inet_ntop(ai->ai_family, a, addr, (socklen_t)an);
	freeaddrinfo(ai);
	struct in6_addr tmp;
	bool numeric = inet_pton(AF_INET, host, &tmp) == 1 || inet_pton(AF_INET6, host, &tmp) == 1;
	char what[sizeof(host) + INET6_ADDRSTRLEN + 32];
	snprintf(what, sizeof(what), "%s -> %s%s", host, addr, numeric ? " (an address: no lookup)" : "");
	ping_phase("dns", util_now_us() - t0, what);
	return 0;
}

/* When libpq's connect changed state (us; 0: not seen). */
struct ping_times {
	int64_t start, tcp, tls0, tls1, auth, conn;
};

/* TCP, TLS, authentication: libpq's state machine, timed at each change of state. 0 with *out
 * connected, or the exit code of a failure (said, classified). */
static int ping_connect(const char *conninfo, const char *password, bool own_password, const char *addr,
                        struct ping_times *t, PGconn **out)
{
	const char *keys[6], *vals[6];
	int k = 0;
	keys[k] = "dbname", vals[k++] = conninfo;
	if (addr[0])
		keys[k] = "hostaddr", vals[k++] = addr; /* the address looked up above; host stays for TLS */
	if (password[0] && own_password)
		keys[k] = "password", vals[k++] = password;
	keys[k] = "application_name", vals[k++] = "neonpoolctl/ping";
	keys[k] = NULL, vals[k] = NULL;
	t->start = util_now_us();
	PGconn *conn = PQconnectStartParams(keys, vals, 1);
	if (!conn) {
		fprintf(stderr, "neonpoolctl: ping: out of memory\n");
		return CTL_PING_EXIT_OTHER;
	}
	int64_t deadline = util_now_ms() + PING_TIMEOUT_MS;
	PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
	ConnStatusType last = PQstatus(conn);
	const char *phase = "tcp";
	while (ps != PGRES_POLLING_OK && ps != PGRES_POLLING_FAILED) {
		int fd = PQsocket(conn);
		int64_t left = deadline - util_now_ms();
		if (left <= 0) {
			PQfinish(conn);
			return ping_fail(phase, NP_ERR_TIMEOUT, "no answer within 10 s", password);
		}
		if (fd < 0)
			break;
		struct pollfd p = { .fd = fd, .events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT };
		if (poll(&p, 1, (int)left) == 0)
			continue;
		ps = PQconnectPoll(conn);
		ConnStatusType st = PQstatus(conn);
		int64_t now = util_now_us();
		if (st != last) {
			if (last == CONNECTION_STARTED && !t->tcp)
				t->tcp = now;
			if (st == CONNECTION_SSL_STARTUP && !t->tls0)
				t->tls0 = t->tcp ? t->tcp : now;
			if (last == CONNECTION_SSL_STARTUP && !t->tls1)
				t->tls1 = now;
			if (st == CONNECTION_AUTH_OK && !t->auth)
				t->auth = now;
			last = st;
		}
		phase = !t->tcp ? "tcp" : (t->tls0 && !t->tls1) ? "tls" : "auth";
	}
	t->conn = util_now_us();
	if (PQstatus(conn) != CONNECTION_OK) {
		char m[1024];
		ctl_db_conn_message(conn, m, sizeof(m));
		const struct np_errclass *ec = errclass_connect(m);
		/* the phase of the failure: what the class says, else where libpq stopped */
		enum np_errkind kind = ec->kind;
		if (kind == NP_ERR_TLS || kind == NP_ERR_TLS_VERIFY)
			phase = "tls";
		else if (kind == NP_ERR_AUTH)
			phase = "auth";
		else if (kind == NP_ERR_REFUSED || kind == NP_ERR_UNREACHABLE)
			phase = "tcp";
		int rc = ping_fail(phase, kind, m, password);
		PQfinish(conn);
		return rc;
	}
	if (!t->tcp)
		t->tcp = t->conn;
	*out = conn;
	return 0;
}

/* The connect's phases as timed: tcp, tls (or not encrypted), auth, the backend's startup. */
static void ping_print_connect(PGconn *conn, const struct ping_times *t, const char *addr)
{
	ping_phase("tcp", t->tcp - t->start, addr[0] ? addr : NULL);
	if (PQsslInUse(conn) && t->tls0 && t->tls1) {
		char what[160];
		const char *proto = PQsslAttribute(conn, "protocol"), *cipher = PQsslAttribute(conn, "cipher");
		snprintf(what, sizeof(what), "%s %s", proto ? proto : "?", cipher ? cipher : "?");
		ping_phase("tls", t->tls1 - t->tls0, what);
	} else {
		printf("  %-12s %12s  %s\n", "tls", "-", "not encrypted");
	}
	int64_t a0 = t->tls1 ? t->tls1 : t->tcp;
	ping_phase("auth", (t->auth ? t->auth : t->conn) - a0, PQuser(conn));
	if (t->auth)
		ping_phase("startup", t->conn - t->auth, "backend start until ready for query");
}

/* The first query, then the total since t_start and the server's and TLS's versions. 0, or
 * CTL_PING_EXIT_QUERY after saying why. */
static int ping_first_query(PGconn *conn, const char *password, int64_t t_start)
{
	int64_t t0 = util_now_us();
	PGresult *res = PQexecParams(conn, "SELECT version()", 0, NULL, NULL, NULL, NULL, 0);
	int64_t q = util_now_us() - t0;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		char m[1024];
		if (res && PQresultErrorMessage(res)[0])
			snprintf(m, sizeof(m), "%s", PQresultErrorMessage(res));
		else
			ctl_db_conn_message(conn, m, sizeof(m));
		enum np_errkind kind = errclass_sqlstate(state, PQstatus(conn) != CONNECTION_OK, NULL);
		PQclear(res);
		ping_fail("first query", kind, m, password);
		return CTL_PING_EXIT_QUERY;
	}
	ping_phase("first query", q, "SELECT version()");
	ping_phase("total", util_now_us() - t_start, NULL);
	printf("server      %s (%s)\n", PQparameterStatus(conn, "server_version") ? PQparameterStatus(conn, "server_version") : "?",
	       PQgetvalue(res, 0, 0));
	if (PQsslInUse(conn))
		printf("tls         %s, cipher %s\n", PQsslAttribute(conn, "protocol") ? PQsslAttribute(conn, "protocol") : "?",
		       PQsslAttribute(conn, "cipher") ? PQsslAttribute(conn, "cipher") : "?");
	else
		printf("tls         none: the connection is not encrypted (Neon requires TLS)\n");
	PQclear(res);
	return 0;
}

int ctl_ping(const char *conninfo, const char *password)
{
	char dsn_pw[256];
	int rc = ping_secret(conninfo, password, dsn_pw, sizeof(dsn_pw));
	if (rc != 0)
		return rc;
	bool own_password = password && password[0];
	if (!own_password)
		password = dsn_pw;
	char red[1024], addr[INET6_ADDRSTRLEN];
	conf_redact_conninfo(conninfo, red, sizeof(red));
	printf("ping %s\n", red);
	int64_t t_start = util_now_us();
	struct ping_times t = { 0 };
	PGconn *conn = NULL;
	rc = ping_dns(conninfo, password, addr, sizeof(addr));
	if (rc == 0)
		rc = ping_connect(conninfo, password, own_password, addr, &t, &conn);
	if (rc == 0) {
		ping_print_connect(conn, &t, addr);
		rc = ping_first_query(conn, password, t_start);
		PQfinish(conn);
	}
	explicit_bzero(dsn_pw, sizeof(dsn_pw));
	return rc;
}
