/* SPDX-License-Identifier: PostgreSQL */
/* http.c - the request and response of one FastCGI exchange: parsing params, JSON envelopes, heads. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "util.h"

static bool http_request_id_valid(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 64)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
		      c == '_' || c == '.'))
			return false;
	}
	return true;
}

int http_parse_request(struct np_request *req, http_getparam_fn get, void *ctx, const char **code,
                       const char **message)
{
	memset(req, 0, sizeof(*req));
	req->content_length = -1;
	req->queued_us = -1;

	const char *rid = get("REQUEST_ID", ctx);
	if (rid && http_request_id_valid(rid))
		snprintf(req->request_id, sizeof(req->request_id), "%s", rid);
	else
		util_random_hex(req->request_id, 16);

	const char *method = get("REQUEST_METHOD", ctx);
	if (method == NULL || method[0] == '\0' || strlen(method) >= sizeof(req->method)) {
		*code = "bad_request";
		*message = "missing or invalid request method";
		return 400;
	}
	snprintf(req->method, sizeof(req->method), "%s", method);

	/* Route on REQUEST_URI: nginx and lighttpd disagree on SCRIPT_NAME/PATH_INFO. */
	const char *uri = get("REQUEST_URI", ctx);
	char fallback[HTTP_MAX_PATH];
	if (uri == NULL || uri[0] == '\0') {
		const char *sn = get("SCRIPT_NAME", ctx), *pi = get("PATH_INFO", ctx);
		snprintf(fallback, sizeof(fallback), "%s%s", sn ? sn : "", pi ? pi : "");
		uri = fallback;
	}
	const char *q = strchr(uri, '?');
	size_t plen = q ? (size_t)(q - uri) : strlen(uri);
	if (plen >= HTTP_MAX_PATH) {
		*code = "uri_too_long";
		*message = "request path too long";
		return 414;
	}
	if (q) {
		if (strlen(q + 1) >= sizeof(req->query)) {
			*code = "uri_too_long";
			*message = "query string too long";
			return 414;
		}
		snprintf(req->query, sizeof(req->query), "%s", q + 1);
	}
	if (plen == 0 || uri[0] != '/') {
		*code = "bad_request";
		*message = "request path must start with /";
		return 400;
	}
	int dl = util_percent_decode(uri, plen, req->path, sizeof(req->path));
	if (dl < 0) {
		*code = "bad_request";
		*message = "malformed percent-encoding in path";
		return 400;
	}
	if (!util_utf8_valid(req->path, (size_t)dl)) {
		*code = "bad_request";
		*message = "path is not valid UTF-8";
		return 400;
	}

	const char *cl = get("CONTENT_LENGTH", ctx);
	if (cl && cl[0]) {
		int64_t v;
		if (util_parse_i64(cl, 0, INT64_MAX, &v) < 0) {
			*code = "bad_request";
			*message = "invalid Content-Length";
			return 400;
		}
		req->content_length = v;
	}
	req->content_type = get("CONTENT_TYPE", ctx);
	req->authorization = get("HTTP_AUTHORIZATION", ctx);
	req->idempotency_key = get("HTTP_IDEMPOTENCY_KEY", ctx);
	req->accept = get("HTTP_ACCEPT", ctx);
	req->if_none_match = get("HTTP_IF_NONE_MATCH", ctx);
	req->ask_tx = get("NEONPOOL_ASK_TX", ctx);
	req->stream = NULL;

	/* nginx: fastcgi_param NEONPOOL_QUEUE_START $msec ("1700000000.123") */
	const char *qs = get("NEONPOOL_QUEUE_START", ctx);
	if (qs && qs[0])
		req->queued_us = http_queued_us(qs, util_wall_us());
	return 0;
}

int64_t http_queued_us(const char *s, int64_t now_us)
{
	/* digits only: no sign, exponent, hex, inf or nan, and no float (strtod also follows the
	 * locale's decimal point, and a huge value converted to an integer is undefined) */
	int64_t sec = 0, frac = 0;
	int nd = 0, nf = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (++nd > HTTP_QUEUE_START_DIGITS)
			return -1;
		sec = sec * 10 + (*p - '0');
	}
	if (nd == 0)
		return -1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (++nf > 9)
				return -1;
			if (nf <= 6)
				frac = frac * 10 + (*p - '0');
		}
		for (int k = nf; k < 6; k++)
			frac *= 10;
	}
	if (*p != '\0')
		return -1;
	int64_t start = sec * 1000000 + frac; /* < 10^18: no overflow */
	if (start < now_us - (int64_t)HTTP_QUEUE_PAST_MAX_S * 1000000 ||
	    start > now_us + (int64_t)HTTP_QUEUE_FUTURE_MAX_S * 1000000)
		return -1;
	return start > now_us ? 0 : now_us - start;
}

