/* SPDX-License-Identifier: PostgreSQL */
/* test_metrics.c - the metrics rows: a request's phases and total land in its route's
 * histograms and ladders, a bound belongs to its own bucket, the queue counts in the total,
 * outside a request the pool route is used, and the exposition of summed rows is cumulative with
 * +Inf = _count and only grows when a row is continued by a successor; the latency windows'
 * sequence count is even after a publish, also when a writer died between its two steps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expo.h"
#include "metrics.h"
#include "shm.h"
#include "supervisor.h"

static void test_metrics_ladder_bounds(void **state)
{
	(void)state;
	assert_int_equal(metrics_ladder_index(0), 0);
	assert_int_equal(metrics_ladder_index(100), 0);   /* le="0.0001" holds 100 us itself */
	assert_int_equal(metrics_ladder_index(101), 1);
	assert_int_equal(metrics_ladder_index(30000000), NP_LADDER - 1);
	assert_int_equal(metrics_ladder_index(30000001), NP_LADDER); /* above the top: +Inf only */
	for (int i = 1; i < NP_LADDER; i++)
		assert_true(metrics_ladder_us[i] > metrics_ladder_us[i - 1]);
	assert_int_equal(metrics_code_index(200), 0);
	assert_int_equal(metrics_codes[metrics_code_index(418)], 0); /* other */
	assert_string_equal(metrics_errors[metrics_error_index("db_busy")], "db_busy");
	assert_string_equal(metrics_errors[metrics_error_index("no such code")], "other");
	assert_string_equal(metrics_errors[metrics_error_index("llm_unavailable")], "llm_unavailable");
	assert_string_equal(metrics_errors[metrics_error_index("llm_busy")], "llm_busy");
	assert_int_equal(metrics_route_id(-1), NP_MROUTE_NONE);
	assert_int_equal(metrics_route_id(0), NP_MROUTE_FIRST);
	assert_int_equal(metrics_route_id(NP_MROUTES), NP_MROUTE_NONE);
}

static void test_metrics_request(void **state)
{
	(void)state;
	/* page-aligned, as in the shared memory (UBSan: calloc's 16-byte alignment is misaligned) */
	struct np_mrow *row = aligned_alloc(_Alignof(struct np_mrow), sizeof(*row));
	assert_non_null(row);
	memset(row, 0, sizeof(*row));
	metrics_bind(row);
	metrics_phase(NP_PHASE_CONNECT, 1500); /* outside a request: the pool's */
	assert_int_equal(atomic_load(&row->hist[NP_MROUTE_POOL][NP_PHASE_CONNECT].count), 1);
	metrics_begin(1000000);
	metrics_queued(2000);
	metrics_set_route(metrics_route_id(3));
	metrics_phase(NP_PHASE_ACQUIRE, 10);
	metrics_phase(NP_PHASE_QUERY, 700);
	metrics_phase(NP_PHASE_QUERY, 300);
	int64_t total = metrics_end(503, "db_busy", 1005000);
	assert_int_equal(total, 5000 + 2000);
	assert_int_equal(metrics_breakdown(NP_PHASE_QUERY), 1000);
	assert_int_equal(metrics_breakdown(NP_PHASE_ACQUIRE), 10);
	assert_int_equal(metrics_queue_us(), 2000);
	int r = metrics_route_id(3), c = metrics_code_index(503);
	assert_int_equal(atomic_load(&row->hist[r][NP_PHASE_TOTAL].count), 1);
	assert_int_equal(atomic_load(&row->hist[r][NP_PHASE_QUERY].count), 2);
	assert_int_equal(atomic_load(&row->http[r][c].count), 1);
	assert_int_equal(atomic_load(&row->http[r][c].le[metrics_ladder_index(7000)]), 1);
	assert_int_equal(atomic_load(&row->errors[metrics_error_index("db_busy")]), 1);
	/* after the request, phases are the pool's again */
	metrics_phase(NP_PHASE_QUERY, 50);
	assert_int_equal(atomic_load(&row->hist[NP_MROUTE_POOL][NP_PHASE_QUERY].count), 1);
	metrics_bind(NULL);
	free(row);
}

