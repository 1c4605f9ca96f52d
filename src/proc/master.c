/* SPDX-License-Identifier: PostgreSQL */
/* master.c - the prefork master: listen socket, shared memory, forking, reaping, signals, reload.
 *
 * The master handles signals synchronously (all blocked, read from a signalfd in its one poll()
 * loop) and keeps the children at the desired state: one supervisor and `workers` workers of the
 * current generation (the children themselves: master_children.c). master_run() is an init chain with one cleanup path. A reload bumps the
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
#include "master_state.h"
#include "notify.h"
#include "shm.h"
#include "supervisor.h"
#include "util.h"
#include "version.h"
#include "worker.h"

struct master_state master_state;

/* strerror, saying why for a symlink refused with O_NOFOLLOW (started as root, the master never
 * opens a path through a symlink: CVE-2016-1247) */
static const char *master_strerror(int e)
{
	return e == ELOOP ? "it is a symbolic link, which is never followed" : strerror(e);
}

/* ---- reload ----------------------------------------------------------------------------- */

/* The reload's outcome for `neonpoolctl reload` (the reason first, then the count it waits on)
 * and for the service manager: a refused one is over (READY=1 at once, the old configuration
 * serves); an accepted one is READY=1 once the new generation's workers accept (master_notify). */
static void master_reload_done(const char *refused)
{
	snprintf(master_state.shm.hdr->reload_error, sizeof(master_state.shm.hdr->reload_error), "%s", refused ? refused : "");
	if (refused) {
		atomic_fetch_add(&master_state.shm.hdr->reloads_refused, 1);
		log_error("reload rejected, the running configuration stays: %s", refused);
		/* READY=1 ends the RELOADING=1 (unless the start's READY=1 is still to come) */
		notify_send("%sSTATUS=reload rejected, the running configuration stays: %.200s",
		            master_state.notify_ready ? "READY=1\n" : "", refused);
	} else {
		master_state.notify_ready = false;
	}
	atomic_fetch_add_explicit(&master_state.shm.hdr->reload_seq, 1, memory_order_release);
}

static void master_reload(void)
{
	const char *busy = master_upgrade_refusal();
	if (busy) {
		master_reload_done(busy);
		return;
	}
	struct timespec mono;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	/* systemd >= 253 wants MONOTONIC_USEC with RELOADING=1 (Type=notify-reload) */
	notify_send("RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=%llu",
	            (unsigned long long)mono.tv_sec * 1000000ULL + (unsigned long long)mono.tv_nsec / 1000ULL);
	struct np_conf next;
	struct np_conf_error err;
	char msg[1024];
	if (conf_load(&next, master_state.conf_path, &err) < 0) {
		conf_error_format(&err, msg, sizeof(msg));
		master_reload_done(msg);
		return;
	}
	char keys[256];
	if (conf_diff_restart_only(&master_state.conf, &next, keys, sizeof(keys)) > 0) {
		snprintf(msg, sizeof(msg), "changed keys need a restart: %s (or `neonpoolctl upgrade`: HUP reloads the "
		         "configuration into the program already running)", keys);
		master_reload_done(msg);
		conf_free(&next);
		return;
	}
	if (next.log_file[0] && strcmp(next.log_file, master_state.conf.log_file) != 0 && log_open(next.log_file) < 0) {
		snprintf(msg, sizeof(msg), "cannot open log_file %s: %s", next.log_file, strerror(errno));
		master_reload_done(msg);
		conf_free(&next);
		return;
	}
	if (!next.log_file[0] && master_state.conf.log_file[0])
		log_open(NULL);
	conf_free(&master_state.conf);
	master_state.conf = next;
	log_set_level(master_state.conf.log_level);
	master_state.generation++;
	atomic_store(&master_state.shm.hdr->generation, master_state.generation);
	atomic_store(&master_state.shm.hdr->configured_workers, master_state.conf.workers);
	master_publish_budget();
	atomic_store(&master_state.shm.hdr->configured_ask_workers, master_state.ask.fd >= 0 ? master_state.conf.ask_workers : 0);
	/* a reload starts afresh: no backoff (the operator may have fixed the cause) */
	master_state.config_failed = false;
	for (int kind = 1; kind < NP_KIND_COUNT; kind++) {
		master_state.pools[kind].streak = 0;
		master_state.pools[kind].delay_ms = 0;
		master_state.pools[kind].next_ms = 0;
		master_publish_pool(kind);
	}
	/* new workers first, then the old children finish their request and leave; the new
	 * supervisor starts once the old one has been reaped (master_fill) */
	master_fill();
	master_signal_all(SIGQUIT, true);
	char kv[128];
	snprintf(kv, sizeof(kv), " generation=%u workers=%d program=\"the one running (neonpoolctl upgrade runs a new one)\"",
	         master_state.generation, master_state.conf.workers);
	log_kv(NP_LOG_INFO, kv, "configuration reloaded");
	master_reload_done(NULL);
}

