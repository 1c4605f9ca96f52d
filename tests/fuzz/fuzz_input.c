/* SPDX-License-Identifier: PostgreSQL */
/* fuzz_input.c - libFuzzer target: the write-route input checks (input.c) on any bytes: the JSON
 * body, the Content-Type, the bearer token and the Idempotency-Key. Checks their promises: an
 * accepted body is one object whose strings are valid UTF-8 without NUL, and a decoded token
 * encodes back to the same text. Build: clang -fsanitize=fuzzer,address -D_GNU_SOURCE
 * -Isrc/core -Isrc/http tests/fuzz/fuzz_input.c src/http/input.c src/core/util.c -lcjson */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_strings(const cJSON *v)
{
	for (; v; v = v->next) {
		if (v->string && !util_utf8_valid(v->string, strlen(v->string)))
			abort();
		if (cJSON_IsString(v) && !util_utf8_valid(v->valuestring, strlen(v->valuestring)))
			abort();
		fuzz_check_strings(v->child);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	struct input_err e;
	cJSON *o = input_json_object(buf, size, &e);
	if (o) {
		if (!cJSON_IsObject(o) || memchr(buf, '\0', size))
			abort();
		fuzz_check_strings(o->child);
		static const char *const allowed[] = { "role", "content", NULL };
		const char *s;
		if (input_only_fields(o, allowed, &e) == 0 && input_string(o, "content", true, 1, 100, &s, &e) == 0 &&
		    (strlen(s) == 0 || input_utf8_chars(s) > 100))
			abort();
		cJSON_Delete(o);
	} else if (e.status != 400 || !e.code) {
		abort();
	}
	(void)input_content_type_json(buf);
	uint8_t tok[INPUT_TOKEN_BYTES];
	if (input_bearer(buf, tok) == 0) {
		char enc[INPUT_TOKEN_CHARS + 1];
		input_token_encode(tok, enc);
		if (!strstr(buf, enc))
			abort();
	}
	char key[INPUT_KEY_MAX + 1];
	int k = input_idempotency_key(buf, key, &e);
	if (k == 1 && (strlen(key) == 0 || strlen(key) > INPUT_KEY_MAX))
		abort();
	free(buf);
	return 0;
}
