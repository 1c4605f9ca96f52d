/* SPDX-License-Identifier: PostgreSQL */
/* pgconn.c - one server connection: deadline-bound connect and query, error classes, clean close.
 *
 * Everything is asynchronous libpq driven by poll() with our own deadlines: libpq ignores
 * connect_timeout in PQconnectPoll, and a server that stopped answering must never pin a worker.
 * A closed connection keeps its budget token until the server closed its side (EOF on a dup of
 * the socket): PQfinish returns before the backend exited, and releasing at once let the server
 * show more backends than the budget (BASELINES.md). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include "budget.h"
#include "keeper.h"
#include "log.h"
#include "pgconn.h"
#include "resolve.h"
#include "util.h"

#define GRAVEYARD_MAX 64

struct grave {
	int fd;
	int ep;
	int tok;
	int64_t since_ms;
};
static struct grave graveyard[GRAVEYARD_MAX];
static int ngraves;

/* ---- error classes ---------------------------------------------------------------------- */

/* The classes themselves are errclass.c's one table, shared with neonpoolctl. */
const char *pgconn_class_name(enum np_db_class cls)
{
	return errclass_db_class_name(cls);
}

enum np_db_class pgconn_classify_connect(const char *m)
{
	return errclass_connect(m)->cls;
}

enum np_db_class pgconn_classify_sqlstate(const char *s, bool conn_bad)
{
	enum np_db_class cls;
	errclass_sqlstate(s, conn_bad, &cls);
	return cls;
}

/* libpq's message on one line, without the trailing newline. */
static void pgconn_set_err(struct np_dberr *err, enum np_db_class cls, enum np_errkind kind, const char *sqlstate,
                           const char *msg)
{
	err->cls = cls;
	err->kind = kind;
	snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sqlstate ? sqlstate : "");
	snprintf(err->message, sizeof(err->message), "%s", msg ? msg : "");
	for (char *p = err->message; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = (p[1] == '\0') ? '\0' : ' ';
	size_t n = strlen(err->message);
	while (n > 0 && err->message[n - 1] == ' ')
		err->message[--n] = '\0';
}

/* ---- waiting ---------------------------------------------------------------------------- */

/* Wait for events on fd until deadline_ms. Returns 1 ready, 0 timed out, -1 error. */
static int pgconn_wait_fd(int fd, short events, int64_t deadline_ms)
{
	for (;;) {
		int64_t left = deadline_ms - util_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = fd, .events = events };
		int rc = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (rc > 0)
			return 1;
		if (rc == 0)
			continue;
		if (errno != EINTR)
			return -1;
	}
}

/* The next result of the command in flight, or NULL at its end. *state: 0 fine, 1 the client
 * deadline passed, 2 the connection broke. */
static PGresult *pgconn_next(PGconn *pg, int64_t deadline_ms, int *state)
{
	*state = 0;
	for (;;) {
		int f = PQflush(pg);
		if (f < 0) {
			*state = 2;
			return PQgetResult(pg);
		}
		if (f == 0 && !PQisBusy(pg))
			return PQgetResult(pg);
		int rc = pgconn_wait_fd(PQsocket(pg), (short)(POLLIN | (f == 1 ? POLLOUT : 0)), deadline_ms);
		if (rc == 0) {
			*state = 1;
			return NULL;
		}
		if (rc < 0 || !PQconsumeInput(pg)) {
			*state = 2;
			/* libpq turns the failure into an error result when one is pending */
			if (!PQisBusy(pg))
				return PQgetResult(pg);
			return NULL;
		}
	}
}

/* ---- closing ---------------------------------------------------------------------------- */

static void pgconn_bury(int fd, int ep, int tok, struct np_shm *shm)
{
	if (ngraves >= GRAVEYARD_MAX) {
		/* cannot happen with a budget below GRAVEYARD_MAX per process; say so if it does */
		log_error("graveyard full: releasing token %d before the server closed", tok);
		close(fd);
		budget_release(shm, ep, tok);
		return;
	}
	budget_set_phase(shm, ep, tok, NP_TOK_CLOSING);
	graveyard[ngraves++] = (struct grave){ fd, ep, tok, util_now_ms() };
}

