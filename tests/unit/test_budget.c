/* SPDX-License-Identifier: PostgreSQL */
/* test_budget.c - budget tokens in a real shared mapping: the limit holds, crashes are reclaimed, classes of errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "budget.h"
#include "pgconn.h"
#include "util.h"

static struct np_shm shm;

/* A child's end: the region unmapped first. Under valgrind each process's exit scans every
 * mapping for leaks, and the region is 698 MB (sparse): 1-2 CPU s per child, 27 of the 29 s
 * this test took there. */
static _Noreturn void child_exit(int code)
{
	shm_detach(&shm);
	_exit(code);
}

static int setup(void **state)
{
	assert_int_equal(shm_create(&shm, NULL), 0);
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	shm.hdr->wake_fd[0] = p[0];
	shm.hdr->wake_fd[1] = p[1];
	atomic_store(&shm.hdr->ep[NP_EP_PRIMARY].configured, 4);
	return 0;
}

static int teardown(void **state)
{
	close(shm.hdr->wake_fd[0]);
	close(shm.hdr->wake_fd[1]);
	shm_detach(&shm);
	return 0;
}

/* A test that failed may have left tokens taken: start the next from a clean budget. */
static void clean_tokens(void)
{
	memset(shm.hdr->ep[NP_EP_PRIMARY].tokens, 0, sizeof(shm.hdr->ep[NP_EP_PRIMARY].tokens));
	while (budget_wake_consume(&shm))
		;
}

static void test_limit_holds(void **state)
{
	int t[5];
	for (int i = 0; i < 4; i++) {
		t[i] = budget_acquire(&shm, NP_EP_PRIMARY, 1);
		assert_true(t[i] >= 0 && t[i] < 4);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(t[i], t[j]);
	}
	assert_int_equal(budget_acquire(&shm, NP_EP_PRIMARY, 1), -1);
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 4);
	assert_int_equal(budget_connected(&shm, NP_EP_PRIMARY), 0);
	budget_set_phase(&shm, NP_EP_PRIMARY, t[0], NP_TOK_CONNECTED);
	assert_int_equal(budget_connected(&shm, NP_EP_PRIMARY), 1);
	budget_release(&shm, NP_EP_PRIMARY, t[2]);
	assert_true(budget_wake_consume(&shm)); /* a release wakes a spare */
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 3);
	t[4] = budget_acquire(&shm, NP_EP_PRIMARY, 1);
	assert_int_equal(t[4], t[2]);
	for (int i = 0; i < 5; i++)
		if (i != 2)
			budget_release(&shm, NP_EP_PRIMARY, t[i]);
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 0);
}

static void test_unconfigured_endpoint(void **state)
{
	assert_int_equal(budget_limit(&shm, NP_EP_REPLICA), 0);
	assert_int_equal(budget_acquire(&shm, NP_EP_REPLICA, 1), -1);
}

static void test_clamped_limit(void **state)
{
	atomic_store(&shm.hdr->ep[NP_EP_PRIMARY].limit, 2);
	int a = budget_acquire(&shm, NP_EP_PRIMARY, 1), b = budget_acquire(&shm, NP_EP_PRIMARY, 1);
	assert_true(a >= 0 && b >= 0);
	assert_int_equal(budget_acquire(&shm, NP_EP_PRIMARY, 1), -1);
	budget_release(&shm, NP_EP_PRIMARY, a);
	budget_release(&shm, NP_EP_PRIMARY, b);
	atomic_store(&shm.hdr->ep[NP_EP_PRIMARY].limit, 0);
}

/* Many processes race for the tokens: never more owners than the limit, whatever interleaving. */
static void test_race_between_processes(void **state)
{
	atomic_store(&shm.hdr->ep[NP_EP_PRIMARY].configured, 3);
	/* under valgrind (NP_VALGRIND), which looks for memory errors, not for the race: 4 processes of
	 * 25 rounds (8 x 20,000 took 66 s there, 8 x 50 took 8 s, 4 x 25 about 1 s) */
	bool vg = getenv("NP_VALGRIND") != NULL;
	int nkids = vg ? 4 : 8;
	pid_t kids[8];
	for (int k = 0; k < nkids; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			int over = 0;
			int rounds = vg ? 25 : 20000;
			for (int i = 0; i < rounds; i++) {
				int t = budget_acquire(&shm, NP_EP_PRIMARY, k + 1);
				if (t >= 0) {
					if (budget_in_use(&shm, NP_EP_PRIMARY) > 3)
						over = 1;
					budget_release(&shm, NP_EP_PRIMARY, t);
				}
				budget_wake_consume(&shm);
			}
			child_exit(over);
		}
	}
	for (int k = 0; k < nkids; k++) {
		int st;
		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 0);
	atomic_store(&shm.hdr->ep[NP_EP_PRIMARY].configured, 4);
}

