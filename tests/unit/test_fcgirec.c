/* SPDX-License-Identifier: PostgreSQL */
/* test_fcgirec.c - the FastCGI request-head scanner: invalid inputs, splits at every byte, limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "allowlist.h"
#include "fcgirec.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static const struct fcgirec_limits lim = { .max_params = 1024, .stdin_ready = 64, .cap = 4096 };

/* A tiny record writer. */
struct buf {
	uint8_t b[8192];
	size_t n;
};

static void rec(struct buf *b, uint8_t type, uint16_t id, const void *c, size_t clen, size_t plen)
{
	uint8_t *p = b->b + b->n;
	p[0] = 1;
	p[1] = type;
	p[2] = (uint8_t)(id >> 8);
	p[3] = (uint8_t)id;
	p[4] = (uint8_t)(clen >> 8);
	p[5] = (uint8_t)clen;
	p[6] = (uint8_t)plen;
	p[7] = 0;
	if (clen)
		memcpy(p + 8, c, clen);
	memset(p + 8 + clen, 0, plen);
	b->n += 8 + clen + plen;
}

static void begin(struct buf *b, uint16_t id, uint16_t role, uint8_t flags)
{
	uint8_t c[8] = { (uint8_t)(role >> 8), (uint8_t)role, flags, 0, 0, 0, 0, 0 };
	rec(b, 1, id, c, 8, 0);
}

/* "REQUEST_METHOD" = "GET", "REQUEST_URI" = "/healthz" */
static size_t params(uint8_t *out)
{
	size_t n = 0;
	out[n++] = 14;
	out[n++] = 3;
	memcpy(out + n, "REQUEST_METHODGET", 17);
	n += 17;
	out[n++] = 11;
	out[n++] = 8;
	memcpy(out + n, "REQUEST_URI/healthz", 19);
	n += 19;
	return n;
}

/* A whole GET: BEGIN, params in two records with padding, empty PARAMS, empty STDIN. */
static void get_request(struct buf *b, uint16_t id, uint8_t flags)
{
	uint8_t p[64];
	size_t n = params(p);
	memset(b, 0, sizeof(*b));
	begin(b, id, 1, flags);
	rec(b, 4, id, p, 10, 6);
	rec(b, 4, id, p + 10, n - 10, 3);
	rec(b, 4, id, NULL, 0, 0);
	rec(b, 5, id, NULL, 0, 0);
}

static void test_invalid_arguments(void **state)
{
	(void)state;
	struct fcgirec_result r;
	assert_int_equal(fcgirec_scan(NULL, 5, &lim, &r), FCGIREC_MALFORMED);
	assert_int_equal(fcgirec_scan((const uint8_t *)"x", 1, NULL, &r), FCGIREC_MALFORMED);
	assert_int_equal(fcgirec_scan(NULL, 0, &lim, &r), FCGIREC_INCOMPLETE);
	assert_int_equal(r.request_id, 0);
}

static void test_malformed(void **state)
{
	(void)state;
	struct fcgirec_result r;
	struct buf b;
	/* bad version */
	get_request(&b, 1, 0);
	b.b[0] = 2;
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_MALFORMED);
	/* HTTP instead of FastCGI */
	assert_int_equal(fcgirec_scan((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &lim, &r), FCGIREC_MALFORMED);
	/* first record is PARAMS */
	memset(&b, 0, sizeof(b));
	rec(&b, 4, 1, NULL, 0, 0);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_MALFORMED);
	/* BEGIN of the wrong length */
	memset(&b, 0, sizeof(b));
	rec(&b, 1, 1, "12345678", 7, 1);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_MALFORMED);
	/* role authorizer */
	memset(&b, 0, sizeof(b));
	begin(&b, 1, 2, 0);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_MALFORMED);
	/* params for another request id */
	memset(&b, 0, sizeof(b));
	begin(&b, 1, 1, 0);
	rec(&b, 4, 2, NULL, 0, 0);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_MALFORMED);
	/* STDIN before the params ended */
	memset(&b, 0, sizeof(b));
	begin(&b, 1, 1, 0);
	rec(&b, 5, 1, NULL, 0, 0);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_MALFORMED);
	/* ABORT after the params */
	memset(&b, 0, sizeof(b));
	begin(&b, 1, 1, 0);
	rec(&b, 4, 1, NULL, 0, 0);
	rec(&b, 2, 1, NULL, 0, 0);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_MALFORMED);
	/* a name length that claims more than the params hold (libfcgi would malloc it) */
	memset(&b, 0, sizeof(b));
	begin(&b, 1, 1, 0);
	uint8_t nv[] = { 0xff, 0xff, 0xff, 0xf0, 1, 'a' };
	rec(&b, 4, 1, nv, sizeof(nv), 2);
	rec(&b, 4, 1, NULL, 0, 0);
	rec(&b, 5, 1, NULL, 0, 0);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_MALFORMED);
	assert_string_equal(r.reason, "name-value pair longer than the params");
	/* a 4-byte length cut by the end of the params */
	memset(&b, 0, sizeof(b));
	begin(&b, 1, 1, 0);
	uint8_t half[] = { 0x80, 0 };
	rec(&b, 4, 1, half, sizeof(half), 6);
	rec(&b, 4, 1, NULL, 0, 0);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_MALFORMED);
}

