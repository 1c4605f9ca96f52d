/* SPDX-License-Identifier: PostgreSQL */
/* master_upgrade.c - the binary upgrade (SIGUSR2, `neonpoolctl upgrade`): the old master starts the
 * new binary beside itself on the same listening sockets (LISTEN_FDS, the socket activation path),
 * the same shared memory and the same instance lock; the new master says on a pipe when its
 * workers accept; the old one then hands over (MAINPID=, the pid file) and stops gracefully. When
 * the new one exits, hangs past upgrade_timeout_ms or is aborted first, the old one stops it and
 * serves on: it never stopped accepting. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asktx.h"
#include "budget.h"
#include "log.h"
#include "master_state.h"
#include "notify.h"
#include "shm.h"
#include "util.h"
#include "version.h"

#define UPGRADE_ENV "NEONPOOL_UPGRADE"
#define UPGRADE_FAULT_ENV "NEONPOOL_UPGRADE_FAULT" /* tests only: [layout+]exit|hang|crash, layout (doc/design.md) */
#define UPGRADE_KILL_MS 2000       /* a new master stopping in a rollback: SIGKILL this long past graceful_timeout_ms */
#define UPGRADE_STARTING_STALE_MS 10000 /* a slot another master assigned and never filled */

static enum { FAULT_NONE, FAULT_EXIT, FAULT_HANG, FAULT_CRASH } upgrade_fault;
static bool upgrade_fault_layout; /* take the path of another shared-memory layout with this one */

void master_upgrade_init_paths(void)
{
	ssize_t n = readlink("/proc/self/exe", master_state.exe, sizeof(master_state.exe) - 1);
	master_state.exe[n > 0 ? n : 0] = '\0';
	char *del = strstr(master_state.exe, " (deleted)");
	if (del && del[10] == '\0')
		*del = '\0'; /* replaced on disk since: the path is what runs the new one */
	/* realpath() into a buffer wants PATH_MAX bytes (_FORTIFY_SOURCE aborts otherwise): its own */
	char *abs = realpath(master_state.conf_path, NULL);
	snprintf(master_state.conf_abs, sizeof(master_state.conf_abs), "%s", abs ? abs : master_state.conf_path);
	free(abs);
	master_state.up.fd = -1;
	master_state.up.grant_fd = -1;
	master_state.up.grant_in = -1;
	master_state.up.old_lock_fd = -1;
}

bool master_upgrade_separate(void)
{
	return master_state.up.separate;
}

/* ---- the new master ------------------------------------------------------------------------ */

static int upgrade_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	return fl < 0 ? -1 : fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/* Started by an upgrade: NEONPOOL_UPGRADE names the instance lock, the ready pipe, the wake pipe
 * (at the numbers the old generation's workers use) and the old master; the listening sockets
 * come as LISTEN_FDS (listen_activation_init). Returns 0 (also when not an upgrade), -1. */
