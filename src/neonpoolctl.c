/* neonpoolctl.c - the command-line tool: configuration check (status and database checks follow). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "version.h"

static void usage(FILE *fp)
{
	fprintf(fp,
	        "Usage: neonpoolctl [-c FILE] COMMAND\n"
	        "Operate a neonpool installation.\n\n"
	        "Options:\n"
	        "  -c, --config FILE   configuration file (default %s)\n"
	        "  -h, --help          this help\n"
	        "  -V, --version       print the version\n\n"
	        "Commands:\n"
	        "  check-config        validate the configuration; print it with secrets masked\n",
	        NP_DEFAULT_CONFIG);
}

static int cmd_check_config(const char *path)
{
	struct np_conf conf;
	struct np_conf_error err;
	if (conf_load(&conf, path, &err) < 0) {
		char msg[1024];
		conf_error_format(&err, msg, sizeof(msg));
		fprintf(stderr, "neonpoolctl: %s\n", msg);
		return 1;
	}
	conf_dump(&conf, stdout);
	fprintf(stderr, "neonpoolctl: configuration file %s is valid\n", path);
	conf_free(&conf);
	return 0;
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
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check_config(path);
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "neonpoolctl: unknown command '%s'\n", cmd);
	usage(stderr);
	return 1;
}
