/* SPDX-License-Identifier: PostgreSQL */
/* hist.c - a log-linear latency histogram: bucket arithmetic, recording, merging, percentiles. */
#include "hist.h"

#define RLX memory_order_relaxed

uint64_t hist_clamp(int64_t us)
{
	if (us < HIST_MIN_US)
		return HIST_MIN_US;
	if (us > HIST_MAX_US)
		return HIST_MAX_US;
	return (uint64_t)us;
}

unsigned hist_index(uint64_t us)
{
	if (us < HIST_MIN_US)
		us = HIST_MIN_US;
	if (us > HIST_MAX_US)
		us = HIST_MAX_US;
	if (us < 2 * HIST_SUB)
		return (unsigned)us;
	unsigned e = 63u - (unsigned)__builtin_clzll(us); /* 2^e <= us < 2^(e+1), e >= 7 */
	unsigned sub = (unsigned)(us >> (e - HIST_SUB_BITS)) - HIST_SUB;
	return 2 * HIST_SUB + (e - HIST_SUB_BITS - 1) * HIST_SUB + sub;
}

uint64_t hist_bucket_lo(unsigned i)
{
	if (i < 2 * HIST_SUB)
		return i;
	unsigned k = i - 2 * HIST_SUB;
	unsigned e = HIST_SUB_BITS + 1 + k / HIST_SUB;
	return (uint64_t)(HIST_SUB + k % HIST_SUB) << (e - HIST_SUB_BITS);
}

uint64_t hist_bucket_hi(unsigned i)
{
	if (i < 2 * HIST_SUB)
		return i;
	unsigned e = HIST_SUB_BITS + 1 + (i - 2 * HIST_SUB) / HIST_SUB;
	return hist_bucket_lo(i) + ((uint64_t)1 << (e - HIST_SUB_BITS)) - 1;
}

uint64_t hist_bucket_mid(unsigned i)
{
	uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);
	return lo + (hi - lo) / 2;
}

void hist_record(struct hist *h, int64_t us)
{
	uint64_t v = hist_clamp(us);
	unsigned i = hist_index(v);
	/* one writer: load + store, no locked instruction */
	atomic_store_explicit(&h->n[i], atomic_load_explicit(&h->n[i], RLX) + 1, RLX);
	uint32_t lo = atomic_load_explicit(&h->lo, RLX), hi = atomic_load_explicit(&h->hi, RLX);
	if (lo == 0 || i < lo)
		atomic_store_explicit(&h->lo, i, RLX);
	if (i > hi)
		atomic_store_explicit(&h->hi, i, RLX);
	atomic_store_explicit(&h->sum_us, atomic_load_explicit(&h->sum_us, RLX) + v, RLX);
	/* count last, released: a reader that acquires it sees the bucket */
	atomic_store_explicit(&h->count, atomic_load_explicit(&h->count, RLX) + 1, memory_order_release);
}

/* The bucket range to scan, [*lo, *hi]; false when nothing was ever recorded. */
static int hist_range(const struct hist *h, unsigned *lo, unsigned *hi)
{
	if (atomic_load_explicit(&h->count, memory_order_acquire) == 0)
		return 0;
	*lo = atomic_load_explicit(&h->lo, RLX);
	*hi = atomic_load_explicit(&h->hi, RLX);
	if (*lo == 0 || *hi >= HIST_BUCKETS || *lo > *hi)
		return 0;
	return 1;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	unsigned lo, hi;
	uint64_t count = 0; /* of the buckets read: a live writer may be between bucket and count */
	if (!hist_range(src, &lo, &hi))
		return;
	for (unsigned i = lo; i <= hi; i++) {
		uint64_t v = atomic_load_explicit(&src->n[i], RLX);
		count += v;
		if (v)
			atomic_store_explicit(&dst->n[i], atomic_load_explicit(&dst->n[i], RLX) + v, RLX);
	}
	uint32_t dlo = atomic_load_explicit(&dst->lo, RLX), dhi = atomic_load_explicit(&dst->hi, RLX);
	if (dlo == 0 || lo < dlo)
		atomic_store_explicit(&dst->lo, lo, RLX);
	if (hi > dhi)
		atomic_store_explicit(&dst->hi, hi, RLX);
	atomic_store_explicit(&dst->sum_us, atomic_load_explicit(&dst->sum_us, RLX) +
	                      atomic_load_explicit(&src->sum_us, RLX), RLX);
	atomic_store_explicit(&dst->count, atomic_load_explicit(&dst->count, RLX) + count, memory_order_release);
}

void hist_diff(struct hist *dst, const struct hist *a, const struct hist *b)
{
	unsigned lo, hi;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		atomic_store_explicit(&dst->n[i], 0, RLX);
	atomic_store_explicit(&dst->lo, 0, RLX);
	atomic_store_explicit(&dst->hi, 0, RLX);
	atomic_store_explicit(&dst->sum_us, 0, RLX);
	atomic_store_explicit(&dst->count, 0, RLX);
	if (!hist_range(a, &lo, &hi))
		return;
	uint32_t nlo = 0, nhi = 0;
	uint64_t count = 0;
	for (unsigned i = lo; i <= hi; i++) {
		uint64_t x = atomic_load_explicit(&a->n[i], RLX), y = atomic_load_explicit(&b->n[i], RLX);
		uint64_t d = x > y ? x - y : 0;
		atomic_store_explicit(&dst->n[i], d, RLX);
		if (d) {
			if (nlo == 0)
				nlo = i;
			nhi = i;
			count += d;
		}
	}
	uint64_t sa = atomic_load_explicit(&a->sum_us, RLX), sb = atomic_load_explicit(&b->sum_us, RLX);
	atomic_store_explicit(&dst->lo, nlo, RLX);
	atomic_store_explicit(&dst->hi, nhi, RLX);
	atomic_store_explicit(&dst->sum_us, sa > sb ? sa - sb : 0, RLX);
	atomic_store_explicit(&dst->count, count, memory_order_release);
}

uint64_t hist_total(const struct hist *h)
{
	unsigned lo, hi;
	uint64_t t = 0;
	if (!hist_range(h, &lo, &hi))
		return 0;
	for (unsigned i = lo; i <= hi; i++)
		t += atomic_load_explicit(&h->n[i], RLX);
	return t;
}

uint64_t hist_percentile(const struct hist *h, double q)
{
	unsigned lo, hi;
	uint64_t total = hist_total(h);
	if (total == 0 || !hist_range(h, &lo, &hi))
		return 0;
	if (!(q > 0))
		q = 0;
	if (q > 1)
		q = 1;
	/* nearest rank: the smallest value with at least ceil(q * total) samples at or below it */
	double r = q * (double)total;
	uint64_t rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = lo; i <= hi; i++) {
		seen += atomic_load_explicit(&h->n[i], RLX);
		if (seen >= rank)
			return hist_bucket_mid(i);
	}
	return hist_bucket_mid(hi);
}
