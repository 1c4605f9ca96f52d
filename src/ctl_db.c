/* ctl_db.c - neonpoolctl's database commands: connect, migrate, seed and check-db. */
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

/* Type OIDs of the parameters we send (fixed in PostgreSQL's pg_type.dat). */
#define CTL_DB_INT4OID 23
#define CTL_DB_INT8OID 20
#define CTL_DB_TEXTOID 25

/* The pg_advisory_xact_lock key that serializes `migrate` on every host: "neonpool" in ASCII.
 * Transaction-scoped, so it works through PgBouncer in transaction mode (NEON.md §2.2). */
#define CTL_DB_MIGRATE_LOCK INT64_C(0x6e656f6e706f6f6c)

#define CTL_DB_MAX_MIGRATION_BYTES (64L * 1024 * 1024)
#define CTL_DB_MIGRATION_NAME_MAX 256
#define CTL_DB_PINGS 5
#define CTL_DB_MASK "********"

/* ---- messages ---- */

/* Copy src to dst (capacity n) as one line: a line break and the indentation after it become
 * one space, trailing space goes, and every occurrence of secret (when not "") is masked. */
static void ctl_db_oneline(const char *src, const char *secret, char *dst, size_t n)
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
static void ctl_db_conn_message(PGconn *conn, char *buf, size_t n)
{
	ctl_db_oneline(PQerrorMessage(conn), PQpass(conn), buf, n);
}

/* Show server warnings; drop NOTICE and below ("relation already exists, skipping"). */
static void ctl_db_notice(void *arg, const PGresult *res)
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
static void ctl_db_print_sql_error(PGconn *conn, const PGresult *res, const char *ctx, const char *sql)
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
static PGconn *ctl_db_open(const struct np_conf *c, int64_t *connect_us, char *err, size_t errlen)
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

/* ---- error classes ---- */

struct ctl_db_class_rule {
	const char *needle;         /* matched case-insensitively anywhere in the message */
	const char *cls;
	bool retryable;
};

/* First match wins: specific texts before generic ones. Neon's proxy sends every startup error
 * as XX000, so connect errors are classified by text (NEON.md §1.5, §7.5). */
static const struct ctl_db_class_rule ctl_db_class_rules[] = {
	{ "Endpoint ID is not specified", "neon_sni", false },
	{ "unsupported startup parameter", "neon_startup_parameter", false },
	{ "Couldn't connect to compute node", "neon_compute", true },
	{ "quota", "neon_quota", false },
	{ "active endpoints limit", "neon_endpoint_limit", true },
	{ "concurrently active endpoints", "neon_endpoint_limit", true },
	{ "endpoint is disabled", "neon_endpoint_disabled", false },
	{ "endpoint cannot be found", "neon_endpoint_not_found", false },
	{ "Control plane request failed", "neon_control_plane", true },
	{ "Console request failed", "neon_control_plane", true },
	{ "Too many connections to this endpoint", "neon_rate_limit", true },
	{ "Failed to acquire permit", "neon_rate_limit", true },
	{ "connection is insecure", "tls", false },
	/* Connection slots: PostgreSQL's 53300 texts and PgBouncer's client limit. */
	{ "53300", "too_many_clients", true },
	{ "too many clients", "too_many_clients", true },
	{ "remaining connection slots", "too_many_clients", true },
	{ "too many connections for", "too_many_clients", true },
	{ "max_client_conn", "too_many_clients", true },
	/* Credentials and permissions. */
	{ "password authentication failed", "auth", false },
	{ "authentication failed", "auth", false },
	{ "no password supplied", "auth", false },
	{ "channel binding", "auth", false },
	{ "no pg_hba.conf entry", "auth", false },
	{ "role \"", "auth", false },
	{ "permission denied", "auth", false },
	/* The server is starting, stopping, or went away during the handshake. */
	{ "the database system is", "server_unavailable", true },
	{ "terminating connection", "server_unavailable", true },
	{ "server closed the connection unexpectedly", "connection_lost", true },
	{ "SSL SYSCALL error", "connection_lost", true },
	{ "SSL connection has been closed unexpectedly", "connection_lost", true },
	/* The network. */
	{ "timeout expired", "timeout", true },
	{ "timed out", "timeout", true },
	{ "Connection refused", "unreachable", true },
	{ "No route to host", "unreachable", true },
	{ "Network is unreachable", "unreachable", true },
	{ "Host is down", "unreachable", true },
	{ "could not translate host name", "unreachable", true },
	{ "No such file or directory", "unreachable", true },
	/* The connection string and TLS. */
	{ "does not exist", "config", false },
	{ "invalid", "config", false },
	{ "missing \"=\"", "config", false },
	{ "SSL", "tls", false },
	{ "certificate", "tls", false },
};

