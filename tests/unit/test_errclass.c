/* SPDX-License-Identifier: PostgreSQL */
/* test_errclass.c - the one table of error classes: connect texts (libpq's and Neon's proxy's) and SQLSTATEs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "errclass.h"

#define KIND(msg) (errclass_connect(msg)->kind)

static void test_unknown_and_null(void **state)
{
	(void)state;
	assert_int_equal(KIND(NULL), NP_ERR_OTHER);
	assert_int_equal(KIND(""), NP_ERR_OTHER);
	assert_int_equal(KIND("something nobody ever said"), NP_ERR_OTHER);
	/* the daemon treats an unknown connect failure as down: the breaker counts it */
	assert_int_equal(errclass_connect(NULL)->cls, NP_DB_DOWN);
	assert_string_equal(errclass_of_kind((enum np_errkind)9999)->name, "other");
	assert_string_equal(errclass_of_kind(NP_ERR_COUNT)->name, "other");
}

static void test_every_kind_has_an_entry(void **state)
{
	(void)state;
	for (int k = 0; k < NP_ERR_COUNT; k++) {
		const struct np_errclass *e = errclass_of_kind((enum np_errkind)k);
		assert_int_equal(e->kind, k);
		assert_non_null(e->name);
		assert_non_null(e->label);
		assert_true(strlen(e->name) > 0 && strlen(e->label) > 0);
		/* names are what check-db prints and the log's kind=: lowercase, no spaces */
		for (const char *p = e->name; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
	}
}

/* The classes issue 6 (defect 10) asks the reason to name, from libpq 15's own texts. */
static void test_libpq_connect_texts(void **state)
{
	(void)state;
	assert_int_equal(KIND("could not translate host name \"nosuch.example\" to address: Name or service not known"),
	                 NP_ERR_DNS);
	assert_int_equal(KIND("could not translate host name \"x\" to address: Temporary failure in name resolution"),
	                 NP_ERR_DNS);
	assert_int_equal(KIND("could not translate host name \"x\" to address: lookup timed out after 1000 ms"),
	                 NP_ERR_DNS);
	assert_int_equal(KIND("connection to server at \"127.0.0.1\", port 5 failed: Connection refused Is the server running on that host and accepting TCP/IP connections?"),
	                 NP_ERR_REFUSED);
	assert_int_equal(KIND("connection to server at \"10.0.0.1\", port 5432 failed: No route to host"), NP_ERR_UNREACHABLE);
	assert_int_equal(KIND("connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: No such file or directory"),
	                 NP_ERR_UNREACHABLE);
	assert_int_equal(KIND("connection to server at \"127.0.0.1\", port 5432 failed: SSL error: certificate verify failed"),
	                 NP_ERR_TLS_VERIFY);
	assert_int_equal(KIND("server certificate for \"localhost\" (and 2 other names) does not match host name \"other.example\""),
	                 NP_ERR_TLS_VERIFY);
	assert_int_equal(KIND("root certificate file \"/nope/root.crt\" does not exist"), NP_ERR_TLS_VERIFY);
	assert_int_equal(KIND("FATAL:  password authentication failed for user \"neonpool\""), NP_ERR_AUTH);
	assert_int_equal(KIND("FATAL:  role \"nobody\" does not exist"), NP_ERR_AUTH);
	assert_int_equal(KIND("FATAL:  no pg_hba.conf entry for host \"127.0.0.1\""), NP_ERR_AUTH);
	assert_int_equal(KIND("FATAL:  sorry, too many clients already"), NP_ERR_TOO_MANY_CLIENTS);
	assert_int_equal(KIND("FATAL:  remaining connection slots are reserved for non-replication superuser connections"),
	                 NP_ERR_TOO_MANY_CLIENTS);
	assert_int_equal(KIND("FATAL:  too many connections for role \"neonpool\""), NP_ERR_TOO_MANY_CLIENTS);
	assert_int_equal(KIND("timeout expired"), NP_ERR_TIMEOUT);
	assert_int_equal(KIND("connect timed out (deadline enforced by neonpool)"), NP_ERR_TIMEOUT);
	assert_int_equal(KIND("FATAL:  the database system is starting up"), NP_ERR_SERVER_UNAVAILABLE);
	assert_int_equal(KIND("FATAL:  terminating connection due to administrator command"), NP_ERR_SERVER_UNAVAILABLE);
	assert_int_equal(KIND("server closed the connection unexpectedly"), NP_ERR_CONNECTION_LOST);
	assert_int_equal(KIND("SSL SYSCALL error: EOF detected"), NP_ERR_CONNECTION_LOST);
	assert_int_equal(KIND("FATAL:  database \"nope\" does not exist"), NP_ERR_CONFIG);
	assert_int_equal(KIND("invalid sslmode value: \"bogus\""), NP_ERR_CONFIG);
	assert_int_equal(KIND("server does not support SSL, but SSL was required"), NP_ERR_TLS);
}

static void test_neon_texts(void **state)
{
	(void)state;
	assert_int_equal(KIND("ERROR: Endpoint ID is not specified. Either please upgrade the postgres client library"),
	                 NP_ERR_NEON_SNI);
	assert_int_equal(KIND("unsupported startup parameter in options: statement_timeout"), NP_ERR_NEON_STARTUP_PARAMETER);
	/* the compute's message mentions a timeout: still Neon's compute, not our timeout */
	assert_int_equal(KIND("Couldn't connect to compute node: timeout"), NP_ERR_NEON_COMPUTE);
	assert_int_equal(KIND("Your account or project has exceeded the compute time quota."), NP_ERR_NEON_QUOTA);
	assert_int_equal(KIND("You have exceeded the limit of concurrently active endpoints"), NP_ERR_NEON_ENDPOINT_LIMIT);
	/* the specific text before the generic control-plane prefix */
	assert_int_equal(KIND("Control plane request failed: endpoint is disabled"), NP_ERR_NEON_ENDPOINT_DISABLED);
	assert_int_equal(KIND("Console request failed: endpoint cannot be found"), NP_ERR_NEON_ENDPOINT_NOT_FOUND);
	assert_int_equal(KIND("Control plane request failed"), NP_ERR_NEON_CONTROL_PLANE);
	/* Neon's rate limit is not PostgreSQL's "too many connections for role" */
	assert_int_equal(KIND("Too many connections to this endpoint. Please try again later."), NP_ERR_NEON_RATE_LIMIT);
	assert_int_equal(KIND("Failed to acquire permit to connect to the database."), NP_ERR_NEON_RATE_LIMIT);
	assert_int_equal(KIND("no more connections allowed (max_client_conn)"), NP_ERR_TOO_MANY_CLIENTS);
	assert_int_equal(KIND("connection is insecure (try using sslmode=require)"), NP_ERR_TLS);
}

/* What the daemon does with each connect class. */
static void test_connect_actions(void **state)
{
	(void)state;
	assert_int_equal(errclass_connect("sorry, too many clients already")->cls, NP_DB_BUSY);
	assert_int_equal(errclass_connect("Too many connections to this endpoint")->cls, NP_DB_BUSY);
	assert_int_equal(errclass_connect("could not translate host name \"x\"")->cls, NP_DB_DOWN);
	assert_int_equal(errclass_connect("Connection refused")->cls, NP_DB_DOWN);
	assert_int_equal(errclass_connect("certificate verify failed")->cls, NP_DB_CONFIG);
	assert_int_equal(errclass_connect("password authentication failed")->cls, NP_DB_CONFIG);
	assert_int_equal(errclass_connect("endpoint is disabled")->cls, NP_DB_CONFIG);
	assert_false(errclass_connect("password authentication failed")->retryable);
	assert_true(errclass_connect("Connection refused")->retryable);
	assert_true(errclass_connect("could not translate host name \"x\"")->retryable);
	/* labels name the class for the breaker's reason */
	assert_non_null(strstr(errclass_of_kind(NP_ERR_DNS)->label, "DNS"));
	assert_non_null(strstr(errclass_of_kind(NP_ERR_TLS_VERIFY)->label, "TLS"));
	assert_non_null(strstr(errclass_of_kind(NP_ERR_REFUSED)->label, "refused"));
	assert_string_not_equal(errclass_of_kind(NP_ERR_DNS)->label, errclass_of_kind(NP_ERR_TLS_VERIFY)->label);
}

static void test_sqlstates(void **state)
{
	(void)state;
	enum np_db_class c;
	assert_int_equal(errclass_sqlstate("57P01", false, &c), NP_ERR_SERVER_UNAVAILABLE);
	assert_int_equal(c, NP_DB_TRANSIENT);
	assert_int_equal(errclass_sqlstate("08006", false, &c), NP_ERR_CONNECTION_LOST);
	assert_int_equal(c, NP_DB_TRANSIENT);
	assert_int_equal(errclass_sqlstate("08P01", false, &c), NP_ERR_CONNECTION_LOST);
	assert_int_equal(errclass_sqlstate("25P03", false, &c), NP_ERR_IDLE_TIMEOUT);
	assert_int_equal(c, NP_DB_TRANSIENT);
	assert_int_equal(errclass_sqlstate("40P01", false, &c), NP_ERR_SERIALIZATION);
	assert_int_equal(c, NP_DB_TRANSIENT);
	assert_int_equal(errclass_sqlstate("53300", true, &c), NP_ERR_TOO_MANY_CLIENTS);
	assert_int_equal(c, NP_DB_BUSY);
	assert_int_equal(errclass_sqlstate("57014", false, &c), NP_ERR_STATEMENT_TIMEOUT);
	assert_int_equal(c, NP_DB_CANCELED);
	assert_int_equal(errclass_sqlstate("22P02", false, &c), NP_ERR_QUERY);
	assert_int_equal(c, NP_DB_QUERY);
	/* a broken connection: whatever the code (Neon's XX000), a lost connection */
	assert_int_equal(errclass_sqlstate("XX000", true, &c), NP_ERR_CONNECTION_LOST);
	assert_int_equal(c, NP_DB_TRANSIENT);
	assert_int_equal(errclass_sqlstate(NULL, true, &c), NP_ERR_CONNECTION_LOST);
	assert_int_equal(c, NP_DB_TRANSIENT);
	assert_int_equal(errclass_sqlstate("", false, NULL), NP_ERR_QUERY);
	/* a one-character code does not match a class prefix by accident */
	assert_int_equal(errclass_sqlstate("0", false, &c), NP_ERR_QUERY);
}

static void test_class_names(void **state)
{
	(void)state;
	assert_string_equal(errclass_db_class_name(NP_DB_BUSY), "busy");
	assert_string_equal(errclass_db_class_name(NP_DB_DOWN), "down");
	assert_string_equal(errclass_db_class_name((enum np_db_class)77), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_and_null),   cmocka_unit_test(test_every_kind_has_an_entry),
		cmocka_unit_test(test_libpq_connect_texts), cmocka_unit_test(test_neon_texts),
		cmocka_unit_test(test_connect_actions),    cmocka_unit_test(test_sqlstates),
		cmocka_unit_test(test_class_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
