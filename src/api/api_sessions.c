/* SPDX-License-Identifier: PostgreSQL */
/* api_sessions.c - chat sessions: create one (with its bearer token), list and add its messages
 * (Idempotency-Key), rate a message, erase a session.
 *
 * Authentication: the token is 32 bytes from getrandom(2), shown once as base64url; the database
 * keeps only its SHA-256. A route fetches the stored hash and compares it with the hash of the
 * presented token in constant time (digest_equal_ct), in C. A missing, malformed or wrong token
 * is 404 not_found exactly like a session that does not exist.
 *
 * Read-your-writes: every statement here runs on the primary (db_read_primary / db_write), never
 * on the replica, so a reader's list after their own POST shows it whatever the replica's lag.
 * A session's data is small and per reader: the replica would save little, and an LSN check per
 * session would need state we do not keep. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "api.h"
#include "db.h"
#include "digest.h"
#include "http.h"
#include "input.h"
#include "util.h"

/* Field limits (characters), kept equal to the CHECKs of sql/003_sessions.sql. */
#define SESS_CONTENT_MAX 16384
#define SESS_COMMENT_MAX 2000
#define SESS_PAGE_DEFAULT 20
#define SESS_PAGE_MAX 100

/* Statement ids 20..26 are this file's (bits of the per-connection prepared mask). */
static const struct np_stmt stmt_session_create = {
	20, "np_session_create",
	"INSERT INTO sessions (token_hash) VALUES ($1::bytea) RETURNING id, np_api_time(created_at)", 1, 0
};
/* The statements that read token_hash take every column in binary (result_format 1): bytea comes as
 * its bytes whatever bytea_output the role, the database or a pooler sets (its "escape" text form
 * once made every session route 404), and nothing is parsed. Their other columns are text or
 * cast to text, whose binary form is the text itself. */
static const struct np_stmt stmt_session_auth = {
	21, "np_session_auth", "SELECT token_hash FROM sessions WHERE id = $1", 1, 1
};
/* the page and the hash in one round trip: nothing of it is shown before the token matched */
static const struct np_stmt stmt_messages_page = {
	22, "np_messages_page",
	"WITH page AS (SELECT * FROM messages WHERE session_id = $1 AND id < COALESCE($2::bigint, 9223372036854775807) "
	"ORDER BY id DESC LIMIT $3) "
	"SELECT s.token_hash, "
	"COALESCE((SELECT json_agg(np_message_json(p) ORDER BY p.id DESC) FROM page p), '[]'::json)::text, "
	"(SELECT min(id) FROM page)::text, "
	"(EXISTS (SELECT 1 FROM messages x WHERE x.session_id = $1 AND x.id < (SELECT min(id) FROM page)))::text "
	"FROM sessions s WHERE s.id = $1", 3, 1
};
/* np_post_message() also returns a column replayed that nothing reads any more: it is dropped in a
 * later release, once no build that reads it can be running (a rolling upgrade runs both). */
static const struct np_stmt stmt_message_post = {
	23, "np_message_post", "SELECT status, body FROM np_post_message($1, $2, $3::bytea, $4, $5)", 5, 0
};
static const struct np_stmt stmt_message_auth = {
	24, "np_message_auth",
	"SELECT s.token_hash FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.id = $1", 1, 1
};
/* one feedback per message: a second POST replaces it (xmax = 0: the row was inserted) */
static const struct np_stmt stmt_feedback_put = {
	25, "np_feedback_put",
	"INSERT INTO feedback (message_id, rating, comment) "
	"SELECT m.id, $2, $3 FROM messages m WHERE m.id = $1 FOR KEY SHARE "
	"ON CONFLICT (message_id) DO UPDATE SET rating = EXCLUDED.rating, comment = EXCLUDED.comment, updated_at = now() "
	"RETURNING (xmax = 0), json_build_object('id', id, 'message_id', message_id, 'rating', rating, "
	"'comment', comment, 'created_at', np_api_time(created_at), 'updated_at', np_api_time(updated_at))::text", 3, 0
};
static const struct np_stmt stmt_session_delete = {
	26, "np_session_delete", "DELETE FROM sessions WHERE id = $1 RETURNING id", 1, 0
};

