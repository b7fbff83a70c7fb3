/* nonoctl policy check FILE: local validation, no daemon needed. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "nonoctl.h"
#include "policy.h"
#include "run-policy.h"

static int cmd_policy_exec(struct nonoctl *ctl, int argc, char **argv);

const struct cmd_entry cmd_policy_entry = {
	.name = "policy",
	.args = "check FILE",
	.summary = "Validate a policy file locally; print its digest (exit 1 if invalid).",
	.exec = cmd_policy_exec,
};

static int policy_check(struct nonoctl *ctl, const char *file)
{
	struct json_object *o, *norm;
	struct policy *p = NULL;
	char hex[65];

	if (run_policy_load(file, &p) < 0)
		return EXIT_DAEMON_ERROR; /* 1: invalid */
	norm = policy_to_json(p);
	if (norm == NULL || policy_digest(p, hex) < 0) {
		out_warnx("%s: out of memory", file);
		json_object_put(norm);
		policy_free(p);
		return EXIT_DAEMON_ERROR;
	}
	policy_free(p);
	if (!ctl->json) {
		printf("%s: valid, digest %s\n", file, hex);
		json_object_put(norm);
		return EXIT_OK;
	}
	o = json_object_new_object();
	json_object_object_add(o, "file", json_object_new_string(file));
	json_object_object_add(o, "valid", json_object_new_boolean(1));
	json_object_object_add(o, "digest", json_object_new_string(hex));
	json_object_object_add(o, "policy", norm);
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return EXIT_OK;
}

static int cmd_policy_exec(struct nonoctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	optind = 0; /* 0: glibc re-initializes, so "check --json FILE" works */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (ch == 'j') {
			ctl->json = true;
		} else if (ch == 'h') {
			printf("Usage: nonoctl [--json] policy %s\n%s\n", cmd_policy_entry.args,
			       cmd_policy_entry.summary);
			return EXIT_OK;
		} else {
			return out_usage(&cmd_policy_entry, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 2 || strcmp(argv[optind], "check") != 0)
		return out_usage(&cmd_policy_entry, "expected 'check FILE'");
	return policy_check(ctl, argv[optind + 1]);
}