/* ---- start and stop --------------------------------------------------------------------- */

static int master_resolve_user(void)
{
	if (geteuid() != 0 || (!master_state.conf.user[0] && !master_state.conf.group[0]))
		return 0;
	if (master_state.conf.user[0]) {
		struct passwd *pw = getpwnam(master_state.conf.user);
		if (!pw) {
			log_error("user '%s' does not exist", master_state.conf.user);
			return -1;
		}
		master_state.uid = pw->pw_uid;
		master_state.gid = pw->pw_gid;
	} else {
		master_state.uid = 0;
		master_state.gid = 0;
	}
	if (master_state.conf.group[0]) {
		struct group *gr = getgrnam(master_state.conf.group);
		if (!gr) {
			log_error("group '%s' does not exist", master_state.conf.group);
			return -1;
		}
		master_state.gid = gr->gr_gid;
	}
	master_state.drop = true;
	return 0;
}

/* Take the status file's lock (shm_lock) for the life of this instance. Returns 0; 2 when
 * another instance holds it (the exit code; nothing of that instance was touched); 1 on error. */
static int master_lock_instance(void)
{
	if (!master_state.conf.status_file[0])
		return 0;
	pid_t holder = 0;
	if (shm_lock(&master_state.shm, master_state.conf.status_file, &holder) == 0)
		return 0;
	if (errno == EWOULDBLOCK) {
		char who[32] = "";
		if (holder > 0)
			snprintf(who, sizeof(who), " (pid %d)", (int)holder);
		log_error("another neonpoold%s holds %s; not starting", who, master_state.conf.status_file);
		return 2;
	}
	log_error("cannot open status_file %s: %s", master_state.conf.status_file, master_strerror(errno));
	return 1;
}

/* Refuse a pid file that names a live process; write ours to a temp file created afresh
 * (O_EXCL | O_NOFOLLOW: a file or symlink planted at the temp name is removed, never written
 * through) and rename it over the pid file (rename replaces a symlink, never follows it). */
