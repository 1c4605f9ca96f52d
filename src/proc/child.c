/* SPDX-License-Identifier: PostgreSQL */
/* child.c - what every child process shares: naming, flag-only signals, dying with the master. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_PRCTL
#include <sys/prctl.h>
#endif

#include "child.h"
#include "log.h"

static volatile sig_atomic_t child_stop;   /* TERM, INT, QUIT: finish the request, then exit */
static volatile sig_atomic_t child_reopen; /* USR1: reopen the log file */
static pid_t child_master;

static void child_on_stop(int sig) { child_stop = sig; }
static void child_on_reopen(int sig) { child_reopen = 1; }

int child_setup(const char *comm, const char *role, pid_t master_pid)
{
	child_master = master_pid;
	log_set_role(role);
#ifdef HAVE_PRCTL
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	/* die with the master: it may be gone before this line ran, hence the getppid() check */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
#endif
	if (getppid() != master_pid)
		return -1;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = child_on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = child_on_reopen;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);

	/* The master blocked these before fork; they stay blocked and only child_wait() opens the
	 * window, so a signal never interrupts a request half-way nor slips between check and wait. */
	sigset_t blocked;
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGINT);
	sigaddset(&blocked, SIGQUIT);
	sigaddset(&blocked, SIGUSR1);
	sigaddset(&blocked, SIGHUP);
	sigaddset(&blocked, SIGCHLD);
	sigaddset(&blocked, SIGUSR2);
	sigprocmask(SIG_SETMASK, &blocked, NULL);
	return 0;
}

static int child_cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static bool child_kept(const int *keep, int n, int fd)
{
	for (int i = 0; i < n; i++)
		if (keep[i] == fd)
			return true;
	return false;
}

/* Without close_range (kernel < 5.9): walk /proc/self/fd, collecting first (closing while
 * reading the directory would skip entries). */
static int child_close_fds_walk(const int *keep, int n)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int dfd = dirfd(d), victims[1024], nv = 0;
	bool more = true;
	while (more) {
		more = false;
		nv = 0;
		rewinddir(d);
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] < '0' || e->d_name[0] > '9')
				continue;
			int fd = atoi(e->d_name);
			if (fd == dfd || child_kept(keep, n, fd))
				continue;
			if (nv == (int)(sizeof(victims) / sizeof(victims[0]))) {
				more = true;
				break;
			}
			victims[nv++] = fd;
		}
		for (int i = 0; i < nv; i++)
			close(victims[i]);
	}
	closedir(d);
	return 0;
}

int child_close_fds_except(const int *keep_in, int n)
{
	int keep[32];
	int k = 0;
	for (int i = 0; i < n && k < (int)(sizeof(keep) / sizeof(keep[0])); i++)
		if (keep_in[i] >= 0)
			keep[k++] = keep_in[i];
	qsort(keep, (size_t)k, sizeof(int), child_cmp_int);
#ifdef SYS_close_range
	unsigned lo = 0;
	int rc = 0;
	for (int i = 0; i <= k && rc == 0; i++) {
		unsigned hi = i < k ? (unsigned)keep[i] : ~0U;
		if (hi > lo)
			rc = (int)syscall(SYS_close_range, lo, i < k ? hi - 1 : hi, 0);
		if (i < k)
			lo = (unsigned)keep[i] + 1;
	}
	if (rc == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
#endif
	return child_close_fds_walk(keep, k);
}

/* ppoll() delivers a signal that is pending only when it returns EINTR: when a descriptor is
 * ready it restores the mask and the signal stays pending. A worker whose poll always finds
 * something ready (sustained load, a peer that keeps a socket readable) would never see a stop.
 * Take what is pending here, synchronously (the signals are blocked outside ppoll). */
static void child_take_pending(void)
{
	sigset_t want;
	sigemptyset(&want);
	sigaddset(&want, SIGTERM);
	sigaddset(&want, SIGINT);
	sigaddset(&want, SIGQUIT);
	sigaddset(&want, SIGUSR1);
	const struct timespec zero = { 0, 0 };
	int sig;
	while ((sig = sigtimedwait(&want, NULL, &zero)) > 0) {
		if (sig == SIGUSR1)
			child_reopen = 1;
		else
			child_stop = sig;
	}
}

bool child_wait(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
	sigset_t open;
	sigemptyset(&open);
	int rc = ppoll(&p, fd >= 0 ? 1 : 0, &ts, &open);
	if (rc > 0)
		child_take_pending();
	if (child_reopen) {
		child_reopen = 0;
		log_reopen();
	}
	return rc > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

int child_epoll(int epfd, struct epoll_event *ev, int n, int timeout_ms)
{
	sigset_t open;
	sigemptyset(&open);
	int rc = epoll_pwait(epfd, ev, n, timeout_ms, &open);
	if (rc > 0)
		child_take_pending();
	if (child_reopen) {
		child_reopen = 0;
		log_reopen();
	}
	return rc;
}

bool child_should_stop(void)
{
	return child_stop || getppid() != child_master;
}
