/* conf.c - the configuration: one table of keys drives defaults, loading, validation and dumping. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* getline, strdup, explicit_bzero, asprintf: -std=c11 hides them */
#endif
#include "conf.h"
#include "allowlist.h"
#include "sched.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <libconfig.h>
#include <libpq-fe.h>

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

static int conf_check_listen(const char *value, char *msg, size_t n);
static int conf_check_conninfo(const char *value, char *msg, size_t n);
static int conf_check_readable(const char *value, char *msg, size_t n);
static int conf_check_llm_key_file(const char *value, char *msg, size_t n);
static int conf_check_llm_prompt_file(const char *value, char *msg, size_t n);
static int conf_check_control_listen(const char *value, char *msg, size_t n);
static int conf_check_allowed_clients(const char *value, char *msg, size_t n);
static int conf_check_admin_allow(const char *value, char *msg, size_t n);
static int conf_check_schedule(const char *value, char *msg, size_t n);
static int conf_check_timezone(const char *value, char *msg, size_t n);

static const char *const conf_warmup_policies[] = { "always", "while-active", "never", "schedule", NULL };
static const char *const conf_ask_disconnect[] = { "finish", "abort", NULL };
static int conf_check_llm_url(const char *value, char *msg, size_t n);

static const struct conf_key conf_keys[] = {
	/* processes */
	KEY_INT("workers", workers, 4, 1, NP_MAX_WORKERS, RELOAD, "processes", "FastCGI worker processes"),
	KEY_STR("user", user, "", NULL, RESTART, "drop to this user when started as root (\"\" = stay)"),
	KEY_STR("group", group, "", NULL, RESTART, "drop to this group when started as root (\"\" = the user's group)"),
	KEY_STR("pid_file", pid_file, "", NULL, RESTART, "write the master's pid to this file (\"\" = none)"),
	KEY_BOOL("daemonize", daemonize, false, RESTART, "detach from the terminal and run in the background"),
	KEY_STR("log_file", log_file, "", NULL, RELOAD, "append the log to this file (\"\" = stderr)"),
	KEY_ENUM("log_level", log_level, NP_LOG_INFO, log_level_names, RELOAD, "least severe level logged"),
	KEY_INT("graceful_timeout_ms", graceful_timeout_ms, 60000, 0, 3600000, RELOAD, "ms", "on SIGQUIT, in-flight requests get this long; then the stop continues as on SIGTERM (shutdown_timeout_ms, then SIGKILL)"),
	KEY_INT("shutdown_timeout_ms", shutdown_timeout_ms, 10000, 0, 600000, RELOAD, "ms", "on SIGTERM, in-flight requests get this long, then SIGKILL"),
	KEY_INT("respawn_backoff_max_ms", respawn_backoff_max_ms, 5000, 0, 600000, RELOAD, "ms", "a dead child is replaced at once; when the children of a pool die younger than respawn_stable_ms several times in a row, its replacements wait 100 ms, doubling up to this long, while the live ones serve (0 = always at once); the master never stops respawning"),
	KEY_INT("respawn_stable_ms", respawn_stable_ms, 1000, 0, 600000, RELOAD, "ms", "a child that lived this long before it died started well: its replacement starts at once and its pool's backoff ends, as it does when a replacement lives this long"),
	/* listen socket */
	KEY_STR("listen", listen, "127.0.0.1:9000", conf_check_listen, RESTART, "host:port, [ipv6]:port, /path, unix:/path or stdin"),
	KEY_INT("listen_backlog", listen_backlog, 4096, 16, 65535, RESTART, "connections", "listen(2) backlog"),
	KEY_MODE("listen_mode", listen_mode, 0660, 0, 0777, RESTART, "permissions of a unix socket"),
	KEY_STR("listen_owner", listen_owner, "", NULL, RESTART, "owner of a unix socket (\"\" = unchanged)"),
	KEY_STR("listen_group", listen_group, "", NULL, RESTART, "group of a unix socket (\"\" = unchanged)"),
	/* requests */
	KEY_INT("max_body_bytes", max_body_bytes, 1048576, 0, 67108864, RELOAD, "bytes", "largest request body accepted"),
	KEY_STR("status_file", status_file, "", NULL, RESTART, "shared-memory file the CLI maps read-only (\"\" = anonymous)"),
	/* reading a request: deadline, size bound, who may connect (issue 6, defect 1) */
	KEY_INT("request_read_timeout_ms", request_read_timeout_ms, 5000, 100, 600000, RELOAD, "ms", "a FastCGI connection must deliver its request (begin, params, body) within this long after it was accepted, and take the answer within this long, or it is closed (body stalled: 408); a silent peer costs no worker meanwhile"),
	KEY_INT("max_params_bytes", max_params_bytes, 65536, 1024, 262144, RELOAD, "bytes", "largest FastCGI params (the CGI environment: request line and headers) of a request; larger gets 431"),
	KEY_STR("listen_allowed_clients", listen_allowed_clients, "127.0.0.0/8,::1", conf_check_allowed_clients, RELOAD, "with a TCP listen or control_listen, peers allowed to connect: comma-separated addresses or address/bits, IPv4 and IPv6; others are closed at once"),
	/* database */
	KEY_STR("database_url", database_url, "", conf_check_conninfo, RELOAD, "libpq URI or key=value string (\"\" = $DATABASE_URL)"),
	KEY_STR("database_password_file", database_password_file, "", conf_check_readable, RELOAD, "the database password is this file's first line (\"\" = none)"),
	/* connection budget and lifecycle */
	KEY_STR("control_listen", control_listen, "", conf_check_control_listen, RESTART, "a second socket for the routes that need no database (/healthz, /readyz, /metrics), served even when every connection holder is busy (\"\" = none)"),
	KEY_STR("application_name", application_name, "neonpool", NULL, RELOAD, "prefix of application_name in pg_stat_activity; each process appends /w<slot> or /sup"),
	KEY_INT("budget", budget, 4, 1, NP_MAX_BUDGET, RELOAD, "connections", "server connections the whole pool may hold at once, workers, supervisor and reconnects included"),
	KEY_INT("min_warm", min_warm, 1, 0, NP_MAX_BUDGET, RELOAD, "connections", "connections opened at start and kept open when idle"),
	KEY_INT("ready_deadline_ms", ready_deadline_ms, 15000, 0, 600000, RELOAD, "ms", "how long the pool may take to open min_warm connections before it reports degraded"),
	KEY_INT("acquire_timeout_ms", acquire_timeout_ms, 500, 1, 60000, RELOAD, "ms", "longest a request waits for a database connection, in the listen backlog or inside a worker, before 503 db_busy"),
	KEY_INT("max_waiters", max_waiters, 16, 0, 1024, RELOAD, "requests", "requests that may wait inside workers for a connection; more get 503 db_busy at once"),
	KEY_INT("connect_timeout_ms", connect_timeout_ms, 10000, 100, 120000, RELOAD, "ms", "deadline of one connection attempt, enforced by neonpool (libpq ignores connect_timeout in PQconnectPoll)"),
	KEY_INT("dns_cache_ttl_s", dns_cache_ttl_s, 60, 0, 86400, RELOAD, "s", "each process keeps the addresses of the database host names this long and refreshes them ahead in the background; a lookup that does not answer never outlasts the connect deadline, and a failed refresh keeps the old addresses (0 = look up before every connect)"),
	KEY_INT("query_timeout_ms", query_timeout_ms, 5000, 10, 600000, RELOAD, "ms", "statement_timeout of every query (session SET, or SET LOCAL in pooler_mode)"),
	KEY_INT("query_deadline_margin_ms", query_deadline_margin_ms, 500, 0, 60000, RELOAD, "ms", "client-side deadline = query_timeout_ms + this; past it the server is taken as hung, the connection is abandoned and the request gets 504 db_timeout"),
	KEY_INT("validate_idle_ms", validate_idle_ms, 5000, 0, 3600000, RELOAD, "ms", "a connection idle longer than this is checked (status, pending FATAL or EOF on its socket) before use"),
	KEY_INT("idle_timeout_s", idle_timeout_s, 600, 0, 86400, RELOAD, "s", "close connections idle longer than this, down to min_warm (0 = never)"),
	KEY_INT("max_lifetime_s", max_lifetime_s, 3600, 0, 604800, RELOAD, "s", "close a connection this long after it opened, with up to 10% random jitter so they do not all close together (0 = never)"),
	KEY_INT("max_concurrent_connects", max_concurrent_connects, 2, 1, 64, RELOAD, "connects", "connection attempts in flight across the pool at once (Neon's proxy rate-limits attempts)"),
	KEY_INT("reconnect_backoff_min_ms", reconnect_backoff_min_ms, 100, 1, 60000, RELOAD, "ms", "first delay after a failed connect; doubles with jitter up to reconnect_backoff_max_ms"),
	KEY_INT("reconnect_backoff_max_ms", reconnect_backoff_max_ms, 10000, 1, 600000, RELOAD, "ms", "longest delay between connect attempts of one process"),
	KEY_INT("breaker_failures", breaker_failures, 3, 1, 1000, RELOAD, "failures", "consecutive connect or connection failures that open the circuit breaker (then requests get 503 db_unavailable without a connect attempt)"),
	KEY_INT("breaker_probe_ms", breaker_probe_ms, 500, 50, 60000, RELOAD, "ms", "while the breaker is open, the supervisor probes the database this often; one success closes it"),
	KEY_INT("retry_after_s", retry_after_s, 1, 1, 3600, RELOAD, "s", "value of the Retry-After header on 503 answers"),
	KEY_INT("content_max_age_s", content_max_age_s, 60, 0, 86400, RELOAD, "s", "max-age of the content routes' answers (books, chapters, passages, search) for browsers and shared caches; an import is seen through a cache within this plus 2 s"),
	KEY_INT("content_stale_while_revalidate_s", content_stale_while_revalidate_s, 60, 0, 86400, RELOAD, "s", "stale-while-revalidate of the content routes: a cache may answer with its expired copy this long while it fetches a fresh one"),
	KEY_INT("content_stale_if_error_s", content_stale_if_error_s, 86400, 0, 31536000, RELOAD, "s", "stale-if-error of the content routes: a cache may answer with its expired copy this long while the daemon or the database fails"),
	KEY_INT("client_check_ms", client_check_ms, 500, 0, 60000, RELOAD, "ms", "how often a backend inside a statement checks that its neonpool process is still there (client_connection_check_interval, PostgreSQL 14+); a dead worker's statement is aborted within it (0 = off)"),
	KEY_INT("orphan_grace_ms", orphan_grace_ms, 250, 0, 60000, RELOAD, "ms", "after a worker died, its connections count against the budget until this long past the deadline of its in-flight statement (the server needs that long to see the close)"),
	KEY_BOOL("pooler_mode", pooler_mode, false, RESTART, "the server is a transaction-mode pooler (PgBouncer, Neon -pooler): unnamed statements, no session SET, statement_timeout by SET LOCAL"),
	KEY_BOOL("budget_clamp", budget_clamp, false, RELOAD, "when the budget exceeds max_connections minus superuser_reserved_connections, lower it to fit instead of only warning"),
	KEY_STR("replica_url", replica_url, "", conf_check_conninfo, RESTART, "libpq connection string of a read replica; read-only routes go there, with fallback to the primary (\"\" = none)"),
	KEY_INT("replica_budget", replica_budget, 0, 0, NP_MAX_BUDGET, RESTART, "connections", "server connections the pool may hold on the replica"),
	KEY_ENUM("warmup_policy", warmup_policy, NP_WARMUP_WHILE_ACTIVE, conf_warmup_policies, RELOAD, "keep the database awake: always, while-active (for warmup_active_window_s after the last request), schedule (within warmup_schedule's hours in warmup_timezone) or never; pinging always keeps a Neon compute billed around the clock"),
	KEY_INT("warmup_interval_s", warmup_interval_s, 240, 1, 3600, RELOAD, "s", "ping (SELECT 1) an idle database this often when warmup_policy allows"),
	KEY_INT("warmup_active_window_s", warmup_active_window_s, 900, 0, 86400, RELOAD, "s", "with while-active, keep pinging this long after the last database request"),
	KEY_STR("warmup_schedule", warmup_schedule, "Mon-Fri 07:00-22:00", conf_check_schedule, RELOAD, "with warmup_policy = schedule: when to keep the database awake, entries separated by ';', each DAYS HH:MM-HH:MM (days Mon..Sun, ranges Mon-Fri, lists Sat,Sun, or daily; an end before the start runs past midnight)"),
	KEY_STR("warmup_timezone", warmup_timezone, "UTC", conf_check_timezone, RELOAD, "the time zone of warmup_schedule, an IANA name such as Europe/Berlin (\"UTC\" or \"\" = UTC)"),
	KEY_INT("cold_start_ms", cold_start_ms, 500, 1, 600000, RELOAD, "ms", "a connect that took at least this long while the pool had no open connection to the endpoint counts as a cold start of the database (neonpool_db_cold_starts_total; Neon resumes a suspended compute in hundreds of ms to seconds)"),
	/* the ask turn (issue 9) */
	KEY_STR("ask_listen", ask_listen, "", conf_check_control_listen, RESTART, "the ask pool's socket (the same forms as control_listen): POST /api/v1/sessions/{id}/ask is served there by ask_workers workers of its own, which never hold a database connection: their two short transactions run in the main pool, one at a time (an internal request to listen, which must then be a socket the daemon's user can connect to: not stdin, and on TCP from an address listen_allowed_clients allows) (\"\" = none: the main workers answer asks)"),
	KEY_INT("ask_workers", ask_workers, 4, 1, 64, RELOAD, "processes", "workers of the ask pool (with ask_listen): one answer each at a time; when all are busy a new ask gets 503 ask_busy at once"),
	KEY_STR("llm_url", llm_url, "", conf_check_llm_url, RELOAD, "an OpenAI-compatible chat-completions endpoint (http:// or https://, no user:password in it); asks are answered by the model with the passages as context (\"\" = retrieval mode: an extractive answer, no model)"),
	KEY_STR("llm_model", llm_model, "gpt-4o-mini", NULL, RELOAD, "the model named in each chat-completions request"),
	KEY_STR("llm_api_key_file", llm_api_key_file, "", conf_check_llm_key_file, RELOAD, "the upstream's API key is this file's first line, read at each ask and sent only as a bearer token (\"\" = the environment's NEONPOOL_LLM_API_KEY, or none); never logged or shown"),
	KEY_STR("llm_system_prompt_file", llm_system_prompt_file, "", conf_check_llm_prompt_file, RELOAD, "the system prompt (up to 16 KiB) put before the numbered passages (\"\" = the built-in one: answer from the passages, cite them as [n])"),
	KEY_INT("llm_connect_timeout_ms", llm_connect_timeout_ms, 5000, 100, 60000, RELOAD, "ms", "deadline of the connection to the upstream"),
	KEY_INT("llm_first_token_timeout_ms", llm_first_token_timeout_ms, 30000, 100, 600000, RELOAD, "ms", "deadline of the first token after the request was sent"),
	KEY_INT("llm_gap_timeout_ms", llm_gap_timeout_ms, 20000, 100, 600000, RELOAD, "ms", "longest silence between two tokens (libcurl's CURLOPT_LOW_SPEED_TIME is set to the larger of this and the first-token deadline as a backstop)"),
	KEY_INT("llm_total_timeout_ms", llm_total_timeout_ms, 120000, 1000, 3600000, RELOAD, "ms", "deadline of the whole answer, retry included"),
	KEY_INT("llm_retry_after_max_ms", llm_retry_after_max_ms, 2000, 0, 60000, RELOAD, "ms", "before the first token a connect error, a 5xx or a 429 is retried once, after the answer's Retry-After capped to this (200 ms without one)"),
	KEY_ENUM("ask_on_disconnect", ask_on_disconnect, 0, conf_ask_disconnect, RELOAD, "when the client goes away mid-answer: finish (generate to the end and store the answer, so a reload shows it) or abort (stop the upstream to save tokens; the text so far is stored stopped)"),
	KEY_INT("ask_top_k", ask_top_k, 5, 1, 20, RELOAD, "passages", "an ask retrieves this many passages (the search's ranking), numbered [1]..[k] for the answer's citations"),
	KEY_INT("ask_history_messages", ask_history_messages, 6, 0, 50, RELOAD, "messages", "an ask sends the session's last this many messages with the question"),
	/* observability (issue 8) */
	KEY_STR("admin_allow", admin_allow, "127.0.0.0/8,::1,unix", conf_check_admin_allow, RELOAD, "who may read /metrics and /status: comma-separated addresses or address/bits of the HTTP client (REMOTE_ADDR from the front server, else the FastCGI peer), and the word unix for a request over a unix socket without REMOTE_ADDR; others get 403"),
	KEY_INT("slow_request_ms", slow_request_ms, 1000, 0, 3600000, RELOAD, "ms", "a request that took at least this long is logged at warning level with its request id, route, status and phases (acquire, connect, query, upstream) (0 = off)"),
};

