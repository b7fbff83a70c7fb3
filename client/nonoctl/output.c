/* nonoctl: printing results and errors (daemon strings are sanitized). */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "nonoctl.h"

/* Write s with control characters (terminal escapes) replaced by '?'. */
static void put_clean(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
	}
}

void out_warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("nonoctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int out_error(const char *what, const nono_error *err)
{
	const char *kind = nono_error_kind(err);
	int errnum = nono_error_errno(err);
	bool local_conn = !nono_error_is_remote(err) &&
		(strcmp(kind, "connection") == 0 || strcmp(kind, "timeout") == 0);

	fputs("nonoctl: ", stderr);
	if (what != NULL && !local_conn)
		fprintf(stderr, "%s: ", what);
	put_clean(stderr, nono_error_detail(err));
	if (local_conn) {
		if (errnum == ENOENT || errnum == ECONNREFUSED)
			fputs(" (is nonod running?)", stderr);
		else if (errnum == EACCES)
			fputs(" (are you in the nono group?)", stderr);
		fputc('\n', stderr);
		return EXIT_UNAVAILABLE;
	}
	fputs(" (", stderr);
	put_clean(stderr, kind);
	if (nono_error_field(err)[0] != '\0') {
		fputs(", field ", stderr);
		put_clean(stderr, nono_error_field(err));
	}
	fputs(")\n", stderr);
	return EXIT_DAEMON_ERROR;
}

int out_usage(const struct cmd_entry *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "nonoctl %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUsage: nonoctl [--socket PATH] [--json] %s%s%s\n", cmd->name,
		cmd->args[0] != '\0' ? " " : "", cmd->args);
	return EXIT_USAGE;
}

void out_kv(FILE *f, int width, const char *key, const char *value)
{
	int n = (int)strlen(key) + 1;

	put_clean(f, key);
	fputc(':', f);
	fprintf(f, "%*s", n < width ? width - n : 1, "");
	put_clean(f, value);
	fputc('\n', f);
}

int out_json_pretty(const char *json)
{
	struct json_object *obj = json_tokener_parse(json);

	if (obj == NULL) {
		out_warnx("the daemon's reply is not valid JSON");
		return EXIT_DAEMON_ERROR;
	}
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
	return EXIT_OK;
}

int out_noargs(const struct cmd_entry *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (ch == 'h') {
			printf("Usage: nonoctl [--socket PATH] [--json] %s%s%s\n%s\n", cmd->name,
			       cmd->args[0] != '\0' ? " " : "", cmd->args, cmd->summary);
			return EXIT_OK;
		}
		return out_usage(cmd, "unknown option '%s'", argv[optind - 1]);
	}
	if (optind < argc)
		return out_usage(cmd, "unexpected argument '%s'", argv[optind]);
	return -1;
}
