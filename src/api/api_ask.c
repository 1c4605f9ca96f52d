/* api_ask.c - the ask turn: store the question, retrieve passages, give the database connection
 * back, answer (retrieval mode: an extractive answer with [n] citations), store the answer.
 *
 * Two short transactions, nothing held between them: np_ask_begin() stores the question and an
 * empty answer row with status 'streaming' (so a cancel or a reload finds it) and returns the
 * passages, the history and, in retrieval mode, the passages' best sentences; db_release() then
 * gives the connection's token back; np_ask_finish() stores the answer with its status and the
 * citations its text used. The answer goes out as Server-Sent Events (Accept: text/event-stream)
 * or as one JSON body, as doc/openapi.yaml describes (the contract shared with the page). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "ask_text.h"
#include "db.h"
#include "http.h"
#include "input.h"
#include "log.h"
#include "sha256.h"
#include "util.h"

#define ASK_QUESTION_MAX 2000      /* characters (code points) */
#define ASK_SENTENCES 12           /* candidate sentences np_ask_begin returns in retrieval mode */
#define ASK_ANSWER_SENTENCES 4     /* sentences of an extractive answer */
#define ASK_PER_PASSAGE 2          /* of them from one passage at most */
#define ASK_ANSWER_MAX 16384       /* characters stored (messages.content's bound) */
#define ASK_CITES_MAX 32

/* Statement ids 27..29 are this file's. */
static const struct np_stmt stmt_ask_begin = {
	27, "np_ask_begin",
	"SELECT status, question_id, answer_id, answer_status, answer, citations, citations_used, history, "
	"sentences, mode FROM np_ask_begin($1, $2, $3::bytea, $4, $5, $6, $7, $8)", 8
};
static const struct np_stmt stmt_ask_finish = {
	28, "np_ask_finish", "SELECT status FROM np_ask_finish($1, $2, $3, $4::int[])", 4
};

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
		cJSON_Delete(o);
		if (c && (!o || !cJSON_IsArray(cJSON_GetObjectItem(o, "citations"))))
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
}

