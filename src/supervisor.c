/* supervisor.c - the periodic process: aggregates the worker slots into the published view. */
#include <unistd.h>

#include "log.h"
#include "supervisor.h"
#include "util.h"
#include "child.h"

#define SUPERVISOR_TICK_MS 250

void supervisor_aggregate(struct np_shm *shm)
{
	uint32_t idle = 0, busy = 0, starting = 0;
	uint64_t requests = 0;
	int64_t now = util_wall_us(), longest = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		/* copy, then work on the copy: the slot may change under us */
		struct np_slot *s = &shm->slots[i];
		if (atomic_load(&s->kind) != NP_KIND_WORKER)
			continue;
		uint32_t state = atomic_load(&s->state);
		int64_t start = atomic_load(&s->req_start_us);
		requests += atomic_load(&s->requests);
		if (state == NP_SLOT_IDLE)
			idle++;
		else if (state == NP_SLOT_BUSY)
			busy++;
		else if (state == NP_SLOT_STARTING)
			starting++;
		if (state == NP_SLOT_BUSY && start > 0 && now - start > longest)
			longest = now - start;
	}
	atomic_store(&shm->hdr->sup_workers_idle, idle);
	atomic_store(&shm->hdr->sup_workers_busy, busy);
	atomic_store(&shm->hdr->sup_workers_starting, starting);
	/* requests of reaped workers are lost from the sum; keep the published total monotonic */
	uint64_t prev = atomic_load(&shm->hdr->sup_requests_total);
	if (requests > prev)
		atomic_store(&shm->hdr->sup_requests_total, requests);
	atomic_store(&shm->hdr->sup_longest_busy_us, longest);
	atomic_store(&shm->hdr->sup_updated_us, now);
}

void supervisor_main(const struct np_conf *conf, struct np_shm *shm, int slot, pid_t master_pid)
{
	if (child_setup("np-supervisor", "supervisor", master_pid) < 0)
		_exit(0);
	atomic_store(&shm->hdr->supervisor_pid, (int32_t)getpid());
	atomic_store(&shm->slots[slot].state, NP_SLOT_IDLE);
	log_debug("supervisor started");

	while (!child_should_stop()) {
		child_wait(-1, SUPERVISOR_TICK_MS);
		supervisor_aggregate(shm);
	}
	atomic_store(&shm->slots[slot].state, NP_SLOT_EXITING);
	log_debug("supervisor exiting");
	_exit(0);
}
