/* SPDX-License-Identifier: PostgreSQL */
/* ctl_checkdb.c - `neonpoolctl check-db`: connect, classify, time round trips, report limits and migrations. */
#include <unistd.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ctl_db.h"
#include "errclass.h"
#include "util.h"

#define CTL_DB_PINGS 5

struct ctl_db_health {
	bool connected;
	int64_t connect_us;
	const char *server_version;   /* owned by the PGconn */
	int server_version_num;
	bool ssl;
	const char *ssl_protocol, *ssl_cipher;  /* owned by the PGconn; NULL when unknown */
	int pings;
	double ping_min, ping_avg, ping_max;  /* ms */
	bool have_limits;
	long max_connections, reserved, connections, neonpool_connections;
	/* --hosts N: N hosts with this configuration's budget, straight to this database */
	int hosts, budget;
	long fleet_sum, fleet_room;   /* hosts x budget; max_connections - reserved - others' connections */
	bool have_migrations, migrations_table;
	long migrations_latest, migrations_count;
	const char *warnings[6];
	int nwarnings;
	/* Set when unhealthy. */
	char error[2048];
	const char *error_class;
	bool retryable;
};

/* The one-row result of a query without parameters, or NULL with h->error and its class set
 * (by SQLSTATE, from the daemon's table). */
static PGresult *ctl_db_check_query(PGconn *conn, struct ctl_db_health *h, const char *sql)
{
	PGresult *res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
	char msg[1536];

	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		return res;
	if (res && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		ctl_db_oneline(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), PQpass(conn), msg, sizeof(msg));
		snprintf(h->error, sizeof(h->error), "%s: SQLSTATE %s: %s", sql, state ? state : "?", msg);
		const struct np_errclass *ec = errclass_of_kind(errclass_sqlstate(state, PQstatus(conn) != CONNECTION_OK, NULL));
		h->error_class = ec->name;
		h->retryable = ec->retryable;
	} else {
		ctl_db_conn_message(conn, msg, sizeof(msg));
		snprintf(h->error, sizeof(h->error), "%s: %s", sql, msg[0] ? msg : "no result");
		const struct np_errclass *ec = errclass_of_kind(errclass_sqlstate(NULL, PQstatus(conn) != CONNECTION_OK, NULL));
		h->error_class = ec->name;
		h->retryable = ec->retryable;
	}
	PQclear(res);
	return NULL;
}

static int ctl_db_check_run(PGconn *conn, struct ctl_db_health *h)
{
	PGresult *res;
	double sum = 0;

	h->server_version = PQparameterStatus(conn, "server_version");
	h->server_version_num = PQserverVersion(conn);
	h->ssl = PQsslInUse(conn) != 0;
	if (h->ssl) {
		h->ssl_protocol = PQsslAttribute(conn, "protocol");
		h->ssl_cipher = PQsslAttribute(conn, "cipher");
	} else {
		h->warnings[h->nwarnings++] = "the connection is not encrypted (Neon requires TLS)";
	}

	for (int i = 0; i < CTL_DB_PINGS; i++) {
		int64_t t0 = util_now_us();
		double ms;
		res = ctl_db_check_query(conn, h, "SELECT 1");
		if (!res)
			return -1;
		ms = (double)(util_now_us() - t0) / 1000.0;
		PQclear(res);
		if (i == 0 || ms < h->ping_min)
			h->ping_min = ms;
		if (i == 0 || ms > h->ping_max)
			h->ping_max = ms;
		sum += ms;
		h->pings++;
	}
	h->ping_avg = sum / h->pings;

	/* pg_stat_activity shows every backend's row (and application_name) to every role; other
	 * fields may be hidden, so count client backends by "has a database", not backend_type. */
	res = ctl_db_check_query(conn, h,
		"SELECT current_setting('max_connections')::int,"
		" current_setting('superuser_reserved_connections')::int,"
		" (SELECT count(*) FROM pg_stat_activity WHERE datid IS NOT NULL"
		"  AND backend_type IS DISTINCT FROM 'autovacuum worker'),"
		" (SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'neonpool%'),"
		" to_regclass('neonpool_migrations') IS NOT NULL");
	if (!res)
		return -1;
	h->max_connections = atol(PQgetvalue(res, 0, 0));
	h->reserved = atol(PQgetvalue(res, 0, 1));
	h->connections = atol(PQgetvalue(res, 0, 2));
	h->neonpool_connections = atol(PQgetvalue(res, 0, 3));
	h->migrations_table = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
	h->have_limits = true;
	PQclear(res);
	if (h->max_connections - h->reserved > 0 && h->connections * 10 >= (h->max_connections - h->reserved) * 9)
		h->warnings[h->nwarnings++] = "connections are above 90% of max_connections - superuser_reserved_connections";
	if (h->hosts > 0) {
		/* Others' use: every client backend that is not a neonpool process (this check's own
		 * session is one of neonpool's: application_name neonpoolctl) */
		long others = h->connections - h->neonpool_connections;
		h->fleet_sum = (long)h->hosts * h->budget;
		h->fleet_room = h->max_connections - h->reserved - (others > 0 ? others : 0);
		if (h->fleet_sum > h->fleet_room)
			h->warnings[h->nwarnings++] = "the hosts' budgets add up to more than the connections left for them "
			                              "(max_connections - superuser_reserved_connections - others' connections): "
			                              "lower budget or use a pooler (doc/deploy.md)";
	}

	if (h->migrations_table) {
		res = ctl_db_check_query(conn, h, "SELECT max(version), count(*) FROM neonpool_migrations");
		if (!res)
			return -1;
		h->migrations_latest = PQgetisnull(res, 0, 0) ? 0 : atol(PQgetvalue(res, 0, 0));
		h->migrations_count = atol(PQgetvalue(res, 0, 1));
		PQclear(res);
	}
	h->have_migrations = true;
	return 0;
}

