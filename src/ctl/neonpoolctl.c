/* neonpoolctl.c - the command-line tool: configuration check, database commands and the pool's status. */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "ctl_status.h"
#include "ctl_db.h"
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
	        "  migrate [--dir DIR] apply the SQL migrations NNN_name.sql of DIR in order, each in one\n"
	        "                      transaction under an advisory lock (default DIR %s)\n"
	        "  seed [--books N] [--chapters N] [--passages N]\n"
	        "                      insert deterministic sample textbooks sample-book-NNN; running it\n"
	        "                      again adds nothing (defaults %d, %d, %d)\n"
	        "  import DIR [--slug S] [--title T] [--author A] [--dry-run]\n"
	        "                      load DIR's HTML pages as one book (slug S, default made of the\n"
	        "                      title; title T, default the first page's): one chapter per page in\n"
	        "                      the order of index.html's \"next\" links, passages of %d-%d words;\n"
	        "                      one transaction; running it again changes nothing; --dry-run\n"
	        "                      parses and lists the chapters without touching the database\n"
	        "  check-db [--json]   test the database: connect time, version, TLS, round trips,\n"
	        "                      connection limits and use, migrations; exit 1 when unhealthy\n"
	        "  status [--json]     the running pool from status_file: workers, budget tokens,\n"
	        "                      breaker, health; answers even when every worker is busy\n\n"
	        "The database is database_url (or DATABASE_URL) with database_password_file.\n",
	        NP_DEFAULT_CONFIG, NP_SQLDIR, CTL_DB_SEED_BOOKS, CTL_DB_SEED_CHAPTERS, CTL_DB_SEED_PASSAGES,
	        PASSAGE_MIN_WORDS, PASSAGE_MAX_WORDS);
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
		{ NULL, 0, NULL, 0 },
	};
	static char prog[] = "neonpoolctl migrate";   /* getopt's messages start with argv[0] */
	const char *dir = NP_SQLDIR;
	struct np_conf conf;
	int opt, rc;

	argv[0] = prog;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "+d:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		default: fprintf(stderr, "Usage: neonpoolctl [-c FILE] migrate [--dir DIR]\n"); return 1;
		}
	}
	if (no_more_args("migrate", argc, argv) < 0 || load_conf(path, &conf) < 0)
		return 1;
	rc = ctl_db_migrate(&conf, dir);
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
		{ NULL, 0, NULL, 0 },
	};
	static char prog[] = "neonpoolctl check-db";
	bool json = false;
	struct np_conf conf;
	int opt, rc;

	argv[0] = prog;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "+j", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j': json = true; break;
		default: fprintf(stderr, "Usage: neonpoolctl [-c FILE] check-db [--json]\n"); return 1;
		}
	}
	if (no_more_args("check-db", argc, argv) < 0 || load_conf(path, &conf) < 0)
		return 1;
	rc = ctl_db_check(&conf, json);
	conf_free(&conf);
	return rc;
}

/* status [--json]: the pool's state, read out of band from the status file. */
static int cmd_status(const char *path, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct np_conf conf;
	bool json = false;
	int opt, rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "+j", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j': json = true; break;
		default: fprintf(stderr, "Usage: neonpoolctl [-c FILE] status [--json]\n"); return 1;
		}
	}
	if (no_more_args("status", argc, argv) < 0 || load_conf(path, &conf) < 0)
		return 1;
	rc = ctl_status(&conf, json);
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
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "neonpoolctl: unknown command '%s'\n", cmd);
	usage(stderr);
	return 1;
}
