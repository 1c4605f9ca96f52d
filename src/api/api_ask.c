/* SPDX-License-Identifier: PostgreSQL */
/* api_ask.c - the ask turn: store the question, retrieve passages, give the database connection
 * back, answer (retrieval mode: an extractive answer with [n] citations), store the answer.
 *
 * Two short transactions, nothing held between them: np_ask_begin() stores the question and an
 * empty answer row with status 'streaming' (so a cancel or a reload finds it) and returns the
 * passages, the history and, in retrieval mode, the passages' best sentences; in LLM mode
 * db_close_held() then gives the connection's token back before the model is called (retrieval mode
 * keeps it: the answer is made at once); np_ask_store() stores the answer with its status and the
 * citations its text used, and says the status the row ended with, which is what the client is
 * told. The row's lease (renewed for the host's answers at once) lets any process finish it failed
 * when its maker is gone. The answer goes out as Server-Sent Events (Accept: text/event-stream)
 * or as one JSON body, as doc/openapi.yaml describes (the contract shared with the page). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "api_ask_int.h"
#include "ask_text.h"
#include "asktx.h"
#include "db.h"
#include "digest.h"
#include "http.h"
#include "input.h"
#include "llm.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* Statement ids 12..14 and 27..29 are the ask turn's (13 and 14: api_ask_sweep.c). */
const struct np_stmt stmt_ask_begin = {
	27, "np_ask_begin",
	"SELECT status, question_id, answer_id, answer_status, answer, citations, citations_used, history, "
	"sentences, mode FROM np_ask_begin($1, $2, $3::bytea, $4, $5, $6, $7, $8, $9, $10::bigint)", 10, 0
};
/* the maker's store of its answer: the row's status after it */
const struct np_stmt stmt_ask_store = {
	12, "np_ask_store", "SELECT status FROM np_ask_store($1, $2, $3, $4::int[])", 4, 0
};
static const struct np_stmt stmt_ask_finish = {
	28, "np_ask_finish", "SELECT status FROM np_ask_finish($1, $2, $3, $4::int[])", 4, 0
};
/* the answer of session $2 named $1: its status */
static const struct np_stmt stmt_ask_status = {
	29, "np_ask_status", "SELECT status FROM messages WHERE id = $1 AND session_id = $2 AND role = 'assistant'", 2, 0
};

/* ---- the two short transactions --------------------------------------------------------- */

void ask_row_free(struct ask_row *r)
{
	for (int i = 0; i < ASK_COLS; i++)
		free(r->v[i]);
	memset(r, 0, sizeof(*r));
}

const char *ask_col(const struct ask_row *r, int i)
{
	return r->v[i] ? r->v[i] : "";
}

static bool ask_row_from_pg(struct ask_row *row, PGresult *r)
{
	memset(row, 0, sizeof(*row));
	row->found = PQntuples(r) > 0;
	for (int i = 0; row->found && i < PQnfields(r) && i < ASK_COLS; i++)
		if (!PQgetisnull(r, 0, i) && !(row->v[i] = strdup(PQgetvalue(r, 0, i)))) {
			ask_row_free(row);
			return false;
		}
	return true;
}

/* The ask pool's permits: at most NP_ASK_PERMITS internal transactions in flight at a time, so
 * that the readers wait behind a few of them at most in the main pool's queue, and so that a slow
 * queue does not serialize the asks (with one permit each transaction held it for its whole wait
 * in a saturated backlog: 2 a second per host, and asks failed db_busy; doc/design.md). A holder
 * that dies is freed by the master when it reaps it (shm_ask_permit_reclaim): only the reaper
 * knows a pid is dead and not yet reused; kill(pid, 0) here took a zombie for alive and an
 * unrelated process that got the pid back for the holder, which wedged the permit until that
 * process ended. */