static double ctl_db_round3(double v)
{
	return (double)(long long)(v * 1000.0 + 0.5) / 1000.0;
}

/* The report as one JSON object on stdout. Returns 0, or -1 when out of memory. */
static int ctl_db_check_print_json(const struct ctl_db_health *h, const char *conninfo, bool healthy)
{
	cJSON *o = cJSON_CreateObject(), *sub;
	bool ok = o != NULL;
	char *text;

	ok = ok && cJSON_AddBoolToObject(o, "healthy", healthy);
	ok = ok && cJSON_AddStringToObject(o, "database", conninfo);
	ok = ok && cJSON_AddNumberToObject(o, "connect_ms", ctl_db_round3((double)h->connect_us / 1000.0));
	if (ok && h->connected) {
		ok = ok && cJSON_AddStringToObject(o, "server_version", h->server_version ? h->server_version : "");
		ok = ok && cJSON_AddNumberToObject(o, "server_version_num", h->server_version_num);
		ok = ok && (sub = cJSON_AddObjectToObject(o, "ssl")) != NULL;
		ok = ok && cJSON_AddBoolToObject(sub, "in_use", h->ssl);
		ok = ok && (h->ssl_protocol ? cJSON_AddStringToObject(sub, "protocol", h->ssl_protocol)
					    : cJSON_AddNullToObject(sub, "protocol"));
		ok = ok && (h->ssl_cipher ? cJSON_AddStringToObject(sub, "cipher", h->ssl_cipher)
					  : cJSON_AddNullToObject(sub, "cipher"));
	}
	if (ok && h->pings > 0) {
		ok = ok && (sub = cJSON_AddObjectToObject(o, "select1_ms")) != NULL;
		ok = ok && cJSON_AddNumberToObject(sub, "count", h->pings);
		ok = ok && cJSON_AddNumberToObject(sub, "min", ctl_db_round3(h->ping_min));
		ok = ok && cJSON_AddNumberToObject(sub, "avg", ctl_db_round3(h->ping_avg));
		ok = ok && cJSON_AddNumberToObject(sub, "max", ctl_db_round3(h->ping_max));
	}
	if (ok && h->have_limits) {
		ok = ok && cJSON_AddNumberToObject(o, "max_connections", (double)h->max_connections);
		ok = ok && cJSON_AddNumberToObject(o, "superuser_reserved_connections", (double)h->reserved);
		ok = ok && (sub = cJSON_AddObjectToObject(o, "connections")) != NULL;
		ok = ok && cJSON_AddNumberToObject(sub, "total", (double)h->connections);
		ok = ok && cJSON_AddNumberToObject(sub, "neonpool", (double)h->neonpool_connections);
		if (ok && h->hosts > 0) {
			ok = ok && (sub = cJSON_AddObjectToObject(o, "fleet")) != NULL;
			ok = ok && cJSON_AddNumberToObject(sub, "hosts", h->hosts);
			ok = ok && cJSON_AddNumberToObject(sub, "budget", h->budget);
			ok = ok && cJSON_AddNumberToObject(sub, "sum", (double)h->fleet_sum);
			ok = ok && cJSON_AddNumberToObject(sub, "room", (double)h->fleet_room);
			ok = ok && cJSON_AddBoolToObject(sub, "fits", h->fleet_sum <= h->fleet_room);
		}
	}
	if (ok && h->have_migrations) {
		ok = ok && (sub = cJSON_AddObjectToObject(o, "migrations")) != NULL;
		ok = ok && cJSON_AddBoolToObject(sub, "table", h->migrations_table);
		ok = ok && (h->migrations_table && h->migrations_count > 0
			    ? cJSON_AddNumberToObject(sub, "latest_version", (double)h->migrations_latest)
			    : cJSON_AddNullToObject(sub, "latest_version"));
		ok = ok && cJSON_AddNumberToObject(sub, "applied", (double)h->migrations_count);
	}
	if (ok) {
		ok = (sub = cJSON_AddArrayToObject(o, "warnings")) != NULL;
		for (int i = 0; ok && i < h->nwarnings; i++) {
			cJSON *s = cJSON_CreateString(h->warnings[i]);
			ok = s && cJSON_AddItemToArray(sub, s);
		}
	}
	if (ok && !healthy) {
		ok = ok && (sub = cJSON_AddObjectToObject(o, "error")) != NULL;
		ok = ok && cJSON_AddStringToObject(sub, "class", h->error_class ? h->error_class : "other");
		ok = ok && cJSON_AddBoolToObject(sub, "retryable", h->retryable);
		ok = ok && cJSON_AddStringToObject(sub, "message", h->error);
	}
	text = ok ? cJSON_Print(o) : NULL;
	cJSON_Delete(o);
	if (!text) {
		fprintf(stderr, "neonpoolctl: check-db: out of memory\n");
		return -1;
	}
	printf("%s\n", text);
	cJSON_free(text);
	return 0;
}

