/*
 * nonoctl: the command-line client of nonod. Parses the global options,
 * finds the command in cmd_table and runs it. Commands live in cmd-*.c;
 * each parses its own arguments, then calls nonoctl_connect().
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "nonoctl.h"

static const struct cmd_entry *const cmd_table[] = {
	&cmd_status_entry,
	&cmd_run_entry,
	&cmd_ps_entry,
	&cmd_wait_entry,
	&cmd_kill_entry,
	&cmd_secret_entry,
	&cmd_snapshot_entry,
	&cmd_policy_entry,
	&cmd_audit_entry,
	NULL,
};

static void usage(FILE *f)
{
	fputs("Usage: nonoctl [--socket PATH] [--json] [--timeout SEC] COMMAND [ARGS...]\n"
	      "       nonoctl -h|--help | --version\n"
	      "\n"
	      "Talk to nonod, the nono sandboxing daemon.\n"
	      "\n"
	      "Options:\n"
	      "  -s, --socket PATH  daemon socket (default: $" NONO_SOCKET_ENV ", else\n"
	      "                     " NONO_SYSTEM_SOCKET " for root, else\n"
	      "                     $XDG_RUNTIME_DIR/" NONO_USER_SOCKET_REL ")\n"
	      "  -j, --json         print results as JSON\n"
	      "  -t, --timeout SEC  give up on a reply after SEC seconds (default: wait)\n"
	      "  -h, --help         show this help\n"
	      "  -V, --version      show the version\n"
	      "\n"
	      "Commands:\n", f);
	for (size_t i = 0; cmd_table[i] != NULL; i++)
		fprintf(f, "  %-17s %s\n", cmd_table[i]->name, cmd_table[i]->summary);
	fputs("\n"
	      "Run 'nonoctl COMMAND --help' for a command's options.\n"
	      "\n"
	      "Exit status:\n"
	      "  0    success\n"
	      "  1    the daemon returned an error\n"
	      "  2    usage error\n"
	      "  69   the daemon is not reachable (EX_UNAVAILABLE)\n"
	      "  125  run: nono itself failed\n"
	      "  126  run: the command is not executable\n"
	      "  127  run: the command was not found\n"
	      "  N    run: the command's own exit status (128+N if killed by signal N)\n",
	      f);
}

int nonoctl_connect(struct nonoctl *ctl)
{
	nono_error *err = NULL;
	int r;

	if (ctl->client != NULL)
		return EXIT_OK;
	if (nono_client_connect(ctl->socket_path, "nonoctl/" NONO_VERSION, &ctl->client,
				&err) < 0) {
		r = out_error("connect", err);
		nono_error_free(err);
		return r;
	}
	nono_client_set_timeout(ctl->client, ctl->timeout_ms);
	return EXIT_OK;
}

static const struct cmd_entry *cmd_find(const char *name)
{
	for (size_t i = 0; cmd_table[i] != NULL; i++)
		if (strcmp(cmd_table[i]->name, name) == 0)
			return cmd_table[i];
	return NULL;
}

/* Stdout must reach its reader: a failed write is an error, not success. */
static int finish(int code)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		out_warnx("cannot write output");
		return code == EXIT_OK ? EXIT_DAEMON_ERROR : code;
	}
	return code;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct nonoctl ctl = { .timeout_ms = -1 };
	char *end;
	long sec;
	const struct cmd_entry *cmd;
	int ch, r;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+s:jt:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (optarg[0] == '\0') {
				out_warnx("--socket needs a path");
				return EXIT_USAGE;
			}
			ctl.socket_path = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 't':
			errno = 0;
			sec = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || sec <= 0 ||
			    sec > 86400) {
				out_warnx("--timeout needs whole seconds (1..86400), not '%s'", optarg);
				return EXIT_USAGE;
			}
			ctl.timeout_ms = (int)sec * 1000;
			break;
		case 'h':
			usage(stdout);
			return finish(EXIT_OK);
		case 'V':
			printf("nonoctl %s (libnono %s, protocol %d)\n", NONO_VERSION,
			       nono_version(), NONO_PROTOCOL_VERSION);
			return finish(EXIT_OK);
		default:
			if (optopt == 's' || optopt == 't')
				out_warnx("option '%s' needs an argument", argv[optind - 1]);
			else
				out_warnx("unknown option '%s'", argv[optind - 1]);
			fputs("Try 'nonoctl --help'.\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = cmd_find(argv[optind]);
	if (cmd == NULL) {
		out_warnx("unknown command '%s'", argv[optind]);
		fputs("Try 'nonoctl --help'.\n", stderr);
		return EXIT_USAGE;
	}
	r = cmd->exec(&ctl, argc - optind, argv + optind);
	nono_client_free(ctl.client);
	return finish(r);
}