/* A process dies holding tokens: they stay counted until the janitor's time, then are free. */
static void test_orphan_reclaim(void **state)
{
	int sync[2];
	assert_int_equal(pipe(sync), 0);
	pid_t kid = fork();
	if (kid == 0) {
		int t = budget_acquire(&shm, NP_EP_PRIMARY, 3);
		budget_set_phase(&shm, NP_EP_PRIMARY, t, NP_TOK_CONNECTED);
		char c = 1;
		if (write(sync[1], &c, 1) != 1)
			child_exit(1);
		pause();
		child_exit(0);
	}
	char c;
	assert_int_equal(read(sync[0], &c, 1), 1);
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 1);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	/* still counted: the server may not have seen the close yet */
	assert_int_equal(budget_orphan_pid(&shm, kid, 100), 1);
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 1);
	assert_int_equal(budget_janitor(&shm, 100), 0);
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 1);
	usleep(150 * 1000);
	assert_int_equal(budget_janitor(&shm, 100), 1);
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 0);
	close(sync[0]);
	close(sync[1]);
}

/* The janitor's backstop: an owner that vanished without the master orphaning its token. */
static void test_janitor_backstop(void **state)
{
	pid_t kid = fork();
	if (kid == 0) {
		budget_acquire(&shm, NP_EP_PRIMARY, 3);
		child_exit(0);
	}
	waitpid(kid, NULL, 0);
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 1);
	assert_int_equal(budget_janitor(&shm, 0), 0); /* marks it orphaned */
	assert_int_equal(budget_janitor(&shm, 0), 1); /* then frees it */
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 0);
}

/* A release by a process that does not own the token (a stale index, a pid reused) must not
 * touch the owner's state: the releaser writes only while it owns the token. */
static void test_release_not_owner(void **state)
{
	clean_tokens();
	int t = budget_acquire(&shm, NP_EP_PRIMARY, 1);
	assert_true(t >= 0);
	budget_set_phase(&shm, NP_EP_PRIMARY, t, NP_TOK_CONNECTED);
	budget_set_backend(&shm, NP_EP_PRIMARY, t, 4242);
	pid_t kid = fork();
	if (kid == 0) {
		budget_release(&shm, NP_EP_PRIMARY, t);
		child_exit(0);
	}
	waitpid(kid, NULL, 0);
	const struct np_token *tok = &shm.hdr->ep[NP_EP_PRIMARY].tokens[t];
	assert_int_equal(atomic_load(&tok->owner), (int32_t)getpid());
	assert_int_equal(atomic_load(&tok->phase), NP_TOK_CONNECTED);
	assert_int_equal(atomic_load(&tok->backend_pid), 4242);
	budget_release(&shm, NP_EP_PRIMARY, t);
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 0);
	while (budget_wake_consume(&shm))
		;
}

/* The keeper frees a dead owner's token only while it is still the dead one's: once another
 * process took it, nothing of the new owner's state is written (pins keeper_poll's old
 * check-then-store order, which could overwrite a new owner's phase). */
