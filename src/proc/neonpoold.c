/* SPDX-License-Identifier: PostgreSQL */
/* neonpoold.c - the daemon's entry point: options, configuration check, then the master. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "version.h"

static void usage(FILE *fp)
{
	fprintf(fp,
	        "Usage: neonpoold [-c FILE] [-t] [-T] [-v|-V] [-h]\n"
	        "FastCGI worker pool for a PostgreSQL/Neon JSON API.\n\n"
	        "  -c FILE   configuration file (default %s)\n"
	        "  -t        check the configuration and exit (0 valid, 1 invalid)\n"
	        "  -T        check, then print the effective configuration (secrets masked)\n"
	        "  -v, -V    print the version and exit\n"
	        "  -h, --help  this help (--config, --version: the long forms of -c, -v)\n\n"
	        "Signals: TERM/INT fast stop, QUIT graceful stop, HUP reload the configuration,\n"
	        "USR2 binary upgrade (URG aborts it), USR1 reopen the log.\n"
	        "See neonpoold(8) and neonpoolctl(1).\n",
	        NP_DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	const char *path = NP_DEFAULT_CONFIG;
	bool test = false, dump = false;
	int opt;
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	while ((opt = getopt_long(argc, argv, "c:tTvVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': test = true; break;
		case 'T': test = dump = true; break;
		case 'v':
		case 'V': printf("neonpoold %s\n", NP_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "neonpoold: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 1;
	}

	struct np_conf conf;
	struct np_conf_error err;
	if (conf_load(&conf, path, &err) < 0) {
		char msg[1024];
		conf_error_format(&err, msg, sizeof(msg));
		fprintf(stderr, "neonpoold: %s\n", msg);
		if (test) {
			fprintf(stderr, "neonpoold: configuration file %s test failed\n", path);
			return 1;
		}
		/* EX_CONFIG (78): a service manager does not restart on it (RestartPreventExitStatus=78);
		 * 1 is the crash-loop guard's exit, which a restart may cure */
		return EX_CONFIG;
	}
	if (test) {
		if (dump)
			conf_dump(&conf, stdout);
		fprintf(stderr, "neonpoold: configuration file %s test is successful\n", path);
		conf_free(&conf);
		return 0;
	}
	return master_run(&conf, path);
}
