/* SPDX-License-Identifier: PostgreSQL */
/* test_hist.c - the log-linear histogram: invalid inputs, bucket edges, percentiles within the
 * stated bound of exact ones over 10^6 samples (5 * 10^4 under valgrind) of several distributions, merge = one recording. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

/* 10^6 samples; under valgrind (the suite sets NP_VALGRIND) 5 * 10^4: the run there looks for memory
 * errors, and the full count took 20 s of it */
static int SAMPLES = 1000000; /* NOLINT: set once in main */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic, so a failure reproduces */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static double unit(void)
{
	return ((double)(rng() >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
}

static struct hist *hist_new(void)
{
	struct hist *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	return h;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_hist_invalid_inputs(void **state)
{
	(void)state;
	struct hist *h = hist_new();
	assert_int_equal(hist_percentile(h, 0.5), 0); /* empty */
	assert_int_equal(hist_total(h), 0);
	hist_record(h, -5);               /* below the range: clamped to 1 us */
	hist_record(h, 0);
	hist_record(h, INT64_MAX);        /* above: clamped to 60 s */
	assert_int_equal(atomic_load(&h->count), 3);
	assert_int_equal(atomic_load(&h->sum_us), 1 + 1 + HIST_MAX_US);
	assert_int_equal(hist_percentile(h, 0.5), 1);
	uint64_t top = hist_percentile(h, 1.0);
	assert_true(fabs((double)top - HIST_MAX_US) <= HIST_MAX_US * HIST_REL_ERROR);
	/* quantiles outside (0, 1] are clamped, never read outside the buckets */
	assert_int_equal(hist_percentile(h, -1), 1);
	assert_int_equal(hist_percentile(h, NAN), 1);
	assert_int_equal(hist_percentile(h, 7), top);
	assert_int_equal(hist_index(0), hist_index(1));
	assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
	free(h);
}

static void test_hist_bucket_edges(void **state)
{
	(void)state;
	assert_int_equal(HIST_BUCKETS, 1331);
	assert_int_equal(hist_index(HIST_MAX_US), HIST_BUCKETS - 1);
	for (unsigned i = 1; i < HIST_BUCKETS; i++) {
		uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);
		assert_true(lo <= hi);
		assert_int_equal(hist_index(lo), i);
		assert_int_equal(hist_index(hi < HIST_MAX_US ? hi : HIST_MAX_US), i);
		if (i + 1 < HIST_BUCKETS)
			assert_int_equal(hist_bucket_lo(i + 1), hi + 1); /* contiguous */
		/* the stated bound: a bucket is at most 1/HIST_SUB of its lower bound wide */
		assert_true((hi - lo + 1) * HIST_SUB <= (lo < 2 * HIST_SUB ? HIST_SUB : lo));
		uint64_t mid = hist_bucket_mid(i);
		assert_true(mid >= lo && mid <= hi);
	}
	assert_true(hist_bucket_hi(HIST_BUCKETS - 1) >= HIST_MAX_US);
	for (uint64_t v = 1; v < 128; v++) /* exact below 2 * HIST_SUB */
		assert_int_equal(hist_bucket_mid(hist_index(v)), v);
}

enum dist { D_LOGUNIFORM, D_EXPONENTIAL, D_LOGNORMAL, D_BIMODAL, D_SMALL, D_CONSTANT, D_COUNT };

static int64_t sample(enum dist d)
{
	switch (d) {
	case D_LOGUNIFORM: return (int64_t)exp(unit() * log((double)HIST_MAX_US)); /* 1 us .. 60 s */
	case D_EXPONENTIAL: return (int64_t)(-log(unit()) * 5000.0);                /* mean 5 ms */
	case D_LOGNORMAL: {
		double z = sqrt(-2 * log(unit())) * cos(2 * M_PI * unit());
		return (int64_t)exp(log(2000.0) + 1.5 * z); /* median 2 ms, long tail */
	}
	case D_BIMODAL: /* a fast cached route and a slow cold start */
		return unit() < 0.97 ? 300 + (int64_t)(rng() % 700) : 800000 + (int64_t)(rng() % 2000000);
	case D_SMALL: return (int64_t)(rng() % 200);     /* the exact range and just above */
	default: return 4321;
	}
}

static void test_hist_percentiles_within_bound(void **state)
{
	(void)state;
	static const double qs[] = { 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0 };
	uint64_t *v = malloc(SAMPLES * sizeof(*v));
	assert_non_null(v);
	for (int d = 0; d < D_COUNT; d++) {
		struct hist *h = hist_new();
		uint64_t sum = 0;
		for (int i = 0; i < SAMPLES; i++) {
			int64_t x = sample((enum dist)d);
			v[i] = hist_clamp(x);
			sum += v[i];
			hist_record(h, x);
		}
		assert_int_equal(atomic_load(&h->count), SAMPLES);
		assert_int_equal(hist_total(h), SAMPLES);
		assert_int_equal(atomic_load(&h->sum_us), sum);
		qsort(v, SAMPLES, sizeof(*v), cmp_u64);
		double worst = 0;
		for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
			size_t rank = (size_t)ceil(qs[k] * SAMPLES);
			uint64_t exact = v[rank - 1], got = hist_percentile(h, qs[k]);
			double err = fabs((double)got - (double)exact) / (double)exact;
			if (err > worst)
				worst = err;
			if (err > HIST_REL_ERROR)
				fail_msg("distribution %d q=%g: exact %llu, histogram %llu (%.4f%% > %.4f%%)", d, qs[k],
				         (unsigned long long)exact, (unsigned long long)got, err * 100, HIST_REL_ERROR * 100);
		}
		print_message("distribution %d: worst relative error %.4f%% (bound %.4f%%)\n", d, worst * 100,
		              HIST_REL_ERROR * 100);
		free(h);
	}
	free(v);
}

static void test_hist_merge_equals_one(void **state)
{
	(void)state;
	enum { PARTS = 7 };
	struct hist *all = hist_new(), *sum = hist_new(), *part[PARTS];
	for (int p = 0; p < PARTS; p++)
		part[p] = hist_new();
	for (int i = 0; i < SAMPLES; i++) {
		int64_t x = sample((enum dist)(i % D_COUNT));
		hist_record(all, x);
		hist_record(part[rng() % PARTS], x);
	}
	for (int p = 0; p < PARTS; p++)
		hist_merge(sum, part[p]);
	assert_int_equal(atomic_load(&sum->count), atomic_load(&all->count));
	assert_int_equal(atomic_load(&sum->sum_us), atomic_load(&all->sum_us));
	assert_int_equal(atomic_load(&sum->lo), atomic_load(&all->lo));
	assert_int_equal(atomic_load(&sum->hi), atomic_load(&all->hi));
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		assert_int_equal(atomic_load(&sum->n[i]), atomic_load(&all->n[i]));
	for (double q = 0.01; q <= 1.0; q += 0.01)
		assert_int_equal(hist_percentile(sum, q), hist_percentile(all, q));
	/* a window is the difference of two snapshots: all - part[0] = the other parts merged */
	struct hist *rest = hist_new(), *win = hist_new();
	for (int p = 1; p < PARTS; p++)
		hist_merge(rest, part[p]);
	hist_diff(win, all, part[0]);
	assert_int_equal(atomic_load(&win->count), atomic_load(&rest->count));
	assert_int_equal(atomic_load(&win->sum_us), atomic_load(&rest->sum_us));
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		assert_int_equal(atomic_load(&win->n[i]), atomic_load(&rest->n[i]));
	hist_diff(win, all, all); /* nothing new: empty */
	assert_int_equal(atomic_load(&win->count), 0);
	assert_int_equal(hist_percentile(win, 0.99), 0);
	for (int p = 0; p < PARTS; p++)
		free(part[p]);
	free(all);
	free(sum);
	free(rest);
	free(win);
}

int main(void)
{
	if (getenv("NP_VALGRIND"))
		SAMPLES = 50000;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_invalid_inputs),
		cmocka_unit_test(test_hist_bucket_edges),
		cmocka_unit_test(test_hist_percentiles_within_bound),
		cmocka_unit_test(test_hist_merge_equals_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
