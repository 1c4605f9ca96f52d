/* SPDX-License-Identifier: PostgreSQL */
/* shm.h - the shared-memory region: header and worker slots, one writer per field. */
#ifndef NP_SHM_H
#define NP_SHM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "metrics.h"
#include "ratelimit.h"

#define NP_SHM_MAGIC 0x4e50534d31000000ULL /* "NPSM1" */
#ifndef NP_SHM_LAYOUT_TEST_SHIFT
/* bench/upgrade.sh builds a copy with 1: another layout number and 128 more bytes in the header
 * (every field after master_pid moves), to upgrade to a build of another layout for real */
#define NP_SHM_LAYOUT_TEST_SHIFT 0
#endif
#define NP_SHM_LAYOUT (12 + NP_SHM_LAYOUT_TEST_SHIFT) /* 4: per-pool respawn state; 5: two more error names, the ask.tx route id; 6: the reload outcome; 7: the ask sweep; 8: the content generation; 9: LLM histograms, rate_limited, the ask rate table, the binary upgrade; 10: the tokens given across an upgrade to another layout; 11: the cross-host cancel check, one warm-up ping per host; 12: NP_ASK_PERMITS permits for the ask pool's transactions */
/* The ask pool's transactions in flight in the main pool at once (doc/design.md, "The ask pool's
 * transactions"): one was the bottleneck under a saturating read load, where each waits its turn
 * in the main pool's backlog (0.5 s and more) while holding the only permit. */
#define NP_ASK_PERMITS 4
#define NP_MAX_SLOTS (2 * NP_MAX_WORKERS + 8)

enum np_slot_state {
	NP_SLOT_FREE = 0,  /* nobody; the master may assign it */
	NP_SLOT_STARTING,  /* assigned by the master before fork; the child has not run yet */
	NP_SLOT_IDLE,      /* waiting for a request */
	NP_SLOT_BUSY,      /* serving a request */
	NP_SLOT_EXITING,   /* leaving cleanly (stop, reload, master gone) */
	NP_SLOT_READING,   /* reading a request (params, body): busy, counted with BUSY */
};

/* A worker inside a request, reading it or serving it. */
static inline bool shm_state_busy(uint32_t state)
{
	return state == NP_SLOT_BUSY || state == NP_SLOT_READING;
}

/* NP_KIND_ASK: a worker of the ask pool (issue 9: ask_listen, ask_workers) */
enum np_slot_kind { NP_KIND_NONE = 0, NP_KIND_WORKER, NP_KIND_SUPERVISOR, NP_KIND_ASK, NP_KIND_COUNT };

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
	/* the child: database outcomes per endpoint, read by the supervisor's breaker and views */
	_Atomic uint64_t db_ok[2];        /* successful connects and queries */
	_Atomic uint64_t db_fail[2];      /* failed connects, lost connections, client-side timeouts */
	_Atomic uint32_t db_last_class[2];/* enum np_db_class of the last failure */
	_Atomic uint32_t db_last_kind[2]; /* enum np_errkind of the last failure (errclass.h): the reason */
	_Atomic int32_t server_max_conn[2]; /* SHOW max_connections, read after a connect (0 unknown) */
	_Atomic int32_t server_reserved[2]; /* superuser_reserved_connections */
	_Atomic uint64_t server_url_hash[2]; /* util_hash64 of the URL those limits were read from */
	_Atomic int64_t server_limits_us[2]; /* wall clock of that connect: the newest slot wins */
	_Atomic uint32_t waiting;         /* 1 while waiting for a connection with a request in hand */
	_Atomic int64_t db_last_request_us; /* wall clock of the last request that used the database */
	_Atomic uint64_t shed_503;        /* requests answered 503 db_busy / db_unavailable */
	_Atomic uint64_t connects;        /* connections opened */
	/* the child: FastCGI connections it closed before a request (issue 6, defect 1) */
	_Atomic uint64_t peers_refused;   /* peer not in listen_allowed_clients */
	_Atomic uint64_t read_timeouts;   /* request not read within request_read_timeout_ms */
	_Atomic uint64_t bad_requests;    /* malformed records, params over max_params_bytes */
	/* an ask worker (issue 9): the answer it is making (the child writes), and a cancel of it
	 * (written by whichever worker serves the cancel: only ever set to that answer's id) */
	_Atomic int64_t ask_answer_id;    /* 0 when none */
	_Atomic int64_t ask_cancel_id;
	/* the child (api_cache.c): the content generation it last read from the primary and when
	 * (monotonic us), under cache_seq (odd while it writes; a reader retries or skips the slot),
	 * and when it last answered a content route (monotonic ms) */
	_Atomic uint32_t cache_seq;
	_Atomic int64_t cache_gen;
	_Atomic int64_t cache_checked_us;
	_Atomic int64_t cache_asked_ms;
} __attribute__((aligned(128)));

