/* SPDX-License-Identifier: PostgreSQL */
/* fuzz_request.c - FastCGI params to a request (http_parse_request), then routing and the response head. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "router.h"
#include "routes.h"
#include "util.h"

/* The input is the params set, one NAME=VALUE per line (a line without '=' is NAME with an empty value).
 * A param value is a C string (FCGX_GetParam), so a NUL inside a line ends it there. */
#define FUZZ_MAX_PARAMS 64

struct fuzz_params {
	int n;
	const char *name[FUZZ_MAX_PARAMS];
	const char *value[FUZZ_MAX_PARAMS];
};

/* Like FCGX_GetParam: the first param of that name, or NULL. */
static const char *fuzz_getparam(const char *name, void *ctx)
{
	const struct fuzz_params *p = ctx;
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->name[i], name) == 0)
			return p->value[i];
	return NULL;
}

static void fuzz_check(int ok)
{
	if (!ok)
		abort();
}

static bool fuzz_request_id_ok(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '-' ||
		      *s == '_' || *s == '.'))
			return false;
	return true;
}

/* What the worker does with a response: the envelope must be JSON and the head must fit its 512 bytes
 * (worker_send formats a 500 when it does not, and that one must fit). */
static void fuzz_send(struct np_request *req, struct np_response *resp)
{
	char head[512];
	fuzz_check(resp->body != NULL);
	cJSON *j = cJSON_ParseWithLength(resp->body, resp->body_len);
	fuzz_check(j != NULL);
	cJSON_Delete(j);
	int hl = http_format_head(resp, req->request_id, head, sizeof(head));
	if (hl < 0) {
		http_respond_error(resp, 500, "internal", "response head too large");
		hl = http_format_head(resp, req->request_id, head, sizeof(head));
	}
	fuzz_check(hl > 0 && (size_t)hl < sizeof(head) && strlen(head) == (size_t)hl);
	fuzz_check(strstr(head, "\r\n\r\n") == head + hl - 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	struct fuzz_params params = { 0 };
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (char *line = buf, *next; line && params.n < FUZZ_MAX_PARAMS; line = next) {
		char *nl = memchr(line, '\n', (size_t)(buf + size - line));
		next = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		char *eq = strchr(line, '=');
		if (eq)
			*eq = '\0';
		params.name[params.n] = line;
		params.value[params.n] = eq ? eq + 1 : "";
		params.n++;
	}

	struct np_request req;
	struct np_response resp = { 0 };
	const char *code = NULL, *message = NULL;
	int st = http_parse_request(&req, fuzz_getparam, &params, &code, &message);
	fuzz_check(fuzz_request_id_ok(req.request_id));
	if (st != 0) {
		fuzz_check((st == 400 || st == 414) && code && message);
		http_respond_error(&resp, st, code, message);
	} else {
		size_t plen = strnlen(req.path, sizeof(req.path));
		fuzz_check(plen > 0 && plen < sizeof(req.path) && req.path[0] == '/');
		fuzz_check(util_utf8_valid(req.path, plen));
		fuzz_check(strnlen(req.query, sizeof(req.query)) < sizeof(req.query));
		fuzz_check(req.method[0] != '\0' && strnlen(req.method, sizeof(req.method)) < sizeof(req.method));
		fuzz_check(req.content_length >= -1 && req.queued_us >= -1);
		/* a queue time is believable or unknown (http_queued_us), never made up */
		fuzz_check(req.queued_us <= ((int64_t)HTTP_QUEUE_PAST_MAX_S + 1) * 1000000);

		enum router_result r = router_match(fuzz_routes, FUZZ_NROUTES, req.method, req.path, &req.match);
		if (r == ROUTER_NOT_FOUND) {
			http_respond_error(&resp, 404, "not_found", "no such route");
		} else if (r == ROUTER_METHOD_NOT_ALLOWED) {
			fuzz_check(req.match.allow[0] != '\0');
			snprintf(resp.allow, sizeof(resp.allow), "%s", req.match.allow);
			http_respond_error(&resp, 405, "method_not_allowed", "method not allowed for this route");
		} else {
			/* HEAD is answered by the GET route (RFC 9110 9.3.2) */
			fuzz_check(req.match.route != NULL &&
			           (strcmp(req.match.route->method, req.method) == 0 ||
			            (strcmp(req.method, "HEAD") == 0 && strcmp(req.match.route->method, "GET") == 0)));
			req.match.route->handler(&req, &resp);
		}
	}
	fuzz_send(&req, &resp);
	http_response_free(&resp);
	free(buf);
	return 0;
}