#define CONF_NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

static const char conf_mask[] = "********";
static const char conf_ellipsis[] = "\xe2\x80\xa6"; /* U+2026 */

/* ---- small helpers ---- */

static int *conf_int_at(const struct np_conf *c, const struct conf_key *k)
{
	return (int *)((char *)(uintptr_t)c + k->offset);
}

static bool *conf_bool_at(const struct np_conf *c, const struct conf_key *k)
{
	return (bool *)((char *)(uintptr_t)c + k->offset);
}

static char **conf_str_at(const struct np_conf *c, const struct conf_key *k)
{
	return (char **)((char *)(uintptr_t)c + k->offset);
}

static const struct conf_key *conf_find(const char *name)
{
	for (size_t i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_keys[i].name, name) == 0)
			return &conf_keys[i];
	return NULL;
}

static void conf_copy(char *dst, size_t n, const char *src)
{
	if (n == 0)
		return;
	snprintf(dst, n, "%s", src ? src : "");
}

__attribute__((format(printf, 5, 6)))
static void conf_set_error(struct np_conf_error *err, const char *file, int line, const char *key,
			   const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	conf_copy(err->file, sizeof(err->file), file);
	err->line = line;
	conf_copy(err->key, sizeof(err->key), key);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* Edit distance between a and b, capped: anything above 3 is reported as 3. */
static int conf_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[64], prev, tmp;

	if (la >= 64 || lb >= 64)
		return 3;
	if ((la > lb ? la - lb : lb - la) > 2)
		return 3;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int best = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb] > 3 ? 3 : row[lb];
}

