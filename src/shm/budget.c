/* SPDX-License-Identifier: PostgreSQL */
/* budget.c - the connection budget: tokens in shared memory, taken by CAS, reclaimed after crashes.
 *
 * A token's owner word is the lock (nginx's cmp_set(lock, 0, pid)): it is 0 or the pid of the
 * process that may hold one server connection under it. So the pool can never hold more
 * connections than tokens below the limit, whatever crashes, and in_use is derived by counting
 * owners, never kept in a counter that several processes bump. A dead owner's tokens are marked
 * orphaned by the master when it reaps the owner, and freed by the supervisor once the server
 * must have seen the close (the grace past the deadline of the statement in flight). */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "budget.h"
#include "util.h"

int budget_limit(const struct np_shm *shm, int ep)
{
	const struct np_endpoint_shm *e = &shm->hdr->ep[ep];
	uint32_t lim = atomic_load(&e->limit);
	if (lim == 0)
		lim = atomic_load(&e->configured);
	if (atomic_load(&shm->hdr->grant_active)) {
		uint32_t g = atomic_load(&e->granted);
		lim = g < lim ? g : lim;
	}
	return lim > NP_MAX_BUDGET ? NP_MAX_BUDGET : (int)lim;
}

int budget_give_one(struct np_shm *shm, int ep)
{
	struct np_endpoint_shm *e = &shm->hdr->ep[ep];
	/* only tokens this generation could take: below its limit (a token past it is nobody's to
	 * give, and counting it as given would leave every usable one here) */
	int lim = budget_limit(shm, ep);
	for (int t = 0; t < lim; t++) {
		struct np_token *tok = &e->tokens[t];
		int32_t expect = 0;
		if (atomic_load(&tok->owner) != 0 || !atomic_compare_exchange_strong(&tok->owner, &expect, NP_TOKEN_GIVEN))
			continue;
		atomic_store(&tok->slot, -1);
		atomic_store(&tok->since_us, util_wall_us());
		atomic_store(&tok->phase, NP_TOK_GIVEN);
		return t;
	}
	return -1;
}

void budget_take_back(struct np_shm *shm, int ep, int tok)
{
	struct np_token *t = &shm->hdr->ep[ep].tokens[tok];
	int32_t expect = NP_TOKEN_GIVEN;
	if (atomic_load(&t->owner) != NP_TOKEN_GIVEN)
		return;
	atomic_store(&t->phase, NP_TOK_FREE);
	atomic_store(&t->since_us, util_wall_us());
	atomic_compare_exchange_strong(&t->owner, &expect, 0);
}

int budget_take_back_all(struct np_shm *shm)
{
	int n = 0;
	for (int ep = 0; ep < NP_EP_COUNT; ep++)
		for (int t = 0; t < NP_MAX_BUDGET; t++)
			if (atomic_load(&shm->hdr->ep[ep].tokens[t].owner) == NP_TOKEN_GIVEN) {
				budget_take_back(shm, ep, t);
				n++;
			}
	return n;
}

int budget_given(const struct np_shm *shm, int ep)
{
	int n = 0;
	for (int i = 0; i < NP_MAX_BUDGET; i++)
		if (atomic_load(&shm->hdr->ep[ep].tokens[i].owner) == NP_TOKEN_GIVEN)
			n++;
	return n;
}

int budget_acquire(struct np_shm *shm, int ep, int slot)
{
	struct np_endpoint_shm *e = &shm->hdr->ep[ep];
	int lim = budget_limit(shm, ep);
	if (lim <= 0)
		return -1;
	int32_t me = (int32_t)getpid();
	/* start at a random token so that processes do not all fight over token 0 */
	int start = (int)util_random_below((uint32_t)lim);
	for (int i = 0; i < lim; i++) {
		int t = (start + i) % lim;
		struct np_token *tok = &e->tokens[t];
		int32_t expect = 0;
		if (atomic_load(&tok->owner) != 0)
			continue;
		if (atomic_compare_exchange_strong(&tok->owner, &expect, me)) {
			atomic_store(&tok->slot, slot);
			atomic_store(&tok->backend_pid, 0);
			atomic_store(&tok->busy_until_us, 0);
			atomic_store(&tok->free_after_us, 0);
			atomic_store(&tok->since_us, util_wall_us());
			atomic_store(&tok->phase, NP_TOK_CONNECTING);
			return t;
		}
	}
	return -1;
}

