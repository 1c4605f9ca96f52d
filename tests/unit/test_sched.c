/* SPDX-License-Identifier: PostgreSQL */
/* test_sched.c - warm-up schedules: rejections first, then matching with an injected clock in
 * UTC and in time zones across a daylight-saving change. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

static void test_sched_rejects(void **state)
{
	(void)state;
	struct sched s;
	char msg[200];
	static const char *const bad[] = {
		"", ";", "Mon-Fri", "07:00-22:00", "Mon-Fri 7:00-22:00", "Mon-Fri 07:00-25:00", "Mon-Fri 07:60-08:00",
		"Mon-Fri 07:00-07:00", "Mon-Fri 24:00-01:00", "Mon-Fri 07:00-00:00", "Mo-Fr 07:00-22:00",
		"Mon-Fri 07:00 22:00", "Mon, 07:00-08:00", "Mon-Fri 07:00-22:00;", "Mon-Fri 07:00-22:00 extra",
		"Mon-Fri 07:00-22:00; ; Sat 09:00-10:00", "Funday 07:00-08:00",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg[0] = '\0';
		if (sched_parse(bad[i], &s, msg, sizeof(msg)) != -1)
			fail_msg("accepted '%s'", bad[i]);
		assert_true(msg[0] != '\0');
	}
	assert_false(sched_tz_valid("../etc/passwd"));
	assert_false(sched_tz_valid("/etc/localtime"));
	assert_false(sched_tz_valid("Mars/Olympus_Mons"));
	assert_false(sched_tz_valid("Europe/Berlin;rm"));
	assert_true(sched_tz_valid(""));
	assert_true(sched_tz_valid("UTC"));
}

static void test_sched_match(void **state)
{
	(void)state;
	struct sched s;
	char msg[200];
	assert_int_equal(sched_parse("Mon-Fri 07:00-22:00; sat,Sun 09:00-13:00", &s, msg, sizeof(msg)), 0);
	assert_int_equal(s.n, 2);
	assert_false(sched_match(&s, 1, 6 * 60 + 59)); /* Monday 06:59 */
	assert_true(sched_match(&s, 1, 7 * 60));       /* Monday 07:00 */
	assert_true(sched_match(&s, 5, 21 * 60 + 59)); /* Friday 21:59 */
	assert_false(sched_match(&s, 5, 22 * 60));     /* Friday 22:00: the end is excluded */
	assert_false(sched_match(&s, 6, 8 * 60 + 59)); /* Saturday 08:59 */
	assert_true(sched_match(&s, 0, 12 * 60));      /* Sunday noon */
	/* past midnight, and a wrapping day range */
	assert_int_equal(sched_parse("Fri-Mon 22:00-02:00", &s, msg, sizeof(msg)), 0);
	assert_true(sched_match(&s, 5, 23 * 60));      /* Friday 23:00 */
	assert_true(sched_match(&s, 6, 60));           /* Saturday 01:00: Friday's night */
	assert_true(sched_match(&s, 2, 60));           /* Tuesday 01:00: Monday's night */
	assert_false(sched_match(&s, 2, 23 * 60));     /* Tuesday 23:00 */
	assert_false(sched_match(&s, 5, 60));          /* Friday 01:00: Thursday is not listed */
	assert_int_equal(sched_parse("daily 00:00-24:00", &s, msg, sizeof(msg)), 0);
	for (int d = 0; d < 7; d++)
		assert_true(sched_match(&s, d, 0) && sched_match(&s, d, 1439));
}

static void test_sched_clock_tz(void **state)
{
	(void)state;
	struct sched s;
	char msg[200];
	assert_int_equal(sched_parse("Mon-Fri 07:00-22:00", &s, msg, sizeof(msg)), 0);
	/* 2026-11-30 is a Monday; 11:59:59 UTC is 06:59:59 in New York (EST, UTC-5) */
	time_t mon_1159 = 1796039999; /* 2026-11-30T11:59:59Z */
	assert_false(sched_active(&s, "America/New_York", mon_1159));
	assert_true(sched_active(&s, "America/New_York", mon_1159 + 1));
	assert_true(sched_active(&s, "UTC", mon_1159));
	assert_true(sched_active(&s, "", mon_1159));
	/* Tokyo (UTC+9): Monday 11:59 UTC is 20:59; 13:00 UTC is 22:00, closed */
	assert_true(sched_active(&s, "Asia/Tokyo", mon_1159));
	assert_false(sched_active(&s, "Asia/Tokyo", mon_1159 + 3601));
	/* across the change to summer time in Berlin: 2026-03-30 (Monday) 05:00 UTC is 07:00 CEST */
	time_t mar30_0500 = 1774846800; /* 2026-03-30T05:00:00Z */
	assert_true(sched_active(&s, "Europe/Berlin", mar30_0500));
	assert_false(sched_active(&s, "Europe/Berlin", mar30_0500 - 1));
	/* the process's TZ is left as it was */
	assert_null(getenv("TZ"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sched_rejects),
		cmocka_unit_test(test_sched_match),
		cmocka_unit_test(test_sched_clock_tz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
