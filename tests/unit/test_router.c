/* SPDX-License-Identifier: PostgreSQL */
/* test_router.c - route matching: literals, {params}, 404 versus 405 with Allow. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "api.h"
#include "router.h"

static void h(struct np_request *req, struct np_response *resp) { (void)req; (void)resp; }

static const struct np_route routes[] = {
	{ "GET", "/healthz", h, 0, "healthz" },
	{ "GET", "/api/v1/books", h, 0, "books.list" },
	{ "POST", "/api/v1/books", h, 0, "books.create" },
	{ "GET", "/api/v1/books/{id}", h, 0, "books.get" },
	{ "DELETE", "/api/v1/books/{id}", h, 0, "books.delete" },
	{ "GET", "/api/v1/books/{book}/chapters/{n}", h, 0, "chapters.get" },
	{ "POST", "/api/v1/sessions", h, 0, "sessions.create" },
};
#define N (sizeof(routes) / sizeof(routes[0]))

static void test_literal(void **state)
{
	struct np_route_match m;
	assert_int_equal(router_match(routes, N, "GET", "/healthz", &m), ROUTER_OK);
	assert_string_equal(m.route->name, "healthz");
	assert_int_equal(m.nparams, 0);
}

static void test_params(void **state)
{
	struct np_route_match m;
	assert_int_equal(router_match(routes, N, "GET", "/api/v1/books/42", &m), ROUTER_OK);
	assert_string_equal(m.route->name, "books.get");
	assert_string_equal(router_param(&m, "id"), "42");
	assert_null(router_param(&m, "nope"));
	assert_int_equal(router_match(routes, N, "GET", "/api/v1/books/7/chapters/3", &m), ROUTER_OK);
	assert_string_equal(m.route->name, "chapters.get");
	assert_string_equal(router_param(&m, "book"), "7");
	assert_string_equal(router_param(&m, "n"), "3");
}

static void test_not_found(void **state)
{
	struct np_route_match m;
	assert_int_equal(router_match(routes, N, "GET", "/healthz/", &m), ROUTER_NOT_FOUND);
	assert_int_equal(router_match(routes, N, "GET", "/healthzz", &m), ROUTER_NOT_FOUND);
	assert_int_equal(router_match(routes, N, "GET", "/api/v1/books/", &m), ROUTER_NOT_FOUND);
	assert_int_equal(router_match(routes, N, "GET", "/api/v1/books//chapters/1", &m), ROUTER_NOT_FOUND);
	assert_int_equal(router_match(routes, N, "GET", "/", &m), ROUTER_NOT_FOUND);
	assert_int_equal(router_match(routes, N, "GET", "", &m), ROUTER_NOT_FOUND);
}

static void test_method_not_allowed(void **state)
{
	struct np_route_match m;
	assert_int_equal(router_match(routes, N, "PUT", "/api/v1/books", &m), ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET, HEAD, POST");
	assert_int_equal(router_match(routes, N, "POST", "/api/v1/books/1", &m), ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET, HEAD, DELETE");
	assert_int_equal(router_match(routes, N, "POST", "/healthz", &m), ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET, HEAD");
}

/* HEAD of a GET route is that route, with its parameters; HEAD of a path without GET is 405. */
static void test_head_is_get(void **state)
{
	struct np_route_match m;
	assert_int_equal(router_match(routes, N, "HEAD", "/healthz", &m), ROUTER_OK);
	assert_string_equal(m.route->method, "GET");
	assert_string_equal(m.route->name, "healthz");
	assert_int_equal(router_match(routes, N, "HEAD", "/api/v1/books/7/chapters/3", &m), ROUTER_OK);
	assert_string_equal(m.route->name, "chapters.get");
	assert_string_equal(router_param(&m, "book"), "7");
	assert_string_equal(router_param(&m, "n"), "3");
	assert_int_equal(router_match(routes, N, "HEAD", "/nope", &m), ROUTER_NOT_FOUND);
	assert_int_equal(router_match(routes, N, "HEAD", "/api/v1/sessions", &m), ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "POST");
}

static void test_param_too_long(void **state)
{
	char path[400];
	strcpy(path, "/api/v1/books/");
	memset(path + strlen(path), '9', 200);
	path[14 + 200] = '\0';
	struct np_route_match m;
	assert_int_equal(router_match(routes, N, "GET", path, &m), ROUTER_NOT_FOUND);
}

static void test_app_table(void **state)
{
	size_t n;
	const struct np_route *t = api_routes(&n);
	struct np_route_match m;
	assert_true(n >= 2);
	assert_int_equal(router_match(t, n, "GET", "/healthz", &m), ROUTER_OK);
	assert_int_equal(router_match(t, n, "GET", "/api/v1/version", &m), ROUTER_OK);
	/* every route has a name, a handler and a pattern starting with / */
	for (size_t i = 0; i < n; i++) {
		assert_non_null(t[i].handler);
		assert_non_null(t[i].name);
		assert_int_equal(t[i].pattern[0], '/');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_method_not_allowed), cmocka_unit_test(test_head_is_get),
		cmocka_unit_test(test_param_too_long),
		cmocka_unit_test(test_app_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
