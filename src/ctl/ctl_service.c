/* SPDX-License-Identifier: PostgreSQL */
/* ctl_service.c - `neonpoolctl reload` and `stop`: signal the running master and wait for the outcome.
 *
 * The master is found through the status file (its header names it; the file is locked for the
 * instance's life) or the pid file. A reload's outcome is read back from the header: the master
 * writes the refusal's reason (or "") and then counts the attempt (reload_seq), so the CLI waits
 * for the count to move and reads the reason after it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl_service.h"
#include "shm.h"
#include "util.h"

#define CTL_SERVICE_POLL_MS 20

static void ctl_service_sleep(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* pid has exited: no such process, or a zombie its parent has not reaped yet. */
static bool ctl_service_gone(pid_t pid)
{
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return errno == ENOENT;
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')'); /* "pid (comm) S ..." */
	return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static pid_t ctl_service_pid_file(const char *path)
{
	if (!path || !path[0])
		return 0;
	FILE *fp = fopen(path, "re");
	if (!fp)
		return 0;
	long pid = 0;
	if (fscanf(fp, "%ld", &pid) != 1)
		pid = 0;
	fclose(fp);
	return pid > 0 ? (pid_t)pid : 0;
}

/* The running master's pid, with the status file mapped in *shm when there is one. 0 after saying
 * why on stderr. */
static pid_t ctl_service_find(const struct ctl_service_target *t, struct np_shm *shm)
{
	memset(shm, 0, sizeof(*shm));
	pid_t pid = 0;
	const char *from = NULL;
	if (t->status_file && t->status_file[0]) {
		if (shm_attach_readonly(shm, t->status_file) == 0) {
			pid = (pid_t)atomic_load(&shm->hdr->master_pid);
			from = t->status_file;
		} else if (!t->pid_file || !t->pid_file[0]) {
			fprintf(stderr, "neonpoolctl: cannot read %s: %s; is neonpoold running?\n", t->status_file,
			        errno == EINVAL ? "not a neonpool status file of this version" : strerror(errno));
			return 0;
		}
	}
	if (pid <= 0) {
		pid = ctl_service_pid_file(t->pid_file);
		from = t->pid_file;
	}
	if (pid <= 0) {
		if (t->pid_file && t->pid_file[0])
			fprintf(stderr, "neonpoolctl: no master pid in %s; is neonpoold running?\n", t->pid_file);
		else if (!t->status_file || !t->status_file[0])
			fprintf(stderr, "neonpoolctl: neither status_file nor pid_file is set: cannot find the master\n");
		else
			fprintf(stderr, "neonpoolctl: %s names no master\n", t->status_file);
		shm_detach(shm);
		return 0;
	}
	if (ctl_service_gone(pid)) {
		fprintf(stderr, "neonpoolctl: the master named in %s (pid %d) is not running\n", from, (int)pid);
		shm_detach(shm);
		return 0;
	}
	return pid;
}

int ctl_service_reload(const struct ctl_service_target *t, int timeout_ms)
{
	struct np_shm shm;
	pid_t pid = ctl_service_find(t, &shm);
	if (pid <= 0)
		return 1;
	if (!shm.hdr) {
		if (kill(pid, SIGHUP) < 0) {
			fprintf(stderr, "neonpoolctl: cannot signal pid %d: %s\n", (int)pid, strerror(errno));
			return 1;
		}
		fprintf(stderr, "neonpoolctl: SIGHUP sent to pid %d; without a status_file the outcome cannot be "
		                "read (see the log)\n", (int)pid);
		return 0;
	}
	uint32_t seq = atomic_load_explicit(&shm.hdr->reload_seq, memory_order_acquire);
	uint32_t gen = atomic_load(&shm.hdr->generation);
	if (kill(pid, SIGHUP) < 0) {
		fprintf(stderr, "neonpoolctl: cannot signal pid %d: %s\n", (int)pid, strerror(errno));
		shm_detach(&shm);
		return 1;
	}
	int64_t deadline = util_now_ms() + timeout_ms;
	int rc = 1;
	for (;;) {
		if (atomic_load_explicit(&shm.hdr->reload_seq, memory_order_acquire) != seq) {
			char reason[sizeof(shm.hdr->reload_error)];
			memcpy(reason, shm.hdr->reload_error, sizeof(reason));
			reason[sizeof(reason) - 1] = '\0';
			uint32_t now_gen = atomic_load(&shm.hdr->generation);
			if (reason[0]) {
				fprintf(stderr, "neonpoolctl: reload refused, the running configuration stays (generation %u): %s\n",
				        now_gen, reason);
			} else {
				printf("reloaded: generation %u -> %u (master pid %d)\n", gen, now_gen, (int)pid);
				rc = 0;
			}
			break;
		}
		if (ctl_service_gone(pid)) {
			fprintf(stderr, "neonpoolctl: the master (pid %d) exited during the reload\n", (int)pid);
			break;
		}
		if (util_now_ms() >= deadline) {
			fprintf(stderr, "neonpoolctl: no reload counted in %s within %d ms (master pid %d)\n", t->status_file,
			        timeout_ms, (int)pid);
			break;
		}
		ctl_service_sleep(CTL_SERVICE_POLL_MS);
	}
	shm_detach(&shm);
	return rc;
}