static const char *conf_closest(const char *name)
{
	const char *best = NULL;
	int bestd = 3;

	for (size_t i = 0; i < CONF_NKEYS; i++) {
		int d = conf_distance(name, conf_keys[i].name);
		if (d < bestd) {
			bestd = d;
			best = conf_keys[i].name;
		}
	}
	return best;
}

/* A bounded string builder: appends silently truncate, the result stays terminated. */
struct conf_buf {
	char *p;
	size_t n, len;
};

static void conf_buf_putc(struct conf_buf *b, char ch)
{
	if (b->n == 0)
		return;
	if (b->len + 1 < b->n)
		b->p[b->len++] = ch;
	b->p[b->len < b->n ? b->len : b->n - 1] = '\0';
}

static void conf_buf_puts(struct conf_buf *b, const char *s)
{
	while (*s)
		conf_buf_putc(b, *s++);
}

/* ---- validators ---- */

static int conf_check_port(const char *p, char *msg, size_t n)
{
	long port = 0;

	if (*p == '\0') {
		snprintf(msg, n, "missing port");
		return -1;
	}
	for (const char *q = p; *q; q++) {
		if (*q < '0' || *q > '9' || port > 65535) {
			snprintf(msg, n, "invalid port (expected 1..65535)");
			return -1;
		}
		port = port * 10 + (*q - '0');
	}
	if (port < 1 || port > 65535) {
		snprintf(msg, n, "invalid port (expected 1..65535)");
		return -1;
	}
	return 0;
}

