/* SPDX-License-Identifier: PostgreSQL */
/* neonpoolctl.c - the command-line tool: configuration check, database commands and the pool's status. */
#include <getopt.h>
#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "ctl_status.h"
#include "ctl_db.h"
#include "ctl_ping.h"
#include "ctl_service.h"
#include "passage.h"
#include "util.h"
#include "version.h"

/* Where `make install` puts the migrations (Makefile.am passes -DNP_SQLDIR). */
#ifndef NP_SQLDIR
#define NP_SQLDIR "/usr/local/share/neonpool/sql"
#endif

static void usage(FILE *fp)
{
	fprintf(fp,
	        "Usage: neonpoolctl [-c FILE] COMMAND [OPTIONS]\n"
	        "Operate a neonpool installation.\n\n"
	        "Options:\n"
	        "  -c, --config FILE   configuration file (default %s)\n"
	        "  -h, --help          this help\n"
	        "  -V, --version       print the version\n\n"
	        "Commands:\n"
	        "  check-config        validate the configuration; print it with secrets masked\n"
	        "  migrate [--dir DIR] [--status]\n"
	        "                      apply the SQL migrations NNN_name.sql of DIR in order, each in one\n"
	        "                      transaction under an advisory lock, recording their SHA-256; refuse\n"
	        "                      when an applied file was changed (default DIR %s);\n"
	        "                      --status lists them applied, pending or changed\n"
	        "  seed [--books N] [--chapters N] [--passages N]\n"
	        "                      insert deterministic sample textbooks sample-book-NNN; running it\n"
	        "                      again adds nothing (defaults %d, %d, %d)\n"
	        "  import DIR [--slug S] [--title T] [--author A] [--dry-run]\n"
	        "                      load DIR's HTML pages as one book (slug S, default made of the\n"
	        "                      title; title T, default the first page's): one chapter per page in\n"
	        "                      the order of index.html's \"next\" links, passages of %d-%d words;\n"
	        "                      one transaction; running it again changes nothing; --dry-run\n"
	        "                      parses and lists the chapters without touching the database\n"
	        "  check-db [--json] [--hosts N]\n"
	        "                      test the database: connect time, version, TLS, round trips,\n"
	        "                      connection limits and use, migrations; exit 1 when unhealthy;\n"
	        "                      --hosts N: whether N hosts with this budget fit (exit 2 when not)\n"
	        "  status [--json] [--watch N]\n"
	        "                      the running pool from status_file: workers, budget tokens,\n"
	        "                      breaker, health, p99 per route; answers even when every worker is\n"
	        "                      stuck; --watch N refreshes every N seconds\n"
	        "  top [-d S] [-n N]   a refreshing view of the pool (workers, budget, waiters, req/s, p99\n"
	        "                      per route), read out of band like status\n"
	        "  ping [DSN]          connect once and time each phase (DNS, TCP, TLS, authentication,\n"
	        "                      first query); classified errors with a hint; exit codes 0-8\n"
	        "  reload [--timeout S]\n"
	        "                      SIGHUP the running master and wait until it took the configuration\n"
	        "                      or refused it: exit 1 with the reason when refused\n"
	        "  stop [--graceful] [--timeout S]\n"
	        "                      SIGTERM (--graceful: SIGQUIT) the running master and wait until it\n"
	        "                      exited\n"
	        "  upgrade [--abort] [--timeout S]\n"
	        "                      SIGUSR2: run the new binary beside the running one, on the same\n"
	        "                      sockets and budget; wait until it took over or was rolled back\n"
	        "  help [COMMAND]      this help, or a command's (as COMMAND --help)\n\n"
	        "The database is database_url (or DATABASE_URL) with database_password_file.\n"
	        "See neonpoolctl(1).\n",
	        NP_DEFAULT_CONFIG, NP_SQLDIR, CTL_DB_SEED_BOOKS, CTL_DB_SEED_CHAPTERS, CTL_DB_SEED_PASSAGES,
	        PASSAGE_MIN_WORDS, PASSAGE_MAX_WORDS);
}

