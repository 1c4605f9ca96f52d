/* SPDX-License-Identifier: PostgreSQL */
/* util.c - small pure helpers: clocks, text validation, quoting, decoding. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int64_t util_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

size_t util_utf8_prefix(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t need;
		uint32_t cp;
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (len - i <= need)
			return i;
		for (size_t k = 1; k <= need; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
			return i;
		if (cp >= 0xD800 && cp <= 0xDFFF)
			return i;
		i += need + 1;
	}
	return len;
}

bool util_utf8_valid(const char *s, size_t len)
{
	return util_utf8_prefix(s, len) == len;
}

int util_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int util_percent_decode(const char *src, size_t len, char *dst, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = src[i];
		if (c == '\0')
			return -1;
		if (c == '%') {
			if (i + 2 >= len)
				return -1;
			int hi = util_hex_digit(src[i + 1]), lo = util_hex_digit(src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			if (c == '\0')
				return -1;
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		dst[o++] = c;
	}
	if (cap == 0)
		return -1;
	dst[o] = '\0';
	return (int)o;
}

void util_quote_value(const char *s, char *out, size_t n)
{
	if (n == 0)
		return;
	bool bare = s[0] != '\0';
	for (const char *p = s; *p && bare; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
			bare = false;
	}
	if (bare) {
		snprintf(out, n, "%s", s);
		return;
	}
	size_t o = 0;
#define PUT(ch) do { if (o + 1 < n) out[o++] = (ch); } while (0)
	PUT('"');
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (o + 6 >= n)
			break;
		if (c == '"' || c == '\\') {
			PUT('\\');
			PUT((char)c);
		} else if (c == '\n') {
			PUT('\\');
			PUT('n');
		} else if (c < ' ' || c == 0x7f) {
			char hex[5];
			snprintf(hex, sizeof(hex), "\\x%02x", c);
			for (int k = 0; k < 4; k++)
				PUT(hex[k]);
		} else {
			PUT((char)c);
		}
	}
	PUT('"');
#undef PUT
	out[o] = '\0';
}

void util_random_hex(char *out, size_t bytes)
{
	unsigned char buf[64];
	if (bytes > sizeof(buf))
		bytes = sizeof(buf);
	if (getrandom(buf, bytes, GRND_NONBLOCK) != (ssize_t)bytes) {
		static uint64_t counter;
		uint64_t x = (uint64_t)util_wall_us() ^ ((uint64_t)getpid() << 32) ^ ++counter;
		for (size_t i = 0; i < bytes; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = (unsigned char)x;
		}
	}
	util_hex_encode(buf, bytes, out);
}

void util_hex_encode(const void *data, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *d = data;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (s == NULL)
		return -1;
	/* digits with an optional '-': strtoll alone would take leading space and '+' */
	const char *d = s[0] == '-' ? s + 1 : s;
	if (*d < '0' || *d > '9')
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

uint32_t util_random_below(uint32_t range)
{
	if (range == 0)
		return 0;
	uint32_t r;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)util_now_us() * 2654435761u;
	return r % range;
}

bool util_fd_closed(int fd)
{
	char buf[512];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return true;
		if (n < 0)
			return !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
	}
}

uint64_t util_hash64(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return h;
}

char *util_read_file(const char *path, size_t max, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat '%s': %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "'%s' is not a regular file (a %s)", path,
		         S_ISDIR(st.st_mode) ? "directory" : S_ISFIFO(st.st_mode) ? "FIFO" : S_ISSOCK(st.st_mode) ? "socket" : "device");
		close(fd);
		return NULL;
	}
	char *buf = malloc(max + 2);
	size_t got = 0;
	ssize_t n = 0;
	while (buf && got <= max && ((n = read(fd, buf + got, max + 1 - got)) > 0 || (n < 0 && errno == EINTR)))
		got += n > 0 ? (size_t)n : 0;
	int rerr = errno;
	close(fd);
	if (!buf || n < 0 || got > max) {
		if (!buf)
			snprintf(err, errlen, "out of memory reading '%s'", path);
		else if (n < 0)
			snprintf(err, errlen, "cannot read '%s': %s", path, strerror(rerr));
		else
			snprintf(err, errlen, "'%s' is larger than %zu bytes", path, max);
		if (buf)
			explicit_bzero(buf, max + 2);
		free(buf);
		return NULL;
	}
	buf[got] = '\0';
	return buf;
}
