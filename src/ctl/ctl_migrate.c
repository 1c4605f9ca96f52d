/* ctl_migrate.c - `neonpoolctl migrate`: numbered SQL files applied in order, once, under an advisory lock. */
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
#include "util.h"

/* The pg_advisory_xact_lock key that serializes `migrate` on every host: "neonpool" in ASCII.
 * Transaction-scoped, so it works through PgBouncer in transaction mode (NEON.md §2.2). */
#define CTL_DB_MIGRATE_LOCK INT64_C(0x6e656f6e706f6f6c)
#define CTL_DB_MAX_MIGRATION_BYTES (64L * 1024 * 1024)
#define CTL_DB_MIGRATION_NAME_MAX 256

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

