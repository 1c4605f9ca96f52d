/* SPDX-License-Identifier: PostgreSQL */
/* fuzz_neonsim_cmd.c - libFuzzer target: nsim_cmd_parse() (tests/tools/neonsim_cmd.c), the control-line parser
 * of neonsim, on any bytes. Checks its promises: the error text is terminated and empty exactly on success;
 * a parsed command has a known verb and in-range values; parsing is deterministic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/neonsim_cmd.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size ? size : 1);
	if (!line)
		abort();
	memcpy(line, data, size);
	struct nsim_cmd a, b;
	char err[64], err2[64];
	memset(err, 'Z', sizeof(err));
	int ra = nsim_cmd_parse(line, size, &a, err, sizeof(err));
	if (memchr(err, '\0', sizeof(err)) == NULL)
		abort();
	if (ra == 0) {
		if (err[0] != '\0' || a.verb > NSIM_CMD_PING || a.mode > NSIM_REFUSE)
			abort();
		if (a.up_us > NSIM_MAX_DELAY_US || a.down_us > NSIM_MAX_DELAY_US || a.seconds > NSIM_MAX_SECONDS)
			abort();
		if (size > NSIM_LINE_MAX + 1)
			abort();
	} else if (ra != -1 || err[0] == '\0') {
		abort();
	}
	int rb = nsim_cmd_parse(line, size, &b, err2, sizeof(err2));
	if (rb != ra || strcmp(err, err2) != 0 || (ra == 0 && memcmp(&a, &b, sizeof(a)) != 0))
		abort();
	/* a tiny error buffer is still terminated */
	char small[1] = { 'x' };
	(void)nsim_cmd_parse(line, size, &b, small, sizeof(small));
	if (small[0] != '\0')
		abort();
	free(line);
	return 0;
}
