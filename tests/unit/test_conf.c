/* SPDX-License-Identifier: PostgreSQL */
/* test_conf.c - unit tests of the configuration loader (src/conf.c) against real temporary files. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* getline, strdup, explicit_bzero, asprintf: -std=c11 hides them */
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

#define SECRET "s3cretpw"

/* Write text to a new temporary file; returns its malloc'd path. */
static char *write_tmp(const char *text)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	int fd;
	size_t len = strlen(text);

	if (!dir || !*dir)
		dir = "/tmp";
	assert_true(asprintf(&path, "%s/test_conf.XXXXXX", dir) > 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return path;
}

static void drop_tmp(char *path)
{
	unlink(path);
	free(path);
}

/* Load text as a config file; returns conf_load's result (c is loaded on 0). */
static int load_text(const char *text, struct np_conf *c, struct np_conf_error *err)
{
	char *path = write_tmp(text);
	int rc = conf_load(c, path, err);

	drop_tmp(path);
	return rc;
}

/* Expect text to fail to load with message containing want, on line (if > 0) and key (if non-NULL). */
static void expect_error(const char *text, int line, const char *key, const char *want)
{
	struct np_conf c;
	struct np_conf_error err;

	assert_int_equal(load_text(text, &c, &err), -1);
	if (!strstr(err.message, want))
		fail_msg("'%s': message '%s' lacks '%s'", text, err.message, want);
	if (line > 0)
		assert_int_equal(err.line, line);
	if (key)
		assert_string_equal(err.key, key);
	assert_non_null(strstr(err.file, "test_conf."));
}

static void test_defaults(void **state)
{
	struct np_conf c;

	assert_int_equal(conf_defaults(&c), 0);
	assert_int_equal(c.workers, 4);
	assert_string_equal(c.user, "");
	assert_string_equal(c.group, "");
	assert_string_equal(c.pid_file, "");
	assert_false(c.daemonize);
	assert_string_equal(c.log_file, "");
	assert_int_equal(c.log_level, NP_LOG_INFO);
	assert_int_equal(c.shutdown_timeout_ms, 10000);
	assert_int_equal(c.respawn_backoff_max_ms, 5000);
	assert_int_equal(c.respawn_stable_ms, 1000);
	assert_string_equal(c.listen, "127.0.0.1:9000");
	assert_int_equal(c.listen_backlog, 4096);
	assert_int_equal(c.listen_mode, 0660);
	assert_string_equal(c.listen_owner, "");
	assert_string_equal(c.listen_group, "");
	assert_int_equal(c.max_body_bytes, 1048576);
	assert_string_equal(c.status_file, "");
	assert_string_equal(c.database_url, "");
	assert_string_equal(c.database_password_file, "");
	assert_string_equal(c.file, "");
	conf_free(&c);
	conf_free(&c);          /* idempotent */
}

static void test_valid_file(void **state)
{
	struct np_conf c;
	struct np_conf_error err;
	char *pw = write_tmp("x\n");
	char *text;

	unsetenv("DATABASE_URL");
	assert_true(asprintf(&text,
		"# a comment\n"
		"workers = 16;\n"
		"user = \"www-data\";\n"
		"daemonize = true;\n"
		"log_level = \"debug\";\n"
		"shutdown_timeout_ms = 0;\n"
		"listen = \"unix:/run/neonpool.sock\";\n"
		"listen_mode = 0600;\n"
		"listen_backlog = 65535;\n"
		"max_body_bytes = 67108864;\n"
		"database_url = \"host=db user=app dbname=app\";\n"
		"database_password_file = \"%s\";\n", pw) > 0);
	assert_int_equal(load_text(text, &c, &err), 0);
	assert_int_equal(c.workers, 16);
	assert_string_equal(c.user, "www-data");
	assert_true(c.daemonize);
	assert_int_equal(c.log_level, NP_LOG_DEBUG);
	assert_int_equal(c.shutdown_timeout_ms, 0);
	assert_string_equal(c.listen, "unix:/run/neonpool.sock");
	assert_int_equal(c.listen_mode, 0600);
	assert_int_equal(c.listen_backlog, 65535);
	assert_int_equal(c.max_body_bytes, 67108864);
	assert_string_equal(c.database_url, "host=db user=app dbname=app");
	assert_string_equal(c.database_password_file, pw);
	assert_int_equal(c.respawn_backoff_max_ms, 5000); /* untouched keys keep their default */
	assert_non_null(strstr(c.file, "test_conf."));
	conf_free(&c);
	free(text);
	drop_tmp(pw);
}

