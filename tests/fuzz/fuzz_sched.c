/* SPDX-License-Identifier: PostgreSQL */
/* fuzz_sched.c - libFuzzer target: sched_parse() (src/core/sched.c) on any text. Checks its
 * promises: a parsed schedule has 1..SCHED_MAX ranges, each with days and minutes in range, and
 * matching any minute of any day reads nothing outside it; a rejection leaves a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec = strndup((const char *)data, size);
	if (!spec)
		abort();
	struct sched s;
	char msg[200] = "";
	if (sched_parse(spec, &s, msg, sizeof(msg)) == 0) {
		if (s.n < 1 || s.n > SCHED_MAX)
			abort();
		for (int i = 0; i < s.n; i++) {
			const struct sched_range *r = &s.r[i];
			if (r->days == 0 || r->days > 0x7f || r->start_min < 0 || r->start_min > 1439 || r->end_min < 1 ||
			    r->end_min > 1440 || r->start_min == r->end_min)
				abort();
		}
		for (int d = 0; d < 7; d++)
			for (int m = 0; m < 1440; m += 7)
				(void)sched_match(&s, d, m);
	} else if (msg[0] == '\0') {
		abort();
	}
	free(spec);
	return 0;
}
