/* SPDX-License-Identifier: PostgreSQL */
/* query.h - one parameter of a raw query string (application/x-www-form-urlencoded), decoded and checked. */
#ifndef NP_QUERY_H
#define NP_QUERY_H

#include <stddef.h>

enum query_status {
	QUERY_FOUND = 1,
	QUERY_ABSENT = 0,
	QUERY_MALFORMED = -1, /* a bad %XX escape, or an encoded NUL */
	QUERY_TOO_LONG = -2,  /* the decoded value does not fit the caller's buffer */
	QUERY_NOT_UTF8 = -3,  /* the decoded value is not valid UTF-8 */
	QUERY_REPEATED = -4,  /* the key appears more than once */
};

/* Find key in query (raw, without '?': pairs split by '&', key and value by the first '='; the
 * key is compared as given, undecoded). The value is decoded into out (capacity cap, always
 * NUL-terminated when cap > 0): '+' is a space, %XX a byte; the result must be valid UTF-8 with
 * no NUL. A key without '=' has the empty value. *len (may be NULL) gets the decoded length.
 * Returns QUERY_FOUND, QUERY_ABSENT, or a negative status; out is then empty. */
enum query_status query_param(const char *query, const char *key, char *out, size_t cap, size_t *len);

/* A short lowercase phrase for a negative status ("malformed percent-encoding", ...). */
const char *query_status_text(enum query_status st);

#endif