static void test_empty_file_gives_defaults(void **state)
{
	struct np_conf c;
	struct np_conf_error err;

	unsetenv("DATABASE_URL");
	assert_int_equal(load_text("", &c, &err), 0);
	assert_int_equal(c.workers, 4);
	assert_string_equal(c.listen, "127.0.0.1:9000");
	conf_free(&c);
}

static void test_missing_file(void **state)
{
	struct np_conf c;
	struct np_conf_error err;
	char buf[600];

	assert_int_equal(conf_load(&c, "/nonexistent/neonpool.conf", &err), -1);
	assert_string_equal(err.file, "/nonexistent/neonpool.conf");
	assert_int_equal(err.line, 0);
	assert_non_null(strstr(err.message, "No such file or directory"));
	conf_error_format(&err, buf, sizeof(buf));
	assert_string_equal(buf, "/nonexistent/neonpool.conf: cannot open: No such file or directory");
}

static void test_unknown_key(void **state)
{
	expect_error("workers = 4;\n\nwrokers = 5;\n", 3, "wrokers", "unknown key");
	expect_error("wrokers = 5;\n", 1, "wrokers", "did you mean 'workers'?");
	expect_error("log_levle = \"info\";\n", 1, "log_levle", "did you mean 'log_level'?");
	expect_error("completely_different = 1;\n", 1, "completely_different", "unknown key");
	/* a group is not a way around the key table */
	expect_error("database = { url = \"x\"; };\n", 1, "database", "unknown key");
}

static void test_unknown_key_has_no_far_hint(void **state)
{
	struct np_conf c;
	struct np_conf_error err;

	assert_int_equal(load_text("zzzzzz = 1;\n", &c, &err), -1);
	assert_string_equal(err.message, "unknown key");
}

static void test_wrong_type(void **state)
{
	expect_error("workers = \"4\";\n", 1, "workers", "expected an integer");
	expect_error("workers = 4.0;\n", 1, "workers", "expected an integer");
	expect_error("workers = true;\n", 1, "workers", "expected an integer");
	expect_error("\ndaemonize = 1;\n", 2, "daemonize", "expected true or false");
	expect_error("daemonize = \"yes\";\n", 1, "daemonize", "expected true or false");
	expect_error("listen = 9000;\n", 1, "listen", "expected a string");
	expect_error("log_level = 2;\n", 1, "log_level", "expected a string");
	expect_error("workers = [1, 2];\n", 1, "workers", "not an array");
	expect_error("listen = (\"a\", \"b\");\n", 1, "listen", "not a list");
	expect_error("user = { name = \"x\"; };\n", 1, "user", "not a group");
}

static void test_out_of_range(void **state)
{
	struct np_conf c;
	struct np_conf_error err;

	expect_error("workers = 0;\n", 1, "workers", "value 0 out of range (1..256)");
	expect_error("workers = 9999;\n", 1, "workers", "value 9999 out of range (1..256)");
	expect_error("workers = -1;\n", 1, "workers", "out of range");
	expect_error("workers = 5000000000L;\n", 1, "workers", "value 5000000000 out of range");
	expect_error("max_body_bytes = 67108865;\n", 1, "max_body_bytes", "out of range (0..67108864)");
	expect_error("listen_backlog = 15;\n", 1, "listen_backlog", "out of range (16..65535)");
	expect_error("respawn_backoff_max_ms = 600001;\n", 1, "respawn_backoff_max_ms", "out of range");
	/* a removed key names what replaced it */
	expect_error("workers = 2;\ncrash_max = 10;\n", 2, "crash_max", "backs off (respawn_backoff_max_ms)");
	/* the bounds themselves are accepted */
	unsetenv("DATABASE_URL");
	assert_int_equal(load_text("workers = 256;\nrespawn_backoff_max_ms = 0;\n", &c, &err), 0);
	assert_int_equal(c.workers, 256);
	conf_free(&c);
}

