/* SPDX-License-Identifier: PostgreSQL */
/* ctl_db.h - neonpoolctl's database commands (migrate, seed, import, check-db) and what they share. */
#ifndef NP_CTL_DB_H
#define NP_CTL_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "conf.h"

/* Type OIDs of the parameters we send (fixed in PostgreSQL's pg_type.dat). */
#define CTL_DB_INT4OID 23
#define CTL_DB_INT8OID 20
#define CTL_DB_TEXTOID 25

/* Defaults of `neonpoolctl seed`. */
#define CTL_DB_SEED_BOOKS 20
#define CTL_DB_SEED_CHAPTERS 10
#define CTL_DB_SEED_PASSAGES 20

/* Upper bounds of the seed counts (slugs are sample-book-NNN; total passages capped too). */
#define CTL_DB_SEED_MAX_BOOKS 999
#define CTL_DB_SEED_MAX_CHAPTERS 1000
#define CTL_DB_SEED_MAX_PASSAGES 10000
#define CTL_DB_SEED_MAX_TOTAL 10000000L

/* Connect (blocking) to c->database_url with the password of c->database_password_file when set,
 * application_name "neonpoolctl" and connect_timeout 10 s (unless the URL sets its own).
 * Returns 0 with *out set, or -1 after printing "neonpoolctl: cannot connect to <redacted
 * conninfo>: <reason>" to stderr (*out is then NULL). Never prints a password. */
__attribute__((warn_unused_result))
int ctl_db_connect(const struct np_conf *c, PGconn **out);

/* `neonpoolctl migrate`: apply the NNN_name.sql files of sql_dir in numeric order, each in one
 * transaction serialized by pg_advisory_xact_lock, recording each in neonpool_migrations with the
 * SHA-256 of the file. First, in one transaction under the same lock, every applied file is
 * checked against its recorded checksum: when one changed, nothing is applied and the file is
 * named; rows recorded before checksums existed get the file's checksum, with a warning.
 * Prints one line per file (applied or skipped) and a summary. Returns the exit status:
 * 0 when every file is applied, 1 on a changed applied file, a bad file name, a duplicate number,
 * an SQL error (that migration is rolled back and no later one is tried) or a connection error.
 * status_only (`migrate --status`): change nothing, take no lock; print each version's state
 * (applied, pending, changed, unchecked: recorded before checksums, missing: no file); 1 when an
 * applied file changed, else 0. */
int ctl_db_migrate(const struct np_conf *c, const char *sql_dir, bool status_only);

/* `neonpoolctl seed`: insert deterministic sample books sample-book-001.., with chapters
 * chapters each and passages passages each; idempotent (ON CONFLICT DO NOTHING), all in one
 * transaction. Prints the new and total counts. Returns the exit status (0 or 1). */
int ctl_db_seed(const struct np_conf *c, int books, int chapters, int passages);

/* `neonpoolctl check-db`: connect and report connect time, server version, TLS, SELECT 1
 * round trips, connection limits and use, and the migration state; human-readable, or one
 * JSON object on stdout when json. A failed connect is classified with the daemon's table
 * (errclass.h: dns, refused, tls_verify, auth, timeout, too_many_clients, neon_*, ...). Returns the exit status: 0 healthy, 1 not. */
int ctl_db_check(const struct np_conf *c, bool json, int hosts);

/* `neonpoolctl import` (ctl_import.c): limits. */
#define CTL_IMPORT_MAX_FILES 100000
#define CTL_IMPORT_MAX_TITLE 500
/* A passage (heading and body) longer than this is refused: at most 300 words, the manual's
 * longest is 4.2 KiB. */
#define CTL_IMPORT_MAX_PASSAGE_BYTES 65536

/* `neonpoolctl import DIR`: read DIR's *.html pages (each at most HTMLTEXT_MAX_BYTES), in book order
 * (from index.html along <link rel="next">, then the pages no link reached, by name), cut each into
 * passages (src/text), and store them as book slug (default: made of the title) titled title
 * (default: the first page's title) by author (NULL: none), one chapter per page, in one transaction. A chapter whose
 * position, title and content are unchanged is left as it is, so a second run changes nothing;
 * a changed one is replaced; one whose page is gone is deleted. A page that cannot be read or
 * parsed is named in the error and nothing is written. dry_run: read and print, no database.
 * Prints counts and timings. Returns the exit status (0 or 1). */
int ctl_import(const struct np_conf *c, const char *dir, const char *slug, const char *title, const char *author,
               bool dry_run);

/* ---- shared by the commands (ctl_db.c) ---- */

/* Copy src to dst (capacity n) as one line, with every occurrence of secret (when not "") masked. */
void ctl_db_oneline(const char *src, const char *secret, char *dst, size_t n);
/* The connection's last error message as one line, secrets masked. */
void ctl_db_conn_message(PGconn *conn, char *buf, size_t n);
/* libpq notice receiver: print server WARNINGs to stderr, drop NOTICE and below. */
void ctl_db_notice(void *arg, const PGresult *res);
/* Print an SQL error (SQLSTATE, message, detail, hint) under ctx to stderr. */
void ctl_db_print_sql_error(PGconn *conn, const PGresult *res, const char *ctx, const char *sql);
/* Open a connection without printing; NULL with a one-line reason in err on failure. */
PGconn *ctl_db_open(const struct np_conf *c, int64_t *connect_us, char *err, size_t errlen);
/* Run one statement with text parameters; the result when its status is want, else NULL (printed). */
PGresult *ctl_db_exec(PGconn *conn, const char *ctx, const char *sql, int nparams, const Oid *types,
                      const char *const *values, ExecStatusType want);
/* A statement without parameters or rows. Returns 0 or -1 (printed). */
int ctl_db_command(PGconn *conn, const char *ctx, const char *sql);
/* Roll back an open or failed transaction quietly; whether one was rolled back. */
bool ctl_db_rollback(PGconn *conn);

#endif
