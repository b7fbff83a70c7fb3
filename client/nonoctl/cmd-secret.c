/*
 * nonoctl secret set|list|rm|rotate-key. A value is read from stdin
 * (without echo when stdin is a terminal) and handed to the daemon as the
 * read end of a pipe: it never appears in argv, the environment or the
 * JSON of a request. The buffer holding it is locked and wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "nonoctl.h"

static int cmd_secret_exec(struct nonoctl *ctl, int argc, char **argv);

const struct cmd_entry cmd_secret_entry = {
	.name = "secret",
	.args = "set NAME [--uid UID] | list [--uid UID] | rm NAME [--uid UID] | rotate-key",
	.summary = "Store (value on stdin), list, remove secrets; rotate the master key.",
	.exec = cmd_secret_exec,
};

#define SECRET_MAX 65536 /* the daemon's limit for a value */

/* Read the value: up to SECRET_MAX bytes from stdin; one trailing newline
 * is dropped. 0 and *len, or -1 after printing why. */
static int secret_read(char *buf, size_t *len)
{
	struct termios old, quiet;
	bool tty = isatty(0) && tcgetattr(0, &old) == 0;
	size_t n = 0;
	ssize_t r;

	if (tty) {
		/* Echo off before the prompt: what is typed after it is never shown. */
		quiet = old;
		quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
		if (tcsetattr(0, TCSAFLUSH, &quiet) < 0) {
			out_warnx("secret set: cannot turn terminal echo off: %s", strerror(errno));
			return -1;
		}
		fputs("Secret value (not echoed): ", stderr);
	}
	while (n <= SECRET_MAX) {
		r = read(0, buf + n, SECRET_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (tty && buf[n - 1] == '\n')
			break; /* one line from a terminal */
	}
	if (tty) {
		tcsetattr(0, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (n > SECRET_MAX) {
		out_warnx("secret set: value longer than %d bytes", SECRET_MAX);
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0) {
		out_warnx("secret set: empty value on stdin");
		return -1;
	}
	*len = n;
	return 0;
}

/* A pipe holding exactly the value, write end closed. Read end or -1. */
static int secret_pipe(const char *buf, size_t len)
{
	int p[2];
	size_t off = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if (len >= 65536)
		fcntl(p[1], F_SETPIPE_SZ, (int)len + 4096);
	while (off < len) {
		ssize_t w = write(p[1], buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(p[0]);
			close(p[1]);
			return -1;
		}
		off += (size_t)w;
	}
	close(p[1]);
	return p[0];
}

static int secret_set(struct nonoctl *ctl, struct json_object *params)
{
	nono_error *err = NULL;
	char *buf, *res = NULL;
	size_t len = 0;
	int fd = -1, r = EXIT_DAEMON_ERROR;

	buf = mmap(NULL, SECRET_MAX + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		out_warnx("secret set: %s", strerror(errno));
		json_object_put(params);
		return EXIT_DAEMON_ERROR;
	}
	(void)mlock(buf, SECRET_MAX + 1);        /* best effort: not swapped */
	(void)madvise(buf, SECRET_MAX + 1, MADV_DONTDUMP);
	/* Connect first: nobody should type a secret for a daemon that is down. */
	r = nonoctl_connect(ctl);
	if (r != EXIT_OK)
		goto out;
	r = EXIT_DAEMON_ERROR;
	if (secret_read(buf, &len) < 0)
		goto out;
	fd = secret_pipe(buf, len);
	explicit_bzero(buf, SECRET_MAX + 1);
	if (fd < 0) {
		out_warnx("secret set: pipe: %s", strerror(errno));
		goto out;
	}
	json_object_object_add(params, "fd", json_object_new_int(0));
	if (nono_client_call_fds(ctl->client, "secret.set",
				 json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN),
				 &fd, 1, &res, NULL, NULL, &err) < 0) {
		r = out_error("secret set", err);
		nono_error_free(err);
		goto out;
	}
	if (ctl->json) {
		r = out_json_pretty(res);
	} else {
		struct json_object *o = json_tokener_parse(res);
		const char *status = util_json_str(o, "status");

		printf("%s: %s\n", util_json_str(params, "name"), status ? status : "stored");
		json_object_put(o);
		r = EXIT_OK;
	}
out:
	free(res);
	if (fd >= 0)
		close(fd);
	explicit_bzero(buf, SECRET_MAX + 1);
	munmap(buf, SECRET_MAX + 1);
	json_object_put(params);
	return r;
}

static void format_time(char *buf, size_t len, struct json_object *o, const char *key)
{
	int64_t v;
	time_t t;
	struct tm tm;

	if (!util_json_int(o, key, &v) || v <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	t = (time_t)(v > 100000000000LL ? v / 1000 : v); /* ms or s */
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void secret_print(struct json_object *list)
{
	char created[32], updated[32], used[32];

	printf("%-32s %-14s %-20s %-20s %s\n", "NAME", "BACKEND", "CREATED", "UPDATED", "LAST USED");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *s = json_object_array_get_idx(list, i);
		const char *name = util_json_str(s, "name"), *be = util_json_str(s, "backend");
		char clean[129];

		snprintf(clean, sizeof(clean), "%s", name ? name : "?");
		for (char *p = clean; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		format_time(created, sizeof(created), s, "created");
		format_time(updated, sizeof(updated), s, "updated");
		format_time(used, sizeof(used), s, "last_used");
		printf("%-32s %-14s %-20s %-20s %s\n", clean, be ? be : "-", created, updated, used);
	}
}

static int secret_simple(struct nonoctl *ctl, const char *what, const char *method,
			 struct json_object *params, bool list)
{
	nono_error *err = NULL;
	char *res = NULL;
	int r = nonoctl_connect(ctl);

	if (r == EXIT_OK &&
	    nono_client_call(ctl->client, method,
			     json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN),
			     &res, &err) < 0) {
		r = out_error(what, err);
		nono_error_free(err);
	}
	if (r == EXIT_OK && (ctl->json || !list)) {
		r = ctl->json ? out_json_pretty(res) : EXIT_OK;
		if (!ctl->json)
			printf("%s: done\n", what);
	} else if (r == EXIT_OK) {
		struct json_object *o = json_tokener_parse(res);

		if (o != NULL && json_object_is_type(o, json_type_array))
			secret_print(o);
		else
			r = out_json_pretty(res);
		json_object_put(o);
	}
	free(res);
	json_object_put(params);
	return r;
}

static int cmd_secret_exec(struct nonoctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "uid", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct json_object *params;
	const char *sub;
	char *end;
	long long uid;
	int ch, nargs;

	params = json_object_new_object();
	optind = 0; /* 0: glibc re-initializes, so options may follow NAME */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "u:h", opts, NULL)) != -1) {
		if (ch == 'u') {
			errno = 0;
			uid = strtoll(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || uid < 0 ||
			    uid > 4294967294LL) {
				json_object_put(params);
				return out_usage(&cmd_secret_entry, "bad --uid '%s'", optarg);
			}
			json_object_object_add(params, "uid", json_object_new_int64(uid));
		} else {
			json_object_put(params);
			if (ch == 'h') {
				printf("Usage: nonoctl [--json] secret %s\n%s\n", cmd_secret_entry.args,
				       cmd_secret_entry.summary);
				return EXIT_OK;
			}
			return out_usage(&cmd_secret_entry, "unknown option or missing argument '%s'",
					 argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		json_object_put(params);
		return out_usage(&cmd_secret_entry, "no subcommand given");
	}
	sub = argv[optind++];
	nargs = argc - optind;
	if (strcmp(sub, "set") == 0 || strcmp(sub, "rm") == 0) {
		if (nargs != 1) {
			json_object_put(params);
			return out_usage(&cmd_secret_entry, "secret %s takes one NAME", sub);
		}
		json_object_object_add(params, "name", json_object_new_string(argv[optind]));
		if (sub[0] == 's')
			return secret_set(ctl, params);
		return secret_simple(ctl, "secret rm", "secret.delete", params, false);
	}
	if (nargs != 0) {
		json_object_put(params);
		return out_usage(&cmd_secret_entry, "unexpected argument '%s'", argv[optind]);
	}
	if (strcmp(sub, "list") == 0)
		return secret_simple(ctl, "secret list", "secret.list", params, true);
	if (strcmp(sub, "rotate-key") == 0 && json_object_object_length(params) == 0)
		return secret_simple(ctl, "secret rotate-key", "secret.rotate_key", params, false);
	json_object_put(params);
	return out_usage(&cmd_secret_entry, "unknown subcommand '%s'", sub);
}