static void import_usage(FILE *fp);

/* Each command's --help (import has its own, longer). */
static const struct {
	const char *name, *text;
} ctl_help[] = {
	{ "check-config", "Usage: neonpoolctl [-c FILE] check-config\n"
	                  "Validate the configuration file and print the effective configuration, secrets masked.\n"
	                  "Exit 0 when valid, 1 otherwise (the line says file:line and the key).\n" },
	{ "migrate", "Usage: neonpoolctl [-c FILE] migrate [--dir DIR] [--status]\n"
	             "Apply the SQL migrations NNN_name.sql of DIR (default " NP_SQLDIR ") in order, each in one\n"
	             "transaction under an advisory lock, and record each with the SHA-256 of its file; applied\n"
	             "ones are skipped. Every applied file is checked against its checksum first: when one was\n"
	             "changed, nothing is applied and the file is named (a change goes into a new file).\n"
	             "Exit 0, or 1 on an error or a changed file.\n"
	             "  --status  change nothing; list each migration: applied, pending, changed, unchecked\n"
	             "            (recorded before checksums) or missing (applied, no file); exit 1 when one\n"
	             "            changed.\n" },
	{ "seed", "Usage: neonpoolctl [-c FILE] seed [--books N] [--chapters N] [--passages N]\n"
	          "Insert deterministic sample textbooks sample-book-NNN; running it again adds nothing.\n" },
	{ "check-db", "Usage: neonpoolctl [-c FILE] check-db [--json] [--hosts N]\n"
	              "Test the database of the configuration: connect time, version, TLS, round trips,\n"
	              "connection limits and use, migrations. Exit 0 when healthy, 1 when not.\n"
	              "--hosts N (1-1000): N hosts each with this configuration's budget connect straight to\n"
	              "this database; warn, and exit 2, when N x budget exceeds max_connections minus\n"
	              "superuser_reserved_connections minus the connections of everything not neonpool.\n" },
	{ "status", "Usage: neonpoolctl [-c FILE] status [--json] [--watch N]\n"
	            "The running pool, read out of band from status_file (shared memory mapped read-only),\n"
	            "so it answers while every worker is stuck: workers with state, route and age, budget\n"
	            "and tokens, waiters, counters, errors by code, health, breaker, warm-up, p50/p95/p99 per\n"
	            "route over 1 and 5 minutes.\n"
	            "  --json      one JSON document (what GET /status?full answers)\n"
	            "  --watch N   refresh every N seconds (1..3600) until interrupted\n"
	            "Exit 0, or 1 when the file is missing, not ours, or its master is gone.\n" },
	{ "top", "Usage: neonpoolctl [-c FILE] top [-d SECONDS] [-n ITERATIONS]\n"
	         "A refreshing view of the pool read out of band (works while every worker is stuck):\n"
	         "workers by state, budget, waiters, req/s, p50/p99 per route, each worker's route and age.\n"
	         "  -d, --delay SECONDS      between refreshes (default 1, 1..3600)\n"
	         "  -n, --iterations N       stop after N refreshes (default: until interrupted)\n" },
	{ "ping", "Usage: neonpoolctl [-c FILE] ping [DSN]\n"
	          "Connect once to DSN (a libpq URI or key=value string; default: the configuration's\n"
	          "database_url with database_password_file) and print each phase with its time: DNS,\n"
	          "TCP, TLS (version, cipher), authentication, backend startup, first query; then the\n"
	          "server version. A failure is classified, with a hint, and the password is never shown.\n"
	          "Exit codes:\n"
	          "  0  connected and queried\n"
	          "  1  unclassified failure\n"
	          "  2  bad arguments, configuration or connection string\n"
	          "  3  DNS: the host name did not resolve\n"
	          "  4  TCP: refused, unreachable or timed out\n"
	          "  5  TLS: required but not offered, or the certificate not accepted\n"
	          "  6  authentication: wrong user or password\n"
	          "  7  the server refused: too many connections, Neon endpoint id missing (SNI),\n"
	          "     endpoint disabled or unknown, compute quota, rate limit\n"
	          "  8  connected, but the first query failed\n" },
	{ "reload", "Usage: neonpoolctl [-c FILE] reload [--timeout SECONDS]\n"
	            "Send SIGHUP to the running master (named in status_file, else pid_file) and wait until\n"
	            "the status file counts the reload. The master re-reads its own configuration file: when\n"
	            "it refuses it (an invalid file, a changed key that needs a restart, a log_file it cannot\n"
	            "open) the running configuration stays and the reason is printed. systemd's ExecReload=.\n"
	            "A reload runs the program already in memory: `neonpoolctl upgrade` runs a new binary\n"
	            "and applies the keys a reload refuses.\n"
	            "  --timeout SECONDS  wait at most this long (default 30, 1..3600)\n"
	            "Exit 0 when reloaded (the new generation is printed), 1 when refused, when no master\n"
	            "runs or it did not answer in time, 2 on bad arguments or when FILE cannot be read for\n"
	            "status_file and pid_file. Without a status_file the signal is sent unconfirmed.\n" },
	{ "stop", "Usage: neonpoolctl [-c FILE] stop [--graceful] [--timeout SECONDS]\n"
	          "Send SIGTERM to the running master (named in status_file, else pid_file): requests in\n"
	          "flight get shutdown_timeout_ms; with --graceful, SIGQUIT: they get graceful_timeout_ms.\n"
	          "Then wait until the master exited (it leaves after its children).\n"
	          "  --graceful         SIGQUIT instead of SIGTERM\n"
	          "  --timeout SECONDS  wait at most this long (default: graceful_timeout_ms +\n"
	          "                     shutdown_timeout_ms + 5 s, 1..3600)\n"
	          "Exit 0 when it exited, 1 when none runs or it was still running at the timeout, 2 on\n"
	          "bad arguments or an unreadable FILE.\n" },
	{ "upgrade", "Usage: neonpoolctl [-c FILE] upgrade [--abort] [--timeout SECONDS]\n"
	             "Send SIGUSR2 to the running master (named in status_file): it starts its program's file\n"
	             "anew (the path it was started from) beside itself, handing over the listening sockets, the\n"
	             "shared memory and the connection budget. Once the new workers accept, the old master\n"
	             "stops accepting, finishes its requests (graceful_timeout_ms) and exits; if the new one\n"
	             "exits, crashes or is not ready within upgrade_timeout_ms, it is stopped and the running\n"
	             "one serves on. Waits for the outcome and prints it.\n"
	             "  --abort            end a pending upgrade (SIGURG): the running generation serves on\n"
	             "  --timeout SECONDS  wait at most this long (default upgrade_timeout_ms +\n"
	             "                     graceful_timeout_ms + 10 s: a rollback stops the new one gracefully)\n"
	             "Exit 0 when the new master took over, 1 when rolled back, refused (one is under way),\n"
	             "no master runs or no outcome came in time; 2 on bad arguments.\n" },
	{ "help", "Usage: neonpoolctl help [COMMAND]\n" },
};

