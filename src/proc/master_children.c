/* SPDX-License-Identifier: PostgreSQL */
/* master_children.c - the master's children: forking them (privileges dropped), reaping them and
 * reclaiming what a dead one held, respawning with a per-pool backoff when they die young, and
 * signalling them, including the stop's escalation (graceful, then fast, then SIGKILL). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asktx.h"
#include "budget.h"
#include "child.h"
#include "keeper.h"
#include "listen.h"
#include "api.h"
#include "log.h"
#include "master.h"
#include "master_state.h"
#include "notify.h"
#include "shm.h"
#include "supervisor.h"
#include "util.h"
#include "version.h"
#include "worker.h"


static int master_drop_privileges(void)
{
	if (!master_state.drop)
		return 0;
	if (setgroups(0, NULL) < 0 || setgid(master_state.gid) < 0 || setuid(master_state.uid) < 0) {
		log_error("cannot drop privileges to user '%s': %s", master_state.conf.user, strerror(errno));
		return -1;
	}
	return 0;
}

/* In a new child: keep only the descriptors it uses. Every child: stdio, the log, the instance
 * lock on the status file (shared so that it lasts while any process of this instance may use
 * the region), the wake pipe's writing end (it frees tokens) and the keeper's sending end. A
 * worker also: the wake pipe's reading end and the listen and control sockets. */
static void master_init_child(int kind)
{
	int keep[] = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, log_fileno(), keeper_init_child(), master_state.wake[1],
	               master_state.shm.locked ? master_state.shm.lock_fd : -1,
	               kind == NP_KIND_WORKER || kind == NP_KIND_ASK ? master_state.wake[0] : -1,
	               kind == NP_KIND_WORKER ? master_state.listener.fd : -1,
	               kind == NP_KIND_WORKER ? master_state.control.fd : -1,
	               kind == NP_KIND_ASK ? master_state.ask.fd : -1 };
	if (child_close_fds_except(keep, (int)(sizeof(keep) / sizeof(keep[0]))) < 0)
		log_warn("cannot close the master's descriptors in a child: %s", strerror(errno));
	master_state.sigfd = -1;
	if (kind != NP_KIND_WORKER) {
		if (kind != NP_KIND_ASK)
			master_state.wake[0] = -1; /* the header keeps the number: only workers read it */
		master_state.listener.fd = master_state.control.fd = -1;
	}
	if (kind != NP_KIND_ASK)
		master_state.ask.fd = -1;
}

static int master_spawn(int kind)
{
	int idx = shm_slot_assign(&master_state.shm, kind, master_state.generation);
	if (idx < 0) {
		log_warn("no free slot for a new child; will retry");
		return -1;
	}
	pid_t master_pid = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork failed: %s", strerror(errno));
		shm_slot_reclaim(&master_state.shm, idx);
		return -1;
	}
	if (pid == 0) {
		master_init_child(kind);
		if (master_drop_privileges() < 0)
			_exit(2);
		if (kind == NP_KIND_WORKER)
			worker_main(&master_state.conf, &master_state.shm, idx, master_state.listener.fd, master_state.control.fd, master_pid);
		if (kind == NP_KIND_ASK)
			worker_main(&master_state.conf, &master_state.shm, idx, master_state.ask.fd, -1, master_pid);
		supervisor_main(&master_state.conf, &master_state.shm, idx, master_pid);
	}
	int64_t now = util_now_ms();
	master_state.kids[idx] = (struct master_child){ .pid = pid, .kind = kind, .generation = master_state.generation, .started_ms = now };
	master_state.pools[kind].last_spawn_ms = now;
	master_state.pools[kind].died_since_spawn = false;
	atomic_store(&master_state.shm.slots[idx].pid, (int32_t)pid);
	if (kind == NP_KIND_SUPERVISOR) {
		char kv[96];
		snprintf(kv, sizeof(kv), " slot=%d child_pid=%d generation=%u", idx, (int)pid, master_state.generation);
		log_kv(NP_LOG_INFO, kv, "supervisor started");
	}
	return 0;
}

int master_count(int kind, bool current_only)
{
	int n = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		const struct master_child *k = &master_state.kids[i];
		if (k->pid && k->kind == kind && (!current_only || (!k->retiring && k->generation == master_state.generation)))
			n++;
	}
	return n;
}