static void test_invalid_enum(void **state)
{
	expect_error("log_level = \"verbose\";\n", 1, "log_level",
		     "invalid value 'verbose' (allowed: error, warn, info, debug)");
	expect_error("log_level = \"INFO\";\n", 1, "log_level", "invalid value 'INFO'");
}

static void test_syntax_error(void **state)
{
	struct np_conf c;
	struct np_conf_error err;
	char buf[600];

	assert_int_equal(load_text("workers = 4;\n\nlisten = ;\n", &c, &err), -1);
	assert_int_equal(err.line, 3);
	assert_string_equal(err.key, "");
	assert_true(strlen(err.message) > 0);
	conf_error_format(&err, buf, sizeof(buf));
	assert_non_null(strstr(buf, ":3: "));
	assert_null(strstr(buf, "key '"));
}

static void test_duplicate_key(void **state)
{
	struct np_conf c;
	struct np_conf_error err;

	assert_int_equal(load_text("workers = 4;\nworkers = 5;\n", &c, &err), -1);
	assert_int_equal(err.line, 2);
	assert_non_null(strstr(err.message, "duplicate"));
}

static void test_listen_forms(void **state)
{
	static const char *const good[] = {
		"stdin", "unix:/run/np.sock", "/run/np.sock", "127.0.0.1:9000", "localhost:65535",
		"[::1]:9000", "[::]:1", "db-1.example.com:9000",
	};
	static const char *const bad[] = {
		"", "9000", ":9000", "localhost", "localhost:", "host:0", "host:65536", "host:90a",
		"::1:9000", "[::1]", "[::1]9000", "[]:9000", "[nothex]:9000", "unix:relative.sock",
		"relative/np.sock", "unix:", "ho st:9000", "stdout",
	};
	char long_path[160], text[256];
	struct np_conf c;
	struct np_conf_error err;

	unsetenv("DATABASE_URL");
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "listen = \"%s\";\n", good[i]);
		if (load_text(text, &c, &err) != 0)
			fail_msg("listen '%s' rejected: %s", good[i], err.message);
		assert_string_equal(c.listen, good[i]);
		conf_free(&c);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "\nlisten = \"%s\";\n", bad[i]);
		if (load_text(text, &c, &err) != -1)
			fail_msg("listen '%s' accepted", bad[i]);
		assert_string_equal(err.key, "listen");
		assert_int_equal(err.line, 2);
	}
	/* sun_path is 108 bytes: 107 characters fit, 108 do not */
	memset(long_path, 'a', sizeof(long_path));
	long_path[0] = '/';
	long_path[107] = '\0';
	snprintf(text, sizeof(text), "listen = \"%s\";\n", long_path);
	assert_int_equal(load_text(text, &c, &err), 0);
	conf_free(&c);
	long_path[107] = 'a';
	long_path[108] = '\0';
	snprintf(text, sizeof(text), "listen = \"%s\";\n", long_path);
	expect_error(text, 1, "listen", "longer than 107 bytes");
}

/* ask_listen: an ask worker runs its transactions as an internal request to listen, so listen
 * must be a socket it can connect to (not the inherited stdin), and on TCP the address it comes
 * from must be in listen_allowed_clients (loopback for a wildcard or loopback listen, the address
 * itself for a specific one). Either mistake made every ask answer 5xx at run time. */
