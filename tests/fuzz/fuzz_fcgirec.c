/* SPDX-License-Identifier: PostgreSQL */
/* fuzz_fcgirec.c - libFuzzer target: the FastCGI request-head scanner (fcgirec_scan) and the
 * answer framer, on any bytes. Checks the scanner's own promises, not just "no crash". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fcgirec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the first two bytes choose the limits, so small and large bounds are both explored */
	struct fcgirec_limits lim = { .max_params = 65536, .stdin_ready = 16384, .cap = 65536 + 16384 + 4096 };
	if (size >= 2) {
		lim.max_params = (size_t)(data[0] & 0x7f) * 64;
		lim.stdin_ready = (size_t)(data[1] & 0x3f) * 16;
		lim.cap = lim.max_params + lim.stdin_ready + 4096;
		data += 2;
		size -= 2;
	}
	/* a copy of exactly size bytes, so that ASan sees any read past the end */
	uint8_t *buf = size ? malloc(size) : NULL;
	if (size && !buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	struct fcgirec_result r;
	enum fcgirec_status st = fcgirec_scan(buf, size, &lim, &r);
	if (st != r.status || !r.reason)
		abort();
	if (st == FCGIREC_READY && (r.request_id == 0 || r.params_bytes > lim.max_params))
		abort();
	if (st == FCGIREC_INCOMPLETE && size >= lim.cap)
		abort();
	/* a prefix of a READY or INCOMPLETE input is never worse than INCOMPLETE or READY */
	if ((st == FCGIREC_READY || st == FCGIREC_INCOMPLETE) && size > 0) {
		struct fcgirec_result p;
		enum fcgirec_status sp = fcgirec_scan(buf, size - 1, &lim, &p);
		if (sp == FCGIREC_MALFORMED)
			abort();
	}
	/* frame the input as an answer; the result must be well-formed records */
	size_t cap = size + 64 + (size / 65528 + 1) * 16;
	uint8_t *out = malloc(cap);
	if (out) {
		size_t n = fcgirec_frame_answer(1, buf, size, out, cap);
		if (n == 0 || n > cap || out[0] != 1)
			abort();
		free(out);
	}
	free(buf);
	return 0;
}