/* Endpoints: the primary and an optional read replica, each with its own budget. */
enum np_endpoint { NP_EP_PRIMARY = 0, NP_EP_REPLICA = 1, NP_EP_COUNT = 2 };

/* Token phases. A token's fields are written only by whoever its owner word names: the owner;
 * the master for a dead owner (reap, keeper); the janitor once it swapped the owner to itself.
 * The owner word goes to 0 last, so a lost race never writes over the next owner's state. */
enum np_token_phase {
	NP_TOK_FREE = 0,
	NP_TOK_CONNECTING,   /* the owner is opening a server connection */
	NP_TOK_CONNECTED,    /* a live server connection */
	NP_TOK_CLOSING,      /* closed by us; waiting for the server to close its side */
	NP_TOK_ORPHANED,     /* the owner died; freed by the supervisor at free_after_us */
	NP_TOK_GIVEN,        /* given to a new generation with a region of its own (owner NP_TOKEN_GIVEN) */
};
/* The owner word of a token given away during an upgrade to a build whose shared-memory layout
 * differs (master_upgrade.c): no process holds it here, the other region's generation may. */
#define NP_TOKEN_GIVEN (-2)

/* One unit of the connection budget. `owner` is the lock word: 0 free, else the holder's pid,
 * taken with compare-and-swap 0 -> pid; so the number of server connections is at most the
 * number of tokens, by construction. */
struct np_token {
	_Atomic int32_t owner;
	_Atomic uint32_t phase;
	_Atomic int32_t slot;
	_Atomic int32_t backend_pid;
	_Atomic int64_t since_us;         /* wall clock of the last phase change */
	_Atomic int64_t busy_until_us;    /* client-side deadline of the statement in flight, 0 idle */
	_Atomic int64_t free_after_us;    /* ORPHANED: when the supervisor may free it */
	int32_t pad;
} __attribute__((aligned(64)));

enum np_breaker { NP_BREAKER_CLOSED = 0, NP_BREAKER_OPEN };
enum np_health { NP_HEALTH_STARTING = 0, NP_HEALTH_UP, NP_HEALTH_DEGRADED, NP_HEALTH_DOWN };

struct np_endpoint_shm {
	/* master */
	_Atomic uint32_t configured;      /* budget from the configuration (0: endpoint unused) */
	_Atomic int32_t connect_permits[64]; /* connects in flight: 0 free, else the pid (CAS) */
	/* supervisor */
	_Atomic uint32_t limit;           /* effective budget: configured, or clamped to the server */
	_Atomic uint32_t granted;         /* while hdr->grant_active: the tokens the old generation gave */
	_Atomic uint32_t breaker;         /* enum np_breaker */
	_Atomic uint32_t health;          /* enum np_health */
	_Atomic int64_t health_since_us;
	_Atomic uint32_t shed;            /* 1: no holder can take requests; spares accept and answer */
	_Atomic int32_t server_max_conn;
	_Atomic int32_t server_reserved;
	_Atomic uint64_t breaker_opened_total;
	char reason[128];                 /* why not up: short, lowercase, no secret */
	/* tokens: the owner writes its token; the master orphans a dead owner's; the supervisor
	 * frees orphans after taking them by CAS */
	struct np_token tokens[NP_MAX_BUDGET];
};

/* Latency of one route over a window (supervisor): requests and percentiles of its total. */
struct np_window {
	_Atomic uint64_t count;
	_Atomic uint32_t p50_us, p95_us, p99_us;
};
enum { NP_WIN_1M = 0, NP_WIN_5M = 1, NP_WIN_COUNT = 2 };