int master_upgrade_successor_init(void)
{
	const char *env = getenv(UPGRADE_ENV), *fault = getenv(UPGRADE_FAULT_ENV);
	if (!env)
		return 0;
	int lock = -1, ready = -1, w0 = -1, w1 = -1, old = 0, secret = -1, grant = -1;
	unsigned gen = 0;
	/* grant= and gen= come from an old master that can give its tokens to a region of another
	 * layout; one from before that offers neither (this master then refuses a layout change) */
	int n = sscanf(env, "lock=%d,ready=%d,secret=%d,wake=%d:%d,old=%d,grant=%d,gen=%u", &lock, &ready, &secret, &w0, &w1,
	               &old, &grant, &gen);
	unsetenv(UPGRADE_ENV);
	unsetenv(UPGRADE_FAULT_ENV);
	if ((n != 6 && n != 8) || lock < 3 || ready < 3 || secret < 3 || w0 < 3 || w1 < 3 || old <= 0 ||
	    (n == 8 && (grant < 3 || upgrade_cloexec(grant) < 0)) || upgrade_cloexec(lock) < 0 ||
	    upgrade_cloexec(ready) < 0 || upgrade_cloexec(w0) < 0 || upgrade_cloexec(w1) < 0) {
		log_error("upgrade: malformed %s from the old master: '%.100s'", UPGRADE_ENV, env);
		return -1;
	}
	/* the ask pool's secret: both generations' ask and main workers speak to each other meanwhile */
	char key[80];
	ssize_t got = read(secret, key, sizeof(key));
	close(secret);
	int keyok = got > 0 ? asktx_set_secret(key, (size_t)got) : -1;
	explicit_bzero(key, sizeof(key));
	if (keyok < 0) {
		log_error("upgrade: cannot read the ask pool's secret from the old master");
		return -1;
	}
	master_state.up.successor = true;
	master_state.up.fd = ready;
	master_state.up.old_pid = (pid_t)old;
	master_state.up.grant_in = n == 8 ? grant : -1;
	if (n == 8) /* read in the loop's ticks: never block there */
		fcntl(grant, F_SETFL, fcntl(grant, F_GETFL) | O_NONBLOCK);
	master_state.up.old_generation = gen;
	master_state.wake[0] = w0;
	master_state.wake[1] = w1;
	master_state.shm.lock_fd = lock;
	master_state.shm.locked = true;
	/* the old master says READY=1 and MAINPID= for us once it hands over */
	master_state.notify_ready = true;
	if (fault && strncmp(fault, "layout", 6) == 0) {
		upgrade_fault_layout = true;
		fault += fault[6] == '+' ? 7 : 6;
	}
	upgrade_fault = !fault ? FAULT_NONE : strcmp(fault, "exit") == 0 ? FAULT_EXIT : strcmp(fault, "hang") == 0 ? FAULT_HANG
	              : strcmp(fault, "crash") == 0 ? FAULT_CRASH : FAULT_NONE;
	struct stat a, b;
	if (!master_state.conf.status_file[0] || stat(master_state.conf.status_file, &b) < 0 || fstat(lock, &a) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		log_error("upgrade: status_file is not the running instance's (an upgrade keeps it; a restart moves it)");
		return -1;
	}
	if (upgrade_fault == FAULT_EXIT) {
		log_error("upgrade: %s=exit: exiting before ready (a test of the rollback)", UPGRADE_FAULT_ENV);
		return -1;
	}
	log_info("upgrade: started by the master pid %d; taking over its sockets and shared memory", old);
	return 0;
}

/* The running instance's region is of another layout: make one of our own beside it, whose
 * budget starts at 0 and grows by each token the old generation frees and gives (grant pipe).
 * The old region stays the old generation's; ours is renamed over status_file when ready. */
static int upgrade_separate_region(uint32_t layout)
{
	char *path = master_state.up.next_path;
	if (shm_next_path(path, sizeof(master_state.up.next_path), master_state.conf.status_file) < 0) {
		log_error("upgrade: the running instance's shared memory is layout %u, this build's is %d, and status_file "
		          "is too long for a region beside it: this upgrade needs a restart", layout, NP_SHM_LAYOUT);
		return -1;
	}
	master_state.up.old_lock_fd = master_state.shm.lock_fd;
	master_state.shm.lock_fd = -1;
	master_state.shm.locked = false;
	if (shm_create(&master_state.shm, path) < 0) {
		log_error("upgrade: the running instance's shared memory is layout %u, this build's is %d, and a region "
		          "of its own at %s cannot be made (%s%s)", layout, NP_SHM_LAYOUT, path, strerror(errno),
		          errno == EWOULDBLOCK ? ": a rolled-back upgrade's generation still holds it" : "");
		return -1;
	}
	atomic_store(&master_state.shm.hdr->grant_active, 1);
	master_state.generation = master_state.up.old_generation + 1;
	master_state.up.separate = true;
	if (write(master_state.up.fd, "L", 1) != 1) {
		log_error("upgrade: cannot tell the old master our layout differs: %s", strerror(errno));
		return -1;
	}
	log_info("upgrade: the running instance's shared memory is layout %u, this build's is %d: a region of its "
	         "own at %s, with the budget's tokens as the old generation frees them", layout, NP_SHM_LAYOUT, path);
	return 0;
}