void budget_set_phase(struct np_shm *shm, int ep, int tok, enum np_token_phase phase)
{
	struct np_token *t = &shm->hdr->ep[ep].tokens[tok];
	atomic_store(&t->since_us, util_wall_us());
	atomic_store(&t->phase, phase);
}

void budget_set_busy(struct np_shm *shm, int ep, int tok, int64_t until_us)
{
	atomic_store(&shm->hdr->ep[ep].tokens[tok].busy_until_us, until_us);
}

void budget_set_backend(struct np_shm *shm, int ep, int tok, int backend_pid)
{
	atomic_store(&shm->hdr->ep[ep].tokens[tok].backend_pid, backend_pid);
}

/* Clear a token's fields, then give it up: the caller owns it (owner == expect) and writes
 * nothing once the owner word says otherwise; the store of 0 is the last write, so whoever
 * takes the token next finds it clean and nobody writes after it. */
static void budget_free_owned(struct np_token *t, int32_t expect)
{
	atomic_store(&t->busy_until_us, 0);
	atomic_store(&t->backend_pid, 0);
	atomic_store(&t->free_after_us, 0);
	atomic_store(&t->since_us, util_wall_us());
	atomic_store(&t->phase, NP_TOK_FREE);
	atomic_compare_exchange_strong(&t->owner, &expect, 0);
}

bool budget_free_dead(struct np_shm *shm, int ep, int tok, pid_t dead)
{
	struct np_token *t = &shm->hdr->ep[ep].tokens[tok];
	int32_t owner = (int32_t)dead, me = (int32_t)getpid();
	/* take it first, as the janitor does: between a check and the writes the token could be
	 * freed by another and taken by a live worker, whose phase we would then overwrite */
	if (!atomic_compare_exchange_strong(&t->owner, &owner, me))
		return false;
	budget_free_owned(t, me);
	budget_wake(shm);
	return true;
}

void budget_release(struct np_shm *shm, int ep, int tok)
{
	struct np_token *t = &shm->hdr->ep[ep].tokens[tok];
	int32_t me = (int32_t)getpid();
	/* only the owner writes its token: a stale release must not clear another owner's state */
	if (atomic_load(&t->owner) != me)
		return;
	budget_free_owned(t, me);
	budget_wake(shm);
}

int budget_in_use(const struct np_shm *shm, int ep)
{
	int n = 0;
	for (int i = 0; i < NP_MAX_BUDGET; i++)
		if (atomic_load(&shm->hdr->ep[ep].tokens[i].owner) != 0)
			n++;
	return n;
}

int budget_connected(const struct np_shm *shm, int ep)
{
	int n = 0;
	for (int i = 0; i < NP_MAX_BUDGET; i++) {
		const struct np_token *t = &shm->hdr->ep[ep].tokens[i];
		if (atomic_load(&t->owner) != 0 && atomic_load(&t->phase) == NP_TOK_CONNECTED)
			n++;
	}
	return n;
}

/* Mark t orphaned: freeable grace_ms past the deadline of the statement that was in flight. */
static void budget_orphan(struct np_token *t, int64_t now, int grace_ms)
{
	int64_t busy = atomic_load(&t->busy_until_us);
	atomic_store(&t->free_after_us, (busy > now ? busy : now) + (int64_t)grace_ms * 1000);
	atomic_store(&t->since_us, now);
	atomic_store(&t->phase, NP_TOK_ORPHANED);
}

int budget_orphan_pid(struct np_shm *shm, pid_t pid, int grace_ms)
{
	int n = 0;
	int64_t now = util_wall_us();
	for (int ep = 0; ep < NP_EP_COUNT; ep++) {
		struct np_endpoint_shm *e = &shm->hdr->ep[ep];
		for (int i = 0; i < NP_MAX_BUDGET; i++) {
			struct np_token *t = &e->tokens[i];
			if (atomic_load(&t->owner) != (int32_t)pid || atomic_load(&t->phase) == NP_TOK_ORPHANED)
				continue;
			budget_orphan(t, now, grace_ms);
			n++;
		}
		for (int i = 0; i < 64; i++) {
			int32_t expect = (int32_t)pid;
			atomic_compare_exchange_strong(&e->connect_permits[i], &expect, 0);
		}
	}
	return n;
}