static bool ask_permit_take(int64_t deadline_ms)
{
	_Atomic int32_t *w = db_shm()->hdr->ask_tx_owner;
	int32_t me = (int32_t)getpid();
	for (;;) {
		for (int i = 0; i < NP_ASK_PERMITS; i++)
			if (atomic_load(&w[i]) == me)
				return true;
		for (int i = 0; i < NP_ASK_PERMITS; i++) {
			int32_t cur = 0;
			if (atomic_compare_exchange_strong(&w[i], &cur, me))
				return true;
		}
		if (util_now_ms() >= deadline_ms)
			return false;
		/* the waiters are about to wait seconds for the model: they poll slowly (5-15 ms), not
		 * to take the CPU from the readers with 50 processes waking every millisecond */
		struct timespec ts = { 0, 5000000L + (long)util_random_below(10000000) };
		nanosleep(&ts, NULL);
	}
}

static void ask_permit_give(void)
{
	int32_t me = (int32_t)getpid();
	for (int i = 0; i < NP_ASK_PERMITS; i++) {
		int32_t held = me;
		atomic_compare_exchange_strong(&db_shm()->hdr->ask_tx_owner[i], &held, 0);
	}
}

/* Whether this process is a worker of the ask pool (its transactions run in the main pool). */
static bool ask_in_pool(void)
{
	return atomic_load(&db_shm()->slots[db_slot()].kind) == NP_KIND_ASK;
}

/* Run st with params, for the ask route's session (auth: check its bearer token first): on this
 * worker's connection (kept), or, in an ask worker, by the main pool
 * (an internal request, asktx.h), NP_ASK_PERMITS at a time across the ask pool. true with row filled, or
 * false with resp set to the error. */
bool ask_exec(struct np_request *req, struct np_response *resp, const struct np_stmt *st,
                     const char *const *params, bool auth, struct ask_row *row)
{
	memset(row, 0, sizeof(*row));
	if (!ask_in_pool()) {
		/* the connection stays with the worker, as after any request: it is given back only
		 * before a model call (ask_llm), which holds the worker for seconds */
		if (auth && !api_session_authorize(req, resp, API_OWNER_SESSION, router_param(&req->match, "id")))
			return false;
		PGresult *r = db_write(req, resp, st, params);
		if (!r)
			return false;
		bool ok = ask_row_from_pg(row, r);
		PQclear(r);
		if (!ok)
			http_respond_error(resp, 500, "internal", "out of memory");
		return ok;
	}
	const struct np_conf *conf = db_conf();
	cJSON *o = cJSON_CreateObject(), *arr = NULL;
	bool ok = o && cJSON_AddStringToObject(o, "stmt", st->name) && (arr = cJSON_AddArrayToObject(o, "params"));
	for (int i = 0; ok && i < st->nparams; i++)
		ok = cJSON_AddItemToArray(arr, params[i] ? cJSON_CreateString(params[i]) : cJSON_CreateNull());
	char *body = ok ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	if (!body) {
		http_respond_error(resp, 500, "internal", "out of memory");
		return false;
	}
	int64_t deadline = util_now_ms() + conf->acquire_timeout_ms + conf->query_timeout_ms + conf->query_deadline_margin_ms;
	int status = 0;
	char *out = NULL, err[160];
	if (!ask_permit_take(deadline)) {
		free(body);
		http_respond_error(resp, 503, "db_busy", "the ask pool's transactions are queued longer than acquire_timeout_ms; retry later");
		resp->retry_after_s = db_retry_after_s();
		return false;
	}
	int rc = asktx_call(conf, req->path, body, req->request_id, auth ? req->authorization : NULL, deadline, &status,
	                    &out, err, sizeof(err));
	ask_permit_give();
	free(body);
	if (rc < 0) {
		log_warn("ask transaction through the main pool failed: %s", err);
		if (rc == -2)
			/* sent: it may have committed (a streaming row then ends at its lease) */
			http_respond_error(resp, 503, "db_outcome_unknown",
			                   "the main pool ran the ask's transaction but its answer was lost: whether it "
			                   "committed is unknown; retry with the same Idempotency-Key");
		else
			http_respond_error(resp, 503, "db_busy", "the main pool did not run the ask's transaction in time; retry later");
		resp->retry_after_s = db_retry_after_s();
		return false;
	}
	if (status != 200) {
		http_respond_raw(resp, status, out);
		if (status == 503)
			resp->retry_after_s = db_retry_after_s();
		free(out);
		return false;
	}
	cJSON *a = cJSON_Parse(out), *r = cJSON_GetObjectItemCaseSensitive(a, "row"), *it;
	free(out);
	row->found = cJSON_IsArray(r);
	int i = 0;
	ok = a != NULL;
	cJSON_ArrayForEach(it, r)
	{
		if (i < ASK_COLS && cJSON_IsString(it) && !(row->v[i] = strdup(it->valuestring)))
			ok = false;
		i++;
	}
	cJSON_Delete(a);
	if (!ok) {
		ask_row_free(row);
		http_respond_error(resp, 500, "internal", "malformed answer to an ask transaction");
	}
	return ok;
}

