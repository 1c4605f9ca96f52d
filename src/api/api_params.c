/* api_params.c - the handlers' parameters: path ids, query integers and strings, exact JSON ids; every rejection a 400 naming the field. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "http.h"
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
