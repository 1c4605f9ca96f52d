/* SPDX-License-Identifier: PostgreSQL */
/* ctl_migrate.c - `neonpoolctl migrate`: numbered SQL files applied in order, once, checksummed, under an advisory lock. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ctl_db.h"
#include "digest.h"
#include "util.h"

/* The pg_advisory_xact_lock key that serializes `migrate` on every host: "neonpool" in ASCII.
 * Transaction-scoped, so it works through PgBouncer in transaction mode (NEON.md §2.2). */
#define CTL_DB_MIGRATE_LOCK INT64_C(0x6e656f6e706f6f6c)
#define CTL_DB_MAX_MIGRATION_BYTES (64L * 1024 * 1024)
#define CTL_DB_MIGRATION_NAME_MAX 256

#define CTL_DB_SUM_HEX (DIGEST_SHA256_LEN * 2 + 1)
/* How much of a checksum the lines of --status show (the errors show all of it). */
#define CTL_DB_SUM_SHORT 12

/* A file of the directory. */
struct ctl_db_migration {
	int version;
	char file[CTL_DB_MIGRATION_NAME_MAX];
	char sum[CTL_DB_SUM_HEX];   /* SHA-256 of the file's bytes, lowercase hex */
	char *sql;                  /* the file, NUL-terminated (what is hashed is what runs) */
};

/* A row of neonpool_migrations. */
struct ctl_db_applied {
	int version;
	char name[CTL_DB_MIGRATION_NAME_MAX];
	char sum[CTL_DB_SUM_HEX];   /* "" when recorded before checksums existed */
	char at[32];                /* applied_at in UTC, "YYYY-MM-DD HH:MM:SS" */
};

/* What a version is, the directory's file beside the database's row. */
enum ctl_db_state {
	CTL_DB_PENDING,     /* a file, no row */
	CTL_DB_APPLIED,     /* the row's checksum is the file's */
	CTL_DB_CHANGED,     /* the row's checksum is not the file's: the file was edited after it was applied */
	CTL_DB_UNCHECKED,   /* a row recorded before checksums existed: migrate records the file's */
	CTL_DB_MISSING,     /* a row, no file */
};

static const char *const ctl_db_state_name[] = {
	[CTL_DB_PENDING] = "pending", [CTL_DB_APPLIED] = "applied", [CTL_DB_CHANGED] = "changed",
	[CTL_DB_UNCHECKED] = "unchecked", [CTL_DB_MISSING] = "missing",
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
		m[n].sum[0] = '\0';
		m[n].sql = NULL;
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

static void ctl_db_migrations_free(struct ctl_db_migration *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].sql);
	free(m);
}

/* Read every file and its SHA-256 before the database is touched: what is hashed is what runs,
 * and no file I/O happens while a lock is held. Returns 0, or -1 after printing why. */
static int ctl_db_load(const char *dir, struct ctl_db_migration *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t digest[DIGEST_SHA256_LEN];

		m[i].sql = ctl_db_read_file(dir, m[i].file);
		if (!m[i].sql)
			return -1;
		if (digest_sha256(m[i].sql, strlen(m[i].sql), digest) < 0) {
			fprintf(stderr, "neonpoolctl: migrate: cannot compute the sha256 of %s\n", m[i].file);
			return -1;
		}
		util_hex_encode(digest, sizeof(digest), m[i].sum);
	}
	return 0;
}

/* The statements of neonpool_migrations. checksum is NULL only in rows recorded before checksums
 * existed (the table had version, name and applied_at); migrate fills those in. */
static const char ctl_db_sql_migrations_table[] =
	"CREATE TABLE IF NOT EXISTS neonpool_migrations ("
	" version int PRIMARY KEY,"
	" name text NOT NULL,"
	" applied_at timestamptz NOT NULL DEFAULT now(),"
	" checksum text CHECK (checksum ~ '^[0-9a-f]{64}$'))";
static const char ctl_db_sql_add_checksum[] =
	"ALTER TABLE neonpool_migrations ADD COLUMN checksum text CHECK (checksum ~ '^[0-9a-f]{64}$')";
static const char ctl_db_sql_table_shape[] =
	"SELECT to_regclass('neonpool_migrations') IS NOT NULL,"
	" EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('neonpool_migrations')"
	" AND attname = 'checksum' AND NOT attisdropped)";