/* The respawn backoff of one pool (master): children of the pool that died young in a row make
 * the next replacements wait, doubling up to respawn_backoff_max_ms; the pool's live children
 * serve meanwhile. */
struct np_respawn {
	_Atomic uint32_t delay_ms;        /* the pool's replacements wait this long after a death (0: at once) */
	_Atomic uint32_t streak;          /* its children that died younger than respawn_stable_ms, in a row */
	_Atomic int64_t next_us;          /* wall clock before which none is started (0: none waits) */
	_Atomic uint64_t deaths_total;    /* its children that died unclean */
};

/* Header. Writers: the master writes the identity fields and generation; the supervisor writes
 * the aggregate view (sup_*). */
struct np_shm_header {
	uint64_t magic;
	uint32_t layout;
	uint32_t nslots;
	uint64_t size;
	_Atomic int32_t master_pid;
#if NP_SHM_LAYOUT_TEST_SHIFT
	char test_shift[128 * NP_SHM_LAYOUT_TEST_SHIFT];
#endif
	_Atomic uint32_t generation;
	_Atomic int64_t started_us;
	_Atomic int32_t configured_workers;
	/* the ask pool's permits for its short transactions (run by the main pool, NP_ASK_PERMITS at
	 * a time): 0 free, else the pid of the ask worker holding it (CAS 0 -> pid and back by the
	 * holder; the master frees a dead holder's when it reaps it: shm_ask_permit_reclaim) */
	_Atomic int32_t ask_tx_owner[NP_ASK_PERMITS];
	/* the sweep of answers past their lease (api_ask_sweep()): when it is next due (monotonic
	 * ms); a worker holding a connection takes a due sweep by CAS to the next due time */
	_Atomic int64_t ask_sweep_due_ms;
	/* the check for answers this host streams that another host finished (a cancel that landed
	 * there): when it is next due (monotonic ms), taken like the sweep; only while one streams */
	_Atomic int64_t ask_check_due_ms;
	/* the warm-up ping (db_maintain()): when the host's next one may be sent (monotonic ms): one
	 * ping per host per warmup_interval_s, whichever idle holder takes it by CAS */
	_Atomic int64_t warm_ping_due_ms;
	/* the content generation's refresh (api_cache_refresh()): when it is next due (monotonic
	 * ms); a worker holding a connection takes a due refresh by CAS to the next due time */
	_Atomic int64_t cache_refresh_due_ms;
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
	_Atomic int32_t configured_ask_workers; /* 0 without ask_listen */
	struct np_respawn respawn[NP_KIND_COUNT]; /* per pool, indexed by enum np_slot_kind */
	int32_t wake_fd[2];               /* master: pipe; a released token writes a byte to wake spares */
	/* master: the outcome of the last reload (SIGHUP), for `neonpoolctl reload`: reload_error is
	 * written first ("" when accepted), then reload_seq counts the attempt */
	char reload_error[384];
	_Atomic uint32_t reload_seq;      /* reloads attempted, accepted or refused */
	_Atomic uint32_t reloads_refused; /* of those, refused (the running configuration stayed) */
	/* the binary upgrade (master_upgrade.c), written by the master that started it (the old
	 * one) until it hands over: workers of generation release_gen or older close their server
	 * connection after each request, so that the new generation's workers take the tokens */
	_Atomic uint32_t release_gen;     /* 0: none */
	/* a new master whose layout differs from the running one's made this region its own: the
	 * budget is capped at each endpoint's `granted` (the tokens the old generation gave, one by
	 * one, over a pipe) until the old generation is gone and gave the last (master_upgrade.c) */
	_Atomic uint32_t grant_active;
	_Atomic int32_t upgrade_pid;      /* the new master while an upgrade is pending (0: none) */
	_Atomic int64_t upgrade_started_us;
	_Atomic uint64_t upgrades_ok;     /* upgrades handed over (counted by the old master) */
	_Atomic uint64_t upgrades_rolled_back;
	_Atomic uint32_t upgrade_seq;     /* upgrades that ended, ok or rolled back: written after upgrade_last */
	char upgrade_last[256];           /* the last upgrade's outcome, for `neonpoolctl upgrade` */
	/* master, before the first fork: the metrics route ids' names (metrics.h) */
	char route_names[NP_MROUTES][48];
	/* supervisor: latency windows as differences of snapshots, under a sequence count (odd while
	 * it writes; a reader retries when it changed or is odd) */
	_Atomic uint32_t sup_win_seq;
	_Atomic int64_t sup_win_us;       /* wall clock of the newest snapshot */
	_Atomic int32_t sup_win_span_s[NP_WIN_COUNT]; /* seconds the window really covers (short after a start) */
	struct np_window sup_win[NP_WIN_COUNT][NP_MROUTES];
	struct np_endpoint_shm ep[NP_EP_COUNT];
	/* any worker (ratelimit.c, compare-and-swap only): asks per session (ask_rate_per_session) */
	struct np_rate_entry ask_rate[NP_RATE_ENTRIES];
} __attribute__((aligned(128)));

