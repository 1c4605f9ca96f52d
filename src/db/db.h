/* SPDX-License-Identifier: PostgreSQL */
/* db.h - a worker's database side: the connections it holds under the budget, the gate on
 * accepting, queries with one invisible retry, and failures mapped to API errors. */
#ifndef NP_DB_H
#define NP_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "conf.h"
#include "http.h"
#include "pgconn.h"
#include "shm.h"

void db_init(const struct np_conf *conf, struct np_shm *shm, int slot, const char *tag);

/* Whether endpoint ep has a connection string (the primary always counts: libpq defaults). */
bool db_configured(int ep);
/* Whether this process holds a live connection to ep. */
bool db_holder(int ep);
/* A binary upgrade is under way and this worker is of the old generation: it gives its server
 * connection back after each request and opens none of its own accord. */
bool db_releasing(void);

/* Gated accept: take requests from the main socket only when holding a connection, or when
 * nobody can (breaker open, or the supervisor says requests are being shed). */
bool db_accept_main(void);
/* Whether this worker takes every main-socket connection that wakes it, so that it may wait on
 * the socket exclusively: a holder, and anyone while the breaker is open (the answer is a 503
 * without the database). A spare let in by shedding may decline, and does not. */
bool db_takes_main(void);

/* Between requests: bury, expire and close connections, warm-up pings. */
void db_maintain(void);
/* Between requests, on this process's primary connection when it holds one (no token is taken,
 * none is opened): run st. The result, or NULL when no connection is held or the statement
 * failed (logged, counted; a broken connection is closed). */
PGresult *db_idle_exec(const struct np_stmt *st, const char *const *params);
/* A spare decides whether to open a connection now (demand: a request waits in the backlog and
 * every holder is busy, or fewer than min_warm are open) and does it. listen_fd is probed. */
void db_consider_connect(int listen_fd);

/* Descriptors to wake on: buried sockets, and the token wake pipe for a spare. */
int db_poll_fds(int *fds, int n);
void db_on_wake(void);

/* The endpoint's health as the supervisor published it (enum np_health) and why. */
int db_health(int ep, const char **reason);

/* This process's shared memory and slot (the ask turn's cancel mailbox). */
struct np_shm *db_shm(void);
int db_slot(void);

/* The configuration this process runs with. */
const struct np_conf *db_conf(void);

/* The configured Retry-After for 503 answers (retry_after_s). */
int db_retry_after_s(void);

/* In a long request (an ask): close the connections this process holds, so that their tokens go
 * back to the budget while the request waits for something else than the database; the next
 * query connects again under a new token. */
void db_close_held(void);

/* Close everything, waiting up to wait_ms each for the server to see it. */
void db_close_all(int wait_ms);

/* What to do after a query failed: nothing (answer the error), once more on the same endpoint
 * (a fresh connection after a lost one), or once on the primary (any failure on the replica).
 * Only an idempotent request is retried, and only after its first attempt. */
enum db_retry { DB_RETRY_NONE, DB_RETRY_SAME, DB_RETRY_PRIMARY };
enum db_retry db_retry_plan(bool idempotent, int ep, enum np_db_class cls, int attempt);

/* In a request: run st with params on the route's endpoint. Returns the result, or NULL with
 * resp already set to the JSON error (503 db_busy / db_unavailable with Retry-After, 504
 * db_timeout, 500 db_error). An idempotent (GET, HEAD) request is retried once: on a fresh
 * connection after a lost one, on the primary after any failure on the replica. */
PGresult *db_query(struct np_request *req, struct np_response *resp, const struct np_stmt *st,
                   const char *const *params);

/* The same for a read that must see this client's own writes (read-your-writes): always on the
 * primary whatever the route's flags, retried once like any read (safe: it changes nothing). */
PGresult *db_read_primary(struct np_request *req, struct np_response *resp, const struct np_stmt *st,
                          const char *const *params);

/* One write statement on the primary (never the replica), atomic on its own (a single statement,
 * or a function call; in pooler_mode wrapped in BEGIN ... COMMIT in one pipeline). A result means
 * committed. It is sent again only when it provably never left (a connection found dead before
 * sending); once sent, a lost connection or a server that stopped answering is 503
 * db_outcome_unknown (Retry-After): the client retries with its Idempotency-Key, never the
 * server. Other errors as db_query (statement_timeout: 504, rolled back). */
PGresult *db_write(struct np_request *req, struct np_response *resp, const struct np_stmt *st,
                   const char *const *params);

#endif
