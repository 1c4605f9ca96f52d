/* SPDX-License-Identifier: PostgreSQL */
/* fuzz_conf.c - the configuration file: conf_load on the input, then dump, diff and conninfo redaction. */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"

/* The input is the file's text. It is written to a memfd and loaded through /proc/self/fd/N (no file in
 * any tree). A relative @include resolves in the working directory: run.sh runs each target in an empty one. */

static int fuzz_fd = -1;
static char fuzz_path[64];
static FILE *fuzz_null;

static void fuzz_check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_fd = memfd_create("neonpool.conf", MFD_CLOEXEC);
	fuzz_null = fopen("/dev/null", "w");
	if (fuzz_fd < 0 || fuzz_null == NULL) {
		perror("fuzz_conf: set-up");
		exit(1);
	}
	snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d", fuzz_fd);
	unsetenv("DATABASE_URL"); /* the file alone decides */
	return 0;
}

/* conf_redact_conninfo's output must read back, through libpq, as the same connection string with every
 * secret replaced by the mask (unless it was cut at the buffer's end). */
static void fuzz_redaction(const char *conninfo)
{
	char red[1024];
	conf_redact_conninfo(conninfo, red, sizeof(red));
	fuzz_check(strnlen(red, sizeof(red)) < sizeof(red));
	if (*conninfo == '\0' || strlen(red) >= sizeof(red) - 1)
		return;
	char *e1 = NULL, *e2 = NULL;
	PQconninfoOption *a = PQconninfoParse(conninfo, &e1);
	PQfreemem(e1);
	fuzz_check(a != NULL); /* conf_load validated it */
	PQconninfoOption *b = PQconninfoParse(red, &e2);
	PQfreemem(e2);
	fuzz_check(b != NULL);
	for (PQconninfoOption *o = a, *p = b; o->keyword; o++, p++) {
		fuzz_check(p->keyword && strcmp(o->keyword, p->keyword) == 0);
		if (!o->val || !o->val[0]) {
			fuzz_check(!p->val || !p->val[0]);
			continue;
		}
		bool secret = (o->dispchar && strchr(o->dispchar, '*')) || strcmp(o->keyword, "password") == 0;
		fuzz_check(p->val != NULL);
		fuzz_check(strcmp(p->val, secret ? "********" : o->val) == 0);
	}
	PQconninfoFree(a);
	PQconninfoFree(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ftruncate(fuzz_fd, 0) < 0 || (size && pwrite(fuzz_fd, data, size, 0) != (ssize_t)size))
		abort();

	struct np_conf c, def;
	struct np_conf_error err;
	char msg[1024];
	if (conf_load(&c, fuzz_path, &err) < 0) {
		conf_error_format(&err, msg, sizeof(msg));
		fuzz_check(strnlen(msg, sizeof(msg)) < sizeof(msg) && err.message[0] != '\0');
		return 0;
	}
	/* every string set, every value in its documented range */
	for (size_t i = 0; conf_key_name(i); i++)
		fuzz_check(conf_key_reloadable(conf_key_name(i)) >= 0);
	fuzz_check(c.workers >= 1 && c.workers <= NP_MAX_WORKERS && c.budget >= 1 && c.budget <= NP_MAX_BUDGET);
	fuzz_check(c.listen != NULL && c.database_url != NULL && c.replica_url != NULL);
	conf_dump(&c, fuzz_null);
	fuzz_redaction(c.database_url);
	fuzz_redaction(c.replica_url);
	if (conf_defaults(&def) == 0) {
		char diff[512];
		int n = conf_diff_restart_only(&c, &def, diff, sizeof(diff));
		fuzz_check(n >= 0 && (n == 0) == (diff[0] == '\0'));
		conf_free(&def);
	}
	conf_free(&c);
	return 0;
}
