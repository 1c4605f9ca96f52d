/* SPDX-License-Identifier: PostgreSQL */
/* budget.h - the connection budget: tokens in shared memory, taken by CAS, reclaimed after crashes. */
#ifndef NP_BUDGET_H
#define NP_BUDGET_H

#include <stdbool.h>
#include <sys/types.h>

#include "shm.h"

/* Take a free token of endpoint ep for this process (slot), without waiting.
 * Returns the token index, or -1 when the budget is exhausted. */
int budget_acquire(struct np_shm *shm, int ep, int slot);
/* The owner records its token's phase (and the statement deadline / backend pid). */
void budget_set_phase(struct np_shm *shm, int ep, int tok, enum np_token_phase phase);
void budget_set_busy(struct np_shm *shm, int ep, int tok, int64_t until_us);
void budget_set_backend(struct np_shm *shm, int ep, int tok, int backend_pid);
/* The owner gives its token back (only once the server closed its side) and wakes a spare:
 * it clears the fields while it still owns the token, then the owner word. A token this
 * process does not own is left alone. */
void budget_release(struct np_shm *shm, int ep, int tok);

/* Master: free a token still owned by the dead process `dead` (its server closed): swap the owner
 * to ourselves, write the fields, owner to 0 last. Returns false when the token was no longer
 * dead's (nothing written). */
bool budget_free_dead(struct np_shm *shm, int ep, int tok, pid_t dead);

/* Tokens taken (owner != 0), whatever their phase: the number of server connections that may
 * exist. And those with a live connection. */
int budget_in_use(const struct np_shm *shm, int ep);
int budget_connected(const struct np_shm *shm, int ep);
/* The effective limit of ep (0 when the endpoint is not configured). */
int budget_limit(const struct np_shm *shm, int ep);

/* Master, after reaping pid: mark its tokens orphaned, freeable grace_ms past the deadline of
 * the statement that was in flight; give back its connect permits. Returns tokens orphaned. */
int budget_orphan_pid(struct np_shm *shm, pid_t pid, int grace_ms);
/* Supervisor: free orphans whose time came; orphan tokens whose owner no longer exists and
 * whose slot no longer names it (a backstop for a master that missed one). It takes a token by
 * CAS of the owner it saw to its own pid before writing it. Returns tokens freed. */
int budget_janitor(struct np_shm *shm, int grace_ms);

/* An upgrade to a build whose shared-memory layout differs (master_upgrade.c). Old master: mark
 * a free token of ep given (owner NP_TOKEN_GIVEN, taken by CAS from 0, so nobody here holds it
 * any more); returns its index, or -1 when none is free. Take a given token back (a rolled-back
 * upgrade, once the other generation is gone). Count the given ones. */
int budget_give_one(struct np_shm *shm, int ep);
void budget_take_back(struct np_shm *shm, int ep, int tok);
int budget_take_back_all(struct np_shm *shm); /* every endpoint's; returns how many */
int budget_given(const struct np_shm *shm, int ep);

/* A permit to connect: at most max connects in flight across the pool. */
bool budget_permit_take(struct np_shm *shm, int ep, int max);
void budget_permit_give(struct np_shm *shm, int ep);

/* Wake the processes waiting for a token (one byte into the wake pipe). */
void budget_wake(struct np_shm *shm);
/* Drain one wake byte; returns true when there was one. */
bool budget_wake_consume(struct np_shm *shm);

const char *budget_phase_name(uint32_t phase);

#endif