static int conf_check_socket_path(const char *path, char *msg, size_t n)
{
	if (path[0] != '/') {
		snprintf(msg, n, "unix socket path must be absolute");
		return -1;
	}
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(msg, n, "unix socket path longer than %zu bytes",
			 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -1;
	}
	return 0;
}

static int conf_check_listen(const char *v, char *msg, size_t n)
{
	static const char forms[] = "expected host:port, [ipv6]:port, /path, unix:/path or stdin";
	const char *colon;

	if (strcmp(v, "stdin") == 0)
		return 0;
	if (strncmp(v, "unix:", 5) == 0)
		return conf_check_socket_path(v + 5, msg, n);
	if (v[0] == '/')
		return conf_check_socket_path(v, msg, n);
	if (v[0] == '[') {
		char addr[INET6_ADDRSTRLEN];
		struct in6_addr a6;
		const char *end = strchr(v, ']');
		size_t len;

		if (!end || end[1] != ':') {
			snprintf(msg, n, "invalid listen address (%s)", forms);
			return -1;
		}
		len = (size_t)(end - v - 1);
		if (len == 0 || len >= sizeof(addr)) {
			snprintf(msg, n, "invalid ipv6 address");
			return -1;
		}
		memcpy(addr, v + 1, len);
		addr[len] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1) {
			snprintf(msg, n, "invalid ipv6 address");
			return -1;
		}
		return conf_check_port(end + 2, msg, n);
	}
	colon = strrchr(v, ':');
	if (!colon || colon == v) {
		snprintf(msg, n, "invalid listen address (%s)", forms);
		return -1;
	}
	for (const char *q = v; q < colon; q++) {
		if (*q == ':') {
			snprintf(msg, n, "an ipv6 address must be written in brackets, e.g. [::1]:9000");
			return -1;
		}
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
		      *q == '.' || *q == '-' || *q == '_')) {
			snprintf(msg, n, "invalid host name in listen address");
			return -1;
		}
	}
	return conf_check_port(colon + 1, msg, n);
}

/* Copy a libpq message into out, replacing every quoted fragment (which may echo a password)
 * and dropping the trailing newline. */
static void conf_scrub_quoted(const char *in, char *out, size_t n)
{
	struct conf_buf b = { out, n, 0 };
	const char *p = in;

	if (n)
		out[0] = '\0';
	while (*p) {
		if (*p == '"') {
			const char *close = strchr(p + 1, '"');
			conf_buf_putc(&b, '"');
			conf_buf_puts(&b, conf_ellipsis);
			conf_buf_putc(&b, '"');
			if (!close)
				break;
			p = close + 1;
			continue;
		}
		conf_buf_putc(&b, *p++);
	}
	while (b.len > 0 && (out[b.len - 1] == '\n' || out[b.len - 1] == '\r' || out[b.len - 1] == ' '))
		out[--b.len] = '\0';
}

/* A libpq port list: comma-separated, each entry empty (the default) or 1..65535. */
static int conf_check_port_list(const char *list)
{
	const char *p = list;

	for (;;) {
		long port = 0;
		const char *q = p;

		while (*q >= '0' && *q <= '9' && port <= 65535)
			port = port * 10 + (*q++ - '0');
		if (q != p && (port < 1 || port > 65535))
			return -1;
		if (*q == '\0')
			return 0;
		if (*q != ',')
			return -1;
		p = q + 1;
	}
}

static int conf_check_conninfo(const char *v, char *msg, size_t n)
{
	PQconninfoOption *opts;
	char *pqerr = NULL;
	char scrubbed[256];
	int rc = 0;

	if (*v == '\0')
		return 0;
	opts = PQconninfoParse(v, &pqerr);
	if (!opts) {
		conf_scrub_quoted(pqerr ? pqerr : "out of memory", scrubbed, sizeof(scrubbed));
		snprintf(msg, n, "not a valid libpq connection string: %s", scrubbed);
		PQfreemem(pqerr);
		return -1;
	}
	/* libpq only checks the port when connecting: catch a typo at load time. */
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "port") == 0 && o->val && conf_check_port_list(o->val) < 0)
			rc = -1;
	PQconninfoFree(opts);
	if (rc < 0)
		snprintf(msg, n, "not a valid libpq connection string: invalid port");
	return rc;
}

