/* SPDX-License-Identifier: PostgreSQL */
/* llm.c - one streamed chat-completions call through libcurl, under deadlines, retried once
 * before the first token, abortable from the progress callback. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "llm.h"
#include "sseparse.h"
#include "util.h"

#define LLM_EVENT_MAX 65536     /* the largest SSE event we accept from the model */
#define LLM_RETRY_DELAY_MS 200  /* before the retry of a 5xx without Retry-After */

struct llm_xfer {
	const struct llm_call *call;
	CURL *easy;
	struct sse_parser sse;
	int64_t t0_ms, first_ms, last_ms, last_check_ms, deadline_ms;
	int tokens;
	bool done;              /* [DONE] or a finish_reason */
	bool stream_error;      /* an error event, or a chunk that is not JSON */
	bool delta_stop;        /* on_delta asked to stop */
	enum llm_status stop;   /* set by the checks: LLM_ABORTED or LLM_TIMEOUT (LLM_DONE: none) */
	int retry_after_s;      /* the answer's Retry-After, -1 none */
	char detail[160];
};

const char *llm_status_code(enum llm_status st, int *http_status)
{
	const char *code;
	switch (st) {
	case LLM_TIMEOUT:
		*http_status = 504;
		code = "llm_timeout";
		break;
	case LLM_BUSY:
		*http_status = 503;
		code = "llm_busy";
		break;
	default:
		*http_status = 502;
		code = "llm_unavailable";
		break;
	}
	return code;
}

/* One event of the model's stream. */
static int llm_on_event(void *ctx, const char *event, const char *data, size_t len)
{
	struct llm_xfer *x = ctx;
	(void)event;
	(void)len;
	if (strcmp(data, "[DONE]") == 0) {
		x->done = true;
		return 1;
	}
	cJSON *o = cJSON_Parse(data);
	if (!o || cJSON_GetObjectItemCaseSensitive(o, "error")) {
		x->stream_error = true;
		snprintf(x->detail, sizeof(x->detail), "%s", o ? "the model sent an error in its stream" : "the model sent a chunk that is not JSON");
		cJSON_Delete(o);
		return 1;
	}
	cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0);
	cJSON *delta = cJSON_GetObjectItemCaseSensitive(ch, "delta");
	cJSON *content = cJSON_GetObjectItemCaseSensitive(delta, "content");
	cJSON *finish = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
	int rc = 0;
	if (cJSON_IsString(content) && content->valuestring[0]) {
		int64_t now = util_now_ms();
		if (x->tokens == 0)
			x->first_ms = now;
		x->last_ms = now;
		x->tokens++;
		if (x->call->on_delta(x->call->ctx, content->valuestring, strlen(content->valuestring)) != 0) {
			x->delta_stop = true;
			rc = 1;
		}
	}
	if (cJSON_IsString(finish))
		x->done = true;
	cJSON_Delete(o);
	return rc;
}

static size_t llm_on_write(char *buf, size_t size, size_t n, void *ctx)
{
	struct llm_xfer *x = ctx;
	long code = 0;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200)
		return size * n; /* an error's body: only its status matters */
	if (sse_feed(&x->sse, buf, size * n, llm_on_event, x) != 0) {
		if (!x->done && !x->stream_error && !x->delta_stop) {
			x->stream_error = true;
			snprintf(x->detail, sizeof(x->detail), "the model sent an event over %d bytes", LLM_EVENT_MAX);
		}
		return 0;
	}
	return size * n;
}

static size_t llm_on_header(char *buf, size_t size, size_t n, void *ctx)
{
	struct llm_xfer *x = ctx;
	size_t len = size * n;
	if (len > 12 && strncasecmp(buf, "retry-after:", 12) == 0) {
		char v[24];
		size_t vl = len - 12 < sizeof(v) - 1 ? len - 12 : sizeof(v) - 1;
		memcpy(v, buf + 12, vl);
		v[vl] = '\0';
		char *end;
		long s = strtol(v, &end, 10);
		x->retry_after_s = end != v && s >= 0 && s < 86400 ? (int)s : -1;
	} else if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) {
		x->retry_after_s = -1; /* a new answer's head */
	}
	return len;
}