int pgconn_close_keep(struct np_pgconn *c, struct np_shm *shm, int wait_ms, bool keep)
{
	if (c->pg == NULL) {
		if (c->tok >= 0)
			budget_release(shm, c->ep, c->tok);
		c->tok = -1;
		return -1;
	}
	int fd = PQsocket(c->pg);
	int dupfd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
	if (c->tok >= 0)
		budget_set_phase(shm, c->ep, c->tok, NP_TOK_CLOSING);
	PQfinish(c->pg); /* sends Terminate; the backend exits when it reads it */
	c->pg = NULL;
	c->prepared = 0;
	if (dupfd >= 0) {
		shutdown(dupfd, SHUT_WR); /* and EOF after it, for a backend that missed the message */
		int fl = fcntl(dupfd, F_GETFL);
		if (fl >= 0)
			fcntl(dupfd, F_SETFL, fl | O_NONBLOCK);
	}
	if (c->tok < 0) {
		if (dupfd >= 0)
			close(dupfd);
		return -1;
	}
	int tok = c->tok;
	c->tok = -1;
	int64_t deadline = util_now_ms() + wait_ms;
	for (;;) {
		if (dupfd < 0 || util_fd_closed(dupfd)) {
			/* the server closed its side: the token may carry a new connection now */
			if (dupfd >= 0)
				close(dupfd);
			if (keep) {
				budget_set_phase(shm, c->ep, tok, NP_TOK_CONNECTING);
				return tok;
			}
			budget_release(shm, c->ep, tok);
			return -1;
		}
		if (wait_ms <= 0 || pgconn_wait_fd(dupfd, POLLIN, deadline) <= 0)
			break;
	}
	pgconn_bury(dupfd, c->ep, tok, shm);
	return -1;
}

void pgconn_close(struct np_pgconn *c, struct np_shm *shm, int wait_ms)
{
	pgconn_close_keep(c, shm, wait_ms, false);
}

int pgconn_graveyard_poll(struct np_shm *shm)
{
	for (int i = 0; i < ngraves;) {
		if (util_fd_closed(graveyard[i].fd)) {
			close(graveyard[i].fd);
			budget_release(shm, graveyard[i].ep, graveyard[i].tok);
			log_debug("server closed a buried connection after %lld ms",
			          (long long)(util_now_ms() - graveyard[i].since_ms));
			graveyard[i] = graveyard[--ngraves];
			continue;
		}
		i++;
	}
	return ngraves;
}

int pgconn_graveyard_fds(int *fds, int n)
{
	int k = 0;
	for (int i = 0; i < ngraves && k < n; i++)
		fds[k++] = graveyard[i].fd;
	return k;
}

/* ---- connecting ------------------------------------------------------------------------- */

/* The server's notices and warnings (a search of stop words only says "text-search query contains
 * only stop words"): into our log as one line each, a warning at warn, the rest at debug. libpq's
 * default would print them raw on stderr, which is the log file. */
static void pgconn_notice(void *arg, const PGresult *res)
{
	(void)arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	bool warn = sev && strcmp(sev, "WARNING") == 0;
	if (!warn && log_get_level() < NP_LOG_DEBUG)
		return;
	char q[256], kv[300];
	util_quote_value(msg ? msg : "", q, sizeof(q));
	snprintf(kv, sizeof(kv), " severity=%s message=%s", sev ? sev : "?", q);
	log_kv(warn ? NP_LOG_WARN : NP_LOG_DEBUG, kv, "server notice");
}

/* Run a command with parameters outside any pipeline; returns its last result (caller clears). */
static PGresult *pgconn_simple(PGconn *pg, const char *sql, int n, const char *const *params,
                               int64_t deadline_ms, int *state)
{
	if (!PQsendQueryParams(pg, sql, n, NULL, params, NULL, NULL, 0)) {
		*state = 2;
		return NULL;
	}
	PGresult *last = NULL, *r;
	while ((r = pgconn_next(pg, deadline_ms, state)) != NULL) {
		PQclear(last);
		last = r;
	}
	if (*state) {
		PQclear(last);
		return NULL;
	}
	return last;
}

/* A socket is known by its inode, not its number: inside PQconnectPoll libpq closes a socket
 * and opens the next one (a refused host of a multi-host conninfo, a standby rejected by
 * target_session_attrs, sslmode=prefer falling back to plain), and the new one usually gets
 * the same number. */
