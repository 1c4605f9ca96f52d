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

#define ASK_QUESTION_MAX 2000      /* characters (code points) */
#define ASK_SENTENCES 12           /* candidate sentences np_ask_begin returns in retrieval mode */
#define ASK_ANSWER_SENTENCES 4     /* sentences of an extractive answer */
#define ASK_PER_PASSAGE 2          /* of them from one passage at most */
#define ASK_ANSWER_MAX 16384       /* characters stored (messages.content's bound) */
#define ASK_CITES_MAX 32
#define ASK_KEEPALIVE_MS 5000      /* a comment line to the client after this much silence */
#define ASK_KEY_MAX NP_LLM_KEY_MAX /* bytes of an API key */
/* An answer being made holds a lease on its row (sql/006_ask_lease.sql): ASK_LEASE_MS from
 * np_ask_begin, renewed every ASK_SWEEP_MS for every answer the host's slots name, by one worker
 * holding a connection (api_ask_sweep()), which also finishes 'failed' the rows of any host past
 * their lease (so does the session's next ask): an orphan ends at most ASK_LEASE_MS +
 * ASK_SWEEP_MS (13 s) after its last renewal, within the 30 s promised, wherever its maker died. */
#define ASK_LEASE_MS 10000
#define ASK_SWEEP_MS 3000
#define ASK_SWEEP_ROWS 100         /* rows a sweep finishes at most */
#define ASK_SWEEP_ACTIVE_MS 120000 /* sweep while some request used the database this recently */

/* The system prompt when llm_system_prompt_file is "". */
static const char ask_default_prompt[] =
	"You answer questions about textbooks. Answer only from the numbered passages below; cite each "
	"statement with the number of its passage in square brackets, like [1] or [2][3]. When the "
	"passages do not answer the question, say so briefly. Be concise.";

/* Statement ids 12..14 and 27..29 are this file's. */
static const struct np_stmt stmt_ask_begin = {
	27, "np_ask_begin",
	"SELECT status, question_id, answer_id, answer_status, answer, citations, citations_used, history, "
	"sentences, mode FROM np_ask_begin($1, $2, $3::bytea, $4, $5, $6, $7, $8, $9)", 9, 0
};
/* the maker's store of its answer: the row's status after it */
static const struct np_stmt stmt_ask_store = {
	12, "np_ask_store", "SELECT status FROM np_ask_store($1, $2, $3, $4::int[])", 4, 0
};
/* the leases of the answers this host makes renewed: the ids not streaming any more */
static const struct np_stmt stmt_ask_renew = {
	13, "np_ask_renew", "SELECT np_ask_renew($1::bigint[], $2)", 2, 0
};
/* the answers of every session past their lease, finished failed: how many */
static const struct np_stmt stmt_ask_expire = {
	14, "np_ask_expire", "SELECT np_ask_expire(NULL, $1)", 1, 0
};
static const struct np_stmt stmt_ask_finish = {
	28, "np_ask_finish", "SELECT status FROM np_ask_finish($1, $2, $3, $4::int[])", 4, 0
};
/* the answer of session $2 named $1: its status */
static const struct np_stmt stmt_ask_status = {
	29, "np_ask_status", "SELECT status FROM messages WHERE id = $1 AND session_id = $2 AND role = 'assistant'", 2, 0
};

/* ---- the two short transactions --------------------------------------------------------- */

#define ASK_COLS 10

/* The first row of a statement's answer, copied (the statement ran here or in the main pool). */
struct ask_row {
	bool found;
	char *v[ASK_COLS];         /* NULL: SQL NULL */
};

static void ask_row_free(struct ask_row *r)
{
	for (int i = 0; i < ASK_COLS; i++)
		free(r->v[i]);
	memset(r, 0, sizeof(*r));
}

static const char *ask_col(const struct ask_row *r, int i)
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

/* The ask pool's permit: one internal transaction in flight at a time, so that the readers wait
 * behind at most one of them in the main pool's queue. A holder that dies is freed by the master
 * when it reaps it (shm_ask_permit_reclaim): only the reaper knows a pid is dead and not yet
 * reused; kill(pid, 0) here took a zombie for alive and an unrelated process that got the pid
 * back for the holder, which wedged the permit until that process ended. */