const char *ctl_db_error_class(const char *message, bool *retryable)
{
	for (size_t i = 0; message && i < sizeof(ctl_db_class_rules) / sizeof(ctl_db_class_rules[0]); i++) {
		if (strcasestr(message, ctl_db_class_rules[i].needle)) {
			if (retryable)
				*retryable = ctl_db_class_rules[i].retryable;
			return ctl_db_class_rules[i].cls;
		}
	}
	if (retryable)
		*retryable = false;
	return "other";
}

/* ---- statements ---- */

/* Run one statement with text parameters. Returns the result when its status is want; else
 * prints the error under ctx and returns NULL. */
static PGresult *ctl_db_exec(PGconn *conn, const char *ctx, const char *sql, int nparams,
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
static int ctl_db_command(PGconn *conn, const char *ctx, const char *sql)
{
	PGresult *res = ctl_db_exec(conn, ctx, sql, 0, NULL, NULL, PGRES_COMMAND_OK);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

/* Roll back an open or failed transaction (quietly: the error was already printed). Returns
 * whether a transaction was open and is now rolled back. */
static bool ctl_db_rollback(PGconn *conn)
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

/* ---- migrate ---- */

struct ctl_db_migration {
	int version;
	char file[CTL_DB_MIGRATION_NAME_MAX];
};

/* ^[0-9]{3}_[a-z0-9_]+\.sql$ */
static bool ctl_db_migration_name_ok(const char *s)
{
	size_t len = strlen(s);

	if (len < 9 || strcmp(s + len - 4, ".sql") != 0 || s[3] != '_')
		return false;
	for (size_t i = 0; i < 3; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	for (size_t i = 4; i < len - 4; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static int ctl_db_migration_cmp(const void *a, const void *b)
{
	const struct ctl_db_migration *x = a, *y = b;
	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	return strcmp(x->file, y->file);
}

/* The *.sql files of dir, checked and sorted by number. Returns 0, or -1 after printing every
 * problem (bad names, duplicate numbers, unreadable directory). */
static int ctl_db_scan(const char *dir, struct ctl_db_migration **out, size_t *count)
{
	struct ctl_db_migration *m = NULL;
	size_t n = 0, cap = 0;
	bool bad = false;
	struct dirent *e;
	DIR *d;

	*out = NULL;
	*count = 0;
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "neonpoolctl: migrate: cannot open directory %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
		const char *name = e->d_name;
		size_t len = strlen(name);
		struct stat st;

		if (name[0] == '.' || len < 4 || strcasecmp(name + len - 4, ".sql") != 0)
			continue;
		if (!ctl_db_migration_name_ok(name) || len >= CTL_DB_MIGRATION_NAME_MAX) {
			fprintf(stderr, "neonpoolctl: migrate: %s/%s: bad file name: migrations are named NNN_name.sql "
				"(three digits, '_', then a-z, 0-9 and '_')\n", dir, name);
			bad = true;
			continue;
		}
		if (fstatat(dirfd(d), name, &st, 0) < 0 || !S_ISREG(st.st_mode)) {
			fprintf(stderr, "neonpoolctl: migrate: %s/%s: not a regular file\n", dir, name);
			bad = true;
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct ctl_db_migration *nm = realloc(m, ncap * sizeof(*m));
			if (!nm) {
				fprintf(stderr, "neonpoolctl: migrate: out of memory\n");
				bad = true;
				break;
			}
			m = nm;
			cap = ncap;
		}
		m[n].version = (name[0] - '0') * 100 + (name[1] - '0') * 10 + (name[2] - '0');
		memcpy(m[n].file, name, len + 1);
		n++;
	}
	if (errno) {
		fprintf(stderr, "neonpoolctl: migrate: cannot read directory %s: %s\n", dir, strerror(errno));
		bad = true;
	}
	closedir(d);
	if (n > 1)
		qsort(m, n, sizeof(*m), ctl_db_migration_cmp);
	for (size_t i = 1; i < n; i++) {
		if (m[i].version == m[i - 1].version) {
			fprintf(stderr, "neonpoolctl: migrate: duplicate migration number %03d: %s and %s\n",
				m[i].version, m[i - 1].file, m[i].file);
			bad = true;
		}
	}
	if (!bad && n == 0) {
		fprintf(stderr, "neonpoolctl: migrate: no migrations (NNN_name.sql) in %s\n", dir);
		bad = true;
	}
	if (bad) {
		free(m);
		return -1;
	}
	*out = m;
	*count = n;
	return 0;
}

/* The whole file dir/name, NUL-terminated (malloc'd), or NULL after printing why. */
static char *ctl_db_read_file(const char *dir, const char *name)
{
	char path[4096];
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		fprintf(stderr, "neonpoolctl: migrate: %s: path too long\n", name);
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "neonpoolctl: migrate: cannot open %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (st.st_size > CTL_DB_MAX_MIGRATION_BYTES) {
		fprintf(stderr, "neonpoolctl: migrate: %s: larger than %ld bytes\n", path, CTL_DB_MAX_MIGRATION_BYTES);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fprintf(stderr, "neonpoolctl: migrate: %s: out of memory\n", path);
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "neonpoolctl: migrate: cannot read %s: %s\n", path, strerror(errno));
			close(fd);
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	if (memchr(buf, '\0', got)) {
		fprintf(stderr, "neonpoolctl: migrate: %s: contains a NUL byte\n", path);
		free(buf);
		return NULL;
	}
	return buf;
}

enum ctl_db_step { CTL_DB_APPLIED, CTL_DB_SKIPPED, CTL_DB_FAILED };

static const char ctl_db_sql_migrations_table[] =
	"CREATE TABLE IF NOT EXISTS neonpool_migrations ("
	" version int PRIMARY KEY,"
	" name text NOT NULL,"
	" applied_at timestamptz NOT NULL DEFAULT now())";

/* Apply one migration in one transaction: lock, (create the table), check, run, record, commit. */
static enum ctl_db_step ctl_db_migrate_one(PGconn *conn, const char *dir, const struct ctl_db_migration *m,
					   bool first)
{
	const Oid lock_types[1] = { CTL_DB_INT8OID };
	const Oid ver_types[1] = { CTL_DB_INT4OID };
	const Oid ins_types[2] = { CTL_DB_INT4OID, CTL_DB_TEXTOID };
	char key[32], version[16], ctx[CTL_DB_MIGRATION_NAME_MAX + 16];
	const char *lock_vals[1] = { key };
	const char *ver_vals[1] = { version };
	const char *ins_vals[2] = { version, m->file };
	PGresult *res;
	char *sql;
	int64_t t0;

	snprintf(key, sizeof(key), "%" PRId64, CTL_DB_MIGRATE_LOCK);
	snprintf(version, sizeof(version), "%d", m->version);
	snprintf(ctx, sizeof(ctx), "migrate: %s", m->file);
	/* Read it before the transaction opens: no file I/O while holding the lock. */
	sql = ctl_db_read_file(dir, m->file);
	if (!sql)
		return CTL_DB_FAILED;

	/* READ COMMITTED whatever the role's default: each statement after the lock must see what
	 * the previous holder committed. */
	if (ctl_db_command(conn, ctx, "BEGIN ISOLATION LEVEL READ COMMITTED") < 0)
		goto fail;
	res = ctl_db_exec(conn, ctx, "SELECT pg_advisory_xact_lock($1)", 1, lock_types, lock_vals, PGRES_TUPLES_OK);
	if (!res)
		goto fail;
	PQclear(res);
	if (first && ctl_db_command(conn, ctx, ctl_db_sql_migrations_table) < 0)
		goto fail;
	res = ctl_db_exec(conn, ctx, "SELECT name FROM neonpool_migrations WHERE version = $1", 1, ver_types,
			  ver_vals, PGRES_TUPLES_OK);
	if (!res)
		goto fail;
	if (PQntuples(res) > 0) {
		char applied_as[CTL_DB_MIGRATION_NAME_MAX];
		snprintf(applied_as, sizeof(applied_as), "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		if (ctl_db_command(conn, ctx, "COMMIT") < 0)
			goto fail;
		if (strcmp(applied_as, m->file) != 0)
			printf("skipped %s (version %d already applied, as %s)\n", m->file, m->version, applied_as);
		else
			printf("skipped %s (already applied)\n", m->file);
		free(sql);
		return CTL_DB_SKIPPED;
	}
	PQclear(res);

	t0 = util_now_us();
	res = PQexec(conn, sql);
	if (!res || (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK &&
		     PQresultStatus(res) != PGRES_EMPTY_QUERY)) {
		ctl_db_print_sql_error(conn, res, ctx, sql);
		PQclear(res);
		goto fail;
	}
	PQclear(res);
	if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		fprintf(stderr, "neonpoolctl: %s: the file ended the transaction: migrations must not contain "
			"BEGIN, COMMIT or ROLLBACK (what ran before it may have been committed)\n", ctx);
		goto fail;
	}
	res = ctl_db_exec(conn, ctx, "INSERT INTO neonpool_migrations (version, name) VALUES ($1, $2)", 2,
			  ins_types, ins_vals, PGRES_COMMAND_OK);
	if (!res)
		goto fail;
	PQclear(res);
	res = PQexec(conn, "COMMIT");
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		ctl_db_print_sql_error(conn, res, ctx, NULL);
		fprintf(stderr, "neonpoolctl: %s: the commit failed: the migration may or may not be applied; "
			"run migrate again\n", ctx);
		PQclear(res);
		goto fail;
	}
	PQclear(res);
	printf("applied %s (%.1f ms)\n", m->file, (double)(util_now_us() - t0) / 1000.0);
	free(sql);
	return CTL_DB_APPLIED;

fail:
	if (ctl_db_rollback(conn))
		fprintf(stderr, "neonpoolctl: %s: rolled back\n", ctx);
	free(sql);
	return CTL_DB_FAILED;
}

int ctl_db_migrate(const struct np_conf *c, const char *sql_dir)
{
	struct ctl_db_migration *m;
	size_t n, applied = 0, skipped = 0, i;
	PGconn *conn;
	int rc = 0;

	if (ctl_db_scan(sql_dir, &m, &n) < 0)
		return 1;
	if (ctl_db_connect(c, &conn) < 0) {
		free(m);
		return 1;
	}
	for (i = 0; i < n; i++) {
		enum ctl_db_step st = ctl_db_migrate_one(conn, sql_dir, &m[i], i == 0);
		if (st == CTL_DB_FAILED) {
			printf("migrate: failed at %s: %zu applied, %zu skipped, %zu not tried\n", m[i].file, applied,
			       skipped, n - i - 1);
			rc = 1;
			break;
		}
		if (st == CTL_DB_APPLIED)
			applied++;
		else
			skipped++;
	}
	if (rc == 0) {
		PGresult *res = ctl_db_exec(conn, "migrate", "SELECT max(version) FROM neonpool_migrations", 0, NULL,
					    NULL, PGRES_TUPLES_OK);
		if (!res) {
			rc = 1;
		} else {
			int latest = atoi(PQgetvalue(res, 0, 0));
			printf("migrate: %zu applied, %zu skipped; database at version %d\n", applied, skipped, latest);
			if (latest > m[n - 1].version)
				fprintf(stderr, "neonpoolctl: migrate: warning: the database has version %d, newer than "
					"the newest file in %s (%s)\n", latest, sql_dir, m[n - 1].file);
			PQclear(res);
		}
	}
	PQfinish(conn);
	free(m);
	return rc;
}

/* ---- seed ---- */

/* Word lists for the generated text (consonant-initial, so "a %s" reads right). A CROSS JOIN
 * source named w. */
#define CTL_DB_SEED_WORDS \
	"(SELECT" \
	" ARRAY['simple','central','hidden','linear','stable','complex','natural','formal','careful'," \
	"'critical','basic','general','partial','random','modern','classical']::text[] AS adj," \
	" ARRAY['cell','equation','theorem','molecule','river','market','language','function','planet'," \
	"'protein','signal','population','structure','boundary','variable','pattern','theory','system'," \
	"'network','reaction']::text[] AS noun," \
	" ARRAY['explains','describes','changes','limits','supports','predicts','reveals','connects'," \
	"'measures','shapes','controls','transforms']::text[] AS verb," \
	" ARRAY['in practice','over time','under pressure','at every scale','to a first approximation'," \
	"'across many fields','for small values','in the long run','with surprising accuracy'," \
	"'in the simplest case']::text[] AS tail," \
	" ARRAY['The %s %s %s the %s %s %s.','In most cases, a %s %s %s every %s %s %s.'," \
	"'Students often find that the %s %s %s a %s %s %s.','As we saw earlier, each %s %s %s the %s %s %s.'" \
	"]::text[] AS tpl," \
	" ARRAY['Principles of %s','Introduction to %s','Foundations of %s','%s: A First Course'," \
	"'Essentials of %s','Topics in %s']::text[] AS title," \
	" ARRAY['Biology','Chemistry','Physics','Economics','Linguistics','History','Mathematics','Geology'," \
	"'Astronomy','Statistics']::text[] AS field," \
	" ARRAY['Ada','Boris','Clara','David','Elena','Farid','Grace','Hiro','Ines','Jonas','Kemal'," \
	"'Lena']::text[] AS first," \
	" ARRAY['Novak','Okafor','Petrov','Quinn','Rossi','Sato','Tanaka','Underwood','Varga','Weber'," \
	"'Xu','Young']::text[] AS last) AS w"

/* The sample book numbered b. */
#define CTL_DB_SEED_SLUG "format('sample-book-%s', lpad(b::text, 3, '0'))"

static const char ctl_db_sql_seed_books[] =
	"INSERT INTO books (slug, title, author, language)"
	" SELECT " CTL_DB_SEED_SLUG ","
	"  format('%s, Vol. %s', format(w.title[1 + (b * 7) % cardinality(w.title)],"
	"   w.field[1 + (b * 3) % cardinality(w.field)]), b),"
	"  w.first[1 + (b * 5) % cardinality(w.first)] || ' ' || w.last[1 + (b * 11) % cardinality(w.last)],"
	"  'en'"
	" FROM generate_series(1, $1::int) AS b CROSS JOIN " CTL_DB_SEED_WORDS
	" ON CONFLICT (slug) DO NOTHING";

static const char ctl_db_sql_seed_chapters[] =
	"INSERT INTO chapters (book_id, position, title)"
	" SELECT bk.id, c,"
	"  format('The %s %s', initcap(w.adj[1 + (b * 13 + c * 7) % cardinality(w.adj)]),"
	"   initcap(w.noun[1 + (b * 17 + c * 3) % cardinality(w.noun)]))"
	" FROM generate_series(1, $1::int) AS b"
	" JOIN books bk ON bk.slug = " CTL_DB_SEED_SLUG
	" CROSS JOIN generate_series(1, $2::int) AS c CROSS JOIN " CTL_DB_SEED_WORDS
	" ON CONFLICT (book_id, position) DO NOTHING";

/* Each passage: 3 to 6 sentences; word choices from a multiplicative hash of (book, chapter,
 * passage, sentence), all in bigint without overflow, so the text is the same on every run. */
static const char ctl_db_sql_seed_passages[] =
	"INSERT INTO passages (chapter_id, position, body)"
	" SELECT ch.id, p,"
	"  (SELECT string_agg(format(w.tpl[1 + (r.h / 1000003) % cardinality(w.tpl)],"
	"     w.adj[1 + r.h % cardinality(w.adj)], w.noun[1 + (r.h / 7) % cardinality(w.noun)],"
	"     w.verb[1 + (r.h / 101) % cardinality(w.verb)], w.adj[1 + (r.h / 1009) % cardinality(w.adj)],"
	"     w.noun[1 + (r.h / 10007) % cardinality(w.noun)], w.tail[1 + (r.h / 100003) % cardinality(w.tail)]),"
	"    ' ' ORDER BY s)"
	"   FROM generate_series(1, 3 + (x.seed % 4)::int) AS s,"
	"    LATERAL (SELECT ((x.seed + s * 7919) % 1000003) * 2654435761 % 4294967291 AS h) AS r)"
	" FROM generate_series(1, $1::int) AS b"
	" JOIN books bk ON bk.slug = " CTL_DB_SEED_SLUG
	" JOIN chapters ch ON ch.book_id = bk.id AND ch.position <= $2::int"
	" CROSS JOIN generate_series(1, $3::int) AS p"
	" CROSS JOIN LATERAL (SELECT b::bigint * 1000003 + ch.position * 10007 + p * 101 AS seed) AS x"
	" CROSS JOIN " CTL_DB_SEED_WORDS
	" ON CONFLICT (chapter_id, position) DO NOTHING";

static const char ctl_db_sql_seed_totals[] =
	"SELECT (SELECT count(*) FROM books WHERE slug LIKE 'sample-book-%'),"
	" (SELECT count(*) FROM chapters ch JOIN books bk ON bk.id = ch.book_id"
	"  WHERE bk.slug LIKE 'sample-book-%'),"
	" (SELECT count(*) FROM passages ps JOIN chapters ch ON ch.id = ps.chapter_id"
	"  JOIN books bk ON bk.id = ch.book_id WHERE bk.slug LIKE 'sample-book-%')";

int ctl_db_seed(const struct np_conf *c, int books, int chapters, int passages)
{
	static const char *const what[3] = { "books", "chapters", "passages" };
	const char *const sql[3] = { ctl_db_sql_seed_books, ctl_db_sql_seed_chapters, ctl_db_sql_seed_passages };
	const Oid types[3] = { CTL_DB_INT4OID, CTL_DB_INT4OID, CTL_DB_INT4OID };
	char nb[16], nc[16], np[16], ctx[64];
	const char *vals[3] = { nb, nc, np };
	char inserted[3][32];
	PGresult *res;
	PGconn *conn;

	if (books < 1 || books > CTL_DB_SEED_MAX_BOOKS || chapters < 1 || chapters > CTL_DB_SEED_MAX_CHAPTERS ||
	    passages < 1 || passages > CTL_DB_SEED_MAX_PASSAGES) {
		fprintf(stderr, "neonpoolctl: seed: counts out of range: books 1..%d, chapters 1..%d, passages 1..%d\n",
			CTL_DB_SEED_MAX_BOOKS, CTL_DB_SEED_MAX_CHAPTERS, CTL_DB_SEED_MAX_PASSAGES);
		return 1;
	}
	if ((long)books * chapters * passages > CTL_DB_SEED_MAX_TOTAL) {
		fprintf(stderr, "neonpoolctl: seed: %ld passages in total is more than the limit of %ld\n",
			(long)books * chapters * passages, CTL_DB_SEED_MAX_TOTAL);
		return 1;
	}
	snprintf(nb, sizeof(nb), "%d", books);
	snprintf(nc, sizeof(nc), "%d", chapters);
	snprintf(np, sizeof(np), "%d", passages);
	if (ctl_db_connect(c, &conn) < 0)
		return 1;

	/* One transaction: a failed seed leaves nothing half-inserted. */
	if (ctl_db_command(conn, "seed", "BEGIN") < 0)
		goto fail;
	for (int i = 0; i < 3; i++) {
		snprintf(ctx, sizeof(ctx), "seed: inserting %s", what[i]);
		res = PQexecParams(conn, sql[i], i + 1, types, vals, NULL, NULL, 0);
		if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
			const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
			ctl_db_print_sql_error(conn, res, ctx, NULL);
			if (state && strcmp(state, "42P01") == 0)
				fprintf(stderr, "neonpoolctl: seed: run `neonpoolctl migrate` first\n");
			PQclear(res);
			goto fail;
		}
		snprintf(inserted[i], sizeof(inserted[i]), "%s", PQcmdTuples(res));
		PQclear(res);
	}
	if (ctl_db_command(conn, "seed: commit", "COMMIT") < 0)
		goto fail;
	res = ctl_db_exec(conn, "seed: counting", ctl_db_sql_seed_totals, 0, NULL, NULL, PGRES_TUPLES_OK);
	if (!res)
		goto fail;
	printf("inserted: books %s, chapters %s, passages %s\n", inserted[0], inserted[1], inserted[2]);
	printf("sample totals: books %s, chapters %s, passages %s\n", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
	       PQgetvalue(res, 0, 2));
	PQclear(res);
	PQfinish(conn);
	return 0;

fail:
	ctl_db_rollback(conn);
	PQfinish(conn);
	return 1;
}

/* ---- check-db ---- */

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
	bool have_migrations, migrations_table;
	long migrations_latest, migrations_count;
	const char *warnings[4];
	int nwarnings;
	/* Set when unhealthy. */
	char error[2048];
	const char *error_class;
	bool retryable;
};

