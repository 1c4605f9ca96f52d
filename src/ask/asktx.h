/* SPDX-License-Identifier: PostgreSQL */
/* asktx.h - an ask worker's short transactions, run by the main pool: one internal FastCGI
 * request to the main listen socket (the ask route with the instance's NEONPOOL_ASK_TX secret),
 * answered by a worker that holds a connection. So an ask worker never opens a connection of its
 * own, and the readers' connections stay warm. */
#ifndef NP_ASKTX_H
#define NP_ASKTX_H

#include <stdint.h>

#include "conf.h"

/* The secret that marks an internal request: 64 hex digits from getrandom(2), made once in the
 * master before any fork (so every worker knows it), never logged. 0 or -1. */
int asktx_init_secret(void);
const char *asktx_secret(void);
/* A new master in a binary upgrade: the old master's secret (64 hex digits), so that the ask
 * workers of either generation are understood by the main workers of the other. 0 or -1. */
int asktx_set_secret(const char *hex, size_t len);

/* POST uri with body (JSON) to the main socket (conf->listen) with the secret, the request id and
 * the client's Authorization header (NULL: none), before deadline_ms. Returns 0 with *status and
 * *out (malloc'd body of the answer), or with err: -1 when the request was not sent whole (the
 * main pool ran nothing), -2 when it was and no answer came back (its outcome is unknown: it may
 * have committed). */
int asktx_call(const struct np_conf *conf, const char *uri, const char *body, const char *request_id,
               const char *authorization, int64_t deadline_ms, int *status, char **out, char *err, size_t errlen);

#endif
