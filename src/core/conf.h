/* SPDX-License-Identifier: PostgreSQL */
/* conf.h - the configuration: one table of keys, loading and validation of a libconfig file. */
#ifndef NP_CONF_H
#define NP_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

/* $(sysconfdir)/neonpool/neonpool.conf (Makefile.am passes SYSCONFDIR: /etc with the Debian
 * package's --sysconfdir=/etc, /usr/local/etc with the default prefix) */
#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define NP_DEFAULT_CONFIG SYSCONFDIR "/neonpool/neonpool.conf"
#define NP_MAX_WORKERS 256
#define NP_MAX_BUDGET 256
#define NP_LLM_KEY_MAX 512        /* bytes of llm_api_key_file */
#define NP_LLM_PROMPT_MAX 16384   /* bytes of llm_system_prompt_file */

enum np_ask_disconnect { NP_ASK_FINISH = 0, NP_ASK_ABORT };
enum np_warmup_policy { NP_WARMUP_ALWAYS = 0, NP_WARMUP_WHILE_ACTIVE, NP_WARMUP_NEVER, NP_WARMUP_SCHEDULE };

/* The loaded configuration. Strings are owned (malloc'd) and never NULL after
 * conf_load() succeeded ("" when unset). Freed with conf_free(). */
struct np_conf {
	char *file;                 /* path the configuration was read from ("" for defaults) */

	/* processes */
	int workers;                /* FastCGI worker processes */
	char *user;                 /* drop to this user when started as root ("" = stay) */
	char *group;
	char *pid_file;             /* "" = none */
	bool daemonize;
	char *log_file;             /* "" = stderr */
	int log_level;              /* enum np_log_level */
	int upgrade_timeout_ms;     /* SIGUSR2: the new binary's workers accept within this long, or it is rolled back */
	int graceful_timeout_ms;    /* SIGQUIT: in-flight requests get this long, then as SIGTERM */
	int shutdown_timeout_ms;    /* SIGTERM: in-flight requests get this long, then SIGKILL */
	int respawn_backoff_max_ms; /* the longest a pool's replacements wait after young deaths */
	int respawn_stable_ms;      /* a child that lived this long started well */

	/* listen socket */
	char *listen;               /* "host:port", "/path/to.sock", "unix:/path", or "stdin" (fd 0, spawn-fcgi) */
	int listen_backlog;
	int listen_mode;            /* unix socket permissions, e.g. 0660 */
	char *listen_owner;         /* unix socket owner ("" = unchanged) */
	char *listen_group;

	/* requests */
	int max_body_bytes;
	char *status_file;          /* shared-memory file the CLI maps read-only ("" = anonymous) */

	/* reading a request (issue 6, defect 1) */
	int request_read_timeout_ms; /* ms: deadline of reading a request from accept, and of writing its answer */
	int max_params_bytes;        /* bytes: largest sum of PARAMS content; larger gets 431 */
	char *listen_allowed_clients; /* TCP peers allowed (addresses or CIDRs, comma-separated) */

	/* database */
	char *database_url;         /* libpq URI or key=value; "" = take DATABASE_URL from the environment */
	char *database_password_file; /* "" = none; else the password is the file's first line */

