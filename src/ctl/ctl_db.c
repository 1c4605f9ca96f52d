/* SPDX-License-Identifier: PostgreSQL */
/* ctl_db.c - what neonpoolctl's database commands share: connecting, messages, statements (error classes: errclass.c). */
#include "ctl_db.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "util.h"




#define CTL_DB_MASK "********"

/* ---- messages ---- */

/* Copy src to dst (capacity n) as one line: a line break and the indentation after it become
 * one space, trailing space goes, and every occurrence of secret (when not "") is masked. */
void ctl_db_oneline(const char *src, const char *secret, char *dst, size_t n)
{
	size_t slen = secret ? strlen(secret) : 0;
	size_t o = 0;

	if (n == 0)
		return;
	while (src && *src && o + 1 < n) {
		if (slen && strncmp(src, secret, slen) == 0) {
			for (const char *m = CTL_DB_MASK; *m && o + 1 < n; m++)
				dst[o++] = *m;
			src += slen;
		} else if (*src == '\n' || *src == '\r') {
			while (*src == '\n' || *src == '\r' || *src == '\t' || *src == ' ')
				src++;
			if (*src && o > 0)
				dst[o++] = ' ';
		} else {
			dst[o++] = *src++;
		}
	}
	while (o > 0 && (dst[o - 1] == ' ' || dst[o - 1] == '\t'))
		o--;
	dst[o] = '\0';
}

/* The connection's error message on one line, without the password it used. */
void ctl_db_conn_message(PGconn *conn, char *buf, size_t n)
{
	ctl_db_oneline(PQerrorMessage(conn), PQpass(conn), buf, n);
}

/* Show server warnings; drop NOTICE and below ("relation already exists, skipping"). */
void ctl_db_notice(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	char line[1024];

	(void)arg;
	if (!sev || strcmp(sev, "WARNING") != 0)
		return;
	ctl_db_oneline(msg ? msg : "", NULL, line, sizeof(line));
	fprintf(stderr, "neonpoolctl: server warning: %s\n", line);
}

/* Print "neonpoolctl: CTX: SQLSTATE S: message" for a failed result (res may be NULL: the
 * connection's message is used), with detail and hint lines when the server sent them. When
 * sql is given and the server sent a position, the line within sql is added. */
void ctl_db_print_sql_error(PGconn *conn, const PGresult *res, const char *ctx, const char *sql)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
	const char *secret = PQpass(conn);
	char msg[2048], where[64] = "";

	if (primary)
		ctl_db_oneline(primary, secret, msg, sizeof(msg));
	else if (res && PQresultErrorMessage(res)[0])
		ctl_db_oneline(PQresultErrorMessage(res), secret, msg, sizeof(msg));
	else
		ctl_db_conn_message(conn, msg, sizeof(msg));
	if (!msg[0])
		snprintf(msg, sizeof(msg), "%s", res ? PQresStatus(PQresultStatus(res)) : "no result (out of memory?)");
	if (sql && pos) {
		/* The position counts characters (UTF-8 here), from 1. */
		long want = strtol(pos, NULL, 10), chars = 0;
		int line = 1;
		for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
			if ((*p & 0xC0) == 0x80)
				continue;
			if (++chars >= want)
				break;
			if (*p == '\n')
				line++;
		}
		snprintf(where, sizeof(where), " at line %d", line);
	}
	if (state)
		fprintf(stderr, "neonpoolctl: %s: SQLSTATE %s%s: %s\n", ctx, state, where, msg);
	else
		fprintf(stderr, "neonpoolctl: %s%s: %s\n", ctx, where, msg);
	if (detail) {
		ctl_db_oneline(detail, secret, msg, sizeof(msg));
		fprintf(stderr, "neonpoolctl: %s: detail: %s\n", ctx, msg);
	}
	if (hint) {
		ctl_db_oneline(hint, secret, msg, sizeof(msg));
		fprintf(stderr, "neonpoolctl: %s: hint: %s\n", ctx, msg);
	}
}

