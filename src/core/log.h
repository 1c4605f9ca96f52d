/* SPDX-License-Identifier: PostgreSQL */
/* log.h - one line per event, key=value, with level, role and pid; async-signal-unsafe. */
#ifndef NP_LOG_H
#define NP_LOG_H

#include <stdarg.h>
#include <sys/types.h>

enum np_log_level { NP_LOG_ERROR = 0, NP_LOG_WARN, NP_LOG_INFO, NP_LOG_DEBUG };

/* Level names indexed by enum np_log_level, NULL-terminated (the config file uses them). */
extern const char *const log_level_names[];
/* The name of level, "unknown" out of range. */
const char *log_level_name(int level);

/* Open path for appending ("" or NULL = stderr); a symlink at path is refused (ELOOP), and the
 * file goes to the owner of log_set_owner() if any. Returns 0 or -1 (errno set; the previous
 * file stays in use). */
int log_open(const char *path);
/* Reopen the current file (SIGUSR1, after logrotate moved it). Returns 0 or -1. */
int log_reopen(void);
/* The master started as root: the log file, now and when (re)created later, belongs to uid:gid
 * (changed through the descriptor), so children running as that user can reopen it. Returns 0
 * or -1 (errno) when the current file could not be changed. */
int log_set_owner(uid_t uid, gid_t gid);
/* The descriptor lines are written to (stderr when there is no log file). */
int log_fileno(void);
void log_set_level(int level);
int log_get_level(void);
/* Role shown in every line: "master", "supervisor", "worker.3", "ctl". */
void log_set_role(const char *role);

/* fmt is free text (becomes msg="..."), then optional " key=value" pairs appended by the caller
 * through log_kv(). Lines are written with one write(2) so children never interleave. */
void log_msg(int level, const char *kv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(NP_LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...)  log_msg(NP_LOG_WARN, NULL, __VA_ARGS__)
#define log_info(...)  log_msg(NP_LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= NP_LOG_DEBUG) log_msg(NP_LOG_DEBUG, NULL, __VA_ARGS__); } while (0)

/* log_msg with extra key=value pairs: kv is a preformatted " a=1 b=2" string (built with snprintf;
 * values that may hold spaces or quotes go through util_quote_value()). */
#define log_kv(level, kv, ...) log_msg(level, kv, __VA_ARGS__)

#endif