struct pgconn_sock_id {
	bool set;
	dev_t dev;
	ino_t ino;
};

/* Hand the connection's current socket to the master (keeper) unless it is the one handed last. */
static void pgconn_hand_over(PGconn *pg, struct pgconn_sock_id *kept, int ep, int tok)
{
	int fd = PQsocket(pg);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return;
	if (kept->set && kept->dev == st.st_dev && kept->ino == st.st_ino)
		return;
	*kept = (struct pgconn_sock_id){ .set = true, .dev = st.st_dev, .ino = st.st_ino };
	keeper_send(fd, ep, tok);
}

/* A connect that failed before the server saw a socket of ours: the token goes back at once. */
static int pgconn_give_back(struct np_pgconn *c, struct np_shm *shm)
{
	budget_release(shm, c->ep, c->tok);
	c->tok = -1;
	return -1;
}

/* Start libpq's connect to url: the password read, the host names looked up within our deadline
 * (libpq would block on DNS outside it; it gets the addresses as hostaddr and keeps the names in
 * host for SNI and verify-full), keepalives set. The connection, or NULL with err filled. */
static PGconn *pgconn_start(const struct np_conf *conf, const char *url, const char *appname,
                            int64_t deadline_ms, struct np_dberr *err)
{
	char password[1024] = "";
	struct np_conf_error cerr;
	if (conf->database_password_file[0] && conf_read_password(conf, password, sizeof(password), &cerr) < 0) {
		pgconn_set_err(err, NP_DB_CONFIG, NP_ERR_CONFIG, NULL, cerr.message);
		return NULL;
	}
	struct np_resolved rs;
	char rerr[256];
	if (resolve_conninfo(url, deadline_ms, &rs, rerr, sizeof(rerr)) < 0) {
		const struct np_errclass *ec = errclass_connect(rerr);
		pgconn_set_err(err, ec->cls, ec->kind, NULL, rerr);
		explicit_bzero(password, sizeof(password));
		return NULL;
	}
	/* keywords after dbname override what the URL says (PQconnectStartParams, expand_dbname) */
	const char *kw[16], *val[16];
	int n = 0;
	kw[n] = "dbname", val[n++] = url;
	if (rs.use) {
		kw[n] = "host", val[n++] = rs.host;
		kw[n] = "hostaddr", val[n++] = rs.hostaddr;
		if (rs.port[0])
			kw[n] = "port", val[n++] = rs.port;
	}
	if (password[0])
		kw[n] = "password", val[n++] = password;
	kw[n] = "application_name", val[n++] = appname;
	kw[n] = "keepalives", val[n++] = "1";
	kw[n] = "keepalives_idle", val[n++] = "10";
	kw[n] = "keepalives_interval", val[n++] = "5";
	kw[n] = "keepalives_count", val[n++] = "3";
	kw[n] = "tcp_user_timeout", val[n++] = "30000";
	kw[n] = NULL, val[n] = NULL;
	PGconn *pg = PQconnectStartParams(kw, val, 1);
	explicit_bzero(password, sizeof(password));
	if (pg == NULL)
		pgconn_set_err(err, NP_DB_DOWN, NP_ERR_OTHER, NULL, "out of memory");
	return pg;
}

/* libpq's handshake on c->pg until it is connected or failed, within deadline_ms. 0, or -1 with
 * err filled and c closed (its token released as pgconn_close says). */
