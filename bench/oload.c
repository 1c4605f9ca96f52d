/* SPDX-License-Identifier: PostgreSQL */
/* oload.c - an open-loop HTTP/1.1 load generator: a constant arrival rate, and every latency measured from
 * the time the request was MEANT to be sent (wrk2's method, against coordinated omission).
 *
 * Why the intended time. A closed-loop generator (wrk, ab) sends a connection's next request when the
 * previous answer arrives. When the server stalls for a second the generator stalls with it: the requests
 * users would have sent meanwhile are never sent, the stall shows up as one slow request per connection,
 * and the percentiles stay flattering. Timing from the ACTUAL send time after a stall has the same blind
 * spot. oload fixes the arrival schedule in advance and charges each request from its place in that
 * schedule, so a 1 s stall shows in every request that fell due during it (latencies from 1 s down to 0).
 *
 * The model (wrk2's). C connections, each with its own schedule: connection i's k-th request is meant to
 * go at t0 + (i + k*C) / RATE - an interval of C/RATE per connection, the connections' first times spread
 * evenly over one interval, together exactly RATE per second. A connection sends its next request at
 * max(its intended time, the completion of its previous response): one request in flight per connection,
 * no pipelining; a connection that fell behind catches up by sending back to back. The latency of a
 * request is its completion time minus its intended time. The first WARMUP seconds of the schedule run
 * but are not recorded; the next SECONDS are (a request is recorded when its intended time falls in the
 * window, whenever it completes). At the end of the window nothing more is sent; requests in flight get
 * up to TIMEOUT seconds to finish. Requests due in the window that were never sent (their connection was
 * still waiting for an earlier answer) are reported as "late".
 *
 * One deviation, for CPU: every wake-up costs far more than the request it serves (some 25 us of system
 * time on a small VM, where 16000 wake-ups/s alone take half a core), so when the TIMER wakes oload it
 * also sends the requests due within the next 0.5 ms (LOOKAHEAD_NS). At 8000 req/s that is one timer
 * wake-up per 4 requests instead of one per request, and oload's CPU falls by half; below 2000 req/s
 * (intervals over 0.5 ms) almost nothing changes. A request sent early is timed from its actual send time
 * (it waited for nothing, so that is its true latency): latency = completion - min(intended, sent). Sends
 * are never delayed on purpose, and a request held up behind a slow answer is still timed from its
 * intended time, which is the whole point.
 *
 * Mechanics. One thread: epoll, non-blocking sockets with TCP_NODELAY on keep-alive connections, a
 * min-heap of one deadline per connection (next intended time, request or connect timeout, reconnect
 * pause) and a timerfd armed (absolute, CLOCK_MONOTONIC) to the earliest: no busy waiting. A connection
 * the server closes (or that answered "Connection: close") is reopened at once (a reconnect). A connect,
 * read, write or protocol error fails the request in flight (an error, not a latency) and the connection
 * is reopened after 10 ms. A request outstanding for TIMEOUT seconds (since it was written) is a timeout;
 * its connection is reset and reopened. Responses: status line, headers (Content-Length,
 * Transfer-Encoding: chunked, Connection; case-insensitive), body by length, chunked (extensions and
 * trailers skipped) or until close; interim 1xx answers skipped; header block at most 16 KiB. Latencies
 * go into a log-linear histogram of microseconds: exact below 2.048 ms, within 0.05% above.
 *
 * Usage: oload -R RATE -d SECONDS [-c CONNECTIONS=100] [-w WARMUP_SECONDS=1] [-T TIMEOUT_S=10]
 *              [-s SEED] -p PATHS_FILE HOST PORT
 *   RATE 1..200000 requests/s, SECONDS 1..3600, CONNECTIONS 1..10000, WARMUP 0..3600, TIMEOUT 1..3600,
 *   HOST an IPv4 literal, PORT 1..65535. PATHS_FILE: one request path per line ("/api/v1/books/17"),
 *   starting with '/', printable ASCII without spaces, at most 2048 bytes, at most 1,000,000 lines (a
 *   CRLF line end is accepted). Each request picks a path uniformly at random (splitmix64 seeded by -s,
 *   by default from the clock; the seed is printed on stderr so a run can be repeated).
 *
 * Output: one line on stdout, times in milliseconds; diagnostics (seed, first errors, a breakdown,
 * CPU time) on stderr:
 *   OL offered=RATE achieved=<n / SECONDS> served=<responses completed in the window / SECONDS: the
 *      throughput; when the server falls behind, achieved counts only the window's own requests, served
 *      also the backlog it was still clearing> n=<completed responses> p50= p90= p99= p999= max=
 *      non2xx=<responses not 2xx/3xx> errors=<failed requests + failed connection attempts>
 *      timeouts=<requests that timed out> reconnects=<connections reopened> late=<due, never sent>
 *   n and the percentiles include non-2xx/3xx responses; errors and timeouts are not latencies. Every
 *   count is of the recorded window (requests by intended time, connection events by when they happen).
 *   Scheduled requests = RATE * SECONDS = n + failed requests + timeouts + late (the breakdown on stderr).
 * Exit: 0 it ran (whatever the server answered), 1 no connection could be opened at the start (or too
 * few file descriptors), 2 usage or paths file error.
 * Build: cc -O2 -std=c11 -Wall -Wextra -o oload bench/oload.c -lm
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define PAUSE_NS (10 * NS_PER_MS)       /* before reopening a connection after an error */
#define LOOKAHEAD_NS (500 * 1000LL)     /* a timer wake-up also sends what is due this soon */
#define MAX_PATHS 1000000
#define MAX_PATH_LEN 2048
#define HEAD_MAX 16384                  /* response header block (and trailers) */
#define CHUNK_LINE_MAX 4096             /* a chunk-size line with its extensions */
#define READ_BUF 65536                  /* the one read buffer shared by all connections */
#define MAX_EVENTS 256
#define MAX_DIAG 10                     /* error messages printed on stderr */
#define TIMER_TAG UINT64_MAX            /* epoll data of the timerfd */
#define NO_POS SIZE_MAX                 /* a connection not in the heap */

/* ---- settings ------------------------------------------------------------------------------------ */

struct settings {
	long rate;          /* requests per second, all connections together */
	long secs;          /* recorded seconds */
	long conns;
	long warmup;        /* seconds run but not recorded */
	long timeout;       /* seconds */
	uint64_t seed;
	bool seed_given;
	const char *paths_file;
	const char *host;
	struct in_addr addr;
	long port;
};

