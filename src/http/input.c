/* SPDX-License-Identifier: PostgreSQL */
/* input.c - what a client sends to a write route, checked strictly before it reaches the
 * database: the media type, the JSON body, the bearer token and the Idempotency-Key header.
 *
 * Policy for members: an unknown member is rejected (400 invalid_body naming the member), so that a typo such as
 * "contnet" is not silently a message without content; a member given twice is rejected (cJSON
 * would keep the first, another parser the last). */
#include <cjson/cJSON.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "input.h"
#include "util.h"

static void input_fail(struct input_err *e, int status, const char *code, const char *field, const char *fmt, ...)
{
	e->status = status;
	e->code = code;
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

bool input_content_type_json(const char *ct)
{
	static const char want[] = "application/json";
	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return false;
	const char *p = ct + sizeof(want) - 1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return true;
	if (*p != ';')
		return false;
	/* parameters: only a charset matters, and it must be UTF-8 */
	while (*p == ';') {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len >= 8 && strncasecmp(p, "charset=", 8) == 0) {
			const char *v = p + 8;
			size_t vl = len - 8;
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
				v++;
				vl -= 2;
			}
			if (!((vl == 5 && strncasecmp(v, "utf-8", 5) == 0) || (vl == 4 && strncasecmp(v, "utf8", 4) == 0)))
				return false;
		}
		p += len;
	}
	return true;
}

/* Whether a JSON text holds a \u0000 escape inside a string (cJSON would cut the string there). */
static bool input_has_nul_escape(const char *s, size_t len)
{
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		if (!in_str) {
			if (s[i] == '"')
				in_str = true;
			continue;
		}
		if (s[i] == '"') {
			in_str = false;
		} else if (s[i] == '\\' && i + 1 < len) {
			if (s[i + 1] == 'u' && i + 5 < len && strncmp(s + i + 2, "0000", 4) == 0)
				return true;
			i++; /* the escaped character */
		}
	}
	return false;
}

/* Whether the number token s[0..len) follows JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
 * (cJSON hands anything strtod takes to strtod: "01" and "1." would pass). */
static bool input_number_ok(const char *s, size_t len)
{
	size_t i = 0;
	if (i < len && s[i] == '-')
		i++;
	if (i < len && s[i] == '0') {
		i++;
	} else if (i < len && s[i] >= '1' && s[i] <= '9') {
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	} else {
		return false;
	}
	if (i < len && s[i] == '.') {
		size_t d = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t d = i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	return i == len;
}

/* Whether every number outside strings in the JSON text s follows JSON's grammar. */
static bool input_numbers_strict(const char *s, size_t len)
{
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		if (in_str) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_str = false;
			continue;
		}
		if (s[i] == '"') {
			in_str = true;
		} else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
			size_t j = i;
			while (j < len && (s[j] == '-' || s[j] == '+' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
			                   (s[j] >= '0' && s[j] <= '9')))
				j++;
			if (!input_number_ok(s + i, j - i))
				return false;
			i = j - 1;
		}
	}
	return true;
}

static bool input_has_duplicate(const cJSON *obj)
{
	for (const cJSON *a = obj->child; a; a = a->next)
		for (const cJSON *b = a->next; b; b = b->next)
			if (strcmp(a->string, b->string) == 0)
				return true;
	return false;
}

cJSON *input_json_object(const char *body, size_t len, struct input_err *e)
{
	if (body == NULL || len == 0) {
		input_fail(e, 400, "invalid_body", NULL, "a JSON object body is required");
		return NULL;
	}
	if (memchr(body, '\0', len) != NULL) {
		input_fail(e, 400, "invalid_body", NULL, "the body holds a NUL byte");
		return NULL;
	}
	if (!util_utf8_valid(body, len)) {
		input_fail(e, 400, "invalid_body", NULL, "the body is not valid UTF-8");
		return NULL;
	}
	if (input_has_nul_escape(body, len)) {
		input_fail(e, 400, "invalid_body", NULL, "a string holds a \\u0000 escape (NUL is not allowed)");
		return NULL;
	}
	const char *end = NULL;
	cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, false);
	if (o == NULL) {
		input_fail(e, 400, "invalid_body", NULL, "the body is not valid JSON (near byte %zu)",
		           end && end >= body ? (size_t)(end - body) : (size_t)0);
		return NULL;
	}
	/* only whitespace may follow the value */
	for (const char *p = end; p && p < body + len; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			cJSON_Delete(o);
			input_fail(e, 400, "invalid_body", NULL, "trailing data after the JSON value");
			return NULL;
		}
	}
	if (!input_numbers_strict(body, len)) {
		cJSON_Delete(o);
		input_fail(e, 400, "invalid_body", NULL, "a number is not in JSON's form (no leading zero, digits after '.')");
		return NULL;
	}
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		input_fail(e, 400, "invalid_body", NULL, "the body must be a JSON object");
		return NULL;
	}
	if (input_has_duplicate(o)) {
		cJSON_Delete(o);
		input_fail(e, 400, "invalid_body", NULL, "a member appears twice");
		return NULL;
	}
	return o;
}

int input_only_fields(const cJSON *obj, const char *const *allowed, struct input_err *e)
{
	for (const cJSON *m = obj->child; m; m = m->next) {
		bool known = false;
		for (const char *const *a = allowed; *a && !known; a++)
			known = strcmp(*a, m->string) == 0;
		if (!known) {
			char q[40];
			util_quote_value(m->string, q, sizeof(q));
			input_fail(e, 400, "invalid_body", m->string, "unknown member %s", q);
			return -1;
		}
	}
	return 0;
}