static int pgconn_handshake(struct np_pgconn *c, struct np_shm *shm, struct pgconn_sock_id *kept,
                            int64_t deadline_ms, struct np_dberr *err)
{
	PGconn *pg = c->pg;
	PostgresPollingStatusType st = PQstatus(pg) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		/* the master keeps a duplicate of the socket from its first byte: if we die, even in
		 * the middle of the handshake, it closes it and frees the token when the server closed
		 * (libpq may open a new socket per address: each one is handed over) */
		pgconn_hand_over(pg, kept, c->ep, c->tok);
		int rc = pgconn_wait_fd(PQsocket(pg), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline_ms);
		if (rc == 0) {
			pgconn_set_err(err, NP_DB_DOWN, NP_ERR_TIMEOUT, NULL, "connect timed out (deadline enforced by neonpool)");
			pgconn_close(c, shm, 0);
			return -1;
		}
		st = PQconnectPoll(pg);
	}
	if (st == PGRES_POLLING_FAILED) {
		const char *m = PQerrorMessage(pg);
		const struct np_errclass *ec = errclass_connect(m);
		pgconn_set_err(err, ec->cls, ec->kind, "XX000", m);
		/* libpq already dropped the socket: the server side is closing on its own */
		PQfinish(pg);
		c->pg = NULL;
		return pgconn_give_back(c, shm);
	}
	PQsetnonblocking(pg, 1);
	PQsetNoticeReceiver(pg, pgconn_notice, NULL);
	return 0;
}

/* One round trip: the session's statement_timeout (not through a pooler), the backend's check
 * that we are still there (client_connection_check_interval, PostgreSQL >= 14: a statement of a
 * worker that died is aborted within it), and the server's limits, published in the slot with
 * which server and when (the supervisor shows the newest for the current URL). 0, or -1 with err
 * filled and c closed. */
static int pgconn_session_setup(struct np_pgconn *c, const struct np_conf *conf, struct np_shm *shm, int slot,
                                const char *url, int64_t deadline_ms, struct np_dberr *err)
{
	PGconn *pg = c->pg;
	char tmo[16], chk[16];
	snprintf(tmo, sizeof(tmo), "%d", conf->query_timeout_ms);
	snprintf(chk, sizeof(chk), "%d", conf->client_check_ms);
	const char *params[2] = { tmo, chk };
	bool check = conf->client_check_ms > 0 && PQserverVersion(pg) >= 140000;
	int state;
	PGresult *r;
	if (conf->pooler_mode)
		r = pgconn_simple(pg, "SELECT current_setting('max_connections'), "
		                      "current_setting('superuser_reserved_connections'), pg_backend_pid()",
		                  0, NULL, deadline_ms, &state);
	else if (check)
		r = pgconn_simple(pg, "SELECT current_setting('max_connections'), "
		                      "current_setting('superuser_reserved_connections'), pg_backend_pid(), "
		                      "set_config('statement_timeout', $1, false), "
		                      "set_config('client_connection_check_interval', $2, false)",
		                  2, params, deadline_ms, &state);
	else
		r = pgconn_simple(pg, "SELECT current_setting('max_connections'), "
		                      "current_setting('superuser_reserved_connections'), pg_backend_pid(), "
		                      "set_config('statement_timeout', $1, false)",
		                  1, params, deadline_ms, &state);
	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		const char *ss = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		enum np_db_class cls = NP_DB_TIMEOUT;
		enum np_errkind kind = state == 1 ? NP_ERR_TIMEOUT : errclass_sqlstate(ss, true, &cls);
		pgconn_set_err(err, cls, kind, ss, r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
		PQclear(r);
		pgconn_close(c, shm, state == 1 ? 0 : 200);
		return -1;
	}
	struct np_slot *s = &shm->slots[slot];
	atomic_store(&s->server_max_conn[c->ep], atoi(PQgetvalue(r, 0, 0)));
	atomic_store(&s->server_reserved[c->ep], atoi(PQgetvalue(r, 0, 1)));
	atomic_store(&s->server_url_hash[c->ep], util_hash64(url));
	atomic_store(&s->server_limits_us[c->ep], util_wall_us());
	c->backend_pid = atoi(PQgetvalue(r, 0, 2));
	PQclear(r);
	return 0;
}