static void usage(FILE *f)
{
	fputs("usage: oload -R RATE -d SECONDS [-c CONNECTIONS=100] [-w WARMUP_SECONDS=1] [-T TIMEOUT_S=10]\n"
	      "             [-s SEED] -p PATHS_FILE HOST PORT\n"
	      "  RATE 1..200000 req/s, SECONDS 1..3600, CONNECTIONS 1..10000, WARMUP 0..3600, TIMEOUT 1..3600,\n"
	      "  HOST an IPv4 literal, PORT 1..65535, PATHS_FILE one request path per line.\n"
	      "  Prints: OL offered= achieved= served= n= p50= p90= p99= p999= max= (ms) non2xx= errors= timeouts=\n"
	      "  reconnects= late=\n",
	      f);
}

/* Prints "oload: MSG" (and "ARG" in quotes if any), the usage, and exits 2. */
_Noreturn static void usage_error(const char *msg, const char *arg)
{
	if (arg)
		fprintf(stderr, "oload: %s \"%s\"\n", msg, arg);
	else
		fprintf(stderr, "oload: %s\n", msg);
	usage(stderr);
	exit(2);
}

/* A decimal number without sign or spaces in lo..hi. */
static bool parse_long(const char *s, long lo, long hi, long *out)
{
	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	char *end;
	long v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (uint64_t)v;
	return true;
}

static void option_long(const char *opt, const char *arg, long lo, long hi, long *out)
{
	if (!parse_long(arg, lo, hi, out)) {
		fprintf(stderr, "oload: %s wants a whole number in %ld..%ld, not \"%s\"\n", opt, lo, hi, arg);
		usage(stderr);
		exit(2);
	}
}

static void parse_args(int argc, char **argv, struct settings *set)
{
	*set = (struct settings){.conns = 100, .warmup = 1, .timeout = 10};
	int opt;
	while ((opt = getopt(argc, argv, "+R:d:c:w:T:s:p:h")) != -1) {
		switch (opt) {
		case 'R': option_long("-R", optarg, 1, 200000, &set->rate); break;
		case 'd': option_long("-d", optarg, 1, 3600, &set->secs); break;
		case 'c': option_long("-c", optarg, 1, 10000, &set->conns); break;
		case 'w': option_long("-w", optarg, 0, 3600, &set->warmup); break;
		case 'T': option_long("-T", optarg, 1, 3600, &set->timeout); break;
		case 's':
			if (!parse_u64(optarg, &set->seed))
				usage_error("-s wants a whole number 0..2^64-1, not", optarg);
			set->seed_given = true;
			break;
		case 'p': set->paths_file = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (set->rate == 0)
		usage_error("-R RATE is required", NULL);
	if (set->secs == 0)
		usage_error("-d SECONDS is required", NULL);
	if (set->paths_file == NULL)
		usage_error("-p PATHS_FILE is required", NULL);
	if (argc - optind != 2)
		usage_error("HOST and PORT are wanted after the options", NULL);
	set->host = argv[optind];
	if (inet_pton(AF_INET, set->host, &set->addr) != 1)
		usage_error("HOST must be an IPv4 literal such as 127.0.0.1, not", set->host);
	option_long("PORT", argv[optind + 1], 1, 65535, &set->port);
}

/* ---- the paths file ------------------------------------------------------------------------------ */

struct paths {
	char *text;         /* all paths, back to back */
	size_t *off;        /* path i is text[off[i] .. off[i+1]) */
	size_t count;
	size_t longest;
	size_t text_len, text_cap;
};

_Noreturn static void paths_fail(const char *file, unsigned long line, const char *why)
{
	if (line > 0)
		fprintf(stderr, "oload: %s:%lu: %s\n", file, line, why);
	else
		fprintf(stderr, "oload: %s: %s\n", file, why);
	exit(2);
}

/* Checks one line (without its line end) and returns why it is not a request path, or NULL. */
static const char *path_problem(const char *s, size_t len)
{
	if (len == 0)
		return "empty line (want one request path per line)";
	if (len > MAX_PATH_LEN)
		return "path longer than 2048 bytes";
	if (s[0] != '/')
		return "a request path must start with '/'";
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x21 || ch > 0x7e)
			return "only printable ASCII without spaces is allowed in a path";
	}
	return NULL;
}

static void paths_add(struct paths *P, const char *file, unsigned long line, const char *s, size_t len)
{
	const char *why = path_problem(s, len);
	if (why)
		paths_fail(file, line, why);
	if (P->count == MAX_PATHS)
		paths_fail(file, line, "more than 1000000 paths");
	if (P->text_len + len > P->text_cap) {
		size_t cap = P->text_cap ? P->text_cap * 2 : 65536;
		while (cap < P->text_len + len)
			cap *= 2;
		char *t = realloc(P->text, cap);
		if (t == NULL)
			paths_fail(file, line, "out of memory");
		P->text = t;
		P->text_cap = cap;
	}
	memcpy(P->text + P->text_len, s, len);
	P->text_len += len;
	P->count++;
	P->off[P->count] = P->text_len;
	if (len > P->longest)
		P->longest = len;
}

static void paths_load(struct paths *P, const char *file)
{
	*P = (struct paths){0};
	P->off = malloc((MAX_PATHS + 1) * sizeof(*P->off));
	if (P->off == NULL)
		paths_fail(file, 0, "out of memory");
	P->off[0] = 0;
	FILE *f = fopen(file, "r");
	if (f == NULL)
		paths_fail(file, 0, strerror(errno));
	char line[MAX_PATH_LEN + 2];    /* room for one byte too many and a CR */
	size_t len = 0;
	bool too_long = false, pending = false;
	unsigned long lineno = 1;
	int ch;
	while ((ch = getc(f)) != EOF) {
		pending = true;
		if (ch != '\n') {
			if (len < sizeof(line))
				line[len++] = (char)ch;
			else
				too_long = true;
			continue;
		}
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (too_long)
			paths_fail(file, lineno, "path longer than 2048 bytes");
		paths_add(P, file, lineno, line, len);
		len = 0;
		pending = false;
		lineno++;
	}
	if (ferror(f))
		paths_fail(file, 0, "read error");
	if (fclose(f) != 0)
		paths_fail(file, 0, strerror(errno));
	if (pending) {          /* a last line without a line end */
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (too_long)
			paths_fail(file, lineno, "path longer than 2048 bytes");
		paths_add(P, file, lineno, line, len);
	}
	if (P->count == 0)
		paths_fail(file, 0, "no paths");
}