int master_count_all(void)
{
	return master_count(NP_KIND_WORKER, false) + master_count(NP_KIND_SUPERVISOR, false) +
	       master_count(NP_KIND_ASK, false);
}

/* A supervisor asked to leave that is still there past MASTER_SUPERVISOR_RETIRE_MS is killed:
 * its successor waits for it. */
static void master_supervisor_deadline(void)
{
	int64_t now = util_now_ms();
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		struct master_child *k = &master_state.kids[i];
		if (!k->pid || k->kind != NP_KIND_SUPERVISOR || !k->retiring || k->killed ||
		    now - k->retire_ms < MASTER_SUPERVISOR_RETIRE_MS)
			continue;
		log_warn("supervisor pid %d (generation %u) did not leave within %d ms; killing it", (int)k->pid,
		         k->generation, MASTER_SUPERVISOR_RETIRE_MS);
		kill(k->pid, SIGKILL);
		k->killed = true;
	}
}

/* Publish a pool's backoff for /readyz, /status and the metrics (the master is its one writer). */
void master_publish_pool(int kind)
{
	const struct master_pool *p = &master_state.pools[kind];
	struct np_respawn *r = &master_state.shm.hdr->respawn[kind];
	int64_t wait = p->next_ms - util_now_ms();
	atomic_store(&r->delay_ms, (uint32_t)p->delay_ms);
	atomic_store(&r->streak, p->streak);
	atomic_store(&r->next_us, wait > 0 ? util_wall_us() + wait * 1000 : 0);
}

/* The delay after `streak` young deaths in a row: the first is replaced at once (one early
 * death is as likely a kill as a bad start), then 100 ms doubling to respawn_backoff_max_ms. */
static int64_t master_backoff_ms(unsigned streak)
{
	if (streak <= 1 || master_state.conf.respawn_backoff_max_ms <= 0)
		return 0;
	int64_t d = (int64_t)MASTER_BACKOFF_FIRST_MS << (streak - 2 > 20 ? 20 : streak - 2);
	return d < master_state.conf.respawn_backoff_max_ms ? d : master_state.conf.respawn_backoff_max_ms;
}

/* A child of `kind` died unclean at `age_ms`. One that had started well (lived
 * respawn_stable_ms) is replaced at once, or when a backoff already running ends: its death says
 * nothing about starts. One that died young makes the pool's replacements wait longer.
 * Respawning never stops; the live children serve meanwhile. */
void master_note_death(int kind, int64_t age_ms, const char *kv)
{
	struct master_pool *p = &master_state.pools[kind];
	int64_t now = util_now_ms(), before = p->delay_ms;
	atomic_fetch_add(&master_state.shm.hdr->crashes_total, 1);
	atomic_fetch_add(&master_state.shm.hdr->respawn[kind].deaths_total, 1);
	p->died_since_spawn = true;
	if (age_ms >= master_state.conf.respawn_stable_ms) {
		master_publish_pool(kind);
		return;
	}
	p->streak++;
	p->delay_ms = master_backoff_ms(p->streak);
	p->next_ms = now + p->delay_ms;
	master_publish_pool(kind);
	if (p->delay_ms > 0)
		log_kv(before < p->delay_ms ? NP_LOG_WARN : NP_LOG_INFO, kv,
		       "respawn backoff: %u children of the %s pool died within %d ms of their start in a row; "
		       "the next starts in %lld ms (at most %d ms), the %d alive serve meanwhile",
		       p->streak, shm_kind_name((uint32_t)kind), master_state.conf.respawn_stable_ms, (long long)p->delay_ms,
		       master_state.conf.respawn_backoff_max_ms, master_count(kind, false));
}

/* A pool whose newest child has lived respawn_stable_ms with no death since started well:
 * its backoff ends. */
static void master_pools_settle(void)
{
	int64_t now = util_now_ms();
	for (int kind = 1; kind < NP_KIND_COUNT; kind++) {
		struct master_pool *p = &master_state.pools[kind];
		if (p->streak == 0 || p->died_since_spawn ||
		    now - p->last_spawn_ms < master_state.conf.respawn_stable_ms)
			continue;
		if (p->delay_ms > 0)
			log_info("respawn backoff of the %s pool ended: a new child lived %d ms",
			         shm_kind_name((uint32_t)kind), master_state.conf.respawn_stable_ms);
		p->streak = 0;
		p->delay_ms = 0;
		master_publish_pool(kind);
	}
}