/* Print COMMAND's help to fp; false when there is no such command. */
static bool cmd_usage(const char *cmd, FILE *fp)
{
	if (strcmp(cmd, "import") == 0) {
		import_usage(fp);
		return true;
	}
	for (size_t i = 0; i < sizeof(ctl_help) / sizeof(ctl_help[0]); i++)
		if (strcmp(ctl_help[i].name, cmd) == 0) {
			fputs(ctl_help[i].text, fp);
			return true;
		}
	return false;
}

/* argv holds --help or -h before any "--": the command's help is asked for. */
static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

static int load_conf(const char *path, struct np_conf *conf)
{
	struct np_conf_error err;
	if (conf_load(conf, path, &err) < 0) {
		char msg[1024];
		conf_error_format(&err, msg, sizeof(msg));
		fprintf(stderr, "neonpoolctl: %s\n", msg);
		return -1;
	}
	return 0;
}

static int cmd_check_config(const char *path)
{
	struct np_conf conf;
	if (load_conf(path, &conf) < 0)
		return 1;
	conf_dump(&conf, stdout);
	fprintf(stderr, "neonpoolctl: configuration file %s is valid\n", path);
	conf_free(&conf);
	return 0;
}

/* After a command's options (argv[0] is the command; getopt restarts with optind = 0). */
static int no_more_args(const char *cmd, int argc, char **argv)
{
	if (optind < argc) {
		fprintf(stderr, "neonpoolctl: %s: unexpected argument '%s'\n", cmd, argv[optind]);
		return -1;
	}
	return 0;
}