static const char ctl_db_sql_rows[] =
	"SELECT version, name, checksum,"
	" to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM neonpool_migrations ORDER BY version";
static const char ctl_db_sql_rows_unchecked[] =
	"SELECT version, name, NULL::text,"
	" to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM neonpool_migrations ORDER BY version";
static const char ctl_db_sql_row[] = "SELECT name, checksum FROM neonpool_migrations WHERE version = $1";
static const char ctl_db_sql_record_sum[] =
	"UPDATE neonpool_migrations SET checksum = $2 WHERE version = $1 AND checksum IS NULL";
static const char ctl_db_sql_insert[] = "INSERT INTO neonpool_migrations (version, name, checksum) VALUES ($1, $2, $3)";

/* Whether neonpool_migrations exists and has its checksum column. Returns 0 or -1 (printed). */
static int ctl_db_table_shape(PGconn *conn, const char *ctx, bool *has_table, bool *has_sum)
{
	PGresult *res = ctl_db_exec(conn, ctx, ctl_db_sql_table_shape, 0, NULL, NULL, PGRES_TUPLES_OK);

	if (!res)
		return -1;
	*has_table = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	*has_sum = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	return 0;
}

/* The rows of neonpool_migrations by version (has_sum: the table has its checksum column).
 * Returns 0 with *out (malloc'd, NULL when empty) and *count, or -1 (printed). */
static int ctl_db_read_rows(PGconn *conn, const char *ctx, bool has_sum, struct ctl_db_applied **out,
			    size_t *count)
{
	PGresult *res = ctl_db_exec(conn, ctx, has_sum ? ctl_db_sql_rows : ctl_db_sql_rows_unchecked, 0, NULL, NULL,
				    PGRES_TUPLES_OK);
	struct ctl_db_applied *a = NULL;
	size_t n;

	*out = NULL;
	*count = 0;
	if (!res)
		return -1;
	n = (size_t)PQntuples(res);
	if (n > 0 && !(a = calloc(n, sizeof(*a)))) {
		fprintf(stderr, "neonpoolctl: %s: out of memory\n", ctx);
		PQclear(res);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const char *sum = PQgetvalue(res, (int)i, 2);

		a[i].version = atoi(PQgetvalue(res, (int)i, 0));
		snprintf(a[i].name, sizeof(a[i].name), "%s", PQgetvalue(res, (int)i, 1));
		/* the column's CHECK keeps it 64 hex digits or NULL */
		snprintf(a[i].sum, sizeof(a[i].sum), "%s", PQgetisnull(res, (int)i, 2) ? "" : sum);
		snprintf(a[i].at, sizeof(a[i].at), "%s", PQgetvalue(res, (int)i, 3));
	}
	PQclear(res);
	*out = a;
	*count = n;
	return 0;
}

/* The state of a file (m, or NULL) beside its row (a, or NULL); one of them is set. */
static enum ctl_db_state ctl_db_state_of(const struct ctl_db_migration *m, const struct ctl_db_applied *a)
{
	if (!a)
		return CTL_DB_PENDING;
	if (!m)
		return CTL_DB_MISSING;
	if (!a->sum[0])
		return CTL_DB_UNCHECKED;
	return strcmp(a->sum, m->sum) == 0 ? CTL_DB_APPLIED : CTL_DB_CHANGED;
}

/* Walk the files (sorted, unique versions) and the rows (by version) side by side: calls
 * visit(m or NULL, a or NULL, arg) once per version in order. */
static void ctl_db_pair(const struct ctl_db_migration *m, size_t n, const struct ctl_db_applied *a, size_t na,
			void (*visit)(const struct ctl_db_migration *, const struct ctl_db_applied *, void *), void *arg)
{
	size_t i = 0, j = 0;

	while (i < n || j < na) {
		if (j == na || (i < n && m[i].version < a[j].version))
			visit(&m[i++], NULL, arg);
		else if (i == n || a[j].version < m[i].version)
			visit(NULL, &a[j++], arg);
		else
			visit(&m[i++], &a[j++], arg);
	}
}

