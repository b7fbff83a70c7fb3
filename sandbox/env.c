/*
 * Environment scrubbing (sandbox_env_build): the worker gets only the names
 * the policy passes and the pairs it sets. Start-up hooks that make a loader
 * or interpreter run code or load files of the environment's choosing are
 * never matched by a pattern and must be named exactly to get through.
 */
#include "env.h"
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/*
 * The hook list. Entries ending in '*' are prefixes.
 *   dynamic loader / libc: LD_*, GCONV_PATH, GETCONF_DIR, GLIBC_TUNABLES,
 *     MALLOC_*, LOCPATH, NLSPATH, HOSTALIASES, LOCALDOMAIN, RES_OPTIONS,
 *     RESOLV_HOST_CONF, TZDIR, DYLD_* (macOS)
 *   shells: BASH_ENV, ENV, BASH_FUNC_*, SHELLOPTS, BASHOPTS, PS4,
 *     PROMPT_COMMAND, IFS, CDPATH
 *   interpreters: NODE_OPTIONS, NODE_PATH, PYTHONSTARTUP, PYTHONPATH,
 *     PYTHONHOME, PYTHONINSPECT, PYTHONUSERBASE, PYTHONBREAKPOINT,
 *     PERL5OPT, PERL5LIB, PERLLIB, PERL5DB, RUBYOPT, RUBYLIB,
 *     JAVA_TOOL_OPTIONS, _JAVA_OPTIONS, JDK_JAVA_OPTIONS, LUA_INIT*,
 *     LUA_PATH*, LUA_CPATH*, PHPRC, PHP_INI_SCAN_DIR, TCLLIBPATH
 *   libraries: OPENSSL_CONF, OPENSSL_ENGINES, OPENSSL_MODULES, SSLKEYLOGFILE,
 *     GIT_CONFIG_*, GIT_EXEC_PATH, GIT_SSH_COMMAND, GIT_ASKPASS, SSH_ASKPASS
 *   authority held by the caller or the service manager, which a pattern
 *   must not hand to the worker: SSH_AUTH_SOCK, GPG_AGENT_INFO,
 *     DBUS_SESSION_BUS_ADDRESS, NONO_SOCKET, NOTIFY_SOCKET, LISTEN_FDS,
 *     LISTEN_PID, LISTEN_FDNAMES, JOURNAL_STREAM, CREDENTIALS_DIRECTORY,
 *     WATCHDOG_*
 * EDITOR and VISUAL are not hooks (ordinary preferences).
 */
static const char *const sandbox_env_hooks[] = {
	"LD_*", "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "MALLOC_*",
	"LOCPATH", "NLSPATH", "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS",
	"RESOLV_HOST_CONF", "TZDIR", "DYLD_*",
	"BASH_ENV", "ENV", "BASH_FUNC_*", "SHELLOPTS", "BASHOPTS", "PS4",
	"PROMPT_COMMAND", "IFS", "CDPATH",
	"NODE_OPTIONS", "NODE_PATH", "PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME",
	"PYTHONINSPECT", "PYTHONUSERBASE", "PYTHONBREAKPOINT",
	"PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "RUBYOPT", "RUBYLIB",
	"JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS",
	"LUA_INIT*", "LUA_PATH*", "LUA_CPATH*", "PHPRC", "PHP_INI_SCAN_DIR",
	"TCLLIBPATH",
	"OPENSSL_CONF", "OPENSSL_ENGINES", "OPENSSL_MODULES", "SSLKEYLOGFILE",
	"GIT_CONFIG_*", "GIT_EXEC_PATH", "GIT_SSH_COMMAND", "GIT_ASKPASS",
	"SSH_ASKPASS",
	"SSH_AUTH_SOCK", "GPG_AGENT_INFO", "DBUS_SESSION_BUS_ADDRESS", "NONO_SOCKET",
	"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM",
	"CREDENTIALS_DIRECTORY", "WATCHDOG_*",
};

/* Does pattern (exact, or prefix when ending in '*') match name[0..len)? */
static bool env_match(const char *pat, const char *name, size_t len)
{
	size_t plen = strlen(pat);

	if (plen > 0 && pat[plen - 1] == '*')
		return len >= plen - 1 && memcmp(pat, name, plen - 1) == 0;
	return plen == len && memcmp(pat, name, len) == 0;
}

bool sandbox_env_is_hook(const char *name, size_t namelen)
{
	for (size_t i = 0; i < sizeof(sandbox_env_hooks) / sizeof(sandbox_env_hooks[0]); i++)
		if (env_match(sandbox_env_hooks[i], name, namelen))
			return true;
	return false;
}

