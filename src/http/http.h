/* SPDX-License-Identifier: PostgreSQL */
/* http.h - the request and response of one FastCGI exchange: parsing params, JSON envelopes, heads. */
#ifndef NP_HTTP_H
#define NP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router.h"

#define HTTP_MAX_PATH 2048
#define HTTP_MAX_QUERY 4096

/* A param getter: FCGX_GetParam over the request's environment, or a test table. */
typedef const char *(*http_getparam_fn)(const char *name, void *ctx);

struct np_request {
	char method[16];
	char path[HTTP_MAX_PATH];     /* percent-decoded, valid UTF-8, no query */
	char query[HTTP_MAX_QUERY];   /* raw query string (not decoded) */
	char request_id[72];
	int64_t content_length;       /* -1 when absent */
	const char *content_type;
	char *body;                   /* NUL-terminated, body_len bytes; NULL when none */
	size_t body_len;
	int64_t queued_us;            /* how long the front server says it queued, -1 unknown */
	const char *authorization;    /* HTTP_AUTHORIZATION (never logged); NULL when absent */
	const char *idempotency_key;  /* HTTP_IDEMPOTENCY_KEY; NULL when absent */
	const char *accept;           /* HTTP_ACCEPT; NULL when absent */
	const char *if_none_match;    /* HTTP_IF_NONE_MATCH; NULL when absent */
	const char *ask_tx;           /* NEONPOOL_ASK_TX: an ask worker's internal request (never from a client) */
	bool admin;                   /* the client is in admin_allow (set by the worker on ROUTE_ADMIN and ROUTE_ADMIN_DETAIL routes) */
	struct np_stream *stream;     /* the answer written as it is produced; NULL when not possible */
	struct np_route_match match;
	void *worker;                 /* the worker's context, for handlers that need the database */
};

/* A response written while it is produced (Server-Sent Events), given by the worker. write and
 * flush return 0, or -1 once the peer is gone (then every later call fails at once). */
struct np_stream {
	int (*write)(void *ctx, const char *buf, size_t n);
	int (*flush)(void *ctx);
	void *ctx;
	/* an ask worker's socket (-1 otherwise): while a long answer waits, gate() is called when it
	 * is readable, and answers a new ask 503 ask_busy when no ask worker is idle */
	int gate_fd;
	void (*gate)(void *ctx);
};

struct np_response {
	int status;
	bool streamed;                /* the handler wrote the whole answer through req->stream */
	char *body;                   /* malloc'd JSON; NULL until set */
	size_t body_len;
	char allow[64];               /* Allow header, when non-empty */
	int retry_after_s;            /* Retry-After header when > 0 */
	const char *content_type;     /* a static string; NULL: application/json */
	char error_code[40];          /* the envelope's error code (http_respond_error*), "" otherwise */
	char etag[48];                /* ETag header (quoted entity-tag) when non-empty */
	const char *cache_control;    /* Cache-Control value (outlives the response); NULL: no-store */
};

/* Fill the request-line parts of req from params. Returns 0, or an HTTP status (400, 414) with
 * code and message filled for the error envelope. */
int http_parse_request(struct np_request *req, http_getparam_fn get, void *ctx, const char **code,
                       const char **message);

/* How long a request queued in the front server, from NEONPOOL_QUEUE_START (nginx's $msec:
 * seconds since the epoch, optionally a '.' and up to 9 fraction digits) and the wall clock now.
 * -1 when the value is malformed (a sign, an exponent, inf, nan, more than 12 integer digits) or
 * not believable: more than HTTP_QUEUE_PAST_MAX_S ago or HTTP_QUEUE_FUTURE_MAX_S ahead (then it is
 * ignored, as when absent). A start slightly ahead of now (clocks) counts as 0. */
#define HTTP_QUEUE_START_DIGITS 12
#define HTTP_QUEUE_PAST_MAX_S 3600
#define HTTP_QUEUE_FUTURE_MAX_S 60
int64_t http_queued_us(const char *s, int64_t now_us);

struct cJSON;
/* Set resp to status with a JSON body taken over from a cJSON object (freed here). */
void http_respond_json(struct np_response *resp, int status, struct cJSON *obj);
/* An integer JSON value printed exactly: cJSON numbers are doubles, in which an id above 2^53
 * would be rounded. NULL when out of memory. */
struct cJSON *http_json_int64(int64_t v);
/* A raw JSON item from JSON text the database wrote (json_agg, json_build_object), with the
 * whitespace between tokens left out (" : " and ", " after every key and element). Strings are
 * copied as they are, escapes included. NULL when text does not start with '[' or '{', or out of
 * memory. The text is trusted to be valid JSON: this is not a parser. Not cJSON_Minify: cJSON 1.7.15
 * (Debian 12) mishandles a string ending in an escaped backslash (test_http pins the case). */
struct cJSON *http_json_raw_compact(const char *text);
/* Add key: v to obj exactly. false when out of memory. */
bool http_json_add_int64(struct cJSON *obj, const char *key, int64_t v);

/* Set resp to the error envelope {"error":{"code":…,"message":…}}. */
void http_respond_error(struct np_response *resp, int status, const char *code, const char *message);
/* The same with "field": the member or header the rejection is about (omitted when empty). */
void http_respond_error_field(struct np_response *resp, int status, const char *code, const char *message,
                              const char *field);
/* Answer status with body (taken over: freed with the response) of len bytes as content_type (a
 * string that outlives the response). body NULL: 500 with the fixed out-of-memory envelope. */
void http_respond_text(struct np_response *resp, int status, char *body, size_t len, const char *content_type);
/* Set resp to status with json (already serialized: a body the database built or stored) as the
 * body; 204 has none. */
void http_respond_raw(struct np_response *resp, int status, const char *json);
void http_response_free(struct np_response *resp);

/* The response head: Status, Content-Type, Content-Length, Cache-Control (no-store unless the
 * response names its own), X-Content-Type-Options (nosniff: a browser never takes a JSON error for
 * script or HTML), X-Request-Id, ETag, Allow, Retry-After. A 204 or 304 has no Content-Type nor
 * Content-Length. Returns its length, or -1 when buf is too small. */
int http_format_head(const struct np_response *resp, const char *request_id, char *buf, size_t n);

/* The head of a Server-Sent Events answer (200, text/event-stream, no buffering in nginx: the
 * X-Accel-Buffering header). Returns its length, or -1 when buf is too small. */
int http_format_sse_head(const char *request_id, char *buf, size_t n);

/* Whether an If-None-Match header value matches the entity-tag tag (quoted, "..."), by the weak
 * comparison RFC 9110 13.1.2 asks for: a list of entity-tags separated by commas, each optionally
 * W/-prefixed, or "*" (any current representation: true). A malformed list matches nothing. */
bool http_etag_match(const char *if_none_match, const char *tag);

/* Whether an Accept header asks for text/event-stream (a media range naming it, q not 0). */
bool http_accepts_sse(const char *accept);

/* The registered reason phrase of status (RFC 9110), or its class's for an unregistered code. */
const char *http_status_text(int status);

#endif