/* The main pool's side: an internal request of an ask worker (NEONPOOL_ASK_TX), one of this
 * file's two statements with its parameters; answers {"row": [...] or null}. */
static void ask_tx_serve(struct np_request *req, struct np_response *resp)
{
	metrics_set_route(NP_MROUTE_ASK_TX);
	static const struct np_stmt *const stmts[] = { &stmt_ask_begin, &stmt_ask_store };
	cJSON *o = req->body ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "stmt"));
	cJSON *ps = cJSON_GetObjectItemCaseSensitive(o, "params");
	const struct np_stmt *st = NULL;
	for (size_t i = 0; name && i < sizeof(stmts) / sizeof(stmts[0]); i++)
		if (strcmp(stmts[i]->name, name) == 0)
			st = stmts[i];
	const char *params[ASK_COLS] = { 0 };
	bool ok = st && cJSON_IsArray(ps) && cJSON_GetArraySize(ps) == st->nparams;
	for (int i = 0; ok && i < st->nparams; i++) {
		cJSON *p = cJSON_GetArrayItem(ps, i);
		ok = cJSON_IsNull(p) || cJSON_IsString(p);
		params[i] = cJSON_IsString(p) ? p->valuestring : NULL;
	}
	if (!ok) {
		cJSON_Delete(o);
		http_respond_error(resp, 400, "bad_request", "malformed internal ask transaction");
		return;
	}
	if (st == &stmt_ask_begin && !api_session_authorize(req, resp, API_OWNER_SESSION, router_param(&req->match, "id"))) {
		cJSON_Delete(o);
		return;
	}
	PGresult *r = db_write(req, resp, st, params);
	cJSON_Delete(o);
	if (!r)
		return;
	cJSON *a = cJSON_CreateObject(), *row = NULL;
	ok = a != NULL;
	if (ok && PQntuples(r) > 0) {
		ok = (row = cJSON_AddArrayToObject(a, "row")) != NULL;
		for (int i = 0; ok && i < PQnfields(r); i++)
			ok = cJSON_AddItemToArray(row, PQgetisnull(r, 0, i) ? cJSON_CreateNull() : cJSON_CreateString(PQgetvalue(r, 0, i)));
	} else if (ok) {
		ok = cJSON_AddNullToObject(a, "row") != NULL;
	}
	PQclear(r);
	if (!ok) {
		cJSON_Delete(a);
		http_respond_error(resp, 500, "internal", "out of memory");
		return;
	}
	http_respond_json(resp, 200, a);
}


/* The cancel mailbox: the worker making the answer names it in its slot. */
static void ask_publish(struct ask_turn *t, bool on)
{
	struct np_slot *slot = &db_shm()->slots[db_slot()];
	atomic_store(&slot->ask_answer_id, on ? t->answer_num : 0);
}