static void sess_not_found(struct np_response *resp, const char *what)
{
	char msg[48];
	snprintf(msg, sizeof(msg), "no such %s", what);
	http_respond_error(resp, 404, "not_found", msg);
}

/* Whether the request's bearer token hashes to the stored hash: column col of row 0 of r, read in
 * binary (the hash's 32 bytes). The comparison takes the same time wherever the hashes differ. */
static bool sess_token_matches(const struct np_request *req, const PGresult *r, int col)
{
	uint8_t tok[INPUT_TOKEN_BYTES], got[DIGEST_SHA256_LEN];
	if (PQntuples(r) != 1 || PQfformat(r, col) != 1 || PQgetisnull(r, 0, col) ||
	    PQgetlength(r, 0, col) != DIGEST_SHA256_LEN)
		return false;
	if (input_bearer(req->authorization, tok) < 0)
		return false;
	bool ok = digest_sha256(tok, sizeof(tok), got) == 0 &&
	          digest_equal_ct(got, PQgetvalue(r, 0, col), DIGEST_SHA256_LEN);
	explicit_bzero(tok, sizeof(tok));
	return ok;
}

bool api_session_authorize(struct np_request *req, struct np_response *resp, enum api_owner of, const char *id)
{
	const struct np_stmt *st = of == API_OWNER_MESSAGE ? &stmt_message_auth : &stmt_session_auth;
	const char *what = of == API_OWNER_MESSAGE ? "message" : "session";
	uint8_t tok[INPUT_TOKEN_BYTES];
	if (input_bearer(req->authorization, tok) < 0) {
		sess_not_found(resp, what);
		return false;
	}
	const char *params[1] = { id };
	PGresult *r = db_read_primary(req, resp, st, params);
	if (r == NULL)
		return false;
	bool ok = sess_token_matches(req, r, 0);
	PQclear(r);
	if (!ok)
		sess_not_found(resp, what);
	return ok;
}

/* POST /api/v1/sessions -> 201 {id, token, created_at}. The body is empty or {}. An
 * Idempotency-Key is refused (400): the token is shown once and only its hash is kept, so a
 * replay could not give it back; the page sends this again by itself only when nothing was
 * written (doc/design.md, "Chat sessions"). */
void api_session_create(struct np_request *req, struct np_response *resp)
{
	static const char *const allowed[] = { NULL };
	struct input_err e;
	if (req->idempotency_key) {
		http_respond_error_field(resp, 400, "invalid_idempotency_key",
		                         "a new session takes no Idempotency-Key: its token is shown only once, so a "
		                         "replay could not return it; retry only after an answer saying nothing was "
		                         "written (db_busy, db_unavailable, db_timeout)",
		                         "Idempotency-Key");
		return;
	}
	cJSON *body = api_json_body(req, resp, true);
	if (body == NULL)
		return;
	int rc = input_only_fields(body, allowed, &e);
	cJSON_Delete(body);
	if (rc < 0) {
		api_input_error(resp, &e);
		return;
	}
	uint8_t tok[INPUT_TOKEN_BYTES], h[DIGEST_SHA256_LEN];
	/* blocking flags: a token is never made from anything but the kernel's CSPRNG */
	if (getrandom(tok, sizeof(tok), 0) != (ssize_t)sizeof(tok)) {
		http_respond_error(resp, 500, "internal", "no randomness for a session token");
		return;
	}
	if (digest_sha256(tok, sizeof(tok), h) < 0) {
		explicit_bzero(tok, sizeof(tok));
		http_respond_error(resp, 500, "internal", "could not hash the session token");
		return;
	}
	char hp[2 + 2 * DIGEST_SHA256_LEN + 1];
	api_bytea_param(h, sizeof(h), hp);
	const char *params[1] = { hp };
	PGresult *r = db_write(req, resp, &stmt_session_create, params);
	if (r == NULL)
		return;
	char token[INPUT_TOKEN_CHARS + 1];
	input_token_encode(tok, token);
	int64_t id;
	cJSON *o = cJSON_CreateObject();
	bool ok = o && PQntuples(r) == 1 && util_parse_i64(PQgetvalue(r, 0, 0), 1, INT64_MAX, &id) == 0 &&
	          http_json_add_int64(o, "id", id) && cJSON_AddStringToObject(o, "token", token) &&
	          cJSON_AddStringToObject(o, "created_at", PQgetvalue(r, 0, 1));
	PQclear(r);
	explicit_bzero(tok, sizeof(tok));
	explicit_bzero(token, sizeof(token));
	if (!ok) {
		cJSON_Delete(o);
		http_respond_error(resp, 500, "internal", "could not build the session");
		return;
	}
	http_respond_json(resp, 201, o);
}