struct np_shm {
	struct np_shm_header *hdr;
	struct np_slot *slots;
	struct np_mrow *mrows;            /* one metrics row per slot (metrics.h), after the slots */
	size_t size;
	bool file_backed;
	bool locked;                      /* lock_fd holds the instance lock (shm_lock) */
	int lock_fd;
};

/* The region a new master of another layout makes during an upgrade: status_file + ".next",
 * renamed over status_file when it is ready (master_upgrade.c). 0, or -1 when it does not fit. */
int shm_next_path(char *buf, size_t size, const char *status_file);

/* Master, before it touches anything: open (creating) the status file at path and take an
 * exclusive flock on it, held until shm_detach() (forked children share it, so the lock lasts
 * while any process of this instance may still use the region). Returns 0; -1 with errno
 * EWOULDBLOCK when another instance holds it (*holder: its master's pid, 0 when unknown); -1
 * with errno otherwise (ELOOP: path is a symlink, never followed). Never truncates nor unlinks. */
int shm_lock(struct np_shm *shm, const char *path, pid_t *holder);
/* Create (master, before the first fork) a zeroed region: file-backed at path, else anonymous.
 * A file is truncated only under the lock: taken here unless shm_lock() already took it.
 * Returns 0 or -1 (errno set; EWOULDBLOCK: another instance holds the file). */
int shm_create(struct np_shm *shm, const char *path);
/* How many metrics rows a reader scans: up to the highest slot ever assigned (the rows after it
 * were never written). */
int shm_mrows_end(const struct np_shm *shm);
/* A new master in a binary upgrade: map the region the old master's instance lock (already in
 * shm: locked, lock_fd) holds, read-write and unchanged, after checking that it is one of this
 * layout (magic, NP_SHM_LAYOUT, size). Returns 0, or -1 with errno (EPROTO: another layout;
 * the old one is in *layout when known). */
int shm_adopt(struct np_shm *shm, uint32_t *layout);
/* Map an existing region read-only (CLI). Returns 0, or -1 with errno (EINVAL: not ours). */
int shm_attach_readonly(struct np_shm *shm, const char *path);
/* Unmap; and release the instance lock if held (unlink the file before, if it is to go). */
void shm_detach(struct np_shm *shm);

/* Master: find a free slot, mark it STARTING with kind and generation. Returns index or -1. */
int shm_slot_assign(struct np_shm *shm, enum np_slot_kind kind, uint32_t generation);
/* Master: after the child it ran has been reaped; returns the slot to FREE. */
void shm_slot_reclaim(struct np_shm *shm, int idx);

const char *shm_state_name(uint32_t state);
/* "worker", "supervisor", "ask": a pool's name in /status and the metrics' labels. */
const char *shm_kind_name(uint32_t kind);
/* Children of a pool alive now (slots of that kind naming a pid), counted from the slots. */
int shm_pool_alive(const struct np_shm *shm, enum np_slot_kind kind);
/* Children the pool should have (workers, 1 supervisor, ask_workers or 0). */
int shm_pool_configured(const struct np_shm *shm, enum np_slot_kind kind);
/* Master, right after reaping pid (before it can fork again, so before any of its children can be
 * given that pid): frees the ask pool's permit if pid died holding it. Whether it did. */
bool shm_ask_permit_reclaim(struct np_shm *shm, pid_t pid);

#endif
