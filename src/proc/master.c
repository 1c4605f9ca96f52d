/* master.c - the prefork master: listen socket, shared memory, forking, reaping, signals, reload.
 *
 * The master handles signals synchronously (all blocked, read from a signalfd in its one poll()
 * loop) and keeps the children at the desired state: one supervisor and `workers` workers of the
 * current generation. master_run() is an init chain with one cleanup path. A reload bumps the
 * generation, forks the new children, then asks the old ones to finish their request and leave;
 * the listen socket never closes, so no request is refused meanwhile. */
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
#include "notify.h"
#include "shm.h"
#include "supervisor.h"
#include "util.h"
#include "version.h"
#include "worker.h"

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

static struct {
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
} M;

/* strerror, saying why for a symlink refused with O_NOFOLLOW (started as root, the master never
 * opens a path through a symlink: CVE-2016-1247) */
static const char *master_strerror(int e)
{
	return e == ELOOP ? "it is a symbolic link, which is never followed" : strerror(e);
}

/* ---- children --------------------------------------------------------------------------- */

static int master_drop_privileges(void)
{
	if (!M.drop)
		return 0;
	if (setgroups(0, NULL) < 0 || setgid(M.gid) < 0 || setuid(M.uid) < 0) {
		log_error("cannot drop privileges to user '%s': %s", M.conf.user, strerror(errno));
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
	int keep[] = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, log_fileno(), keeper_init_child(), M.wake[1],
	               M.shm.locked ? M.shm.lock_fd : -1,
	               kind == NP_KIND_WORKER || kind == NP_KIND_ASK ? M.wake[0] : -1,
	               kind == NP_KIND_WORKER ? M.listener.fd : -1,
	               kind == NP_KIND_WORKER ? M.control.fd : -1,
	               kind == NP_KIND_ASK ? M.ask.fd : -1 };
	if (child_close_fds_except(keep, (int)(sizeof(keep) / sizeof(keep[0]))) < 0)
		log_warn("cannot close the master's descriptors in a child: %s", strerror(errno));
	M.sigfd = -1;
	if (kind != NP_KIND_WORKER) {
		if (kind != NP_KIND_ASK)
			M.wake[0] = -1; /* the header keeps the number: only workers read it */
		M.listener.fd = M.control.fd = -1;
	}
	if (kind != NP_KIND_ASK)
		M.ask.fd = -1;
}

static int master_spawn(int kind)
{
	int idx = shm_slot_assign(&M.shm, kind, M.generation);
	if (idx < 0) {
		log_warn("no free slot for a new child; will retry");
		return -1;
	}
	pid_t master_pid = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork failed: %s", strerror(errno));
		shm_slot_reclaim(&M.shm, idx);
		return -1;
	}
	if (pid == 0) {
		master_init_child(kind);
		if (master_drop_privileges() < 0)
			_exit(2);
		if (kind == NP_KIND_WORKER)
			worker_main(&M.conf, &M.shm, idx, M.listener.fd, M.control.fd, master_pid);
		if (kind == NP_KIND_ASK)
			worker_main(&M.conf, &M.shm, idx, M.ask.fd, -1, master_pid);
		supervisor_main(&M.conf, &M.shm, idx, master_pid);
	}
	int64_t now = util_now_ms();
	M.kids[idx] = (struct master_child){ .pid = pid, .kind = kind, .generation = M.generation, .started_ms = now };
	M.pools[kind].last_spawn_ms = now;
	M.pools[kind].died_since_spawn = false;
	atomic_store(&M.shm.slots[idx].pid, (int32_t)pid);
	if (kind == NP_KIND_SUPERVISOR) {
		char kv[96];
		snprintf(kv, sizeof(kv), " slot=%d child_pid=%d generation=%u", idx, (int)pid, M.generation);
		log_kv(NP_LOG_INFO, kv, "supervisor started");
	}
	return 0;
}

static int master_count(int kind, bool current_only)
{
	int n = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		const struct master_child *k = &M.kids[i];
		if (k->pid && k->kind == kind && (!current_only || (!k->retiring && k->generation == M.generation)))
			n++;
	}
	return n;
}

static int master_count_all(void)
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
		struct master_child *k = &M.kids[i];
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
static void master_publish_pool(int kind)
{
	const struct master_pool *p = &M.pools[kind];
	struct np_respawn *r = &M.shm.hdr->respawn[kind];
	int64_t wait = p->next_ms - util_now_ms();
	atomic_store(&r->delay_ms, (uint32_t)p->delay_ms);
	atomic_store(&r->streak, p->streak);
	atomic_store(&r->next_us, wait > 0 ? util_wall_us() + wait * 1000 : 0);
}

/* The delay after `streak` young deaths in a row: the first is replaced at once (one early
 * death is as likely a kill as a bad start), then 100 ms doubling to respawn_backoff_max_ms. */
