/* child.c - what every child process shares: naming, flag-only signals, dying with the master. */
#include "config.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
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

bool child_wait(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
	sigset_t open;
	sigemptyset(&open);
	int rc = ppoll(&p, fd >= 0 ? 1 : 0, &ts, &open);
	if (child_reopen) {
		child_reopen = 0;
		log_reopen();
	}
	return rc > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

int child_poll(struct pollfd *fds, int n, int timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
	sigset_t open;
	sigemptyset(&open);
	int rc = ppoll(fds, (nfds_t)n, &ts, &open);
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