static void ctl_db_print_changed(const struct ctl_db_migration *m, const struct ctl_db_applied *a)
{
	fprintf(stderr, "neonpoolctl: migrate: %s was changed after it was applied: version %d was recorded as %s "
		"with sha256 %s, the file now has sha256 %s\n", m->file, m->version, a->name, a->sum, m->sum);
}

static void ctl_db_print_unchecked(const struct ctl_db_migration *m, const struct ctl_db_applied *a)
{
	char as[CTL_DB_MIGRATION_NAME_MAX + 8] = "";

	if (strcmp(a->name, m->file) != 0)
		snprintf(as, sizeof(as), ", as %s", a->name);
	fprintf(stderr, "neonpoolctl: migrate: warning: %s (version %d%s) was applied before checksums were recorded: "
		"recording the file's sha256 %s as applied (if the file was edited since, a later migration must "
		"bring the database in line)\n", m->file, m->version, as, m->sum);
}

/* ---- migrate --status ---- */

struct ctl_db_status {
	size_t count[CTL_DB_MISSING + 1];
};

static void ctl_db_status_line(const struct ctl_db_migration *m, const struct ctl_db_applied *a, void *arg)
{
	struct ctl_db_status *st = arg;
	enum ctl_db_state s = ctl_db_state_of(m, a);
	char detail[CTL_DB_MIGRATION_NAME_MAX + 96];

	st->count[s]++;
	switch (s) {
	case CTL_DB_PENDING:
		snprintf(detail, sizeof(detail), "sha256 %.*s", CTL_DB_SUM_SHORT, m->sum);
		break;
	case CTL_DB_APPLIED:
		snprintf(detail, sizeof(detail), "sha256 %.*s%s%s", CTL_DB_SUM_SHORT, m->sum,
			 strcmp(a->name, m->file) ? ", applied as " : "", strcmp(a->name, m->file) ? a->name : "");
		break;
	case CTL_DB_CHANGED:
		snprintf(detail, sizeof(detail), "recorded sha256 %.*s, the file has %.*s", CTL_DB_SUM_SHORT, a->sum,
			 CTL_DB_SUM_SHORT, m->sum);
		break;
	case CTL_DB_UNCHECKED:
		snprintf(detail, sizeof(detail), "no checksum recorded (migrate records the file's, %.*s)",
			 CTL_DB_SUM_SHORT, m->sum);
		break;
	case CTL_DB_MISSING:
		snprintf(detail, sizeof(detail), "no file of version %03d%s%.*s", a->version,
			 a->sum[0] ? "; recorded sha256 " : "", CTL_DB_SUM_SHORT, a->sum);
		break;
	}
	printf("%-9s  %-36s  %-19s  %s\n", ctl_db_state_name[s], m ? m->file : a->name, a ? a->at : "-", detail);
}

/* `migrate --status`: read-only, no lock. Returns the exit status: 1 when a file changed. */
static int ctl_db_migrate_status(PGconn *conn, const struct ctl_db_migration *m, size_t n)
{
	struct ctl_db_status st = { { 0 } };
	struct ctl_db_applied *a = NULL;
	bool has_table, has_sum;
	size_t na = 0;

	if (ctl_db_table_shape(conn, "migrate --status", &has_table, &has_sum) < 0)
		return 1;
	if (has_table && ctl_db_read_rows(conn, "migrate --status", has_sum, &a, &na) < 0)
		return 1;
	printf("%-9s  %-36s  %-19s  %s\n", "STATE", "FILE", "APPLIED (UTC)", "CHECKSUM");
	ctl_db_pair(m, n, a, na, ctl_db_status_line, &st);
	printf("status: %zu applied, %zu pending, %zu changed, %zu unchecked, %zu missing; database at version %d\n",
	       st.count[CTL_DB_APPLIED], st.count[CTL_DB_PENDING], st.count[CTL_DB_CHANGED], st.count[CTL_DB_UNCHECKED],
	       st.count[CTL_DB_MISSING], na ? a[na - 1].version : 0);
	if (st.count[CTL_DB_CHANGED])
		fprintf(stderr, "neonpoolctl: migrate --status: %zu applied file(s) changed: migrate refuses to run until "
			"they are restored as they were applied\n", st.count[CTL_DB_CHANGED]);
	free(a);
	return st.count[CTL_DB_CHANGED] ? 1 : 0;
}