static void test_ask_listen_reaches_listen(void **state)
{
	static const char *const good[] = {
		"listen = \"/run/np.sock\";\nask_listen = \"/run/ask.sock\";\n",
		"listen = \"127.0.0.1:9000\";\nask_listen = \"/run/ask.sock\";\n",
		"listen = \"0.0.0.0:9000\";\nlisten_allowed_clients = \"127.0.0.1\";\nask_listen = \"/run/ask.sock\";\n",
		"listen = \"[::]:9000\";\nlisten_allowed_clients = \"::1\";\nask_listen = \"/run/ask.sock\";\n",
		"listen = \"[::1]:9000\";\nlisten_allowed_clients = \"10.0.0.0/8, ::1\";\nask_listen = \"/run/ask.sock\";\n",
		"listen = \"10.1.2.3:9000\";\nlisten_allowed_clients = \"10.0.0.0/8\";\nask_listen = \"/run/ask.sock\";\n",
		"listen = \"stdin\";\nlisten_allowed_clients = \"10.0.0.0/8\";\n", /* no ask pool: nothing to reach */
		"listen = \"127.0.0.1:9000\";\nlisten_allowed_clients = \"10.0.0.0/8\";\n",
	};
	struct np_conf c;
	struct np_conf_error err;

	unsetenv("DATABASE_URL");
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (load_text(good[i], &c, &err) != 0)
			fail_msg("'%s' rejected: %s", good[i], err.message);
		conf_free(&c);
	}
	expect_error("listen = \"stdin\";\n\nask_listen = \"/run/ask.sock\";\n", 3, "ask_listen",
	             "listen = \"stdin\"");
	expect_error("listen = \"127.0.0.1:9000\";\nask_listen = \"/run/ask.sock\";\nlisten_allowed_clients = \"10.0.0.0/8\";\n",
	             3, "listen_allowed_clients", "127.0.0.1");
	expect_error("listen = \"0.0.0.0:9000\";\nlisten_allowed_clients = \"192.168.0.0/16\";\nask_listen = \"/run/ask.sock\";\n",
	             2, "listen_allowed_clients", "127.0.0.1");
	expect_error("listen = \"[::]:9000\";\nlisten_allowed_clients = \"127.0.0.1\";\nask_listen = \"/run/ask.sock\";\n",
	             2, "listen_allowed_clients", "::1");
	expect_error("listen = \"10.1.2.3:9000\";\nask_listen = \"/run/ask.sock\";\n", 0, "listen_allowed_clients",
	             "10.1.2.3");
}

static void test_listen_mode(void **state)
{
	struct np_conf c;
	struct np_conf_error err;

	unsetenv("DATABASE_URL");
	assert_int_equal(load_text("listen_mode = 0640;\n", &c, &err), 0);
	assert_int_equal(c.listen_mode, 0640);
	conf_free(&c);
	assert_int_equal(load_text("listen_mode = 600;\n", &c, &err), 0);
	assert_int_equal(c.listen_mode, 0600);
	conf_free(&c);
	assert_int_equal(load_text("listen_mode = \"0666\";\n", &c, &err), 0);
	assert_int_equal(c.listen_mode, 0666);
	conf_free(&c);
	assert_int_equal(load_text("listen_mode = 0x1A4;\n", &c, &err), 0);
	assert_int_equal(c.listen_mode, 0644);
	conf_free(&c);
	assert_int_equal(load_text("listen_mode = 0;\n", &c, &err), 0);
	assert_int_equal(c.listen_mode, 0);
	conf_free(&c);
	expect_error("listen_mode = 0680;\n", 1, "listen_mode", "octal");
	expect_error("listen_mode = \"rw-rw----\";\n", 1, "listen_mode", "octal");
	expect_error("listen_mode = \"\";\n", 1, "listen_mode", "octal");
	expect_error("listen_mode = 01777;\n", 1, "listen_mode", "value 01777 out of range (0..0777)");
	expect_error("listen_mode = true;\n", 1, "listen_mode", "expected an integer");
}

static void test_database_url_from_env(void **state)
{
	struct np_conf c;
	struct np_conf_error err;

	setenv("DATABASE_URL", "postgresql://env@envhost/envdb", 1);
	assert_int_equal(load_text("workers = 2;\n", &c, &err), 0);
	assert_string_equal(c.database_url, "postgresql://env@envhost/envdb");
	conf_free(&c);
	/* an explicit empty key still falls back to the environment */
	assert_int_equal(load_text("database_url = \"\";\n", &c, &err), 0);
	assert_string_equal(c.database_url, "postgresql://env@envhost/envdb");
	conf_free(&c);
	unsetenv("DATABASE_URL");
	assert_int_equal(load_text("workers = 2;\n", &c, &err), 0);
	assert_string_equal(c.database_url, "");
	conf_free(&c);
}