static int cmd_migrate(const char *path, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "status", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	static char prog[] = "neonpoolctl migrate";   /* getopt's messages start with argv[0] */
	const char *dir = NP_SQLDIR;
	bool status = false;
	struct np_conf conf;
	int opt, rc;

	argv[0] = prog;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "+d:s", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 's': status = true; break;
		default: fprintf(stderr, "Usage: neonpoolctl [-c FILE] migrate [--dir DIR] [--status]\n"); return 1;
		}
	}
	if (no_more_args("migrate", argc, argv) < 0 || load_conf(path, &conf) < 0)
		return 1;
	rc = ctl_db_migrate(&conf, dir, status);
	conf_free(&conf);
	return rc;
}

static int parse_count(const char *opt, const char *s, int max, int *out)
{
	int64_t v;
	if (util_parse_i64(s, 1, max, &v) < 0) {
		fprintf(stderr, "neonpoolctl: seed: --%s: expected a whole number from 1 to %d, got '%s'\n", opt, max, s);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int cmd_seed(const char *path, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "books", required_argument, NULL, 'b' },
		{ "chapters", required_argument, NULL, 'c' },
		{ "passages", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	static char prog[] = "neonpoolctl seed";
	int books = CTL_DB_SEED_BOOKS, chapters = CTL_DB_SEED_CHAPTERS, passages = CTL_DB_SEED_PASSAGES;
	struct np_conf conf;
	int opt, rc;

	argv[0] = prog;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "+b:c:p:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b': rc = parse_count("books", optarg, CTL_DB_SEED_MAX_BOOKS, &books); break;
		case 'c': rc = parse_count("chapters", optarg, CTL_DB_SEED_MAX_CHAPTERS, &chapters); break;
		case 'p': rc = parse_count("passages", optarg, CTL_DB_SEED_MAX_PASSAGES, &passages); break;
		default: rc = -1; break;
		}
		if (rc < 0) {
			fprintf(stderr, "Usage: neonpoolctl [-c FILE] seed [--books N] [--chapters N] [--passages N]\n");
			return 1;
		}
	}
	if (no_more_args("seed", argc, argv) < 0 || load_conf(path, &conf) < 0)
		return 1;
	rc = ctl_db_seed(&conf, books, chapters, passages);
	conf_free(&conf);
	return rc;
}

static void import_usage(FILE *fp)
{
	fprintf(fp,
	        "Usage: neonpoolctl [-c FILE] import DIR [--slug SLUG] [--title TITLE] [--author AUTHOR] [--dry-run]\n"
	        "Load the HTML pages DIR/*.html as one book: one chapter per page, in the order of the\n"
	        "<link rel=\"next\"> chain from index.html (then unlinked pages by name), each page cut into\n"
	        "passages of %d-%d words at paragraph and section boundaries under their heading; navigation\n"
	        "chrome dropped, entities decoded, code blocks kept. One transaction: a page that cannot be\n"
	        "read or parsed (over %u bytes, invalid UTF-8, unterminated markup, no title) is named and\n"
	        "nothing is written. Unchanged chapters are left alone, so a second run changes nothing.\n\n"
	        "  --slug SLUG    the book's slug, a-z 0-9 '-' (default: made of the title)\n"
	        "  --title TITLE  the book's title (default: the first page's title)\n"
	        "  --author NAME  the book's author (default: none)\n"
	        "  --dry-run      parse and list the chapters; no database\n"
	        "Example: neonpoolctl import /usr/share/doc/postgresql-doc-15/html \\\n"
	        "           --slug postgresql-15-manual --title 'PostgreSQL 15 Documentation' \\\n"
	        "           --author 'The PostgreSQL Global Development Group'\n",
	        PASSAGE_MIN_WORDS, PASSAGE_MAX_WORDS, HTMLTEXT_MAX_BYTES);
}