/* The deadlines and the caller's tick, at most every LLM_TICK_MS / 2. true: stop. */
static bool llm_check(struct llm_xfer *x)
{
	int64_t now = util_now_ms();
	if (x->stop != LLM_DONE)
		return true;
	if (now - x->last_check_ms < LLM_TICK_MS / 2)
		return false;
	x->last_check_ms = now;
	const struct llm_call *c = x->call;
	if (c->tick && c->tick(c->ctx) != 0) {
		x->stop = LLM_ABORTED;
		snprintf(x->detail, sizeof(x->detail), "stopped");
	} else if (x->tokens == 0 && now - x->t0_ms >= c->first_token_ms) {
		x->stop = LLM_TIMEOUT;
		snprintf(x->detail, sizeof(x->detail), "no first token within %d ms", c->first_token_ms);
	} else if (x->tokens > 0 && now - x->last_ms >= c->gap_ms) {
		x->stop = LLM_TIMEOUT;
		snprintf(x->detail, sizeof(x->detail), "no token for %d ms", c->gap_ms);
	} else if (now >= x->deadline_ms) {
		x->stop = LLM_TIMEOUT;
		snprintf(x->detail, sizeof(x->detail), "the answer took longer than %d ms", c->total_ms);
	}
	return x->stop != LLM_DONE;
}

/* The progress callback: where a cancel or a deadline stops the transfer. */
static int llm_on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return llm_check(ctx) ? 1 : 0;
}

/* One attempt. Returns the curl code; x and *http hold the rest. */
static CURLcode llm_attempt(struct llm_xfer *x, struct curl_slist *headers, long *http)
{
	const struct llm_call *c = x->call;
	CURLcode rc = CURLE_FAILED_INIT;
	CURLM *m = curl_multi_init();
	x->easy = curl_easy_init();
	sse_init(&x->sse, LLM_EVENT_MAX);
	*http = 0;
	if (!m || !x->easy)
		goto out;
	int64_t left = x->deadline_ms - util_now_ms();
	/* libcurl's own backstop for a silent upstream; the precise first-token and gap deadlines
	 * are llm_check()'s */
	long slow_s = (long)((c->first_token_ms > c->gap_ms ? c->first_token_ms : c->gap_ms) + 999) / 1000;
	curl_easy_setopt(x->easy, CURLOPT_URL, c->url);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, c->body);
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_ms);
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)(left > 1 ? left : 1));
	curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_TIME, slow_s > 0 ? slow_s : 1L);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, llm_on_write);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, llm_on_header);
	curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(x->easy, CURLOPT_XFERINFOFUNCTION, llm_on_progress);
	curl_easy_setopt(x->easy, CURLOPT_XFERINFODATA, x);
	if (curl_multi_add_handle(m, x->easy) != CURLM_OK)
		goto out;
	int running = 1;
	while (running) {
		if (curl_multi_perform(m, &running) != CURLM_OK)
			break;
		if (!running)
			break;
		struct curl_waitfd wf = { .fd = c->watch_fd, .events = CURL_WAIT_POLLIN, .revents = 0 };
		if (curl_multi_poll(m, c->watch_fd >= 0 ? &wf : NULL, c->watch_fd >= 0 ? 1 : 0, LLM_TICK_MS, NULL) != CURLM_OK)
			break;
		if (c->watch_fd >= 0 && (wf.revents & CURL_WAIT_POLLIN) && c->on_fd)
			c->on_fd(c->ctx);
		if (llm_check(x))
			break; /* removing the handle below closes the connection: the upstream sees it */
	}
	CURLMsg *msg;
	int q;
	while ((msg = curl_multi_info_read(m, &q)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == x->easy)
			rc = msg->data.result;
	if (x->stop != LLM_DONE)
		rc = CURLE_ABORTED_BY_CALLBACK;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, http);
	curl_multi_remove_handle(m, x->easy);
out:
	if (x->easy)
		curl_easy_cleanup(x->easy);
	x->easy = NULL;
	if (m)
		curl_multi_cleanup(m);
	sse_free(&x->sse);
	return rc;
}

