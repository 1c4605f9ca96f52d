/* SPDX-License-Identifier: PostgreSQL */
/* api.h - the route table and the handlers that need no database. */
#ifndef NP_API_H
#define NP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router.h"

/* Handlers of api_books.c. */
void api_books_list(struct np_request *req, struct np_response *resp);
void api_book_get(struct np_request *req, struct np_response *resp);
void api_passage_get(struct np_request *req, struct np_response *resp);

/* Handlers of api_sessions.c (issue 7, h7c): chat sessions, messages, feedback. */
void api_session_create(struct np_request *req, struct np_response *resp);
void api_session_delete(struct np_request *req, struct np_response *resp);
void api_messages_list(struct np_request *req, struct np_response *resp);
void api_message_post(struct np_request *req, struct np_response *resp);
void api_feedback_post(struct np_request *req, struct np_response *resp);

/* The bearer token of a write route checked on the primary against the session that owns path id
 * id: the session itself, or the session of the message id. false with resp set (404 like a
 * missing session or message, or the database's error). Used by api_ask.c too. */
enum api_owner { API_OWNER_SESSION, API_OWNER_MESSAGE };
bool api_session_authorize(struct np_request *req, struct np_response *resp, enum api_owner of, const char *id);

struct np_conf;

/* Handlers of api_ask.c (issue 9): the ask turn and its cancel. */
void api_ask(struct np_request *req, struct np_response *resp);
void api_ask_cancel(struct np_request *req, struct np_response *resp);
/* Between requests (a worker holding a connection): every few seconds one worker of the pool
 * renews the leases of the answers this host makes and finishes 'failed' the answers of any
 * host still streaming past their lease. */
void api_ask_sweep(void);
/* How long a holder may wait between two of api_ask_sweep()'s checks for cancels made on other
 * hosts: ASK_CHECK_MS when answers come from a model (llm_url), else -1 (no bound). */
int api_ask_wait_ms(const struct np_conf *c);

/* Handlers of api_chapters.c and api_search.c (issue 7, h7b). */
void api_chapter_get(struct np_request *req, struct np_response *resp);
void api_search(struct np_request *req, struct np_response *resp);

/* api_admin.c (issue 8): GET /metrics and GET /status, from the shared memory. */
struct np_shm;
void api_admin_init(const struct np_conf *conf, const struct np_shm *shm);
void api_metrics(struct np_request *req, struct np_response *resp);
void api_status(struct np_request *req, struct np_response *resp);

/* api_params.c: parameters shared by the handlers. */
struct cJSON;
struct input_err;
/* The path parameter param as an id (api_path_int up to INT64_MAX; *out, may be NULL, gets its
 * value), or NULL with resp set to 400 invalid_id ("<what> id must be a positive integer"). */
const char *api_path_id(struct np_request *req, struct np_response *resp, const char *param, const char *what,
                        int64_t *out);
/* A path integer: decimal digits without sign or leading zero, from 1 to max; *out (may be NULL)
 * gets it. */
bool api_path_int(const char *s, int64_t max, int64_t *out);
/* Query parameter key as an integer in [min, max], def when absent. -1 with resp set to
 * 400 invalid_parameter naming key (malformed, out of range, or repeated). */
int api_int_param(struct np_request *req, struct np_response *resp, const char *key, int64_t def, int64_t min,
                  int64_t max, int64_t *out);
/* Query parameter key decoded into out (query_param()): 1 found, 0 absent, or -1 with resp set to
 * 400 code naming key (malformed, not UTF-8, too long for cap, repeated). */
int api_str_param(struct np_request *req, struct np_response *resp, const char *key, const char *code, char *out,
                  size_t cap, size_t *len);
/* Add key: the integer in a column's text, exactly (never through a double). false when the text
 * is not an integer or out of memory. */
bool api_add_int(struct cJSON *o, const char *key, const char *text);
/* resp set to the input error e (its status, code, message and field). */
void api_input_error(struct np_response *resp, const struct input_err *e);
/* The JSON object body of a write: Content-Type first (415), then the body (400). NULL with resp
 * set. An absent body is allowed when empty_ok (the object is then {}). */
struct cJSON *api_json_body(struct np_request *req, struct np_response *resp, bool empty_ok);
/* A keyed write's Idempotency-Key (into key, INPUT_KEY_MAX + 1 bytes; *has_key false when absent)
 * and its JSON object body. NULL with resp set: 400 for a malformed key, then as api_json_body. */
struct cJSON *api_keyed_body(struct np_request *req, struct np_response *resp, char *key, bool *has_key);
/* The answers of a keyed write that np_post_message() or np_ask_begin() refused: 409
 * idempotency_in_flight (Retry-After: 1) or 422 idempotency_mismatch. true with resp set when
 * status is one of them, false otherwise. */
bool api_idempotency_conflict(struct np_response *resp, int64_t status);
/* d[0..n) as a bytea parameter in text form: "\x" and hex into out (2 + 2n + 1 bytes). */
void api_bytea_param(const uint8_t *d, size_t n, char *out);

/* The application's routes. */
const struct np_route *api_routes(size_t *n);

#endif
