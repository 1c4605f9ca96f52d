/* SPDX-License-Identifier: PostgreSQL */
/* api_admin.c - the admin routes: GET /metrics (Prometheus) and GET /status (JSON, or text), both
 * read from the shared memory, served on every socket a worker answers (the main one and the
 * control one) to the peers admin_allow admits (the worker checks, before the handler runs). */
#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "expo.h"
#include "http.h"
#include "query.h"
#include "status.h"

static struct {
	const struct np_conf *conf;
	const struct np_shm *shm;
} api_admin;

void api_admin_init(const struct np_conf *conf, const struct np_shm *shm)
{
	api_admin.conf = conf;
	api_admin.shm = shm;
	expo_set_libpq(PQlibVersion());
}

void api_metrics(struct np_request *req, struct np_response *resp)
{
	(void)req;
	size_t len = 0;
	char *text = api_admin.shm ? expo_metrics(api_admin.shm, &len) : NULL;
	http_respond_text(resp, 200, text, len, EXPO_CONTENT_TYPE);
}

/* ?format=json|text, ?full (each worker); anything else is a 400. */
void api_status(struct np_request *req, struct np_response *resp)
{
	char fmt[8], full[8];
	size_t len;
	enum query_status st = query_param(req->query, "format", fmt, sizeof(fmt), &len);
	if (st < 0 || (st == QUERY_FOUND && strcmp(fmt, "json") != 0 && strcmp(fmt, "text") != 0)) {
		http_respond_error_field(resp, 400, "invalid_parameter", "format must be json or text", "format");
		return;
	}
	bool text = st == QUERY_FOUND && strcmp(fmt, "text") == 0;
	enum query_status sf = query_param(req->query, "full", full, sizeof(full), &len);
	if (sf < 0 || (sf == QUERY_FOUND && full[0] && strcmp(full, "1") != 0 && strcmp(full, "true") != 0)) {
		http_respond_error_field(resp, 400, "invalid_parameter", "full takes no value, 1 or true", "full");
		return;
	}
	cJSON *j = api_admin.shm ? status_build(api_admin.shm, api_admin.conf, sf == QUERY_FOUND) : NULL;
	if (j == NULL) {
		http_respond_error(resp, 500, "internal", "out of memory");
		return;
	}
	if (!text) {
		http_respond_json(resp, 200, j);
		return;
	}
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (f)
		status_text(j, f);
	cJSON_Delete(j);
	if (f == NULL || fclose(f) != 0) {
		free(buf);
		buf = NULL;
	}
	http_respond_text(resp, 200, buf, n, "text/plain; charset=utf-8");
}