int master_upgrade_adopt_shm(void)
{
	uint32_t layout = 0;
	int rc;
	if (upgrade_fault_layout) {
		/* tests: take the path of another layout with this one (NEONPOOL_UPGRADE_FAULT=layout...) */
		layout = NP_SHM_LAYOUT;
		errno = EPROTO;
		rc = -1;
	} else {
		rc = shm_adopt(&master_state.shm, &layout);
	}
	if (rc < 0) {
		if (errno == EPROTO && master_state.up.grant_in >= 0)
			return upgrade_separate_region(layout);
		if (errno == EPROTO)
			log_error("upgrade: the running instance's shared memory is layout %u, this build's is %d, and its "
			          "master cannot give its tokens to another region: this upgrade needs a restart",
			          layout, NP_SHM_LAYOUT);
		else
			log_error("upgrade: cannot map the running instance's shared memory: %s", strerror(errno));
		return -1;
	}
	master_state.generation = atomic_load(&master_state.shm.hdr->generation) + 1;
	if (master_state.up.grant_in >= 0) /* the same region: nothing to be given */
		close(master_state.up.grant_in);
	master_state.up.grant_in = -1;
	return 0;
}

/* New master with a region of its own: count the tokens the old generation gives ('0' + the
 * endpoint, one byte each); 'E': that was the last, the whole budget is ours. */
static void upgrade_take_grants(void)
{
	char buf[64];
	ssize_t n;
	while ((n = read(master_state.up.grant_in, buf, sizeof(buf))) > 0) {
		bool any = false;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == 'E') {
				atomic_store(&master_state.shm.hdr->grant_active, 0);
				master_state.up.grants_done = true;
				if (master_state.up.old_lock_fd >= 0) /* the old region: nobody of ours reads it */
					close(master_state.up.old_lock_fd);
				master_state.up.old_lock_fd = -1;
				log_info("upgrade: the old generation is gone and gave its last token: the whole budget is this "
				         "generation's");
				any = true;
			} else if (buf[i] >= '0' && buf[i] < '0' + NP_EP_COUNT) {
				atomic_fetch_add(&master_state.shm.hdr->ep[buf[i] - '0'].granted, 1);
				any = true;
			}
		}
		if (any)
			budget_wake(&master_state.shm);
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		close(master_state.up.grant_in);
		master_state.up.grant_in = -1;
		if (!master_state.up.grants_done)
			log_error("upgrade: the old master is gone without giving its last tokens: this generation keeps the "
			          "%u it was given until a restart (never more than the budget)",
			          atomic_load(&master_state.shm.hdr->ep[NP_EP_PRIMARY].granted));
	}
}

/* The new generation's workers all accept (past their start), and, when the database is up, one
 * of them holds a token, so that the main socket is served by this generation. */
static bool upgrade_successor_ready(void)
{
	int want[NP_KIND_COUNT] = { 0 }, acc[NP_KIND_COUNT] = { 0 };
	want[NP_KIND_WORKER] = master_state.conf.workers;
	want[NP_KIND_ASK] = master_state.ask.fd >= 0 ? master_state.conf.ask_workers : 0;
	bool holder = false;
	const struct np_endpoint_shm *e = &master_state.shm.hdr->ep[NP_EP_PRIMARY];
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		const struct master_child *k = &master_state.kids[i];
		if (!k->pid || k->retiring || (k->kind != NP_KIND_WORKER && k->kind != NP_KIND_ASK))
			continue;
		uint32_t st = atomic_load(&master_state.shm.slots[i].state);
		if (st != NP_SLOT_STARTING && st != NP_SLOT_FREE && st != NP_SLOT_EXITING)
			acc[k->kind]++;
		if (upgrade_fault == FAULT_CRASH && atomic_load(&master_state.shm.slots[i].requests) > 0) {
			log_error("upgrade: %s=crash: crashing after the first request (a test of the rollback)", UPGRADE_FAULT_ENV);
			abort();
		}
		for (int t = 0; t < NP_MAX_BUDGET && !holder; t++)
			holder = atomic_load(&e->tokens[t].owner) == (int32_t)k->pid;
	}
	if (upgrade_fault == FAULT_HANG || upgrade_fault == FAULT_CRASH)
		return false;
	return acc[NP_KIND_WORKER] >= want[NP_KIND_WORKER] && acc[NP_KIND_ASK] >= want[NP_KIND_ASK] &&
	       (holder || atomic_load(&e->health) != NP_HEALTH_UP);
}