static int conf_check_readable(const char *path, char *msg, size_t n)
{
	struct stat st;
	int fd;

	if (*path == '\0')
		return 0;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(msg, n, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		snprintf(msg, n, "'%s' is a directory", path);
		return -1;
	}
	close(fd);
	return 0;
}

/* The ask workers read these files at each ask with util_read_file(): the check is that same read
 * (a regular file, or a symlink to one, within the size the worker takes). */
static int conf_check_small_file(const char *path, size_t max, char *msg, size_t n)
{
	if (*path == '\0')
		return 0;
	char *text = util_read_file(path, max, msg, n);
	if (!text)
		return -1;
	explicit_bzero(text, strlen(text));
	free(text);
	return 0;
}

static int conf_check_llm_key_file(const char *path, char *msg, size_t n)
{
	return conf_check_small_file(path, NP_LLM_KEY_MAX, msg, n);
}

static int conf_check_llm_prompt_file(const char *path, char *msg, size_t n)
{
	return conf_check_small_file(path, NP_LLM_PROMPT_MAX, msg, n);
}

/* ---- defaults, free ---- */

void conf_free(struct np_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		if (conf_keys[i].type == CONF_STRING) {
			char **s = conf_str_at(c, &conf_keys[i]);
			free(*s);
			*s = NULL;
		}
	}
	free(c->file);
	c->file = NULL;
}

int conf_defaults(struct np_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->file = strdup("");
	if (!c->file)
		return -1;
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		switch (k->type) {
		case CONF_INT:
		case CONF_ENUM:
		case CONF_MODE:
			*conf_int_at(c, k) = (int)k->def;
			break;
		case CONF_BOOL:
			*conf_bool_at(c, k) = k->def != 0;
			break;
		case CONF_STRING:
			*conf_str_at(c, k) = strdup(k->def_str);
			if (!*conf_str_at(c, k)) {
				conf_free(c);
				return -1;
			}
			break;
		}
	}
	return 0;
}

/* ---- loading ---- */

static const char *conf_type_word(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_FLOAT: return "a float";
	default: return "an integer";
	}
}

static bool conf_is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* A mode written as an integer. libconfig 1.5 and 1.7 read 0660 as decimal 660, so its decimal
 * digits are taken as the octal digits (as chmod does); 1.6 reads a leading 0 as octal itself;
 * a hexadecimal (or, where libconfig knows it, octal) literal is taken as is. */
static int conf_mode_from_int(const config_setting_t *s, long long *out)
{
	long long v = config_setting_get_int64(s), mode = 0, scale = 1;
	int fmt = config_setting_get_format(s);

#ifdef CONFIG_FORMAT_OCT
	if (fmt == CONFIG_FORMAT_OCT)
		fmt = CONFIG_FORMAT_HEX;
#endif
#if LIBCONFIG_VER_MAJOR == 1 && LIBCONFIG_VER_MINOR == 6
	fmt = CONFIG_FORMAT_HEX;
#endif
	if (fmt == CONFIG_FORMAT_HEX || v < 0) {
		*out = v;
		return 0;
	}
	for (; v > 0; v /= 10, scale *= 8) {   /* at most 19 digits: 8^19 fits */
		if (v % 10 > 7)
			return -1;
		mode += (v % 10) * scale;
	}
	*out = mode;
	return 0;
}

static int conf_mode_from_string(const char *str, long long *out)
{
	long long v = 0;

	if (*str == '\0' || strlen(str) > 5)
		return -1;
	for (const char *p = str; *p; p++) {
		if (*p < '0' || *p > '7')
			return -1;
		v = v * 8 + (*p - '0');
	}
	*out = v;
	return 0;
}

static int conf_set_from(struct np_conf *c, const struct conf_key *k, const config_setting_t *s,
			 const char *file, int line, struct np_conf_error *err)
{
	const char *str;
	long long v;

	if (config_setting_is_aggregate(s)) {
		conf_set_error(err, file, line, k->name, "expected %s, not %s",
			       k->type == CONF_BOOL ? "true or false" :
			       k->type == CONF_INT || k->type == CONF_MODE ? "an integer" : "a string",
			       conf_type_word(s));
		return -1;
	}
	switch (k->type) {
	case CONF_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
			conf_set_error(err, file, line, k->name, "expected true or false");
			return -1;
		}
		*conf_bool_at(c, k) = config_setting_get_bool(s) != 0;
		return 0;
	case CONF_INT:
	case CONF_MODE:
		if (conf_is_int(s)) {
			if (k->type == CONF_INT) {
				v = config_setting_get_int64(s);
			} else if (conf_mode_from_int(s, &v) < 0) {
				conf_set_error(err, file, line, k->name,
					       "expected octal digits, e.g. 0660 or \"0660\"");
				return -1;
			}
		} else if (k->type == CONF_MODE && config_setting_type(s) == CONFIG_TYPE_STRING) {
			if (conf_mode_from_string(config_setting_get_string(s), &v) < 0) {
				conf_set_error(err, file, line, k->name,
					       "expected an octal mode, e.g. \"0660\"");
				return -1;
			}
		} else {
			conf_set_error(err, file, line, k->name, "expected an integer");
			return -1;
		}
		if (v < k->min || v > k->max) {
			if (k->type == CONF_MODE && v >= 0)
				conf_set_error(err, file, line, k->name, "value %s%llo out of range (%s%llo..0%llo)",
					       v ? "0" : "", (unsigned long long)v, k->min ? "0" : "",
					       (unsigned long long)k->min, (unsigned long long)k->max);
			else
				conf_set_error(err, file, line, k->name, "value %lld out of range (%lld..%lld)",
					       v, k->min, k->max);
			return -1;
		}
		*conf_int_at(c, k) = (int)v;
		return 0;
	case CONF_STRING:
	case CONF_ENUM:
		if (config_setting_type(s) != CONFIG_TYPE_STRING) {
			conf_set_error(err, file, line, k->name, "expected a string");
			return -1;
		}
		str = config_setting_get_string(s);
		if (k->type == CONF_ENUM) {
			char allowed[256] = "";
			struct conf_buf b = { allowed, sizeof(allowed), 0 };

			for (int i = 0; k->allowed[i]; i++) {
				if (strcmp(k->allowed[i], str) == 0) {
					*conf_int_at(c, k) = i;
					return 0;
				}
				if (i)
					conf_buf_puts(&b, ", ");
				conf_buf_puts(&b, k->allowed[i]);
			}
			conf_set_error(err, file, line, k->name, "invalid value '%.64s' (allowed: %s)", str, allowed);
			return -1;
		}
		{
			char *dup = strdup(str);
			if (!dup) {
				conf_set_error(err, file, line, k->name, "out of memory");
				return -1;
			}
			free(*conf_str_at(c, k));
			*conf_str_at(c, k) = dup;
		}
		return 0;
	}
	return -1;
}