static int64_t master_backoff_ms(unsigned streak)
{
	if (streak <= 1 || M.conf.respawn_backoff_max_ms <= 0)
		return 0;
	int64_t d = (int64_t)MASTER_BACKOFF_FIRST_MS << (streak - 2 > 20 ? 20 : streak - 2);
	return d < M.conf.respawn_backoff_max_ms ? d : M.conf.respawn_backoff_max_ms;
}

/* A child of `kind` died unclean at `age_ms`. One that had started well (lived
 * respawn_stable_ms) is replaced at once, or when a backoff already running ends: its death says
 * nothing about starts. One that died young makes the pool's replacements wait longer.
 * Respawning never stops; the live children serve meanwhile. */
static void master_note_death(int kind, int64_t age_ms, const char *kv)
{
	struct master_pool *p = &M.pools[kind];
	int64_t now = util_now_ms(), before = p->delay_ms;
	atomic_fetch_add(&M.shm.hdr->crashes_total, 1);
	atomic_fetch_add(&M.shm.hdr->respawn[kind].deaths_total, 1);
	p->died_since_spawn = true;
	if (age_ms >= M.conf.respawn_stable_ms) {
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
		       p->streak, shm_kind_name((uint32_t)kind), M.conf.respawn_stable_ms, (long long)p->delay_ms,
		       M.conf.respawn_backoff_max_ms, master_count(kind, false));
}

/* A pool whose newest child has lived respawn_stable_ms with no death since started well:
 * its backoff ends. */
static void master_pools_settle(void)
{
	int64_t now = util_now_ms();
	for (int kind = 1; kind < NP_KIND_COUNT; kind++) {
		struct master_pool *p = &M.pools[kind];
		if (p->streak == 0 || p->died_since_spawn ||
		    now - p->last_spawn_ms < M.conf.respawn_stable_ms)
			continue;
		if (p->delay_ms > 0)
			log_info("respawn backoff of the %s pool ended: a new child lived %d ms",
			         shm_kind_name((uint32_t)kind), M.conf.respawn_stable_ms);
		p->streak = 0;
		p->delay_ms = 0;
		master_publish_pool(kind);
	}
}

/* The pool may start a child now (its backoff has passed). */
static bool master_pool_due(int kind, int64_t now)
{
	if (now < M.pools[kind].next_ms)
		return false;
	if (atomic_load(&M.shm.hdr->respawn[kind].next_us) != 0)
		master_publish_pool(kind);
	return true;
}

/* Bring the current generation to one supervisor and `workers` workers. Workers of two
 * generations may overlap during a reload; supervisors never do (the janitor, the breaker and
 * the shed flag have one writer, STYLE rule 7): a new supervisor starts only once every older
 * one has been reaped. Each pool waits for its own backoff only. */
static void master_fill(void)
{
	if (!M.stopping)
		master_supervisor_deadline();
	if (M.stopping || M.config_failed)
		return;
	master_pools_settle();
	int64_t now = util_now_ms();
	if (master_count(NP_KIND_SUPERVISOR, false) == 0 && master_pool_due(NP_KIND_SUPERVISOR, now))
		master_spawn(NP_KIND_SUPERVISOR);
	while (master_count(NP_KIND_WORKER, true) < M.conf.workers && master_pool_due(NP_KIND_WORKER, now))
		if (master_spawn(NP_KIND_WORKER) < 0)
			break;
	while (M.ask.fd >= 0 && master_count(NP_KIND_ASK, true) < M.conf.ask_workers && master_pool_due(NP_KIND_ASK, now))
		if (master_spawn(NP_KIND_ASK) < 0)
			break;
}

/* How long the loop may sleep before a pool's backoff ends, at most wait_ms. */
static int64_t master_backoff_wait(int64_t now, int64_t wait_ms)
{
	for (int kind = 1; kind < NP_KIND_COUNT; kind++) {
		int64_t next = M.pools[kind].next_ms;
		if (next > now && next - now < wait_ms)
			wait_ms = next - now;
	}
	return wait_ms;
}

static void master_signal_all(int sig, bool old_only)
{
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		struct master_child *k = &M.kids[i];
		if (!k->pid || (old_only && k->generation == M.generation))
			continue;
		if ((old_only || sig != SIGUSR1) && !k->retiring) {
			k->retiring = true;
			k->retire_ms = util_now_ms();
		}
		kill(k->pid, sig);
	}
}