static int cmd_import(const char *path, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "slug", required_argument, NULL, 's' },
		{ "title", required_argument, NULL, 't' },
		{ "author", required_argument, NULL, 'a' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char prog[] = "neonpoolctl import";
	const char *slug = NULL, *title = NULL, *author = NULL, *dir = NULL;
	bool dry_run = false;
	struct np_conf conf;
	int opt, rc;

	argv[0] = prog;
	optind = 0;
	/* no '+': DIR may come before or after the options */
	while ((opt = getopt_long(argc, argv, "s:t:a:nh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': slug = optarg; break;
		case 't': title = optarg; break;
		case 'a': author = optarg; break;
		case 'n': dry_run = true; break;
		case 'h': import_usage(stdout); return 0;
		default: import_usage(stderr); return 1;
		}
	}
	if (optind < argc)
		dir = argv[optind++];
	if (!dir) {
		fprintf(stderr, "neonpoolctl: import: missing DIR\n");
		import_usage(stderr);
		return 1;
	}
	if (no_more_args("import", argc, argv) < 0)
		return 1;
	if (dry_run)
		return ctl_import(NULL, dir, slug, title, author, true);
	if (load_conf(path, &conf) < 0)
		return 1;
	rc = ctl_import(&conf, dir, slug, title, author, false);
	conf_free(&conf);
	return rc;
}

static int cmd_check_db(const char *path, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "hosts", required_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	static char prog[] = "neonpoolctl check-db";
	bool json = false;
	struct np_conf conf;
	int opt, rc;
	int64_t hosts = 0;

	argv[0] = prog;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "+j", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j': json = true; break;
		case 'H':
			if (util_parse_i64(optarg, 1, 1000, &hosts) < 0) {
				fprintf(stderr, "neonpoolctl: check-db: --hosts: expected a number of hosts from 1 to 1000, got '%s'\n", optarg);
				return 1;
			}
			break;
		default: fprintf(stderr, "Usage: neonpoolctl [-c FILE] check-db [--json] [--hosts N]\n"); return 1;
		}
	}
	if (no_more_args("check-db", argc, argv) < 0 || load_conf(path, &conf) < 0)
		return 1;
	rc = ctl_db_check(&conf, json, (int)hosts);
	conf_free(&conf);
	return rc;
}

/* status [--json]: the pool's state, read out of band from the status file. */
static int cmd_status(const char *path, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "watch", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	struct np_conf conf;
	bool json = false;
	int64_t watch = 0;
	int opt, rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "+jw:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j': json = true; break;
		case 'w':
			if (util_parse_i64(optarg, 1, 3600, &watch) < 0) {
				fprintf(stderr, "neonpoolctl: status: --watch: expected seconds from 1 to 3600, got '%s'\n", optarg);
				return 1;
			}
			break;
		default: fprintf(stderr, "Usage: neonpoolctl [-c FILE] status [--json] [--watch N]\n"); return 1;
		}
	}
	if (json && watch) {
		fprintf(stderr, "neonpoolctl: status: --json and --watch do not go together\n");
		return 1;
	}
	if (no_more_args("status", argc, argv) < 0 || load_conf(path, &conf) < 0)
		return 1;
	rc = watch ? ctl_status_watch(&conf, (int)watch * 1000, 0, false) : ctl_status(&conf, json);
	conf_free(&conf);
	return rc;
}

