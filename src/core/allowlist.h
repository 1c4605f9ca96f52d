/* SPDX-License-Identifier: PostgreSQL */
/* allowlist.h - peer address allow-lists: "addr" or "addr/bits", IPv4 and IPv6, comma-separated. */
#ifndef NP_ALLOWLIST_H
#define NP_ALLOWLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define ALLOWLIST_MAX 32

struct allowlist_entry {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network byte order, host bits cleared */
	int bits;          /* prefix length */
};

struct allowlist {
	int n;
	struct allowlist_entry e[ALLOWLIST_MAX];
};

/* Parse spec ("127.0.0.0/8, ::1"; blanks around items are ignored). Returns 0, or -1 with a
 * message naming the bad item in msg. An empty spec is an error: there is no "allow nobody". */
int allowlist_parse(const char *spec, struct allowlist *out, char *msg, size_t n)
	__attribute__((warn_unused_result));

/* Whether addr (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as IPv4) is in the list.
 * Any other family (a unix socket peer) is not a network peer: always true. */
bool allowlist_match(const struct allowlist *l, const struct sockaddr *addr);

/* The admin_allow form: an allow-list that may also hold the word "unix" (*unix_ok). Only
 * "unix" is a valid list too. Returns 0, or -1 with a message. */
int allowlist_parse_admin(const char *spec, struct allowlist *out, bool *unix_ok, char *msg, size_t n)
	__attribute__((warn_unused_result));
/* Whether a textual IPv4 or IPv6 address is in the list; anything else is not. */
bool allowlist_match_text(const struct allowlist *l, const char *addr);

#endif