/* The one-row result of a query without parameters, or NULL with h->error and its class set. */
static PGresult *ctl_db_check_query(PGconn *conn, struct ctl_db_health *h, const char *sql, const char *cls)
{
	PGresult *res = PQexecParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
	char msg[1536];

	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		return res;
	if (res && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		ctl_db_oneline(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), PQpass(conn), msg, sizeof(msg));
		snprintf(h->error, sizeof(h->error), "%s: SQLSTATE %s: %s", sql, state ? state : "?", msg);
		h->error_class = cls;
		h->retryable = false;
	} else {
		ctl_db_conn_message(conn, msg, sizeof(msg));
		snprintf(h->error, sizeof(h->error), "%s: %s", sql, msg[0] ? msg : "no result");
		h->error_class = PQstatus(conn) == CONNECTION_OK ? cls : "connection_lost";
		h->retryable = PQstatus(conn) != CONNECTION_OK;
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
		res = ctl_db_check_query(conn, h, "SELECT 1", "query");
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
		" to_regclass('neonpool_migrations') IS NOT NULL", "query");
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

	if (h->migrations_table) {
		res = ctl_db_check_query(conn, h, "SELECT max(version), count(*) FROM neonpool_migrations", "query");
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

int ctl_db_check(const struct np_conf *c, bool json)
{
	struct ctl_db_health h;
	char conninfo[1024];
	bool healthy = false;
	PGconn *conn;

	memset(&h, 0, sizeof(h));
	if (c->database_url[0])
		conf_redact_conninfo(c->database_url, conninfo, sizeof(conninfo));
	else
		snprintf(conninfo, sizeof(conninfo), "(not set)");
	conn = ctl_db_open(c, &h.connect_us, h.error, sizeof(h.error));
	if (!conn) {
		h.error_class = "config";
	} else if (PQstatus(conn) != CONNECTION_OK) {
		ctl_db_conn_message(conn, h.error, sizeof(h.error));
		h.error_class = ctl_db_error_class(h.error, &h.retryable);
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
	return healthy ? 0 : 1;
}
