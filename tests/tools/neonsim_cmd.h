/* SPDX-License-Identifier: PostgreSQL */
/* neonsim_cmd.h - the control-line grammar of neonsim (tests/tools/neonsim.c): parse one line into a command. */
#ifndef NEONSIM_CMD_H
#define NEONSIM_CMD_H

#include <stddef.h>
#include <stdint.h>

#define NSIM_LINE_MAX 256           /* longest control line, newline excluded */
#define NSIM_MAX_DELAY_US 10000000u /* 10 s: any delay or jitter above is refused */
#define NSIM_MAX_SECONDS 86400u     /* suspend-after */

enum nsim_mode { NSIM_PASS, NSIM_BLACKHOLE, NSIM_RESET, NSIM_REFUSE };

enum nsim_verb {
	NSIM_CMD_MODE,          /* mode pass|blackhole|reset|refuse; mode delay UP_MS [DOWN_MS] */
	NSIM_CMD_DELAY,         /* delay UP_MS [DOWN_MS] */
	NSIM_CMD_JITTER,        /* jitter MS */
	NSIM_CMD_SUSPEND_AFTER, /* suspend-after SECONDS (0: never) */
	NSIM_CMD_COLD_START,    /* cold-start MS */
	NSIM_CMD_SUSPEND,       /* suspend now */
	NSIM_CMD_KILL,          /* reset every proxied connection */
	NSIM_CMD_STATS,         /* one line of counters */
	NSIM_CMD_PING
};

struct nsim_cmd {
	enum nsim_verb verb;
	enum nsim_mode mode;   /* NSIM_CMD_MODE */
	int has_delay;         /* NSIM_CMD_MODE with "delay", NSIM_CMD_DELAY */
	uint32_t up_us, down_us; /* delays; jitter and cold start in up_us */
	uint32_t seconds;      /* NSIM_CMD_SUSPEND_AFTER */
};

/* nsim_mode_name: "pass", "blackhole", "reset" or "refuse". */
const char *nsim_mode_name(enum nsim_mode m);

/* nsim_mode_parse: the mode named by S; 0, or -1 when S names none. */
int nsim_mode_parse(const char *s, enum nsim_mode *out);

/* nsim_ms_parse: a number of milliseconds with up to three decimals ("2", "0.5") into microseconds,
 * at most MAX_US; 0, or -1 when S is not such a number. */
int nsim_ms_parse(const char *s, uint32_t max_us, uint32_t *out_us);

/* nsim_cmd_parse: parse the LEN bytes at LINE (no newline; a trailing '\r' is allowed) into *OUT.
 * Returns 0, or -1 with a short lowercase reason in ERR (ERRLEN bytes, always terminated). */
int nsim_cmd_parse(const char *line, size_t len, struct nsim_cmd *out, char *err, size_t errlen);

#endif
