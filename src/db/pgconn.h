/* SPDX-License-Identifier: PostgreSQL */
/* pgconn.h - one server connection: deadline-bound connect and query, error classes, clean close. */
#ifndef NP_PGCONN_H
#define NP_PGCONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "errclass.h"
#include "shm.h"

struct np_dberr {
	enum np_db_class cls;     /* what to do about it */
	enum np_errkind kind;     /* what it was (errclass.h): the log's kind=, the breaker's reason */
	char sqlstate[6];
	char message[256];        /* libpq's text, one line; never holds the password */
	bool sent;                /* the statement was handed to libpq to send: after a lost
	                           * connection, whether it ran (and committed) is unknown */
};

/* A prepared statement known to the application: id is its bit in the per-connection mask. */
struct np_stmt {
	int id;                   /* 0..31 */
	const char *name;         /* server-side name when prepared */
	const char *sql;
	int nparams;
	int result_format;        /* 0: every column as text; 1: every column in binary (bytea as its bytes) */
};

struct np_pgconn {
	PGconn *pg;               /* NULL when closed */
	int ep;
	int tok;                  /* budget token held under this connection, -1 none */
	int64_t opened_ms;
	int64_t last_used_ms;
	int64_t expires_ms;       /* max_lifetime with jitter; 0 never */
	uint32_t prepared;        /* bit i: statement id i prepared here */
	int backend_pid;
};

/* Open c on endpoint ep under token tok (already taken) with a deadline we enforce ourselves,
 * DNS included (resolve.h: libpq gets the addresses as hostaddr, the name stays in host).
 * appname ends up in pg_stat_activity. Reads max_connections into the slot, stamped with the
 * time and the URL's hash (the supervisor shows the newest for the current URL). Returns 0, or -1
 * with err filled; on failure the token has been handed to pgconn_bury() or released. */
int pgconn_open(struct np_pgconn *c, const struct np_conf *conf, struct np_shm *shm, int slot, int ep,
                int tok, const char *appname, int64_t deadline_ms, struct np_dberr *err);

/* Run st with params; result (PGRES_TUPLES_OK or COMMAND_OK) in *out (caller PQclear). Enforces
 * query_timeout_ms on the server and query_timeout_ms + margin on the client.
 * Returns 0, or -1 with err; after -1 with TRANSIENT/TIMEOUT the connection is unusable. */
int pgconn_exec(struct np_pgconn *c, const struct np_conf *conf, struct np_shm *shm,
                const struct np_stmt *st, const char *const *params, PGresult **out, struct np_dberr *err);

/* SELECT 1 with the same deadlines (validation, warm-up, probes). */
int pgconn_ping(struct np_pgconn *c, const struct np_conf *conf, struct np_shm *shm, struct np_dberr *err);

/* Whether an idle connection still looks usable: status OK and nothing (FATAL, EOF) pending. */
bool pgconn_idle_ok(struct np_pgconn *c);

/* Close c. Its token is released only once the server closed its side: at once when that happens
 * within wait_ms, else the socket goes to the graveyard, polled by pgconn_graveyard_poll(). */
void pgconn_close(struct np_pgconn *c, struct np_shm *shm, int wait_ms);
/* The same, but when keep is true and the server closed within wait_ms, the token stays ours
 * (phase CONNECTING) for a fresh connection: returns it, else -1. A reconnect after a lost
 * connection must not lose its place to a spare. */
int pgconn_close_keep(struct np_pgconn *c, struct np_shm *shm, int wait_ms, bool keep);

/* Release the tokens of buried connections whose server side closed. Returns how many remain. */
int pgconn_graveyard_poll(struct np_shm *shm);
/* Fill fds (up to n) with the buried sockets, for the caller's poll set. Returns the count. */
int pgconn_graveyard_fds(int *fds, int n);

/* Classify a failed connect from its message text (Neon's proxy sends XX000 for everything);
 * errclass_connect's action. */
enum np_db_class pgconn_classify_connect(const char *message);
/* Classify an error result or a broken connection by SQLSTATE; errclass_sqlstate's action. */
enum np_db_class pgconn_classify_sqlstate(const char *sqlstate, bool conn_bad);

const char *pgconn_class_name(enum np_db_class cls);

#endif