/* A replay of an Idempotency-Key: the stored answer as it is now. */
static void ask_replay(struct ask_turn *t, struct np_response *resp, const struct ask_row *r)
{
	const char *status = ask_col(r, 3);
	if (strcmp(status, "streaming") == 0) {
		http_respond_error_field(resp, 409, "idempotency_in_flight",
		                         "the answer to this Idempotency-Key is still being generated; retry later",
		                         "Idempotency-Key");
		resp->retry_after_s = 1;
		return;
	}
	cJSON *used = cJSON_Parse(r->v[6] ? r->v[6] : "[]");
	int u[ASK_CITES_MAX];
	size_t nu = 0;
	cJSON *it;
	cJSON_ArrayForEach(it, used)
		if (cJSON_IsNumber(it) && nu < ASK_CITES_MAX)
			u[nu++] = it->valueint;
	cJSON_Delete(used);
	if (t->sse) {
		if (ask_sse_head(t, resp) < 0 || ask_event(t, "citations", ask_head_json(t)) < 0)
			return;
		if (ask_col(r, 4)[0])
			ask_delta(t, ask_col(r, 4));
	}
	ask_end(t, resp, status, ask_col(r, 4), u, nu);
}

/* np_ask_begin() for the question of session id (key: its Idempotency-Key, or NULL; book: the
 * book scope, or NULL for every book): the request's fingerprint (the question and the scope), the
 * retrieval's sizes, the lease. true with row filled, or false with resp set. */
static bool ask_begin(struct np_request *req, struct np_response *resp, const char *id, const char *key,
                      const char *question, const char *book, const char *mode, struct ask_row *row)
{
	const struct np_conf *conf = db_conf();
	uint8_t fp[DIGEST_SHA256_LEN];
	/* an ask without a book keeps the fingerprint it had before the scope existed */
	const struct digest_part parts[4] = { { "POST ask", 9 }, { question, strlen(question) }, { "", 1 },
	                                      { book ? book : "", book ? strlen(book) : 0 } };
	if (digest_sha256_parts(parts, book ? 4 : 2, fp) < 0) {
		http_respond_error(resp, 500, "internal", "could not fingerprint the request");
		return false;
	}
	char fph[2 + 2 * DIGEST_SHA256_LEN + 1], topk[16], hist[16], nsent[16], lease[16];
	api_bytea_param(fp, sizeof(fp), fph);
	snprintf(topk, sizeof(topk), "%d", conf->ask_top_k);
	snprintf(hist, sizeof(hist), "%d", conf->ask_history_messages);
	/* LLM mode gets the sentences too when the extractive answer may replace the model's */
	snprintf(nsent, sizeof(nsent), "%d", strcmp(mode, "llm") != 0 || db_conf()->ask_llm_fallback ? ASK_SENTENCES : 0);
	snprintf(lease, sizeof(lease), "%d", ASK_LEASE_MS);
	const char *params[10] = { id, key, fph, question, topk, hist, nsent, mode, lease, book };
	return ask_exec(req, resp, &stmt_ask_begin, params, true, row);
}

/* What np_ask_begin() answered: the turn's ids, citations and mode into t, and the status (201 a
 * new answer, 200 a replay) into *status. false with resp set: 404, 409/422, or a malformed row. */
static bool ask_begun(struct ask_turn *t, struct np_response *resp, const struct ask_row *r, int64_t *status)
{
	if (!r->found || util_parse_i64(ask_col(r, 0), 100, 599, status) < 0) {
		http_respond_error(resp, 500, "internal", "malformed answer from np_ask_begin");
		return false;
	}
	if (*status == 404) {
		http_respond_error(resp, 404, "not_found", strcmp(ask_col(r, 3), "book") == 0 ? "no such book" : "no such session");
		return false;
	}
	if (api_idempotency_conflict(resp, *status))
		return false;
	snprintf(t->question_id, sizeof(t->question_id), "%s", ask_col(r, 1));
	snprintf(t->answer_id, sizeof(t->answer_id), "%s", ask_col(r, 2));
	t->citations = cJSON_Parse(r->v[5] ? r->v[5] : "[]");
	if (r->v[9] && strcmp(r->v[9], "llm") == 0)
		t->mode = "llm";
	if (!t->citations || util_parse_i64(t->answer_id, 1, INT64_MAX, &t->answer_num) < 0) {
		http_respond_error(resp, 500, "internal", "malformed citations from np_ask_begin");
		return false;
	}
	t->k = cJSON_GetArraySize(t->citations);
	return true;
}

