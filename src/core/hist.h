/* SPDX-License-Identifier: PostgreSQL */
/* hist.h - a log-linear latency histogram in microseconds (HdrHistogram's idea, our code):
 * fixed size, mergeable by addition, one writer and any number of readers without a lock. */
#ifndef NP_HIST_H
#define NP_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Values are microseconds, clamped into [HIST_MIN_US, HIST_MAX_US] (1 us .. 60 s) before they
 * are recorded. Values below 2 * HIST_SUB are counted exactly; above, each power of two
 * [2^e, 2^(e+1)) is cut into HIST_SUB equal buckets, so a bucket is at most 1/HIST_SUB of its
 * lower bound wide. A percentile is reported as the middle of its bucket, so it is within
 * HIST_REL_ERROR (1/128 = 0.78 %) of the exact value (test_hist checks it over 10^6 samples). */
#define HIST_SUB_BITS 6
#define HIST_SUB (1 << HIST_SUB_BITS)                    /* 64 buckets per power of two */
#define HIST_MIN_US 1
#define HIST_MAX_US 60000000                             /* 60 s */
#define HIST_TOP_BIT 25                                  /* 2^25 <= HIST_MAX_US < 2^26 */
/* the bucket of HIST_MAX_US is the last: 2 * 64 exact + 18 powers of two * 64 + 51 of the 19th */
#define HIST_BUCKETS (2 * HIST_SUB + (HIST_TOP_BIT - HIST_SUB_BITS - 1) * HIST_SUB + \
                      (HIST_MAX_US >> (HIST_TOP_BIT - HIST_SUB_BITS)) - HIST_SUB + 1) /* 1331 */
#define HIST_REL_ERROR (1.0 / (2 * HIST_SUB))

/* One histogram. `count` and `sum_us` are written after the bucket, so a reader that loads
 * `count` first sees at least that many samples in the buckets (it may see one more there). The
 * reader of a live histogram should sum the buckets when it needs them to agree. lo/hi: the
 * lowest and highest bucket ever touched (readers scan only between them; 0/0 when empty). */
struct hist {
	_Atomic uint64_t count;
	_Atomic uint64_t sum_us;
	_Atomic uint32_t lo;
	_Atomic uint32_t hi;
	_Atomic uint64_t n[HIST_BUCKETS];
};

/* The bucket of a value (clamped first). */
unsigned hist_index(uint64_t us);
/* The smallest and largest value counted in bucket i. */
uint64_t hist_bucket_lo(unsigned i);
uint64_t hist_bucket_hi(unsigned i);
/* The value a percentile in bucket i is reported as: the middle of the bucket. */
uint64_t hist_bucket_mid(unsigned i);

/* Clamp into [HIST_MIN_US, HIST_MAX_US]. */
uint64_t hist_clamp(int64_t us);
/* Record one value. Only one thread or process may record into h (its owner); readers may read
 * at any time. */
void hist_record(struct hist *h, int64_t us);
/* dst += src, bucket by bucket (dst has one writer: the caller). */
void hist_merge(struct hist *dst, const struct hist *src);
/* dst = a - b, for windows as differences of snapshots (b an older snapshot of a). */
void hist_diff(struct hist *dst, const struct hist *a, const struct hist *b);
/* Samples in the buckets (what hist_percentile counts, for a live histogram). */
uint64_t hist_total(const struct hist *h);
/* The value at quantile q (0 < q <= 1): nearest rank, reported as the middle of its bucket;
 * 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double q);

#endif
