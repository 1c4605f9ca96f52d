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
#include "status.h"
#include "util.h"

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
