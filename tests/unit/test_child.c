/* SPDX-License-Identifier: PostgreSQL */
/* test_child.c - child signal handling: a stop asked while every poll finds a descriptor ready is
 * still seen (epoll_pwait, like ppoll, delivers a pending signal only when it returns EINTR). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"
#include "util.h"

/* The child: a pipe that is always readable (never drained), polled in the worker's loop shape;
 * exit 0 once a stop is seen, 1 when 2 s of busy polling passed without it. */
static void busy_child(pid_t parent, int ready_fd)
{
	if (child_setup("np-test", "test", parent) < 0)
		_exit(3);
	/* tell the parent we are in the loop */
	kill(parent, SIGUSR2);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ready_fd, &ev) < 0)
		_exit(4);
	int64_t until = util_now_ms() + 2000;
	while (!child_should_stop()) {
		struct epoll_event got;
		child_epoll(ep, &got, 1, 1000);
		if (util_now_ms() > until)
			_exit(1);
	}
	_exit(0);
}

static void test_stop_seen_while_always_ready(void **state)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(write(pfd[1], "x", 1), 1);
	/* the master blocks the signals before fork; do the same */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, &old);
	pid_t parent = getpid();
	pid_t kid = fork();
	assert_true(kid >= 0);
	if (kid == 0)
		busy_child(parent, pfd[0]);
	sigset_t ready;
	sigemptyset(&ready);
	sigaddset(&ready, SIGUSR2);
	struct timespec ts = { 5, 0 };
	assert_int_equal(sigtimedwait(&ready, NULL, &ts), SIGUSR2);
	usleep(50 * 1000); /* the child spins in child_epoll now */
	kill(kid, SIGQUIT);
	int status = 0;
	assert_int_equal(waitpid(kid, &status, 0), kid);
	sigprocmask(SIG_SETMASK, &old, NULL);
	assert_true(WIFEXITED(status));
	/* 1: the stop was never seen while the pipe stayed readable */
	assert_int_equal(WEXITSTATUS(status), 0);
	close(pfd[0]);
	close(pfd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stop_seen_while_always_ready),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