static void test_free_dead_not_owner(void **state)
{
	clean_tokens();
	int t = budget_acquire(&shm, NP_EP_PRIMARY, 2);
	assert_true(t >= 0);
	budget_set_phase(&shm, NP_EP_PRIMARY, t, NP_TOK_CONNECTING);
	budget_set_backend(&shm, NP_EP_PRIMARY, t, 777);
	/* the token is ours (alive), not the "dead" pid's */
	assert_false(budget_free_dead(&shm, NP_EP_PRIMARY, t, getpid() + 100000));
	const struct np_token *tok = &shm.hdr->ep[NP_EP_PRIMARY].tokens[t];
	assert_int_equal(atomic_load(&tok->owner), (int32_t)getpid());
	assert_int_equal(atomic_load(&tok->phase), NP_TOK_CONNECTING);
	assert_int_equal(atomic_load(&tok->backend_pid), 777);
	/* a token the dead pid still owns is freed, owner last */
	pid_t kid = fork();
	if (kid == 0) {
		budget_acquire(&shm, NP_EP_PRIMARY, 3);
		child_exit(0);
	}
	waitpid(kid, NULL, 0);
	int dead_tok = -1;
	for (int i = 0; i < NP_MAX_BUDGET; i++)
		if (atomic_load(&shm.hdr->ep[NP_EP_PRIMARY].tokens[i].owner) == (int32_t)kid)
			dead_tok = i;
	assert_true(dead_tok >= 0);
	assert_true(budget_free_dead(&shm, NP_EP_PRIMARY, dead_tok, kid));
	assert_int_equal(atomic_load(&shm.hdr->ep[NP_EP_PRIMARY].tokens[dead_tok].owner), 0);
	assert_int_equal(atomic_load(&shm.hdr->ep[NP_EP_PRIMARY].tokens[dead_tok].phase), NP_TOK_FREE);
	budget_release(&shm, NP_EP_PRIMARY, t);
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 0);
	while (budget_wake_consume(&shm))
		;
}

/* The janitor backstop leaves alone a dead owner whose slot still names it: the master is
 * between waitpid() and orphaning it (and keeps its socket: it must be the one to orphan it). */
static void test_janitor_backstop_waits_for_reap(void **state)
{
	clean_tokens();
	pid_t kid = fork();
	if (kid == 0) {
		budget_acquire(&shm, NP_EP_PRIMARY, 5);
		child_exit(0);
	}
	atomic_store(&shm.slots[5].pid, (int32_t)kid);
	waitpid(kid, NULL, 0);
	assert_int_equal(budget_janitor(&shm, 0), 0);
	assert_int_equal(budget_janitor(&shm, 0), 0);
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 1);
	int t = -1;
	for (int i = 0; i < NP_MAX_BUDGET; i++)
		if (atomic_load(&shm.hdr->ep[NP_EP_PRIMARY].tokens[i].owner) == (int32_t)kid)
			t = i;
	assert_true(t >= 0);
	assert_int_not_equal(atomic_load(&shm.hdr->ep[NP_EP_PRIMARY].tokens[t].phase), NP_TOK_ORPHANED);
	/* the master reaps: orphans, then frees the slot; the janitor frees after the grace */
	assert_int_equal(budget_orphan_pid(&shm, kid, 0), 1);
	atomic_store(&shm.slots[5].pid, 0);
	assert_int_equal(budget_janitor(&shm, 0), 1);
	assert_int_equal(budget_in_use(&shm, NP_EP_PRIMARY), 0);
	while (budget_wake_consume(&shm))
		;
}

static void test_permits(void **state)
{
	assert_true(budget_permit_take(&shm, NP_EP_PRIMARY, 2));
	assert_true(budget_permit_take(&shm, NP_EP_PRIMARY, 2));
	assert_false(budget_permit_take(&shm, NP_EP_PRIMARY, 2));
	budget_permit_give(&shm, NP_EP_PRIMARY);
	assert_true(budget_permit_take(&shm, NP_EP_PRIMARY, 2));
	budget_permit_give(&shm, NP_EP_PRIMARY);
	budget_permit_give(&shm, NP_EP_PRIMARY);
	/* a dead process's permit is given back by the master */
	pid_t kid = fork();
	if (kid == 0)
		child_exit(budget_permit_take(&shm, NP_EP_PRIMARY, 1) ? 0 : 1);
	int st;
	waitpid(kid, &st, 0);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_false(budget_permit_take(&shm, NP_EP_PRIMARY, 1));
	budget_orphan_pid(&shm, kid, 0);
	assert_true(budget_permit_take(&shm, NP_EP_PRIMARY, 1));
	budget_permit_give(&shm, NP_EP_PRIMARY);
}