static void master_reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int idx = -1;
		for (int i = 0; i < NP_MAX_SLOTS; i++)
			if (M.kids[i].pid == pid) {
				idx = i;
				break;
			}
		if (idx < 0)
			continue;
		struct master_child k = M.kids[idx];
		struct np_slot *slot = &M.shm.slots[idx];
		bool clean = atomic_load(&slot->state) == NP_SLOT_EXITING;
		const char *what = k.kind == NP_KIND_WORKER ? "worker" : k.kind == NP_KIND_ASK ? "ask worker" : "supervisor";
		char kv[128];
		snprintf(kv, sizeof(kv), " child=%s slot=%d child_pid=%d generation=%u", what, idx, (int)pid,
		         k.generation);

		/* reclaim what the child held before the slot can be reused: a token whose socket the
		 * keeper holds stays counted until the server closed it (keeper_poll frees it then); one
		 * without (the child died before handing its socket over) is freed by the supervisor's
		 * janitor orphan_grace_ms past the deadline of the statement it had in flight */
		int orphaned = keeper_on_death(&M.shm, pid);
		orphaned += budget_orphan_pid(&M.shm, pid, M.conf.orphan_grace_ms);
		if (orphaned > 0)
			log_kv(NP_LOG_INFO, kv, "reclaiming %d budget token(s) of a dead child", orphaned);
		if (shm_ask_permit_reclaim(&M.shm, pid))
			log_kv(NP_LOG_INFO, kv, "freeing the ask pool's permit a dead child held");
		shm_slot_reclaim(&M.shm, idx);
		M.kids[idx].pid = 0;

		if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
			M.config_failed = true;
			log_kv(NP_LOG_ERROR, kv, "child exited with a configuration error; not respawning");
		} else if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0) ||
		           (!clean && !k.retiring && !M.stopping)) {
			if (WIFSIGNALED(status))
				log_kv(NP_LOG_WARN, kv, "child killed by signal %d (%s)", WTERMSIG(status),
				       strsignal(WTERMSIG(status)));
			else
				log_kv(NP_LOG_WARN, kv, "child exited with status %d", WEXITSTATUS(status));
			if (!M.stopping && !k.retiring) {
				master_note_death(k.kind, util_now_ms() - k.started_ms, kv);
				atomic_fetch_add(&M.shm.hdr->respawns_total, 1);
			}
		} else {
			log_kv(k.kind == NP_KIND_SUPERVISOR ? NP_LOG_INFO : NP_LOG_DEBUG, kv, "child exited");
		}
	}
}

static void master_publish_budget(void)
{
	atomic_store(&M.shm.hdr->ep[NP_EP_PRIMARY].configured, (uint32_t)M.conf.budget);
	atomic_store(&M.shm.hdr->ep[NP_EP_REPLICA].configured,
	             M.conf.replica_url[0] ? (uint32_t)M.conf.replica_budget : 0u);
}

/* ---- reload ----------------------------------------------------------------------------- */

/* The reload's outcome for `neonpoolctl reload` (the reason first, then the count it waits on)
 * and for the service manager: a refused one is over (READY=1 at once, the old configuration
 * serves); an accepted one is READY=1 once the new generation's workers accept (master_notify). */
static void master_reload_done(const char *refused)
{
	snprintf(M.shm.hdr->reload_error, sizeof(M.shm.hdr->reload_error), "%s", refused ? refused : "");
	if (refused) {
		atomic_fetch_add(&M.shm.hdr->reloads_refused, 1);
		log_error("reload rejected, the running configuration stays: %s", refused);
		/* READY=1 ends the RELOADING=1 (unless the start's READY=1 is still to come) */
		notify_send("%sSTATUS=reload rejected, the running configuration stays: %.200s",
		            M.notify_ready ? "READY=1\n" : "", refused);
	} else {
		M.notify_ready = false;
	}
	atomic_fetch_add_explicit(&M.shm.hdr->reload_seq, 1, memory_order_release);
}

static void master_reload(void)
{
	struct timespec mono;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	/* systemd >= 253 wants MONOTONIC_USEC with RELOADING=1 (Type=notify-reload) */
	notify_send("RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=%llu",
	            (unsigned long long)mono.tv_sec * 1000000ULL + (unsigned long long)mono.tv_nsec / 1000ULL);
	struct np_conf next;
	struct np_conf_error err;
	char msg[1024];
	if (conf_load(&next, M.conf_path, &err) < 0) {
		conf_error_format(&err, msg, sizeof(msg));
		master_reload_done(msg);
		return;
	}
	char keys[256];
	if (conf_diff_restart_only(&M.conf, &next, keys, sizeof(keys)) > 0) {
		snprintf(msg, sizeof(msg), "changed keys need a restart: %s", keys);
		master_reload_done(msg);
		conf_free(&next);
		return;
	}
	if (next.log_file[0] && strcmp(next.log_file, M.conf.log_file) != 0 && log_open(next.log_file) < 0) {
		snprintf(msg, sizeof(msg), "cannot open log_file %s: %s", next.log_file, strerror(errno));
		master_reload_done(msg);
		conf_free(&next);
		return;
	}
	if (!next.log_file[0] && M.conf.log_file[0])
		log_open(NULL);
	conf_free(&M.conf);
	M.conf = next;
	log_set_level(M.conf.log_level);
	M.generation++;
	atomic_store(&M.shm.hdr->generation, M.generation);
	atomic_store(&M.shm.hdr->configured_workers, M.conf.workers);
	master_publish_budget();
	atomic_store(&M.shm.hdr->configured_ask_workers, M.ask.fd >= 0 ? M.conf.ask_workers : 0);
	/* a reload starts afresh: no backoff (the operator may have fixed the cause) */
	M.config_failed = false;
	for (int kind = 1; kind < NP_KIND_COUNT; kind++) {
		M.pools[kind].streak = 0;
		M.pools[kind].delay_ms = 0;
		M.pools[kind].next_ms = 0;
		master_publish_pool(kind);
	}
	/* new workers first, then the old children finish their request and leave; the new
	 * supervisor starts once the old one has been reaped (master_fill) */
	master_fill();
	master_signal_all(SIGQUIT, true);
	char kv[64];
	snprintf(kv, sizeof(kv), " generation=%u workers=%d", M.generation, M.conf.workers);
	log_kv(NP_LOG_INFO, kv, "configuration reloaded");
	master_reload_done(NULL);
}