static void upgrade_successor_tick(void)
{
	if (!master_state.up.successor || master_state.up.ready_sent || master_state.stopping || !upgrade_successor_ready())
		return;
	master_state.up.ready_sent = true;
	/* a region of our own: from now on it is the instance's (the old generation keeps its own
	 * mapped; readers that open status_file find ours) */
	if (master_state.up.separate && rename(master_state.up.next_path, master_state.conf.status_file) < 0)
		log_warn("upgrade: cannot rename %s to %s: %s", master_state.up.next_path, master_state.conf.status_file,
		         strerror(errno));
	ssize_t w = write(master_state.up.fd, "R", 1);
	close(master_state.up.fd);
	master_state.up.fd = -1;
	if (w != 1)
		log_warn("upgrade: cannot tell the old master (pid %d) we are ready: %s", (int)master_state.up.old_pid,
		         strerror(errno));
	char kv[96];
	snprintf(kv, sizeof(kv), " generation=%u old_master=%d version=%s", master_state.generation,
	         (int)master_state.up.old_pid, NP_VERSION);
	log_kv(NP_LOG_INFO, kv, "upgrade: this generation's workers accept on every socket; the old master hands over");
	master_state.up.sweep = true;
}

/* ---- the old master ---------------------------------------------------------------------- */

/* Give the new master (a region of its own) the tokens of ours that are free: each is marked
 * given here (taken from 0 by CAS: nobody of ours holds it any more) before its byte goes out, so
 * the two regions together never have more usable tokens than the budget. Keeps one per endpoint
 * while any child of ours lives (a worker finishing a request, an answer being stored), unless
 * `all`. */
static void upgrade_give(bool all)
{
	if (!master_state.up.granting || master_state.up.grant_fd < 0)
		return;
	int keep = !all && master_count_all() > 0 ? 1 : 0;
	for (int ep = 0; ep < NP_EP_COUNT; ep++) {
		int lim = budget_limit(&master_state.shm, ep);
		while (lim - budget_given(&master_state.shm, ep) > keep) {
			int t = budget_give_one(&master_state.shm, ep);
			if (t < 0)
				break;
			char b = (char)('0' + ep);
			if (write(master_state.up.grant_fd, &b, 1) != 1) {
				budget_take_back(&master_state.shm, ep, t);
				if (errno != EAGAIN) {
					log_warn("upgrade: cannot give a token to the new master: %s", strerror(errno));
					close(master_state.up.grant_fd);
					master_state.up.grant_fd = -1;
				}
				return;
			}
		}
	}
}

void master_upgrade_before_exit(void)
{
	if (!master_state.up.granting || master_state.up.grant_fd < 0 || !master_state.up.handed_over)
		return;
	upgrade_give(true);
	if (master_state.up.grant_fd >= 0 && write(master_state.up.grant_fd, "E", 1) == 1)
		log_info("upgrade: this generation is gone: the new master has every token");
	close(master_state.up.grant_fd);
	master_state.up.grant_fd = -1;
}

/* Rolled back after giving tokens: they come back once every process of the other generation is
 * gone, which its region's lock says (its master and every child share the one open file
 * description that holds it). */
static void upgrade_reclaim_given(void)
{
	int fd = open(master_state.up.next_path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return; /* still held */
	}
	int back = budget_take_back_all(&master_state.shm);
	if (fd >= 0) {
		unlink(master_state.up.next_path);
		close(fd);
	}
	master_state.up.reclaim_given = false;
	budget_wake(&master_state.shm);
	log_info("upgrade: the rolled-back generation is gone: %d given token(s) are this generation's again", back);
}

static void upgrade_pid_file_rename(bool back)
{
	if (!master_state.conf.pid_file[0])
		return;
	char old[600];
	snprintf(old, sizeof(old), "%s.oldbin", master_state.conf.pid_file);
	if ((back ? rename(old, master_state.conf.pid_file) : rename(master_state.conf.pid_file, old)) < 0 && errno != ENOENT)
		log_warn("upgrade: cannot rename %s: %s", back ? old : master_state.conf.pid_file, strerror(errno));
}