int pgconn_open(struct np_pgconn *c, const struct np_conf *conf, struct np_shm *shm, int slot, int ep,
                int tok, const char *appname, int64_t deadline_ms, struct np_dberr *err)
{
	memset(c, 0, sizeof(*c));
	c->ep = ep;
	c->tok = tok;
	const char *url = ep == NP_EP_REPLICA ? conf->replica_url : conf->database_url;
	int64_t t0 = util_now_ms();
	c->pg = pgconn_start(conf, url, appname, deadline_ms, err);
	if (c->pg == NULL)
		return pgconn_give_back(c, shm);
	struct pgconn_sock_id kept = { 0 };
	if (pgconn_handshake(c, shm, &kept, deadline_ms, err) < 0 ||
	    pgconn_session_setup(c, conf, shm, slot, url, deadline_ms, err) < 0)
		return -1;
	c->opened_ms = c->last_used_ms = util_now_ms();
	if (conf->max_lifetime_s > 0) {
		int64_t life = (int64_t)conf->max_lifetime_s * 1000;
		c->expires_ms = c->opened_ms + life - util_random_below((uint32_t)(life / 10 + 1));
	}
	budget_set_backend(shm, ep, tok, c->backend_pid);
	budget_set_phase(shm, ep, tok, NP_TOK_CONNECTED);
	pgconn_hand_over(c->pg, &kept, ep, tok);
	atomic_fetch_add(&shm->slots[slot].connects, 1);
	char kv[96];
	snprintf(kv, sizeof(kv), " endpoint=%d token=%d backend_pid=%d connect_ms=%lld", ep, tok,
	         c->backend_pid, (long long)(util_now_ms() - t0));
	log_kv(NP_LOG_DEBUG, kv, "connected");
	return 0;
}

/* ---- queries ---------------------------------------------------------------------------- */

static int pgconn_fail_result(struct np_pgconn *c, PGresult *r, int state, struct np_dberr *err)
{
	bool bad = state == 2 || PQstatus(c->pg) != CONNECTION_OK;
	if (state == 1) {
		pgconn_set_err(err, NP_DB_TIMEOUT, NP_ERR_TIMEOUT, NULL, "no answer from the server before the deadline");
	} else {
		const char *ss = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		enum np_db_class cls;
		enum np_errkind kind = errclass_sqlstate(ss, bad, &cls);
		pgconn_set_err(err, cls, kind, ss,
		               r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg));
	}
	PQclear(r);
	return -1;
}

static int pgconn_exec_direct(struct np_pgconn *c, const struct np_stmt *st, const char *const *params,
                              int64_t deadline, PGresult **out, struct np_dberr *err)
{
	int state = 0;
	uint32_t bit = 1u << st->id;
	if (!(c->prepared & bit)) {
		if (!PQsendPrepare(c->pg, st->name, st->sql, st->nparams, NULL))
			return pgconn_fail_result(c, NULL, 2, err);
		PGresult *r = pgconn_next(c->pg, deadline, &state), *extra;
		if (state || r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
			while (state == 0 && (extra = pgconn_next(c->pg, deadline, &state)) != NULL)
				PQclear(extra);
			return pgconn_fail_result(c, r, state, err);
		}
		PQclear(r);
		if ((extra = pgconn_next(c->pg, deadline, &state)) != NULL || state) {
			PQclear(extra);
			return pgconn_fail_result(c, NULL, state ? state : 2, err);
		}
		c->prepared |= bit;
	}
	err->sent = true;
	if (!PQsendQueryPrepared(c->pg, st->name, st->nparams, params, NULL, NULL, st->result_format))
		return pgconn_fail_result(c, NULL, 2, err);
	PGresult *ok = NULL, *bad = NULL, *r;
	while ((r = pgconn_next(c->pg, deadline, &state)) != NULL) {
		ExecStatusType rs = PQresultStatus(r);
		if ((rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK) && ok == NULL && bad == NULL)
			ok = r;
		else if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK && bad == NULL)
			bad = r;
		else
			PQclear(r);
	}
	if (state || bad || ok == NULL) {
		PQclear(ok);
		return pgconn_fail_result(c, bad, state ? state : (bad ? 0 : 2), err);
	}
	*out = ok;
	return 0;
}

/* Through a transaction-mode pooler: BEGIN; SET LOCAL statement_timeout; query; COMMIT, in one
 * pipeline (one round trip), unnamed statements only. */