static void paths_free(struct paths *P)
{
	free(P->text);
	free(P->off);
}

/* ---- random numbers (splitmix64) ----------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in 0..n-1; the modulo bias is below n / 2^64 (n <= 10^6). */
static size_t rng_below(uint64_t *state, size_t n)
{
	return (size_t)(rng_next(state) % n);
}

/* ---- latency histogram (log-linear, microseconds) ------------------------------------------------ */

/* Values below 2 * HIST_SUB are counted exactly; above, each power of two is split in HIST_SUB buckets,
 * so a bucket is at most 1/1024 of its values wide and its midpoint within 0.05% of any of them. */
#define HIST_SUB_BITS 10
#define HIST_SUB (1ULL << HIST_SUB_BITS)
#define HIST_MAX_SHIFT 32
#define HIST_BUCKETS ((size_t)(2 * HIST_SUB + HIST_MAX_SHIFT * HIST_SUB))
#define HIST_TOP ((2 * HIST_SUB << HIST_MAX_SHIFT) - 1)   /* the largest value counted (~2.5 hours) */

struct hist {
	uint64_t *count;
	uint64_t n;
	uint64_t max;
};

static size_t hist_index(uint64_t v)
{
	if (v < 2 * HIST_SUB)
		return (size_t)v;
	unsigned shift = 1;
	while ((v >> shift) >= 2 * HIST_SUB)
		shift++;
	return (size_t)(2 * HIST_SUB + (shift - 1) * HIST_SUB + ((v >> shift) - HIST_SUB));
}

/* The middle of bucket i. */
static uint64_t hist_value(size_t i)
{
	if (i < 2 * HIST_SUB)
		return i;
	uint64_t k = i - 2 * HIST_SUB;
	unsigned shift = (unsigned)(k / HIST_SUB) + 1;
	uint64_t low = (HIST_SUB + k % HIST_SUB) << shift;
	return low + ((1ULL << shift) - 1) / 2;
}

static void hist_add(struct hist *h, uint64_t us)
{
	if (us > HIST_TOP)
		us = HIST_TOP;
	h->count[hist_index(us)]++;
	h->n++;
	if (us > h->max)
		h->max = us;
}

/* The value at per-mille pm: the smallest v with at least ceil(n * pm / 1000) values <= v. */
static uint64_t hist_permille(const struct hist *h, unsigned pm)
{
	if (h->n == 0)
		return 0;
	uint64_t rank = (h->n * pm + 999) / 1000, seen = 0;
	if (rank == 0)
		rank = 1;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank) {
			uint64_t v = hist_value(i);
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

/* ---- response parser (push, incremental) --------------------------------------------------------- */

enum resp_state {
	RS_HEAD,            /* status line and headers */
	RS_BODY,            /* Content-Length bytes */
	RS_CHUNK_SIZE,      /* a chunk-size line */
	RS_CHUNK_DATA,
	RS_CHUNK_END,       /* the CRLF after a chunk */
	RS_TRAILER,         /* trailer lines up to an empty one */
	RS_UNTIL_CLOSE,     /* a body delimited by the end of the connection */
	RS_DONE,
};

enum feed_result { FEED_MORE, FEED_DONE, FEED_ERROR };

struct resp {
	enum resp_state state;
	int status;
	bool close;             /* the connection ends with this response */
	uint64_t left;          /* body or chunk bytes still to come */
	char *buf;              /* the header block, or the current line */
	size_t len, cap;
	size_t line_start;      /* where the current line starts in buf */
	const char *error;      /* why FEED_ERROR */
};

static void resp_reset(struct resp *r)
{
	r->state = RS_HEAD;
	r->status = 0;
	r->close = false;
	r->left = 0;
	r->len = 0;
	r->line_start = 0;
	r->error = NULL;
}

static bool resp_reserve(struct resp *r, size_t need)
{
	if (need <= r->cap)
		return true;
	size_t cap = r->cap ? r->cap : 512;
	while (cap < need)
		cap *= 2;
	char *b = realloc(r->buf, cap);
	if (b == NULL) {
		r->error = "out of memory";
		return false;
	}
	r->buf = b;
	r->cap = cap;
	return true;
}

/* Moves input up to and including the next '\n' into r->buf (at most limit bytes in all).
 * Returns 1 when a line is complete, 0 when more input is needed, -1 on error. */
static int resp_take_line(struct resp *r, const char **p, size_t *n, size_t limit, const char *too_long)
{
	const char *nl = memchr(*p, '\n', *n);
	size_t k = nl ? (size_t)(nl - *p) + 1 : *n;
	if (r->len + k > limit) {
		r->error = too_long;
		return -1;
	}
	if (!resp_reserve(r, r->len + k))
		return -1;
	memcpy(r->buf + r->len, *p, k);
	r->len += k;
	*p += k;
	*n -= k;
	return nl != NULL;
}

/* Is the line just completed in buf (from line_start) empty: "\n" or "\r\n"? */
static bool resp_line_empty(const struct resp *r)
{
	size_t k = r->len - r->line_start;
	return k == 1 || (k == 2 && r->buf[r->line_start] == '\r');
}

static bool ci_equal(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
		(*len)--;
}

/* Does the comma-separated list contain word (case-insensitive)? With last, must it be the last item? */
static bool list_has(const char *v, size_t len, const char *word, bool last)
{
	bool found = false;
	while (len > 0) {
		const char *comma = memchr(v, ',', len);
		size_t k = comma ? (size_t)(comma - v) : len;
		const char *item = v;
		size_t ilen = k;
		trim(&item, &ilen);
		if (ilen > 0)
			found = ci_equal(item, ilen, word) || (found && !last);
		v += comma ? k + 1 : k;
		len -= comma ? k + 1 : k;
	}
	return found;
}

/* "HTTP/1.x SSS ...": sets status and the version's default for closing. */
static bool resp_status_line(struct resp *r, const char *s, size_t len)
{
	if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
		return false;
	for (int i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	if (len > 12 && s[12] != ' ')
		return false;
	r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	r->close = s[7] == '0';     /* HTTP/1.0: close unless "Connection: keep-alive" */
	return true;
}

struct head_info {
	bool chunked;           /* Transfer-Encoding ends with chunked */
	bool other_coding;      /* Transfer-Encoding without chunked last: body until close */
	bool has_length;
	uint64_t length;
};

static bool parse_length(const char *v, size_t len, uint64_t *out)
{
	if (len == 0 || len > 18)
		return false;
	uint64_t x = 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return true;
}

static bool resp_header(struct resp *r, struct head_info *hi, const char *s, size_t len)
{
	if (s[0] == ' ' || s[0] == '\t')
		return true;            /* obsolete line folding: a continuation, ignored */
	const char *colon = memchr(s, ':', len);
	if (colon == NULL || colon == s)
		return false;
	size_t nlen = (size_t)(colon - s);
	const char *v = colon + 1;
	size_t vlen = len - nlen - 1;
	trim(&v, &vlen);
	if (ci_equal(s, nlen, "content-length")) {
		uint64_t x;
		if (!parse_length(v, vlen, &x) || (hi->has_length && x != hi->length))
			return false;
		hi->has_length = true;
		hi->length = x;
	} else if (ci_equal(s, nlen, "transfer-encoding")) {
		if (list_has(v, vlen, "chunked", true))
			hi->chunked = true;
		else
			hi->other_coding = true;
	} else if (ci_equal(s, nlen, "connection")) {
		if (list_has(v, vlen, "close", false))
			r->close = true;
		else if (list_has(v, vlen, "keep-alive", false))
			r->close = false;
	}
	return true;
}

/* Parses the header block in buf and chooses how the body is delimited. */
static bool resp_parse_head(struct resp *r)
{
	struct head_info hi = {0};
	const char *p = r->buf, *end = r->buf + r->len;
	bool first = true;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)(nl - p);      /* every line in buf ends with '\n' */
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 0) {
			bool ok = first ? resp_status_line(r, p, len) : resp_header(r, &hi, p, len);
			if (!ok) {
				r->error = first ? "malformed status line" : "malformed header";
				return false;
			}
			first = false;
		}
		p = nl + 1;
	}
	r->len = 0;
	r->line_start = 0;
	if (r->status < 100) {
		r->error = "malformed status line";
		return false;
	}
	if (r->status < 200) {
		if (r->status == 101) {
			r->error = "unexpected 101 Switching Protocols";
			return false;
		}
		resp_reset(r);          /* an interim answer: the real one follows */
	} else if (r->status == 204 || r->status == 304) {
		r->state = RS_DONE;
	} else if (hi.chunked) {
		r->state = RS_CHUNK_SIZE;
	} else if (hi.other_coding || !hi.has_length) {
		r->state = RS_UNTIL_CLOSE;
		r->close = true;
	} else {
		r->left = hi.length;
		r->state = hi.length ? RS_BODY : RS_DONE;
	}
	return true;
}

