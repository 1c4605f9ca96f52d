/* SPDX-License-Identifier: PostgreSQL */
/* api.c - the route table and the handlers that need no database. */
#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <stdio.h>

#include "api.h"
#include "db.h"
#include "http.h"
#include "status.h"
#include "version.h"

static void api_healthz(struct np_request *req, struct np_response *resp)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "status", "ok");
	http_respond_json(resp, 200, o);
}

static void api_version(struct np_request *req, struct np_response *resp)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", NP_NAME);
	cJSON_AddStringToObject(o, "version", NP_VERSION);
	cJSON_AddNumberToObject(o, "libpq", PQlibVersion());
	cJSON_AddStringToObject(o, "api", "v1");
	http_respond_json(resp, 200, o);
}

/* Readiness from the shared health state the supervisor keeps: no round trip per call. A pool
 * backing off its respawns (some of its children died young in a row) is named in the body, but
 * readiness stays: this answer comes from a live main worker, and the live ones serve. The
 * failure's reason ("TLS certificate verification failed") goes only to admin_allow peers; others
 * get the status and the stable code (doc/design.md, "Health as load balancers read it"). */
static void api_readyz(struct np_request *req, struct np_response *resp)
{
	const char *reason;
	int health = db_health(0, &reason);
	const char *names[] = { "starting", "up", "degraded", "down" };
	bool ready = health == 1 || health == 2;
	if (!req->admin)
		reason = "";
	if (!ready) {
		char msg[160];
		snprintf(msg, sizeof(msg), "database %s%s%s", names[health & 3], reason[0] ? ": " : "", reason);
		http_respond_error(resp, 503, health == 3 ? "db_unavailable" : "not_ready", msg);
		resp->retry_after_s = db_retry_after_s();
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "status", names[health]);
	if (reason[0])
		cJSON_AddStringToObject(o, "reason", reason);
	cJSON *backoff = req->admin && db_shm() ? status_backoff(db_shm()) : NULL;
	if (backoff)
		cJSON_AddItemToObject(o, "respawn_backoff", backoff);
	http_respond_json(resp, 200, o);
}

static const struct np_route api_table[] = {
	{ "GET", "/healthz", api_healthz, 0, "healthz" },
	{ "GET", "/readyz", api_readyz, ROUTE_ADMIN_DETAIL, "readyz" },
	{ "GET", "/metrics", api_metrics, ROUTE_ADMIN, "metrics" },
	{ "GET", "/status", api_status, ROUTE_ADMIN, "status" },
	{ "GET", "/api/v1/version", api_version, 0, "version" },
	{ "GET", "/api/v1/books", api_books_list, ROUTE_NEEDS_DB | ROUTE_READ_ONLY | ROUTE_CONTENT, "books.list" },
	{ "GET", "/api/v1/books/{id}", api_book_get, ROUTE_NEEDS_DB | ROUTE_READ_ONLY | ROUTE_CONTENT, "books.get" },
	{ "GET", "/api/v1/passages/{id}", api_passage_get, ROUTE_NEEDS_DB | ROUTE_READ_ONLY | ROUTE_CONTENT, "passages.get" },
	/* issue 7 (h7c): chat sessions; never ROUTE_READ_ONLY (read-your-writes: the primary) */
	{ "POST", "/api/v1/sessions", api_session_create, ROUTE_NEEDS_DB, "sessions.create" },
	{ "DELETE", "/api/v1/sessions/{id}", api_session_delete, ROUTE_NEEDS_DB, "sessions.delete" },
	{ "GET", "/api/v1/sessions/{id}/messages", api_messages_list, ROUTE_NEEDS_DB, "messages.list" },
	{ "POST", "/api/v1/sessions/{id}/messages", api_message_post, ROUTE_NEEDS_DB, "messages.create" },
	{ "POST", "/api/v1/messages/{id}/feedback", api_feedback_post, ROUTE_NEEDS_DB, "feedback.create" },
	/* issue 7, h7b: the chatbot's reads */
	{ "GET", "/api/v1/books/{id}/chapters/{n}", api_chapter_get, ROUTE_NEEDS_DB | ROUTE_READ_ONLY | ROUTE_CONTENT, "chapters.get" },
	{ "GET", "/api/v1/search", api_search, ROUTE_NEEDS_DB | ROUTE_READ_ONLY | ROUTE_CONTENT, "search" },
	/* issue 9: the ask turn (its own worker pool with ask_listen) */
	{ "POST", "/api/v1/sessions/{id}/ask", api_ask, ROUTE_NEEDS_DB, "ask" },
	{ "POST", "/api/v1/sessions/{id}/ask/{message_id}/cancel", api_ask_cancel, ROUTE_NEEDS_DB, "ask.cancel" },
};

const struct np_route *api_routes(size_t *n)
{
	*n = sizeof(api_table) / sizeof(api_table[0]);
	return api_table;
}
