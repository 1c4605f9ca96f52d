/* SPDX-License-Identifier: PostgreSQL */
/* conf_key.h - private to conf*.c: the key table's types and entry macros, and what conf.c (the
 * table, defaults, the API, secrets, dump), conf_load.c (reading a file) and conf_check.c (the
 * values' validators) share. Not installed beside conf.h: nothing outside src/core/conf*.c uses it. */
#ifndef NP_CONF_KEY_H
#define NP_CONF_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

enum conf_type {
	CONF_INT,       /* integer in [min, max] */
	CONF_BOOL,      /* true / false */
	CONF_STRING,    /* string, optionally checked by a validator */
	CONF_ENUM,      /* string, one of allowed[]; stored as its index */
	CONF_MODE       /* file mode in [min, max]: int whose digits are octal, or a string like "0660" */
};

/* A validator of a string key's final value: 0, or -1 with a message (never echoing a secret). */
typedef int (*conf_check_fn)(const char *value, char *msg, size_t n);

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t offset;              /* into struct np_conf */
	long long def;              /* int, bool, enum, mode default */
	const char *def_str;        /* string default */
	long long min, max;         /* int and mode range */
	const char *const *allowed; /* enum values, NULL-terminated; the index is the stored value */
	bool reloadable;            /* may change on SIGHUP without a restart */
	const char *unit;           /* "" when none */
	const char *desc;           /* one line */
	conf_check_fn check;        /* string keys only; NULL = any value */
};

/* The offset of field f, which must have type T (compile error otherwise). */
#define CONF_FIELD(f, T) _Generic(((struct np_conf *)0)->f, T: offsetof(struct np_conf, f))

/* One table entry per line, each starting with KEY_<TYPE>("name" (tests/check-config-doc.sh greps that). */
#define KEY_INT(name, f, def, min, max, reload, unit, desc) \
	{ name, CONF_INT, CONF_FIELD(f, int), def, NULL, min, max, NULL, reload, unit, desc, NULL }
#define KEY_MODE(name, f, def, min, max, reload, desc) \
	{ name, CONF_MODE, CONF_FIELD(f, int), def, NULL, min, max, NULL, reload, "octal mode", desc, NULL }
#define KEY_BOOL(name, f, def, reload, desc) \
	{ name, CONF_BOOL, CONF_FIELD(f, bool), def, NULL, 0, 1, NULL, reload, "", desc, NULL }
#define KEY_STR(name, f, def, check, reload, desc) \
	{ name, CONF_STRING, CONF_FIELD(f, char *), 0, def, 0, 0, NULL, reload, "", desc, check }
#define KEY_ENUM(name, f, def, allowed, reload, desc) \
	{ name, CONF_ENUM, CONF_FIELD(f, int), def, NULL, 0, 0, allowed, reload, "", desc, NULL }

#define RELOAD true
#define RESTART false

/* The table (conf.c) and its length, at most CONF_KEYS_MAX (conf.c asserts it): a per-key array
 * such as the line each key was set on can be sized without counting. */
#define CONF_KEYS_MAX 128
extern const struct conf_key conf_keys[];
extern const size_t conf_nkeys;

/* The field of c that key k sets. */
static inline int *conf_int_at(const struct np_conf *c, const struct conf_key *k)
{
	return (int *)((char *)(uintptr_t)c + k->offset);
}

static inline bool *conf_bool_at(const struct np_conf *c, const struct conf_key *k)
{
	return (bool *)((char *)(uintptr_t)c + k->offset);
}

static inline char **conf_str_at(const struct np_conf *c, const struct conf_key *k)
{
	return (char **)((char *)(uintptr_t)c + k->offset);
}

/* The entry named name, or NULL. */
const struct conf_key *conf_find(const char *name);
/* The key's name closest to name (edit distance under 3), or NULL: a did-you-mean hint. */
const char *conf_closest(const char *name);
/* snprintf(dst, n, "%s", src), "" for NULL. */
void conf_copy(char *dst, size_t n, const char *src);
/* Fill err (may be NULL) with where and what. */
__attribute__((format(printf, 5, 6)))
void conf_set_error(struct np_conf_error *err, const char *file, int line, const char *key, const char *fmt, ...);

/* A bounded string builder: appends silently truncate, the result stays terminated. */
struct conf_buf {
	char *p;
	size_t n, len;
};
void conf_buf_putc(struct conf_buf *b, char ch);
void conf_buf_puts(struct conf_buf *b, const char *s);

/* The validators of string keys (conf_check.c): 0, or -1 with a message that never echoes a secret. */
int conf_check_listen(const char *value, char *msg, size_t n);
int conf_check_conninfo(const char *value, char *msg, size_t n);
int conf_check_readable(const char *value, char *msg, size_t n);
int conf_check_llm_key_file(const char *value, char *msg, size_t n);
int conf_check_llm_prompt_file(const char *value, char *msg, size_t n);
int conf_check_control_listen(const char *value, char *msg, size_t n);
int conf_check_allowed_clients(const char *value, char *msg, size_t n);
int conf_check_admin_allow(const char *value, char *msg, size_t n);
int conf_check_rate(const char *value, char *msg, size_t n);
int conf_check_schedule(const char *value, char *msg, size_t n);
int conf_check_timezone(const char *value, char *msg, size_t n);
int conf_check_llm_url(const char *value, char *msg, size_t n);

#endif
