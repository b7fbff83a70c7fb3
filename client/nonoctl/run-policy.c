/* nonoctl run: the policy document (file + command-line additions). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "nonoctl.h"
#include "policy.h"
#include "run-policy.h"

static void print_policy_error(const char *file, const struct policy_error *e)
{
	if (e->line > 0)
		fprintf(stderr, "%s:%d:%d: ", file, e->line, e->column);
	else
		fprintf(stderr, "%s: ", file);
	if (e->path[0] != '\0')
		fprintf(stderr, "%s: ", e->path);
	fprintf(stderr, "%s\n", e->message);
}

/* Whole file into a malloc'd buffer, refusing more than POLICY_MAX_TEXT. */
static int read_text(const char *file, char **buf, size_t *len)
{
	int fd = strcmp(file, "-") == 0 ? dup(0) : open(file, O_RDONLY | O_CLOEXEC);
	size_t cap = POLICY_MAX_TEXT + 1, n = 0;
	char *b;
	ssize_t r;

	if (fd < 0)
		return -errno;
	b = malloc(cap);
	if (b == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (n < cap && (r = read(fd, b + n, cap - n)) != 0) {
		if (r < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			free(b);
			close(fd);
			return -e;
		}
		n += (size_t)r;
	}
	close(fd);
	if (n > POLICY_MAX_TEXT) {
		free(b);
		return -EFBIG;
	}
	*buf = b;
	*len = n;
	return 0;
}

int run_policy_load(const char *file, struct policy **p)
{
	struct policy_error perr;
	char *text = NULL;
	size_t len = 0;
	int r = read_text(file, &text, &len);

	if (r < 0) {
		if (r == -EFBIG)
			out_warnx("%s: policy larger than %u bytes", file, POLICY_MAX_TEXT);
		else
			out_warnx("cannot read %s: %s", file, strerror(-r));
		return -1;
	}
	memset(&perr, 0, sizeof(perr));
	r = policy_parse(text, len, p, &perr);
	free(text);
	if (r < 0) {
		print_policy_error(file, &perr);
		return -1;
	}
	return 0;
}

/* obj[key] as an object/array, created when missing. Borrowed. */
static struct json_object *member(struct json_object *obj, const char *key, json_type type)
{
	struct json_object *v;

	if (json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, type))
		return v;
	v = type == json_type_array ? json_object_new_array() : json_object_new_object();
	json_object_object_add(obj, key, v);
	return v;
}

/* Relative paths are taken from the current directory: resolved with
 * realpath() when they exist, else joined to the cwd (and then checked by
 * the policy library, which refuses ".."). */
static struct json_object *path_value(const char *path)
{
	char cwd[PATH_MAX], *abs;
	struct json_object *v;

	if (path[0] == '/' || path[0] == '$')
		return json_object_new_string(path);
	abs = realpath(path, NULL);
	if (abs != NULL) {
		v = json_object_new_string(abs);
		free(abs);
		return v;
	}
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return json_object_new_string(path);
	if (asprintf(&abs, "%s/%s", cwd, path) < 0)
		return NULL;
	v = json_object_new_string(abs);
	free(abs);
	return v;
}

static int add_inject(struct json_object *net, const char *arg)
{
	const char *colon = strchr(arg, ':'), *eq;
	struct json_object *rule, *allow;
	char *host, *hostport;

	eq = colon != NULL ? strchr(colon + 1, '=') : NULL;
	if (colon == NULL || eq == NULL || colon == arg || eq == colon + 1) {
		out_warnx("run: --inject needs HOST:HEADER=TEMPLATE, not '%s'", arg);
		return -1;
	}
	host = strndup(arg, (size_t)(colon - arg));
	rule = json_object_new_object();
	json_object_object_add(rule, "host", json_object_new_string(host));
	json_object_object_add(rule, "header",
			       json_object_new_string_len(colon + 1, (int)(eq - colon - 1)));
	json_object_object_add(rule, "value", json_object_new_string(eq + 1));
	json_object_array_add(member(net, "inject", json_type_array), rule);
	/* The injected host must be reachable: allow it on 443 (HTTPS). */
	allow = member(net, "allow", json_type_array);
	if (asprintf(&hostport, "%s:443", host) >= 0) {
		json_object_array_add(allow, json_object_new_string(hostport));
		free(hostport);
	}
	free(host);
	return 0;
}

static struct json_object *default_doc(void)
{
	static const char text[] =
		"{\"version\":1,\"filesystem\":{\"read\":[\"$WORKSPACE\",\"$TMPDIR\"],"
		"\"write\":[\"$WORKSPACE\",\"$TMPDIR\"]}}";

	return json_tokener_parse(text);
}

int run_policy_build(const struct run_policy_args *a, struct json_object **out)
{
	struct json_object *doc, *fs, *net = NULL;
	struct policy *p = NULL;
	struct policy_error perr;

	if (a->file != NULL) {
		if (run_policy_load(a->file, &p) < 0)
			return -1;
		doc = policy_to_json(p);
		policy_free(p);
	} else {
		doc = default_doc();
	}
	if (doc == NULL) {
		out_warnx("run: out of memory");
		return -1;
	}
	fs = member(doc, "filesystem", json_type_object);
	for (size_t i = 0; i < a->nread; i++)
		json_object_array_add(member(fs, "read", json_type_array), path_value(a->read[i]));
	for (size_t i = 0; i < a->nwrite; i++)
		json_object_array_add(member(fs, "write", json_type_array), path_value(a->write[i]));
	if (a->nhosts > 0 || a->ninject > 0)
		net = member(doc, "network", json_type_object);
	for (size_t i = 0; i < a->nhosts; i++)
		json_object_array_add(member(net, "allow", json_type_array),
				      json_object_new_string(a->hosts[i]));
	for (size_t i = 0; i < a->ninject; i++)
		if (add_inject(net, a->inject[i]) < 0)
			goto fail;
	if (a->snapshot) { /* the daemon snapshots $WORKSPACE before exec and after exit */
		struct json_object *snap = member(doc, "snapshot", json_type_object);

		json_object_object_add(snap, "on_start", json_object_new_boolean(1));
		json_object_object_add(snap, "on_exit", json_object_new_boolean(1));
	}
	/* Check the result: the flags can be wrong too (a bad host, a
	 * relative path, a path both denied and allowed). */
	memset(&perr, 0, sizeof(perr));
	if (policy_from_json(doc, &p, &perr) < 0) {
		/* Positions would point into the file, but the error may come
		 * from a flag: name the key only. */
		perr.line = 0;
		print_policy_error("nonoctl: run", &perr);
		goto fail;
	}
	policy_free(p);
	*out = doc;
	return 0;
fail:
	json_object_put(doc);
	return -1;
}
