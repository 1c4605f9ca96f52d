/* SPDX-License-Identifier: PostgreSQL */
/* sched.h - weekly schedules of hours ("Mon-Fri 07:00-22:00; Sat 09:00-13:00") in a time zone,
 * for warmup_policy = schedule; the clock is passed in, so tests inject it. */
#ifndef NP_SCHED_H
#define NP_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define SCHED_MAX 16

struct sched_range {
	unsigned days;     /* bit 0 = Sunday .. bit 6 = Saturday: the days the range starts on */
	int start_min;     /* minutes after midnight, 0..1439 */
	int end_min;       /* 1..1440; <= start_min: the range runs past midnight into the next day */
};

struct sched {
	int n;
	struct sched_range r[SCHED_MAX];
};

/* Parse spec: entries separated by ';', each DAYS HH:MM-HH:MM, DAYS a comma-separated list of
 * Mon..Sun or ranges Mon-Fri (wrapping: Fri-Mon), or daily. Returns 0, or -1 with a message
 * naming the bad entry. An empty spec is an error. */
int sched_parse(const char *spec, struct sched *out, char *msg, size_t n) __attribute__((warn_unused_result));
/* Whether the local time (weekday 0 = Sunday, minute of the day) falls in a range. */
bool sched_match(const struct sched *s, int wday, int minute);
/* Whether time t falls in a range in time zone tz (an IANA name such as "Europe/Berlin"; "" or
 * "UTC": UTC). The process's TZ is restored afterwards. */
bool sched_active(const struct sched *s, const char *tz, time_t t);
/* Whether tz names a time zone this machine knows ("" and "UTC" always). */
bool sched_tz_valid(const char *tz);

#endif
