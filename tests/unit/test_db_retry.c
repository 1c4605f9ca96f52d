/* SPDX-License-Identifier: PostgreSQL */
/* test_db_retry.c - which failed queries are retried and where: never a non-idempotent request, once on the primary after any failure on the replica. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "db.h"

static const enum np_db_class all_classes[] = {
	NP_DB_TRANSIENT, NP_DB_BUSY, NP_DB_TIMEOUT, NP_DB_CANCELED, NP_DB_DOWN, NP_DB_CONFIG, NP_DB_QUERY,
};
#define NCLASSES (sizeof(all_classes) / sizeof(all_classes[0]))

static void test_non_idempotent_never_retried(void **state)
{
	for (size_t i = 0; i < NCLASSES; i++)
		for (int ep = 0; ep < NP_EP_COUNT; ep++)
			for (int attempt = 0; attempt < 2; attempt++)
				assert_int_equal(db_retry_plan(false, ep, all_classes[i], attempt), DB_RETRY_NONE);
}

static void test_replica_failure_goes_to_primary(void **state)
{
	for (size_t i = 0; i < NCLASSES; i++)
		assert_int_equal(db_retry_plan(true, NP_EP_REPLICA, all_classes[i], 0), DB_RETRY_PRIMARY);
}

static void test_primary_retries_only_lost_connections(void **state)
{
	assert_int_equal(db_retry_plan(true, NP_EP_PRIMARY, NP_DB_TRANSIENT, 0), DB_RETRY_SAME);
	for (size_t i = 0; i < NCLASSES; i++)
		if (all_classes[i] != NP_DB_TRANSIENT)
			assert_int_equal(db_retry_plan(true, NP_EP_PRIMARY, all_classes[i], 0), DB_RETRY_NONE);
}

static void test_only_once(void **state)
{
	for (size_t i = 0; i < NCLASSES; i++)
		for (int ep = 0; ep < NP_EP_COUNT; ep++)
			assert_int_equal(db_retry_plan(true, ep, all_classes[i], 1), DB_RETRY_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_non_idempotent_never_retried),
		cmocka_unit_test(test_replica_failure_goes_to_primary),
		cmocka_unit_test(test_primary_retries_only_lost_connections),
		cmocka_unit_test(test_only_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
