/* SPDX-License-Identifier: PostgreSQL */
/* test_keeper.c - the master's keeper: a dead worker's socket is shut down and watched, also when it arrives after the reap. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "budget.h"
#include "keeper.h"

static struct np_shm shm;

static int setup(void **state)
{
	assert_int_equal(shm_create(&shm, NULL), 0);
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	shm.hdr->wake_fd[0] = p[0];
	shm.hdr->wake_fd[1] = p[1];
	atomic_store(&shm.hdr->ep[NP_EP_PRIMARY].configured, 4);
	assert_int_equal(keeper_init(), 0);
	return 0;
}

static int teardown(void **state)
{
	keeper_close();
	close(shm.hdr->wake_fd[0]);
	close(shm.hdr->wake_fd[1]);
	shm_detach(&shm);
	return 0;
}

/* The "server" end of a connection: true when it read EOF (our side shut down its write side). */
static bool server_saw_eof(int fd)
{
	char b;
	ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT);
	return n == 0;
}

/* sv[0]: the worker's connection socket, sv[1]: the server's end. */
static int connection(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int tok = budget_acquire(&shm, NP_EP_PRIMARY, 1);
	assert_true(tok >= 0);
	budget_set_phase(&shm, NP_EP_PRIMARY, tok, NP_TOK_CONNECTED);
	return tok;
}

static void assert_freed_on_server_close(int sv[2], int tok)
{
	int watched[4];
	assert_int_equal(keeper_watch_fds(watched, 4), 1);
	keeper_poll(&shm);
	assert_int_equal(atomic_load(&shm.hdr->ep[NP_EP_PRIMARY].tokens[tok].owner), getpid()); /* server still there */
	close(sv[1]); /* the backend exits */
	keeper_poll(&shm);
	assert_int_equal(atomic_load(&shm.hdr->ep[NP_EP_PRIMARY].tokens[tok].owner), 0);
	assert_int_equal(atomic_load(&shm.hdr->ep[NP_EP_PRIMARY].tokens[tok].phase), NP_TOK_FREE);
	assert_int_equal(keeper_watch_fds(watched, 4), 0);
}

/* The usual order: the socket reached the master, then the worker died. */
static void test_socket_then_death(void **state)
{
	int sv[2];
	int tok = connection(sv);
	keeper_send(sv[0], NP_EP_PRIMARY, tok);
	keeper_receive(&shm);
	int watched[4];
	assert_int_equal(keeper_watch_fds(watched, 4), 0); /* live owner: not watched */
	close(sv[0]);                                      /* SIGKILL: the worker's copy is gone */
	assert_false(server_saw_eof(sv[1]));               /* the master's duplicate keeps it open */
	assert_int_equal(keeper_on_death(&shm, getpid()), 1);
	assert_true(server_saw_eof(sv[1]));
	assert_int_equal(atomic_load(&shm.hdr->ep[NP_EP_PRIMARY].tokens[tok].phase), NP_TOK_ORPHANED);
	assert_int_equal(atomic_load(&shm.hdr->ep[NP_EP_PRIMARY].tokens[tok].free_after_us), INT64_MAX);
	assert_freed_on_server_close(sv, tok);
}

/* The worker sent its socket and died; the master reaped it (the token orphaned under a grace)
 * before it read the channel. The socket must still be shut down and watched. */
static void test_socket_after_reap(void **state)
{
	int sv[2];
	int tok = connection(sv);
	keeper_send(sv[0], NP_EP_PRIMARY, tok);
	close(sv[0]);
	assert_int_equal(keeper_on_death(&shm, getpid()), 0); /* nothing kept yet */
	assert_int_equal(budget_orphan_pid(&shm, getpid(), 250), 1);
	keeper_receive(&shm);
	assert_true(server_saw_eof(sv[1]));
	assert_int_equal(atomic_load(&shm.hdr->ep[NP_EP_PRIMARY].tokens[tok].free_after_us), INT64_MAX);
	assert_freed_on_server_close(sv, tok);
}

/* A message for a token the sender does not own is dropped, and its socket closed. */
static void test_stale_message_dropped(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	keeper_send(sv[0], NP_EP_PRIMARY, 3); /* token 3 is free */
	close(sv[0]);
	keeper_receive(&shm);
	assert_true(server_saw_eof(sv[1])); /* no duplicate kept */
	int watched[4];
	assert_int_equal(keeper_watch_fds(watched, 4), 0);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stale_message_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_then_death, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_after_reap, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