/* ---- connecting ---- */

/* Start a blocking connection. Returns the PGconn (check PQstatus: it may have failed), or
 * NULL with a reason in err when libpq was not even tried (no URL, unreadable password file). */
PGconn *ctl_db_open(const struct np_conf *c, int64_t *connect_us, char *err, size_t errlen)
{
	char password[1024] = "";
	const char *keys[5], *vals[5];
	int k = 0;
	int64_t t0;
	PGconn *conn;

	err[0] = '\0';
	if (!c->database_url[0]) {
		snprintf(err, errlen, "no database: set database_url in %s or DATABASE_URL in the environment",
			 c->file[0] ? c->file : "the configuration");
		return NULL;
	}
	if (c->database_password_file[0]) {
		struct np_conf_error cerr;
		if (conf_read_password(c, password, sizeof(password), &cerr) < 0) {
			conf_error_format(&cerr, err, errlen);
			return NULL;
		}
	}
	/* Before dbname: the URL may raise it (NEON.md §3 suggests 10-15 s). After dbname: ours win. */
	keys[k] = "connect_timeout", vals[k++] = "10";
	keys[k] = "dbname", vals[k++] = c->database_url;
	if (password[0])
		keys[k] = "password", vals[k++] = password;
	keys[k] = "application_name", vals[k++] = "neonpoolctl";
	keys[k] = NULL, vals[k] = NULL;

	t0 = util_now_us();
	conn = PQconnectdbParams(keys, vals, 1);
	if (connect_us)
		*connect_us = util_now_us() - t0;
	explicit_bzero(password, sizeof(password));
	if (!conn)
		snprintf(err, errlen, "out of memory");
	return conn;
}

static void ctl_db_print_connect_error(const struct np_conf *c, PGconn *conn)
{
	char red[1024], msg[2048];

	conf_redact_conninfo(c->database_url, red, sizeof(red));
	ctl_db_conn_message(conn, msg, sizeof(msg));
	fprintf(stderr, "neonpoolctl: cannot connect to %s: %s\n", red, msg);
}

int ctl_db_connect(const struct np_conf *c, PGconn **out)
{
	char err[1024];
	PGconn *conn;

	*out = NULL;
	conn = ctl_db_open(c, NULL, err, sizeof(err));
	if (!conn) {
		fprintf(stderr, "neonpoolctl: %s\n", err);
		return -1;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		ctl_db_print_connect_error(c, conn);
		PQfinish(conn);
		return -1;
	}
	PQsetNoticeReceiver(conn, ctl_db_notice, NULL);
	*out = conn;
	return 0;
}

/* ---- statements ---- */

/* Run one statement with text parameters. Returns the result when its status is want; else
 * prints the error under ctx and returns NULL. */
PGresult *ctl_db_exec(PGconn *conn, const char *ctx, const char *sql, int nparams,
			     const Oid *types, const char *const *values, ExecStatusType want)
{
	PGresult *res = PQexecParams(conn, sql, nparams, types, values, NULL, NULL, 0);
	if (res && PQresultStatus(res) == want)
		return res;
	ctl_db_print_sql_error(conn, res, ctx, NULL);
	PQclear(res);
	return NULL;
}

/* A statement without parameters or rows (BEGIN, COMMIT, DDL). Returns 0 or -1 (printed). */
int ctl_db_command(PGconn *conn, const char *ctx, const char *sql)
{
	PGresult *res = ctl_db_exec(conn, ctx, sql, 0, NULL, NULL, PGRES_COMMAND_OK);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

/* Roll back an open or failed transaction (quietly: the error was already printed). Returns
 * whether a transaction was open and is now rolled back. */
bool ctl_db_rollback(PGconn *conn)
{
	PGTransactionStatusType ts = PQtransactionStatus(conn);
	PGresult *res;
	bool done;

	if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR)
		return false;
	res = PQexec(conn, "ROLLBACK");
	done = res && PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	return done;
}