static bool budget_pid_gone(int32_t pid)
{
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* The owner is gone and the master is done with it: the slot it took the token for no longer
 * names it (the master orphans a dead child's tokens before it frees the slot, so until then
 * the master is the one to act, with the socket it keeps). */
static bool budget_owner_missed(const struct np_shm *shm, const struct np_token *t, int32_t owner)
{
	if (!budget_pid_gone(owner))
		return false;
	int slot = atomic_load(&t->slot);
	return slot < 0 || slot >= NP_MAX_SLOTS || atomic_load(&shm->slots[slot].pid) != owner;
}

/* The janitor writes a token only after it took it: compare-and-swap the owner it saw to its
 * own pid. A janitor that lost the race (the token was freed and taken again meanwhile) fails
 * the swap and writes nothing. */
int budget_janitor(struct np_shm *shm, int grace_ms)
{
	int freed = 0;
	int64_t now = util_wall_us();
	int32_t me = (int32_t)getpid();
	for (int ep = 0; ep < NP_EP_COUNT; ep++) {
		struct np_endpoint_shm *e = &shm->hdr->ep[ep];
		for (int i = 0; i < NP_MAX_BUDGET; i++) {
			struct np_token *t = &e->tokens[i];
			int32_t owner = atomic_load(&t->owner);
			if (owner == 0 || owner == NP_TOKEN_GIVEN)
				continue;
			uint32_t phase = atomic_load(&t->phase);
			if (phase != NP_TOK_ORPHANED) {
				/* backstop: an owner that vanished without the master orphaning its token */
				if (owner != me && budget_owner_missed(shm, t, owner) &&
				    atomic_compare_exchange_strong(&t->owner, &owner, me))
					budget_orphan(t, now, grace_ms);
				continue;
			}
			if (now < atomic_load(&t->free_after_us))
				continue;
			if (owner == me || atomic_compare_exchange_strong(&t->owner, &owner, me)) {
				budget_free_owned(t, me);
				freed++;
			}
		}
		for (int i = 0; i < 64; i++) {
			int32_t p = atomic_load(&e->connect_permits[i]);
			if (p != 0 && budget_pid_gone(p))
				atomic_compare_exchange_strong(&e->connect_permits[i], &p, 0);
		}
	}
	if (freed)
		budget_wake(shm);
	return freed;
}

bool budget_permit_take(struct np_shm *shm, int ep, int max)
{
	struct np_endpoint_shm *e = &shm->hdr->ep[ep];
	int32_t me = (int32_t)getpid();
	if (max > 64)
		max = 64;
	for (int i = 0; i < max; i++) {
		int32_t expect = 0;
		if (atomic_compare_exchange_strong(&e->connect_permits[i], &expect, me))
			return true;
	}
	return false;
}

void budget_permit_give(struct np_shm *shm, int ep)
{
	struct np_endpoint_shm *e = &shm->hdr->ep[ep];
	for (int i = 0; i < 64; i++) {
		int32_t me = (int32_t)getpid();
		if (atomic_compare_exchange_strong(&e->connect_permits[i], &me, 0))
			return;
	}
}

void budget_wake(struct np_shm *shm)
{
	char b = 1;
	ssize_t rc = write(shm->hdr->wake_fd[1], &b, 1);
	(void)rc; /* a full pipe already wakes everyone */
}

bool budget_wake_consume(struct np_shm *shm)
{
	char b;
	return read(shm->hdr->wake_fd[0], &b, 1) == 1;
}

const char *budget_phase_name(uint32_t phase)
{
	switch (phase) {
	case NP_TOK_FREE: return "free";
	case NP_TOK_CONNECTING: return "connecting";
	case NP_TOK_CONNECTED: return "connected";
	case NP_TOK_CLOSING: return "closing";
	case NP_TOK_ORPHANED: return "orphaned";
	case NP_TOK_GIVEN: return "given";
	default: return "unknown";
	}
}
