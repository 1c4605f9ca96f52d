/* SPDX-License-Identifier: PostgreSQL */
/* input.h - what a client sends to a write route, checked strictly before it reaches the
 * database: the media type, the JSON body (UTF-8, no NUL, one object, no duplicate or unknown
 * members, typed and bounded fields), the bearer token and the Idempotency-Key header. Pure. */
#ifndef NP_INPUT_H
#define NP_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* A rejection: the HTTP status (4xx), a stable code, a message, and the field it is about ("" when
 * it is about the whole request). The handler answers it as the error envelope. */
struct input_err {
	int status;
	const char *code;
	char field[32];
	char message[160];
};

/* Session tokens: INPUT_TOKEN_BYTES random bytes, sent as unpadded base64url. */
#define INPUT_TOKEN_BYTES 32
#define INPUT_TOKEN_CHARS 43
/* Idempotency-Key: 1..INPUT_KEY_MAX characters once unquoted. */
#define INPUT_KEY_MAX 255

/* Whether a Content-Type names JSON: application/json (any case), optionally with parameters;
 * a charset parameter must be utf-8. NULL or anything else is false. */
bool input_content_type_json(const char *ct);

/* Parse body[0..len) as one JSON object: valid UTF-8, no NUL byte and no \u0000 escape, nothing
 * after it, no member twice. Returns the object (caller cJSON_Delete), or NULL with e filled
 * (400 invalid_body). An empty body is rejected too. */
struct cJSON *input_json_object(const char *body, size_t len, struct input_err *e);

/* Reject a member not in allowed (a NULL-terminated list): 400 invalid_body naming it. */
int input_only_fields(const struct cJSON *obj, const char *const *allowed, struct input_err *e);

/* Member name as a string of min..max characters (code points). Absent: 0 with *out = NULL when
 * !required, else 400 invalid_body; present but not a string or out of bounds: 400
 * invalid_body. null counts as absent. Returns 0 or -1. */
int input_string(const struct cJSON *obj, const char *name, bool required, size_t min_chars, size_t max_chars,
                 const char **out, struct input_err *e);

/* Member name as an integer in [min, max] (a JSON number with no fraction). Same rules. */
int input_int(const struct cJSON *obj, const char *name, bool required, int64_t min, int64_t max, bool *present,
              int64_t *out, struct input_err *e);

/* The number of code points in the valid UTF-8 string s. */
size_t input_utf8_chars(const char *s);

/* Encode tok as unpadded base64url into out (INPUT_TOKEN_CHARS + 1 bytes). */
void input_token_encode(const uint8_t tok[INPUT_TOKEN_BYTES], char *out);

/* The token of an Authorization header "Bearer <token>" (scheme in any case, one or more spaces).
 * Returns 0 with tok filled, or -1 when absent or malformed (the caller answers 404 either way:
 * a session's existence is never revealed). */
int input_bearer(const char *authorization, uint8_t tok[INPUT_TOKEN_BYTES]);

/* The Idempotency-Key header (IETF httpapi draft: a structured-field String, "quoted"; a bare
 * token is accepted too, as Stripe does). Returns 1 with the unquoted key in out (INPUT_KEY_MAX +
 * 1 bytes), 0 when absent, -1 with e filled (400 invalid_idempotency_key) when empty, longer than
 * INPUT_KEY_MAX, or holding anything but printable ASCII (a quoted key: no '"' or '\' inside). */
int input_idempotency_key(const char *header, char *out, struct input_err *e);

#endif