cJSON *http_json_int64(int64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return cJSON_CreateRaw(buf);
}

struct cJSON *http_json_raw_compact(const char *text)
{
	if (text[0] != '[' && text[0] != '{')
		return NULL;
	char *buf = malloc(strlen(text) + 1);
	if (buf == NULL)
		return NULL;
	char *d = buf;
	bool in_str = false;
	for (const char *p = text; *p; p++) {
		char c = *p;
		if (in_str) {
			*d++ = c;
			if (c == '\\' && p[1])
				*d++ = *++p;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			*d++ = c;
			in_str = true;
		} else if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
			*d++ = c;
		}
	}
	*d = '\0';
	cJSON *item = cJSON_CreateRaw(buf);
	free(buf);
	return item;
}

bool http_json_add_int64(cJSON *obj, const char *key, int64_t v)
{
	cJSON *n = http_json_int64(v);
	if (n == NULL)
		return false;
	if (!cJSON_AddItemToObject(obj, key, n)) {
		cJSON_Delete(n);
		return false;
	}
	return true;
}

void http_respond_json(struct np_response *resp, int status, cJSON *obj)
{
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	resp->status = status;
	resp->error_code[0] = '\0';
	char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
	cJSON_Delete(obj);
	if (s == NULL) {
		/* out of memory: a fixed, valid envelope */
		static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
		resp->status = 500;
		resp->body = strdup(oom);
		resp->body_len = resp->body ? strlen(oom) : 0;
		return;
	}
	resp->body = s;
	resp->body_len = strlen(s);
}

void http_respond_error_field(struct np_response *resp, int status, const char *code, const char *message,
                              const char *field)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *err = root ? cJSON_AddObjectToObject(root, "error") : NULL;
	if (err == NULL || !cJSON_AddStringToObject(err, "code", code) ||
	    !cJSON_AddStringToObject(err, "message", message) ||
	    (field && field[0] && !cJSON_AddStringToObject(err, "field", field))) {
		cJSON_Delete(root);
		root = NULL; /* http_respond_json answers the fixed out-of-memory envelope */
	}
	http_respond_json(resp, status, root);
	snprintf(resp->error_code, sizeof(resp->error_code), "%s", root ? code : "internal");
}

void http_respond_error(struct np_response *resp, int status, const char *code, const char *message)
{
	http_respond_error_field(resp, status, code, message, NULL);
}

void http_respond_raw(struct np_response *resp, int status, const char *json)
{
	free(resp->body);
	resp->status = status;
	resp->body = strdup(status == 204 ? "" : json);
	resp->body_len = resp->body ? strlen(resp->body) : 0;
	if (resp->body == NULL)
		http_respond_json(resp, 500, NULL); /* the fixed out-of-memory envelope */
}

void http_respond_text(struct np_response *resp, int status, char *body, size_t len, const char *content_type)
{
	if (body == NULL) {
		http_respond_json(resp, 500, NULL); /* the fixed out-of-memory envelope */
		return;
	}
	free(resp->body);
	resp->status = status;
	resp->body = body;
	resp->body_len = len;
	resp->content_type = content_type;
}

void http_response_free(struct np_response *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}

/* The reason phrases of the IANA HTTP Status Code Registry (RFC 9110, and RFC 6585 for 428, 429,
 * 431): whatever status a handler, a stored idempotent answer or the model's upstream gives, the
 * Status line carries its registered phrase; an unregistered code gets its class's. */
const char *http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 305: return "Use Proxy";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: break;
	}
	switch (status / 100) {
	case 1: return "Informational";
	case 2: return "Success";
	case 3: return "Redirection";
	case 4: return "Client Error";
	default: return "Server Error";
	}
}

