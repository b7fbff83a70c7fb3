/* Per-session proxy listener, token, CA files and environment. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "policy.h"
#include "proxy.h"
#include "session-proxy.h"
#include "session.h"

#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

static int env_add(struct session_proxy_env *e, const char *name, const char *value)
{
	char **v = realloc(e->vars, (e->n + 2) * sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	e->vars = v;
	if (asprintf(&v[e->n], "%s=%s", name, value) < 0)
		return -ENOMEM;
	v[++e->n] = NULL;
	return 0;
}

void session_proxy_env_free(struct session_proxy_env *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->vars[i]);
	free(e->vars);
	e->vars = NULL;
	e->n = 0;
}

static int random_hex(char *out, size_t bytes)
{
	unsigned char r[64];

	if (bytes > sizeof(r) || getrandom(r, bytes, 0) != (ssize_t)bytes)
		return -EIO;
	for (size_t i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/* Write a file into the session's TMPDIR, owned by the worker's user. */
static int write_session_file(const struct session *s, const char *name, const char *a,
			      size_t alen, const char *b, char **path)
{
	int fd;

	if (asprintf(path, "%s/%s", s->tmpdir, name) < 0) {
		*path = NULL;
		return -ENOMEM;
	}
	fd = open(*path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if ((alen > 0 && write(fd, a, alen) != (ssize_t)alen) ||
	    write(fd, b, strlen(b)) != (ssize_t)strlen(b)) {
		close(fd);
		return -EIO;
	}
	if (geteuid() == 0 && s->uid != 0 && fchown(fd, s->uid, s->gid) < 0)
		log_warn("chown %s", *path);
	close(fd);
	return 0;
}

/*
 * The system roots, read once and again only when the file changes (every
 * session needs them, and re-reading ~200 KB per start showed in the
 * benchmark). NULL with *len 0 when they cannot be read.
 */
static const char *system_roots(size_t *len)
{
	static char *roots;
	static size_t rlen;
	static struct stat seen;
	struct stat st;
	char *buf;
	ssize_t n;
	int fd;

	*len = 0;
	if (stat(SYSTEM_CA_BUNDLE, &st) < 0) {
		log_warn("%s: the worker's CA bundle has nonod's CA only", SYSTEM_CA_BUNDLE);
		return NULL;
	}
	if (roots != NULL && st.st_dev == seen.st_dev && st.st_ino == seen.st_ino &&
	    st.st_size == seen.st_size && st.st_mtim.tv_sec == seen.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == seen.st_mtim.tv_nsec) {
		*len = rlen;
		return roots;
	}
	fd = open(SYSTEM_CA_BUNDLE, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > 16 << 20 ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		if (fd >= 0)
			close(fd);
		log_warn("%s: the worker's CA bundle has nonod's CA only", SYSTEM_CA_BUNDLE);
		return NULL;
	}
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != (ssize_t)st.st_size) {
		free(buf);
		log_warnx("%s: short read; the worker's CA bundle has nonod's CA only",
			  SYSTEM_CA_BUNDLE);
		return NULL;
	}
	free(roots);
	roots = buf;
	rlen = (size_t)n;
	seen = st;
	*len = rlen;
	return roots;
}

/* The system roots plus nonod's CA: tools that trust the bundle trust interception. */
static int write_ca_files(const struct session *s, struct session_proxy_env *env)
{
	const char *ca = proxy_ca_pem(nonod->proxy);
	char *bundle = NULL, *own = NULL;
	size_t len;
	const char *roots = system_roots(&len);
	int rc;

	rc = write_session_file(s, "nono-ca-bundle.pem", roots, len, ca, &bundle);
	if (rc == 0)
		rc = write_session_file(s, "nono-ca.pem", NULL, 0, ca, &own);
	if (rc == 0 &&
	    (env_add(env, "SSL_CERT_FILE", bundle) < 0 || env_add(env, "REQUESTS_CA_BUNDLE", bundle) < 0 ||
	     env_add(env, "CURL_CA_BUNDLE", bundle) < 0 || env_add(env, "GIT_SSL_CAINFO", bundle) < 0 ||
	     env_add(env, "NODE_EXTRA_CA_CERTS", own) < 0))
		rc = -ENOMEM;
	free(bundle);
	free(own);
	return rc;
}

/* "Bearer ${secret:x}" -> "Bearer nono-phantom-<hex>": what the SDK will send. */
static char *phantom_of(const char *tmpl, const char *token)
{
	size_t cap = strlen(tmpl) + 64 * 4 + 1, o = 0;
	char *out = malloc(cap);

	if (out == NULL)
		return NULL;
	for (const char *p = tmpl; *p != '\0';) {
		if (strncmp(p, "${secret:", 9) == 0 && strchr(p, '}') != NULL) {
			o += (size_t)snprintf(out + o, cap - o, "nono-phantom-%s", token);
			p = strchr(p, '}') + 1;
		} else if (o + 1 < cap) {
			out[o++] = *p++;
		} else {
			break;
		}
	}
	out[o] = '\0';
	return out;
}

