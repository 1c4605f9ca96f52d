/* SPDX-License-Identifier: PostgreSQL */
/* shm.c - the shared-memory region: header and worker slots, one writer per field. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm.h"
#include "util.h"

/* The metrics rows start on a page after the slots. The region is large (rows for every slot)
 * but sparse: a fresh file or anonymous mapping is zero without being touched, a row's pages are
 * allocated only where its writer records, and readers skip rows and histograms never used. */
static size_t shm_rows_offset(void)
{
	size_t off = sizeof(struct np_shm_header) + NP_MAX_SLOTS * sizeof(struct np_slot);
	return (off + 4095) & ~(size_t)4095;
}

static size_t shm_layout_size(void)
{
	return shm_rows_offset() + NP_MAX_SLOTS * sizeof(struct np_mrow);
}

static void shm_bind(struct np_shm *shm, void *base, size_t size)
{
	shm->hdr = base;
	shm->slots = (struct np_slot *)((char *)base + sizeof(struct np_shm_header));
	shm->mrows = (struct np_mrow *)((char *)base + shm_rows_offset());
	shm->size = size;
}

/* The master pid recorded in a locked status file, if it is ours and that process lives. */
static pid_t shm_holder(int fd)
{
	uint64_t magic = 0;
	int32_t pid = 0;
	if (pread(fd, &magic, sizeof(magic), (off_t)offsetof(struct np_shm_header, magic)) != (ssize_t)sizeof(magic) ||
	    magic != NP_SHM_MAGIC ||
	    pread(fd, &pid, sizeof(pid), (off_t)offsetof(struct np_shm_header, master_pid)) != (ssize_t)sizeof(pid) ||
	    pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH))
		return 0;
	return (pid_t)pid;
}

int shm_lock(struct np_shm *shm, const char *path, pid_t *holder)
{
	if (holder)
		*holder = 0;
	/* no O_TRUNC: the file may be a live instance's region until the lock says otherwise */
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644); /* never through a symlink */
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (holder && (e == EWOULDBLOCK || e == EAGAIN))
			*holder = shm_holder(fd);
		close(fd);
		errno = e == EAGAIN ? EWOULDBLOCK : e;
		return -1;
	}
	shm->lock_fd = fd;
	shm->locked = true;
	return 0;
}

int shm_mrows_end(const struct np_shm *shm)
{
	/* a slot's row is written only by a process the master started in that slot, and
	 * shm_slot_assign() stamps started_us first, never cleared afterwards: rows past the highest
	 * stamped slot are untouched. Each row is tens of KiB: a fresh reader (neonpoolctl status)
	 * that looked at every row's `used` faulted in 520 pages, 8 of its 33 ms of CPU. */
	int end = NP_MAX_SLOTS;
	while (end > 0 && atomic_load(&shm->slots[end - 1].started_us) == 0)
		end--;
	return end;
}

int shm_create(struct np_shm *shm, const char *path)
{
	size_t size = shm_layout_size();
	void *base;
	bool locked = shm->locked;
	int lock_fd = shm->lock_fd;
	memset(shm, 0, sizeof(*shm));
	shm->locked = locked;
	shm->lock_fd = lock_fd;
	if (path && path[0]) {
		if (!shm->locked && shm_lock(shm, path, NULL) < 0)
			return -1;
		int fd = shm->lock_fd;
		/* zero what a previous instance left: truncate to 0, then to the size */
		if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0)
			return -1;
		base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		shm->file_backed = true;
	} else {
		base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	}
	if (base == MAP_FAILED)
		return -1;
	memset(base, 0, shm_rows_offset()); /* the rows are zero already: not touched here */
	shm_bind(shm, base, size);
	shm->hdr->layout = NP_SHM_LAYOUT;
	shm->hdr->nslots = NP_MAX_SLOTS;
	shm->hdr->size = size;
	atomic_store(&shm->hdr->master_pid, (int32_t)getpid());
	atomic_store(&shm->hdr->started_us, util_wall_us());
	/* magic last: a reader that sees it sees an initialised header */
	atomic_thread_fence(memory_order_release);
	shm->hdr->magic = NP_SHM_MAGIC;
	return 0;
}

int shm_adopt(struct np_shm *shm, uint32_t *layout)
{
	uint64_t magic = 0, hsize = 0;
	uint32_t lay = 0;
	*layout = 0;
	if (!shm->locked) {
		errno = EBADF;
		return -1;
	}
	int fd = shm->lock_fd;
	if (pread(fd, &magic, sizeof(magic), (off_t)offsetof(struct np_shm_header, magic)) != (ssize_t)sizeof(magic) ||
	    pread(fd, &lay, sizeof(lay), (off_t)offsetof(struct np_shm_header, layout)) != (ssize_t)sizeof(lay) ||
	    pread(fd, &hsize, sizeof(hsize), (off_t)offsetof(struct np_shm_header, size)) != (ssize_t)sizeof(hsize))
		magic = 0;
	size_t size = shm_layout_size();
	struct stat st;
	if (magic == NP_SHM_MAGIC)
		*layout = lay;
	if (magic != NP_SHM_MAGIC || lay != NP_SHM_LAYOUT || hsize != size || fstat(fd, &st) < 0 || (size_t)st.st_size != size) {
		errno = EPROTO;
		return -1;
	}
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return -1;
	shm_bind(shm, base, size);
	shm->file_backed = true;
	return 0;
}