static int pgconn_exec_pooled(struct np_pgconn *c, const struct np_conf *conf, const struct np_stmt *st,
                              const char *const *params, int64_t deadline, PGresult **out,
                              struct np_dberr *err)
{
	char tmo[16], chk[16];
	snprintf(tmo, sizeof(tmo), "%d", conf->query_timeout_ms);
	snprintf(chk, sizeof(chk), "%d", conf->client_check_ms);
	const char *tp[2] = { tmo, chk };
	bool check = conf->client_check_ms > 0 && PQserverVersion(c->pg) >= 140000;
	if (!PQenterPipelineMode(c->pg))
		return pgconn_fail_result(c, NULL, 2, err);
	err->sent = true;
	int ok = PQsendQueryParams(c->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
	         (check ? PQsendQueryParams(c->pg,
	                                    "SELECT set_config('statement_timeout', $1, true), "
	                                    "set_config('client_connection_check_interval', $2, true)",
	                                    2, NULL, tp, NULL, NULL, 0)
	                : PQsendQueryParams(c->pg, "SELECT set_config('statement_timeout', $1, true)", 1, NULL,
	                                    tp, NULL, NULL, 0)) &&
	         PQsendQueryParams(c->pg, st->sql, st->nparams, NULL, params, NULL, NULL, st->result_format) &&
	         PQsendQueryParams(c->pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) && PQpipelineSync(c->pg);
	if (!ok)
		return pgconn_fail_result(c, NULL, 2, err);
	PGresult *res = NULL, *first_err = NULL;
	int state = 0;
	for (int cmd = 0; cmd < 5 && state == 0; cmd++) {
		PGresult *r;
		while ((r = pgconn_next(c->pg, deadline, &state)) != NULL) {
			ExecStatusType rs = PQresultStatus(r);
			if (rs == PGRES_PIPELINE_SYNC) {
				PQclear(r);
				cmd = 5;
				break;
			}
			if (rs == PGRES_FATAL_ERROR && first_err == NULL) {
				first_err = r;
				continue;
			}
			if (cmd == 2 && rs == PGRES_TUPLES_OK && res == NULL) {
				res = r;
				continue;
			}
			PQclear(r);
		}
	}
	if (state == 0) {
		PQexitPipelineMode(c->pg);
		/* an error skips the COMMIT: the server waits in an aborted transaction block */
		if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
			int st2 = 0;
			PQclear(pgconn_simple(c->pg, "ROLLBACK", 0, NULL, deadline, &st2));
			if (st2)
				state = st2;
		}
	}
	if (state || first_err || res == NULL) {
		PQclear(res);
		return pgconn_fail_result(c, first_err, state ? state : (first_err ? 0 : 2), err);
	}
	*out = res;
	return 0;
}

int pgconn_exec(struct np_pgconn *c, const struct np_conf *conf, struct np_shm *shm,
                const struct np_stmt *st, const char *const *params, PGresult **out, struct np_dberr *err)
{
	*out = NULL;
	err->cls = NP_DB_OK;
	err->sqlstate[0] = err->message[0] = '\0';
	err->sent = false;
	int64_t deadline = util_now_ms() + conf->query_timeout_ms + conf->query_deadline_margin_ms;
	budget_set_busy(shm, c->ep, c->tok, util_wall_us() + (int64_t)(deadline - util_now_ms()) * 1000);
	int rc = conf->pooler_mode ? pgconn_exec_pooled(c, conf, st, params, deadline, out, err)
	                           : pgconn_exec_direct(c, st, params, deadline, out, err);
	budget_set_busy(shm, c->ep, c->tok, 0);
	c->last_used_ms = util_now_ms();
	return rc;
}

int pgconn_ping(struct np_pgconn *c, const struct np_conf *conf, struct np_shm *shm, struct np_dberr *err)
{
	static const struct np_stmt ping = { 31, "np_ping", "SELECT 1", 0, 0 };
	PGresult *r = NULL;
	int rc = pgconn_exec(c, conf, shm, &ping, NULL, &r, err);
	PQclear(r);
	return rc;
}

bool pgconn_idle_ok(struct np_pgconn *c)
{
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		return false;
	struct pollfd p = { .fd = PQsocket(c->pg), .events = POLLIN };
	if (poll(&p, 1, 0) > 0) {
		/* something arrived while idle: a FATAL before the backend went away, or EOF */
		if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK)
			return false;
		PGresult *r;
		while (!PQisBusy(c->pg) && (r = PQgetResult(c->pg)) != NULL)
			PQclear(r);
		if (p.revents & (POLLHUP | POLLERR))
			return false;
	}
	return PQstatus(c->pg) == CONNECTION_OK;
}