/* ---- start and stop --------------------------------------------------------------------- */

static int master_resolve_user(void)
{
	if (geteuid() != 0 || (!M.conf.user[0] && !M.conf.group[0]))
		return 0;
	if (M.conf.user[0]) {
		struct passwd *pw = getpwnam(M.conf.user);
		if (!pw) {
			log_error("user '%s' does not exist", M.conf.user);
			return -1;
		}
		M.uid = pw->pw_uid;
		M.gid = pw->pw_gid;
	} else {
		M.uid = 0;
		M.gid = 0;
	}
	if (M.conf.group[0]) {
		struct group *gr = getgrnam(M.conf.group);
		if (!gr) {
			log_error("group '%s' does not exist", M.conf.group);
			return -1;
		}
		M.gid = gr->gr_gid;
	}
	M.drop = true;
	return 0;
}

/* Take the status file's lock (shm_lock) for the life of this instance. Returns 0; 2 when
 * another instance holds it (the exit code; nothing of that instance was touched); 1 on error. */
static int master_lock_instance(void)
{
	if (!M.conf.status_file[0])
		return 0;
	pid_t holder = 0;
	if (shm_lock(&M.shm, M.conf.status_file, &holder) == 0)
		return 0;
	if (errno == EWOULDBLOCK) {
		char who[32] = "";
		if (holder > 0)
			snprintf(who, sizeof(who), " (pid %d)", (int)holder);
		log_error("another neonpoold%s holds %s; not starting", who, M.conf.status_file);
		return 2;
	}
	log_error("cannot open status_file %s: %s", M.conf.status_file, master_strerror(errno));
	return 1;
}

/* Refuse a pid file that names a live process; write ours to a temp file created afresh
 * (O_EXCL | O_NOFOLLOW: a file or symlink planted at the temp name is removed, never written
 * through) and rename it over the pid file (rename replaces a symlink, never follows it). */
static int master_write_pid_file(void)
{
	const char *path = M.conf.pid_file;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		log_error("cannot read pid file %s: %s", path, master_strerror(errno));
		return -1;
	}
	if (fd >= 0) {
		char buf[32];
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		long old = 0;
		if (n > 0) {
			buf[n] = '\0';
			old = strtol(buf, NULL, 10);
		}
		if (old > 0 && old != getpid() && kill((pid_t)old, 0) == 0) {
			log_error("pid file %s names a running process (pid %ld): already running?", path, old);
			return -1;
		}
	}
	char tmp[600];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	char line[24];
	int len = snprintf(line, sizeof(line), "%d\n", (int)getpid());
	bool ok = fd >= 0 && write(fd, line, (size_t)len) == len;
	if (fd >= 0 && close(fd) != 0)
		ok = false;
	if (!ok || rename(tmp, path) < 0) {
		log_error("cannot write pid file %s: %s", path, master_strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		return -1;
	}
	return 0;
}

