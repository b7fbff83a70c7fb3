/*
 * libnono: nono_sandbox_apply(), the in-process sandbox. The policy is
 * validated, its variables resolved from this process ($WORKSPACE = cwd,
 * $HOME, $TMPDIR), the base profile merged, mapped with
 * sandbox_spec_from_policy() and compiled with sandbox_compile(); then
 * sandbox_enter() restricts the calling thread, which must be the only
 * one, and with it every later child. There is no way back.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "from-policy.h"
#include "policy.h"
#include "private.h"
#include "sandbox-int.h"
#include "sandbox.h"

extern char **environ;

/* Report of the last successful nono_sandbox_apply() in this process. */
static char *sandbox_last_report;

/* Threads of this process, or -errno. */
static int sandbox_count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Parts of a policy that need nonod and cannot be enforced in-process. */
static nono_error *sandbox_unsupported(const struct policy *p)
{
	const char *what = NULL, *field = "";

	if (p->n_allow > 0 || p->n_inject > 0 || p->n_routes > 0) {
		what = "network rules need nonod's proxy; in-process, use nono_policy_allow_tcp_port()";
		field = "network";
	} else if (p->limits.wall_set) {
		what = "a wall-clock limit needs nonod (it kills the session)";
		field = "limits.wall";
	} else if (p->snapshot.on_start || p->snapshot.on_exit) {
		what = "snapshots are taken by nonod";
		field = "snapshot";
	}
	if (what == NULL)
		return NULL;
	return error_local(NONO_E_POLICY_INVALID, "policy_invalid", 0, "%s: %s", field, what);
}

static const char *sandbox_var(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] == '/' ? v : NULL;
}

/* Validate and resolve p into a new struct policy with the base merged. */
static nono_error *sandbox_policy(const nono_policy *np, struct policy **out)
{
	static char cwd[PATH_MAX];
	struct policy_vars vars;
	struct policy_error pe;
	struct policy *p = NULL;
	nono_error *e;
	int r;

	memset(&pe, 0, sizeof(pe));
	r = policy_from_json(np->doc, &p, &pe);
	if (r < 0)
		return error_from_policy(&pe, r);
	e = sandbox_unsupported(p);
	if (e != NULL)
		goto fail;
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		e = error_local(NONO_E_INTERNAL, "internal_error", errno, "getcwd: %s",
				strerror(errno));
		goto fail;
	}
	vars.workspace = cwd;
	vars.home = sandbox_var("HOME");
	vars.tmpdir = sandbox_var("TMPDIR") != NULL ? sandbox_var("TMPDIR") : "/tmp";
	r = policy_resolve(p, &vars, &pe);
	if (r == 0)
		r = policy_merge_base(p);
	if (r < 0) {
		e = error_from_policy(&pe, r);
		goto fail;
	}
	*out = p;
	return NULL;
fail:
	policy_free(p);
	return e;
}

/* Everything up to a compiled sandbox; shared by check and apply. */
static int sandbox_prepare(const nono_policy *np, struct sandbox_compiled **sc,
			   nono_error **err)
{
	struct sandbox_spec_buf buf;
	struct sandbox_spec spec;
	struct policy *p = NULL;
	char errbuf[256] = "";
	nono_error *e;
	int r;

	if (np == NULL)
		return error_out(err, error_local(NONO_E_INVALID_PARAMS, ERR_KIND_ARGUMENT, EINVAL,
						  "policy is NULL"));
	e = sandbox_policy(np, &p);
	if (e != NULL)
		return error_out(err, e);
	r = sandbox_spec_from_policy(p, &buf, &spec);
	if (r < 0) {
		policy_free(p);
		return error_out(err, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, -r,
						  "out of memory"));
	}
	if (np->nports > 0) {
		spec.net = SANDBOX_NET_PROXY;
		spec.ports = np->ports;
		spec.nports = np->nports;
	}
	spec.env.from = environ;
	r = sandbox_compile(&spec, sc, errbuf, sizeof(errbuf));
	sandbox_spec_buf_free(&buf);
	policy_free(p);
	if (r == -EOPNOTSUPP)
		return error_out(err, error_local(NONO_E_SANDBOX_UNAVAILABLE,
						  "sandbox_feature_unavailable", EOPNOTSUPP,
						  "%s", errbuf));
	if (r < 0)
		return error_out(err, error_local(r == -ENOENT || r == -EINVAL
						  ? NONO_E_POLICY_INVALID : NONO_E_INTERNAL,
						  r == -ENOENT || r == -EINVAL
						  ? "policy_invalid" : "internal_error",
						  -r, "%s", errbuf[0] ? errbuf : strerror(-r)));
	return 0;
}

static char *sandbox_report_text(const struct sandbox_compiled *sc)
{
	struct json_object *o = sandbox_report_to_json(sandbox_compiled_report(sc));
	char *s;

	if (o == NULL)
		return NULL;
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

int nono_sandbox_check(const nono_policy *p, char **report_json, nono_error **err)
{
	struct sandbox_compiled *sc = NULL;
	int r = sandbox_prepare(p, &sc, err);

	if (r < 0)
		return r;
	if (report_json != NULL) {
		*report_json = sandbox_report_text(sc);
		if (*report_json == NULL) {
			sandbox_compiled_free(sc);
			return error_out(err, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM,
							  "out of memory"));
		}
	}
	sandbox_compiled_free(sc);
	return 0;
}

int nono_sandbox_apply(const nono_policy *p, nono_error **err)
{
	struct sandbox_compiled *sc = NULL;
	enum sandbox_step step = SANDBOX_STEP_NONE;
	char *report;
	int r, threads = sandbox_count_threads();

	if (threads != 1)
		return error_out(err, error_local(NONO_E_SANDBOX_UNAVAILABLE,
			"sandbox_feature_unavailable", threads < 0 ? -threads : 0,
			threads < 0 ? "cannot count this process's threads (/proc/self/task)"
				    : "the process has %d threads: Landlock and seccomp would only "
				      "restrict the calling one; apply before starting threads",
			threads));
	r = sandbox_prepare(p, &sc, err);
	if (r < 0)
		return r;
	report = sandbox_report_text(sc);
	r = sandbox_enter(sc, &step);
	sandbox_compiled_free(sc);
	if (r < 0) {
		free(report);
		return error_out(err, error_local(NONO_E_SANDBOX_UNAVAILABLE,
			"sandbox_feature_unavailable", -r,
			"%s: %s (the process is partially restricted and should exit)",
			sandbox_step_name(step), strerror(-r)));
	}
	free(sandbox_last_report);
	sandbox_last_report = report;
	return 0;
}

char *nono_sandbox_report_json(void)
{
	return sandbox_last_report != NULL ? strdup(sandbox_last_report) : NULL;
}