static bool ask_permit_take(int64_t deadline_ms)
{
	_Atomic int32_t *w = &db_shm()->hdr->ask_tx_owner;
	int32_t me = (int32_t)getpid();
	for (;;) {
		int32_t cur = 0;
		if (atomic_compare_exchange_strong(w, &cur, me))
			return true;
		if (cur == me)
			return true;
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
	atomic_compare_exchange_strong(&db_shm()->hdr->ask_tx_owner, &me, 0);
}

/* Whether this process is a worker of the ask pool (its transactions run in the main pool). */
static bool ask_in_pool(void)
{
	return atomic_load(&db_shm()->slots[db_slot()].kind) == NP_KIND_ASK;
}

/* Run st with params, for the ask route's session (auth: check its bearer token first): on this
 * worker's connection (kept), or, in an ask worker, by the main pool
 * (an internal request, asktx.h), one at a time across the ask pool. true with row filled, or
 * false with resp set to the error. */
static bool ask_exec(struct np_request *req, struct np_response *resp, const struct np_stmt *st,
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

/* One turn being answered. */
struct ask_turn {
	struct np_request *req;
	bool sse;                  /* Server-Sent Events, else one JSON body */
	bool gone;                 /* the SSE peer went away */
	char question_id[24];
	char answer_id[24];
	const char *mode;          /* "llm" or "retrieval" */
	cJSON *citations;          /* [{n, passage_id, ...}] */
	int k;                     /* number of citations */
	char *answer;              /* the text so far, malloc'd */
	size_t len, cap;
	int64_t answer_num;        /* answer_id as a number (the cancel mailbox) */
	int64_t last_write_ms;     /* the last bytes sent to the client (keepalive) */
	bool cancelled;            /* the cancel route asked to stop */
	bool abandoned;            /* the client went away and ask_on_disconnect = abort */
	int fail_status;           /* the stream ended with an error event of this status (metrics) */
	char fail_code[40];
};

/* ---- writing the stream ---------------------------------------------------------------- */

static int ask_write(struct ask_turn *t, const char *s, size_t n)
{
	if (t->gone)
		return -1;
	if (t->req->stream->write(t->req->stream->ctx, s, n) < 0)
		t->gone = true;
	return t->gone ? -1 : 0;
}

/* One event: "event: NAME" (when name) and "data: JSON"; data is freed. Flushed. */
static int ask_event(struct ask_turn *t, const char *name, cJSON *data)
{
	char *json = data ? cJSON_PrintUnformatted(data) : NULL;
	cJSON_Delete(data);
	if (!json)
		return -1;
	char head[64];
	int hl = name ? snprintf(head, sizeof(head), "event: %s\n", name) : 0;
	int rc = (hl > 0 ? ask_write(t, head, (size_t)hl) : 0) | ask_write(t, "data: ", 6) |
	         ask_write(t, json, strlen(json)) | ask_write(t, "\n\n", 2);
	free(json);
	if (rc == 0 && t->req->stream->flush(t->req->stream->ctx) < 0)
		t->gone = true;
	t->last_write_ms = util_now_ms();
	return t->gone ? -1 : 0;
}

static int ask_sse_head(struct ask_turn *t, struct np_response *resp)
{
	char head[256];
	int hl = http_format_sse_head(t->req->request_id, head, sizeof(head));
	resp->streamed = true;
	resp->status = 200;
	return hl < 0 ? -1 : ask_write(t, head, (size_t)hl);
}

/* {"message_id", "question_id", "mode", "citations"}: the citations event's data, and the start
 * of the JSON answer. */
static cJSON *ask_head_json(const struct ask_turn *t)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *c = cJSON_Duplicate(t->citations, true);
	if (!o || !c || !cJSON_AddStringToObject(o, "message_id", t->answer_id) ||
	    !cJSON_AddStringToObject(o, "question_id", t->question_id) || !cJSON_AddStringToObject(o, "mode", t->mode) ||
	    !cJSON_AddItemToObject(o, "citations", c)) {
		cJSON_Delete(o); /* c was not attached: every step before attaching it failed */
		cJSON_Delete(c);
		return NULL;
	}
	return o;
}

/* Add "status" and "citations_used" (used[0..n)) to o. */
static bool ask_add_end(cJSON *o, const char *status, const int *used, size_t n)
{
	cJSON *arr = cJSON_CreateIntArray(used, (int)n);
	if (!arr || !cJSON_AddStringToObject(o, "status", status) || !cJSON_AddItemToObject(o, "citations_used", arr)) {
		cJSON_Delete(arr);
		return false;
	}
	return true;
}

/* Append a piece of the answer (bounded by ASK_ANSWER_MAX bytes: a piece past it is cut at a
 * character boundary) and send it as a delta. */
static void ask_delta(struct ask_turn *t, const char *s)
{
	size_t n = strlen(s);
	if (t->len + n > ASK_ANSWER_MAX) {
		n = ASK_ANSWER_MAX - t->len;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	if (n == 0)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		while (cap < t->len + n + 1)
			cap *= 2;
		char *a = realloc(t->answer, cap);
		if (!a)
			return;
		t->answer = a;
		t->cap = cap;
	}
	memcpy(t->answer + t->len, s, n);
	t->len += n;
	t->answer[t->len] = '\0';
	if (t->sse && !t->gone) {
		char *piece = strndup(s, n);
		cJSON *d = cJSON_CreateObject();
		if (piece && d && cJSON_AddStringToObject(d, "delta", piece))
			ask_event(t, NULL, d);
		else
			cJSON_Delete(d);
		free(piece);
	}
}

/* ---- answering ------------------------------------------------------------------------- */

/* A 4xx/5xx after the SSE head went out: the error event (the envelope and the message id). */
static void ask_fail_event(struct ask_turn *t, struct np_response *err)
{
	cJSON *e = err->body ? cJSON_Parse(err->body) : NULL;
	if (!e) {
		e = cJSON_CreateObject();
		cJSON *inner = cJSON_AddObjectToObject(e, "error");
		cJSON_AddStringToObject(inner, "code", "internal");
		cJSON_AddStringToObject(inner, "message", "the answer could not be stored");
	}
	cJSON_AddStringToObject(e, "message_id", t->answer_id);
	ask_event(t, "error", e);
	t->fail_status = err->status >= 400 ? err->status : 500;
	snprintf(t->fail_code, sizeof(t->fail_code), "%s", err->error_code[0] ? err->error_code : "internal");
}

/* The status a row ended with, as one of ours (a static string); fallback when it is none. */
static const char *ask_known_status(const char *s, const char *fallback)
{
	static const char *const known[] = { "complete", "stopped", "failed", "streaming" };
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(s, known[i]) == 0)
			return known[i];
	return fallback;
}

