/* SPDX-License-Identifier: PostgreSQL */
/* fcgirec.h - FastCGI records seen so far: is a whole request head there yet (pure, fuzzed). */
#ifndef NP_FCGIREC_H
#define NP_FCGIREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the bytes received so far on a connection amount to. */
enum fcgirec_status {
	FCGIREC_INCOMPLETE = 0, /* a prefix of a valid request: wait for more */
	FCGIREC_READY,          /* BEGIN_REQUEST, all PARAMS and the STDIN end (or stdin_ready bytes of it) */
	FCGIREC_TOO_LARGE,      /* PARAMS content over max_params, or cap bytes without a request head */
	FCGIREC_MALFORMED,      /* not a FastCGI responder request we serve */
};

struct fcgirec_limits {
	size_t max_params;  /* largest sum of PARAMS content */
	size_t stdin_ready; /* READY once this many STDIN content bytes are there (the rest is read under a deadline) */
	size_t cap;         /* the caller's buffer size: this many bytes and still INCOMPLETE is TOO_LARGE */
};

struct fcgirec_result {
	enum fcgirec_status status;
	uint16_t request_id;  /* of the BEGIN_REQUEST; 0 before it */
	bool keep_conn;       /* FCGI_KEEP_CONN was set */
	size_t params_bytes;  /* PARAMS content declared so far */
	size_t stdin_bytes;   /* STDIN content present so far */
	const char *reason;   /* MALFORMED and TOO_LARGE: a short lowercase reason; else "" */
};

/* Scan buf[0..len) as the start of a FastCGI connection. Management records (request id 0) may
 * come anywhere and are left for libfcgi to answer. Declared name-value lengths are checked
 * against the PARAMS stream, so libfcgi never allocates what the peer merely claims. buf may be
 * NULL when len is 0. Returns out->status. */
enum fcgirec_status fcgirec_scan(const uint8_t *buf, size_t len, const struct fcgirec_limits *lim,
                                 struct fcgirec_result *out);

/* Frame a complete answer as records for request_id: STDOUT records carrying data[0..len), the
 * empty STDOUT record, then END_REQUEST (application status 0, REQUEST_COMPLETE). Returns the
 * number of bytes written to out, or 0 when cap is too small. */
size_t fcgirec_frame_answer(uint16_t request_id, const void *data, size_t len, uint8_t *out, size_t cap);

const char *fcgirec_status_name(enum fcgirec_status s);

#endif