static void test_complete(void **state)
{
	(void)state;
	struct fcgirec_result r;
	struct buf b;
	get_request(&b, 7, 1);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_READY);
	assert_int_equal(r.request_id, 7);
	assert_true(r.keep_conn);
	assert_int_equal(r.params_bytes, 40);
	assert_int_equal(r.stdin_bytes, 0);
	assert_string_equal(r.reason, "");
	get_request(&b, 1, 0);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_READY);
	assert_false(r.keep_conn);
}

/* Every proper prefix is INCOMPLETE; the whole is READY. */
static void test_split_at_every_byte(void **state)
{
	(void)state;
	struct fcgirec_result r;
	struct buf b;
	get_request(&b, 1, 0);
	for (size_t i = 0; i < b.n; i++)
		assert_int_equal(fcgirec_scan(b.b, i, &lim, &r), FCGIREC_INCOMPLETE);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_READY);
}

static void test_stdin(void **state)
{
	(void)state;
	struct fcgirec_result r;
	struct buf b;
	uint8_t p[64], body[200];
	memset(body, 'x', sizeof(body));
	memset(&b, 0, sizeof(b));
	begin(&b, 1, 1, 0);
	rec(&b, 4, 1, p, params(p), 0);
	rec(&b, 4, 1, NULL, 0, 0);
	size_t head = b.n;
	rec(&b, 5, 1, body, 40, 0);
	/* 40 body bytes: fewer than stdin_ready and no end yet */
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_INCOMPLETE);
	assert_int_equal(r.stdin_bytes, 40);
	rec(&b, 5, 1, NULL, 0, 0);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_READY);
	/* a long body: READY once stdin_ready bytes are there, even inside a record */
	b.n = head;
	rec(&b, 5, 1, body, 200, 0);
	assert_int_equal(fcgirec_scan(b.b, head + 8 + 63, &lim, &r), FCGIREC_INCOMPLETE);
	assert_int_equal(fcgirec_scan(b.b, head + 8 + 64, &lim, &r), FCGIREC_READY);
	assert_int_equal(r.stdin_bytes, 64);
}

static void test_management_records(void **state)
{
	(void)state;
	struct fcgirec_result r;
	struct buf b, g;
	get_request(&g, 1, 0);
	memset(&b, 0, sizeof(b));
	uint8_t gv[] = { 14, 0, 'F', 'C', 'G', 'I', '_', 'M', 'P', 'X', 'S', '_', 'C', 'O', 'N', 'N' };
	rec(&b, 9, 0, gv, sizeof(gv), 0); /* GET_VALUES */
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_INCOMPLETE);
	assert_int_equal(fcgirec_scan(b.b, b.n - 1, &lim, &r), FCGIREC_INCOMPLETE);
	memcpy(b.b + b.n, g.b, g.n);
	b.n += g.n;
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_READY);
	assert_int_equal(r.request_id, 1);
	/* between the params too */
	memset(&b, 0, sizeof(b));
	uint8_t p[64];
	begin(&b, 3, 1, 0);
	rec(&b, 4, 3, p, params(p), 0);
	rec(&b, 9, 0, gv, sizeof(gv), 0);
	rec(&b, 4, 3, NULL, 0, 0);
	rec(&b, 5, 3, NULL, 0, 0);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_READY);
}