int http_format_head(const struct np_response *resp, const char *request_id, char *buf, size_t n)
{
	const char *cc = resp->cache_control ? resp->cache_control : "no-store";
	int len = resp->status == 204 || resp->status == 304
	                  ? snprintf(buf, n, "Status: %d %s\r\nCache-Control: %s\r\n"
	                             "X-Content-Type-Options: nosniff\r\nX-Request-Id: %s\r\n",
	                             resp->status, http_status_text(resp->status), cc, request_id)
	                  : snprintf(buf, n,
	                             "Status: %d %s\r\n"
	                             "Content-Type: %s\r\n"
	                             "Content-Length: %zu\r\n"
	                             "Cache-Control: %s\r\n"
	                             "X-Content-Type-Options: nosniff\r\n"
	                             "X-Request-Id: %s\r\n",
	                             resp->status, http_status_text(resp->status),
	                             resp->content_type ? resp->content_type : "application/json", resp->body_len,
	                             cc, request_id);
	if (len < 0 || (size_t)len >= n)
		return -1;
	if (resp->etag[0]) {
		int k = snprintf(buf + len, n - (size_t)len, "ETag: %s\r\n", resp->etag);
		if (k < 0 || (size_t)k >= n - (size_t)len)
			return -1;
		len += k;
	}
	if (resp->allow[0]) {
		int k = snprintf(buf + len, n - (size_t)len, "Allow: %s\r\n", resp->allow);
		if (k < 0 || (size_t)k >= n - (size_t)len)
			return -1;
		len += k;
	}
	if (resp->retry_after_s > 0) {
		int k = snprintf(buf + len, n - (size_t)len, "Retry-After: %d\r\n", resp->retry_after_s);
		if (k < 0 || (size_t)k >= n - (size_t)len)
			return -1;
		len += k;
	}
	if ((size_t)len + 3 > n)
		return -1;
	memcpy(buf + len, "\r\n", 3);
	return len + 2;
}

bool http_etag_match(const char *inm, const char *tag)
{
	if (inm == NULL || tag == NULL || tag[0] != '"')
		return false;
	size_t tlen = strlen(tag);
	const char *p = inm;
	/* "*" stands alone (RFC 9110 13.1.2): any current representation */
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '*') {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		return *p == '\0';
	}
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			return false;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p != '"')
			return false;
		/* an opaque-tag: "..." of etagc characters (0x21, 0x23-0x7E, obs-text) */
		const char *q = p + 1;
		while (*q && *q != '"') {
			unsigned char c = (unsigned char)*q;
			if (c < 0x21 || c == 0x7f)
				return false;
			q++;
		}
		if (*q != '"')
			return false;
		size_t len = (size_t)(q - p) + 1;
		bool same = len == tlen && memcmp(p, tag, tlen) == 0;
		const char *e = q + 1;
		while (*e == ' ' || *e == '\t')
			e++;
		if (*e != ',' && *e != '\0')
			return false;
		if (same)
			return true;
		p = e;
	}
}

int http_format_sse_head(const char *request_id, char *buf, size_t n)
{
	int len = snprintf(buf, n,
	                   "Status: 200 OK\r\n"
	                   "Content-Type: text/event-stream; charset=utf-8\r\n"
	                   "Cache-Control: no-store\r\n"
	                   "X-Accel-Buffering: no\r\n"
	                   "X-Content-Type-Options: nosniff\r\n"
	                   "X-Request-Id: %s\r\n\r\n",
	                   request_id);
	return len < 0 || (size_t)len >= n ? -1 : len;
}

bool http_accepts_sse(const char *accept)
{
	static const char want[] = "text/event-stream";
	for (const char *p = accept; p && *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len >= sizeof(want) - 1 && strncasecmp(p, want, sizeof(want) - 1) == 0) {
			const char *rest = p + sizeof(want) - 1;
			size_t rl = len - (sizeof(want) - 1);
			/* the range ends there or has parameters; q=0 means "not acceptable" */
			bool zero = false;
			for (size_t i = 0; i + 1 < rl; i++)
				if ((rest[i] == 'q' || rest[i] == 'Q') && rest[i + 1] == '=') {
					const char *v = rest + i + 2;
					zero = v[0] == '0' && (v + 1 >= rest + rl || v[1] != '.' ||
					                       strspn(v + 2, "0") >= (size_t)(rest + rl - v - 2));
				}
			if ((rl == 0 || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t') && !zero)
				return true;
		}
		p = end ? end + 1 : p + len;
	}
	return false;
}