int ctl_service_stop(const struct ctl_service_target *t, bool graceful, int timeout_ms)
{
	struct np_shm shm;
	pid_t pid = ctl_service_find(t, &shm);
	shm_detach(&shm);
	if (pid <= 0)
		return 1;
	int sig = graceful ? SIGQUIT : SIGTERM;
	if (kill(pid, sig) < 0) {
		fprintf(stderr, "neonpoolctl: cannot signal pid %d: %s\n", (int)pid, strerror(errno));
		return 1;
	}
	int64_t t0 = util_now_ms(), deadline = t0 + timeout_ms;
	while (!ctl_service_gone(pid)) {
		if (util_now_ms() >= deadline) {
			fprintf(stderr, "neonpoolctl: the master (pid %d) was still running %d ms after SIG%s\n", (int)pid,
			        timeout_ms, graceful ? "QUIT" : "TERM");
			return 1;
		}
		ctl_service_sleep(CTL_SERVICE_POLL_MS);
	}
	printf("stopped: master pid %d exited %lld ms after SIG%s\n", (int)pid, (long long)(util_now_ms() - t0),
	       graceful ? "QUIT" : "TERM");
	return 0;
}

/* The upgrade's outcome, once upgrade_seq moved past seq: 0 handed over, 1 otherwise. */
static int ctl_service_upgrade_wait(struct np_shm *shm, pid_t pid, uint32_t seq, int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;
	for (;;) {
		if (atomic_load_explicit(&shm->hdr->upgrade_seq, memory_order_acquire) != seq) {
			char last[sizeof(shm->hdr->upgrade_last)];
			memcpy(last, shm->hdr->upgrade_last, sizeof(last));
			last[sizeof(last) - 1] = '\0';
			if (strncmp(last, "ok:", 3) == 0) {
				printf("upgraded: %s\n", last + 4);
				return 0;
			}
			fprintf(stderr, "neonpoolctl: upgrade %s\n", last);
			return 1;
		}
		if (ctl_service_gone(pid)) {
			fprintf(stderr, "neonpoolctl: the master (pid %d) exited during the upgrade\n", (int)pid);
			return 1;
		}
		if (util_now_ms() >= deadline) {
			fprintf(stderr, "neonpoolctl: no upgrade outcome within %d ms (master pid %d)\n", timeout_ms, (int)pid);
			return 1;
		}
		ctl_service_sleep(CTL_SERVICE_POLL_MS);
	}
}

int ctl_service_upgrade(const struct ctl_service_target *t, bool abort_it, int timeout_ms)
{
	struct np_shm shm;
	pid_t pid = ctl_service_find(t, &shm);
	if (pid <= 0)
		return 1;
	if (!shm.hdr) {
		fprintf(stderr, "neonpoolctl: an upgrade needs a status_file (nothing sent)\n");
		return 1;
	}
	int32_t pending = atomic_load(&shm.hdr->upgrade_pid);
	int rc = 1;
	if (abort_it && !pending)
		fprintf(stderr, "neonpoolctl: no upgrade is under way (master pid %d)\n", (int)pid);
	else if (!abort_it && pending)
		fprintf(stderr, "neonpoolctl: an upgrade is under way already (new master pid %d); "
		                "`neonpoolctl upgrade --abort` ends it\n", (int)pending);
	else {
		uint32_t seq = atomic_load_explicit(&shm.hdr->upgrade_seq, memory_order_acquire);
		if (kill(pid, abort_it ? SIGURG : SIGUSR2) < 0)
			fprintf(stderr, "neonpoolctl: cannot signal pid %d: %s\n", (int)pid, strerror(errno));
		else
			rc = ctl_service_upgrade_wait(&shm, pid, seq, timeout_ms);
	}
	shm_detach(&shm);
	return rc;
}