	/* connection budget and lifecycle (see doc/configuration.md) */
	char *control_listen;        /* a second socket for the routes that need no database (/healthz, /ready */
	char *application_name;      /* prefix of application_name in pg_stat_activity; each process appends / */
	int budget;                  /* connections: server connections the whole pool may hold at once, workers, superviso */
	int min_warm;                /* connections: connections opened at start and kept open when idle */
	int ready_deadline_ms;       /* ms: how long the pool may take to open min_warm connections before it repo */
	int acquire_timeout_ms;      /* ms: longest a request waits for a database connection, in the listen backl */
	int max_waiters;             /* requests: requests that may wait inside workers for a connection; more get 503 d */
	int connect_timeout_ms;      /* ms: deadline of one connection attempt, enforced by neonpool (libpq ignore */
	int dns_cache_ttl_s;         /* s: each process keeps the addresses of the database host names this long an */
	int query_timeout_ms;        /* ms: statement_timeout of every query (session SET, or SET LOCAL in pooler_ */
	int query_deadline_margin_ms; /* ms: client-side deadline = query_timeout_ms + this; past it the server is  */
	int validate_idle_ms;        /* ms: a connection idle longer than this is checked (status, pending FATAL o */
	int idle_timeout_s;          /* s: close connections idle longer than this, down to min_warm (0 = never) */
	int max_lifetime_s;          /* s: close a connection this long after it opened, with up to 10% random ji */
	int max_concurrent_connects; /* connects: connection attempts in flight across the pool at once (Neon's proxy ra */
	int reconnect_backoff_min_ms; /* ms: first delay after a failed connect; doubles with jitter up to reconnec */
	int reconnect_backoff_max_ms; /* ms: longest delay between connect attempts of one process */
	int breaker_failures;        /* failures: consecutive connect or connection failures that open the circuit break */
	int breaker_probe_ms;        /* ms: while the breaker is open, the supervisor probes the database this oft */
	int retry_after_s;           /* s: value of the Retry-After header on 503 answers */
	int content_max_age_s;       /* s: max-age of the content routes' answers */
	int content_stale_while_revalidate_s; /* s: stale-while-revalidate of the content routes */
	int content_stale_if_error_s; /* s: stale-if-error of the content routes */
	int client_check_ms;          /* ms: client_connection_check_interval of our backends (0 = off) */
	int orphan_grace_ms;         /* ms: after a worker died, its connections count against the budget until th */
	bool pooler_mode;            /* the server is a transaction-mode pooler (PgBouncer, Neon -pooler): unn */
	bool budget_clamp;           /* when the budget exceeds max_connections minus superuser_reserved_conne */
	char *replica_url;           /* libpq connection string of a read replica; read-only routes go there,  */
	int replica_budget;          /* connections: server connections the pool may hold on the replica */
	int warmup_policy;           /* keep the database awake: always, while-active (for warmup_active_windo */
	int warmup_interval_s;       /* s: ping (SELECT 1) an idle database this often when warmup_policy allows */
	int warmup_active_window_s;  /* s: with while-active, keep pinging this long after the last database requ */
	char *warmup_schedule;       /* with schedule: "Mon-Fri 07:00-22:00; Sat 09:00-13:00" */
	char *warmup_timezone;       /* the schedule's time zone (IANA name; "UTC") */
	int cold_start_ms;           /* ms: a connect this slow with no connection open counts as a cold start */
	/* the ask turn (issue 9) */
	char *ask_listen;            /* the ask pool's socket ("" = none: the main workers answer asks) */
	int ask_workers;             /* processes of the ask pool */
	char *llm_url;               /* chat-completions endpoint ("" = retrieval mode) */
	char *llm_model;
	char *llm_api_key_file;      /* "" = NEONPOOL_LLM_API_KEY or none */
	char *llm_system_prompt_file; /* "" = the built-in prompt */
	int llm_connect_timeout_ms;
	int llm_first_token_timeout_ms;
	int llm_gap_timeout_ms;
	int llm_total_timeout_ms;
	int llm_retry_after_max_ms;
	int ask_on_disconnect;       /* enum np_ask_disconnect */
	bool ask_llm_fallback;       /* the extractive answer when the model fails before its first token */
	int ask_top_k;               /* passages retrieved for an ask, cited [1]..[k] */
	int ask_history_messages;    /* the session's last messages sent with the question */
	char *admin_allow;           /* who may read /metrics and /status (addresses, CIDRs, "unix") */
	int slow_request_ms;         /* ms: requests at least this long are logged with their phases (0 = off) */
	bool access_log;             /* one info line per request (issue 20) */
	char *ask_rate_per_session;  /* "5/min": asks a session may make per window ("" = no limit) */
};

/* A validation error: where, which key, and what is allowed. */
struct np_conf_error {
	char file[256];
	int line;                   /* 0 when unknown */
	char key[64];               /* "" when not about one key */
	char message[512];          /* short, lowercase, factual; never contains a secret */
};

/* Fill c with the built-in defaults (no file). Returns 0, or -1 on out of memory. */
int conf_defaults(struct np_conf *c);

/* Load and validate path into c (defaults first, then the file, then DATABASE_URL from the
 * environment when database_url is unset). Unknown key, wrong type, out-of-range value or
 * unparsable file: returns -1 and fills err; c is then left freed. */
int conf_load(struct np_conf *c, const char *path, struct np_conf_error *err);

/* Format err as "FILE:LINE: key 'K': MESSAGE" into buf. */
void conf_error_format(const struct np_conf_error *err, char *buf, size_t n);

void conf_free(struct np_conf *c);

/* Whether key may change on SIGHUP without a restart; -1 for an unknown key. */
int conf_key_reloadable(const char *key);

/* The keys whose values differ between a and b and that are not reloadable, written
 * comma-separated into buf (empty when none). Returns how many. */
int conf_diff_restart_only(const struct np_conf *a, const struct np_conf *b, char *buf, size_t n);

/* Iterate the key table (for documentation checks): returns the name of key i, NULL past the end. */
const char *conf_key_name(size_t i);

/* Read the password file named by c (first line, trailing newline stripped) into buf.
 * Returns 0, or -1 with a message in err (never the password itself). */
int conf_read_password(const struct np_conf *c, char *buf, size_t n, struct np_conf_error *err);

/* Write conninfo with every password replaced by "********" into out (key=value form).
 * An unparsable conninfo gives "(invalid connection string)". Never leaks a secret. */
void conf_redact_conninfo(const char *conninfo, char *out, size_t n);

/* Print the effective configuration as "key = value" lines (secrets redacted) to fp. */
void conf_dump(const struct np_conf *c, FILE *fp);

const char *conf_log_level_name(int level);
/* Parse a rate "N/s", "N/min" or "N/h" (also sec, second, m, minute, hour): 0 with *count and
 * *window_s set; "" or "0" is no limit (*count 0). -1 with msg filled when malformed. */
int conf_rate_parse(const char *value, int *count, int *window_s, char *msg, size_t n);

#endif