/* The pool may start a child now (its backoff has passed). */
static bool master_pool_due(int kind, int64_t now)
{
	if (now < master_state.pools[kind].next_ms)
		return false;
	if (atomic_load(&master_state.shm.hdr->respawn[kind].next_us) != 0)
		master_publish_pool(kind);
	return true;
}

/* Bring the current generation to one supervisor and `workers` workers. Workers of two
 * generations may overlap during a reload; supervisors never do (the janitor, the breaker and
 * the shed flag have one writer, STYLE rule 7): a new supervisor starts only once every older
 * one has been reaped. Each pool waits for its own backoff only. */
void master_fill(void)
{
	if (!master_state.stopping)
		master_supervisor_deadline();
	if (master_state.stopping || master_state.config_failed)
		return;
	master_pools_settle();
	int64_t now = util_now_ms();
	if (master_count(NP_KIND_SUPERVISOR, false) == 0 && !master_upgrade_supervisor_elsewhere() &&
	    master_pool_due(NP_KIND_SUPERVISOR, now))
		master_spawn(NP_KIND_SUPERVISOR);
	while (master_count(NP_KIND_WORKER, true) < master_state.conf.workers && master_pool_due(NP_KIND_WORKER, now))
		if (master_spawn(NP_KIND_WORKER) < 0)
			break;
	while (master_state.ask.fd >= 0 && master_count(NP_KIND_ASK, true) < master_state.conf.ask_workers && master_pool_due(NP_KIND_ASK, now))
		if (master_spawn(NP_KIND_ASK) < 0)
			break;
}

/* How long the loop may sleep before a pool's backoff ends, at most wait_ms. */
int64_t master_backoff_wait(int64_t now, int64_t wait_ms)
{
	for (int kind = 1; kind < NP_KIND_COUNT; kind++) {
		int64_t next = master_state.pools[kind].next_ms;
		if (next > now && next - now < wait_ms)
			wait_ms = next - now;
	}
	return wait_ms;
}

void master_signal_all(int sig, bool old_only)
{
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		struct master_child *k = &master_state.kids[i];
		if (!k->pid || (old_only && k->generation == master_state.generation))
			continue;
		if ((old_only || sig != SIGUSR1) && !k->retiring) {
			k->retiring = true;
			k->retire_ms = util_now_ms();
		}
		kill(k->pid, sig);
	}
}

void master_reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (master_upgrade_reaped(pid, status))
			continue;
		int idx = -1;
		for (int i = 0; i < NP_MAX_SLOTS; i++)
			if (master_state.kids[i].pid == pid) {
				idx = i;
				break;
			}
		if (idx < 0)
			continue;
		struct master_child k = master_state.kids[idx];
		struct np_slot *slot = &master_state.shm.slots[idx];
		bool clean = atomic_load(&slot->state) == NP_SLOT_EXITING;
		const char *what = k.kind == NP_KIND_WORKER ? "worker" : k.kind == NP_KIND_ASK ? "ask worker" : "supervisor";
		char kv[128];
		snprintf(kv, sizeof(kv), " child=%s slot=%d child_pid=%d generation=%u", what, idx, (int)pid,
		         k.generation);

		/* reclaim what the child held before the slot can be reused: a token whose socket the
		 * keeper holds stays counted until the server closed it (keeper_poll frees it then); one
		 * without (the child died before handing its socket over) is freed by the supervisor's
		 * janitor orphan_grace_ms past the deadline of the statement it had in flight */
		int orphaned = keeper_on_death(&master_state.shm, pid);
		orphaned += budget_orphan_pid(&master_state.shm, pid, master_state.conf.orphan_grace_ms);
		if (orphaned > 0)
			log_kv(NP_LOG_INFO, kv, "reclaiming %d budget token(s) of a dead child", orphaned);
		if (shm_ask_permit_reclaim(&master_state.shm, pid))
			log_kv(NP_LOG_INFO, kv, "freeing the ask pool's permit a dead child held");
		shm_slot_reclaim(&master_state.shm, idx);
		master_state.kids[idx].pid = 0;

		if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
			master_state.config_failed = true;
			log_kv(NP_LOG_ERROR, kv, "child exited with a configuration error; not respawning");
		} else if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0) ||
		           (!clean && !k.retiring && !master_state.stopping)) {
			if (WIFSIGNALED(status))
				log_kv(NP_LOG_WARN, kv, "child killed by signal %d (%s)", WTERMSIG(status),
				       strsignal(WTERMSIG(status)));
			else
				log_kv(NP_LOG_WARN, kv, "child exited with status %d", WEXITSTATUS(status));
			if (!master_state.stopping && !k.retiring) {
				master_note_death(k.kind, util_now_ms() - k.started_ms, kv);
				atomic_fetch_add(&master_state.shm.hdr->respawns_total, 1);
			}
		} else {
			log_kv(k.kind == NP_KIND_SUPERVISOR ? NP_LOG_INFO : NP_LOG_DEBUG, kv, "child exited");
		}
	}
}

