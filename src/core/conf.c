/* SPDX-License-Identifier: PostgreSQL */
/* conf.c - the configuration's key table, and what it drives: defaults, the table as an API
 * (reloadable keys, restart-only differences), secrets (password file, redaction) and the dump.
 * Reading a file is conf_load.c; the values' validators are conf_check.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* getline, strdup, explicit_bzero, asprintf: -std=c11 hides them */
#endif
#include "conf.h"
#include "conf_key.h"
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

static const char *const conf_warmup_policies[] = { "always", "while-active", "never", "schedule", NULL };
static const char *const conf_ask_disconnect[] = { "finish", "abort", NULL };

const struct conf_key conf_keys[] = {
	/* processes */
	KEY_INT("workers", workers, 4, 1, NP_MAX_WORKERS, RELOAD, "processes", "FastCGI worker processes"),
	KEY_STR("user", user, "", NULL, RESTART, "drop to this user when started as root (\"\" = stay)"),
	KEY_STR("group", group, "", NULL, RESTART, "drop to this group when started as root (\"\" = the user's group)"),
	KEY_STR("pid_file", pid_file, "", NULL, RESTART, "write the master's pid to this file (\"\" = none)"),
	KEY_BOOL("daemonize", daemonize, false, RESTART, "detach from the terminal and run in the background"),
	KEY_STR("log_file", log_file, "", NULL, RELOAD, "append the log to this file (\"\" = stderr)"),
	KEY_ENUM("log_level", log_level, NP_LOG_INFO, log_level_names, RELOAD, "least severe level logged"),
	KEY_INT("upgrade_timeout_ms", upgrade_timeout_ms, 30000, 1000, 600000, RELOAD, "ms", "a binary upgrade (SIGUSR2) whose new workers do not all accept within this long is rolled back"),
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
	KEY_BOOL("ask_llm_fallback", ask_llm_fallback, true, RELOAD, "when the model fails before its first token (timeout, 5xx, 429, refused), answer with the extractive answer, labelled as such in the stream and the stored message, instead of an error (false: the error)"),
	KEY_INT("ask_top_k", ask_top_k, 5, 1, 20, RELOAD, "passages", "an ask retrieves this many passages (the search's ranking), numbered [1]..[k] for the answer's citations"),
	KEY_INT("ask_history_messages", ask_history_messages, 6, 0, 50, RELOAD, "messages", "an ask sends the session's last this many messages with the question"),
	/* observability (issue 8) */
	KEY_STR("admin_allow", admin_allow, "127.0.0.0/8,::1,unix", conf_check_admin_allow, RELOAD, "who may read /metrics and /status: comma-separated addresses or address/bits of the HTTP client (REMOTE_ADDR from the front server, else the FastCGI peer), and the word unix for a request over a unix socket without REMOTE_ADDR; others get 403"),
	KEY_INT("slow_request_ms", slow_request_ms, 1000, 0, 3600000, RELOAD, "ms", "a request that took at least this long is logged at warning level with its request id, route, status and phases (acquire, connect, query, upstream) (0 = off)"),
	KEY_BOOL("access_log", access_log, false, RELOAD, "log one line per request at info level: method, route, status, duration, queue time and the request id the front server passed"),
	KEY_STR("ask_rate_per_session", ask_rate_per_session, "", conf_check_rate, RELOAD, "asks one chat session may make per window, e.g. \"5/min\" (N/s, N/min, N/h); more get 429 rate_limited with Retry-After (\"\" = no limit)"),
};


const size_t conf_nkeys = sizeof(conf_keys) / sizeof(conf_keys[0]);
_Static_assert(sizeof(conf_keys) / sizeof(conf_keys[0]) <= CONF_KEYS_MAX, "raise CONF_KEYS_MAX in conf_key.h");

static const char conf_mask[] = "********";
/* ---- small helpers ---- */
const struct conf_key *conf_find(const char *name)
{
	for (size_t i = 0; i < conf_nkeys; i++)
		if (strcmp(conf_keys[i].name, name) == 0)
			return &conf_keys[i];
	return NULL;
}

void conf_copy(char *dst, size_t n, const char *src)
{
	if (n == 0)
		return;
	snprintf(dst, n, "%s", src ? src : "");
}

void conf_set_error(struct np_conf_error *err, const char *file, int line, const char *key,
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

const char *conf_closest(const char *name)
{
	const char *best = NULL;
	int bestd = 3;

	for (size_t i = 0; i < conf_nkeys; i++) {
		int d = conf_distance(name, conf_keys[i].name);
		if (d < bestd) {
			bestd = d;
			best = conf_keys[i].name;
		}
	}
	return best;
}

void conf_buf_putc(struct conf_buf *b, char ch)
{
	if (b->n == 0)
		return;
	if (b->len + 1 < b->n)
		b->p[b->len++] = ch;
	b->p[b->len < b->n ? b->len : b->n - 1] = '\0';
}

void conf_buf_puts(struct conf_buf *b, const char *s)
{
	while (*s)
		conf_buf_putc(b, *s++);
}

/* ---- defaults, free ---- */

void conf_free(struct np_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < conf_nkeys; i++) {
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
	for (size_t i = 0; i < conf_nkeys; i++) {
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

/* ---- the table as an API ---- */

int conf_key_reloadable(const char *key)
{
	const struct conf_key *k = key ? conf_find(key) : NULL;

	return k ? (int)k->reloadable : -1;
}

const char *conf_key_name(size_t i)
{
	return i < conf_nkeys ? conf_keys[i].name : NULL;
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
	for (size_t i = 0; i < conf_nkeys; i++) {
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
	for (size_t i = 0; i < conf_nkeys; i++) {
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