static void ctl_db_check_print_human(const struct ctl_db_health *h, const char *conninfo, bool healthy)
{
	printf("database:                       %s\n", conninfo);
	printf("connect_ms:                     %.1f\n", (double)h->connect_us / 1000.0);
	if (h->connected) {
		printf("server_version:                 %s (%d)\n", h->server_version ? h->server_version : "?",
		       h->server_version_num);
		if (h->ssl)
			printf("ssl:                            yes (%s, %s)\n", h->ssl_protocol ? h->ssl_protocol : "?",
			       h->ssl_cipher ? h->ssl_cipher : "?");
		else
			printf("ssl:                            no\n");
	}
	if (h->pings > 0)
		printf("select1_ms:                     min %.3f, avg %.3f, max %.3f (%d round trips)\n", h->ping_min,
		       h->ping_avg, h->ping_max, h->pings);
	if (h->have_limits) {
		printf("max_connections:                %ld\n", h->max_connections);
		printf("superuser_reserved_connections: %ld\n", h->reserved);
		printf("connections:                    %ld (application_name neonpool*: %ld)\n", h->connections,
		       h->neonpool_connections);
		if (h->hosts > 0)
			printf("fleet:                          %d hosts x budget %d = %ld; room %ld (%s)\n", h->hosts,
			       h->budget, h->fleet_sum, h->fleet_room, h->fleet_sum <= h->fleet_room ? "fits" : "does not fit");
	}
	if (h->have_migrations) {
		if (!h->migrations_table)
			printf("migrations:                     none (no neonpool_migrations table)\n");
		else if (h->migrations_count == 0)
			printf("migrations:                     none applied\n");
		else
			printf("migrations:                     version %ld (%ld applied)\n", h->migrations_latest,
			       h->migrations_count);
	}
	for (int i = 0; i < h->nwarnings; i++)
		printf("warning:                        %s\n", h->warnings[i]);
	if (!healthy)
		printf("error:                          class: %s (%s): %s\n", h->error_class ? h->error_class : "other",
		       h->retryable ? "retry with backoff" : "retrying will not help", h->error);
	printf("healthy:                        %s\n", healthy ? "yes" : "no");
}

int ctl_db_check(const struct np_conf *c, bool json, int hosts)
{
	struct ctl_db_health h;
	char conninfo[1024];
	bool healthy = false;
	PGconn *conn;

	memset(&h, 0, sizeof(h));
	h.hosts = hosts;
	h.budget = c->budget;
	if (c->database_url[0])
		conf_redact_conninfo(c->database_url, conninfo, sizeof(conninfo));
	else
		snprintf(conninfo, sizeof(conninfo), "(not set)");
	conn = ctl_db_open(c, &h.connect_us, h.error, sizeof(h.error));
	if (!conn) {
		h.error_class = "config";
	} else if (PQstatus(conn) != CONNECTION_OK) {
		ctl_db_conn_message(conn, h.error, sizeof(h.error));
		const struct np_errclass *ec = errclass_connect(h.error);
		h.error_class = ec->name;
		h.retryable = ec->retryable;
	} else {
		PQsetNoticeReceiver(conn, ctl_db_notice, NULL);
		h.connected = true;
		healthy = ctl_db_check_run(conn, &h) == 0;
	}
	if (json) {
		if (ctl_db_check_print_json(&h, conninfo, healthy) < 0)
			healthy = false;
	} else {
		ctl_db_check_print_human(&h, conninfo, healthy);
	}
	PQfinish(conn);
	if (!healthy)
		return 1;
	return h.hosts > 0 && h.have_limits && h.fleet_sum > h.fleet_room ? 2 : 0;
}