static void test_database_url_key_wins(void **state)
{
	struct np_conf c;
	struct np_conf_error err;

	setenv("DATABASE_URL", "postgresql://env@envhost/envdb", 1);
	assert_int_equal(load_text("database_url = \"host=filehost dbname=filedb\";\n", &c, &err), 0);
	assert_string_equal(c.database_url, "host=filehost dbname=filedb");
	conf_free(&c);
	unsetenv("DATABASE_URL");
}

static void expect_secret_free_error(const char *url)
{
	struct np_conf c;
	struct np_conf_error err;
	char text[512], buf[1024];

	unsetenv("DATABASE_URL");
	snprintf(text, sizeof(text), "workers = 2;\ndatabase_url = \"%s\";\n", url);
	assert_int_equal(load_text(text, &c, &err), -1);
	assert_string_equal(err.key, "database_url");
	assert_int_equal(err.line, 2);
	conf_error_format(&err, buf, sizeof(buf));
	if (!strstr(buf, "not a valid libpq connection string"))
		fail_msg("unexpected error: %s", buf);
	if (strstr(buf, SECRET))
		fail_msg("error leaks the password: %s", buf);

	/* the same through the environment */
	setenv("DATABASE_URL", url, 1);
	assert_int_equal(load_text("workers = 2;\n", &c, &err), -1);
	unsetenv("DATABASE_URL");
	conf_error_format(&err, buf, sizeof(buf));
	assert_non_null(strstr(buf, "DATABASE_URL"));
	if (strstr(buf, SECRET))
		fail_msg("error leaks the password: %s", buf);
}

static void test_invalid_database_url_hides_password(void **state)
{
	expect_secret_free_error("postgresql://u:" SECRET "@h:notaport/db");
	expect_secret_free_error("postgresql://u:" SECRET "%zz@h/db");
	expect_secret_free_error("postgresql://u:" SECRET "@h/db?bogus_option=" SECRET);
	expect_secret_free_error("host=h password=" SECRET " garbage" SECRET);
	expect_secret_free_error("host=h port=99999 password=" SECRET);
}

static void test_valid_database_urls(void **state)
{
	static const char *const good[] = {
		"postgresql://u:pw@h:5432/db", "postgres://h1:5432,h2:5433/db?sslmode=require",
		"host=/run/postgresql dbname=app", "host=a,b port=,5433", "dbname=app",
	};
	struct np_conf c;
	struct np_conf_error err;
	char text[256];

	unsetenv("DATABASE_URL");
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "database_url = \"%s\";\n", good[i]);
		if (load_text(text, &c, &err) != 0)
			fail_msg("'%s' rejected: %s", good[i], err.message);
		conf_free(&c);
	}
}

static void test_password_file_checked(void **state)
{
	struct np_conf c;
	struct np_conf_error err;

	unsetenv("DATABASE_URL");
	expect_error("database_password_file = \"/nonexistent/pw\";\n", 1, "database_password_file",
		     "No such file or directory");
	expect_error("database_password_file = \"/\";\n", 1, "database_password_file", "is a directory");
	assert_int_equal(load_text("database_password_file = \"\";\n", &c, &err), 0);
	conf_free(&c);
}

static void test_redact(void **state)
{
	char out[512];

	conf_redact_conninfo("postgresql://alice:" SECRET "@db.example.com:5433/shop?sslmode=require",
			     out, sizeof(out));
	assert_null(strstr(out, SECRET));
	assert_non_null(strstr(out, "password=********"));
	assert_non_null(strstr(out, "user=alice"));
	assert_non_null(strstr(out, "host=db.example.com"));
	assert_non_null(strstr(out, "port=5433"));
	assert_non_null(strstr(out, "dbname=shop"));
	assert_non_null(strstr(out, "sslmode=require"));

	conf_redact_conninfo("host=db user=bob password='" SECRET " x' dbname='my db'", out, sizeof(out));
	assert_null(strstr(out, SECRET));
	assert_non_null(strstr(out, "password=********"));
	assert_non_null(strstr(out, "host=db"));
	assert_non_null(strstr(out, "user=bob"));
	assert_non_null(strstr(out, "dbname='my db'"));

	conf_redact_conninfo("host=db dbname='it\\'s'", out, sizeof(out));
	assert_string_equal(out, "dbname='it\\'s' host=db");

	conf_redact_conninfo("host=h password=" SECRET " garbage", out, sizeof(out));
	assert_string_equal(out, "(invalid connection string)");

	conf_redact_conninfo("", out, sizeof(out));
	assert_string_equal(out, "");

	conf_redact_conninfo("host=averyveryverylonghostname password=" SECRET, out, 10);
	assert_int_equal(strlen(out), 9);
}