/* Keys that were removed: the error says what replaced them instead of guessing a name. */
static const char *conf_retired(const char *name)
{
	static const struct {
		const char *name, *why;
	} retired[] = {
		{ "crash_max", "no longer a key: the master never stops respawning, it backs off (respawn_backoff_max_ms); remove it" },
		{ "crash_window_s", "no longer a key: the master never stops respawning, it backs off (respawn_stable_ms); remove it" },
	};
	for (size_t i = 0; i < sizeof(retired) / sizeof(retired[0]); i++)
		if (strcmp(retired[i].name, name) == 0)
			return retired[i].why;
	return NULL;
}

static int conf_load_settings(struct np_conf *c, config_t *cfg, const char *path, int *lines,
			      struct np_conf_error *err)
{
	config_setting_t *root;

	if (!config_read_file(cfg, path)) {
		if (config_error_type(cfg) == CONFIG_ERR_FILE_IO && !config_error_file(cfg))
			conf_set_error(err, path, 0, "", "cannot read the file");
		else
			conf_set_error(err, config_error_file(cfg) ? config_error_file(cfg) : path,
				       config_error_line(cfg), "", "%s", config_error_text(cfg));
		return -1;
	}
	root = config_root_setting(cfg);
	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned int)i);
		const char *name = config_setting_name(s);
		const char *file = config_setting_source_file(s) ? config_setting_source_file(s) : path;
		int line = config_setting_source_line(s);
		const struct conf_key *k = name ? conf_find(name) : NULL;

		if (!k) {
			const char *hint = name ? conf_closest(name) : NULL;
			const char *retired = name ? conf_retired(name) : NULL;
			if (retired)
				conf_set_error(err, file, line, name, "%s", retired);
			else if (hint)
				conf_set_error(err, file, line, name, "unknown key (did you mean '%s'?)", hint);
			else
				conf_set_error(err, file, line, name ? name : "", "unknown key");
			return -1;
		}
		if (conf_set_from(c, k, s, file, line, err) < 0)
			return -1;
		lines[k - conf_keys] = line;
	}
	return 0;
}

/* Refuse @include before libconfig reads the file. The configuration is one flat table, and libconfig 1.5
 * (Debian 12) has no hook for includes: one that names a directory makes it call exit(2) ("input in flex
 * scanner failed"), one that names a FIFO blocks, so a reload would end or hang the master (libconfig
 * issue 292; reproduced by fuzz_conf and a live SIGHUP). Its scanner takes "@include" only at the start
 * of a line, after blanks. Also reports a file that cannot be read (a directory) with its reason. */
static int conf_check_no_include(FILE *fp, const char *path, struct np_conf_error *err)
{
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, rc = 0;

	errno = 0;
	while (getline(&line, &cap, fp) >= 0) {
		const char *p = line;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "@include", 8) == 0) {
			conf_set_error(err, path, lineno, "",
				       "@include is not supported (every key belongs in this one file)");
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(fp)) {
		conf_set_error(err, path, 0, "", "cannot read: %s", strerror(errno ? errno : EIO));
		rc = -1;
	}
	free(line);
	return rc;
}

/* The address an ask worker's internal request comes from: asktx connects to listen's host (the
 * first address it resolves to, 127.0.0.1 for an empty host), and a connection to a local
 * address has that address as its source, except that a wildcard or loopback host is reached
 * over loopback (127.0.0.1, ::1). Written into ss and text; -1 when the host does not resolve
 * (then binding it fails at start, with its own message). */
static int conf_ask_peer(const char *listen, struct sockaddr_storage *ss, char *text, size_t n)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	size_t hl = colon ? (size_t)(colon - listen) : 0;
	if (colon == NULL || hl >= sizeof(host))
		return -1;
	memcpy(host, listen, hl);
	host[hl] = '\0';
	char *h = host;
	if (hl > 1 && h[0] == '[' && h[hl - 1] == ']') {
		h[hl - 1] = '\0';
		h++;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	if (getaddrinfo(h[0] ? h : "127.0.0.1", NULL, &hints, &ai) != 0 || ai == NULL)
		return -1;
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen < sizeof(*ss) ? ai->ai_addrlen : sizeof(*ss));
	freeaddrinfo(ai);
	const void *bin;
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		uint32_t v = ntohl(a->sin_addr.s_addr);
		if (v == INADDR_ANY || v >> 24 == 127)
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		bin = &a->sin_addr;
	} else if (ss->ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
			a->sin6_addr = in6addr_loopback;
		bin = &a->sin6_addr;
	} else {
		return -1;
	}
	return inet_ntop(ss->ss_family, bin, text, (socklen_t)n) ? 0 : -1;
}

/* ask_listen needs a main socket its workers can reach (their two short transactions are an
 * internal request to listen): not the inherited stdin, and on TCP from an address
 * listen_allowed_clients allows. 0, or -1 with err naming the key to change. */