/* Store the answer (the second short transaction, np_ask_store(): the maker's text, even when a
 * cancel that found no worker or an expired lease finished the row first): its text, status and
 * the citations it uses (used[0..*nused)). *final: the status the row ended with, which is what
 * the client is told (status unless someone else finished the row). false with err set when the
 * database failed. */
static bool ask_store(struct ask_turn *t, const char *status, struct np_response *err, int *used, size_t *nused,
                      const char **final)
{
	*final = status;
	*nused = ask_cites_used(t->answer ? t->answer : "", t->k, used, ASK_CITES_MAX);
	char arr[ASK_CITES_MAX * 4 + 8];
	if (ask_cites_pg_array(used, *nused, arr, sizeof(arr)) < 0)
		snprintf(arr, sizeof(arr), "{}");
	const char *params[4] = { t->answer_id, t->answer ? t->answer : "", status, arr };
	struct ask_row row;
	if (!ask_exec(t->req, err, &stmt_ask_store, params, false, &row))
		return false;
	if (row.found)
		*final = ask_known_status(ask_col(&row, 0), status);
	ask_row_free(&row);
	return true;
}

/* The end of the stream (done) or the JSON body, with the status the answer was stored with. */
static void ask_end(struct ask_turn *t, struct np_response *resp, const char *status, const int *used, size_t nused)
{
	if (t->sse) {
		cJSON *d = cJSON_CreateObject();
		if (d && cJSON_AddStringToObject(d, "message_id", t->answer_id) && ask_add_end(d, status, used, nused))
			ask_event(t, "done", d);
		else
			cJSON_Delete(d);
		return;
	}
	cJSON *o = ask_head_json(t);
	if (!o || !cJSON_AddStringToObject(o, "answer", t->answer ? t->answer : "") || !ask_add_end(o, status, used, nused)) {
		cJSON_Delete(o);
		http_respond_error(resp, 500, "internal", "could not build the answer");
		return;
	}
	http_respond_json(resp, 200, o);
}