static int master_daemonize(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		return -1;
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

static void master_begin_stop(int how)
{
	if (M.stopping == STOP_FAST && how == STOP_FAST) {
		log_warn("second stop request: killing the children now");
		master_signal_all(SIGKILL, false);
		return;
	}
	if (M.stopping >= how)
		return;
	if (!M.stopping)
		notify_send("STOPPING=1\nSTATUS=stopping (%s)", how == STOP_FAST ? "fast" : "graceful");
	M.stopping = how;
	int64_t now = util_now_ms();
	M.stop_delay_ms = MASTER_STOP_CHECK_MIN_MS;
	M.stop_check_ms = now + M.stop_delay_ms;
	if (how == STOP_FAST) {
		log_info("fast stop: in-flight requests get %d ms", M.conf.shutdown_timeout_ms);
		M.graceful_until_ms = 0;
		M.kill_at_ms = now + M.conf.shutdown_timeout_ms;
		master_signal_all(SIGTERM, false);
	} else {
		log_info("graceful stop: finishing in-flight requests (for at most %d ms)", M.conf.graceful_timeout_ms);
		M.graceful_until_ms = now + M.conf.graceful_timeout_ms;
		master_signal_all(SIGQUIT, false);
	}
}

/* The stop's escalation, run on every turn of the loop: a graceful stop becomes a fast one after
 * graceful_timeout_ms, a fast one kills the rest after shutdown_timeout_ms. Between, on a timer
 * of 50 ms doubling to 1 s (nginx), children still running are sent the stop signal again.
 * Returns how long the loop may sleep, at most wait_ms. */
static int64_t master_stop_timer(int64_t now, int64_t wait_ms)
{
	if (!M.stopping)
		return wait_ms;
	if (M.graceful_until_ms && now >= M.graceful_until_ms) {
		log_warn("graceful_timeout reached: %d children still running; stopping them fast", master_count_all());
		master_begin_stop(STOP_FAST);
	}
	if (M.kill_at_ms && now >= M.kill_at_ms) {
		log_warn("shutdown_timeout reached: killing %d children", master_count_all());
		master_signal_all(SIGKILL, false);
		M.kill_at_ms = 0;
	}
	if (now >= M.stop_check_ms) {
		master_signal_all(M.stopping == STOP_FAST ? SIGTERM : SIGQUIT, false);
		M.stop_delay_ms = M.stop_delay_ms * 2 < MASTER_STOP_CHECK_MAX_MS ? M.stop_delay_ms * 2 : MASTER_STOP_CHECK_MAX_MS;
		M.stop_check_ms = now + M.stop_delay_ms;
	}
	int64_t next = M.stop_check_ms;
	if (M.graceful_until_ms && M.graceful_until_ms < next)
		next = M.graceful_until_ms;
	if (M.kill_at_ms && M.kill_at_ms < next)
		next = M.kill_at_ms;
	return next - now < wait_ms ? (next > now ? next - now : 0) : wait_ms;
}

/* ---- the init chain ----------------------------------------------------------------------
 * master_run() reads as a table of contents (PHP-FPM's fpm_init()): each step is one small
 * function returning 0 or -1 that logs its own failure and, once it succeeded, registers what
 * undoes it. One cleanup path unwinds the registered steps in reverse order, whether the chain
 * stopped half-way or the loop ended. */

#define MASTER_MAX_CLEANUPS 16

static struct {
	void (*fn[MASTER_MAX_CLEANUPS])(void);
	int n;
} master_cleanups;

/* Register fn to run at exit, after every cleanup registered later. */
static void master_on_cleanup(void (*fn)(void))
{
	if (master_cleanups.n < MASTER_MAX_CLEANUPS)
		master_cleanups.fn[master_cleanups.n++] = fn;
}

static void master_cleanup_all(void)
{
	while (master_cleanups.n > 0)
		master_cleanups.fn[--master_cleanups.n]();
}

static void master_free_conf(void) { conf_free(&M.conf); }

static int master_init_state(struct np_conf *conf, const char *conf_path)
{
	memset(&M, 0, sizeof(M));
	M.conf = *conf;
	M.conf_path = conf_path;
	M.listener.fd = -1;
	M.control.fd = -1;
	M.ask.fd = -1;
	M.sigfd = -1;
	M.wake[0] = M.wake[1] = -1;
	M.generation = 1;
	master_on_cleanup(master_free_conf);
	log_set_role("master");
	log_set_level(M.conf.log_level);
	return 0;
}

static int master_init_log(void)
{
	if (M.conf.daemonize && !M.conf.log_file[0]) {
		log_error("daemonize = true needs a log_file (stderr goes to /dev/null)");
		return -1;
	}
	if (M.conf.log_file[0] && log_open(M.conf.log_file) < 0) {
		log_error("cannot open log_file %s: %s", M.conf.log_file, master_strerror(errno));
		return -1;
	}
	return 0;
}

static void master_release_lock(void)
{
	shm_detach(&M.shm); /* closes the lock (a no-op once master_remove_shm ran) */
}

/* Before anything is opened, truncated or unlinked: one instance per status file. */
static int master_init_lock(void)
{
	int rc = master_lock_instance();
	if (rc != 0) {
		M.exit_code = rc;
		return -1;
	}
	master_on_cleanup(master_release_lock);
	return 0;
}

static int master_init_user(void)
{
	if (master_resolve_user() < 0)
		return -1;
	/* the workers run as the user and reopen the log after a rotation: the master gives every
	 * file it opens or recreates to them, through the descriptor */
	if (M.drop && M.conf.log_file[0] && log_set_owner(M.uid, M.gid) < 0)
		log_warn("cannot chown log_file %s: %s", M.conf.log_file, strerror(errno));
	return 0;
}

/* Block the signals we handle: they are read from a signalfd in the loop, and children inherit
 * the mask so none arrives before a child installed its own handlers. */
static int master_init_signals(void)
{
	sigemptyset(&M.sigset);
	int sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2 };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&M.sigset, sigs[i]);
	sigprocmask(SIG_BLOCK, &M.sigset, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void master_close_listeners(void)
{
	listen_close(&M.listener);
	listen_close(&M.control);
	listen_close(&M.ask);
}

static void master_warn_somaxconn(void)
{
	FILE *sm = fopen("/proc/sys/net/core/somaxconn", "re");
	int somax = 0;
	if (sm) {
		if (fscanf(sm, "%d", &somax) != 1)
			somax = 0;
		fclose(sm);
	}
	if (somax > 0 && somax < M.conf.listen_backlog)
		log_warn("listen_backlog %d is capped by net.core.somaxconn = %d", M.conf.listen_backlog, somax);
}

static int master_init_listeners(void)
{
	char err[256];
	int passed = listen_activation_init(err, sizeof(err));
	if (passed < 0) {
		log_error("socket activation: %s", err);
		return -1;
	}
	if (listen_open(&M.listener, &M.conf, "main", err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	master_on_cleanup(master_close_listeners);
	if (M.conf.control_listen[0]) {
		struct np_conf cc = M.conf;
		cc.listen = cc.control_listen;
		if (listen_open(&M.control, &cc, "control", err, sizeof(err)) < 0) {
			log_error("control_listen: %s", err);
			return -1;
		}
	}
	if (M.conf.ask_listen[0]) {
		struct np_conf ac = M.conf;
		ac.listen = ac.ask_listen;
		if (listen_open(&M.ask, &ac, "ask", err, sizeof(err)) < 0) {
			log_error("ask_listen: %s", err);
			return -1;
		}
	}
	char left[256];
	if (passed > 0 && listen_activation_leftover(left, sizeof(left)) > 0)
		log_warn("socket activation: no listen key takes %s; closed (name a socket main, control or ask, "
		         "or bind it to the configured address)", left);
	if (!M.listener.passed)
		master_warn_somaxconn();
	return 0;
}

/* The secret of the ask pool's internal requests (asktx.h): made before any fork. */
static int master_init_asktx(void)
{
	if (asktx_init_secret() < 0) {
		log_error("getrandom: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int master_init_daemon(void)
{
	if (M.conf.daemonize && master_daemonize() < 0) {
		log_error("daemonize failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void master_remove_shm(void)
{
	if (M.conf.status_file[0])
		unlink(M.conf.status_file);
	shm_detach(&M.shm);
}

static int master_init_shm(void)
{
	if (shm_create(&M.shm, M.conf.status_file) < 0) {
		log_error("cannot create shared memory%s%s: %s", M.conf.status_file[0] ? " at " : "",
		          M.conf.status_file, master_strerror(errno));
		return -1;
	}
	master_on_cleanup(master_remove_shm);
	atomic_store(&M.shm.hdr->generation, M.generation);
	atomic_store(&M.shm.hdr->configured_workers, M.conf.workers);
	atomic_store(&M.shm.hdr->configured_ask_workers, M.conf.ask_listen[0] ? M.conf.ask_workers : 0);
	master_publish_budget();
	/* the names of the metrics' route ids, for every reader of the region (the CLI included) */
	size_t nroutes;
	const struct np_route *routes = api_routes(&nroutes);
	snprintf(M.shm.hdr->route_names[NP_MROUTE_NONE], sizeof(M.shm.hdr->route_names[0]), "none");
	snprintf(M.shm.hdr->route_names[NP_MROUTE_POOL], sizeof(M.shm.hdr->route_names[0]), "pool");
	snprintf(M.shm.hdr->route_names[NP_MROUTE_ASK_TX], sizeof(M.shm.hdr->route_names[0]), "ask.tx");
	for (size_t i = 0; i < nroutes; i++) {
		int id = metrics_route_id((int)i);
		if (id != NP_MROUTE_NONE)
			snprintf(M.shm.hdr->route_names[id], sizeof(M.shm.hdr->route_names[0]), "%s", routes[i].name);
		else
			log_warn("route %s has no metrics row of its own (NP_MROUTES is %d): counted as none",
			         routes[i].name, NP_MROUTES);
	}
	return 0;
}

static void master_close_wake(void)
{
	close(M.wake[0]);
	close(M.wake[1]);
	M.wake[0] = M.wake[1] = -1;
}

/* The pipe a released budget token is announced on (budget_wake()): workers wait on it. */
static int master_init_wake(void)
{
	if (pipe2(M.wake, O_NONBLOCK | O_CLOEXEC) < 0) {
		log_error("pipe: %s", strerror(errno));
		return -1;
	}
	master_on_cleanup(master_close_wake);
	M.shm.hdr->wake_fd[0] = M.wake[0];
	M.shm.hdr->wake_fd[1] = M.wake[1];
	return 0;
}

static void master_close_sigfd(void)
{
	close(M.sigfd);
	M.sigfd = -1;
}

static int master_init_signalfd(void)
{
	M.sigfd = signalfd(-1, &M.sigset, SFD_NONBLOCK | SFD_CLOEXEC);
	if (M.sigfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return -1;
	}
	master_on_cleanup(master_close_sigfd);
	return 0;
}

static int master_init_keeper(void)
{
	if (keeper_init() < 0) {
		log_error("keeper socketpair: %s", strerror(errno));
		return -1;
	}
	master_on_cleanup(keeper_close);
	return 0;
}

static void master_remove_pid_file(void)
{
	unlink(M.conf.pid_file);
}

static int master_init_pid_file(void)
{
	if (!M.conf.pid_file[0])
		return 0;
	if (master_write_pid_file() < 0)
		return -1; /* not ours: never removed */
	master_on_cleanup(master_remove_pid_file);
	return 0;
}

static void master_log_start(void)
{
	char dbinfo[512] = "(none)";
	if (M.conf.database_url[0])
		conf_redact_conninfo(M.conf.database_url, dbinfo, sizeof(dbinfo));
	char kv[1024];
	snprintf(kv, sizeof(kv), " version=%s listen=%s control=%s workers=%d backlog=%d budget=%d database=\"%s\"",
	         NP_VERSION, M.listener.display, M.control.fd >= 0 ? M.control.display : "-", M.conf.workers,
	         M.conf.listen_backlog, M.conf.budget, dbinfo);
	log_kv(NP_LOG_INFO, kv, "starting");
}

static void master_close_notify(void)
{
	notify_close();
}

/* NOTIFY_SOCKET and WATCHDOG_USEC, taken (and unset, so no child sees them) before any fork. */
static int master_init_notify(void)
{
	if (notify_init() < 0) {
		log_warn("NOTIFY_SOCKET is set but unusable (%s): the service manager will not hear from us",
		         strerror(errno));
		return 0;
	}
	if (notify_enabled())
		master_on_cleanup(master_close_notify);
	return 0;
}

/* ---- the service manager ------------------------------------------------------------------ */

/* The current generation's children of kind: alive (*alive), accepting (past their start), and
 * whether one is still starting. */
static bool master_pool_started(int kind, int *accepting, int *alive)
{
	bool starting = false;
	*accepting = *alive = 0;
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		const struct master_child *k = &M.kids[i];
		if (!k->pid || k->kind != kind || k->retiring || k->generation != M.generation)
			continue;
		(*alive)++;
		uint32_t st = atomic_load(&M.shm.slots[i].state);
		if (st == NP_SLOT_STARTING || st == NP_SLOT_FREE)
			starting = true;
		else if (st != NP_SLOT_EXITING)
			(*accepting)++;
	}
	return !starting && *accepting > 0;
}

/* Readiness, STATUS= and the watchdog, on every turn of the loop. READY=1 (at start, and after an
 * accepted reload) once every live worker of the current generation accepts and the supervisor
 * has decided about the database: up (min_warm connections open), degraded (ready_deadline_ms
 * passed) or down (the breaker is open: STATUS= says so; requests get 503 db_unavailable). */
static void master_notify(int64_t now)
{
	if (!notify_enabled() || M.stopping)
		return;
	int64_t wd = notify_watchdog_ms();
	if (wd > 0 && now >= M.watchdog_next_ms) {
		notify_send("WATCHDOG=1");
		M.watchdog_next_ms = now + wd / 2;
	}
	int acc, alive, ask_acc = 0, ask_alive = 0;
	bool started = master_pool_started(NP_KIND_WORKER, &acc, &alive);
	if (M.ask.fd >= 0 && M.conf.ask_workers > 0)
		started = master_pool_started(NP_KIND_ASK, &ask_acc, &ask_alive) && started;
	static const char *const health_names[] = { "starting", "up", "degraded", "down" };
	const struct np_endpoint_shm *e = &M.shm.hdr->ep[NP_EP_PRIMARY];
	/* an empty database_url is libpq's defaults (PG* variables, the local socket): decided alike */
	uint32_t health = atomic_load(&e->health);
	char db[200];
	snprintf(db, sizeof(db), "database %s%s%.150s", health_names[health & 3], e->reason[0] ? ": " : "", e->reason);
	/* what is sent on a change: the busy workers and the budget in use move with every request,
	 * so they ride along but are sent only every MASTER_NOTIFY_STATUS_MS on their own */
	char key[sizeof(M.notify_status)];
	int n = snprintf(key, sizeof(key), "generation %u, workers %d/%d accepting", M.generation, acc, M.conf.workers);
	if (M.ask.fd >= 0 && n > 0 && (size_t)n < sizeof(key))
		snprintf(key + n, sizeof(key) - (size_t)n, ", ask workers %d/%d", ask_acc, M.conf.ask_workers);
	char status[640];
	snprintf(status, sizeof(status), "%s, %u busy, budget %d/%d in use, %s%s", key,
	         atomic_load(&M.shm.hdr->sup_workers_busy), budget_in_use(&M.shm, NP_EP_PRIMARY),
	         budget_limit(&M.shm, NP_EP_PRIMARY), db, health == NP_HEALTH_DOWN ? " (answering 503 db_unavailable)" : "");
	snprintf(key + strlen(key), sizeof(key) - strlen(key), ", %.150s", db);
	bool ready = !M.notify_ready && started && health != NP_HEALTH_STARTING;
	if (!ready && strcmp(key, M.notify_status) == 0 && now - M.notify_status_ms < MASTER_NOTIFY_STATUS_MS)
		return;
	if (ready) {
		M.notify_ready = true;
		notify_send("READY=1\nSTATUS=%s\nMAINPID=%d", status, (int)getpid());
	} else {
		notify_send("STATUS=%s", status);
	}
	snprintf(M.notify_status, sizeof(M.notify_status), "%s", key);
	M.notify_status_ms = now;
}

/* ---- the loop ----------------------------------------------------------------------------- */

static void master_on_signal(int sig)
{
	switch (sig) {
	case SIGHUP:
		if (!M.stopping)
			master_reload();
		break;
	case SIGTERM:
	case SIGINT:
		master_begin_stop(STOP_FAST);
		break;
	case SIGQUIT:
		master_begin_stop(STOP_GRACEFUL);
		break;
	case SIGUSR1:
		if (log_reopen() < 0)
			log_error("cannot reopen log_file: %s", strerror(errno));
		else
			log_info("log file reopened");
		master_signal_all(SIGUSR1, false);
		break;
	default:
		break; /* SIGCHLD or timeout: reap at the top of the loop */
	}
}

/* Wait up to wait_ms for a signal, a socket from the keeper's channel or a watched server close;
 * act on them. Signals arrive on the signalfd (still blocked, so handled here and only here). */
static void master_wait(int64_t wait_ms)
{
	struct pollfd p[1 + 1 + 64];
	int n = 0;
	p[n++] = (struct pollfd){ .fd = M.sigfd, .events = POLLIN };
	p[n++] = (struct pollfd){ .fd = keeper_channel_fd(), .events = POLLIN };
	int watch[64];
	int nw = keeper_watch_fds(watch, 64);
	for (int i = 0; i < nw; i++)
		p[n++] = (struct pollfd){ .fd = watch[i], .events = POLLIN };
	int rc = poll(p, (nfds_t)n, (int)wait_ms);
	if (rc > 0 && p[1].revents)
		keeper_receive(&M.shm);
	keeper_poll(&M.shm);
	struct signalfd_siginfo si;
	if (rc > 0 && (p[0].revents & POLLIN) && read(M.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		master_on_signal((int)si.ssi_signo);
}

/* Keep the children at the desired state until a stop completes. Returns the exit code. */
static int master_loop(void)
{
	int exit_code = 0;
	for (;;) {
		/* a dead child cannot send any more: what it sent is in the channel, so read it before
		 * reaping and the keeper holds its last socket when the death is handled (a message
		 * still arriving after the reap is handled by keeper_receive itself) */
		keeper_receive(&M.shm);
		master_reap();
		if (M.stopping && master_count_all() == 0)
			break;
		/* only a configuration error stops respawning (a crash backs off: master_note_death) */
		if (!M.stopping && master_count(NP_KIND_WORKER, false) == 0 && M.config_failed) {
			log_error("no worker left and a child exited with a configuration error: exiting");
			master_begin_stop(STOP_FAST); /* also starts the stop timer (else it spins at 0 ms) */
			exit_code = 1;
			continue;
		}
		master_fill();

		int64_t now = util_now_ms();
		master_notify(now);
		int64_t wait_ms = master_backoff_wait(now, master_stop_timer(now, MASTER_TICK_MS));
		master_wait(wait_ms);
	}
	log_info("stopped");
	return exit_code;
}

int master_run(struct np_conf *conf, const char *conf_path)
{
	int rc;
	if (0 > master_init_state(conf, conf_path) ||
	    0 > master_init_log() ||
	    0 > master_init_notify() ||
	    0 > master_init_lock() ||
	    0 > master_init_user() ||
	    0 > master_init_signals() ||
	    0 > master_init_listeners() ||
	    0 > master_init_asktx() ||
	    0 > master_init_daemon() ||
	    0 > master_init_shm() ||
	    0 > master_init_wake() ||
	    0 > master_init_signalfd() ||
	    0 > master_init_keeper() ||
	    0 > master_init_pid_file()) {
		rc = M.exit_code ? M.exit_code : 1;
		goto out;
	}
	master_log_start();
	master_fill();
	log_info("ready");
	rc = master_loop();
out:
	master_cleanup_all();
	return rc;
}
