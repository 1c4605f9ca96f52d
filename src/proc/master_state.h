/* SPDX-License-Identifier: PostgreSQL */
/* master_state.h - private to master*.c: the master's state (one instance, master_state), its
 * children's table and pools, and what master.c (the start, the loop, reload) and
 * master_children.c (forking, reaping, respawning, signalling and stopping the children) share. */
#ifndef NP_MASTER_STATE_H
#define NP_MASTER_STATE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "listen.h"
#include "shm.h"

#define MASTER_TICK_MS 200
#define MASTER_BACKOFF_FIRST_MS 100    /* a pool's backoff: 100 ms, doubling to respawn_backoff_max_ms */
#define MASTER_STOP_CHECK_MIN_MS 50    /* a stop re-checks and re-signals 50 ms after it began, */
#define MASTER_STOP_CHECK_MAX_MS 1000  /* then doubling to 1 s apart (nginx's stop timer) */
/* a retiring supervisor finishes its tick (a probe: connect <= 2 s, then close) and leaves;
 * past this it is killed, so that its successor can start */
#define MASTER_SUPERVISOR_RETIRE_MS 5000
#define MASTER_NOTIFY_STATUS_MS 5000   /* STATUS= to the service manager: on a change, else this often */

enum { STOP_NONE = 0, STOP_GRACEFUL, STOP_FAST };

struct master_child {
	pid_t pid;             /* 0: slot unused */
	int kind;              /* enum np_slot_kind */
	uint32_t generation;
	bool retiring;         /* asked to leave (reload or stop) */
	int64_t retire_ms;     /* when it was asked to leave */
	bool killed;           /* escalated to SIGKILL */
	int64_t started_ms;    /* when it was forked: a death younger than respawn_stable_ms is a bad start */
};

/* The respawn policy of one pool (the workers, the supervisor, the ask workers): never stop,
 * back off when its children die young in a row (master_note_death()). */
struct master_pool {
	unsigned streak;       /* children that died younger than respawn_stable_ms, in a row */
	int64_t delay_ms;      /* the backoff now (0: replaced at once) */
	int64_t next_ms;       /* none of the pool is started before this */
	int64_t last_spawn_ms;
	bool died_since_spawn; /* a child died after the newest one was started */
};

/* The master's state: one instance, master_state (master.c). */
struct master_state {
	struct np_conf conf;
	const char *conf_path;
	struct np_listener listener;
	struct np_listener control;    /* control_listen, fd -1 when none */
	struct np_listener ask;        /* ask_listen (issue 9), fd -1 when none */
	struct np_shm shm;
	struct master_child kids[NP_MAX_SLOTS];
	uint32_t generation;
	int stopping;
	int64_t kill_at_ms;            /* fast stop: SIGKILL the rest at this time (0 = none) */
	int64_t graceful_until_ms;     /* graceful stop: becomes a fast stop at this time (0 = none) */
	int64_t stop_check_ms;         /* stopping: next check of the stop timer */
	int stop_delay_ms;             /* stopping: the timer's interval, doubling to the max */
	struct master_pool pools[NP_KIND_COUNT]; /* indexed by enum np_slot_kind */
	bool config_failed;            /* a child exited 2: respawning stopped */
	uid_t uid;
	gid_t gid;
	bool drop;
	sigset_t sigset;               /* the signals taken from sigfd */
	int sigfd;
	int wake[2];                   /* budget_wake() pipe, also published in the shm header */
	int exit_code;                 /* a failed start step's exit code (0: the default, 1) */
	/* the service manager (notify.c): READY=1 sent for this generation, the last STATUS= */
	bool notify_ready;
	int64_t notify_status_ms;
	char notify_status[256];
	int64_t watchdog_next_ms;
	/* the binary upgrade (master_upgrade.c) */
	char exe[512];                 /* this program's path, resolved at start: what SIGUSR2 runs */
	char conf_abs[512];            /* the configuration's path, absolute (a daemon runs in /) */
	struct {
		pid_t pid;                 /* old master: the new master while pending (0: none) */
		int fd;                    /* old: the ready pipe's reading end; new: its writing end */
		int64_t started_ms;
		int64_t deadline_ms;       /* not ready by then: rolled back */
		int64_t kill_ms;           /* rolling back: SIGKILL the new master at this time (0: none) */
		char why[200];             /* rolling back: the reason, logged once the new master is gone */
		bool rolling_back;
		bool handed_over;          /* old master: the new one took over; leave shared things alone */
		bool successor;            /* new master: started by an upgrade */
		bool ready_sent;           /* new master: told the old one its workers accept */
		pid_t old_pid;             /* new master: the master that started it */
		bool sweep;                /* slots of another master's children may be left to reclaim */
		/* an upgrade to a build whose shared-memory layout differs: the new master makes a
		 * region of its own (status_file + ".next", renamed over status_file when it is ready)
		 * and the old master gives it, over the grant pipe, each token its generation frees */
		int grant_fd;              /* old: the grant pipe's writing end (-1: none) */
		int grant_in;              /* new: its reading end, while tokens may still come (-1) */
		bool granting;             /* old: the new master has a region of its own: give it tokens */
		bool reclaim_given;        /* old, rolled back: take the given tokens back once the other
		                            * generation is gone (its region's lock is free) */
		bool separate;             /* new: this master's region is its own */
		bool grants_done;          /* new: the old generation gave its last token */
		int old_lock_fd;           /* new, separate: the running instance's region (and lock) */
		uint32_t old_generation;   /* new: the old master's generation */
		char next_path[4096];      /* the new region's path until it is ready */
	} up;
};

extern struct master_state master_state;

/* master_children.c: counting the children (of a kind, of the current generation only), the
 * pools' published state and backoff, forking what is missing, reaping, signalling, stopping. */
int master_count(int kind, bool current_only);
int master_count_all(void);
void master_publish_pool(int kind);
void master_publish_budget(void);
void master_note_death(int kind, int64_t age_ms, const char *kv);
void master_fill(void);
int64_t master_backoff_wait(int64_t now, int64_t wait_ms);
void master_signal_all(int sig, bool old_only);
void master_reap(void);
void master_begin_stop(int how);
int64_t master_stop_timer(int64_t now, int64_t wait_ms);

/* master_upgrade.c: the binary upgrade. Old master: start it (SIGUSR2), abort it, see the new
 * master's readiness on the pipe or its death, hand over or roll back. New master: take what
 * the old one handed over, tell it when its workers accept. */
void master_upgrade_init_paths(void);
int master_upgrade_successor_init(void);
int master_upgrade_adopt_shm(void);
void master_upgrade_start(void);
void master_upgrade_abort(const char *why);
bool master_upgrade_reaped(pid_t pid, int status);
void master_upgrade_on_pipe(void);
int64_t master_upgrade_tick(int64_t now, int64_t wait_ms);
bool master_upgrade_supervisor_elsewhere(void);
/* Old master, its last children reaped, about to exit: give a new master with a region of its
 * own the rest of the tokens and say it was the last. */
void master_upgrade_before_exit(void);
/* New master: its region is its own (the old one's layout differed); the wake pipe is new. */
bool master_upgrade_separate(void);
const char *master_upgrade_refusal(void);

#endif
