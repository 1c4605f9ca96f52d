/* SPDX-License-Identifier: PostgreSQL */
/* fcgirec.c - FastCGI records seen so far: is a whole request head there yet (pure, fuzzed).
 *
 * The worker peeks at a new connection and serves it only when this says READY, so libfcgi's
 * blocking reads of the request head find everything in the socket buffer (see
 * doc/design.md, "Reading a request"). */
#include <string.h>

#include "fcgirec.h"

#define FCGIREC_HEADER 8
#define FCGIREC_VERSION 1
enum {
	FCGIREC_BEGIN_REQUEST = 1,
	FCGIREC_ABORT_REQUEST = 2,
	FCGIREC_END_REQUEST = 3,
	FCGIREC_PARAMS = 4,
	FCGIREC_STDIN = 5,
	FCGIREC_STDOUT = 6,
};
#define FCGIREC_RESPONDER 1
#define FCGIREC_KEEP_CONN 1

/* A streaming decoder of the name-value pairs in the PARAMS content (lengths of 1 or 4 bytes). */
struct fcgirec_nv {
	int phase;          /* 0: name length, 1: value length, 2: skipping name and value bytes */
	int lenbytes;       /* bytes of the current 4-byte length seen */
	uint32_t len;       /* the length being read */
	uint64_t skip;      /* name + value bytes still to come */
};

static void fcgirec_nv_feed(struct fcgirec_nv *nv, const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (nv->phase == 2) {
			size_t k = nv->skip < n ? (size_t)nv->skip : n;
			nv->skip -= k;
			p += k;
			n -= k;
			if (nv->skip == 0)
				nv->phase = 0;
			continue;
		}
		uint8_t b = *p++;
		n--;
		if (nv->lenbytes == 0 && !(b & 0x80)) {
			nv->len = b;
		} else {
			nv->len = nv->lenbytes == 0 ? (uint32_t)(b & 0x7f) : (nv->len << 8) | b;
			if (++nv->lenbytes < 4)
				continue;
		}
		nv->lenbytes = 0;
		if (nv->phase == 0) {
			nv->skip = nv->len;
			nv->phase = 1;
		} else {
			nv->skip += nv->len;
			nv->phase = nv->skip ? 2 : 0;
		}
	}
}

static enum fcgirec_status fcgirec_set(struct fcgirec_result *out, enum fcgirec_status st, const char *reason)
{
	out->status = st;
	out->reason = reason;
	return st;
}

enum fcgirec_status fcgirec_scan(const uint8_t *buf, size_t len, const struct fcgirec_limits *lim,
                                 struct fcgirec_result *out)
{
	memset(out, 0, sizeof(*out));
	out->reason = "";
	if (!lim || (!buf && len > 0))
		return fcgirec_set(out, FCGIREC_MALFORMED, "invalid arguments");