/* GET /api/v1/sessions/{id}/messages?before=&limit= -> 200 {messages, next_before}: newest
 * first; next_before is the id to pass as before for the next page, null on the last. */
void api_messages_list(struct np_request *req, struct np_response *resp)
{
	const char *id = api_path_id(req, resp, "id", "session", NULL);
	if (id == NULL)
		return;
	int64_t before, limit; /* before: 0 when absent (a given one is at least 1) */
	if (api_int_param(req, resp, "before", 0, 1, INT64_MAX, &before) < 0 ||
	    api_int_param(req, resp, "limit", SESS_PAGE_DEFAULT, 1, SESS_PAGE_MAX, &limit) < 0)
		return;
	bool has_before = before > 0;
	uint8_t tok[INPUT_TOKEN_BYTES];
	if (input_bearer(req->authorization, tok) < 0) {
		sess_not_found(resp, "session");
		return;
	}
	char b[24], l[24];
	snprintf(b, sizeof(b), "%lld", (long long)before);
	snprintf(l, sizeof(l), "%lld", (long long)limit);
	const char *params[3] = { id, has_before ? b : NULL, l };
	PGresult *r = db_read_primary(req, resp, &stmt_messages_page, params);
	if (r == NULL)
		return;
	if (!sess_token_matches(req, r, 0)) {
		PQclear(r);
		sess_not_found(resp, "session");
		return;
	}
	int64_t next = 0;
	bool more = strcmp(PQgetvalue(r, 0, 3), "true") == 0;
	cJSON *o = cJSON_CreateObject();
	bool ok = o && cJSON_AddRawToObject(o, "messages", PQgetvalue(r, 0, 1)) &&
	          (more ? util_parse_i64(PQgetvalue(r, 0, 2), 1, INT64_MAX, &next) == 0 &&
	                      http_json_add_int64(o, "next_before", next)
	                : cJSON_AddNullToObject(o, "next_before") != NULL);
	PQclear(r);
	if (!ok) {
		cJSON_Delete(o);
		http_respond_error(resp, 500, "internal", "could not build the message page");
		return;
	}
	http_respond_json(resp, 200, o);
}