int session_proxy_start(struct session *s, const struct policy *p, int listen_fd,
			struct session_proxy_env *env, struct rpc_error *err)
{
	struct proxy_allow *allow = calloc(p->n_allow + 1, sizeof(*allow));
	struct proxy_inject *inject = calloc(p->n_inject + 1, sizeof(*inject));
	struct proxy_route *routes = calloc(p->n_routes + 1, sizeof(*routes));
	char **hosts = calloc(p->n_allow + 1, sizeof(*hosts));
	char **phantoms = calloc(p->n_routes + 1, sizeof(*phantoms));
	char token[65], url[160];
	struct proxy_rules rules = {
		.session_id = s->id, .owner = s->uid, .allow = allow, .n_allow = p->n_allow,
		.inject = inject, .n_inject = p->n_inject, .routes = routes,
		.n_routes = p->n_routes, .allow_private = p->allow_private,
	};
	int rc = 0;

	if (nonod_proxy() == NULL) {
		close(listen_fd);
		rc = rpc_error_set(err, NONO_E_BACKEND_UNAVAILABLE, "policy.network",
				   "the proxy is not running, so a session with network rules cannot start");
		goto out;
	}
	if (allow == NULL || inject == NULL || routes == NULL || hosts == NULL || phantoms == NULL ||
	    random_hex(token, 32) < 0) {
		close(listen_fd);
		rc = rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->n_allow; i++) {
		if (asprintf(&hosts[i], "%s%s", p->allow[i].wildcard ? "*." : "", p->allow[i].host) < 0) {
			hosts[i] = NULL;
			close(listen_fd);
			rc = rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
			goto out;
		}
		allow[i] = (struct proxy_allow){ .host = hosts[i], .port = p->allow[i].port };
	}
	for (size_t i = 0; i < p->n_inject; i++) {
		if (p->inject[i].wildcard) {
			close(listen_fd);
			rc = rpc_error_set(err, NONO_E_POLICY_INVALID, "network.inject",
					   "injection into *.%s: the proxy injects for exact host names only",
					   p->inject[i].host);
			goto out;
		}
		inject[i] = (struct proxy_inject){ .host = p->inject[i].host,
						   .header = p->inject[i].header,
						   .value = p->inject[i].value };
	}
	for (size_t i = 0; i < p->n_routes; i++) {
		const struct policy_route *r = &p->routes[i];
		char ph[33];

		if (r->header != NULL && (random_hex(ph, 16) < 0 || (phantoms[i] = phantom_of(r->value, ph)) == NULL)) {
			close(listen_fd);
			rc = rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
			goto out;
		}
		routes[i] = (struct proxy_route){ .name = r->name, .upstream = r->upstream,
						  .header = r->header, .value = r->value,
						  .phantom = phantoms[i] };
	}
	rc = proxy_listener_add(nonod->proxy, listen_fd, &rules, token, &s->proxy_listener);
	if (rc < 0) {
		rc = rpc_error_set(err, NONO_E_INTERNAL, "", "proxy listener: %s", strerror(-rc));
		goto out;
	}

	snprintf(url, sizeof(url), "http://nono:%s@127.0.0.1:%u", token, (unsigned)s->proxy_port);
	if (env_add(env, "HTTP_PROXY", url) < 0 || env_add(env, "HTTPS_PROXY", url) < 0 ||
	    env_add(env, "ALL_PROXY", url) < 0 || env_add(env, "http_proxy", url) < 0 ||
	    env_add(env, "https_proxy", url) < 0 || env_add(env, "all_proxy", url) < 0 ||
	    env_add(env, "NODE_USE_ENV_PROXY", "1") < 0 || write_ca_files(s, env) < 0) {
		rc = rpc_error_set(err, NONO_E_INTERNAL, "", "cannot set up the worker's proxy environment");
		goto out;
	}
	for (size_t i = 0; i < p->n_routes; i++) {
		const struct policy_route *r = &p->routes[i];
		size_t el = r->env != NULL ? strlen(r->env) : 0;

		if (r->env == NULL)
			continue;
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/%s", (unsigned)s->proxy_port, r->name);
		if (env_add(env, r->env, url) < 0) {
			rc = rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
			goto out;
		}
		/* OPENAI_BASE_URL -> OPENAI_API_KEY gets the phantom the proxy swaps for the secret. */
		if (phantoms[i] != NULL && el > 9 && strcmp(r->env + el - 9, "_BASE_URL") == 0) {
			char key[256];
			const char *val = strrchr(phantoms[i], ' ');

			snprintf(key, sizeof(key), "%.*s_API_KEY", (int)(el - 9), r->env);
			if (env_add(env, key, val != NULL ? val + 1 : phantoms[i]) < 0) {
				rc = rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
				goto out;
			}
		}
	}
out:
	explicit_bzero(token, sizeof(token));
	explicit_bzero(url, sizeof(url));
	for (size_t i = 0; i < p->n_allow && hosts != NULL; i++)
		free(hosts[i]);
	for (size_t i = 0; i < p->n_routes && phantoms != NULL; i++)
		free(phantoms[i]);
	free(hosts);
	free(phantoms);
	free(allow);
	free(inject);
	free(routes);
	if (rc < 0)
		session_proxy_stop(s);
	return rc;
}

void session_proxy_stop(struct session *s)
{
	if (s->proxy_listener != NULL && nonod->proxy != NULL)
		proxy_listener_free(s->proxy_listener);
	s->proxy_listener = NULL;
}