/* Store the answer and finish the stream (done) or the JSON body. */
static void ask_finish(struct ask_turn *t, struct np_response *resp, const char *status)
{
	int used[ASK_CITES_MAX];
	size_t nused;
	const char *final;
	struct np_response err = { 0 };
	if (!ask_store(t, status, t->sse ? &err : resp, used, &nused, &final)) {
		if (t->sse)
			ask_fail_event(t, &err);
		http_response_free(&err);
		return;
	}
	ask_end(t, resp, final, used, nused);
}

/* Whether the cancel route asked to stop this answer (its mailbox in this worker's slot). */
static bool ask_cancel_seen(struct ask_turn *t)
{
	if (atomic_load(&db_shm()->slots[db_slot()].ask_cancel_id) == t->answer_num)
		t->cancelled = true;
	return t->cancelled;
}

/* Retrieval mode: the extractive answer, a sentence per delta. */
static void ask_retrieval(struct ask_turn *t, struct np_response *resp, const char *sentences_json)
{
	cJSON *sent = cJSON_Parse(sentences_json);
	cJSON *pieces = ask_extract(sent, t->citations, ASK_ANSWER_SENTENCES, ASK_PER_PASSAGE), *it;
	cJSON_Delete(sent);
	if (!pieces) {
		/* the turn is marked failed, never left streaming */
		struct np_response ignored = { 0 };
		int used[ASK_CITES_MAX];
		size_t nused;
		const char *final;
		if (!ask_store(t, "failed", &ignored, used, &nused, &final))
			log_warn("the failed answer %s could not be stored (its lease ends it)", t->answer_id);
		http_response_free(&ignored);
		if (t->sse) {
			struct np_response err = { 0 };
			http_respond_error(&err, 500, "internal", "out of memory building the answer");
			ask_fail_event(t, &err);
			http_response_free(&err);
		} else {
			http_respond_error(resp, 500, "internal", "out of memory building the answer");
		}
		return;
	}
	cJSON_ArrayForEach(it, pieces)
	{
		if (ask_cancel_seen(t))
			break;
		ask_delta(t, it->valuestring);
	}
	cJSON_Delete(pieces);
	/* the pieces end with a space: the stored answer does not */
	while (t->len > 0 && t->answer[t->len - 1] == ' ')
		t->answer[--t->len] = '\0';
	ask_finish(t, resp, ask_cancel_seen(t) ? "stopped" : "complete");
}

/* ---- LLM mode ------------------------------------------------------------------------ */

/* The whole of a small file (the prompt, the key): util_read_file(), the read `neonpoold -t`
 * checks; NULL (logged, the path and why, never the content) when it cannot be had. */
static char *ask_read_file(const char *key, const char *path, size_t max)
{
	char err[PATH_MAX + 96];
	char *text = util_read_file(path, max, err, sizeof(err));
	if (!text)
		log_warn("%s: %s", key, err);
	return text;
}

/* The API key into key (cap bytes): llm_api_key_file's first line, else NEONPOOL_LLM_API_KEY,
 * else "". -1 when the file cannot be read. */
static int ask_api_key(const struct np_conf *conf, char *key, size_t cap)
{
	key[0] = '\0';
	if (conf->llm_api_key_file[0]) {
		char *f = ask_read_file("llm_api_key_file", conf->llm_api_key_file, NP_LLM_KEY_MAX);
		if (!f)
			return -1;
		size_t l = strcspn(f, "\r\n");
		if (l >= cap)
			l = cap - 1;
		memcpy(key, f, l);
		key[l] = '\0';
		explicit_bzero(f, strlen(f));
		free(f);
		return 0;
	}
	const char *env = getenv("NEONPOOL_LLM_API_KEY");
	if (env)
		snprintf(key, cap, "%s", env);
	return 0;
}

/* The chat-completions request: the system prompt with the numbered passages, the history, the
 * question. malloc'd JSON; NULL when out of memory or the prompt file is unreadable. */