static void test_connect_classes(void **state)
{
	assert_int_equal(pgconn_classify_connect("FATAL:  sorry, too many clients already"), NP_DB_BUSY);
	assert_int_equal(pgconn_classify_connect("FATAL:  remaining connection slots are reserved for non-replication superuser connections"), NP_DB_BUSY);
	assert_int_equal(pgconn_classify_connect("ERROR: Too many connections to this endpoint. Please try again later."), NP_DB_BUSY);
	assert_int_equal(pgconn_classify_connect("Failed to acquire permit to connect to the database."), NP_DB_BUSY);
	assert_int_equal(pgconn_classify_connect("no more connections allowed (max_client_conn)"), NP_DB_BUSY);
	assert_int_equal(pgconn_classify_connect("FATAL:  password authentication failed for user \"x\""), NP_DB_CONFIG);
	assert_int_equal(pgconn_classify_connect("Control plane request failed: endpoint is disabled"), NP_DB_CONFIG);
	assert_int_equal(pgconn_classify_connect("Your account or project has exceeded the compute time quota."), NP_DB_CONFIG);
	assert_int_equal(pgconn_classify_connect("Endpoint ID is not specified. Either please upgrade"), NP_DB_CONFIG);
	assert_int_equal(pgconn_classify_connect("FATAL:  database \"nope\" does not exist"), NP_DB_CONFIG);
	assert_int_equal(pgconn_classify_connect("Couldn't connect to compute node: timeout"), NP_DB_DOWN);
	assert_int_equal(pgconn_classify_connect("connection to server at \"127.0.0.1\", port 5 failed: Connection refused"), NP_DB_DOWN);
	assert_int_equal(pgconn_classify_connect("FATAL:  the database system is shutting down"), NP_DB_DOWN);
	assert_int_equal(pgconn_classify_connect(NULL), NP_DB_DOWN);
}

static void test_sqlstate_classes(void **state)
{
	assert_int_equal(pgconn_classify_sqlstate("57P01", false), NP_DB_TRANSIENT);
	assert_int_equal(pgconn_classify_sqlstate("08006", false), NP_DB_TRANSIENT);
	assert_int_equal(pgconn_classify_sqlstate("25P03", false), NP_DB_TRANSIENT);
	assert_int_equal(pgconn_classify_sqlstate("40001", false), NP_DB_TRANSIENT);
	assert_int_equal(pgconn_classify_sqlstate("53300", false), NP_DB_BUSY);
	assert_int_equal(pgconn_classify_sqlstate("57014", false), NP_DB_CANCELED);
	assert_int_equal(pgconn_classify_sqlstate("22P02", false), NP_DB_QUERY);
	assert_int_equal(pgconn_classify_sqlstate("XX000", true), NP_DB_TRANSIENT);
	assert_int_equal(pgconn_classify_sqlstate(NULL, true), NP_DB_TRANSIENT);
	assert_int_equal(pgconn_classify_sqlstate("", false), NP_DB_QUERY);
}

/* Two masters (an upgrade) assign slots at once: no slot is given to both (CAS FREE -> STARTING). */
static void test_slot_assign_two_masters(void **state)
{
	(void)state;
	enum { EACH = NP_MAX_SLOTS / 2 };
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < EACH; i++)
			if (shm_slot_assign(&shm, NP_KIND_WORKER, 2) < 0)
				child_exit(1);
		child_exit(0);
	}
	int mine = 0;
	for (int i = 0; i < EACH; i++)
		mine += shm_slot_assign(&shm, NP_KIND_WORKER, 1) >= 0;
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(mine, EACH);
	int gen[3] = { 0 };
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		uint32_t g = atomic_load(&shm.slots[i].generation);
		if (atomic_load(&shm.slots[i].kind) == NP_KIND_WORKER && g <= 2)
			gen[g]++;
	}
	assert_int_equal(gen[1], EACH);
	assert_int_equal(gen[2], EACH);
	for (int i = 0; i < NP_MAX_SLOTS; i++)
		if (atomic_load(&shm.slots[i].kind) != NP_KIND_NONE)
			shm_slot_reclaim(&shm, i);
	assert_true(shm_slot_assign(&shm, NP_KIND_WORKER, 1) >= 0);
	for (int i = 0; i < NP_MAX_SLOTS; i++)
		if (atomic_load(&shm.slots[i].kind) != NP_KIND_NONE)
			shm_slot_reclaim(&shm, i);
}

/* A new master adopts a region of its own layout only. */
static void test_adopt_layout(void **state)
{
	(void)state;
	char path[] = "/tmp/np-test-adopt-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	struct np_shm a = { 0 }, b = { 0 };
	assert_int_equal(shm_create(&a, path), 0);
	atomic_store(&a.hdr->generation, 7);
	b.lock_fd = dup(a.lock_fd);
	b.locked = true;
	uint32_t layout = 0;
	assert_int_equal(shm_adopt(&b, &layout), 0);
	assert_int_equal(atomic_load(&b.hdr->generation), 7); /* the same region, unchanged */
	shm_detach(&b);
	a.hdr->layout = NP_SHM_LAYOUT + 1;
	b.lock_fd = dup(a.lock_fd);
	b.locked = true;
	assert_int_equal(shm_adopt(&b, &layout), -1);
	assert_int_equal(errno, EPROTO);
	assert_int_equal(layout, NP_SHM_LAYOUT + 1);
	close(b.lock_fd);
	unlink(path);
	shm_detach(&a);
}

