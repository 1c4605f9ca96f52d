/* SPDX-License-Identifier: PostgreSQL */
/* ctl_status.c - `neonpoolctl status`: the pool's state read out of band from the status file.
 * It maps the shared memory read-only, so it answers even when every worker is busy or stuck. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "ctl_status.h"
#include "shm.h"
#include "status.h"
#include "util.h"

/* Map the running pool's status file read-only (out of band: no socket, no worker involved).
 * 0, or -1 after saying why on stderr. */
static int ctl_status_attach(const struct np_conf *c, struct np_shm *shm)
{
	if (!c->status_file[0]) {
		fprintf(stderr, "neonpoolctl: status_file is not set in the configuration; the pool's state "
		                "lives in anonymous memory the CLI cannot read\n");
		return -1;
	}
	if (shm_attach_readonly(shm, c->status_file) < 0) {
		fprintf(stderr, "neonpoolctl: cannot read %s: %s\n", c->status_file,
		        errno == EINVAL ? "not a neonpool status file of this version" : strerror(errno));
		return -1;
	}
	return 0;
}

int ctl_status(const struct np_conf *c, bool json)
{
	struct np_shm shm;
	if (ctl_status_attach(c, &shm) < 0)
		return 1;
	int32_t master = atomic_load(&shm.hdr->master_pid);
	bool alive = master > 0 && (kill(master, 0) == 0 || errno == EPERM);
	cJSON *j = status_build(&shm, c, true);
	if (j == NULL) {
		fprintf(stderr, "neonpoolctl: out of memory\n");
		shm_detach(&shm);
		return 1;
	}
	cJSON_AddBoolToObject(j, "master_alive", alive);
	if (json) {
		char *s = cJSON_PrintUnformatted(j);
		if (s)
			puts(s);
		cJSON_free(s);
	} else {
		status_text(j, stdout);
		if (!alive)
			printf("the master (pid %d) is not running: this is a stale status file\n", (int)master);
	}
	cJSON_Delete(j);
	shm_detach(&shm);
	return alive ? 0 : 1;
}

static double watch_num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The top view: one screen of what moves (req/s from the previous refresh, p99 per route). */
static void watch_top(const cJSON *j, const cJSON *prev, double dt_s)
{
	time_t now = time(NULL);
	char ts[32];
	strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&now));
	double req = watch_num(j, "requests_total"), preq = prev ? watch_num(prev, "requests_total") : req;
	printf("neonpool top - %s  master %d  generation %d  up %.0f s\n", ts, (int)watch_num(j, "master_pid"),
	       (int)watch_num(j, "generation"), watch_num(j, "uptime_s"));
	const cJSON *ws = cJSON_GetObjectItem(j, "workers_by_state"), *x;
	printf("workers:");
	cJSON_ArrayForEach(x, ws)
		printf(" %s %d", x->string, (int)x->valuedouble);
	printf("   waiting %d   req/s %.1f   shed %.0f\n", (int)watch_num(j, "waiting"),
	       dt_s > 0 ? (req - preq) / dt_s : 0, watch_num(j, "shed_503_total"));
	const cJSON *ep;
	cJSON_ArrayForEach(ep, cJSON_GetObjectItem(j, "endpoints"))
	{
		const cJSON *h = cJSON_GetObjectItem(ep, "health"), *b = cJSON_GetObjectItem(ep, "breaker");
		printf("%-8s budget %d/%d in use, %d connected   %s   breaker %s\n", ep->string, (int)watch_num(ep, "in_use"),
		       (int)watch_num(ep, "limit"), (int)watch_num(ep, "connected"), cJSON_IsString(h) ? h->valuestring : "?",
		       cJSON_IsString(b) ? b->valuestring : "?");
	}
	const cJSON *routes = cJSON_GetObjectItem(j, "routes"), *proutes = prev ? cJSON_GetObjectItem(prev, "routes") : NULL;
	printf("\n%-18s %8s %10s %10s %10s\n", "route", "req/s", "1m p50 ms", "1m p99 ms", "5m p99 ms");
	cJSON_ArrayForEach(x, routes)
	{
		const cJSON *px = proutes ? cJSON_GetObjectItem(proutes, x->string) : NULL;
		double t = watch_num(x, "requests_total"), pt = px ? watch_num(px, "requests_total") : t;
		printf("%-18s %8.1f %10.2f %10.2f %10.2f\n", x->string, dt_s > 0 ? (t - pt) / dt_s : 0,
		       watch_num(cJSON_GetObjectItem(x, "1m"), "p50_ms"), watch_num(cJSON_GetObjectItem(x, "1m"), "p99_ms"),
		       watch_num(cJSON_GetObjectItem(x, "5m"), "p99_ms"));
	}
	printf("\n%5s %8s %-9s %10s %10s  %s\n", "slot", "pid", "state", "requests", "busy_ms", "route");
	const cJSON *w;
	cJSON_ArrayForEach(w, cJSON_GetObjectItem(j, "workers"))
	{
		const cJSON *st = cJSON_GetObjectItem(w, "state"), *rt = cJSON_GetObjectItem(w, "route");
		printf("%5d %8d %-9s %10.0f %10.1f  %s\n", (int)watch_num(w, "slot"), (int)watch_num(w, "pid"),
		       cJSON_IsString(st) ? st->valuestring : "?", watch_num(w, "requests"), watch_num(w, "busy_ms"),
		       cJSON_IsString(rt) ? rt->valuestring : "");
	}
}

int ctl_status_watch(const struct np_conf *c, int interval_ms, int iterations, bool top)
{
	struct np_shm shm;
	if (ctl_status_attach(c, &shm) < 0)
		return 1;
	bool tty = isatty(STDOUT_FILENO);
	cJSON *prev = NULL;
	int64_t prev_us = 0;
	int rc = 0;
	for (int i = 0; iterations == 0 || i < iterations; i++) {
		if (i > 0)
			usleep((useconds_t)interval_ms * 1000);
		int32_t master = atomic_load(&shm.hdr->master_pid);
		bool alive = master > 0 && (kill(master, 0) == 0 || errno == EPERM);
		cJSON *j = status_build(&shm, c, true);
		if (j == NULL) {
			fprintf(stderr, "neonpoolctl: out of memory\n");
			rc = 1;
			break;
		}
		int64_t now = util_now_us();
		if (tty)
			fputs("\033[H\033[2J", stdout); /* home, clear */
		if (top)
			watch_top(j, prev, prev ? (double)(now - prev_us) / 1e6 : 0);
		else
			status_text(j, stdout);
		if (!alive)
			printf("the master (pid %d) is not running: this is a stale status file\n", (int)master);
		if (!tty && (iterations == 0 || i + 1 < iterations))
			printf("\n");
		fflush(stdout);
		cJSON_Delete(prev);
		prev = j;
		prev_us = now;
		rc = alive ? 0 : 1;
	}
	cJSON_Delete(prev);
	shm_detach(&shm);
	return rc;
}