	enum { BEFORE_BEGIN, IN_PARAMS, IN_STDIN } phase = BEFORE_BEGIN;
	struct fcgirec_nv nv = { 0 };
	size_t off = 0;
	for (;;) {
		if (len - off < FCGIREC_HEADER)
			break;
		const uint8_t *h = buf + off;
		uint8_t type = h[1];
		uint16_t id = (uint16_t)(h[2] << 8 | h[3]);
		size_t clen = (size_t)(h[4] << 8 | h[5]), plen = h[6];
		size_t have = len - off - FCGIREC_HEADER; /* bytes after this header */
		size_t chave = have < clen ? have : clen;  /* content bytes present */
		bool whole = have >= clen + plen;
		if (h[0] != FCGIREC_VERSION)
			return fcgirec_set(out, FCGIREC_MALFORMED, "unsupported protocol version");
		if (id == 0) {
			/* a management record (GET_VALUES, ...): libfcgi answers it */
			if (!whole)
				break;
			off += FCGIREC_HEADER + clen + plen;
			continue;
		}
		switch (phase) {
		case BEFORE_BEGIN:
			if (type != FCGIREC_BEGIN_REQUEST)
				return fcgirec_set(out, FCGIREC_MALFORMED, "first record is not BEGIN_REQUEST");
			if (clen != 8)
				return fcgirec_set(out, FCGIREC_MALFORMED, "BEGIN_REQUEST of the wrong length");
			if (!whole)
				goto incomplete;
			if ((h[8] << 8 | h[9]) != FCGIREC_RESPONDER)
				return fcgirec_set(out, FCGIREC_MALFORMED, "role other than responder");
			out->request_id = id;
			out->keep_conn = (h[10] & FCGIREC_KEEP_CONN) != 0;
			phase = IN_PARAMS;
			break;
		case IN_PARAMS:
			if (id != out->request_id)
				return fcgirec_set(out, FCGIREC_MALFORMED, "record for another request");
			if (type != FCGIREC_PARAMS)
				return fcgirec_set(out, FCGIREC_MALFORMED, "PARAMS stream not ended");
			out->params_bytes += clen;
			if (out->params_bytes > lim->max_params)
				return fcgirec_set(out, FCGIREC_TOO_LARGE, "params over max_params_bytes");
			fcgirec_nv_feed(&nv, h + FCGIREC_HEADER, chave);
			if (!whole)
				goto incomplete;
			if (clen == 0) {
				if (nv.phase != 0 || nv.lenbytes != 0)
					return fcgirec_set(out, FCGIREC_MALFORMED, "name-value pair longer than the params");
				phase = IN_STDIN;
			}
			break;
		case IN_STDIN:
			if (id != out->request_id)
				return fcgirec_set(out, FCGIREC_MALFORMED, "record for another request");
			if (type != FCGIREC_STDIN)
				return fcgirec_set(out, FCGIREC_MALFORMED, "record other than STDIN after the params");
			out->stdin_bytes += chave;
			if (clen == 0 || out->stdin_bytes >= lim->stdin_ready)
				return fcgirec_set(out, FCGIREC_READY, "");
			if (!whole)
				goto incomplete;
			break;
		}
		off += FCGIREC_HEADER + clen + plen;
	}
incomplete:
	if (len >= lim->cap)
		return fcgirec_set(out, FCGIREC_TOO_LARGE, "no request head within the read buffer");
	return fcgirec_set(out, FCGIREC_INCOMPLETE, "");
}

static size_t fcgirec_header(uint8_t *p, uint8_t type, uint16_t id, size_t clen, size_t plen)
{
	p[0] = FCGIREC_VERSION;
	p[1] = type;
	p[2] = (uint8_t)(id >> 8);
	p[3] = (uint8_t)id;
	p[4] = (uint8_t)(clen >> 8);
	p[5] = (uint8_t)clen;
	p[6] = (uint8_t)plen;
	p[7] = 0;
	return FCGIREC_HEADER;
}

size_t fcgirec_frame_answer(uint16_t request_id, const void *data, size_t len, uint8_t *out, size_t cap)
{
	const uint8_t *d = data;
	size_t o = 0;
	if (!out || (!d && len > 0))
		return 0;
	while (len > 0) {
		size_t c = len > 65528 ? 65528 : len; /* a multiple of 8: no padding but on the last */
		size_t pad = (8 - c % 8) % 8;
		if (cap - o < FCGIREC_HEADER + c + pad)
			return 0;
		o += fcgirec_header(out + o, FCGIREC_STDOUT, request_id, c, pad);
		memcpy(out + o, d, c);
		memset(out + o + c, 0, pad);
		o += c + pad;
		d += c;
		len -= c;
	}
	if (cap - o < 2 * FCGIREC_HEADER + 8)
		return 0;
	o += fcgirec_header(out + o, FCGIREC_STDOUT, request_id, 0, 0);
	o += fcgirec_header(out + o, FCGIREC_END_REQUEST, request_id, 8, 0);
	memset(out + o, 0, 8); /* appStatus 0, protocolStatus FCGI_REQUEST_COMPLETE, reserved */
	return o + 8;
}

const char *fcgirec_status_name(enum fcgirec_status s)
{
	switch (s) {
	case FCGIREC_INCOMPLETE: return "incomplete";
	case FCGIREC_READY: return "ready";
	case FCGIREC_TOO_LARGE: return "too_large";
	case FCGIREC_MALFORMED: return "malformed";
	}
	return "unknown";
}
