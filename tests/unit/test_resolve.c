/* SPDX-License-Identifier: PostgreSQL */
/* test_resolve.c - the conninfo's hosts split and rebuilt for hostaddr: names, literals, sockets, multi-host, hostaddr given. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolve.h"
#include "util.h"

static char err[256];
static char addrs[RESOLVE_MAX_HOSTS][RESOLVE_MAX_ADDRS][RESOLVE_ADDR_LEN];
static int naddrs[RESOLVE_MAX_HOSTS];

static int setup(void **state)
{
	(void)state;
	unsetenv("PGHOST");
	unsetenv("PGPORT");
	unsetenv("PGHOSTADDR");
	unsetenv("PGSERVICE");
	memset(addrs, 0, sizeof(addrs));
	memset(naddrs, 0, sizeof(naddrs));
	return 0;
}

static void test_invalid_first(void **state)
{
	struct np_resolve_hosts h;
	(void)state;
	assert_int_equal(resolve_split("host=a port", &h, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "invalid database URL"));
	assert_int_equal(resolve_split("host=a,b,c port=1,2", &h, err, sizeof(err)), -1);
	assert_int_equal(resolve_split("host=a,b,c,d,e,f,g,h,i", &h, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 8 hosts"));
}

static void test_kinds(void **state)
{
	struct np_resolve_hosts h;
	(void)state;
	assert_int_equal(resolve_split("postgresql://u@ep-x.neon.tech:5433,127.0.0.1,[::1],%2Ftmp/db?sslmode=verify-full",
	                               &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 4);
	assert_true(h.any_name);
	assert_false(h.pass_through);
	assert_string_equal(h.host[0], "ep-x.neon.tech");
	assert_int_equal(h.kind[0], RESOLVE_NAME);
	assert_string_equal(h.port[0], "5433");
	assert_int_equal(h.kind[1], RESOLVE_LITERAL);
	assert_string_equal(h.port[1], "");
	assert_string_equal(h.host[2], "::1");
	assert_int_equal(h.kind[2], RESOLVE_LITERAL);
	assert_string_equal(h.host[3], "/tmp");
	assert_int_equal(h.kind[3], RESOLVE_SOCKET);

	assert_int_equal(resolve_split("host=/run/postgresql,@abstract dbname=x", &h, err, sizeof(err)), 0);
	assert_false(h.any_name);
	assert_int_equal(resolve_split("dbname=x", &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 0);
	assert_false(h.any_name);
}

static void test_pass_through(void **state)
{
	struct np_resolve_hosts h;
	(void)state;
	assert_int_equal(resolve_split("host=db.example hostaddr=10.0.0.1", &h, err, sizeof(err)), 0);
	assert_true(h.pass_through);
	assert_false(h.any_name);
	assert_int_equal(resolve_split("service=mydb", &h, err, sizeof(err)), 0);
	assert_true(h.pass_through);
	setenv("PGHOSTADDR", "10.0.0.2", 1);
	assert_int_equal(resolve_split("host=db.example", &h, err, sizeof(err)), 0);
	assert_true(h.pass_through);
	unsetenv("PGHOSTADDR");
	/* libpq's environment defaults apply when the string says nothing */
	setenv("PGHOST", "env.example", 1);
	setenv("PGPORT", "6000", 1);
	assert_int_equal(resolve_split("dbname=x", &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.host[0], "env.example");
	assert_string_equal(h.port[0], "6000");
	assert_true(h.any_name);
	unsetenv("PGHOST");
	unsetenv("PGPORT");
}

static void test_build_multi(void **state)
{
	struct np_resolve_hosts h;
	struct np_resolved r;
	(void)state;
	assert_int_equal(resolve_split("host=a.example,127.0.0.1,/tmp,b.example port=1,2,3,4", &h, err, sizeof(err)), 0);
	strcpy(addrs[0][0], "10.0.0.1");
	strcpy(addrs[0][1], "2001:db8::1");
	naddrs[0] = 2;
	naddrs[3] = 0; /* b.example: no address, left out */
	assert_int_equal(resolve_build(&h, (const char(*)[RESOLVE_MAX_ADDRS][RESOLVE_ADDR_LEN])addrs, naddrs, &r), 4);
	assert_true(r.use);
	/* the name repeated once per address: libpq uses host for SNI and verify-full */
	assert_string_equal(r.host, "a.example,a.example,127.0.0.1,/tmp");
	assert_string_equal(r.hostaddr, "10.0.0.1,2001:db8::1,127.0.0.1,");
	assert_string_equal(r.port, "1,1,2,3");
}