static char *ask_llm_body(const struct np_conf *conf, const struct ask_turn *t, const char *bodies_json,
                          const char *history_json, const char *question)
{
	char *prompt = conf->llm_system_prompt_file[0] ? ask_read_file("llm_system_prompt_file", conf->llm_system_prompt_file, NP_LLM_PROMPT_MAX)
	                                               : strdup(ask_default_prompt);
	if (!prompt)
		return NULL;
	cJSON *bodies = cJSON_Parse(bodies_json ? bodies_json : "[]"), *hist = cJSON_Parse(history_json ? history_json : "[]");
	size_t cap = strlen(prompt) + 64;
	cJSON *c, *b;
	cJSON_ArrayForEach(c, t->citations)
		cap += 256 + strlen(cJSON_GetStringValue(cJSON_GetObjectItem(c, "book")) ?: "") +
		       strlen(cJSON_GetStringValue(cJSON_GetObjectItem(c, "chapter")) ?: "") +
		       strlen(cJSON_GetStringValue(cJSON_GetObjectItem(c, "title")) ?: "");
	cJSON_ArrayForEach(b, bodies)
		cap += strlen(cJSON_GetStringValue(cJSON_GetObjectItem(b, "body")) ?: "") + 8;
	char *sys = malloc(cap), *body = NULL;
	cJSON *o = cJSON_CreateObject(), *msgs = NULL, *m;
	if (!sys || !o)
		goto out;
	size_t len = (size_t)snprintf(sys, cap, "%s\n\nPassages:\n", prompt);
	cJSON_ArrayForEach(c, t->citations)
	{
		int n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(c, "n"));
		const char *text = "";
		cJSON_ArrayForEach(b, bodies)
			if ((int)cJSON_GetNumberValue(cJSON_GetObjectItem(b, "n")) == n)
				text = cJSON_GetStringValue(cJSON_GetObjectItem(b, "body")) ?: "";
		len += (size_t)snprintf(sys + len, cap - len, "\n[%d] %s / %s / %s\n%s\n", n,
		                        cJSON_GetStringValue(cJSON_GetObjectItem(c, "book")) ?: "",
		                        cJSON_GetStringValue(cJSON_GetObjectItem(c, "chapter")) ?: "",
		                        cJSON_GetStringValue(cJSON_GetObjectItem(c, "title")) ?: "", text);
		if (len >= cap)
			goto out;
	}
	if (!cJSON_AddStringToObject(o, "model", conf->llm_model) || !cJSON_AddBoolToObject(o, "stream", 1) ||
	    !(msgs = cJSON_AddArrayToObject(o, "messages")))
		goto out;
	if (!(m = cJSON_CreateObject()) || !cJSON_AddItemToArray(msgs, m) || !cJSON_AddStringToObject(m, "role", "system") ||
	    !cJSON_AddStringToObject(m, "content", sys))
		goto out;
	cJSON_ArrayForEach(c, hist)
	{
		const char *role = cJSON_GetStringValue(cJSON_GetObjectItem(c, "role"));
		const char *content = cJSON_GetStringValue(cJSON_GetObjectItem(c, "content"));
		if (!role || !content || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
			continue;
		if (!(m = cJSON_CreateObject()) || !cJSON_AddItemToArray(msgs, m) || !cJSON_AddStringToObject(m, "role", role) ||
		    !cJSON_AddStringToObject(m, "content", content))
			goto out;
	}
	if (!(m = cJSON_CreateObject()) || !cJSON_AddItemToArray(msgs, m) || !cJSON_AddStringToObject(m, "role", "user") ||
	    !cJSON_AddStringToObject(m, "content", question))
		goto out;
	body = cJSON_PrintUnformatted(o);
out:
	cJSON_Delete(o);
	cJSON_Delete(bodies);
	cJSON_Delete(hist);
	free(sys);
	free(prompt);
	return body;
}

static int ask_on_delta(void *ctx, const char *text, size_t len)
{
	struct ask_turn *t = ctx;
	char *s = strndup(text, len);
	if (!s)
		return 1;
	ask_delta(t, s);
	free(s);
	if (t->gone && db_conf()->ask_on_disconnect == NP_ASK_ABORT) {
		t->abandoned = true;
		return 1;
	}
	return 0;
}