size_t input_utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* Member name of obj, or NULL when absent or null: then *rc is 0 when it may be, else -1 with e filled. */
static const cJSON *input_member(const cJSON *obj, const char *name, bool required, struct input_err *e, int *rc)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (v != NULL && !cJSON_IsNull(v))
		return v;
	*rc = 0;
	if (required) {
		input_fail(e, 400, "invalid_body", name, "'%s' is required", name);
		*rc = -1;
	}
	return NULL;
}

int input_string(const cJSON *obj, const char *name, bool required, size_t min_chars, size_t max_chars,
                 const char **out, struct input_err *e)
{
	int rc;
	const cJSON *v = input_member(obj, name, required, e, &rc);
	*out = NULL;
	if (v == NULL)
		return rc;
	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		input_fail(e, 400, "invalid_body", name, "'%s' must be a string", name);
		return -1;
	}
	size_t n = input_utf8_chars(v->valuestring);
	if (n < min_chars || n > max_chars || !util_utf8_valid(v->valuestring, strlen(v->valuestring))) {
		input_fail(e, 400, "invalid_body", name, "'%s' must be %zu to %zu characters", name, min_chars, max_chars);
		return -1;
	}
	*out = v->valuestring;
	return 0;
}

int input_int(const cJSON *obj, const char *name, bool required, int64_t min, int64_t max, bool *present,
              int64_t *out, struct input_err *e)
{
	int rc;
	const cJSON *v = input_member(obj, name, required, e, &rc);
	*present = false;
	if (v == NULL)
		return rc;
	double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
	if (!(d >= (double)min && d <= (double)max) || d != floor(d)) {
		input_fail(e, 400, "invalid_body", name, "'%s' must be an integer from %lld to %lld", name, (long long)min,
		           (long long)max);
		return -1;
	}
	*present = true;
	*out = (int64_t)d;
	return 0;
}

/* base64url (RFC 4648 section 5) through libcrypto's base64: EVP_EncodeBlock and EVP_DecodeBlock
 * speak the standard alphabet with padding, so the two characters that differ and the padding
 * are translated here, and the input is checked strictly before libcrypto sees it (the decoder
 * skips surrounding white space and does not look at the unused bits). */
static const char input_b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 32 bytes are 43 characters and one '=' in standard base64 */
#define INPUT_TOKEN_B64 (4 * ((INPUT_TOKEN_BYTES + 2) / 3))

void input_token_encode(const uint8_t tok[INPUT_TOKEN_BYTES], char *out)
{
	unsigned char b64[INPUT_TOKEN_B64 + 1];
	EVP_EncodeBlock(b64, tok, INPUT_TOKEN_BYTES);
	for (size_t i = 0; i < INPUT_TOKEN_CHARS; i++)
		out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
	out[INPUT_TOKEN_CHARS] = '\0';
	explicit_bzero(b64, sizeof(b64));
}

int input_bearer(const char *authorization, uint8_t tok[INPUT_TOKEN_BYTES])
{
	if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
		return -1;
	const char *p = authorization + 7;
	while (*p == ' ')
		p++;
	size_t len = strlen(p);
	while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (len != INPUT_TOKEN_CHARS)
		return -1;
	unsigned char b64[INPUT_TOKEN_B64 + 1], raw[INPUT_TOKEN_B64 / 4 * 3];
	for (size_t i = 0; i < len; i++) {
		const char *at = p[i] ? strchr(input_b64url, p[i]) : NULL;
		if (at == NULL)
			return -1;
		b64[i] = p[i] == '-' ? '+' : p[i] == '_' ? '/' : (unsigned char)p[i];
		/* the unused low bits of the last character must be zero: one encoding per token */
		if (i == len - 1 && ((at - input_b64url) & 3) != 0)
			return -1;
	}
	for (size_t i = len; i < INPUT_TOKEN_B64; i++)
		b64[i] = '=';
	b64[INPUT_TOKEN_B64] = '\0';
	/* the decoder counts the padding as zero bytes: 33 for 43 characters and one '=' */
	int n = EVP_DecodeBlock(raw, b64, INPUT_TOKEN_B64);
	bool ok = n == (int)sizeof(raw);
	if (ok)
		memcpy(tok, raw, INPUT_TOKEN_BYTES);
	explicit_bzero(b64, sizeof(b64));
	explicit_bzero(raw, sizeof(raw));
	return ok ? 0 : -1;
}

int input_idempotency_key(const char *header, char *out, struct input_err *e)
{
	if (header == NULL)
		return 0;
	const char *p = header;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t len = strlen(p);
	while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	bool quoted = len >= 2 && p[0] == '"' && p[len - 1] == '"';
	if (quoted) {
		p++;
		len -= 2;
	}
	if (len == 0 || len > INPUT_KEY_MAX) {
		input_fail(e, 400, "invalid_idempotency_key", "Idempotency-Key", "Idempotency-Key must be 1 to %d characters",
		           INPUT_KEY_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		bool ok = quoted ? (c >= 0x20 && c <= 0x7E && c != '"' && c != '\\') : (c > 0x20 && c <= 0x7E && c != '"');
		if (!ok) {
			input_fail(e, 400, "invalid_idempotency_key", "Idempotency-Key",
			           "Idempotency-Key must be printable ASCII (a quoted key without '\"' or '\\')");
			return -1;
		}
	}
	memcpy(out, p, len);
	out[len] = '\0';
	return 1;
}