/* What refuses a reload or an upgrade now (NULL: nothing). */
const char *master_upgrade_refusal(void)
{
	if (master_state.up.pid)
		return "a binary upgrade is under way (neonpoolctl upgrade --abort ends it)";
	if (master_state.up.successor && !master_state.up.ready_sent)
		return "this master is a binary upgrade not yet ready";
	if (master_state.up.reclaim_given)
		return "the tokens given to a rolled-back upgrade are not back yet (its processes are still exiting)";
	if (master_state.up.separate && !master_state.up.grants_done)
		return "the previous generation has not given its last tokens yet";
	return NULL;
}

static void upgrade_outcome(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void upgrade_outcome(bool ok, const char *fmt, ...)
{
	struct np_shm_header *h = master_state.shm.hdr;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->upgrade_last, sizeof(h->upgrade_last), fmt, ap);
	va_end(ap);
	if (ok)
		atomic_fetch_add(&h->upgrades_ok, 1);
	else
		atomic_fetch_add(&h->upgrades_rolled_back, 1);
	atomic_fetch_add_explicit(&h->upgrade_seq, 1, memory_order_release);
}

/* Put the new master's fds in place in the child and exec it; never returns. The listening
 * sockets go to 3.. (LISTEN_FDS); the wake pipe stays at its numbers (the old generation's
 * workers find it there through the header); the lock and the ready pipe follow. */
static void upgrade_exec(int ready_fd, int secret_fd, int grant_fd) __attribute__((noreturn));
static void upgrade_exec(int ready_fd, int secret_fd, int grant_fd)
{
	const struct np_listener *ls[3] = { &master_state.listener, &master_state.control, &master_state.ask };
	static const char *const names[3] = { "main", "control", "ask" };
	int w0 = master_state.wake[0], w1 = master_state.wake[1];
	int tmp[7], src[7], n = 0, nsock = 0;
	char fdnames[64] = "";
	for (int i = 0; i < 3; i++)
		if (ls[i]->fd >= 0) {
			src[n++] = ls[i]->fd;
			snprintf(fdnames + strlen(fdnames), sizeof(fdnames) - strlen(fdnames), "%s%s", nsock ? ":" : "", names[i]);
			nsock++;
		}
	src[n++] = master_state.shm.lock_fd;
	src[n++] = ready_fd;
	src[n++] = secret_fd;
	src[n++] = grant_fd;
	for (int i = 0; i < n; i++)
		if ((tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 64)) < 0)
			_exit(126);
	int target = 3, placed[7];
	for (int i = 0; i < n; i++) {
		while (target == w0 || target == w1) {
			if (i < nsock)
				_exit(126); /* the sockets must be consecutive from 3 */
			target++;
		}
		if (dup2(tmp[i], target) < 0)
			_exit(126);
		placed[i] = target++;
	}
	fcntl(w0, F_SETFD, 0);
	fcntl(w1, F_SETFD, 0);
	char v[160];
	snprintf(v, sizeof(v), "%d", nsock);
	setenv("LISTEN_FDS", v, 1);
	snprintf(v, sizeof(v), "%d", (int)getpid());
	setenv("LISTEN_PID", v, 1);
	setenv("LISTEN_FDNAMES", fdnames, 1);
	snprintf(v, sizeof(v), "lock=%d,ready=%d,secret=%d,wake=%d:%d,old=%d,grant=%d,gen=%u", placed[nsock],
	         placed[nsock + 1], placed[nsock + 2], w0, w1, (int)getppid(), placed[nsock + 3], master_state.generation);
	setenv(UPGRADE_ENV, v, 1);
	if (notify_address()[0])
		setenv("NOTIFY_SOCKET", notify_address(), 1);
	if (notify_watchdog_ms() > 0) { /* the main process to be keeps the watchdog fed */
		snprintf(v, sizeof(v), "%lld", (long long)notify_watchdog_ms() * 1000);
		setenv("WATCHDOG_USEC", v, 1);
		snprintf(v, sizeof(v), "%d", (int)getpid());
		setenv("WATCHDOG_PID", v, 1);
	}
	sigprocmask(SIG_UNBLOCK, &master_state.sigset, NULL);
	char *argv[] = { master_state.exe, (char *)"-c", master_state.conf_abs, NULL };
	execv(master_state.exe, argv);
	_exit(127);
}