/* A new answer made: named in the slot for the cancel route (in either mode: a retrieval answer
 * in no slot was taken for one whose worker died, stored empty and stopped while its client was
 * told complete), the SSE head and citations (a client gone before the first event still gets
 * its answer made and stored), then the answer in the configured mode. */
static void ask_answer(struct ask_turn *t, struct np_response *resp, const struct ask_row *r, bool llm,
                       const char *question)
{
	ask_publish(t, true);
	if (t->sse && ask_sse_head(t, resp) == 0)
		ask_event(t, "citations", ask_head_json(t));
	if (llm)
		ask_llm(t, resp, ask_col(r, 8), ask_col(r, 7), question);
	else
		ask_retrieval(t, resp, ask_col(r, 8));
	ask_publish(t, false);
}

/* ask_rate_per_session: whether this ask is over its session's limit (then resp is the 429). The
 * counter is keyed by the session id and the credentials the ask carries, checked before any
 * database work: a client without the session's token counts against a key of its own (and gets
 * its 401 from the database), never against the session's. */
static bool ask_rate_limited(struct np_request *req, struct np_response *resp, const char *id)
{
	const struct np_conf *conf = db_conf();
	int limit, window_s;
	char msg[160];
	if (conf->ask_rate_per_session[0] == '\0' ||
	    conf_rate_parse(conf->ask_rate_per_session, &limit, &window_s, msg, sizeof(msg)) < 0 || limit == 0 ||
	    db_shm() == NULL)
		return false;
	char keytext[ROUTER_PARAM_LEN + 512];
	snprintf(keytext, sizeof(keytext), "%s\n%s", id, req->authorization ? req->authorization : "");
	uint64_t key = util_hash64(keytext);
	explicit_bzero(keytext, sizeof(keytext));
	int retry = ratelimit_take(db_shm()->hdr->ask_rate, NP_RATE_ENTRIES, key ? key : 1, limit, window_s,
	                           util_now_ms() / 1000);
	if (retry == 0)
		return false;
	snprintf(msg, sizeof(msg), "this session made its %d asks of the last %s; retry after %d s", limit,
	         window_s == 1 ? "second" : window_s == 60 ? "minute" : "hour", retry);
	http_respond_error(resp, 429, "rate_limited", msg);
	resp->retry_after_s = retry;
	return true;
}