static void test_read_password(void **state)
{
	struct np_conf c;
	struct np_conf_error err;
	char buf[64], msg[600];
	char *pw = write_tmp(SECRET "\r\nsecond line\n");
	char *empty = write_tmp("\n" SECRET "\n");

	assert_int_equal(conf_defaults(&c), 0);
	assert_int_equal(conf_read_password(&c, buf, sizeof(buf), &err), -1);  /* not set */

	free(c.database_password_file);
	c.database_password_file = strdup(pw);
	assert_int_equal(conf_read_password(&c, buf, sizeof(buf), &err), 0);
	assert_string_equal(buf, SECRET);

	assert_int_equal(conf_read_password(&c, buf, strlen(SECRET), &err), -1);  /* no room for NUL */
	conf_error_format(&err, msg, sizeof(msg));
	assert_non_null(strstr(msg, "longer than"));
	assert_null(strstr(msg, SECRET));
	assert_null(strstr(buf, SECRET));
	assert_int_equal(conf_read_password(&c, buf, strlen(SECRET) + 1, &err), 0);

	free(c.database_password_file);
	c.database_password_file = strdup(empty);
	assert_int_equal(conf_read_password(&c, buf, sizeof(buf), &err), -1);
	assert_non_null(strstr(err.message, "empty"));
	assert_null(strstr(err.message, SECRET));

	free(c.database_password_file);
	c.database_password_file = strdup("/nonexistent/pw");
	assert_int_equal(conf_read_password(&c, buf, sizeof(buf), &err), -1);
	assert_non_null(strstr(err.message, "No such file"));

	conf_free(&c);
	drop_tmp(pw);
	drop_tmp(empty);
}