/* An upgrade to another layout: tokens given away are nobody's here (not taken, not reclaimed,
 * counted in use) until taken back; a region whose tokens are granted is capped at the grant. */
static void test_given_tokens(void **state)
{
	(void)state;
	clean_tokens();
	const int ep = NP_EP_PRIMARY;
	int held = budget_acquire(&shm, ep, 1);
	assert_true(held >= 0);
	int given[4], n = 0, t;
	while ((t = budget_give_one(&shm, ep)) >= 0) {
		assert_int_not_equal(t, held);
		assert_true(t < 4); /* never past the configured budget */
		given[n++] = t;
	}
	assert_int_equal(n, 3); /* the free ones below the limit, none of the 60 past it */
	assert_int_equal(budget_given(&shm, ep), 3);
	assert_int_equal(budget_in_use(&shm, ep), 4);
	assert_int_equal(budget_acquire(&shm, ep, 1), -1);
	assert_string_equal(budget_phase_name(atomic_load(&shm.hdr->ep[ep].tokens[given[0]].phase)), "given");
	/* the janitor leaves a given token alone, whatever time passes */
	assert_int_equal(budget_janitor(&shm, 0), 0);
	assert_int_equal(budget_given(&shm, ep), 3);
	/* a release of our own token is not taken for a given one */
	budget_release(&shm, ep, held);
	assert_int_equal(budget_given(&shm, ep), 3);
	budget_take_back(&shm, ep, given[1]);
	assert_int_equal(budget_given(&shm, ep), 2);
	int a = budget_acquire(&shm, ep, 1), b = budget_acquire(&shm, ep, 1);
	assert_true(a >= 0 && b >= 0);
	assert_int_equal(budget_acquire(&shm, ep, 1), -1);
	budget_release(&shm, ep, a);
	budget_release(&shm, ep, b);
	budget_take_back(&shm, ep, given[0]);
	budget_take_back(&shm, ep, given[2]);
	assert_int_equal(budget_given(&shm, ep), 0);
	/* the new generation's region: capped at what it was granted while the grant is active */
	atomic_store(&shm.hdr->grant_active, 1);
	atomic_store(&shm.hdr->ep[ep].granted, 2);
	assert_int_equal(budget_limit(&shm, ep), 2);
	a = budget_acquire(&shm, ep, 1);
	b = budget_acquire(&shm, ep, 1);
	assert_true(a >= 0 && b >= 0);
	assert_int_equal(budget_acquire(&shm, ep, 1), -1);
	atomic_store(&shm.hdr->grant_active, 0);
	assert_int_equal(budget_limit(&shm, ep), 4);
	budget_release(&shm, ep, a);
	budget_release(&shm, ep, b);
	atomic_store(&shm.hdr->ep[ep].granted, 0);
	clean_tokens();
	/* a limit clamped below the configured budget: only tokens under it are given */
	atomic_store(&shm.hdr->ep[ep].limit, 2);
	assert_true(budget_give_one(&shm, ep) < 2);
	assert_true(budget_give_one(&shm, ep) < 2);
	assert_int_equal(budget_give_one(&shm, ep), -1);
	atomic_store(&shm.hdr->ep[ep].limit, 0);
	clean_tokens();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_holds),        cmocka_unit_test(test_unconfigured_endpoint),
		cmocka_unit_test(test_clamped_limit),      cmocka_unit_test(test_race_between_processes),
		cmocka_unit_test(test_orphan_reclaim),     cmocka_unit_test(test_janitor_backstop),
		cmocka_unit_test(test_release_not_owner),  cmocka_unit_test(test_free_dead_not_owner),
		 cmocka_unit_test(test_janitor_backstop_waits_for_reap),
		cmocka_unit_test(test_permits),            cmocka_unit_test(test_connect_classes),
		cmocka_unit_test(test_sqlstate_classes),
		cmocka_unit_test(test_slot_assign_two_masters), cmocka_unit_test(test_adopt_layout),
		cmocka_unit_test(test_given_tokens),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