bool sandbox_env_name_valid(const char *name, size_t namelen)
{
	if (namelen == 0 || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (size_t i = 0; i < namelen; i++) {
		char c = name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

struct env_buf {
	char **v;
	size_t n;
	size_t bytes;
};

/* Index of NAME in b, or -1. */
static ssize_t env_find(const struct env_buf *b, const char *name, size_t len)
{
	for (size_t i = 0; i < b->n; i++)
		if (strncmp(b->v[i], name, len) == 0 && b->v[i][len] == '=')
			return (ssize_t)i;
	return -1;
}

/* Adds the pair "name=value" (kv is the whole pair); an existing NAME is
 * replaced when `replace`, else kept (getenv() sees the first one). */
static int env_put(struct env_buf *b, const char *kv, size_t namelen, bool replace)
{
	ssize_t at = env_find(b, kv, namelen);
	size_t len = strlen(kv);
	char *dup;

	if (at >= 0 && !replace)
		return 0;

	if (b->bytes + len + 1 > SANDBOX_ENV_MAX_BYTES)
		return -E2BIG;
	if (at < 0 && b->n >= SANDBOX_ENV_MAX_VARS)
		return -E2BIG;
	dup = strdup(kv);
	if (!dup)
		return -ENOMEM;
	b->bytes += len + 1;
	if (at >= 0) {
		b->bytes -= strlen(b->v[at]) + 1;
		free(b->v[at]);
		b->v[at] = dup;
		return 0;
	}
	b->v[b->n++] = dup;
	b->v[b->n] = NULL;
	return 0;
}

static int env_pass_one(struct env_buf *b, const char *pat, char *const *from,
			char *errbuf, size_t errlen)
{
	size_t plen = strlen(pat);
	bool prefix = plen > 0 && pat[plen - 1] == '*';
	size_t namepart = prefix ? plen - 1 : plen;

	if ((namepart > 0 || !prefix) && !sandbox_env_name_valid(pat, namepart))
		return sandbox_err(errbuf, errlen, -EINVAL, "env pass \"%s\": invalid name", pat);
	for (char *const *e = from; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t len;
		int rc;

		if (!eq)
			continue;
		len = (size_t)(eq - *e);
		if (!env_match(pat, *e, len) || !sandbox_env_name_valid(*e, len))
			continue;
		if (prefix && sandbox_env_is_hook(*e, len))
			continue;
		rc = env_put(b, *e, len, false);
		if (rc < 0)
			return sandbox_err(errbuf, errlen, rc, "env pass %s", pat);
	}
	return 0;
}

int sandbox_env_build(const struct sandbox_env_spec *spec, char ***envp_out,
		      char *errbuf, size_t errlen)
{
	struct env_buf b = { 0 };
	char *const *from = spec->from ? spec->from : environ;
	int rc = 0;

	*envp_out = NULL;
	if (spec->npass > SANDBOX_ENV_MAX_VARS || spec->nset > SANDBOX_ENV_MAX_VARS)
		return sandbox_err(errbuf, errlen, -E2BIG, "env: too many entries");
	b.v = calloc(SANDBOX_ENV_MAX_VARS + 1, sizeof(char *));
	if (!b.v)
		return sandbox_err(errbuf, errlen, -ENOMEM, "env");
	for (size_t i = 0; i < spec->npass && rc == 0; i++) {
		if (!spec->pass[i])
			rc = sandbox_err(errbuf, errlen, -EINVAL, "env pass[%zu]: NULL", i);
		else
			rc = env_pass_one(&b, spec->pass[i], from, errbuf, errlen);
	}
	for (size_t i = 0; i < spec->nset && rc == 0; i++) {
		const char *kv = spec->set[i];
		const char *eq = kv ? strchr(kv, '=') : NULL;

		if (!eq || !sandbox_env_name_valid(kv, (size_t)(eq - kv)))
			rc = sandbox_err(errbuf, errlen, -EINVAL,
					 "env set[%zu]: expected NAME=value with a valid NAME", i);
		else if ((rc = env_put(&b, kv, (size_t)(eq - kv), true)) < 0)
			rc = sandbox_err(errbuf, errlen, rc, "env set[%zu]", i);
	}
	if (rc < 0) {
		sandbox_env_free(b.v);
		return rc;
	}
	*envp_out = b.v;
	return 0;
}

void sandbox_env_free(char **envp)
{
	if (!envp)
		return;
	for (char **e = envp; *e; e++)
		free(*e);
	free(envp);
}