static enum feed_result resp_feed_head(struct resp *r, const char **p, size_t *n)
{
	int rc = resp_take_line(r, p, n, HEAD_MAX, "response header block over 16 KiB");
	if (rc <= 0)
		return rc < 0 ? FEED_ERROR : FEED_MORE;
	if (!resp_line_empty(r)) {
		r->line_start = r->len;
		return FEED_MORE;
	}
	if (r->line_start == 0) {       /* an empty line before the status line: skipped */
		r->len = 0;
		return FEED_MORE;
	}
	return resp_parse_head(r) ? FEED_MORE : FEED_ERROR;
}

static enum feed_result resp_feed_chunk_size(struct resp *r, const char **p, size_t *n)
{
	int rc = resp_take_line(r, p, n, CHUNK_LINE_MAX, "chunk-size line too long");
	if (rc <= 0)
		return rc < 0 ? FEED_ERROR : FEED_MORE;
	uint64_t size = 0;
	size_t i = 0, digits = 0;
	for (; i < r->len; i++, digits++) {
		char ch = r->buf[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0'
		      : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
		      : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
		if (d < 0)
			break;
		size = size * 16 + (uint64_t)d;
	}
	char after = r->buf[i];             /* the line ends with '\n', so i < len */
	if (digits == 0 || digits > 15 || !(after == ';' || after == ' ' || after == '\t' || after == '\r' ||
	                                     after == '\n')) {
		r->error = "malformed chunk size";
		return FEED_ERROR;
	}
	r->len = 0;
	r->line_start = 0;
	r->left = size;
	r->state = size ? RS_CHUNK_DATA : RS_TRAILER;
	return FEED_MORE;
}

static enum feed_result resp_feed_chunk_end(struct resp *r, const char **p, size_t *n)
{
	int rc = resp_take_line(r, p, n, 2, "chunk data not followed by CRLF");
	if (rc <= 0)
		return rc < 0 ? FEED_ERROR : FEED_MORE;
	if (!resp_line_empty(r)) {
		r->error = "chunk data not followed by CRLF";
		return FEED_ERROR;
	}
	r->len = 0;
	r->state = RS_CHUNK_SIZE;
	return FEED_MORE;
}

static enum feed_result resp_feed_trailer(struct resp *r, const char **p, size_t *n)
{
	int rc = resp_take_line(r, p, n, HEAD_MAX, "trailers over 16 KiB");
	if (rc <= 0)
		return rc < 0 ? FEED_ERROR : FEED_MORE;
	if (resp_line_empty(r))
		r->state = RS_DONE;
	else
		r->line_start = r->len;
	return FEED_MORE;
}

static void resp_skip(struct resp *r, const char **p, size_t *n, enum resp_state next)
{
	size_t k = r->left < *n ? (size_t)r->left : *n;
	r->left -= k;
	*p += k;
	*n -= k;
	if (r->left == 0)
		r->state = next;
}

/* Feeds n bytes; *used tells how many belonged to this response (the rest is surplus). */
static enum feed_result resp_feed(struct resp *r, const char *data, size_t n, size_t *used)
{
	const char *p = data;
	enum feed_result fr = FEED_MORE;
	while (r->state != RS_DONE && fr == FEED_MORE && n > 0) {
		switch (r->state) {
		case RS_HEAD: fr = resp_feed_head(r, &p, &n); break;
		case RS_BODY: resp_skip(r, &p, &n, RS_DONE); break;
		case RS_CHUNK_SIZE: fr = resp_feed_chunk_size(r, &p, &n); break;
		case RS_CHUNK_DATA: resp_skip(r, &p, &n, RS_CHUNK_END); break;
		case RS_CHUNK_END: fr = resp_feed_chunk_end(r, &p, &n); break;
		case RS_TRAILER: fr = resp_feed_trailer(r, &p, &n); break;
		case RS_UNTIL_CLOSE: p += n; n = 0; break;
		case RS_DONE: break;
		}
	}
	*used = (size_t)(p - data);
	if (fr == FEED_ERROR)
		return FEED_ERROR;
	return r->state == RS_DONE ? FEED_DONE : FEED_MORE;
}

/* The server closed the connection: does that end the response? */
static bool resp_eof_completes(struct resp *r)
{
	if (r->state != RS_UNTIL_CLOSE)
		return false;
	r->state = RS_DONE;
	return true;
}

/* ---- connections and the loop -------------------------------------------------------------------- */

enum conn_state {
	CS_CONNECTING,
	CS_IDLE,            /* connected, waiting for the next intended time */
	CS_WRITING,         /* a request in flight, not all written */
	CS_READING,         /* a request in flight, waiting for (the rest of) its response */
	CS_PAUSED,          /* no socket: after an error, reopened at wake */
	CS_DONE,            /* no socket, no more requests */
};

struct conn {
	int fd;
	uint32_t gen;               /* bumped for every socket: tells stale epoll events apart */
	enum conn_state state;
	uint64_t seq;               /* the next request's number j: intended at t0 + j / RATE */
	int64_t intended;           /* of the request in flight */
	int64_t sent_at;            /* when it was written (first attempt) */
	bool recorded;              /* the request in flight is due in the recorded window */
	bool want_out;              /* EPOLLOUT in the interest set */
	bool start_pending;         /* an initial connect not yet resolved */
	int64_t wake;               /* the heap key */
	size_t hpos;
	char *wbuf;
	size_t wlen, woff;
	struct resp resp;
};

struct counts {
	uint64_t sent;              /* recorded requests written (or attempted) */
	uint64_t done;              /* recorded requests answered */
	uint64_t served;            /* responses completed inside the window, whatever their intended time */
	uint64_t non2xx;
	uint64_t req_errors;        /* recorded requests failed */
	uint64_t conn_errors;       /* connection attempts failed while recording */
	uint64_t timeouts;
	uint64_t reconnects;
};

struct loop {
	const struct settings *set;
	const struct paths *paths;
	struct conn *conns;
	size_t nconns;
	size_t *heap;
	size_t heap_len;
	int ep, tfd;
	int64_t t0, wstart, wend, stop;     /* CLOCK_MONOTONIC ns */
	uint64_t j_start, j_end;            /* requests j_start..j_end-1 are recorded */
	int64_t armed;                      /* the timerfd's expiry, 0 when not armed */
	int64_t timeout_ns;
	bool started, draining;
	size_t in_flight;
	size_t start_pending;
	uint64_t rng;
	char *rbuf;
	char tail[128];                     /* the request after its path */
	size_t tail_len;
	struct hist hist;
	struct counts c;
	unsigned diags;
	char first_error[160];
};

_Noreturn static void die(const char *what)
{
	fprintf(stderr, "oload: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		die("clock_gettime");
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t intended_ns(const struct loop *L, uint64_t j)
{
	return L->t0 + (int64_t)(j * (uint64_t)NS_PER_S / (uint64_t)L->set->rate);
}

static bool conn_busy(const struct conn *c)
{
	return c->state == CS_WRITING || c->state == CS_READING;
}

static bool recording(const struct loop *L, int64_t now)
{
	return L->started && now >= L->wstart;
}

static void diag(struct loop *L, const struct conn *c, int64_t now, const char *what, int err)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "%s%s%s", what, err ? ": " : "", err ? strerror(err) : "");
	if (L->first_error[0] == '\0')
		snprintf(L->first_error, sizeof(L->first_error), "%s", msg);
	if (L->diags > MAX_DIAG)
		return;
	if (L->diags++ == MAX_DIAG) {
		fprintf(stderr, "oload: further errors not shown\n");
		return;
	}
	if (L->started)
		fprintf(stderr, "oload: t=%.3fs connection %zu: %s\n", (double)(now - L->wstart) / NS_PER_S,
		        (size_t)(c - L->conns), msg);
	else
		fprintf(stderr, "oload: connection %zu: %s\n", (size_t)(c - L->conns), msg);
}

/* -- the heap of connection deadlines -- */

static int64_t heap_key(const struct loop *L, size_t i)
{
	return L->conns[L->heap[i]].wake;
}

static void heap_place(struct loop *L, size_t i, size_t ci)
{
	L->heap[i] = ci;
	L->conns[ci].hpos = i;
}

static void heap_up(struct loop *L, size_t i)
{
	size_t ci = L->heap[i];
	int64_t key = L->conns[ci].wake;
	while (i > 0 && heap_key(L, (i - 1) / 2) > key) {
		heap_place(L, i, L->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_place(L, i, ci);
}

static void heap_down(struct loop *L, size_t i)
{
	size_t ci = L->heap[i];
	int64_t key = L->conns[ci].wake;
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= L->heap_len)
			break;
		if (child + 1 < L->heap_len && heap_key(L, child + 1) < heap_key(L, child))
			child++;
		if (heap_key(L, child) >= key)
			break;
		heap_place(L, i, L->heap[child]);
		i = child;
	}
	heap_place(L, i, ci);
}

static void heap_set(struct loop *L, struct conn *c, int64_t wake)
{
	c->wake = wake;
	if (c->hpos == NO_POS) {
		heap_place(L, L->heap_len++, (size_t)(c - L->conns));
		heap_up(L, c->hpos);
	} else {
		heap_up(L, c->hpos);
		heap_down(L, c->hpos);
	}
}

static void heap_remove(struct loop *L, struct conn *c)
{
	size_t i = c->hpos;
	if (i == NO_POS)
		return;
	c->hpos = NO_POS;
	if (--L->heap_len == i)
		return;
	heap_place(L, i, L->heap[L->heap_len]);
	heap_up(L, i);
	heap_down(L, L->conns[L->heap[i]].hpos);
}

/* -- connection life cycle -- */

static uint64_t conn_tag(const struct loop *L, const struct conn *c)
{
	return (uint64_t)c->gen << 32 | (uint64_t)(c - L->conns);
}

static int conn_interest(struct loop *L, struct conn *c, int op, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u64 = conn_tag(L, c)};
	return epoll_ctl(L->ep, op, c->fd, &ev);
}