static int conf_check_ask_reach(const struct np_conf *c, const char *path, const int *lines,
                                struct np_conf_error *err)
{
	int ask_line = lines[conf_find("ask_listen") - conf_keys];
	int acl_line = lines[conf_find("listen_allowed_clients") - conf_keys];
	if (c->ask_listen[0] == '\0')
		return 0;
	if (strcmp(c->listen, "stdin") == 0) {
		conf_set_error(err, path, ask_line, "ask_listen",
		               "needs a main socket the ask workers can connect to, but listen = \"stdin\" is "
		               "inherited: set listen to a socket path or address, or ask_listen = \"\"");
		return -1;
	}
	if (c->listen[0] == '/' || strncmp(c->listen, "unix:", 5) == 0)
		return 0;
	struct sockaddr_storage ss;
	char peer[INET6_ADDRSTRLEN], msg[128];
	struct allowlist acl;
	if (conf_ask_peer(c->listen, &ss, peer, sizeof(peer)) < 0 ||
	    allowlist_parse(c->listen_allowed_clients, &acl, msg, sizeof(msg)) < 0 ||
	    allowlist_match(&acl, (struct sockaddr *)&ss))
		return 0;
	conf_set_error(err, path, acl_line, "listen_allowed_clients",
	               "does not allow %s, from which the ask workers (ask_listen) connect to listen = \"%s\": "
	               "add %s, or leave ask_listen empty",
	               peer, c->listen, peer);
	return -1;
}

int conf_load(struct np_conf *c, const char *path, struct np_conf_error *err)
{
	int lines[CONF_NKEYS] = { 0 };
	bool url_from_env = false;
	config_t cfg;
	FILE *fp;
	int rc;

	if (err)
		memset(err, 0, sizeof(*err));
	if (!path)
		path = NP_DEFAULT_CONFIG;
	if (conf_defaults(c) < 0) {
		conf_set_error(err, path, 0, "", "out of memory");
		return -1;
	}
	free(c->file);
	c->file = strdup(path);
	if (!c->file) {
		conf_set_error(err, path, 0, "", "out of memory");
		conf_free(c);
		return -1;
	}
	/* libconfig reports only "file I/O error": open it first for the reason. */
	fp = fopen(path, "r");
	if (!fp) {
		conf_set_error(err, path, 0, "", "cannot open: %s", strerror(errno));
		conf_free(c);
		return -1;
	}
	rc = conf_check_no_include(fp, path, err);
	fclose(fp);
	if (rc < 0) {
		conf_free(c);
		return -1;
	}

	config_init(&cfg);
	rc = conf_load_settings(c, &cfg, path, lines, err);
	config_destroy(&cfg);
	if (rc < 0) {
		conf_free(c);
		return -1;
	}

	if (c->database_url[0] == '\0') {
		const char *env = getenv("DATABASE_URL");
		if (env && *env) {
			char *dup = strdup(env);
			if (!dup) {
				conf_set_error(err, path, 0, "database_url", "out of memory");
				conf_free(c);
				return -1;
			}
			free(c->database_url);
			c->database_url = dup;
			url_from_env = true;
		}
	}

	for (size_t i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		char msg[sizeof(err->message) - 64];

		if (k->type != CONF_STRING || !k->check)
			continue;
		if (k->check(*conf_str_at(c, k), msg, sizeof(msg)) == 0)
			continue;
		if (k->offset == offsetof(struct np_conf, database_url) && url_from_env)
			conf_set_error(err, "", 0, k->name, "%s (from the environment variable DATABASE_URL)", msg);
		else
			conf_set_error(err, path, lines[i], k->name, "%s", msg);
		conf_free(c);
		return -1;
	}
	if (conf_check_ask_reach(c, path, lines, err) < 0) {
		conf_free(c);
		return -1;
	}
	return 0;
}

void conf_error_format(const struct np_conf_error *err, char *buf, size_t n)
{
	struct conf_buf b = { buf, n, 0 };
	char num[16];

	if (n == 0)
		return;
	buf[0] = '\0';
	if (err->file[0]) {
		conf_buf_puts(&b, err->file);
		if (err->line > 0) {
			snprintf(num, sizeof(num), ":%d", err->line);
			conf_buf_puts(&b, num);
		}
		conf_buf_puts(&b, ": ");
	}
	if (err->key[0]) {
		conf_buf_puts(&b, "key '");
		conf_buf_puts(&b, err->key);
		conf_buf_puts(&b, "': ");
	}
	conf_buf_puts(&b, err->message);
}

/* ---- the table as an API ---- */

int conf_key_reloadable(const char *key)
{
	const struct conf_key *k = key ? conf_find(key) : NULL;

	return k ? (int)k->reloadable : -1;
}

const char *conf_key_name(size_t i)
{
	return i < CONF_NKEYS ? conf_keys[i].name : NULL;
}

const char *conf_log_level_name(int level)
{
	return log_level_name(level);
}

static bool conf_key_equal(const struct np_conf *a, const struct np_conf *b, const struct conf_key *k)
{
	switch (k->type) {
	case CONF_BOOL:
		return *conf_bool_at(a, k) == *conf_bool_at(b, k);
	case CONF_STRING: {
		const char *sa = *conf_str_at(a, k), *sb = *conf_str_at(b, k);
		return strcmp(sa ? sa : "", sb ? sb : "") == 0;
	}
	default:
		return *conf_int_at(a, k) == *conf_int_at(b, k);
	}
}

int conf_diff_restart_only(const struct np_conf *a, const struct np_conf *b, char *buf, size_t n)
{
	struct conf_buf out = { buf, n, 0 };
	int count = 0;

	if (n)
		buf[0] = '\0';
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		if (k->reloadable || conf_key_equal(a, b, k))
			continue;
		if (count++)
			conf_buf_puts(&out, ", ");
		conf_buf_puts(&out, k->name);
	}
	return count;
}

/* ---- secrets ---- */