/* top [-d S] [-n N]: the refreshing view. */
static int cmd_top(const char *path, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "delay", required_argument, NULL, 'd' },
		{ "iterations", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	static char prog[] = "neonpoolctl top";
	int64_t delay = 1, iterations = 0;
	struct np_conf conf;
	int opt, rc;

	argv[0] = prog;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "+d:n:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': rc = util_parse_i64(optarg, 1, 3600, &delay); break;
		case 'n': rc = util_parse_i64(optarg, 1, 1000000, &iterations); break;
		default: rc = -1; break;
		}
		if (rc < 0) {
			fprintf(stderr, "Usage: neonpoolctl [-c FILE] top [-d SECONDS 1..3600] [-n ITERATIONS]\n");
			return 1;
		}
	}
	if (no_more_args("top", argc, argv) < 0 || load_conf(path, &conf) < 0)
		return 1;
	rc = ctl_status_watch(&conf, (int)delay * 1000, (int)iterations, true);
	conf_free(&conf);
	return rc;
}

/* ping [DSN]: without DSN, the configuration's database with its password file. */
static int cmd_ping(const char *path, int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && argv[1][0] == '-' && argv[1][1] != '\0')) {
		fputs("Usage: neonpoolctl [-c FILE] ping [DSN]\n", stderr);
		return CTL_PING_EXIT_USAGE;
	}
	if (argc == 2)
		return ctl_ping(argv[1], NULL);
	struct np_conf conf;
	if (load_conf(path, &conf) < 0)
		return CTL_PING_EXIT_USAGE;
	if (!conf.database_url[0]) {
		fprintf(stderr, "neonpoolctl: ping: no database: give a DSN, or set database_url in %s or DATABASE_URL\n", path);
		conf_free(&conf);
		return CTL_PING_EXIT_USAGE;
	}
	char password[1024] = "";
	if (conf.database_password_file[0]) {
		struct np_conf_error cerr;
		if (conf_read_password(&conf, password, sizeof(password), &cerr) < 0) {
			char msg[1024];
			conf_error_format(&cerr, msg, sizeof(msg));
			fprintf(stderr, "neonpoolctl: ping: %s\n", msg);
			conf_free(&conf);
			return CTL_PING_EXIT_USAGE;
		}
	}
	int rc = ctl_ping(conf.database_url, password);
	explicit_bzero(password, sizeof(password));
	conf_free(&conf);
	return rc;
}

/* Where reload and stop find the master. The configuration is loaded in full when it is valid;
 * when it is not (the very file a reload is about to refuse), status_file and pid_file are read
 * from it as libconfig parses it, after printing why it is invalid. Returns 0, or -1 when
 * neither could be read. */
static int service_target(const char *path, struct np_conf *conf, bool *loaded, struct ctl_service_target *t,
                          char *status_buf, char *pid_buf, size_t buflen)
{
	*loaded = false;
	struct np_conf_error err;
	if (conf_load(conf, path, &err) == 0) {
		*loaded = true;
		t->status_file = conf->status_file;
		t->pid_file = conf->pid_file;
		return 0;
	}
	char msg[1024];
	conf_error_format(&err, msg, sizeof(msg));
	fprintf(stderr, "neonpoolctl: %s\n", msg);
	config_t cfg;
	config_init(&cfg);
	const char *v;
	int rc = -1;
	status_buf[0] = pid_buf[0] = '\0';
	if (config_read_file(&cfg, path)) {
		if (config_lookup_string(&cfg, "status_file", &v))
			snprintf(status_buf, buflen, "%s", v);
		if (config_lookup_string(&cfg, "pid_file", &v))
			snprintf(pid_buf, buflen, "%s", v);
		rc = status_buf[0] || pid_buf[0] ? 0 : -1;
	}
	config_destroy(&cfg);
	t->status_file = status_buf;
	t->pid_file = pid_buf;
	return rc;
}