/* Closes the socket; reset sends RST (SO_LINGER 0) instead of an orderly close. */
static void conn_close(struct loop *L, struct conn *c, bool reset, int64_t now)
{
	if (c->fd < 0)
		return;
	if (reset) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0)
			diag(L, c, now, "setsockopt SO_LINGER", errno);
	}
	if (close(c->fd) != 0)
		diag(L, c, now, "close", errno);
	c->fd = -1;
	c->want_out = false;
}

static void conn_finish(struct loop *L, struct conn *c, int64_t now)
{
	conn_close(L, c, false, now);
	c->state = CS_DONE;
	heap_remove(L, c);
}

static void start_resolved(struct loop *L, struct conn *c)
{
	if (c->start_pending) {
		c->start_pending = false;
		L->start_pending--;
	}
}

/* A connect, read, write or protocol error: fails the request in flight, pauses, reopens. */
static void conn_error(struct loop *L, struct conn *c, int64_t now, const char *what, int err)
{
	bool busy = conn_busy(c);
	if (busy ? c->recorded : recording(L, now)) {
		if (busy)
			L->c.req_errors++;
		else
			L->c.conn_errors++;
	}
	diag(L, c, now, what, err);
	start_resolved(L, c);
	if (busy)
		L->in_flight--;
	conn_close(L, c, true, now);
	if (L->draining) {
		conn_finish(L, c, now);
		return;
	}
	c->state = CS_PAUSED;
	heap_set(L, c, now + PAUSE_NS);
}

