/* SPDX-License-Identifier: PostgreSQL */
/* api_ask_int.h - private to api_ask*.c: the ask turn's limits, its row and turn, the statements
 * and the functions the route (api_ask.c), the answer's writer (api_ask_answer.c) and the lease
 * sweep (api_ask_sweep.c) share. */
#ifndef NP_API_ASK_INT_H
#define NP_API_ASK_INT_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "pgconn.h"
#include "router.h"

#define ASK_QUESTION_MAX 2000      /* characters (code points) */
#define ASK_BOOK_MAX 9007199254740991LL /* a book id in an ask body: a JSON number, exact up to 2^53 - 1 */
#define ASK_SENTENCES 12           /* candidate sentences np_ask_begin returns in retrieval mode */
#define ASK_ANSWER_SENTENCES 4     /* sentences of an extractive answer */
#define ASK_PER_PASSAGE 2          /* of them from one passage at most */
/* the first words of an extractive answer given when the model failed before its first token */
#define ASK_FALLBACK_LABEL "[Extractive answer: the language model did not answer; these sentences are quoted from the passages.]"
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
/* While this host streams answers, every ASK_CHECK_MS one worker holding a connection asks which of
 * them another host finished (a cancel that landed there: api_ask_cancel() stores it 'stopped'); a
 * found one gets a cancel in its slot, and its maker stops at its next tick (LLM_TICK_MS / 2). One
 * primary-key lookup per streamed answer, four times a second per host, only while answers stream:
 * a cancel from any host ends the stream within ASK_CHECK_MS + a tick + the statement. */
#define ASK_CHECK_MS 250
#define ASK_SWEEP_ROWS 100         /* rows a sweep finishes at most */
#define ASK_SWEEP_ACTIVE_MS 120000 /* sweep while some request used the database this recently */

#define ASK_COLS 10

/* The first row of a statement's answer, copied (the statement ran here or in the main pool). */
struct ask_row {
	bool found;
	char *v[ASK_COLS];         /* NULL: SQL NULL */
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
	int64_t answer_num;        /* answer_id as a number (the cancel mailbox) */
	int64_t last_write_ms;     /* the last bytes sent to the client (keepalive) */
	bool cancelled;            /* the cancel route asked to stop */
	bool abandoned;            /* the client went away and ask_on_disconnect = abort */
	int fail_status;           /* the stream ended with an error event of this status (metrics) */
	char fail_code[40];
};

/* The statements more than one file runs (api_ask.c defines them). */
extern const struct np_stmt stmt_ask_begin, stmt_ask_store;

/* api_ask.c: the row of a statement's answer (freed, a column or ""), and the statement run for the
 * route's session on this worker's connection or, in an ask worker, through the main pool. */
void ask_row_free(struct ask_row *r);
const char *ask_col(const struct ask_row *r, int i);
bool ask_exec(struct np_request *req, struct np_response *resp, const struct np_stmt *st,
              const char *const *params, bool auth, struct ask_row *row);

/* api_ask_answer.c: the SSE head and events (-1 once the client is gone), the answer's head object,
 * a piece of the answer's text, the end (done event or JSON body), and the two ways of making the
 * answer (each stores it and tells the client how it ended). */
int ask_sse_head(struct ask_turn *t, struct np_response *resp);
int ask_event(struct ask_turn *t, const char *name, cJSON *data);
cJSON *ask_head_json(const struct ask_turn *t);
void ask_delta(struct ask_turn *t, const char *s);
void ask_end(struct ask_turn *t, struct np_response *resp, const char *status, const char *answer, const int *used,
             size_t nused);
void ask_retrieval(struct ask_turn *t, struct np_response *resp, const char *sentences_json);
void ask_llm(struct ask_turn *t, struct np_response *resp, const char *bodies, const char *history,
             const char *question);

#endif