/* Every LLM_TICK_MS while the model thinks: a cancel, a keepalive, a client gone. */
static int ask_tick(void *ctx)
{
	struct ask_turn *t = ctx;
	if (ask_cancel_seen(t))
		return 1;
	if (t->sse && !t->gone && util_now_ms() - t->last_write_ms >= ASK_KEEPALIVE_MS) {
		if (ask_write(t, ": keepalive\n\n", 13) == 0 && t->req->stream->flush(t->req->stream->ctx) < 0)
			t->gone = true;
		t->last_write_ms = util_now_ms();
	}
	if (t->gone && db_conf()->ask_on_disconnect == NP_ASK_ABORT) {
		t->abandoned = true;
		return 1;
	}
	return 0;
}

static void ask_on_gate(void *ctx)
{
	struct ask_turn *t = ctx;
	t->req->stream->gate(t->req->stream->ctx);
}

/* LLM mode: the model's answer, streamed as it comes, then stored. */
static void ask_llm(struct ask_turn *t, struct np_response *resp, const char *bodies, const char *history,
                    const char *question)
{
	const struct np_conf *conf = db_conf();
	char key[ASK_KEY_MAX + 1];
	char *body = ask_llm_body(conf, t, bodies, history, question);
	struct llm_result res = { .status = LLM_UNAVAILABLE };
	if (!body) {
		snprintf(res.detail, sizeof(res.detail), "cannot build the request (llm_system_prompt_file unreadable?)");
	} else if (ask_api_key(conf, key, sizeof(key)) < 0) {
		snprintf(res.detail, sizeof(res.detail), "llm_api_key_file cannot be read");
	} else {
		struct llm_call call = {
			.url = conf->llm_url, .body = body, .api_key = key, .connect_ms = conf->llm_connect_timeout_ms,
			.first_token_ms = conf->llm_first_token_timeout_ms, .gap_ms = conf->llm_gap_timeout_ms,
			.total_ms = conf->llm_total_timeout_ms, .retry_after_max_ms = conf->llm_retry_after_max_ms,
			.on_delta = ask_on_delta, .tick = ask_tick,
			.watch_fd = t->req->stream ? t->req->stream->gate_fd : -1, .on_fd = ask_on_gate, .ctx = t,
		};
		/* nothing of the database is held while the model answers (a main worker's connection
		 * goes back to the budget; an ask worker holds none) */
		db_close_held();
		llm_chat(&call, &res);
		metrics_phase(NP_PHASE_UPSTREAM, (int64_t)res.total_ms * 1000); /* issue 8: the upstream phase */
	}
	explicit_bzero(key, sizeof(key));
	free(body);
	char kv[400], q[200];
	util_quote_value(res.detail, q, sizeof(q));
	snprintf(kv, sizeof(kv), " request_id=%s message_id=%s outcome=%s attempts=%d http=%d tokens=%d ttft_ms=%lld total_ms=%lld detail=%s",
	         t->req->request_id, t->answer_id,
	         res.status == LLM_DONE ? "complete" : t->cancelled ? "cancelled" : t->abandoned ? "client_gone" : "failed",
	         res.attempts, res.http_status, res.tokens, (long long)res.ttft_ms, (long long)res.total_ms, q);
	log_kv(res.status == LLM_DONE || res.status == LLM_ABORTED ? NP_LOG_INFO : NP_LOG_WARN, kv, "llm answer");
	if (res.status == LLM_DONE) {
		ask_finish(t, resp, "complete");
		return;
	}
	if (res.status == LLM_ABORTED) {
		ask_finish(t, resp, "stopped");
		return;
	}
	/* failed: the turn is stored so (with what came), the client gets the error */
	int http;
	const char *code = llm_status_code(res.status, &http);
	char msg[200];
	snprintf(msg, sizeof(msg), "the language model failed: %s", res.detail);
	struct np_response err = { 0 };
	int used[ASK_CITES_MAX];
	size_t nused;
	const char *final = "failed";
	bool stored = ask_store(t, "failed", &err, used, &nused, &final);
	http_response_free(&err);
	memset(&err, 0, sizeof(err));
	if (stored && strcmp(final, "failed") != 0) {
		/* finished otherwise meanwhile (a cancel): the client is told what was stored */
		ask_end(t, resp, final, used, nused);
		return;
	}
	if (t->sse) {
		http_respond_error(&err, http, code, msg);
		ask_fail_event(t, &err);
		http_response_free(&err);
	} else {
		http_response_free(resp);
		memset(resp, 0, sizeof(*resp));
		http_respond_error(resp, http, code, msg);
		if (http == 503)
			resp->retry_after_s = db_retry_after_s();
	}
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
		cJSON *d = cJSON_CreateObject();
		if (d && cJSON_AddStringToObject(d, "message_id", t->answer_id) && ask_add_end(d, status, u, nu))
			ask_event(t, "done", d);
		else
			cJSON_Delete(d);
		return;
	}
	cJSON *o = ask_head_json(t);
	if (!o || !cJSON_AddStringToObject(o, "answer", ask_col(r, 4)) || !ask_add_end(o, status, u, nu)) {
		cJSON_Delete(o);
		http_respond_error(resp, 500, "internal", "could not build the answer");
		return;
	}
	http_respond_json(resp, 200, o);
}