/* POST /api/v1/sessions/{id}/messages {role, content} -> 201 the message. */
void api_message_post(struct np_request *req, struct np_response *resp)
{
	static const char *const allowed[] = { "role", "content", NULL };
	const char *id = api_path_id(req, resp, "id", "session", NULL);
	if (id == NULL)
		return;
	struct input_err e;
	char key[INPUT_KEY_MAX + 1];
	bool has_key;
	cJSON *body = api_keyed_body(req, resp, key, &has_key);
	if (body == NULL)
		return;
	const char *role, *content;
	if (input_only_fields(body, allowed, &e) < 0 || input_string(body, "role", true, 1, 16, &role, &e) < 0 ||
	    input_string(body, "content", true, 1, SESS_CONTENT_MAX, &content, &e) < 0) {
		cJSON_Delete(body);
		api_input_error(resp, &e);
		return;
	}
	if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0 && strcmp(role, "system") != 0) {
		cJSON_Delete(body);
		http_respond_error_field(resp, 400, "invalid_body", "'role' must be one of user, assistant, system", "role");
		return;
	}
	if (!api_session_authorize(req, resp, API_OWNER_SESSION, id)) {
		cJSON_Delete(body);
		return;
	}
	/* the request's fingerprint for Idempotency-Key: what it asks for, not how the JSON was
	 * spelled (member order and whitespace do not matter) */
	uint8_t fp[DIGEST_SHA256_LEN];
	const struct digest_part parts[3] = { { "POST messages", 14 }, { role, strlen(role) + 1 },
	                                      { content, strlen(content) } };
	if (digest_sha256_parts(parts, 3, fp) < 0) {
		cJSON_Delete(body);
		http_respond_error(resp, 500, "internal", "could not fingerprint the request");
		return;
	}
	char fph[2 + 2 * DIGEST_SHA256_LEN + 1];
	api_bytea_param(fp, sizeof(fp), fph);
	const char *params[5] = { id, has_key ? key : NULL, fph, role, content };
	PGresult *r = db_write(req, resp, &stmt_message_post, params);
	cJSON_Delete(body);
	if (r == NULL)
		return;
	int64_t status = 0;
	if (PQntuples(r) != 1 || util_parse_i64(PQgetvalue(r, 0, 0), 100, 599, &status) < 0) {
		PQclear(r);
		http_respond_error(resp, 500, "internal", "malformed answer from np_post_message");
		return;
	}
	if (status == 404)
		sess_not_found(resp, "session");
	else if (!api_idempotency_conflict(resp, status))
		http_respond_raw(resp, (int)status, PQgetvalue(r, 0, 1)); /* the stored (or new) answer, byte for byte */
	PQclear(r);
}

/* POST /api/v1/messages/{id}/feedback {rating, comment} -> 201 created, 200 replaced. */
void api_feedback_post(struct np_request *req, struct np_response *resp)
{
	static const char *const allowed[] = { "rating", "comment", NULL };
	const char *id = api_path_id(req, resp, "id", "message", NULL);
	if (id == NULL)
		return;
	cJSON *body = api_json_body(req, resp, false);
	if (body == NULL)
		return;
	struct input_err e;
	const char *comment;
	bool has_rating;
	int64_t rating;
	if (input_only_fields(body, allowed, &e) < 0 ||
	    input_int(body, "rating", true, -1, 1, &has_rating, &rating, &e) < 0 ||
	    input_string(body, "comment", false, 0, SESS_COMMENT_MAX, &comment, &e) < 0) {
		cJSON_Delete(body);
		api_input_error(resp, &e);
		return;
	}
	if (rating == 0) {
		cJSON_Delete(body);
		http_respond_error_field(resp, 400, "invalid_body", "'rating' must be -1 or 1", "rating");
		return;
	}
	if (!api_session_authorize(req, resp, API_OWNER_MESSAGE, id)) {
		cJSON_Delete(body);
		return;
	}
	char rt[8];
	snprintf(rt, sizeof(rt), "%d", (int)rating);
	const char *params[3] = { id, rt, comment };
	PGresult *r = db_write(req, resp, &stmt_feedback_put, params);
	cJSON_Delete(body);
	if (r == NULL)
		return;
	if (PQntuples(r) == 0) /* the message went (its session erased) since we authorised */
		sess_not_found(resp, "message");
	else
		http_respond_raw(resp, strcmp(PQgetvalue(r, 0, 0), "t") == 0 ? 201 : 200, PQgetvalue(r, 0, 1));
	PQclear(r);
}

/* DELETE /api/v1/sessions/{id} -> 204: the session, its messages, their feedback, its keys. */
void api_session_delete(struct np_request *req, struct np_response *resp)
{
	const char *id = api_path_id(req, resp, "id", "session", NULL);
	if (id == NULL || !api_session_authorize(req, resp, API_OWNER_SESSION, id))
		return;
	const char *params[1] = { id };
	PGresult *r = db_write(req, resp, &stmt_session_delete, params);
	if (r == NULL)
		return;
	if (PQntuples(r) == 0)
		sess_not_found(resp, "session"); /* erased by a concurrent DELETE */
	else
		http_respond_raw(resp, 204, "");
	PQclear(r);
}
