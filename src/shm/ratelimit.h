/* SPDX-License-Identifier: PostgreSQL */
/* ratelimit.h - fixed-window counters in shared memory, taken by every worker alike (lock-free). */
#ifndef NP_RATELIMIT_H
#define NP_RATELIMIT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* One counter: key 0 is a free entry; state is the window number (high 32 bits) and the count
 * taken in it (low 32 bits), changed only by compare-and-swap. */
struct np_rate_entry {
	_Atomic uint64_t key;
	_Atomic uint64_t state;
};

#define NP_RATE_ENTRIES 4096 /* the table in the shared memory (ask_rate_per_session) */
#define NP_RATE_PROBE 8      /* entries looked at from a key's home */

/* Take one from key's counter in tab[0..n) (a non-zero hash), at most limit per window of
 * window_s seconds (windows are now_s / window_s). Returns 0 when taken, else the seconds until
 * key's window ends (>= 1): the Retry-After of the refusal. An entry is given to another key only
 * when its window ended; a key that finds none of its NP_RATE_PROBE entries free or ended is not
 * limited (returns 0). */
int ratelimit_take(struct np_rate_entry *tab, size_t n, uint64_t key, int limit, int window_s, int64_t now_s);

#endif
