/* ctl_status.c - `neonpoolctl status`: the pool's state read out of band from the status file.
 * It maps the shared memory read-only, so it answers even when every worker is busy or stuck. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "budget.h"
#include "ctl_status.h"
#include "shm.h"
#include "util.h"

static const char *health_name(uint32_t h)
{
	static const char *n[] = { "starting", "up", "degraded", "down" };
	return h < 4 ? n[h] : "unknown";
}

static cJSON *status_endpoint(const struct np_shm *shm, int ep)
{
	const struct np_endpoint_shm *e = &shm->hdr->ep[ep];
	cJSON *o = cJSON_CreateObject();
	int in_use = 0, connected = 0, connecting = 0, closing = 0, orphaned = 0;
	cJSON *toks = cJSON_CreateArray();
	for (int i = 0; i < NP_MAX_BUDGET; i++) {
		const struct np_token *t = &e->tokens[i];
		int32_t owner = atomic_load(&t->owner);
		if (owner == 0)
			continue;
		uint32_t ph = atomic_load(&t->phase);
		in_use++;
		connected += ph == NP_TOK_CONNECTED;
		connecting += ph == NP_TOK_CONNECTING;
		closing += ph == NP_TOK_CLOSING;
		orphaned += ph == NP_TOK_ORPHANED;
		cJSON *tj = cJSON_CreateObject();
		cJSON_AddNumberToObject(tj, "token", i);
		cJSON_AddNumberToObject(tj, "pid", owner);
		cJSON_AddNumberToObject(tj, "slot", atomic_load(&t->slot));
		cJSON_AddStringToObject(tj, "phase", budget_phase_name(ph));
		cJSON_AddNumberToObject(tj, "backend_pid", atomic_load(&t->backend_pid));
		cJSON_AddItemToArray(toks, tj);
	}
	cJSON_AddNumberToObject(o, "configured", atomic_load(&e->configured));
	cJSON_AddNumberToObject(o, "limit", budget_limit(shm, ep));
	cJSON_AddNumberToObject(o, "in_use", in_use);
	cJSON_AddNumberToObject(o, "connected", connected);
	cJSON_AddNumberToObject(o, "connecting", connecting);
	cJSON_AddNumberToObject(o, "closing", closing);
	cJSON_AddNumberToObject(o, "orphaned", orphaned);
	cJSON_AddStringToObject(o, "health", health_name(atomic_load(&e->health)));
	cJSON_AddStringToObject(o, "reason", e->reason);
	cJSON_AddStringToObject(o, "breaker", atomic_load(&e->breaker) ? "open" : "closed");
	cJSON_AddNumberToObject(o, "breaker_opened_total", (double)atomic_load(&e->breaker_opened_total));
	cJSON_AddBoolToObject(o, "shedding", atomic_load(&e->shed) != 0);
	cJSON_AddNumberToObject(o, "server_max_connections", atomic_load(&e->server_max_conn));
	cJSON_AddNumberToObject(o, "server_reserved_connections", atomic_load(&e->server_reserved));
	cJSON_AddItemToObject(o, "tokens", toks);
	return o;
}

static cJSON *status_json(const struct np_shm *shm)
{
	const struct np_shm_header *h = shm->hdr;
	cJSON *root = cJSON_CreateObject();
	cJSON_AddNumberToObject(root, "master_pid", atomic_load(&h->master_pid));
	cJSON_AddNumberToObject(root, "supervisor_pid", atomic_load(&h->supervisor_pid));
	cJSON_AddNumberToObject(root, "generation", atomic_load(&h->generation));
	/* wall clock of the supervisor's last tick (50 ms): a stuck supervisor shows here */
	cJSON_AddNumberToObject(root, "supervisor_updated_us", (double)atomic_load(&h->sup_updated_us));
	cJSON_AddNumberToObject(root, "uptime_s", (double)(util_wall_us() - atomic_load(&h->started_us)) / 1e6);
	cJSON_AddNumberToObject(root, "configured_workers", atomic_load(&h->configured_workers));
	cJSON_AddNumberToObject(root, "respawns_total", (double)atomic_load(&h->respawns_total));
	cJSON_AddNumberToObject(root, "crashes_total", (double)atomic_load(&h->crashes_total));
	cJSON_AddBoolToObject(root, "crash_loop", atomic_load(&h->crash_loop) != 0);
	uint64_t connects = 0, shed = 0, requests = 0;
	int waiting = 0;
	cJSON *workers = cJSON_CreateArray();
	int64_t now = util_wall_us();
	for (int i = 0; i < NP_MAX_SLOTS; i++) {
		const struct np_slot *s = &shm->slots[i];
		uint32_t kind = atomic_load(&s->kind);
		connects += atomic_load(&s->connects);
		if (kind != NP_KIND_WORKER)
			continue;
		shed += atomic_load(&s->shed_503);
		requests += atomic_load(&s->requests);
		waiting += (int)atomic_load(&s->waiting);
		cJSON *w = cJSON_CreateObject();
		cJSON_AddNumberToObject(w, "slot", i);
		cJSON_AddNumberToObject(w, "pid", atomic_load(&s->pid));
		cJSON_AddNumberToObject(w, "generation", atomic_load(&s->generation));
		uint32_t st = atomic_load(&s->state);
		cJSON_AddStringToObject(w, "state", shm_state_name(st));
		cJSON_AddNumberToObject(w, "requests", (double)atomic_load(&s->requests));
		int64_t rs = atomic_load(&s->req_start_us);
		cJSON_AddNumberToObject(w, "busy_ms", shm_state_busy(st) && rs ? (double)(now - rs) / 1000.0 : 0);
		cJSON_AddNumberToObject(w, "peers_refused", (double)atomic_load(&s->peers_refused));
		cJSON_AddNumberToObject(w, "read_timeouts", (double)atomic_load(&s->read_timeouts));
		cJSON_AddNumberToObject(w, "bad_requests", (double)atomic_load(&s->bad_requests));
		char route[sizeof(s->route)];
		memcpy(route, s->route, sizeof(route));
		route[sizeof(route) - 1] = '\0';
		cJSON_AddStringToObject(w, "route", route);
		cJSON_AddBoolToObject(w, "waiting", atomic_load(&s->waiting) != 0);
		cJSON_AddItemToArray(workers, w);
	}
	cJSON_AddNumberToObject(root, "requests_total", (double)requests);
	cJSON_AddNumberToObject(root, "connects_total", (double)connects);
	cJSON_AddNumberToObject(root, "shed_503_total", (double)shed);
	cJSON_AddNumberToObject(root, "waiting", waiting);
	cJSON *eps = cJSON_AddObjectToObject(root, "endpoints");
	cJSON_AddItemToObject(eps, "primary", status_endpoint(shm, NP_EP_PRIMARY));
	if (atomic_load(&h->ep[NP_EP_REPLICA].configured))
		cJSON_AddItemToObject(eps, "replica", status_endpoint(shm, NP_EP_REPLICA));
	cJSON_AddItemToObject(root, "workers", workers);
	return root;
}