static void test_diff_restart_only(void **state)
{
	struct np_conf a, b;
	struct np_conf_error err;
	char buf[256];

	unsetenv("DATABASE_URL");
	assert_int_equal(load_text("workers = 4;\nlisten = \"127.0.0.1:9000\";\n", &a, &err), 0);
	assert_int_equal(load_text("workers = 8;\nlisten = \"127.0.0.1:9000\";\nlog_level = \"debug\";\n",
				   &b, &err), 0);
	assert_int_equal(conf_diff_restart_only(&a, &b, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	conf_free(&b);

	assert_int_equal(load_text("workers = 8;\nlisten = \"127.0.0.1:9001\";\n", &b, &err), 0);
	assert_int_equal(conf_diff_restart_only(&a, &b, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "listen");
	conf_free(&b);

	assert_int_equal(load_text("listen = \"/run/x.sock\";\ndaemonize = true;\nlisten_mode = 0600;\n",
				   &b, &err), 0);
	assert_int_equal(conf_diff_restart_only(&a, &b, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "daemonize, listen, listen_mode");
	conf_free(&b);
	conf_free(&a);
}

static void test_key_table(void **state)
{
	size_t n = 0;
	bool seen_workers = false, seen_listen = false;

	for (; conf_key_name(n); n++) {
		const char *k = conf_key_name(n);
		int r = conf_key_reloadable(k);
		assert_true(r == 0 || r == 1);
		for (size_t j = 0; j < n; j++)
			assert_string_not_equal(conf_key_name(j), k);
		seen_workers |= strcmp(k, "workers") == 0;
		seen_listen |= strcmp(k, "listen") == 0;
	}
	assert_true(n >= 46);
	assert_int_equal(conf_key_reloadable("budget"), 1);
	assert_int_equal(conf_key_reloadable("pooler_mode"), 0);
	assert_null(conf_key_name(n));
	assert_null(conf_key_name((size_t)-1));
	assert_true(seen_workers && seen_listen);
	assert_int_equal(conf_key_reloadable("workers"), 1);
	assert_int_equal(conf_key_reloadable("listen"), 0);
	assert_int_equal(conf_key_reloadable("database_url"), 1);
	assert_int_equal(conf_key_reloadable("no_such_key"), -1);
	assert_int_equal(conf_key_reloadable(NULL), -1);
}

static void test_error_format(void **state)
{
	struct np_conf_error err;
	char buf[700];

	memset(&err, 0, sizeof(err));
	snprintf(err.file, sizeof(err.file), "/etc/np.conf");
	err.line = 7;
	snprintf(err.key, sizeof(err.key), "workers");
	snprintf(err.message, sizeof(err.message), "expected an integer");
	conf_error_format(&err, buf, sizeof(buf));
	assert_string_equal(buf, "/etc/np.conf:7: key 'workers': expected an integer");
	err.line = 0;
	conf_error_format(&err, buf, sizeof(buf));
	assert_string_equal(buf, "/etc/np.conf: key 'workers': expected an integer");
	err.file[0] = '\0';
	conf_error_format(&err, buf, sizeof(buf));
	assert_string_equal(buf, "key 'workers': expected an integer");
	err.key[0] = '\0';
	conf_error_format(&err, buf, sizeof(buf));
	assert_string_equal(buf, "expected an integer");
	conf_error_format(&err, buf, 9);
	assert_string_equal(buf, "expected");
}

static void test_dump(void **state)
{
	struct np_conf c;
	struct np_conf_error err;
	char *out = NULL;
	size_t len = 0;
	FILE *fp;

	unsetenv("DATABASE_URL");
	assert_int_equal(load_text("database_url = \"postgresql://u:" SECRET "@h/db\";\n"
				   "user = \"we\\\"ird\";\nlisten_mode = 0600;\n", &c, &err), 0);
	fp = open_memstream(&out, &len);
	assert_non_null(fp);
	conf_dump(&c, fp);
	assert_int_equal(fclose(fp), 0);
	assert_null(strstr(out, SECRET));
	assert_non_null(strstr(out, "workers = 4\n"));
	assert_non_null(strstr(out, "daemonize = false\n"));
	assert_non_null(strstr(out, "log_level = \"info\"\n"));
	assert_non_null(strstr(out, "listen = \"127.0.0.1:9000\"\n"));
	assert_non_null(strstr(out, "listen_mode = 0600\n"));
	assert_non_null(strstr(out, "user = \"we\\\"ird\"\n"));
	assert_non_null(strstr(out, "password=********"));
	assert_non_null(strstr(out, "host=h"));
	assert_true(strncmp(out, "workers = ", 10) == 0);   /* table order */
	for (size_t i = 0; conf_key_name(i); i++) {
		char line[80];
		snprintf(line, sizeof(line), "%s = ", conf_key_name(i));
		assert_non_null(strstr(out, line));
	}
	free(out);
	conf_free(&c);
}

static void test_log_level_name(void **state)
{
	assert_string_equal(conf_log_level_name(NP_LOG_ERROR), "error");
	assert_string_equal(conf_log_level_name(NP_LOG_WARN), "warn");
	assert_string_equal(conf_log_level_name(NP_LOG_INFO), "info");
	assert_string_equal(conf_log_level_name(NP_LOG_DEBUG), "debug");
	assert_string_equal(conf_log_level_name(4), "unknown");
	assert_string_equal(conf_log_level_name(-1), "unknown");
}

/* libconfig 1.5 calls exit(2) ("input in flex scanner failed") when an @include names a directory, and
 * blocks on a FIFO: a SIGHUP reload with such a line ended the master (reproduced by fuzz_conf, whose
 * corpus keeps the input). The file is one flat table, so @include is refused with its line, before
 * libconfig reads anything. */
static void test_include_refused_not_exit(void **state)
{
	expect_error("workers = 2;\n@include \"/tmp\"\n", 2, "", "@include is not supported");
	expect_error("# comment\n \t@include\t\"/\"\n", 2, "", "@include is not supported");
	expect_error("@include \"/etc/hostname\"\n", 1, "", "@include is not supported");
	/* not an include: the text of a string, and a syntax error libconfig reports itself */
	struct np_conf c;
	struct np_conf_error err;
	assert_int_equal(load_text("user = \"@include\";\n", &c, &err), 0);
	conf_free(&c);
	expect_error("workers = 1; @include \"/\"\n", 1, "", "syntax error");
}

/* A directory given as the configuration file: its reason, not libconfig's "file I/O error". */
static void test_directory_as_file(void **state)
{
	struct np_conf c;
	struct np_conf_error err;

	assert_int_equal(conf_load(&c, "/", &err), -1);
	assert_string_equal(err.file, "/");
	if (!strstr(err.message, "Is a directory"))
		fail_msg("message '%s' lacks 'Is a directory'", err.message);
}

static void test_sample_config_loads(void **state)
{
	const char *top = getenv("top_srcdir");
	struct np_conf c, d;
	struct np_conf_error err;
	char path[512], buf[256];

	snprintf(path, sizeof(path), "%s/etc/neonpool.conf.sample", top && *top ? top : ".");
	if (access(path, R_OK) != 0)
		skip();
	unsetenv("DATABASE_URL");
	if (conf_load(&c, path, &err) != 0)
		fail_msg("%s:%d: %s", err.file, err.line, err.message);
	assert_int_equal(conf_defaults(&d), 0);
	assert_int_equal(conf_diff_restart_only(&c, &d, buf, sizeof(buf)), 0);
	assert_int_equal(c.workers, d.workers);
	conf_free(&c);
	conf_free(&d);
}

/* ask_rate_per_session's syntax: invalid inputs first, then the units. */
static void test_rate_parse(void **state)
{
	(void)state;
	int c, w;
	char msg[200];
	const char *bad[] = { "5", "x/min", "-1/min", "0/min", "5/", "5/fortnight", "5 /min", "5/min ", "99999999999/s",
		              "/min", "1000001/s" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(conf_rate_parse(bad[i], &c, &w, msg, sizeof(msg)), -1);
	assert_int_equal(conf_rate_parse("", &c, &w, msg, sizeof(msg)), 0);
	assert_int_equal(c, 0);
	assert_int_equal(conf_rate_parse("0", &c, &w, msg, sizeof(msg)), 0);
	assert_int_equal(c, 0);
	assert_int_equal(conf_rate_parse("5/min", &c, &w, msg, sizeof(msg)), 0);
	assert_true(c == 5 && w == 60);
	assert_int_equal(conf_rate_parse("2/s", &c, &w, msg, sizeof(msg)), 0);
	assert_true(c == 2 && w == 1);
	assert_int_equal(conf_rate_parse("100/hour", &c, &w, msg, sizeof(msg)), 0);
	assert_true(c == 100 && w == 3600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_rate_parse),
		cmocka_unit_test(test_valid_file),
		cmocka_unit_test(test_empty_file_gives_defaults),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_unknown_key_has_no_far_hint),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_invalid_enum),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_listen_forms), cmocka_unit_test(test_ask_listen_reaches_listen),
		cmocka_unit_test(test_listen_mode),
		cmocka_unit_test(test_database_url_from_env),
		cmocka_unit_test(test_database_url_key_wins),
		cmocka_unit_test(test_invalid_database_url_hides_password),
		cmocka_unit_test(test_valid_database_urls),
		cmocka_unit_test(test_password_file_checked),
		cmocka_unit_test(test_redact),
		cmocka_unit_test(test_read_password),
		cmocka_unit_test(test_diff_restart_only),
		cmocka_unit_test(test_key_table),
		cmocka_unit_test(test_error_format),
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_log_level_name),
		cmocka_unit_test(test_sample_config_loads),
		cmocka_unit_test(test_include_refused_not_exit),
		cmocka_unit_test(test_directory_as_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
