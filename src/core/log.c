/* SPDX-License-Identifier: PostgreSQL */
/* log.c - one line per event, key=value, with level, role and pid. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static int log_fd = STDERR_FILENO;
static int log_journal = -1; /* stderr is the journal: -1 not known yet */
static char log_path[512];
static int log_level = NP_LOG_INFO;
static char log_role[32] = "master";

static bool log_owner_set; /* log_set_owner() was called: files opened later get this owner */
static uid_t log_uid;
static gid_t log_gid;

/* Give fd to the run user, through the descriptor (never the path), when it is not theirs yet. */
static int log_chown(int fd)
{
	struct stat st;
	if (!log_owner_set || fstat(fd, &st) < 0 || (st.st_uid == log_uid && st.st_gid == log_gid))
		return 0;
	return fchown(fd, log_uid, log_gid);
}

const char *const log_level_names[] = { "error", "warn", "info", "debug", NULL };

const char *log_level_name(int level)
{
	if (level < 0 || level > NP_LOG_DEBUG)
		return "unknown";
	return log_level_names[level];
}

/* Whether log_fd is the journal's stream: systemd sets JOURNAL_STREAM to "dev:ino" of the stream
 * it connected stderr to (sd-daemon(3), systemd.exec(5)); a stderr redirected elsewhere since
 * (a file, a pipe) no longer matches. */
static bool log_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	if (log_fd != STDERR_FILENO || js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_open(const char *path)
{
	log_journal = -1;
	if (path == NULL || path[0] == '\0') {
		if (log_fd != STDERR_FILENO && log_fd >= 0)
			close(log_fd);
		log_fd = STDERR_FILENO;
		log_path[0] = '\0';
		return 0;
	}
	/* never through a symlink planted at the path (the master opens it as root) */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	if (log_chown(fd) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (log_fd != STDERR_FILENO && log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	snprintf(log_path, sizeof(log_path), "%s", path);
	return 0;
}

int log_set_owner(uid_t uid, gid_t gid)
{
	log_owner_set = true;
	log_uid = uid;
	log_gid = gid;
	return log_fd == STDERR_FILENO ? 0 : log_chown(log_fd);
}

int log_reopen(void)
{
	if (log_path[0] == '\0')
		return 0;
	char path[sizeof(log_path)];
	memcpy(path, log_path, sizeof(path));
	return log_open(path);
}

int log_fileno(void) { return log_fd; }
void log_set_level(int level) { log_level = level; }
int log_get_level(void) { return log_level; }

void log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

void log_msg(int level, const char *kv, const char *fmt, ...)
{
	if (level > log_level)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	char quoted[1100];
	util_quote_value(msg, quoted, sizeof(quoted));

	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	if (log_journal < 0)
		log_journal = log_is_journal();
	/* under the journal the line's syslog priority (error 3, warning 4, info 6, debug 7), which
	 * journalctl -p reads; its own timestamp stays in the line */
	static const char *const prio[] = { "<3>", "<4>", "<6>", "<7>" };
	char line[2048];
	int n = snprintf(line, sizeof(line),
	                 "%sts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s role=%s pid=%d msg=%s%s\n",
	                 log_journal ? prio[level < 0 ? 0 : level > NP_LOG_DEBUG ? NP_LOG_DEBUG : level] : "",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	                 (int)(tv.tv_usec / 1000), log_level_name(level), log_role, (int)getpid(),
	                 quoted, kv ? kv : "");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	int saved = errno;
	ssize_t off = 0;
	while (off < n) {
		ssize_t w = write(log_fd, line + off, (size_t)(n - off));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += w;
	}
	errno = saved;
}
