/* SPDX-License-Identifier: PostgreSQL */
/* util.h - small pure helpers: clocks, text validation, quoting, decoding. */
#ifndef NP_UTIL_H
#define NP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in milliseconds / microseconds. */
int64_t util_now_ms(void);
int64_t util_now_us(void);
/* Wall clock in microseconds since the epoch. */
int64_t util_wall_us(void);

/* Whether s[0..len) is valid UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF). */
bool util_utf8_valid(const char *s, size_t len);
/* The length of the longest prefix of s[0..len) that is valid UTF-8 (len when all of it is). */
size_t util_utf8_prefix(const char *s, size_t len);
/* The value of one hex digit, or -1. */
int util_hex_digit(char c);

/* Percent-decode src[0..len) into dst (capacity cap, NUL-terminated). Returns the decoded
 * length, or -1 on a malformed escape, an encoded NUL, or overflow. '+' is kept as is. */
int util_percent_decode(const char *src, size_t len, char *dst, size_t cap);

/* Write s as a log value: bare when it has no space, quote, '=' or control char, else
 * "quoted" with \" \\ \n escapes and control chars as \xHH. Always NUL-terminates. */
void util_quote_value(const char *s, char *out, size_t n);

/* The n bytes at data as 2*n lowercase hex digits and a NUL in out (2*n+1 bytes): the one hex
 * encoder (digests in logs and checksums, bytea parameters after "\\x", secrets). */
void util_hex_encode(const void *data, size_t n, char *out);

/* Fill out with 2*bytes lowercase hex digits of randomness (getrandom, else a counter mix). */
void util_random_hex(char *out, size_t bytes);

/* Parse a whole decimal string (digits, an optional leading '-'; no space, no '+') as int64 in
 * [min,max]. Returns 0 or -1. */
int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Drain what is readable on the non-blocking socket fd; true once the peer closed it (EOF, or an
 * error other than "would block"). */
bool util_fd_closed(int fd);

/* Jitter: a uniformly random value in [0, range). */
uint32_t util_random_below(uint32_t range);

/* The whole of a small file that is a regular file (a symlink to one is followed, as a mounted
 * Kubernetes or Docker secret is): malloc'd, NUL-terminated, at most max bytes. The open does not
 * wait (O_NONBLOCK: a FIFO is refused at once, never read). NULL with err ("cannot open 'PATH':
 * ...", "'PATH' is not a regular file", "'PATH' is larger than N bytes") otherwise. The one check
 * of both `neonpoold -t` and the reader, so that what passes the one is what the other reads. */
char *util_read_file(const char *path, size_t max, char *err, size_t errlen);

/* FNV-1a 64-bit hash of a string (not cryptographic): tells which configured URL a value is of. */
uint64_t util_hash64(const char *s);

#endif
