/* SPDX-License-Identifier: PostgreSQL */
/* llm.h - one chat-completions call to an OpenAI-compatible upstream (libcurl), streamed: the
 * deltas as they arrive, under deadlines (connect, first token, gap between tokens, whole answer),
 * retried once before the first token (connect error, 5xx, 429 with its Retry-After capped),
 * abortable within a tick (cancel, a client gone). */
#ifndef NP_LLM_H
#define NP_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How a call ended. */
enum llm_status {
	LLM_DONE = 0,       /* finish_reason or [DONE] */
	LLM_ABORTED,        /* tick() asked to stop */
	LLM_UNAVAILABLE,    /* connect error, HTTP error, 5xx, a broken or malformed stream: 502 llm_unavailable */
	LLM_TIMEOUT,        /* a deadline passed: 504 llm_timeout */
	LLM_BUSY,           /* 429: 503 llm_busy */
};

struct llm_call {
	const char *url;            /* the chat-completions endpoint */
	const char *body;           /* the request's JSON */
	const char *api_key;        /* "" for none; sent as a bearer token, never logged */
	int connect_ms, first_token_ms, gap_ms, total_ms, retry_after_max_ms;
	/* a piece of the answer; return non-zero to stop (then LLM_ABORTED) */
	int (*on_delta)(void *ctx, const char *text, size_t len);
	/* called at least every LLM_TICK_MS while waiting; return non-zero to stop (LLM_ABORTED) */
	int (*tick)(void *ctx);
	/* an extra descriptor to watch while waiting (the ask socket, -1 for none): on_fd is called
	 * when it is readable */
	int watch_fd;
	void (*on_fd)(void *ctx);
	void *ctx;
};

#define LLM_TICK_MS 100

struct llm_result {
	enum llm_status status;
	int http_status;            /* the last answer's status, 0 when none */
	int attempts;               /* 1 or 2 */
	int tokens;                 /* deltas received */
	int64_t ttft_ms;            /* from the start to the first delta, -1 when none */
	int64_t total_ms;
	char detail[160];           /* what happened, for the log and the error message (no secret) */
};

/* Make the call. Always fills res. */
void llm_chat(const struct llm_call *call, struct llm_result *res);

/* The error code and HTTP status of a failed call's status. */
const char *llm_status_code(enum llm_status st, int *http_status);

#endif
