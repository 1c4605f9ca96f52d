/* SPDX-License-Identifier: PostgreSQL */
/* neonsim_cmd.c - parse one control line of neonsim into a command (pure: no I/O, no allocation). */
#include "neonsim_cmd.h"

#include <stdio.h>
#include <string.h>

#define NSIM_MAX_WORDS 4

static const char *const mode_names[] = { "pass", "blackhole", "reset", "refuse" };

const char *nsim_mode_name(enum nsim_mode m)
{
	return (unsigned)m < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[m] : "?";
}

int nsim_mode_parse(const char *s, enum nsim_mode *out)
{
	for (unsigned i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*out = (enum nsim_mode)i;
			return 0;
		}
	return -1;
}

int nsim_ms_parse(const char *s, uint32_t max_us, uint32_t *out_us)
{
	uint64_t ms = 0, frac = 0;
	int digits = 0, fdigits = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		ms = ms * 10 + (uint64_t)(*p - '0');
		if (ms > max_us / 1000 + 1)
			return -1;
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, fdigits++) {
			if (fdigits == 3)
				return -1;
			frac = frac * 10 + (uint64_t)(*p - '0');
		}
		if (fdigits == 0)
			return -1;
	}
	if (digits == 0 || *p != '\0')
		return -1;
	for (int i = fdigits; i < 3; i++)
		frac *= 10;
	uint64_t us = ms * 1000 + frac;
	if (us > max_us)
		return -1;
	*out_us = (uint32_t)us;
	return 0;
}

static int uint_parse(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;
	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* fail: the reason into ERR; returns -1. */
static int fail(char *err, size_t errlen, const char *what, const char *word)
{
	if (errlen > 0)
		snprintf(err, errlen, "%s%s%.40s%s", what, word ? " '" : "", word ? word : "", word ? "'" : "");
	return -1;
}

/* delay_args: W[0..N) are "UP_MS [DOWN_MS]" into OUT. */
static int delay_args(char **w, int n, struct nsim_cmd *out, char *err, size_t errlen)
{
	if (n < 1 || n > 2)
		return fail(err, errlen, "usage: delay UP_MS [DOWN_MS]", NULL);
	if (nsim_ms_parse(w[0], NSIM_MAX_DELAY_US, &out->up_us) < 0)
		return fail(err, errlen, "bad delay (milliseconds, up to 10000, 3 decimals)", w[0]);
	out->down_us = out->up_us;
	if (n == 2 && nsim_ms_parse(w[1], NSIM_MAX_DELAY_US, &out->down_us) < 0)
		return fail(err, errlen, "bad delay (milliseconds, up to 10000, 3 decimals)", w[1]);
	out->has_delay = 1;
	return 0;
}

int nsim_cmd_parse(const char *line, size_t len, struct nsim_cmd *out, char *err, size_t errlen)
{
	char buf[NSIM_LINE_MAX + 1];
	char *w[NSIM_MAX_WORDS + 1];
	int n = 0;

	if (errlen > 0)
		err[0] = '\0';
	memset(out, 0, sizeof(*out));
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > NSIM_LINE_MAX)
		return fail(err, errlen, "line too long", NULL);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c != ' ' && c != '\t' && (c < 0x21 || c > 0x7e))
			return fail(err, errlen, "control or non-ascii byte in line", NULL);
	}
	memcpy(buf, line, len);
	buf[len] = '\0';
	for (char *p = buf; *p;) {
		while (*p == ' ' || *p == '\t')
			*p++ = '\0';
		if (*p == '\0')
			break;
		if (n == NSIM_MAX_WORDS + 1)
			return fail(err, errlen, "too many words", NULL);
		w[n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
	if (n == 0)
		return fail(err, errlen, "empty line", NULL);

	const char *v = w[0];
	int nargs = n - 1;
	if (strcmp(v, "mode") == 0) {
		out->verb = NSIM_CMD_MODE;
		if (nargs >= 1 && strcmp(w[1], "delay") == 0) {
			out->mode = NSIM_PASS;
			return delay_args(w + 2, nargs - 1, out, err, errlen);
		}
		if (nargs != 1)
			return fail(err, errlen, "usage: mode pass|blackhole|reset|refuse|delay UP_MS [DOWN_MS]", NULL);
		if (nsim_mode_parse(w[1], &out->mode) < 0)
			return fail(err, errlen, "unknown mode", w[1]);
		return 0;
	}
	if (strcmp(v, "delay") == 0) {
		out->verb = NSIM_CMD_DELAY;
		return delay_args(w + 1, nargs, out, err, errlen);
	}
	if (strcmp(v, "jitter") == 0 || strcmp(v, "cold-start") == 0) {
		out->verb = v[0] == 'j' ? NSIM_CMD_JITTER : NSIM_CMD_COLD_START;
		if (nargs != 1)
			return fail(err, errlen, out->verb == NSIM_CMD_JITTER ? "usage: jitter MS" : "usage: cold-start MS", NULL);
		if (nsim_ms_parse(w[1], NSIM_MAX_DELAY_US, &out->up_us) < 0)
			return fail(err, errlen, "bad milliseconds (up to 10000, 3 decimals)", w[1]);
		return 0;
	}
	if (strcmp(v, "suspend-after") == 0) {
		out->verb = NSIM_CMD_SUSPEND_AFTER;
		if (nargs != 1)
			return fail(err, errlen, "usage: suspend-after SECONDS", NULL);
		if (uint_parse(w[1], NSIM_MAX_SECONDS, &out->seconds) < 0)
			return fail(err, errlen, "bad seconds (0 to 86400)", w[1]);
		return 0;
	}
	static const struct { const char *name; enum nsim_verb verb; } bare[] = {
		{ "suspend", NSIM_CMD_SUSPEND }, { "kill", NSIM_CMD_KILL }, { "stats", NSIM_CMD_STATS },
		{ "ping", NSIM_CMD_PING },
	};
	for (unsigned i = 0; i < sizeof(bare) / sizeof(bare[0]); i++)
		if (strcmp(v, bare[i].name) == 0) {
			if (nargs != 0)
				return fail(err, errlen, "no argument expected after", v);
			out->verb = bare[i].verb;
			return 0;
		}
	return fail(err, errlen, "unknown command", v);
}