/* reload [--timeout S], stop [--graceful] [--timeout S] and upgrade [--abort] [--timeout S]. */
static int cmd_service(const char *path, const char *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "graceful", no_argument, NULL, 'g' },
		{ "abort", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	static char prog_reload[] = "neonpoolctl reload", prog_stop[] = "neonpoolctl stop", prog_up[] = "neonpoolctl upgrade";
	bool stop = strcmp(cmd, "stop") == 0, upgrade = strcmp(cmd, "upgrade") == 0;
	const char *use = stop ? "Usage: neonpoolctl [-c FILE] stop [--graceful] [--timeout SECONDS]\n"
	                  : upgrade ? "Usage: neonpoolctl [-c FILE] upgrade [--abort] [--timeout SECONDS]\n"
	                            : "Usage: neonpoolctl [-c FILE] reload [--timeout SECONDS]\n";
	int64_t timeout_s = 0;
	bool graceful = false, abort_it = false;
	int opt;

	argv[0] = stop ? prog_stop : upgrade ? prog_up : prog_reload;
	optind = 0;
	while ((opt = getopt_long(argc, argv, stop ? "+t:g" : upgrade ? "+t:a" : "+t:", longopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (util_parse_i64(optarg, 1, 3600, &timeout_s) < 0) {
				fprintf(stderr, "neonpoolctl: --timeout: expected seconds from 1 to 3600, got '%s'\n", optarg);
				return 2;
			}
			break;
		case 'g':
			if (stop) {
				graceful = true;
				break;
			}
			fputs(use, stderr);
			return 2;
		case 'a':
			if (upgrade) {
				abort_it = true;
				break;
			}
			/* fall through */
		default: fputs(use, stderr); return 2;
		}
	}
	if (no_more_args(cmd, argc, argv) < 0)
		return 2;
	struct np_conf conf;
	struct ctl_service_target t;
	char status_buf[512], pid_buf[512];
	bool loaded;
	if (service_target(path, &conf, &loaded, &t, status_buf, pid_buf, sizeof(status_buf)) < 0) {
		fprintf(stderr, "neonpoolctl: cannot read status_file or pid_file from %s: nothing sent\n", path);
		return 2;
	}
	int64_t timeout_ms = timeout_s * 1000;
	if (!timeout_ms)
		timeout_ms = upgrade ? (loaded ? (int64_t)conf.upgrade_timeout_ms + conf.graceful_timeout_ms + 10000 : 100000)
		             : !stop ? 30000
		             : loaded ? (int64_t)conf.graceful_timeout_ms + conf.shutdown_timeout_ms + 5000 : 90000;
	int rc = stop ? ctl_service_stop(&t, graceful, (int)timeout_ms)
	         : upgrade ? ctl_service_upgrade(&t, abort_it, (int)timeout_ms) : ctl_service_reload(&t, (int)timeout_ms);
	if (loaded)
		conf_free(&conf);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NP_DEFAULT_CONFIG;
	int opt;
	while ((opt = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("neonpoolctl %s\n", NP_VERSION); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	const char *cmd = argv[optind];
	int cargc = argc - optind;
	char **cargv = argv + optind;
	if (strcmp(cmd, "help") == 0) {
		if (cargc > 1 && (strcmp(cargv[1], "--help") == 0 || strcmp(cargv[1], "-h") == 0))
			return cmd_usage("help", stdout) ? 0 : 1;
		if (cargc > 1 && !cmd_usage(cargv[1], stdout)) {
			fprintf(stderr, "neonpoolctl: unknown command '%s'\n", cargv[1]);
			return 1;
		}
		if (cargc <= 1)
			usage(stdout);
		return 0;
	}
	if (wants_help(cargc, cargv) && cmd_usage(cmd, stdout))
		return 0;
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check_config(path);
	if (strcmp(cmd, "migrate") == 0)
		return cmd_migrate(path, cargc, cargv);
	if (strcmp(cmd, "seed") == 0)
		return cmd_seed(path, cargc, cargv);
	if (strcmp(cmd, "import") == 0)
		return cmd_import(path, cargc, cargv);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(path, cargc, cargv);
	if (strcmp(cmd, "check-db") == 0)
		return cmd_check_db(path, cargc, cargv);
	if (strcmp(cmd, "top") == 0)
		return cmd_top(path, cargc, cargv);
	if (strcmp(cmd, "ping") == 0)
		return cmd_ping(path, cargc, cargv);
	if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "stop") == 0 || strcmp(cmd, "upgrade") == 0)
		return cmd_service(path, cmd, cargc, cargv);
	fprintf(stderr, "neonpoolctl: unknown command '%s'\n", cmd);
	usage(stderr);
	return 1;
}