/* The value of one exposition line "name{labels} value" (-1 when absent). */
static double expo_value(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return atof(p + n + 1);
	return -1;
}

static void test_metrics_expo_rows_continue(void **state)
{
	(void)state;
	struct np_shm shm;
	memset(&shm, 0, sizeof(shm));
	assert_int_equal(shm_create(&shm, NULL), 0);
	snprintf(shm.hdr->route_names[NP_MROUTE_FIRST], sizeof(shm.hdr->route_names[0]), "books.get");
	/* slot 3: two requests; then its successor continues the row with one more */
	atomic_store(&shm.slots[3].started_us, 1); /* the master started a process in it */
	metrics_bind(&shm.mrows[3]);
	for (int i = 0; i < 2; i++) {
		metrics_begin(0);
		metrics_set_route(NP_MROUTE_FIRST);
		metrics_end(200, "", i == 0 ? 100 : 40000000);
	}
	size_t len;
	char *a = expo_metrics(&shm, &len);
	assert_non_null(a);
	assert_int_equal(strlen(a), len);
	const char *b100 = "neonpool_http_request_duration_seconds_bucket{route=\"books.get\",code=\"200\",le=\"0.0001\"}";
	const char *inf = "neonpool_http_request_duration_seconds_bucket{route=\"books.get\",code=\"200\",le=\"+Inf\"}";
	const char *top = "neonpool_http_request_duration_seconds_bucket{route=\"books.get\",code=\"200\",le=\"30\"}";
	const char *cnt = "neonpool_http_request_duration_seconds_count{route=\"books.get\",code=\"200\"}";
	assert_true(expo_value(a, b100) == 1);
	assert_true(expo_value(a, top) == 1);  /* cumulative; the 40 s one only in +Inf */
	assert_true(expo_value(a, inf) == 2);
	assert_true(expo_value(a, cnt) == 2);
	metrics_bind(&shm.mrows[3]); /* the successor in the same slot */
	metrics_begin(0);
	metrics_set_route(NP_MROUTE_FIRST);
	metrics_end(200, "", 5);
	char *b = expo_metrics(&shm, &len);
	assert_non_null(b);
	assert_true(expo_value(b, cnt) == 3);
	assert_true(expo_value(b, b100) == 2);
	assert_non_null(strstr(b, "# TYPE neonpool_http_request_duration_seconds histogram\n"));
	free(a);
	free(b);
	metrics_bind(NULL);
	shm_detach(&shm);
}

/* The readers scan the rows up to the highest slot ever assigned: its row is counted after its
 * process is gone and the slot reclaimed, and the rows after it are not looked at. */
static void test_metrics_rows_end(void **state)
{
	(void)state;
	struct np_shm shm;
	memset(&shm, 0, sizeof(shm));
	assert_int_equal(shm_create(&shm, NULL), 0);
	assert_int_equal(shm_mrows_end(&shm), 0);
	int a = shm_slot_assign(&shm, NP_KIND_WORKER, 1), b = shm_slot_assign(&shm, NP_KIND_WORKER, 1);
	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	assert_int_equal(shm_mrows_end(&shm), 2);
	metrics_bind(&shm.mrows[b]);
	metrics_count(NP_MC_RETRIES);
	metrics_count(NP_MC_RETRIES);
	metrics_bind(NULL);
	shm_slot_reclaim(&shm, b);
	assert_int_equal(shm_mrows_end(&shm), 2);
	size_t len = 0;
	char *text = expo_metrics(&shm, &len);
	assert_non_null(text);
	assert_non_null(strstr(text, "neonpool_db_retries_total 2\n"));
	free(text);
	shm_detach(&shm);
}

/* A supervisor killed between the two steps of its window lock left the count odd; its successor's
 * publish must leave it even, and readers then see the windows it wrote. */