/* Classify an attempt. *retry: whether a second attempt may follow (nothing was streamed). */
static enum llm_status llm_classify(struct llm_xfer *x, CURLcode rc, long http, bool *retry)
{
	*retry = false;
	if (x->done)
		return LLM_DONE;
	if (rc == CURLE_ABORTED_BY_CALLBACK && x->stop != LLM_DONE)
		return x->stop;
	if (x->delta_stop) {
		snprintf(x->detail, sizeof(x->detail), "stopped");
		return LLM_ABORTED;
	}
	if (x->stream_error)
		return LLM_UNAVAILABLE;
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(x->detail, sizeof(x->detail), "%s", x->tokens ? "the stream stalled" : "no answer in time");
		return LLM_TIMEOUT;
	}
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY) {
		snprintf(x->detail, sizeof(x->detail), "cannot connect to the model: %s", curl_easy_strerror(rc));
		*retry = x->tokens == 0;
		return LLM_UNAVAILABLE;
	}
	if (http == 429 || http >= 500) {
		snprintf(x->detail, sizeof(x->detail), "the model answered HTTP %ld", http);
		*retry = x->tokens == 0;
		return http == 429 ? LLM_BUSY : LLM_UNAVAILABLE;
	}
	if (http != 200 && http != 0) {
		snprintf(x->detail, sizeof(x->detail), "the model answered HTTP %ld", http);
		return LLM_UNAVAILABLE;
	}
	snprintf(x->detail, sizeof(x->detail), "%s",
	         rc == CURLE_OK ? "the model's stream ended without [DONE]" : curl_easy_strerror(rc));
	return LLM_UNAVAILABLE;
}

void llm_chat(const struct llm_call *c, struct llm_result *res)
{
	memset(res, 0, sizeof(*res));
	res->ttft_ms = -1;
	struct llm_xfer x = { .call = c, .retry_after_s = -1 };
	x.t0_ms = util_now_ms();
	x.deadline_ms = x.t0_ms + c->total_ms;
	struct curl_slist *headers = NULL, *h;
	char auth[600];
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = headers ? curl_slist_append(headers, "Accept: text/event-stream") : NULL;
	if (headers && c->api_key[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->api_key);
		h = curl_slist_append(headers, auth);
		explicit_bzero(auth, sizeof(auth));
		headers = h;
	}
	if (!headers) {
		res->status = LLM_UNAVAILABLE;
		snprintf(res->detail, sizeof(res->detail), "out of memory");
		return;
	}
	enum llm_status st = LLM_UNAVAILABLE;
	for (int attempt = 1; attempt <= 2; attempt++) {
		long http = 0;
		x.done = x.stream_error = x.delta_stop = false;
		x.stop = LLM_DONE;
		x.retry_after_s = -1;
		x.last_check_ms = 0;
		CURLcode rc = llm_attempt(&x, headers, &http);
		bool retry;
		st = llm_classify(&x, rc, http, &retry);
		res->attempts = attempt;
		res->http_status = (int)http;
		if (!retry || attempt == 2)
			break;
		/* once more, after the Retry-After (capped) or a short pause, within the deadline;
		 * the caller's tick still runs (a cancel, a keepalive) */
		int64_t wait = x.retry_after_s >= 0 ? (int64_t)x.retry_after_s * 1000 : LLM_RETRY_DELAY_MS;
		if (wait > c->retry_after_max_ms)
			wait = c->retry_after_max_ms;
		int64_t until = util_now_ms() + wait;
		if (until >= x.deadline_ms)
			break;
		bool stopped = false;
		while (!stopped && util_now_ms() < until) {
			int64_t left = until - util_now_ms();
			struct timespec ts = { 0, (long)(left < LLM_TICK_MS ? left : LLM_TICK_MS) * 1000000L };
			nanosleep(&ts, NULL);
			x.last_check_ms = 0;
			stopped = llm_check(&x);
		}
		if (stopped) {
			st = x.stop;
			break;
		}
		/* the first-token deadline counts from the retry */
		x.t0_ms = util_now_ms();
	}
	curl_slist_free_all(headers);
	res->status = st;
	res->tokens = x.tokens;
	res->ttft_ms = x.tokens ? x.first_ms - x.t0_ms : -1;
	res->total_ms = util_now_ms() - x.t0_ms;
	snprintf(res->detail, sizeof(res->detail), "%s", st == LLM_DONE ? "complete" : x.detail);
}