static void test_too_large(void **state)
{
	(void)state;
	struct fcgirec_result r;
	struct buf b;
	uint8_t big[1100];
	memset(big, 'a', sizeof(big));
	big[0] = 1;
	big[1] = 0x80;
	big[2] = 0;
	big[3] = 0x04;
	big[4] = 0x40; /* value of 1088 bytes */
	memset(&b, 0, sizeof(b));
	begin(&b, 1, 1, 0);
	/* declared over max_params: TOO_LARGE from the header alone */
	rec(&b, 4, 1, big, sizeof(big), 4);
	assert_int_equal(fcgirec_scan(b.b, 16 + 8, &lim, &r), FCGIREC_TOO_LARGE);
	assert_int_equal(r.request_id, 1);
	assert_int_equal(r.params_bytes, sizeof(big));
	/* exactly max_params in two records is fine */
	memset(&b, 0, sizeof(b));
	begin(&b, 1, 1, 0);
	uint8_t nv[1024];
	memset(nv, 'v', sizeof(nv));
	nv[0] = 1;
	nv[1] = 0x80;
	nv[2] = 0;
	nv[3] = 0x03;
	nv[4] = 0xfa; /* name 1 byte, value 1018 bytes: 5 + 1 + 1018 = 1024 */
	rec(&b, 4, 1, nv, 512, 0);
	rec(&b, 4, 1, nv + 512, 512, 0);
	rec(&b, 4, 1, NULL, 0, 0);
	rec(&b, 5, 1, NULL, 0, 0);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_READY);
	assert_int_equal(r.params_bytes, 1024);
	/* one more byte is too large */
	memset(&b, 0, sizeof(b));
	begin(&b, 1, 1, 0);
	rec(&b, 4, 1, nv, 512, 0);
	rec(&b, 4, 1, nv, 513, 7);
	assert_int_equal(fcgirec_scan(b.b, b.n, &lim, &r), FCGIREC_TOO_LARGE);
	/* a buffer filled with management records and no request */
	struct fcgirec_limits small = { .max_params = 1024, .stdin_ready = 64, .cap = 64 };
	memset(&b, 0, sizeof(b));
	for (int i = 0; i < 8; i++)
		rec(&b, 9, 0, NULL, 0, 0);
	assert_int_equal(fcgirec_scan(b.b, 64, &small, &r), FCGIREC_TOO_LARGE);
	assert_int_equal(fcgirec_scan(b.b, 63, &small, &r), FCGIREC_INCOMPLETE);
}

static void test_frame_answer(void **state)
{
	(void)state;
	uint8_t out[256];
	struct fcgirec_result r;
	assert_int_equal(fcgirec_frame_answer(1, "x", 1, NULL, 0), 0);
	assert_int_equal(fcgirec_frame_answer(1, NULL, 3, out, sizeof(out)), 0);
	assert_int_equal(fcgirec_frame_answer(1, "Status: 431\r\n\r\n", 15, out, 20), 0);
	size_t n = fcgirec_frame_answer(0x1234, "Status: 431\r\n\r\n", 15, out, sizeof(out));
	assert_int_equal(n, 8 + 16 + 8 + 16);
	assert_int_equal(out[1], 6);
	assert_int_equal(out[2], 0x12);
	assert_int_equal(out[3], 0x34);
	assert_int_equal(out[5], 15);
	assert_int_equal(out[6], 1);
	assert_memory_equal(out + 8, "Status: 431\r\n\r\n", 15);
	assert_int_equal(out[24 + 1], 6); /* empty STDOUT */
	assert_int_equal(out[24 + 5], 0);
	assert_int_equal(out[32 + 1], 3); /* END_REQUEST */
	assert_int_equal(out[32 + 5], 8);
	/* the answer is well-formed records: version 1 everywhere, a scan sees no BEGIN */
	assert_int_equal(fcgirec_scan(out, n, &lim, &r), FCGIREC_MALFORMED);
	assert_string_equal(r.reason, "first record is not BEGIN_REQUEST");
}