void master_publish_budget(void)
{
	atomic_store(&master_state.shm.hdr->ep[NP_EP_PRIMARY].configured, (uint32_t)master_state.conf.budget);
	atomic_store(&master_state.shm.hdr->ep[NP_EP_REPLICA].configured,
	             master_state.conf.replica_url[0] ? (uint32_t)master_state.conf.replica_budget : 0u);
}


void master_begin_stop(int how)
{
	if (master_state.stopping == STOP_FAST && how == STOP_FAST) {
		log_warn("second stop request: killing the children now");
		master_signal_all(SIGKILL, false);
		return;
	}
	if (master_state.stopping >= how)
		return;
	if (!master_state.stopping)
		notify_send("STOPPING=1\nSTATUS=stopping (%s)", how == STOP_FAST ? "fast" : "graceful");
	/* a stop of the service during an upgrade stops the new master too (it is not one of ours) */
	if (master_state.up.pid && !master_state.up.handed_over)
		kill(master_state.up.pid, how == STOP_FAST ? SIGTERM : SIGQUIT);
	master_state.stopping = how;
	int64_t now = util_now_ms();
	master_state.stop_delay_ms = MASTER_STOP_CHECK_MIN_MS;
	master_state.stop_check_ms = now + master_state.stop_delay_ms;
	if (how == STOP_FAST) {
		log_info("fast stop: in-flight requests get %d ms", master_state.conf.shutdown_timeout_ms);
		master_state.graceful_until_ms = 0;
		master_state.kill_at_ms = now + master_state.conf.shutdown_timeout_ms;
		master_signal_all(SIGTERM, false);
	} else {
		log_info("graceful stop: finishing in-flight requests (for at most %d ms)", master_state.conf.graceful_timeout_ms);
		master_state.graceful_until_ms = now + master_state.conf.graceful_timeout_ms;
		master_signal_all(SIGQUIT, false);
	}
}

/* The stop's escalation, run on every turn of the loop: a graceful stop becomes a fast one after
 * graceful_timeout_ms, a fast one kills the rest after shutdown_timeout_ms. Between, on a timer
 * of 50 ms doubling to 1 s (nginx), children still running are sent the stop signal again.
 * Returns how long the loop may sleep, at most wait_ms. */
int64_t master_stop_timer(int64_t now, int64_t wait_ms)
{
	if (!master_state.stopping)
		return wait_ms;
	if (master_state.graceful_until_ms && now >= master_state.graceful_until_ms) {
		log_warn("graceful_timeout reached: %d children still running; stopping them fast", master_count_all());
		master_begin_stop(STOP_FAST);
	}
	if (master_state.kill_at_ms && now >= master_state.kill_at_ms) {
		log_warn("shutdown_timeout reached: killing %d children", master_count_all());
		master_signal_all(SIGKILL, false);
		master_state.kill_at_ms = 0;
	}
	if (now >= master_state.stop_check_ms) {
		master_signal_all(master_state.stopping == STOP_FAST ? SIGTERM : SIGQUIT, false);
		master_state.stop_delay_ms = master_state.stop_delay_ms * 2 < MASTER_STOP_CHECK_MAX_MS ? master_state.stop_delay_ms * 2 : MASTER_STOP_CHECK_MAX_MS;
		master_state.stop_check_ms = now + master_state.stop_delay_ms;
	}
	int64_t next = master_state.stop_check_ms;
	if (master_state.graceful_until_ms && master_state.graceful_until_ms < next)
		next = master_state.graceful_until_ms;
	if (master_state.kill_at_ms && master_state.kill_at_ms < next)
		next = master_state.kill_at_ms;
	return next - now < wait_ms ? (next > now ? next - now : 0) : wait_ms;
}