/* ---- migrate ---- */

/* BEGIN and take the migrate lock: one run at a time past this point, on every host. 0 or -1. */
static int ctl_db_begin_locked(PGconn *conn, const char *ctx)
{
	const Oid lock_types[1] = { CTL_DB_INT8OID };
	char key[32];
	const char *lock_vals[1] = { key };
	PGresult *res;

	snprintf(key, sizeof(key), "%" PRId64, CTL_DB_MIGRATE_LOCK);
	/* READ COMMITTED whatever the role's default: each statement after the lock must see what
	 * the previous holder committed. */
	if (ctl_db_command(conn, ctx, "BEGIN ISOLATION LEVEL READ COMMITTED") < 0)
		return -1;
	res = ctl_db_exec(conn, ctx, "SELECT pg_advisory_xact_lock($1)", 1, lock_types, lock_vals, PGRES_TUPLES_OK);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

/* Record the file's checksum in a row recorded before checksums existed. 0 or -1 (printed). */
static int ctl_db_record_sum(PGconn *conn, const char *ctx, const struct ctl_db_migration *m)
{
	const Oid types[2] = { CTL_DB_INT4OID, CTL_DB_TEXTOID };
	char version[16];
	const char *vals[2] = { version, m->sum };
	PGresult *res;

	snprintf(version, sizeof(version), "%d", m->version);
	res = ctl_db_exec(conn, ctx, ctl_db_sql_record_sum, 2, types, vals, PGRES_COMMAND_OK);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

/* The two passes over the applied files: check (print and count the changed ones), then, when
 * none changed, record (the checksums of rows from before checksums; warn of rows with no file). */
struct ctl_db_verify {
	PGconn *conn;
	const char *dir;
	bool record;
	size_t changed;
	bool failed;
};

static void ctl_db_verify_one(const struct ctl_db_migration *m, const struct ctl_db_applied *a, void *arg)
{
	struct ctl_db_verify *v = arg;
	enum ctl_db_state s = ctl_db_state_of(m, a);

	if (!v->record) {
		if (s == CTL_DB_CHANGED) {
			ctl_db_print_changed(m, a);
			v->changed++;
		}
		return;
	}
	if (s == CTL_DB_UNCHECKED && !v->failed) {
		if (ctl_db_record_sum(v->conn, "migrate", m) < 0)
			v->failed = true;
		else
			ctl_db_print_unchecked(m, a);
	} else if (s == CTL_DB_MISSING) {
		fprintf(stderr, "neonpoolctl: migrate: warning: version %d (%s) is applied but has no file in %s\n",
			a->version, a->name, v->dir);
	}
}

/* The first transaction: lock, create the table or add its checksum column, verify every applied
 * file against its recorded checksum and record the checksum of rows from before checksums.
 * Refuses (returns -1, rolled back, nothing applied) when an applied file changed. On success
 * *rows holds the rows as they were (the caller frees it). */
static int ctl_db_migrate_verify(PGconn *conn, const char *dir, const struct ctl_db_migration *m, size_t n,
				 struct ctl_db_applied **rows, size_t *nrows)
{
	struct ctl_db_verify v = { .conn = conn, .dir = dir };
	bool has_table, has_sum;

	*rows = NULL;
	*nrows = 0;
	if (ctl_db_begin_locked(conn, "migrate") < 0 || ctl_db_command(conn, "migrate", ctl_db_sql_migrations_table) < 0 ||
	    ctl_db_table_shape(conn, "migrate", &has_table, &has_sum) < 0)
		goto fail;
	if (!has_sum && ctl_db_command(conn, "migrate", ctl_db_sql_add_checksum) < 0)
		goto fail;
	if (ctl_db_read_rows(conn, "migrate", true, rows, nrows) < 0)
		goto fail;
	ctl_db_pair(m, n, *rows, *nrows, ctl_db_verify_one, &v);
	if (v.changed) {
		fprintf(stderr, "neonpoolctl: migrate: refused: %zu applied migration(s) changed since they were applied; "
			"nothing was applied. Restore them as they were applied and put the change in a new NNN_name.sql "
			"file (see migrate --status)\n", v.changed);
		goto fail;
	}
	v.record = true;
	ctl_db_pair(m, n, *rows, *nrows, ctl_db_verify_one, &v);
	if (v.failed || ctl_db_command(conn, "migrate", "COMMIT") < 0)
		goto fail;
	return 0;

fail:
	ctl_db_rollback(conn);
	free(*rows);
	*rows = NULL;
	*nrows = 0;
	return -1;
}

enum ctl_db_step { CTL_DB_STEP_APPLIED, CTL_DB_STEP_SKIPPED, CTL_DB_STEP_FAILED };

/* Under the lock, the row of m's version as another run may just have committed it: verify it
 * like the first transaction did. Returns SKIPPED (a row, verified), APPLIED (no row: go on) or
 * FAILED (printed). */
static enum ctl_db_step ctl_db_recheck(PGconn *conn, const char *ctx, const struct ctl_db_migration *m)
{
	const Oid types[1] = { CTL_DB_INT4OID };
	char version[16];
	const char *vals[1] = { version };
	struct ctl_db_applied a = { .version = m->version };
	PGresult *res;

	snprintf(version, sizeof(version), "%d", m->version);
	res = ctl_db_exec(conn, ctx, ctl_db_sql_row, 1, types, vals, PGRES_TUPLES_OK);
	if (!res)
		return CTL_DB_STEP_FAILED;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return CTL_DB_STEP_APPLIED;
	}
	snprintf(a.name, sizeof(a.name), "%s", PQgetvalue(res, 0, 0));
	snprintf(a.sum, sizeof(a.sum), "%s", PQgetisnull(res, 0, 1) ? "" : PQgetvalue(res, 0, 1));
	PQclear(res);
	switch (ctl_db_state_of(m, &a)) {
	case CTL_DB_CHANGED:
		/* another host applied a different file of this version */
		ctl_db_print_changed(m, &a);
		return CTL_DB_STEP_FAILED;
	case CTL_DB_UNCHECKED:
		/* recorded by a neonpoolctl from before checksums, running beside us */
		if (ctl_db_record_sum(conn, ctx, m) < 0)
			return CTL_DB_STEP_FAILED;
		ctl_db_print_unchecked(m, &a);
		break;
	default:
		break;
	}
	if (strcmp(a.name, m->file) != 0)
		printf("skipped %s (version %d already applied, as %s)\n", m->file, m->version, a.name);
	else
		printf("skipped %s (already applied)\n", m->file);
	return CTL_DB_STEP_SKIPPED;
}

/* Run one pending migration inside the run's transaction (begun, the lock held): re-check its
 * row, run it, record it. *ms: how long it ran. */
static enum ctl_db_step ctl_db_migrate_one(PGconn *conn, const struct ctl_db_migration *m, double *ms)
{
	const Oid ins_types[3] = { CTL_DB_INT4OID, CTL_DB_TEXTOID, CTL_DB_TEXTOID };
	char version[16], ctx[CTL_DB_MIGRATION_NAME_MAX + 16];
	const char *ins_vals[3] = { version, m->file, m->sum };
	enum ctl_db_step step;
	PGresult *res;
	int64_t t0;

	snprintf(version, sizeof(version), "%d", m->version);
	snprintf(ctx, sizeof(ctx), "migrate: %s", m->file);
	step = ctl_db_recheck(conn, ctx, m);
	if (step != CTL_DB_STEP_APPLIED)
		return step;

	t0 = util_now_us();
	res = PQexec(conn, m->sql);
	if (!res || (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK &&
		     PQresultStatus(res) != PGRES_EMPTY_QUERY)) {
		ctl_db_print_sql_error(conn, res, ctx, m->sql);
		PQclear(res);
		return CTL_DB_STEP_FAILED;
	}
	PQclear(res);
	if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		fprintf(stderr, "neonpoolctl: %s: the file ended the transaction: migrations must not contain "
			"BEGIN, COMMIT or ROLLBACK (what ran before it may have been committed)\n", ctx);
		return CTL_DB_STEP_FAILED;
	}
	res = ctl_db_exec(conn, ctx, ctl_db_sql_insert, 3, ins_types, ins_vals, PGRES_COMMAND_OK);
	if (!res)
		return CTL_DB_STEP_FAILED;
	PQclear(res);
	*ms = (double)(util_now_us() - t0) / 1000.0;
	return CTL_DB_STEP_APPLIED;
}