static void test_allowlist(void **state)
{
	(void)state;
	struct allowlist l;
	char msg[128];
	assert_int_equal(allowlist_parse("", &l, msg, sizeof(msg)), -1);
	assert_int_equal(allowlist_parse("127.0.0.1,", &l, msg, sizeof(msg)), -1);
	assert_int_equal(allowlist_parse("10.0.0.0/33", &l, msg, sizeof(msg)), -1);
	assert_int_equal(allowlist_parse("10.0.0.0/", &l, msg, sizeof(msg)), -1);
	assert_int_equal(allowlist_parse("localhost", &l, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "localhost"));
	assert_int_equal(allowlist_parse("::1/129", &l, msg, sizeof(msg)), -1);
	assert_int_equal(allowlist_parse("127.0.0.0/8, ::1 ,10.1.2.3/16,fd00::/8", &l, msg, sizeof(msg)), 0);
	assert_int_equal(l.n, 4);

	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET, "127.9.9.9", &a4.sin_addr);
	assert_true(allowlist_match(&l, (struct sockaddr *)&a4));
	inet_pton(AF_INET, "10.1.200.1", &a4.sin_addr);
	assert_true(allowlist_match(&l, (struct sockaddr *)&a4));
	inet_pton(AF_INET, "10.2.0.1", &a4.sin_addr);
	assert_false(allowlist_match(&l, (struct sockaddr *)&a4));
	inet_pton(AF_INET6, "::1", &a6.sin6_addr);
	assert_true(allowlist_match(&l, (struct sockaddr *)&a6));
	inet_pton(AF_INET6, "::2", &a6.sin6_addr);
	assert_false(allowlist_match(&l, (struct sockaddr *)&a6));
	inet_pton(AF_INET6, "fdab::1", &a6.sin6_addr);
	assert_true(allowlist_match(&l, (struct sockaddr *)&a6));
	inet_pton(AF_INET6, "::ffff:127.0.0.2", &a6.sin6_addr); /* IPv4-mapped counts as IPv4 */
	assert_true(allowlist_match(&l, (struct sockaddr *)&a6));
	struct sockaddr un = { .sa_family = AF_UNIX };
	assert_true(allowlist_match(&l, &un));

	assert_int_equal(allowlist_parse("127.0.0.1", &l, msg, sizeof(msg)), 0);
	inet_pton(AF_INET, "127.0.0.2", &a4.sin_addr);
	assert_false(allowlist_match(&l, (struct sockaddr *)&a4));
	assert_int_equal(allowlist_parse("0.0.0.0/0", &l, msg, sizeof(msg)), 0);
	assert_true(allowlist_match(&l, (struct sockaddr *)&a4));
	assert_true(allowlist_match(&l, (struct sockaddr *)&a6)); /* still the IPv4-mapped one */
	inet_pton(AF_INET6, "::2", &a6.sin6_addr);
	assert_false(allowlist_match(&l, (struct sockaddr *)&a6));
}

/* admin_allow: addresses and the word unix; a textual address (REMOTE_ADDR) is matched as one,
 * anything that is not an address never is. 10.9.8.7 matched 127.0.0.0/8 before (strict aliasing
 * of two separate sockaddr objects under -O2). */
static void test_allowlist_admin(void **state)
{
	(void)state;
	struct allowlist l;
	bool unix_ok;
	char msg[128];
	assert_int_equal(allowlist_parse_admin("", &l, &unix_ok, msg, sizeof(msg)), -1);
	assert_int_equal(allowlist_parse_admin("unix,", &l, &unix_ok, msg, sizeof(msg)), -1);
	assert_int_equal(allowlist_parse_admin("unix, 10.0.0.300", &l, &unix_ok, msg, sizeof(msg)), -1);
	assert_int_equal(allowlist_parse_admin("unix", &l, &unix_ok, msg, sizeof(msg)), 0);
	assert_true(unix_ok);
	assert_int_equal(l.n, 0);
	assert_false(allowlist_match_text(&l, "127.0.0.1"));
	assert_int_equal(allowlist_parse_admin("127.0.0.0/8, unix ,::1", &l, &unix_ok, msg, sizeof(msg)), 0);
	assert_true(unix_ok);
	assert_int_equal(l.n, 2);
	assert_true(allowlist_match_text(&l, "127.0.0.1"));
	assert_true(allowlist_match_text(&l, "127.9.9.9"));
	assert_true(allowlist_match_text(&l, "::1"));
	assert_true(allowlist_match_text(&l, "::ffff:127.0.0.1"));
	assert_false(allowlist_match_text(&l, "10.9.8.7"));
	assert_false(allowlist_match_text(&l, "::2"));
	assert_false(allowlist_match_text(&l, "unix:"));
	assert_false(allowlist_match_text(&l, "localhost"));
	assert_false(allowlist_match_text(&l, ""));
	assert_false(allowlist_match_text(&l, NULL));
	assert_int_equal(allowlist_parse_admin("10.0.0.0/8", &l, &unix_ok, msg, sizeof(msg)), 0);
	assert_false(unix_ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invalid_arguments),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_complete),
		cmocka_unit_test(test_split_at_every_byte),
		cmocka_unit_test(test_stdin),
		cmocka_unit_test(test_management_records),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_frame_answer),
		cmocka_unit_test(test_allowlist),
		cmocka_unit_test(test_allowlist_admin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