static void conn_connected(struct loop *L, struct conn *c, int64_t now)
{
	start_resolved(L, c);
	if (conn_interest(L, c, EPOLL_CTL_MOD, EPOLLIN | EPOLLRDHUP) != 0) {
		conn_error(L, c, now, "epoll_ctl", errno);
		return;
	}
	c->want_out = false;
	c->state = CS_IDLE;
	if (L->started)
		heap_set(L, c, intended_ns(L, c->seq));
	else
		heap_remove(L, c);
}

static void conn_open(struct loop *L, struct conn *c, int64_t now)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_error(L, c, now, "socket", errno);
		return;
	}
	c->fd = fd;
	c->gen++;
	c->state = CS_CONNECTING;
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
		conn_error(L, c, now, "setsockopt TCP_NODELAY", errno);
		return;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)L->set->port),
	                         .sin_addr = L->set->addr};
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (rc != 0 && errno != EINPROGRESS) {
		conn_error(L, c, now, "connect", errno);
		return;
	}
	if (conn_interest(L, c, EPOLL_CTL_ADD, rc == 0 ? EPOLLIN | EPOLLRDHUP : EPOLLOUT) != 0) {
		conn_error(L, c, now, "epoll_ctl", errno);
		return;
	}
	if (rc == 0) {
		conn_connected(L, c, now);
		return;
	}
	heap_set(L, c, now + L->timeout_ns);
}

/* Opens a new connection in place of a closed one (none once the window is over). */
static void conn_reopen(struct loop *L, struct conn *c, int64_t now)
{
	if (L->draining) {
		conn_finish(L, c, now);
		return;
	}
	if (recording(L, now))
		L->c.reconnects++;
	conn_open(L, c, now);
}

static void conn_check_connect(struct loop *L, struct conn *c, uint32_t events, int64_t now)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err != 0)
		conn_error(L, c, now, "connect", err);
	else if (events & EPOLLOUT)
		conn_connected(L, c, now);
	else if (events & (EPOLLERR | EPOLLHUP))
		conn_error(L, c, now, "connect: connection hung up", 0);
}

static void conn_timed_out(struct loop *L, struct conn *c, int64_t now)
{
	if (c->state == CS_CONNECTING) {
		conn_error(L, c, now, "connect timed out", 0);
		return;
	}
	if (c->recorded)
		L->c.timeouts++;
	diag(L, c, now, "request timed out", 0);
	L->in_flight--;
	conn_close(L, c, true, now);
	conn_reopen(L, c, now);
}

/* Writes what is left of the request; on EAGAIN waits for EPOLLOUT. */
static void conn_flush(struct loop *L, struct conn *c, int64_t now)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
		if (n >= 0) {
			c->woff += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_error(L, c, now, "write", errno);
			return;
		}
		if (!c->want_out) {
			if (conn_interest(L, c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0) {
				conn_error(L, c, now, "epoll_ctl", errno);
				return;
			}
			c->want_out = true;
		}
		return;
	}
	if (c->want_out) {
		if (conn_interest(L, c, EPOLL_CTL_MOD, EPOLLIN | EPOLLRDHUP) != 0) {
			conn_error(L, c, now, "epoll_ctl", errno);
			return;
		}
		c->want_out = false;
	}
	if (c->state == CS_WRITING)
		c->state = CS_READING;
}

static void conn_build_request(struct loop *L, struct conn *c)
{
	size_t k = rng_below(&L->rng, L->paths->count);
	const char *path = L->paths->text + L->paths->off[k];
	size_t plen = L->paths->off[k + 1] - L->paths->off[k];
	memcpy(c->wbuf, "GET ", 4);
	memcpy(c->wbuf + 4, path, plen);
	memcpy(c->wbuf + 4 + plen, L->tail, L->tail_len);
	c->wlen = 4 + plen + L->tail_len;
	c->woff = 0;
}

/* The connection's next request is due: send it. */
static void conn_send(struct loop *L, struct conn *c, int64_t now)
{
	uint64_t j = c->seq;
	if (j >= L->j_end) {
		conn_finish(L, c, now);
		return;
	}
	c->seq += L->nconns;
	c->intended = intended_ns(L, j);
	c->sent_at = now;
	c->recorded = j >= L->j_start;
	if (c->recorded)
		L->c.sent++;
	conn_build_request(L, c);
	resp_reset(&c->resp);
	c->state = CS_WRITING;
	L->in_flight++;
	heap_set(L, c, now + L->timeout_ns);
	conn_flush(L, c, now);
}

/* A whole response: record it, then keep the connection, reopen it or finish. */
static void conn_complete(struct loop *L, struct conn *c, int64_t now, bool closed)
{
	if (c->recorded) {
		int64_t from = c->sent_at < c->intended ? c->sent_at : c->intended;   /* sent early: from then */
		int64_t ns = now - from;
		hist_add(&L->hist, ns > 0 ? (uint64_t)ns / 1000 : 0);
		L->c.done++;
		if (c->resp.status < 200 || c->resp.status > 399)
			L->c.non2xx++;
	}
	if (L->started && now >= L->wstart && now < L->wend)
		L->c.served++;
	L->in_flight--;
	if (closed || c->resp.close) {
		conn_close(L, c, false, now);
		conn_reopen(L, c, now);
	} else if (L->draining) {
		conn_finish(L, c, now);
	} else {
		c->state = CS_IDLE;
		heap_set(L, c, intended_ns(L, c->seq));
	}
}