/* POST /api/v1/sessions/{id}/ask {question} */
void api_ask(struct np_request *req, struct np_response *resp)
{
	static const char *const allowed[] = { "question", "book", NULL };
	const char *id = api_path_id(req, resp, "id", "session", NULL);
	if (id == NULL)
		return;
	if (req->ask_tx && asktx_secret()[0] && strlen(req->ask_tx) == strlen(asktx_secret()) &&
	    digest_equal_ct(req->ask_tx, asktx_secret(), strlen(asktx_secret()))) {
		ask_tx_serve(req, resp);
		return;
	}
	if (ask_rate_limited(req, resp, id))
		return;
	struct input_err e;
	char key[INPUT_KEY_MAX + 1];
	bool has_key;
	cJSON *body = api_keyed_body(req, resp, key, &has_key);
	if (body == NULL)
		return;
	const char *question;
	bool has_book = false;
	int64_t book_id = 0;
	char book[24];
	if (input_only_fields(body, allowed, &e) < 0 ||
	    input_string(body, "question", true, 1, ASK_QUESTION_MAX, &question, &e) < 0 ||
	    input_int(body, "book", false, 1, ASK_BOOK_MAX, &has_book, &book_id, &e) < 0) {
		cJSON_Delete(body);
		api_input_error(resp, &e);
		return;
	}
	bool llm = db_conf()->llm_url[0] != '\0';
	struct ask_turn t = { .req = req, .sse = req->stream && http_accepts_sse(req->accept),
	                      .mode = llm ? "llm" : "retrieval" };
	struct ask_row row = { 0 };
	int64_t status = 0;
	snprintf(book, sizeof(book), "%lld", (long long)book_id);
	if (ask_begin(req, resp, id, has_key ? key : NULL, question, has_book ? book : NULL, t.mode, &row) &&
	    ask_begun(&t, resp, &row, &status)) {
		if (status == 200)
			ask_replay(&t, resp, &row);
		else
			ask_answer(&t, resp, &row, llm, question);
		/* a stream is counted with the status its client was told at its end (the head said 200) */
		if (resp->streamed && t.fail_status) {
			resp->status = t.fail_status;
			snprintf(resp->error_code, sizeof(resp->error_code), "%s", t.fail_code);
		}
	}
	ask_row_free(&row);
	cJSON_Delete(body);
	cJSON_Delete(t.citations);
	free(t.answer);
}

/* Whether pid runs: a worker killed a moment ago is a zombie until the master reaps it and
 * clears its slot, and would be told a cancel it can never act on. */
static bool ask_pid_alive(pid_t pid)
{
	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return false;
	char path[32], buf[128];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true; /* no /proc: kill() said it exists */
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* "pid (comm) S ...": comm may hold spaces and parens */
	return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

/* POST /api/v1/sessions/{id}/ask/{message_id}/cancel -> 200 {message_id, status}: "stopping" when
 * the worker making the answer was told (it aborts the upstream call at its next tick and stores
 * the text so far as stopped), else the status the answer ended with. */
void api_ask_cancel(struct np_request *req, struct np_response *resp)
{
	int64_t id;
	const char *sid = api_path_id(req, resp, "id", "session", NULL), *mid;
	if (sid == NULL || (mid = api_path_id(req, resp, "message_id", "message", &id)) == NULL ||
	    !api_session_authorize(req, resp, API_OWNER_SESSION, sid))
		return;
	const char *params[2] = { mid, sid };
	PGresult *r = db_read_primary(req, resp, &stmt_ask_status, params);
	if (!r)
		return;
	if (PQntuples(r) != 1) {
		PQclear(r);
		http_respond_error(resp, 404, "not_found", "no such message");
		return;
	}
	char status[16];
	snprintf(status, sizeof(status), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	if (strcmp(status, "streaming") == 0) {
		struct np_shm *shm = db_shm();
		bool told = false;
		for (int i = 0; i < NP_MAX_SLOTS; i++)
			if (atomic_load(&shm->slots[i].ask_answer_id) == id && ask_pid_alive(atomic_load(&shm->slots[i].pid))) {
				atomic_store(&shm->slots[i].ask_cancel_id, id);
				told = true;
			}
		if (told) {
			snprintf(status, sizeof(status), "stopping");
		} else {
			/* nobody here makes it (its worker died, or it is made on another host, which
			 * learns at its next lease renewal): it ends here; its maker, if alive, still
			 * stores the text it sent (np_ask_store) */
			const char *fp[4] = { mid, "", "stopped", "{}" };
			struct np_request *q = req;
			PGresult *f = db_write(q, resp, &stmt_ask_finish, fp);
			if (!f)
				return;
			snprintf(status, sizeof(status), "%s", PQntuples(f) == 1 ? PQgetvalue(f, 0, 0) : "stopped");
			PQclear(f);
		}
	}
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "message_id", mid) || !cJSON_AddStringToObject(o, "status", status)) {
		cJSON_Delete(o);
		http_respond_error(resp, 500, "internal", "could not build the answer");
		return;
	}
	http_respond_json(resp, 200, o);
}
