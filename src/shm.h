/* shm.h - the shared-memory region: header and worker slots, one writer per field. */
#ifndef NP_SHM_H
#define NP_SHM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"

#define NP_SHM_MAGIC 0x4e50534d31000000ULL /* "NPSM1" */
#define NP_SHM_LAYOUT 1
#define NP_MAX_SLOTS (2 * NP_MAX_WORKERS + 8)

enum np_slot_state {
	NP_SLOT_FREE = 0,  /* nobody; the master may assign it */
	NP_SLOT_STARTING,  /* assigned by the master before fork; the child has not run yet */
	NP_SLOT_IDLE,      /* waiting for a request */
	NP_SLOT_BUSY,      /* serving a request */
	NP_SLOT_EXITING,   /* leaving cleanly (stop, reload, master gone) */
};

enum np_slot_kind { NP_KIND_NONE = 0, NP_KIND_WORKER, NP_KIND_SUPERVISOR };

/* One child's slot. Writers: the master writes pid/kind/generation and resets the slot when it
 * reaps the child; the child writes everything else about itself. Readers copy, then work. */
struct np_slot {
	/* master */
	_Atomic int32_t pid;
	_Atomic uint32_t kind;
	_Atomic uint32_t generation;
	_Atomic int64_t started_us;       /* wall clock */
	/* the child */
	_Atomic uint32_t state;           /* enum np_slot_state */
	_Atomic int64_t req_start_us;     /* wall clock of the current request, 0 when idle */
	_Atomic uint64_t requests;        /* requests finished */
	_Atomic uint64_t errors_5xx;
	_Atomic uint64_t errors_4xx;
	char route[48];                   /* current or last route pattern (the child writes) */
} __attribute__((aligned(128)));

/* Header. Writers: the master writes the identity fields and generation; the supervisor writes
 * the aggregate view (sup_*). */
struct np_shm_header {
	uint64_t magic;
	uint32_t layout;
	uint32_t nslots;
	uint64_t size;
	_Atomic int32_t master_pid;
	_Atomic uint32_t generation;
	_Atomic int64_t started_us;
	_Atomic int32_t configured_workers;
	/* supervisor */
	_Atomic int32_t supervisor_pid;
	_Atomic int64_t sup_updated_us;
	_Atomic uint32_t sup_workers_idle;
	_Atomic uint32_t sup_workers_busy;
	_Atomic uint32_t sup_workers_starting;
	_Atomic uint64_t sup_requests_total;
	_Atomic int64_t sup_longest_busy_us;
	/* master */
	_Atomic uint64_t respawns_total;
	_Atomic uint64_t crashes_total;
	_Atomic uint32_t crash_loop;      /* 1 when respawning was stopped */
} __attribute__((aligned(128)));

struct np_shm {
	struct np_shm_header *hdr;
	struct np_slot *slots;
	size_t size;
	bool file_backed;
};

/* Create (master, before the first fork) a zeroed region: file-backed at path, else anonymous.
 * Returns 0 or -1 (errno set). */
int shm_create(struct np_shm *shm, const char *path);
/* Map an existing region read-only (CLI). Returns 0, or -1 with errno (EINVAL: not ours). */
int shm_attach_readonly(struct np_shm *shm, const char *path);
void shm_detach(struct np_shm *shm);

/* Master: find a free slot, mark it STARTING with kind and generation. Returns index or -1. */
int shm_slot_assign(struct np_shm *shm, enum np_slot_kind kind, uint32_t generation);
/* Master: after the child it ran has been reaped; returns the slot to FREE. */
void shm_slot_reclaim(struct np_shm *shm, int idx);

const char *shm_state_name(uint32_t state);

#endif