int shm_next_path(char *buf, size_t size, const char *status_file)
{
	int n = snprintf(buf, size, "%s.next", status_file);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int shm_attach_readonly(struct np_shm *shm, const char *path)
{
	memset(shm, 0, sizeof(*shm));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size != shm_layout_size()) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED)
		return -1;
	shm_bind(shm, base, (size_t)st.st_size);
	if (shm->hdr->magic != NP_SHM_MAGIC || shm->hdr->layout != NP_SHM_LAYOUT) {
		munmap(base, (size_t)st.st_size);
		memset(shm, 0, sizeof(*shm));
		errno = EINVAL;
		return -1;
	}
	shm->file_backed = true;
	return 0;
}

void shm_detach(struct np_shm *shm)
{
	if (shm->hdr)
		munmap(shm->hdr, shm->size);
	if (shm->locked)
		close(shm->lock_fd); /* releases the instance lock (once no child shares it) */
	memset(shm, 0, sizeof(*shm));
}

/* The per-request fields a child writes about the request in hand: a child killed in the middle
 * of one leaves them set. The cumulative counters (requests aside, reset on assign) stay: the
 * supervisor's breaker and the status totals sum them across slots. An ask worker's answer id
 * and a cancel of it go too: a stale id in a reclaimed slot made a cancel answer "stopping" for
 * an answer nobody made any more. */
static void shm_slot_clear_request(struct np_slot *s)
{
	atomic_store(&s->waiting, 0);
	atomic_store(&s->req_start_us, 0);
	atomic_store(&s->ask_answer_id, 0);
	atomic_store(&s->ask_cancel_id, 0);
	memset(s->route, 0, sizeof(s->route));
}

int shm_slot_assign(struct np_shm *shm, enum np_slot_kind kind, uint32_t generation)
{
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		struct np_slot *s = &shm->slots[i];
		if (atomic_load(&s->kind) != NP_KIND_NONE)
			continue;
		/* two masters assign slots during a binary upgrade: the slot is taken by CAS of its
		 * state FREE -> STARTING (a reclaim writes FREE last) */
		uint32_t free_state = NP_SLOT_FREE;
		if (!atomic_compare_exchange_strong(&s->state, &free_state, NP_SLOT_STARTING))
			continue;
		/* initialise every field before the slot is seen as used (php-src GH-18595) */
		atomic_store(&s->pid, 0);
		atomic_store(&s->generation, generation);
		atomic_store(&s->started_us, util_wall_us());
		shm_slot_clear_request(s);
		atomic_store(&s->state, NP_SLOT_STARTING);
		atomic_store(&s->requests, 0);
		atomic_store(&s->errors_4xx, 0);
		atomic_store(&s->errors_5xx, 0);
		atomic_store(&s->kind, (uint32_t)kind);
		return i;
	}
	return -1;
}

void shm_slot_reclaim(struct np_shm *shm, int idx)
{
	struct np_slot *s = &shm->slots[idx];
	/* the child is dead: what it said about its request in flight is no longer true; a
	 * `waiting` left at 1 would count against max_waiters for ever */
	shm_slot_clear_request(s);
	atomic_store(&s->pid, 0);
	atomic_store(&s->kind, NP_KIND_NONE);
	atomic_store(&s->state, NP_SLOT_FREE); /* last: the slot may be assigned from here on */
}

const char *shm_state_name(uint32_t state)
{
	switch (state) {
	case NP_SLOT_FREE: return "free";
	case NP_SLOT_STARTING: return "starting";
	case NP_SLOT_IDLE: return "idle";
	case NP_SLOT_BUSY: return "busy";
	case NP_SLOT_READING: return "reading";
	case NP_SLOT_EXITING: return "exiting";
	default: return "unknown";
	}
}

const char *shm_kind_name(uint32_t kind)
{
	switch (kind) {
	case NP_KIND_WORKER: return "worker";
	case NP_KIND_SUPERVISOR: return "supervisor";
	case NP_KIND_ASK: return "ask";
	default: return "none";
	}
}

int shm_pool_alive(const struct np_shm *shm, enum np_slot_kind kind)
{
	int n = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++)
		if (atomic_load(&shm->slots[i].kind) == (uint32_t)kind && atomic_load(&shm->slots[i].pid) > 0)
			n++;
	return n;
}

int shm_pool_configured(const struct np_shm *shm, enum np_slot_kind kind)
{
	switch (kind) {
	case NP_KIND_WORKER: return atomic_load(&shm->hdr->configured_workers);
	case NP_KIND_SUPERVISOR: return 1;
	case NP_KIND_ASK: return atomic_load(&shm->hdr->configured_ask_workers);
	default: return 0;
	}
}

bool shm_ask_permit_reclaim(struct np_shm *shm, pid_t pid)
{
	bool freed = false;
	for (int i = 0; i < NP_ASK_PERMITS; i++) {
		int32_t held = (int32_t)pid;
		if (atomic_compare_exchange_strong(&shm->hdr->ask_tx_owner[i], &held, 0))
			freed = true;
	}
	return freed;
}