static void test_metrics_windows_parity_after_writer_death(void **state)
{
	(void)state;
	struct np_shm shm;
	memset(&shm, 0, sizeof(shm));
	assert_int_equal(shm_create(&shm, NULL), 0);
	snprintf(shm.hdr->route_names[NP_MROUTE_FIRST], sizeof(shm.hdr->route_names[0]), "books.get");
	atomic_store(&shm.slots[2].started_us, 1);
	metrics_bind(&shm.mrows[2]);
	for (int i = 0; i < 3; i++) {
		metrics_begin(0);
		metrics_set_route(NP_MROUTE_FIRST);
		metrics_end(200, "", 1000);
	}
	metrics_bind(NULL);
	atomic_store(&shm.hdr->sup_win_seq, 7); /* the previous writer died mid-write */
	supervisor_windows(&shm, 1000);
	uint32_t seq = atomic_load(&shm.hdr->sup_win_seq);
	assert_int_equal(seq & 1u, 0);          /* even again: readers take the windows */
	supervisor_windows(&shm, 1000 + 10000 + 1);
	assert_int_equal(atomic_load(&shm.hdr->sup_win_seq) & 1u, 0);
	assert_true(atomic_load(&shm.hdr->sup_win_seq) > seq);
	shm_detach(&shm);
}

/* ask_rate_per_session's counters: invalid inputs admit; 5 a minute; the next window; keys apart;
 * a key keeps one entry; a full neighbourhood admits; an ended window's entry is reused. */
static void test_ratelimit(void **state)
{
	(void)state;
	static struct np_rate_entry tab[64];
	memset(tab, 0, sizeof(tab));
	assert_int_equal(ratelimit_take(NULL, 64, 7, 5, 60, 120), 0);
	assert_int_equal(ratelimit_take(tab, 64, 0, 5, 60, 120), 0);
	assert_int_equal(ratelimit_take(tab, 64, 7, 0, 60, 120), 0);
	assert_int_equal(ratelimit_take(tab, 64, 7, 5, 0, 120), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(ratelimit_take(tab, 64, 7, 5, 60, 130), 0);
	for (int i = 0; i < 15; i++)
		assert_int_equal(ratelimit_take(tab, 64, 7, 5, 60, 130), 50); /* window 120..180 */
	assert_int_equal(ratelimit_take(tab, 64, 8, 5, 60, 130), 0);     /* another key */
	assert_int_equal(ratelimit_take(tab, 64, 7, 5, 60, 179), 1);
	assert_int_equal(ratelimit_take(tab, 64, 7, 5, 60, 180), 0);     /* the next window */
	int used = 0;
	for (int i = 0; i < 64; i++)
		used += atomic_load(&tab[i].key) != 0;
	assert_int_equal(used, 2);
	/* a tiny table: 8 entries, all live in this window: a 9th key is not limited */
	static struct np_rate_entry small[8];
	memset(small, 0, sizeof(small));
	for (uint64_t k = 1; k <= 8; k++)
		assert_int_equal(ratelimit_take(small, 8, k, 1, 60, 0), 0);
	assert_int_equal(ratelimit_take(small, 8, 9, 1, 60, 0), 0);
	assert_int_equal(ratelimit_take(small, 8, 9, 1, 60, 0), 0);
	assert_int_not_equal(ratelimit_take(small, 8, 3, 1, 60, 0), 0);
	/* the next window: key 9 takes an ended entry and is limited from then on */
	assert_int_equal(ratelimit_take(small, 8, 9, 1, 60, 60), 0);
	assert_int_equal(ratelimit_take(small, 8, 9, 1, 60, 61), 59);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_ladder_bounds),
		cmocka_unit_test(test_ratelimit),
		cmocka_unit_test(test_metrics_request),
		cmocka_unit_test(test_metrics_expo_rows_continue),
		cmocka_unit_test(test_metrics_windows_parity_after_writer_death),
		cmocka_unit_test(test_metrics_rows_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