/* The row of version v in rows (sorted by version), or NULL. */
static const struct ctl_db_applied *ctl_db_find_row(const struct ctl_db_applied *rows, size_t n, int v)
{
	for (size_t i = 0; i < n && rows[i].version <= v; i++)
		if (rows[i].version == v)
			return &rows[i];
	return NULL;
}

/* Verify, then the pending files in one transaction (begun at the first of them, under the lock):
 * the schema goes from one release's to the next in one commit, so the release still serving
 * never runs against a half-applied set (doc/design.md, "Schema changes a rolling upgrade
 * survives"). A failure rolls back every file of the run. Returns the exit status. */
static int ctl_db_migrate_run(PGconn *conn, const char *dir, const struct ctl_db_migration *m, size_t n)
{
	struct ctl_db_applied *rows;
	size_t nrows, applied = 0, skipped = 0, i;
	double *ms;
	bool open = false;
	int latest = 0;

	if (ctl_db_migrate_verify(conn, dir, m, n, &rows, &nrows) < 0)
		return 1;
	ms = calloc(n ? n : 1, sizeof(*ms));
	if (!ms) {
		fprintf(stderr, "neonpoolctl: migrate: out of memory\n");
		free(rows);
		return 1;
	}
	for (i = 0; i < n; i++) {
		const struct ctl_db_applied *a = ctl_db_find_row(rows, nrows, m[i].version);
		enum ctl_db_step st;

		ms[i] = -1.0;
		if (a && strcmp(a->name, m[i].file) != 0) {
			printf("skipped %s (version %d already applied, as %s)\n", m[i].file, m[i].version, a->name);
			st = CTL_DB_STEP_SKIPPED;
		} else if (a) {
			printf("skipped %s (already applied)\n", m[i].file);
			st = CTL_DB_STEP_SKIPPED;
		} else if (!open && ctl_db_begin_locked(conn, "migrate") < 0) {
			st = CTL_DB_STEP_FAILED;
		} else {
			open = true;
			st = ctl_db_migrate_one(conn, &m[i], &ms[i]);
		}
		if (st == CTL_DB_STEP_FAILED) {
			if (open && ctl_db_rollback(conn))
				fprintf(stderr, "neonpoolctl: migrate: rolled back\n");
			printf("migrate: failed at %s: nothing applied (%zu before it in this run rolled back with it), "
			       "%zu skipped, %zu not tried\n", m[i].file, applied, skipped, n - i - 1);
			free(ms);
			free(rows);
			return 1;
		}
		if (st == CTL_DB_STEP_APPLIED)
			applied++;
		else
			skipped++;
		latest = m[i].version > latest ? m[i].version : latest;
	}
	if (open) {
		PGresult *res = PQexec(conn, "COMMIT");
		if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
			ctl_db_print_sql_error(conn, res, "migrate", NULL);
			fprintf(stderr, "neonpoolctl: migrate: the commit failed: the %zu migration(s) may or may not be "
				"applied; run migrate again\n", applied);
			PQclear(res);
			free(ms);
			free(rows);
			return 1;
		}
		PQclear(res);
	}
	for (i = 0; i < n; i++)
		if (ms[i] >= 0.0)
			printf("applied %s (%.1f ms)\n", m[i].file, ms[i]);
	if (nrows > 0 && rows[nrows - 1].version > latest)
		latest = rows[nrows - 1].version;
	printf("migrate: %zu applied, %zu skipped; database at version %d\n", applied, skipped, latest);
	free(ms);
	free(rows);
	return 0;
}

int ctl_db_migrate(const struct np_conf *c, const char *sql_dir, bool status_only)
{
	struct ctl_db_migration *m;
	PGconn *conn;
	size_t n;
	int rc;

	if (ctl_db_scan(sql_dir, &m, &n) < 0)
		return 1;
	if (ctl_db_load(sql_dir, m, n) < 0 || ctl_db_connect(c, &conn) < 0) {
		ctl_db_migrations_free(m, n);
		return 1;
	}
	rc = status_only ? ctl_db_migrate_status(conn, m, n) : ctl_db_migrate_run(conn, sql_dir, m, n);
	PQfinish(conn);
	ctl_db_migrations_free(m, n);
	return rc;
}