void master_upgrade_start(void)
{
	const char *why = master_upgrade_refusal();
	if (!why && master_state.stopping)
		why = "the master is stopping";
	if (!why && !master_state.conf.status_file[0])
		why = "an upgrade needs a status_file (the shared memory and the instance lock it hands over)";
	if (!why && (!master_state.exe[0] || access(master_state.exe, X_OK) < 0))
		why = "the program's path is not executable";
	if (why) {
		log_warn("upgrade refused (SIGUSR2): %s", why);
		if (!master_state.up.pid && master_state.shm.hdr) {
			struct np_shm_header *h = master_state.shm.hdr;
			snprintf(h->upgrade_last, sizeof(h->upgrade_last), "refused: %s", why);
			atomic_fetch_add_explicit(&h->upgrade_seq, 1, memory_order_release);
		}
		return;
	}
	int p[2], sp[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		log_error("upgrade: pipe: %s", strerror(errno));
		return;
	}
	/* the ask pool's secret through a pipe of its own (never in the environment) */
	size_t klen = strlen(asktx_secret());
	bool sp_ok = pipe2(sp, O_CLOEXEC) == 0;
	if (sp_ok && write(sp[1], asktx_secret(), klen) != (ssize_t)klen) {
		close(sp[0]);
		close(sp[1]);
		sp_ok = false;
	}
	if (!sp_ok) {
		log_error("upgrade: pipe: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	close(sp[1]);
	/* the grant pipe: a new master of another layout gets the tokens this generation frees */
	int gp[2];
	if (pipe2(gp, O_CLOEXEC) < 0) {
		log_error("upgrade: pipe: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		close(sp[0]);
		return;
	}
	upgrade_pid_file_rename(false);
	pid_t pid = fork();
	if (pid < 0) {
		log_error("upgrade: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		close(sp[0]);
		close(gp[0]);
		close(gp[1]);
		upgrade_pid_file_rename(true);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		close(gp[1]);
		upgrade_exec(p[1], sp[0], gp[0]);
	}
	close(p[1]);
	close(sp[0]);
	close(gp[0]);
	fcntl(gp[1], F_SETFL, fcntl(gp[1], F_GETFL) | O_NONBLOCK);
	master_state.up.grant_fd = gp[1];
	master_state.up.granting = false;
	int64_t now = util_now_ms();
	master_state.up.pid = pid;
	master_state.up.fd = p[0];
	master_state.up.started_ms = now;
	master_state.up.deadline_ms = now + master_state.conf.upgrade_timeout_ms;
	master_state.up.rolling_back = false;
	master_state.up.kill_ms = 0;
	struct np_shm_header *h = master_state.shm.hdr;
	atomic_store(&h->upgrade_started_us, util_wall_us());
	atomic_store(&h->upgrade_pid, (int32_t)pid);
	atomic_store(&h->release_gen, master_state.generation);
	char kv[640];
	snprintf(kv, sizeof(kv), " new_master=%d program=\"%.500s\" timeout_ms=%d", (int)pid, master_state.exe,
	         master_state.conf.upgrade_timeout_ms);
	log_kv(NP_LOG_INFO, kv, "upgrade: new binary started; this generation serves until its workers accept");
	notify_send("STATUS=upgrading: new master pid %d starting", (int)pid);
}

void master_upgrade_abort(const char *why)
{
	if (!master_state.up.pid) {
		log_info("upgrade abort: no upgrade is under way");
		return;
	}
	if (master_state.up.rolling_back)
		return;
	master_state.up.rolling_back = true;
	snprintf(master_state.up.why, sizeof(master_state.up.why), "%s", why);
	/* a graceful stop: what its workers accepted meanwhile is answered (their in-flight requests
	 * get graceful_timeout_ms), then SIGKILL */
	kill(master_state.up.pid, SIGQUIT);
	master_state.up.kill_ms = util_now_ms() + master_state.conf.graceful_timeout_ms + UPGRADE_KILL_MS;
	if (master_state.up.fd >= 0)
		close(master_state.up.fd);
	master_state.up.fd = -1;
	log_warn("upgrade: rolling back: %s; stopping the new master (pid %d)", why, (int)master_state.up.pid);
}

/* The new master is gone before it was ready: this generation serves on, as it never stopped. */
static void upgrade_rolled_back(void)
{
	struct np_shm_header *h = master_state.shm.hdr;
	if (master_state.up.grant_fd >= 0)
		close(master_state.up.grant_fd);
	master_state.up.grant_fd = -1;
	if (master_state.up.granting) {
		master_state.up.granting = false;
		/* the new master made it under this name (it gave us 'L' only after) */
		shm_next_path(master_state.up.next_path, sizeof(master_state.up.next_path), master_state.conf.status_file);
		master_state.up.reclaim_given = true;
	}
	atomic_store(&h->release_gen, 0);
	atomic_store(&h->generation, master_state.generation);
	atomic_store(&h->upgrade_pid, 0);
	upgrade_pid_file_rename(true);
	char kv[64];
	snprintf(kv, sizeof(kv), " new_master=%d generation=%u", (int)master_state.up.pid, master_state.generation);
	log_kv(NP_LOG_ERROR, kv, "upgrade rolled back: %s; the running generation serves on", master_state.up.why);
	upgrade_outcome(false, "rolled back: %s", master_state.up.why);
	notify_send("STATUS=upgrade rolled back: %.200s", master_state.up.why);
	if (master_state.up.fd >= 0)
		close(master_state.up.fd);
	master_state.up.fd = -1;
	master_state.up.pid = 0;
	master_state.up.rolling_back = false;
	master_state.up.kill_ms = 0;
	master_state.up.sweep = true;
}

bool master_upgrade_reaped(pid_t pid, int status)
{
	if (!master_state.up.pid || pid != master_state.up.pid)
		return false;
	if (master_state.up.handed_over) {
		log_warn("upgrade: the new master (pid %d) exited after it took over", (int)pid);
		return true;
	}
	if (!master_state.up.rolling_back) {
		if (WIFSIGNALED(status))
			snprintf(master_state.up.why, sizeof(master_state.up.why), "the new master was killed by signal %d (%s) before it was ready",
			         WTERMSIG(status), strsignal(WTERMSIG(status)));
		else
			snprintf(master_state.up.why, sizeof(master_state.up.why), "the new master exited with status %d before it was ready%s",
			         WEXITSTATUS(status), WEXITSTATUS(status) == 127 ? " (the program could not be run)" : " (its log says why)");
	}
	upgrade_rolled_back();
	return true;
}

static void upgrade_hand_over(void)
{
	pid_t pid = master_state.up.pid;
	int64_t took = util_now_ms() - master_state.up.started_ms;
	struct np_shm_header *h = master_state.shm.hdr;
	master_state.up.handed_over = true;
	atomic_store(&h->master_pid, (int32_t)pid);
	atomic_store(&h->upgrade_pid, 0);
	upgrade_outcome(true, "ok: master pid %d -> %d in %lld ms", (int)getpid(), (int)pid, (long long)took);
	char kv[96];
	snprintf(kv, sizeof(kv), " new_master=%d handover_ms=%lld", (int)pid, (long long)took);
	log_kv(NP_LOG_INFO, kv, "upgrade: the new master's workers accept; this generation stops accepting and finishes "
	       "its requests (graceful_timeout_ms %d)", master_state.conf.graceful_timeout_ms);
	/* the service manager: the new master is the main process from here on; nothing more from us
	 * (a STOPPING=1 would be taken as the service's) */
	notify_send("MAINPID=%d\nREADY=1\nSTATUS=upgraded: new master pid %d", (int)pid, (int)pid);
	notify_close();
	master_begin_stop(STOP_GRACEFUL);
}

void master_upgrade_on_pipe(void)
{
	char c = 0;
	ssize_t n = read(master_state.up.fd, &c, 1);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == 1 && c == 'L' && !master_state.up.rolling_back) {
		/* its layout differs: it made a region of its own and waits for our tokens */
		master_state.up.granting = true;
		log_info("upgrade: the new master (pid %d) has a shared-memory layout of its own: it gets each token this "
		         "generation frees; this generation keeps one while any of its children lives",
		         (int)master_state.up.pid);
		upgrade_give(false);
		return;
	}
	close(master_state.up.fd);
	master_state.up.fd = -1;
	if (n == 1 && c == 'R' && !master_state.up.rolling_back)
		upgrade_hand_over();
	/* else EOF: the new master is gone or going; its reaping says why */
}

/* Slots of another master's children whose process is gone (a new master that was rolled back,
 * or an old master that is gone): reclaim them and what they held, as a reap would. */
static void upgrade_sweep(void)
{
	if (master_state.up.successor && master_state.up.old_pid > 0) {
		if (kill(master_state.up.old_pid, 0) == 0 || errno != ESRCH)
			return; /* the old master reaps its own */
		master_state.up.old_pid = 0;
	}
	int left = 0;
	int64_t now_us = util_wall_us();
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		struct np_slot *s = &master_state.shm.slots[i];
		if (master_state.kids[i].pid || atomic_load(&s->kind) == NP_KIND_NONE)
			continue;
		pid_t pid = (pid_t)atomic_load(&s->pid);
		bool gone = pid > 0 ? kill(pid, 0) < 0 && errno == ESRCH
		                    : now_us - atomic_load(&s->started_us) > UPGRADE_STARTING_STALE_MS * 1000LL;
		if (!gone) {
			left++;
			continue;
		}
		int orphaned = pid > 0 ? budget_orphan_pid(&master_state.shm, pid, master_state.conf.orphan_grace_ms) : 0;
		if (pid > 0)
			shm_ask_permit_reclaim(&master_state.shm, pid);
		shm_slot_reclaim(&master_state.shm, i);
		char kv[96];
		snprintf(kv, sizeof(kv), " slot=%d child_pid=%d tokens=%d", i, (int)pid, orphaned);
		log_kv(NP_LOG_INFO, kv, "upgrade: reclaimed the slot of another master's child that is gone");
	}
	if (left == 0)
		master_state.up.sweep = false;
}

int64_t master_upgrade_tick(int64_t now, int64_t wait_ms)
{
	upgrade_successor_tick();
	if (master_state.up.separate && master_state.up.grant_in >= 0) {
		upgrade_take_grants();
		if (wait_ms > 20)
			wait_ms = 20;
	}
	if (master_state.up.granting && master_state.up.grant_fd >= 0) {
		upgrade_give(false);
		if (wait_ms > 20)
			wait_ms = 20;
	}
	if (master_state.up.reclaim_given) {
		upgrade_reclaim_given();
		if (master_state.up.reclaim_given && wait_ms > 50)
			wait_ms = 50;
	}
	if (master_state.up.pid && !master_state.up.handed_over) {
		if (!master_state.up.rolling_back && now >= master_state.up.deadline_ms) {
			char why[96];
			snprintf(why, sizeof(why), "the new master was not ready within upgrade_timeout_ms (%d ms)",
			         master_state.conf.upgrade_timeout_ms);
			master_upgrade_abort(why);
		}
		if (master_state.up.kill_ms && now >= master_state.up.kill_ms) {
			log_warn("upgrade: the new master (pid %d) did not stop within graceful_timeout_ms + %d ms; killing it",
			         (int)master_state.up.pid, UPGRADE_KILL_MS);
			kill(master_state.up.pid, SIGKILL);
			master_state.up.kill_ms = 0;
		}
		int64_t next = master_state.up.kill_ms ? master_state.up.kill_ms : master_state.up.deadline_ms;
		if (next - now < wait_ms)
			wait_ms = next > now ? next - now : 0;
	}
	if (master_state.up.sweep && !master_state.up.pid)
		upgrade_sweep();
	if (master_state.up.successor && !master_state.up.ready_sent && wait_ms > 50)
		wait_ms = 50;
	return wait_ms;
}

/* A supervisor of another master (the old one, during an upgrade) is alive: ours waits for it. */
bool master_upgrade_supervisor_elsewhere(void)
{
	for (int i = 0; i < NP_MAX_SLOTS; i++)
		if (!master_state.kids[i].pid && atomic_load(&master_state.shm.slots[i].kind) == NP_KIND_SUPERVISOR)
			return true;
	return false;
}