/* POST /api/v1/sessions/{id}/ask {question} */
void api_ask(struct np_request *req, struct np_response *resp)
{
	static const char *const allowed[] = { "question", NULL };
	const struct np_conf *conf = db_conf();
	const char *id = api_path_id(req, resp, "id", "session", NULL);
	if (id == NULL)
		return;
	if (req->ask_tx && asktx_secret()[0] && strlen(req->ask_tx) == strlen(asktx_secret()) &&
	    digest_equal_ct(req->ask_tx, asktx_secret(), strlen(asktx_secret()))) {
		ask_tx_serve(req, resp);
		return;
	}
	struct input_err e;
	char key[INPUT_KEY_MAX + 1];
	bool has_key;
	cJSON *body = api_keyed_body(req, resp, key, &has_key);
	if (body == NULL)
		return;
	const char *question;
	if (input_only_fields(body, allowed, &e) < 0 ||
	    input_string(body, "question", true, 1, ASK_QUESTION_MAX, &question, &e) < 0) {
		cJSON_Delete(body);
		api_input_error(resp, &e);
		return;
	}
	bool llm = conf->llm_url[0] != '\0';
	struct ask_turn t = { .req = req, .sse = req->stream && http_accepts_sse(req->accept),
	                      .mode = llm ? "llm" : "retrieval" };
	/* the fingerprint for Idempotency-Key: the question */
	uint8_t fp[DIGEST_SHA256_LEN];
	const struct digest_part parts[2] = { { "POST ask", 9 }, { question, strlen(question) } };
	if (digest_sha256_parts(parts, 2, fp) < 0) {
		cJSON_Delete(body);
		http_respond_error(resp, 500, "internal", "could not fingerprint the request");
		return;
	}
	char fph[2 + 2 * DIGEST_SHA256_LEN + 1], topk[16], hist[16], nsent[16], lease[16];
	api_bytea_param(fp, sizeof(fp), fph);
	snprintf(topk, sizeof(topk), "%d", conf->ask_top_k);
	snprintf(hist, sizeof(hist), "%d", conf->ask_history_messages);
	snprintf(nsent, sizeof(nsent), "%d", llm ? 0 : ASK_SENTENCES);
	snprintf(lease, sizeof(lease), "%d", ASK_LEASE_MS);
	const char *params[9] = { id, has_key ? key : NULL, fph, question, topk, hist, nsent, t.mode, lease };
	struct ask_row row;
	if (!ask_exec(req, resp, &stmt_ask_begin, params, true, &row)) {
		cJSON_Delete(body);
		return;
	}
	struct ask_row *r = &row;
	int64_t status = 0;
	if (!row.found || util_parse_i64(ask_col(r, 0), 100, 599, &status) < 0) {
		ask_row_free(r);
		cJSON_Delete(body);
		http_respond_error(resp, 500, "internal", "malformed answer from np_ask_begin");
		return;
	}
	switch (status) {
	case 404:
		http_respond_error(resp, 404, "not_found", "no such session");
		ask_row_free(r);
		cJSON_Delete(body);
		return;
	case 409:
	case 422:
		api_idempotency_conflict(resp, status);
		ask_row_free(r);
		cJSON_Delete(body);
		return;
	default:
		break;
	}
	snprintf(t.question_id, sizeof(t.question_id), "%s", ask_col(r, 1));
	snprintf(t.answer_id, sizeof(t.answer_id), "%s", ask_col(r, 2));
	t.citations = cJSON_Parse(r->v[5] ? r->v[5] : "[]");
	if (r->v[9] && strcmp(r->v[9], "llm") == 0)
		t.mode = "llm";
	if (!t.citations || util_parse_i64(t.answer_id, 1, INT64_MAX, &t.answer_num) < 0) {
		ask_row_free(r);
		cJSON_Delete(body);
		cJSON_Delete(t.citations);
		http_respond_error(resp, 500, "internal", "malformed citations from np_ask_begin");
		return;
	}
	t.k = cJSON_GetArraySize(t.citations);
	if (status == 200) {
		ask_replay(&t, resp, r);
	} else {
		/* the cancel route finds the answer by the slot that makes it, in either mode: a
		 * retrieval answer in no slot was taken for one whose worker died, stored empty and
		 * stopped while its client was told complete */
		ask_publish(&t, true);
		/* a client gone before the first event still gets its answer made and stored */
		if (t.sse && ask_sse_head(&t, resp) == 0)
			ask_event(&t, "citations", ask_head_json(&t));
		if (llm)
			ask_llm(&t, resp, ask_col(r, 8), ask_col(r, 7), question);
		else
			ask_retrieval(&t, resp, ask_col(r, 8));
		ask_publish(&t, false);
	}
	/* a stream is counted with the status its client was told at its end (the head said 200) */
	if (resp->streamed && t.fail_status) {
		resp->status = t.fail_status;
		snprintf(resp->error_code, sizeof(resp->error_code), "%s", t.fail_code);
	}
	ask_row_free(r);
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

/* The leases of the answers this host's slots name, renewed; those found finished elsewhere get a
 * cancel in their slot (the maker stops at its next tick and stores what it sent). */
static void ask_renew(struct np_shm *shm)
{
	char ids[NP_MAX_SLOTS * 22 + 3];
	size_t len = 0;
	ids[len++] = '{';
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		int64_t a = atomic_load(&shm->slots[i].ask_answer_id);
		if (a > 0)
			len += (size_t)snprintf(ids + len, sizeof(ids) - len, "%s%lld", len > 1 ? "," : "", (long long)a);
	}
	if (len == 1)
		return;
	snprintf(ids + len, sizeof(ids) - len, "}");
	char ms[16];
	snprintf(ms, sizeof(ms), "%d", ASK_LEASE_MS);
	const char *params[2] = { ids, ms };
	PGresult *r = db_idle_exec(&stmt_ask_renew, params);
	if (!r)
		return;
	for (int k = 0; k < PQntuples(r); k++) {
		int64_t id;
		if (util_parse_i64(PQgetvalue(r, k, 0), 1, INT64_MAX, &id) < 0)
			continue;
		for (int i = 0; i < NP_MAX_SLOTS; i++)
			if (atomic_load(&shm->slots[i].ask_answer_id) == id)
				atomic_store(&shm->slots[i].ask_cancel_id, id);
	}
	PQclear(r);
}