int conf_read_password(const struct np_conf *c, char *buf, size_t n, struct np_conf_error *err)
{
	const char *path = c->database_password_file ? c->database_password_file : "";
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *fp;

	if (err)
		memset(err, 0, sizeof(*err));
	if (n)
		buf[0] = '\0';
	if (*path == '\0') {
		conf_set_error(err, c->file, 0, "database_password_file", "not set");
		return -1;
	}
	fp = fopen(path, "re");
	if (!fp) {
		conf_set_error(err, path, 0, "database_password_file", "cannot open: %s", strerror(errno));
		return -1;
	}
	errno = 0;
	len = getline(&line, &cap, fp);
	if (len < 0 && errno) {
		conf_set_error(err, path, 0, "database_password_file", "cannot read: %s", strerror(errno));
		fclose(fp);
		free(line);
		return -1;
	}
	fclose(fp);
	if (len < 0)
		len = 0;
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		line[--len] = '\0';
	if (len == 0)
		conf_set_error(err, path, 0, "database_password_file", "the first line is empty");
	else if ((size_t)len >= n)
		conf_set_error(err, path, 0, "database_password_file", "password longer than %zu bytes",
			       n ? n - 1 : 0);
	else
		memcpy(buf, line, (size_t)len + 1);
	if (line) {
		explicit_bzero(line, cap);
		free(line);
	}
	return len > 0 && (size_t)len < n ? 0 : -1;
}

/* Append value the way libpq reads it back: quoted when empty or holding a space, quote or backslash. */
static void conf_put_conninfo_value(struct conf_buf *b, const char *v)
{
	bool quote = *v == '\0' || strpbrk(v, " \t\n\r\f\v'\\") != NULL;

	if (quote)
		conf_buf_putc(b, '\'');
	for (; *v; v++) {
		if (*v == '\'' || *v == '\\')
			conf_buf_putc(b, '\\');
		conf_buf_putc(b, *v);
	}
	if (quote)
		conf_buf_putc(b, '\'');
}

void conf_redact_conninfo(const char *conninfo, char *out, size_t n)
{
	struct conf_buf b = { out, n, 0 };
	PQconninfoOption *opts;
	char *pqerr = NULL;
	bool first = true;

	if (n == 0)
		return;
	out[0] = '\0';
	opts = conninfo ? PQconninfoParse(conninfo, &pqerr) : NULL;
	PQfreemem(pqerr);
	if (!opts) {
		conf_buf_puts(&b, "(invalid connection string)");
		return;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !o->val[0])
			continue;
		if (!first)
			conf_buf_putc(&b, ' ');
		first = false;
		conf_buf_puts(&b, o->keyword);
		conf_buf_putc(&b, '=');
		if ((o->dispchar && strchr(o->dispchar, '*')) || strcmp(o->keyword, "password") == 0)
			conf_buf_puts(&b, conf_mask);
		else
			conf_put_conninfo_value(&b, o->val);
	}
	PQconninfoFree(opts);
}

/* ---- dump ---- */

static void conf_put_quoted(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(fp, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", fp);
		else if (ch == '\t')
			fputs("\\t", fp);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(fp, "\\x%02x", ch);
		else
			fputc(ch, fp);
	}
	fputc('"', fp);
}

void conf_dump(const struct np_conf *c, FILE *fp)
{
	for (size_t i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		const char *name = "unknown";
		int v;

		fprintf(fp, "%s = ", k->name);
		switch (k->type) {
		case CONF_INT:
			fprintf(fp, "%d", *conf_int_at(c, k));
			break;
		case CONF_MODE:
			fprintf(fp, "0%03o", (unsigned int)*conf_int_at(c, k));
			break;
		case CONF_BOOL:
			fputs(*conf_bool_at(c, k) ? "true" : "false", fp);
			break;
		case CONF_ENUM:
			v = *conf_int_at(c, k);
			for (int j = 0; k->allowed[j]; j++)
				if (j == v)
					name = k->allowed[j];
			conf_put_quoted(fp, name);
			break;
		case CONF_STRING: {
			const char *s = *conf_str_at(c, k) ? *conf_str_at(c, k) : "";
			if (k->check == conf_check_conninfo && *s) {
				char red[1024];
				conf_redact_conninfo(s, red, sizeof(red));
				conf_put_quoted(fp, red);
			} else {
				conf_put_quoted(fp, s);
			}
			break;
		}
		}
		fputc('\n', fp);
	}
}

/* control_listen: "" or the same forms as listen, except stdin (only one socket can be inherited). */
static int conf_check_control_listen(const char *value, char *msg, size_t n)
{
	if (value[0] == '\0')
		return 0;
	if (strcmp(value, "stdin") == 0) {
		snprintf(msg, n, "stdin is only possible for listen");
		return -1;
	}
	return conf_check_listen(value, msg, n);
}

/* listen_allowed_clients: a non-empty list of addresses or CIDRs (src/core/allowlist.c). */
static int conf_check_allowed_clients(const char *value, char *msg, size_t n)
{
	struct allowlist l;
	return allowlist_parse(value, &l, msg, n);
}

/* llm_url: "" or an http(s) URL without user information (a password there would be a secret in
 * the configuration's dump and in libcurl's messages: the key goes in llm_api_key_file). */
static int conf_check_llm_url(const char *value, char *msg, size_t n)
{
	if (value[0] == '\0')
		return 0;
	const char *rest = strncmp(value, "http://", 7) == 0 ? value + 7 : strncmp(value, "https://", 8) == 0 ? value + 8 : NULL;
	if (rest == NULL || rest[0] == '\0' || rest[0] == '/') {
		snprintf(msg, n, "must be an http:// or https:// URL with a host");
		return -1;
	}
	size_t host = strcspn(rest, "/?#");
	if (memchr(rest, '@', host)) {
		snprintf(msg, n, "must not contain user information (put the API key in llm_api_key_file)");
		return -1;
	}
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			snprintf(msg, n, "must not contain spaces or control characters");
			return -1;
		}
	return 0;
}

static int conf_check_schedule(const char *value, char *msg, size_t n)
{
	struct sched s;
	return sched_parse(value, &s, msg, n);
}

static int conf_check_timezone(const char *value, char *msg, size_t n)
{
	if (sched_tz_valid(value))
		return 0;
	snprintf(msg, n, "not a time zone this machine knows (an IANA name such as Europe/Berlin, from /usr/share/zoneinfo)");
	return -1;
}

static int conf_check_admin_allow(const char *value, char *msg, size_t n)
{
	struct allowlist l;
	bool unix_ok;
	return allowlist_parse_admin(value, &l, &unix_ok, msg, n);
}