/* Store the answer (the second short transaction) and finish the stream or the JSON body. */
static void ask_finish(struct ask_turn *t, struct np_response *resp, const char *status)
{
	int used[ASK_CITES_MAX];
	size_t nused = ask_cites_used(t->answer ? t->answer : "", t->k, used, ASK_CITES_MAX);
	char arr[ASK_CITES_MAX * 4 + 8];
	if (ask_cites_pg_array(used, nused, arr, sizeof(arr)) < 0)
		snprintf(arr, sizeof(arr), "{}");
	const char *params[4] = { t->answer_id, t->answer ? t->answer : "", status, arr };
	struct np_response err = { 0 };
	PGresult *r = db_write(t->req, t->sse ? &err : resp, &stmt_ask_finish, params);
	db_release();
	if (r == NULL) {
		if (t->sse)
			ask_fail_event(t, &err);
		http_response_free(&err);
		return;
	}
	PQclear(r);
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

/* Retrieval mode: the extractive answer, a sentence per delta. */
static void ask_retrieval(struct ask_turn *t, struct np_response *resp, const char *sentences_json)
{
	cJSON *sent = cJSON_Parse(sentences_json);
	cJSON *pieces = ask_extract(sent, t->citations, ASK_ANSWER_SENTENCES, ASK_PER_PASSAGE), *it;
	cJSON_Delete(sent);
	if (!pieces) {
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
		ask_delta(t, it->valuestring);
	cJSON_Delete(pieces);
	/* the pieces end with a space: the stored answer does not */
	while (t->len > 0 && t->answer[t->len - 1] == ' ')
		t->answer[--t->len] = '\0';
	ask_finish(t, resp, "complete");
}

/* A replay of an Idempotency-Key: the stored answer as it is now. */
static void ask_replay(struct ask_turn *t, struct np_response *resp, PGresult *r)
{
	const char *status = PQgetvalue(r, 0, 3);
	if (strcmp(status, "streaming") == 0) {
		http_respond_error_field(resp, 409, "idempotency_in_flight",
		                         "the answer to this Idempotency-Key is still being generated; retry later",
		                         "Idempotency-Key");
		resp->retry_after_s = 1;
		return;
	}
	cJSON *used = cJSON_Parse(PQgetisnull(r, 0, 6) ? "[]" : PQgetvalue(r, 0, 6));
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
		if (PQgetvalue(r, 0, 4)[0])
			ask_delta(t, PQgetvalue(r, 0, 4));
		cJSON *d = cJSON_CreateObject();
		if (d && cJSON_AddStringToObject(d, "message_id", t->answer_id) && ask_add_end(d, status, u, nu))
			ask_event(t, "done", d);
		else
			cJSON_Delete(d);
		return;
	}
	cJSON *o = ask_head_json(t);
	if (!o || !cJSON_AddStringToObject(o, "answer", PQgetvalue(r, 0, 4)) || !ask_add_end(o, status, u, nu)) {
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
	if (!api_session_path_id(req, resp, "session"))
		return;
	struct input_err e;
	char key[INPUT_KEY_MAX + 1];
	int has_key = input_idempotency_key(req->idempotency_key, key, &e);
	if (has_key < 0) {
		http_respond_error_field(resp, e.status, e.code, e.message, e.field);
		return;
	}
	cJSON *body = api_session_body(req, resp);
	if (body == NULL)
		return;
	const char *question;
	if (input_only_fields(body, allowed, &e) < 0 ||
	    input_string(body, "question", true, 1, ASK_QUESTION_MAX, &question, &e) < 0) {
		cJSON_Delete(body);
		http_respond_error_field(resp, e.status, e.code, e.message, e.field);
		return;
	}
	const char *id = router_param(&req->match, "id");
	if (!api_session_authorize(req, resp, id)) {
		cJSON_Delete(body);
		db_release();
		return;
	}
	struct ask_turn t = { .req = req, .sse = req->stream && http_accepts_sse(req->accept), .mode = "retrieval" };
	/* the fingerprint for Idempotency-Key: the question */
	uint8_t fp[SHA256_LEN];
	struct sha256_ctx c;
	sha256_init(&c);
	sha256_update(&c, "POST ask", 9);
	sha256_update(&c, question, strlen(question));
	sha256_final(&c, fp);
	char fph[2 + 2 * SHA256_LEN + 1], topk[16], hist[16], nsent[16];
	api_bytea_param(fp, sizeof(fp), fph);
	snprintf(topk, sizeof(topk), "%d", conf->ask_top_k);
	snprintf(hist, sizeof(hist), "%d", conf->ask_history_messages);
	snprintf(nsent, sizeof(nsent), "%d", ASK_SENTENCES);
	const char *params[8] = { id, has_key ? key : NULL, fph, question, topk, hist, nsent, t.mode };
	PGresult *r = db_write(req, resp, &stmt_ask_begin, params);
	cJSON_Delete(body);
	/* nothing of the database is held while the answer is made */
	db_release();
	if (r == NULL)
		return;
	int64_t status = 0;
	if (PQntuples(r) != 1 || util_parse_i64(PQgetvalue(r, 0, 0), 100, 599, &status) < 0) {
		PQclear(r);
		http_respond_error(resp, 500, "internal", "malformed answer from np_ask_begin");
		return;
	}
	switch (status) {
	case 404:
		http_respond_error(resp, 404, "not_found", "no such session");
		PQclear(r);
		return;
	case 409:
		http_respond_error_field(resp, 409, "idempotency_in_flight",
		                         "a request with this Idempotency-Key is still in progress; retry later",
		                         "Idempotency-Key");
		resp->retry_after_s = 1;
		PQclear(r);
		return;
	case 422:
		http_respond_error_field(resp, 422, "idempotency_mismatch",
		                         "this Idempotency-Key was used with a different request", "Idempotency-Key");
		PQclear(r);
		return;
	default:
		break;
	}
	snprintf(t.question_id, sizeof(t.question_id), "%s", PQgetvalue(r, 0, 1));
	snprintf(t.answer_id, sizeof(t.answer_id), "%s", PQgetvalue(r, 0, 2));
	t.citations = cJSON_Parse(PQgetisnull(r, 0, 5) ? "[]" : PQgetvalue(r, 0, 5));
	if (!PQgetisnull(r, 0, 9) && strcmp(PQgetvalue(r, 0, 9), "llm") == 0)
		t.mode = "llm";
	if (!t.citations) {
		PQclear(r);
		http_respond_error(resp, 500, "internal", "malformed citations from np_ask_begin");
		return;
	}
	t.k = cJSON_GetArraySize(t.citations);
	if (status == 200) {
		ask_replay(&t, resp, r);
	} else {
		/* a client gone before the first event still gets its answer made and stored */
		if (t.sse && ask_sse_head(&t, resp) == 0)
			ask_event(&t, "citations", ask_head_json(&t));
		ask_retrieval(&t, resp, PQgetvalue(r, 0, 8));
	}
	PQclear(r);
	cJSON_Delete(t.citations);
	free(t.answer);
}
