/* SPDX-License-Identifier: PostgreSQL */
/* ratelimit.c - fixed-window counters in shared memory, taken by every worker alike (lock-free).
 *
 * Each entry is two words changed by compare-and-swap only, so a worker killed at any point
 * leaves nothing locked: at worst its take counted and its request was never answered. */
#include "ratelimit.h"

/* Take one in e's window: 0, or the seconds until the window ends when limit is reached. */
static int ratelimit_count(struct np_rate_entry *e, uint32_t window, int limit, int window_s, int64_t now_s)
{
	uint64_t st = atomic_load(&e->state);
	for (;;) {
		uint64_t next;
		if ((uint32_t)(st >> 32) != window) {
			next = (uint64_t)window << 32 | 1u;
		} else if ((st & 0xffffffffu) >= (uint64_t)limit) {
			int64_t left = ((int64_t)window + 1) * window_s - now_s;
			return left < 1 ? 1 : (int)left;
		} else {
			next = st + 1;
		}
		if (atomic_compare_exchange_weak(&e->state, &st, next))
			return 0;
	}
}

int ratelimit_take(struct np_rate_entry *tab, size_t n, uint64_t key, int limit, int window_s, int64_t now_s)
{
	if (tab == NULL || n == 0 || key == 0 || limit <= 0 || window_s <= 0 || now_s < 0)
		return 0;
	uint32_t window = (uint32_t)(now_s / window_s);
	/* the home of a key: its hash's high bits (the low ones of a poor hash cluster) */
	size_t home = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) % n;
	size_t probe = n < NP_RATE_PROBE ? n : NP_RATE_PROBE;
	/* the key's own entry first: a key holds one entry (taking another while it holds one
	 * would start a second count) */
	for (size_t i = 0; i < probe; i++) {
		struct np_rate_entry *e = &tab[(home + i) % n];
		if (atomic_load(&e->key) == key)
			return ratelimit_count(e, window, limit, window_s, now_s);
	}
	/* then the first free entry, or another key's whose window ended (its count starts over in
	 * ours); every taker tries them in the same order, so two first asks of a key meet at one */
	for (size_t i = 0; i < probe; i++) {
		struct np_rate_entry *e = &tab[(home + i) % n];
		uint64_t k = atomic_load(&e->key);
		if (k != 0 && (uint32_t)(atomic_load(&e->state) >> 32) == window)
			continue;
		if (atomic_compare_exchange_strong(&e->key, &k, key) || k == key)
			return ratelimit_count(e, window, limit, window_s, now_s);
	}
	return 0;
}