static void test_build_single_port_and_none(void **state)
{
	struct np_resolved r;
	struct np_resolve_hosts h;
	(void)state;
	assert_int_equal(resolve_split("postgresql://db.example:5999/x", &h, err, sizeof(err)), 0);
	strcpy(addrs[0][0], "192.0.2.7");
	naddrs[0] = 1;
	assert_int_equal(resolve_build(&h, (const char(*)[RESOLVE_MAX_ADDRS][RESOLVE_ADDR_LEN])addrs, naddrs, &r), 1);
	assert_string_equal(r.host, "db.example");
	assert_string_equal(r.hostaddr, "192.0.2.7");
	assert_string_equal(r.port, "5999");
	/* no port anywhere: none passed */
	assert_int_equal(resolve_split("host=db.example", &h, err, sizeof(err)), 0);
	assert_int_equal(resolve_build(&h, (const char(*)[RESOLVE_MAX_ADDRS][RESOLVE_ADDR_LEN])addrs, naddrs, &r), 1);
	assert_string_equal(r.port, "");
	/* nothing resolved: nothing to connect to */
	naddrs[0] = 0;
	assert_int_equal(resolve_build(&h, (const char(*)[RESOLVE_MAX_ADDRS][RESOLVE_ADDR_LEN])addrs, naddrs, &r), 0);
	assert_false(r.use);
}

static void test_build_too_long(void **state)
{
	struct np_resolve_hosts h;
	struct np_resolved r;
	char name[250], ci[400];
	(void)state;
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(ci, sizeof(ci), "host=%s", name);
	assert_int_equal(resolve_split(ci, &h, err, sizeof(err)), 0);
	naddrs[0] = RESOLVE_MAX_ADDRS;
	for (int j = 0; j < RESOLVE_MAX_ADDRS; j++)
		strcpy(addrs[0][j], "10.0.0.1");
	/* 8 x 250 bytes of host names do not fit the 1024-byte list */
	assert_int_equal(resolve_build(&h, (const char(*)[RESOLVE_MAX_ADDRS][RESOLVE_ADDR_LEN])addrs, naddrs, &r), -1);
	assert_false(r.use);
}

/* The live path without a lookup: literals and sockets pass to libpq unchanged. (Lookups through
 * getaddrinfo_a are the integration tests' (t_db_dns_blackhole, t_db_error_reasons): glibc's
 * resolver threads outlive a unit test and valgrind counts them as possibly lost.) */
static void test_conninfo_no_lookup(void **state)
{
	struct np_resolved r;
	(void)state;
	resolve_init(60, -1);
	assert_int_equal(resolve_conninfo("host=127.0.0.1,::1,/tmp port=5432", util_now_ms() + 1000, &r, err, sizeof(err)), 0);
	assert_false(r.use);
	assert_int_equal(resolve_conninfo("host=db.example hostaddr=192.0.2.1", util_now_ms(), &r, err, sizeof(err)), 0);
	assert_false(r.use);
	/* a URL libpq cannot parse: passed through, libpq's own message will say why */
	assert_int_equal(resolve_conninfo("host=a port", util_now_ms(), &r, err, sizeof(err)), 0);
	assert_false(r.use);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_invalid_first, setup),
		cmocka_unit_test_setup(test_kinds, setup),
		cmocka_unit_test_setup(test_pass_through, setup),
		cmocka_unit_test_setup(test_build_multi, setup),
		cmocka_unit_test_setup(test_build_single_port_and_none, setup),
		cmocka_unit_test_setup(test_build_too_long, setup),
		cmocka_unit_test_setup(test_conninfo_no_lookup, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