static void conn_got_eof(struct loop *L, struct conn *c, int64_t now)
{
	if (conn_busy(c)) {
		if (resp_eof_completes(&c->resp))
			conn_complete(L, c, now, true);
		else
			conn_error(L, c, now, c->resp.state == RS_HEAD && c->resp.len == 0
			                          ? "server closed the connection before answering"
			                          : "server closed the connection mid-response", 0);
		return;
	}
	conn_close(L, c, false, now);       /* an idle keep-alive connection the server ended */
	conn_reopen(L, c, now);
}

static void conn_read(struct loop *L, struct conn *c, int64_t now)
{
	ssize_t n = read(c->fd, L->rbuf, READ_BUF);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_error(L, c, now, "read", errno);
		return;
	}
	if (n == 0) {
		conn_got_eof(L, c, now);
		return;
	}
	if (!conn_busy(c)) {
		conn_error(L, c, now, "data from the server with no request in flight", 0);
		return;
	}
	size_t used;
	enum feed_result fr = resp_feed(&c->resp, L->rbuf, (size_t)n, &used);
	if (fr == FEED_ERROR)
		conn_error(L, c, now, c->resp.error, 0);
	else if (fr == FEED_DONE && used < (size_t)n)
		conn_error(L, c, now, "data after the response", 0);
	else if (fr == FEED_DONE)
		conn_complete(L, c, now, c->woff < c->wlen);    /* answered before the request was all written */
}

static void on_event(struct loop *L, const struct epoll_event *ev, int64_t now)
{
	if (ev->data.u64 == TIMER_TAG) {
		uint64_t ticks;
		if (read(L->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN && errno != EINTR)
			die("read timerfd");
		L->armed = 0;
		return;
	}
	size_t id = (size_t)(ev->data.u64 & UINT32_MAX);
	uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
	if (id >= L->nconns)
		return;
	struct conn *c = &L->conns[id];
	if (c->gen != gen || c->fd < 0)
		return;                 /* for a socket closed earlier in this batch */
	uint32_t e = ev->events;
	switch (c->state) {
	case CS_CONNECTING: conn_check_connect(L, c, e, now); break;
	case CS_WRITING:
		if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_flush(L, c, now);
		if (conn_busy(c) && c->fd >= 0 && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
			conn_read(L, c, now);
		break;
	case CS_READING:
	case CS_IDLE: conn_read(L, c, now); break;
	case CS_PAUSED:
	case CS_DONE: break;
	}
}

/* Handles every deadline that has passed; after a timer wake-up (the timer no longer armed) also the
 * sends due within LOOKAHEAD_NS, so that one wake-up sends several requests at high rates. */
static void run_due(struct loop *L, int64_t now)
{
	int64_t horizon = L->armed == 0 ? now + LOOKAHEAD_NS : now;
	while (L->heap_len > 0) {
		struct conn *c = &L->conns[L->heap[0]];
		if (c->wake > horizon || (c->wake > now && c->state != CS_IDLE))
			break;
		switch (c->state) {
		case CS_IDLE: conn_send(L, c, now); break;
		case CS_PAUSED: conn_reopen(L, c, now); break;
		case CS_CONNECTING:
		case CS_WRITING:
		case CS_READING: conn_timed_out(L, c, now); break;
		case CS_DONE: heap_remove(L, c); break;
		}
	}
}

/* The end of the recorded window: nothing more is sent; only requests in flight go on. */
static void begin_drain(struct loop *L, int64_t now)
{
	L->draining = true;
	for (size_t i = 0; i < L->nconns; i++)
		if (!conn_busy(&L->conns[i]) && L->conns[i].state != CS_DONE)
			conn_finish(L, &L->conns[i], now);
}

static void timer_arm(struct loop *L, int64_t at)
{
	if (at == L->armed)
		return;
	struct itimerspec its = {.it_value = {.tv_sec = (time_t)(at / NS_PER_S), .tv_nsec = (long)(at % NS_PER_S)}};
	if (timerfd_settime(L->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
		die("timerfd_settime");
	L->armed = at;
}

static int64_t next_deadline(const struct loop *L)
{
	int64_t at = L->draining ? L->stop : L->wend;
	if (L->heap_len > 0 && L->conns[L->heap[0]].wake < at)
		at = L->conns[L->heap[0]].wake;
	return at;
}

/* One epoll_wait (timeout_ms, -1: until an event) and its events handled; EINTR is a wait without
 * events. */
static void poll_once(struct loop *L, struct epoll_event *evs, int timeout_ms)
{
	int n = epoll_wait(L->ep, evs, MAX_EVENTS, timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return;
		die("epoll_wait");
	}
	int64_t now = now_ns();
	for (int i = 0; i < n; i++)
		on_event(L, &evs[i], now);
}

static void run_load(struct loop *L)
{
	struct epoll_event evs[MAX_EVENTS];
	for (;;) {
		int64_t now = now_ns();
		run_due(L, now);
		if (!L->draining && now >= L->wend)
			begin_drain(L, now);
		if (L->draining && (L->in_flight == 0 || now >= L->stop))
			break;
		timer_arm(L, next_deadline(L));
		poll_once(L, evs, -1);
	}
	int64_t now = now_ns();
	for (size_t i = 0; i < L->nconns; i++)
		if (L->conns[i].state != CS_DONE)
			conn_finish(L, &L->conns[i], now);
}

/* Opens every connection and waits (up to TIMEOUT) until each has connected or failed.
 * Returns the number connected. */
static size_t start_connections(struct loop *L)
{
	int64_t now = now_ns(), deadline = now + L->timeout_ns;
	L->start_pending = L->nconns;
	for (size_t i = 0; i < L->nconns; i++) {
		L->conns[i].seq = i;
		L->conns[i].start_pending = true;
		conn_open(L, &L->conns[i], now);
	}
	struct epoll_event evs[MAX_EVENTS];
	while (L->start_pending > 0 && (now = now_ns()) < deadline)
		poll_once(L, evs, (int)((deadline - now + NS_PER_MS - 1) / NS_PER_MS));
	size_t up = 0;
	for (size_t i = 0; i < L->nconns; i++)
		up += L->conns[i].state == CS_IDLE;
	return up;
}

/* Fixes the schedule: t0 now (plus 1 ms), the windows, every idle connection's first intended time. */
static void start_schedule(struct loop *L)
{
	const struct settings *set = L->set;
	L->started = true;
	L->t0 = now_ns() + NS_PER_MS;
	L->wstart = L->t0 + set->warmup * NS_PER_S;
	L->wend = L->wstart + set->secs * NS_PER_S;
	L->stop = L->wend + L->timeout_ns;
	L->j_start = (uint64_t)set->warmup * (uint64_t)set->rate;
	L->j_end = (uint64_t)(set->warmup + set->secs) * (uint64_t)set->rate;
	for (size_t i = 0; i < L->nconns; i++)
		if (L->conns[i].state == CS_IDLE)
			heap_set(L, &L->conns[i], intended_ns(L, L->conns[i].seq));
}

/* ---- setup, report, main ------------------------------------------------------------------------- */

/* Each connection needs a descriptor: raises the soft limit if it must. */
static void ensure_fd_limit(size_t conns)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)conns + 32;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit");
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
			fprintf(stderr, "oload: %zu connections need %lu file descriptors, the limit is %lu\n", conns,
			        (unsigned long)need, (unsigned long)rl.rlim_max);
			exit(1);
		}
		rl.rlim_cur = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			die("setrlimit");
	}
}