static int master_write_pid_file(void)
{
	const char *path = master_state.conf.pid_file;
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

static void master_free_conf(void) { conf_free(&master_state.conf); }

static int master_init_state(struct np_conf *conf, const char *conf_path)
{
	memset(&master_state, 0, sizeof(master_state));
	master_state.conf = *conf;
	master_state.conf_path = conf_path;
	master_state.listener.fd = -1;
	master_state.control.fd = -1;
	master_state.ask.fd = -1;
	master_state.sigfd = -1;
	master_state.wake[0] = master_state.wake[1] = -1;
	master_state.generation = 1;
	master_upgrade_init_paths();
	master_on_cleanup(master_free_conf);
	log_set_role("master");
	log_set_level(master_state.conf.log_level);
	return 0;
}

static int master_init_log(void)
{
	if (master_state.conf.daemonize && !master_state.conf.log_file[0]) {
		log_error("daemonize = true needs a log_file (stderr goes to /dev/null)");
		return -1;
	}
	if (master_state.conf.log_file[0] && log_open(master_state.conf.log_file) < 0) {
		log_error("cannot open log_file %s: %s", master_state.conf.log_file, master_strerror(errno));
		return -1;
	}
	return 0;
}

static void master_release_lock(void)
{
	shm_detach(&master_state.shm); /* closes the lock (a no-op once master_remove_shm ran) */
}

/* Before anything is opened, truncated or unlinked: one instance per status file. */
static int master_init_lock(void)
{
	if (master_state.up.successor) { /* handed over by the old master */
		master_on_cleanup(master_release_lock);
		return 0;
	}
	int rc = master_lock_instance();
	if (rc != 0) {
		master_state.exit_code = rc;
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
	if (master_state.drop && master_state.conf.log_file[0] && log_set_owner(master_state.uid, master_state.gid) < 0)
		log_warn("cannot chown log_file %s: %s", master_state.conf.log_file, strerror(errno));
	return 0;
}

/* Block the signals we handle: they are read from a signalfd in the loop, and children inherit
 * the mask so none arrives before a child installed its own handlers. */
static int master_init_signals(void)
{
	sigemptyset(&master_state.sigset);
	int sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGURG };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&master_state.sigset, sigs[i]);
	sigprocmask(SIG_BLOCK, &master_state.sigset, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* This master is the instance's: not one that handed over, nor a new one not yet ready. Only the
 * instance's master unlinks what the instance shares (the status file, a unix socket's path). */
static bool master_owns_instance(void)
{
	return !master_state.up.handed_over && !(master_state.up.successor && !master_state.up.ready_sent);
}

static void master_close_listeners(void)
{
	if (!master_owns_instance()) {
		master_state.listener.unix_path[0] = master_state.control.unix_path[0] = master_state.ask.unix_path[0] = '\0';
	}
	listen_close(&master_state.listener);
	listen_close(&master_state.control);
	listen_close(&master_state.ask);
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
	if (somax > 0 && somax < master_state.conf.listen_backlog)
		log_warn("listen_backlog %d is capped by net.core.somaxconn = %d", master_state.conf.listen_backlog, somax);
}

static int master_init_listeners(void)
{
	char err[256];
	int passed = listen_activation_init(err, sizeof(err));
	if (passed < 0) {
		log_error("socket activation: %s", err);
		return -1;
	}
	if (listen_open(&master_state.listener, &master_state.conf, "main", err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	master_on_cleanup(master_close_listeners);
	if (master_state.conf.control_listen[0]) {
		struct np_conf cc = master_state.conf;
		cc.listen = cc.control_listen;
		if (listen_open(&master_state.control, &cc, "control", err, sizeof(err)) < 0) {
			log_error("control_listen: %s", err);
			return -1;
		}
	}
	if (master_state.conf.ask_listen[0]) {
		struct np_conf ac = master_state.conf;
		ac.listen = ac.ask_listen;
		if (listen_open(&master_state.ask, &ac, "ask", err, sizeof(err)) < 0) {
			log_error("ask_listen: %s", err);
			return -1;
		}
	}
	char left[256];
	if (passed > 0 && listen_activation_leftover(left, sizeof(left)) > 0)
		log_warn("socket activation: no listen key takes %s; closed (name a socket main, control or ask, "
		         "or bind it to the configured address)", left);
	if (!master_state.listener.passed)
		master_warn_somaxconn();
	return 0;
}

/* The secret of the ask pool's internal requests (asktx.h): made before any fork. */
static int master_init_asktx(void)
{
	if (master_state.up.successor)
		return 0; /* the old master's, read in master_upgrade_successor_init() */
	if (asktx_init_secret() < 0) {
		log_error("getrandom: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int master_init_daemon(void)
{
	if (master_state.conf.daemonize && !master_state.up.successor && master_daemonize() < 0) {
		log_error("daemonize failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void master_remove_shm(void)
{
	if (master_state.conf.status_file[0] && master_owns_instance())
		unlink(master_state.conf.status_file);
	shm_detach(&master_state.shm);
}

static int master_init_shm(void)
{
	if (master_state.up.successor) {
		if (master_upgrade_adopt_shm() < 0) {
			master_state.exit_code = 3;
			return -1;
		}
	} else if (shm_create(&master_state.shm, master_state.conf.status_file) < 0) {
		log_error("cannot create shared memory%s%s: %s", master_state.conf.status_file[0] ? " at " : "",
		          master_state.conf.status_file, master_strerror(errno));
		return -1;
	}
	master_on_cleanup(master_remove_shm);
	atomic_store(&master_state.shm.hdr->generation, master_state.generation);
	atomic_store(&master_state.shm.hdr->configured_workers, master_state.conf.workers);
	atomic_store(&master_state.shm.hdr->configured_ask_workers, master_state.conf.ask_listen[0] ? master_state.conf.ask_workers : 0);
	master_publish_budget();
	/* the names of the metrics' route ids, for every reader of the region (the CLI included) */
	size_t nroutes;
	const struct np_route *routes = api_routes(&nroutes);
	snprintf(master_state.shm.hdr->route_names[NP_MROUTE_NONE], sizeof(master_state.shm.hdr->route_names[0]), "none");
	snprintf(master_state.shm.hdr->route_names[NP_MROUTE_POOL], sizeof(master_state.shm.hdr->route_names[0]), "pool");
	snprintf(master_state.shm.hdr->route_names[NP_MROUTE_ASK_TX], sizeof(master_state.shm.hdr->route_names[0]), "ask.tx");
	for (size_t i = 0; i < nroutes; i++) {
		int id = metrics_route_id((int)i);
		if (id != NP_MROUTE_NONE)
			snprintf(master_state.shm.hdr->route_names[id], sizeof(master_state.shm.hdr->route_names[0]), "%s", routes[i].name);
		else
			log_warn("route %s has no metrics row of its own (NP_MROUTES is %d): counted as none",
			         routes[i].name, NP_MROUTES);
	}
	return 0;
}

static void master_close_wake(void)
{
	close(master_state.wake[0]);
	close(master_state.wake[1]);
	master_state.wake[0] = master_state.wake[1] = -1;
}

/* The pipe a released budget token is announced on (budget_wake()): workers wait on it. */
static int master_init_wake(void)
{
	if (master_state.up.successor && !master_upgrade_separate()) {
		/* the old master's pipe, at the numbers the header names */
		master_on_cleanup(master_close_wake);
		return 0;
	}
	if (master_state.up.successor) { /* a region of our own: a pipe of our own too */
		close(master_state.wake[0]);
		close(master_state.wake[1]);
	}
	if (pipe2(master_state.wake, O_NONBLOCK | O_CLOEXEC) < 0) {
		log_error("pipe: %s", strerror(errno));
		return -1;
	}
	master_on_cleanup(master_close_wake);
	master_state.shm.hdr->wake_fd[0] = master_state.wake[0];
	master_state.shm.hdr->wake_fd[1] = master_state.wake[1];
	return 0;
}

static void master_close_sigfd(void)
{
	close(master_state.sigfd);
	master_state.sigfd = -1;
}

static int master_init_signalfd(void)
{
	master_state.sigfd = signalfd(-1, &master_state.sigset, SFD_NONBLOCK | SFD_CLOEXEC);
	if (master_state.sigfd < 0) {
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
	char old[600];
	snprintf(old, sizeof(old), "%s.oldbin", master_state.conf.pid_file);
	if (master_state.up.handed_over)
		unlink(old); /* ours was renamed for the new master's */
	else if (master_owns_instance())
		unlink(master_state.conf.pid_file);
}

static int master_init_pid_file(void)
{
	if (!master_state.conf.pid_file[0])
		return 0;
	if (master_write_pid_file() < 0)
		return -1; /* not ours: never removed */
	master_on_cleanup(master_remove_pid_file);
	return 0;
}

static void master_log_start(void)
{
	char dbinfo[512] = "(none)";
	if (master_state.conf.database_url[0])
		conf_redact_conninfo(master_state.conf.database_url, dbinfo, sizeof(dbinfo));
	char kv[1024];
	snprintf(kv, sizeof(kv), " version=%s listen=%s control=%s workers=%d backlog=%d budget=%d database=\"%s\"",
	         NP_VERSION, master_state.listener.display, master_state.control.fd >= 0 ? master_state.control.display : "-", master_state.conf.workers,
	         master_state.conf.listen_backlog, master_state.conf.budget, dbinfo);
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
		const struct master_child *k = &master_state.kids[i];
		if (!k->pid || k->kind != kind || k->retiring || k->generation != master_state.generation)
			continue;
		(*alive)++;
		uint32_t st = atomic_load(&master_state.shm.slots[i].state);
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
	if (!notify_enabled() || master_state.stopping)
		return;
	if (master_state.up.successor && atomic_load(&master_state.shm.hdr->master_pid) != (int32_t)getpid())
		return; /* a new master speaks once the old one made it the main process (MAINPID=) */
	int64_t wd = notify_watchdog_ms();
	if (wd > 0 && now >= master_state.watchdog_next_ms) {
		notify_send("WATCHDOG=1");
		master_state.watchdog_next_ms = now + wd / 2;
	}
	int acc, alive, ask_acc = 0, ask_alive = 0;
	bool started = master_pool_started(NP_KIND_WORKER, &acc, &alive);
	if (master_state.ask.fd >= 0 && master_state.conf.ask_workers > 0)
		started = master_pool_started(NP_KIND_ASK, &ask_acc, &ask_alive) && started;
	static const char *const health_names[] = { "starting", "up", "degraded", "down" };
	const struct np_endpoint_shm *e = &master_state.shm.hdr->ep[NP_EP_PRIMARY];
	/* an empty database_url is libpq's defaults (PG* variables, the local socket): decided alike */
	uint32_t health = atomic_load(&e->health);
	char db[200];
	snprintf(db, sizeof(db), "database %s%s%.150s", health_names[health & 3], e->reason[0] ? ": " : "", e->reason);
	/* what is sent on a change: the busy workers and the budget in use move with every request,
	 * so they ride along but are sent only every MASTER_NOTIFY_STATUS_MS on their own */
	char key[sizeof(master_state.notify_status)];
	int n = snprintf(key, sizeof(key), "generation %u, workers %d/%d accepting", master_state.generation, acc, master_state.conf.workers);
	if (master_state.ask.fd >= 0 && n > 0 && (size_t)n < sizeof(key))
		snprintf(key + n, sizeof(key) - (size_t)n, ", ask workers %d/%d", ask_acc, master_state.conf.ask_workers);
	char status[640];
	snprintf(status, sizeof(status), "%s, %u busy, budget %d/%d in use, %s%s", key,
	         atomic_load(&master_state.shm.hdr->sup_workers_busy), budget_in_use(&master_state.shm, NP_EP_PRIMARY),
	         budget_limit(&master_state.shm, NP_EP_PRIMARY), db, health == NP_HEALTH_DOWN ? " (answering 503 db_unavailable)" : "");
	snprintf(key + strlen(key), sizeof(key) - strlen(key), ", %.150s", db);
	bool ready = !master_state.notify_ready && started && health != NP_HEALTH_STARTING;
	if (!ready && strcmp(key, master_state.notify_status) == 0 && now - master_state.notify_status_ms < MASTER_NOTIFY_STATUS_MS)
		return;
	if (ready) {
		master_state.notify_ready = true;
		notify_send("READY=1\nSTATUS=%s\nMAINPID=%d", status, (int)getpid());
	} else {
		notify_send("STATUS=%s", status);
	}
	snprintf(master_state.notify_status, sizeof(master_state.notify_status), "%s", key);
	master_state.notify_status_ms = now;
}

/* ---- the loop ----------------------------------------------------------------------------- */

static void master_on_signal(int sig)
{
	switch (sig) {
	case SIGHUP:
		if (!master_state.stopping)
			master_reload();
		break;
	case SIGTERM:
	case SIGINT:
		master_begin_stop(STOP_FAST);
		break;
	case SIGQUIT:
		master_begin_stop(STOP_GRACEFUL);
		break;
	case SIGUSR2:
		master_upgrade_start();
		break;
	case SIGURG:
		master_upgrade_abort("aborted by hand (SIGURG, neonpoolctl upgrade --abort)");
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
	struct pollfd p[1 + 1 + 64 + 1];
	int n = 0;
	p[n++] = (struct pollfd){ .fd = master_state.sigfd, .events = POLLIN };
	p[n++] = (struct pollfd){ .fd = keeper_channel_fd(), .events = POLLIN };
	int watch[64];
	int nw = keeper_watch_fds(watch, 64);
	for (int i = 0; i < nw; i++)
		p[n++] = (struct pollfd){ .fd = watch[i], .events = POLLIN };
	int up = -1;
	if (master_state.up.pid && master_state.up.fd >= 0) {
		up = n;
		p[n++] = (struct pollfd){ .fd = master_state.up.fd, .events = POLLIN };
	}
	int rc = poll(p, (nfds_t)n, (int)wait_ms);
	if (rc > 0 && up >= 0 && p[up].revents)
		master_upgrade_on_pipe();
	if (rc > 0 && p[1].revents)
		keeper_receive(&master_state.shm);
	keeper_poll(&master_state.shm);
	struct signalfd_siginfo si;
	if (rc > 0 && (p[0].revents & POLLIN) && read(master_state.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
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
		keeper_receive(&master_state.shm);
		master_reap();
		if (master_state.stopping && master_count_all() == 0) {
			master_upgrade_before_exit();
			break;
		}
		/* only a configuration error stops respawning (a crash backs off: master_note_death) */
		if (!master_state.stopping && master_count(NP_KIND_WORKER, false) == 0 && master_state.config_failed) {
			log_error("no worker left and a child exited with a configuration error: exiting");
			master_begin_stop(STOP_FAST); /* also starts the stop timer (else it spins at 0 ms) */
			exit_code = 1;
			continue;
		}
		master_fill();

		int64_t now = util_now_ms();
		master_notify(now);
		int64_t wait_ms = master_backoff_wait(now, master_upgrade_tick(now, master_stop_timer(now, MASTER_TICK_MS)));
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
	    0 > master_upgrade_successor_init() ||
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
		rc = master_state.exit_code ? master_state.exit_code : 1;
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

