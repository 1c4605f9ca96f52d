/* SPDX-License-Identifier: PostgreSQL */
/* api_params.c - the handlers' parameters: path ids, query integers and strings, JSON bodies, exact JSON
 * ids, bytea parameters; every rejection a 400 naming the field, and the Idempotency-Key conflicts. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "http.h"
#include "input.h"
#include "query.h"
#include "util.h"

bool api_path_int(const char *s, int64_t max, int64_t *out)
{
	int64_t v;
	if (s == NULL || s[0] == '+' || s[0] == '0' || util_parse_i64(s, 1, max, &v) < 0)
		return false;
	if (out)
		*out = v;
	return true;
}

const char *api_path_id(struct np_request *req, struct np_response *resp, const char *param, const char *what,
                        int64_t *out)
{
	const char *s = router_param(&req->match, param);
	if (api_path_int(s, INT64_MAX, out))
		return s;
	char msg[64];
	snprintf(msg, sizeof(msg), "%s id must be a positive integer", what);
	http_respond_error(resp, 400, "invalid_id", msg);
	return NULL;
}

int api_int_param(struct np_request *req, struct np_response *resp, const char *key, int64_t def, int64_t min,
                  int64_t max, int64_t *out)
{
	char buf[32];
	enum query_status st = query_param(req->query, key, buf, sizeof(buf), NULL);
	if (st == QUERY_ABSENT) {
		*out = def;
		return 0;
	}
	if (st == QUERY_FOUND && util_parse_i64(buf, min, max, out) == 0)
		return 0;
	char msg[160];
	if (st == QUERY_REPEATED)
		snprintf(msg, sizeof(msg), "query parameter '%s' is given more than once", key);
	else
		snprintf(msg, sizeof(msg), "query parameter '%s' must be an integer from %lld to %lld", key,
		         (long long)min, (long long)max);
	http_respond_error_field(resp, 400, "invalid_parameter", msg, key);
	return -1;
}

int api_str_param(struct np_request *req, struct np_response *resp, const char *key, const char *code, char *out,
                  size_t cap, size_t *len)
{
	enum query_status st = query_param(req->query, key, out, cap, len);
	if (st >= 0)
		return st;
	char msg[160];
	snprintf(msg, sizeof(msg), "query parameter '%s' is %s", key, query_status_text(st));
	http_respond_error(resp, 400, code, msg);
	return -1;
}

bool api_add_int(cJSON *o, const char *key, const char *text)
{
	int64_t v;
	return util_parse_i64(text, INT64_MIN, INT64_MAX, &v) == 0 && http_json_add_int64(o, key, v);
}

void api_bytea_param(const uint8_t *d, size_t n, char *out)
{
	out[0] = '\\';
	out[1] = 'x';
	util_hex_encode(d, n, out + 2);
}

void api_input_error(struct np_response *resp, const struct input_err *e)
{
	http_respond_error_field(resp, e->status, e->code, e->message, e->field);
}

cJSON *api_json_body(struct np_request *req, struct np_response *resp, bool empty_ok)
{
	struct input_err e;
	if (empty_ok && req->body_len == 0)
		return cJSON_CreateObject();
	if (!input_content_type_json(req->content_type)) {
		http_respond_error(resp, 415, "unsupported_media_type", "the body must be sent as Content-Type: application/json");
		return NULL;
	}
	cJSON *o = input_json_object(req->body, req->body_len, &e);
	if (o == NULL)
		api_input_error(resp, &e);
	return o;
}

cJSON *api_keyed_body(struct np_request *req, struct np_response *resp, char *key, bool *has_key)
{
	struct input_err e;
	int k = input_idempotency_key(req->idempotency_key, key, &e);
	if (k < 0) {
		api_input_error(resp, &e);
		return NULL;
	}
	*has_key = k == 1;
	return api_json_body(req, resp, false);
}

bool api_idempotency_conflict(struct np_response *resp, int64_t status)
{
	if (status == 409) {
		http_respond_error_field(resp, 409, "idempotency_in_flight",
		                         "a request with this Idempotency-Key is still in progress; retry later",
		                         "Idempotency-Key");
		resp->retry_after_s = 1;
		return true;
	}
	if (status == 422) {
		http_respond_error_field(resp, 422, "idempotency_mismatch",
		                         "this Idempotency-Key was used with a different request", "Idempotency-Key");
		return true;
	}
	return false;
}
