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

/* Shared by api_ask.c: the session id of the path (400 invalid_id), the session's bearer token
 * checked on the primary (404 like a missing session), the JSON object body (415/400). */
struct cJSON;
bool api_session_path_id(struct np_request *req, struct np_response *resp, const char *what);
bool api_session_authorize(struct np_request *req, struct np_response *resp, const char *id);
struct cJSON *api_session_body(struct np_request *req, struct np_response *resp);

/* Handlers of api_ask.c (issue 9): the ask turn and its cancel. */
void api_ask(struct np_request *req, struct np_response *resp);
void api_ask_cancel(struct np_request *req, struct np_response *resp);
/* Between requests (a worker holding a connection): every few seconds one worker of the pool
 * renews the leases of the answers this host makes and finishes 'failed' the answers of any
 * host still streaming past their lease. */
void api_ask_sweep(void);

/* Handlers of api_chapters.c and api_search.c (issue 7, h7b). */
void api_chapter_get(struct np_request *req, struct np_response *resp);
void api_search(struct np_request *req, struct np_response *resp);

/* api_admin.c (issue 8): GET /metrics and GET /status, from the shared memory. */
struct np_conf;
struct np_shm;
void api_admin_init(const struct np_conf *conf, const struct np_shm *shm);
void api_metrics(struct np_request *req, struct np_response *resp);
void api_status(struct np_request *req, struct np_response *resp);

/* api_params.c: parameters shared by the handlers. */
struct cJSON;
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
/* d[0..n) as a bytea parameter in text form: "\x" and hex into out (2 + 2n + 1 bytes). */
void api_bytea_param(const uint8_t *d, size_t n, char *out);

/* The application's routes. */
const struct np_route *api_routes(size_t *n);

#endif
