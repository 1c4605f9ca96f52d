/* SPDX-License-Identifier: PostgreSQL */
/* api_ask_answer.c - the ask turn's answer: the Server-Sent Events writer (head, events, deltas,
 * keepalive), the answer stored and its end told (done or error event, or one JSON body), the
 * retrieval mode's extractive answer and the LLM mode's streamed call. */
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


/* The system prompt when llm_system_prompt_file is "". */
static const char ask_default_prompt[] =
	"You answer questions about textbooks. Answer only from the numbered passages below; cite each "
	"statement with the number of its passage in square brackets, like [1] or [2][3]. When the "
	"passages do not answer the question, say so briefly. Be concise.";

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
int ask_event(struct ask_turn *t, const char *name, cJSON *data)
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

int ask_sse_head(struct ask_turn *t, struct np_response *resp)
{
	char head[256];
	int hl = http_format_sse_head(t->req->request_id, head, sizeof(head));
	resp->streamed = true;
	resp->status = 200;
	return hl < 0 ? -1 : ask_write(t, head, (size_t)hl);
}

/* {"message_id", "question_id", "mode", "citations"}: the citations event's data, and the start
 * of the JSON answer. */
cJSON *ask_head_json(const struct ask_turn *t)
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
void ask_delta(struct ask_turn *t, const char *s)
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

/* The end of the stream (done) or the JSON body (with answer, the text), with the status the
 * answer was stored with and the citations it uses. */
void ask_end(struct ask_turn *t, struct np_response *resp, const char *status, const char *answer, const int *used,
             size_t nused)
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
	if (!o || !cJSON_AddStringToObject(o, "answer", answer) || !ask_add_end(o, status, used, nused)) {
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
	ask_end(t, resp, final, t->answer ? t->answer : "", used, nused);
}

/* Whether the cancel route asked to stop this answer (its mailbox in this worker's slot). */
static bool ask_cancel_seen(struct ask_turn *t)
{
	if (atomic_load(&db_shm()->slots[db_slot()].ask_cancel_id) == t->answer_num)
		t->cancelled = true;
	return t->cancelled;
}

/* Retrieval mode: the extractive answer, a sentence per delta. */
void ask_retrieval(struct ask_turn *t, struct np_response *resp, const char *sentences_json)
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

/* The model failed before its first token (code: the error it would have been): a fallback event
 * naming it, then the extractive answer (sentences_json: np_ask_begin's, the passages' bodies
 * among them are skipped) after a label that says what it is, stored so and complete. */
static void ask_fallback(struct ask_turn *t, struct np_response *resp, const char *sentences_json, const char *code)
{
	if (t->sse) {
		cJSON *d = cJSON_CreateObject();
		if (d && cJSON_AddStringToObject(d, "message_id", t->answer_id) && cJSON_AddStringToObject(d, "reason", code))
			ask_event(t, "fallback", d);
		else
			cJSON_Delete(d);
	}
	t->mode = "extractive";
	ask_delta(t, ASK_FALLBACK_LABEL " ");
	ask_retrieval(t, resp, sentences_json);
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
			if ((int)cJSON_GetNumberValue(cJSON_GetObjectItem(b, "n")) == n && cJSON_GetStringValue(cJSON_GetObjectItem(b, "body")))
				text = cJSON_GetStringValue(cJSON_GetObjectItem(b, "body"));
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

/* Whether the answer is abandoned: its client went away and ask_on_disconnect = abort. */
static bool ask_abandon(struct ask_turn *t)
{
	if (t->gone && db_conf()->ask_on_disconnect == NP_ASK_ABORT)
		t->abandoned = true;
	return t->abandoned;
}

static int ask_on_delta(void *ctx, const char *text, size_t len)
{
	struct ask_turn *t = ctx;
	char *s = strndup(text, len);
	if (!s)
		return 1;
	ask_delta(t, s);
	free(s);
	return ask_abandon(t) ? 1 : 0;
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
	return ask_abandon(t) ? 1 : 0;
}

static void ask_on_gate(void *ctx)
{
	struct ask_turn *t = ctx;
	t->req->stream->gate(t->req->stream->ctx);
}

/* LLM mode: the model's answer, streamed as it comes, then stored. */
void ask_llm(struct ask_turn *t, struct np_response *resp, const char *bodies, const char *history,
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
		/* issue 20: time to first token when one came; tokens of a complete answer */
		metrics_llm(res.ttft_ms >= 0 ? (int64_t)res.ttft_ms * 1000 : -1, res.status == LLM_DONE ? res.tokens : -1);
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
	int http;
	const char *code = llm_status_code(res.status, &http);
	/* failed before its first token: the extractive answer instead, when so configured */
	if (conf->ask_llm_fallback && t->len == 0 && !t->cancelled && !t->abandoned) {
		ask_fallback(t, resp, bodies, code);
		return;
	}
	/* failed: the turn is stored so (with what came), the client gets the error */
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
		ask_end(t, resp, final, t->answer ? t->answer : "", used, nused);
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
