/* SPDX-License-Identifier: PostgreSQL */
/* sched.c - weekly schedules of hours in a time zone: parsing and matching. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sched.h"

static const char *const sched_day_names[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

static int sched_day(const char *p, size_t len)
{
	if (len != 3)
		return -1;
	for (int d = 0; d < 7; d++)
		if (strncasecmp(p, sched_day_names[d], 3) == 0)
			return d;
	return -1;
}

/* "HH:MM" (00:00 .. 24:00) at p, exactly 5 characters. */
static int sched_hhmm(const char *p, size_t len)
{
	if (len != 5 || p[2] != ':')
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (p[i] < '0' || p[i] > '9'))
			return -1;
	int h = (p[0] - '0') * 10 + (p[1] - '0'), m = (p[3] - '0') * 10 + (p[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return -1;
	return h * 60 + m;
}

/* DAYS: daily | item(,item)*, item = Day | Day-Day. */
static int sched_days(const char *p, size_t len, unsigned *out)
{
	*out = 0;
	if (len == 5 && strncasecmp(p, "daily", 5) == 0) {
		*out = 0x7f;
		return 0;
	}
	while (len > 0) {
		const char *comma = memchr(p, ',', len);
		size_t il = comma ? (size_t)(comma - p) : len;
		const char *dash = memchr(p, '-', il);
		int a, b;
		if (dash) {
			a = sched_day(p, (size_t)(dash - p));
			b = sched_day(dash + 1, il - (size_t)(dash - p) - 1);
		} else {
			a = b = sched_day(p, il);
		}
		if (a < 0 || b < 0)
			return -1;
		for (int d = a;; d = (d + 1) % 7) {
			*out |= 1u << d;
			if (d == b)
				break;
		}
		if (!comma)
			break;
		len -= il + 1;
		p = comma + 1;
		if (len == 0)
			return -1; /* a trailing comma */
	}
	return *out ? 0 : -1;
}

int sched_parse(const char *spec, struct sched *out, char *msg, size_t n)
{
	memset(out, 0, sizeof(*out));
	const char *p = spec ? spec : "";
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *semi = strchr(p, ';');
		size_t len = semi ? (size_t)(semi - p) : strlen(p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0) {
			snprintf(msg, n, spec && spec[0] ? "empty entry in the schedule" : "the schedule is empty");
			return -1;
		}
		if (out->n == SCHED_MAX) {
			snprintf(msg, n, "more than %d entries", SCHED_MAX);
			return -1;
		}
		/* DAYS, blanks, HH:MM-HH:MM */
		const char *sp = p;
		while (sp < p + len && *sp != ' ' && *sp != '\t')
			sp++;
		const char *t = sp;
		while (t < p + len && (*t == ' ' || *t == '\t'))
			t++;
		size_t tl = (size_t)(p + len - t);
		struct sched_range *r = &out->r[out->n];
		int s0 = tl == 11 && t[5] == '-' ? sched_hhmm(t, 5) : -1;
		int s1 = tl == 11 && t[5] == '-' ? sched_hhmm(t + 6, 5) : -1;
		if (sched_days(p, (size_t)(sp - p), &r->days) < 0 || t == sp || s0 < 0 || s1 < 0 || s0 == 1440 ||
		    s1 == 0 || s0 == s1) {
			snprintf(msg, n, "entry '%.*s' is not DAYS HH:MM-HH:MM (days Mon..Sun, Mon-Fri, lists, or daily; "
			         "times 00:00..24:00, start != end)", (int)(len > 60 ? 60 : len), p);
			return -1;
		}
		r->start_min = s0;
		r->end_min = s1;
		out->n++;
		if (!semi)
			return 0;
		p = semi + 1;
	}
}

bool sched_match(const struct sched *s, int wday, int minute)
{
	int yesterday = (wday + 6) % 7;
	for (int i = 0; i < s->n; i++) {
		const struct sched_range *r = &s->r[i];
		if (r->end_min > r->start_min) {
			if ((r->days & (1u << wday)) && minute >= r->start_min && minute < r->end_min)
				return true;
		} else {
			/* past midnight: the evening of a listed day, or the morning after one */
			if ((r->days & (1u << wday)) && minute >= r->start_min)
				return true;
			if ((r->days & (1u << yesterday)) && minute < r->end_min)
				return true;
		}
	}
	return false;
}

bool sched_tz_valid(const char *tz)
{
	if (tz == NULL || tz[0] == '\0' || strcmp(tz, "UTC") == 0)
		return true;
	if (tz[0] == '/' || strstr(tz, "..") || strlen(tz) > 64)
		return false;
	for (const char *c = tz; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '/' ||
		      *c == '_' || *c == '-' || *c == '+'))
			return false;
	char path[128];
	struct stat st;
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool sched_active(const struct sched *s, const char *tz, time_t t)
{
	struct tm tm;
	if (tz == NULL || tz[0] == '\0' || strcmp(tz, "UTC") == 0) {
		if (gmtime_r(&t, &tm) == NULL)
			return false;
		return sched_match(s, tm.tm_wday, tm.tm_hour * 60 + tm.tm_min);
	}
	/* localtime_r in tz: TZ set for the call, then put back (a worker is single-threaded) */
	const char *old = getenv("TZ");
	char saved[128] = "";
	bool had = old != NULL;
	if (had)
		snprintf(saved, sizeof(saved), "%s", old);
	char want[80];
	snprintf(want, sizeof(want), ":%s", tz);
	setenv("TZ", want, 1);
	tzset();
	bool ok = localtime_r(&t, &tm) != NULL;
	if (had)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	return ok && sched_match(s, tm.tm_wday, tm.tm_hour * 60 + tm.tm_min);
}