static void status_text(cJSON *j)
{
	printf("master pid %d, supervisor pid %d, generation %d, up %.0f s\n",
	       (int)cJSON_GetObjectItem(j, "master_pid")->valuedouble,
	       (int)cJSON_GetObjectItem(j, "supervisor_pid")->valuedouble,
	       (int)cJSON_GetObjectItem(j, "generation")->valuedouble, cJSON_GetObjectItem(j, "uptime_s")->valuedouble);
	printf("requests %.0f, connects %.0f, shed (503) %.0f, waiting %d, respawns %.0f%s\n",
	       cJSON_GetObjectItem(j, "requests_total")->valuedouble, cJSON_GetObjectItem(j, "connects_total")->valuedouble,
	       cJSON_GetObjectItem(j, "shed_503_total")->valuedouble, (int)cJSON_GetObjectItem(j, "waiting")->valuedouble,
	       cJSON_GetObjectItem(j, "respawns_total")->valuedouble,
	       cJSON_IsTrue(cJSON_GetObjectItem(j, "crash_loop")) ? ", CRASH LOOP: respawning stopped" : "");
	cJSON *ep;
	cJSON_ArrayForEach(ep, cJSON_GetObjectItem(j, "endpoints"))
	{
		printf("%-8s %s%s%s  budget %d/%d in use (connected %d, connecting %d, closing %d, orphaned %d)  "
		       "breaker %s  server max_connections %d (reserved %d)\n",
		       ep->string, cJSON_GetObjectItem(ep, "health")->valuestring,
		       cJSON_GetObjectItem(ep, "reason")->valuestring[0] ? ": " : "",
		       cJSON_GetObjectItem(ep, "reason")->valuestring, (int)cJSON_GetObjectItem(ep, "in_use")->valuedouble,
		       (int)cJSON_GetObjectItem(ep, "limit")->valuedouble, (int)cJSON_GetObjectItem(ep, "connected")->valuedouble,
		       (int)cJSON_GetObjectItem(ep, "connecting")->valuedouble,
		       (int)cJSON_GetObjectItem(ep, "closing")->valuedouble, (int)cJSON_GetObjectItem(ep, "orphaned")->valuedouble,
		       cJSON_GetObjectItem(ep, "breaker")->valuestring,
		       (int)cJSON_GetObjectItem(ep, "server_max_connections")->valuedouble,
		       (int)cJSON_GetObjectItem(ep, "server_reserved_connections")->valuedouble);
	}
	printf("%5s %8s %4s %-9s %10s %9s  %s\n", "slot", "pid", "gen", "state", "requests", "busy_ms", "route");
	cJSON *w;
	cJSON_ArrayForEach(w, cJSON_GetObjectItem(j, "workers"))
	{
		printf("%5d %8d %4d %-9s %10.0f %9.1f  %s\n", (int)cJSON_GetObjectItem(w, "slot")->valuedouble,
		       (int)cJSON_GetObjectItem(w, "pid")->valuedouble, (int)cJSON_GetObjectItem(w, "generation")->valuedouble,
		       cJSON_GetObjectItem(w, "state")->valuestring, cJSON_GetObjectItem(w, "requests")->valuedouble,
		       cJSON_GetObjectItem(w, "busy_ms")->valuedouble, cJSON_GetObjectItem(w, "route")->valuestring);
	}
}

int ctl_status(const struct np_conf *c, bool json)
{
	if (!c->status_file[0]) {
		fprintf(stderr, "neonpoolctl: status_file is not set in the configuration; the pool's state "
		                "lives in anonymous memory the CLI cannot read\n");
		return 1;
	}
	struct np_shm shm;
	if (shm_attach_readonly(&shm, c->status_file) < 0) {
		fprintf(stderr, "neonpoolctl: cannot read %s: %s\n", c->status_file,
		        errno == EINVAL ? "not a neonpool status file of this version" : strerror(errno));
		return 1;
	}
	int32_t master = atomic_load(&shm.hdr->master_pid);
	bool alive = master > 0 && (kill(master, 0) == 0 || errno == EPERM);
	cJSON *j = status_json(&shm);
	cJSON_AddBoolToObject(j, "master_alive", alive);
	if (json) {
		char *s = cJSON_PrintUnformatted(j);
		if (s)
			puts(s);
		cJSON_free(s);
	} else {
		status_text(j);
		if (!alive)
			printf("the master (pid %d) is not running: this is a stale status file\n", (int)master);
	}
	cJSON_Delete(j);
	shm_detach(&shm);
	return alive ? 0 : 1;
}