void api_ask_sweep(void)
{
	struct np_shm *shm = db_shm();
	if (!db_holder(NP_EP_PRIMARY))
		return;
	_Atomic int64_t *due = &shm->hdr->ask_sweep_due_ms;
	int64_t now = util_now_ms(), d = atomic_load(due);
	if (now < d || !atomic_compare_exchange_strong(due, &d, now + ASK_SWEEP_MS))
		return;
	ask_renew(shm);
	/* only while the database is in use: a sweep every 5 s would keep a scale-to-zero server
	 * awake; an idle pool sweeps again from its next request */
	int64_t last = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		int64_t l = atomic_load(&shm->slots[i].db_last_request_us);
		if (l > last)
			last = l;
	}
	if (last == 0 || util_wall_us() - last > (int64_t)ASK_SWEEP_ACTIVE_MS * 1000)
		return;
	char rows[16];
	snprintf(rows, sizeof(rows), "%d", ASK_SWEEP_ROWS);
	const char *params[1] = { rows };
	PGresult *r = db_idle_exec(&stmt_ask_expire, params);
	if (!r)
		return;
	int64_t n = 0;
	if (PQntuples(r) == 1 && util_parse_i64(PQgetvalue(r, 0, 0), 0, INT64_MAX, &n) == 0 && n > 0) {
		char kv[48];
		snprintf(kv, sizeof(kv), " answers=%lld", (long long)n);
		log_kv(NP_LOG_WARN, kv, "answers past their lease finished failed (their worker or host is gone)");
	}
	PQclear(r);
}