static void loop_init(struct loop *L, const struct settings *set, const struct paths *paths)
{
	*L = (struct loop){.set = set, .paths = paths, .nconns = (size_t)set->conns,
	                   .timeout_ns = set->timeout * NS_PER_S};
	L->ep = epoll_create1(EPOLL_CLOEXEC);
	if (L->ep < 0)
		die("epoll_create1");
	L->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (L->tfd < 0)
		die("timerfd_create");
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TIMER_TAG};
	if (epoll_ctl(L->ep, EPOLL_CTL_ADD, L->tfd, &ev) != 0)
		die("epoll_ctl timerfd");
	int tl = snprintf(L->tail, sizeof(L->tail), " HTTP/1.1\r\nHost: %s:%ld\r\nUser-Agent: oload\r\n\r\n",
	                  set->host, set->port);
	if (tl < 0 || (size_t)tl >= sizeof(L->tail)) {
		fprintf(stderr, "oload: request head too long\n");
		exit(2);
	}
	L->tail_len = (size_t)tl;
	L->rng = set->seed;
	L->rbuf = malloc(READ_BUF);
	L->conns = calloc(L->nconns, sizeof(*L->conns));
	L->heap = calloc(L->nconns, sizeof(*L->heap));
	L->hist.count = calloc(HIST_BUCKETS, sizeof(*L->hist.count));
	if (L->rbuf == NULL || L->conns == NULL || L->heap == NULL || L->hist.count == NULL)
		die("out of memory");
	size_t wcap = 4 + paths->longest + L->tail_len;
	for (size_t i = 0; i < L->nconns; i++) {
		struct conn *c = &L->conns[i];
		c->fd = -1;
		c->hpos = NO_POS;
		c->state = CS_PAUSED;
		c->wbuf = malloc(wcap);
		if (c->wbuf == NULL)
			die("out of memory");
	}
}

static void loop_free(struct loop *L)
{
	for (size_t i = 0; i < L->nconns; i++) {
		free(L->conns[i].wbuf);
		free(L->conns[i].resp.buf);
	}
	free(L->conns);
	free(L->heap);
	free(L->hist.count);
	free(L->rbuf);
	if (close(L->tfd) != 0 || close(L->ep) != 0)
		perror("oload: close");
}

static double ms(uint64_t us)
{
	return (double)us / 1000.0;
}

static double cpu_seconds(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void report(const struct loop *L)
{
	const struct settings *set = L->set;
	const struct counts *k = &L->c;
	uint64_t scheduled = L->j_end - L->j_start;
	uint64_t late = scheduled - k->sent;
	const struct hist *h = &L->hist;
	printf("OL offered=%ld achieved=%.1f served=%.1f n=%llu p50=%.3f p90=%.3f p99=%.3f p999=%.3f max=%.3f "
	       "non2xx=%llu errors=%llu timeouts=%llu reconnects=%llu late=%llu\n",
	       set->rate, (double)k->done / (double)set->secs, (double)k->served / (double)set->secs,
	       (unsigned long long)k->done,
	       ms(hist_permille(h, 500)), ms(hist_permille(h, 900)), ms(hist_permille(h, 990)),
	       ms(hist_permille(h, 999)), ms(h->max), (unsigned long long)k->non2xx,
	       (unsigned long long)(k->req_errors + k->conn_errors), (unsigned long long)k->timeouts,
	       (unsigned long long)k->reconnects, (unsigned long long)late);
	if (fflush(stdout) != 0)
		die("write stdout");
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		die("getrusage");
	fprintf(stderr,
	        "oload: scheduled=%llu sent=%llu completed=%llu failed_requests=%llu failed_connects=%llu "
	        "timeouts=%llu late=%llu cpu_user=%.2fs cpu_sys=%.2fs\n",
	        (unsigned long long)scheduled, (unsigned long long)k->sent, (unsigned long long)k->done,
	        (unsigned long long)k->req_errors, (unsigned long long)k->conn_errors,
	        (unsigned long long)k->timeouts, (unsigned long long)late, cpu_seconds(ru.ru_utime),
	        cpu_seconds(ru.ru_stime));
}

static uint64_t default_seed(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		die("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec + ((uint64_t)getpid() << 40);
}

int main(int argc, char **argv)
{
	struct settings set;
	parse_args(argc, argv, &set);
	if (!set.seed_given)
		set.seed = default_seed();
	struct paths paths;
	paths_load(&paths, set.paths_file);
	ensure_fd_limit((size_t)set.conns);
	fprintf(stderr, "oload: seed=%llu paths=%zu rate=%ld connections=%ld warmup=%lds seconds=%ld timeout=%lds\n",
	        (unsigned long long)set.seed, paths.count, set.rate, set.conns, set.warmup, set.secs, set.timeout);

	struct loop L;
	loop_init(&L, &set, &paths);
	size_t up = start_connections(&L);
	if (up == 0) {
		fprintf(stderr, "oload: could not connect to %s:%ld: %s\n", set.host, set.port,
		        L.first_error[0] ? L.first_error : "timed out");
		exit(1);
	}
	if (up < L.nconns)
		fprintf(stderr, "oload: %zu of %zu connections open at the start; the others retry\n", up, L.nconns);
	start_schedule(&L);
	run_load(&L);
	report(&L);
	loop_free(&L);
	paths_free(&paths);
	return 0;
}
