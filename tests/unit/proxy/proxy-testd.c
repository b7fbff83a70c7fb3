/*
 * proxy-testd: runs the proxy engine alone for the integration tests and
 * the benchmark. Usage: proxy-testd CONFIG.json
 *
 * {"upstream_ca": "ca.pem", "ca_out": "proxy-ca.pem", "audit": "audit.jsonl",
 *  "header_timeout_ms": 500, "idle_timeout_ms": 4000, "loops": 2, "overrides": [["api.test:443", "127.0.0.1:4443"]],
 *  "listeners": [{"token": "...", "session": "s1", "allow_private": true,
 *     "allow": [["api.test", 443], ["*.example.test", 0]],
 *     "inject": [["api.test", "Authorization", "Bearer ${secret:tok}"]],
 *     "routes": [["openai", "https://api.test", "Authorization",
 *                 "Bearer ${secret:tok}", "PHANTOM"]]}]}
 *
 * Each listener binds 127.0.0.1:0; the ports are printed on one stdout line
 * once everything is ready. render() is a fake vault that expands
 * ${secret:NAME} to "CANARY-NAME-7d1f" so the tests can spot the secret.
 * SIGTERM/SIGINT: frees everything and exits 0 (for leak checkers).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "log.h"
#include "proxy.h"

static FILE *audit_fp;

static int
fake_render(void *ctx, uid_t owner, const char *tmpl, char *out, size_t outlen,
	    size_t *len)
{
	const char *p = strstr(tmpl, "${secret:");
	const char *e = p ? strchr(p, '}') : NULL;
	int n;

	if (p == NULL || e == NULL)
		return -EINVAL;
	if (strncmp(p + 9, "missing}", 8) == 0)
		return -ENOENT;
	n = snprintf(out, outlen, "%.*sCANARY-%.*s-7d1f%s", (int)(p - tmpl), tmpl,
		     (int)(e - p - 9), p + 9, e + 1);
	if (n < 0 || (size_t)n >= outlen)
		return -E2BIG;
	*len = (size_t)n;
	return 0;
}

static void
audit_cb(void *ctx, const struct proxy_audit_record *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "session", json_object_new_string(r->session));
	json_object_object_add(o, "method", json_object_new_string(r->method));
	json_object_object_add(o, "host", json_object_new_string(r->host));
	json_object_object_add(o, "port", json_object_new_int(r->port));
	json_object_object_add(o, "path", json_object_new_string(r->path));
	json_object_object_add(o, "status", json_object_new_int(r->status));
	json_object_object_add(o, "bytes_in", json_object_new_int64((int64_t)r->bytes_in));
	json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t)r->bytes_out));
	json_object_object_add(o, "secret", r->secret ? json_object_new_string(r->secret) : NULL);
	json_object_object_add(o, "reason", r->reason ? json_object_new_string(r->reason) : NULL);
	json_object_object_add(o, "latency_us", json_object_new_int64((int64_t)r->latency_us));
	if (audit_fp) {
		fprintf(audit_fp, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		fflush(audit_fp);
	}
	json_object_put(o);
}

static const char *
str_at(struct json_object *arr, size_t i)
{
	return json_object_get_string(json_object_array_get_idx(arr, i));
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

static int
bind_local(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 1024) < 0) {
		perror("bind");
		exit(1);
	}
	return fd;
}

static int
port_of(int fd)
{
	struct sockaddr_in sa;
	socklen_t l = sizeof(sa);

	getsockname(fd, (struct sockaddr *)&sa, &l);
	return ntohs(sa.sin_port);
}

int
main(int argc, char **argv)
{
	struct json_object *cfg, *v, *ls;
	struct proxy_config pc = {0};
	struct proxy_override ov[64];
	struct proxy_listener *pl[16];
	size_t nl = 0;

	if (argc != 2 || (cfg = json_object_from_file(argv[1])) == NULL) {
		fprintf(stderr, "usage: proxy-testd CONFIG.json\n");
		return 2;
	}
	log_init("proxy-testd", getenv("PROXY_TESTD_DEBUG") ? LOG_LEVEL_DEBUG
							    : LOG_LEVEL_WARN);
	signal(SIGPIPE, SIG_IGN);
	if (json_object_object_get_ex(cfg, "audit", &v))
		audit_fp = fopen(json_object_get_string(v), "a");
	if (json_object_object_get_ex(cfg, "upstream_ca", &v))
		pc.upstream_ca_file = json_object_get_string(v);
	if (json_object_object_get_ex(cfg, "header_timeout_ms", &v))
		pc.header_timeout_ms = (unsigned)json_object_get_int(v);
	if (json_object_object_get_ex(cfg, "idle_timeout_ms", &v))
		pc.idle_timeout_ms = (unsigned)json_object_get_int(v);
	if (json_object_object_get_ex(cfg, "loops", &v))
		pc.loops = (unsigned)json_object_get_int(v);
	if (json_object_object_get_ex(cfg, "overrides", &v)) {
		for (size_t i = 0; i < json_object_array_length(v) && i < 64; i++) {
			struct json_object *e = json_object_array_get_idx(v, i);
			ov[i].name_port = str_at(e, 0);
			ov[i].addr_port = str_at(e, 1);
			pc.n_overrides++;
		}
		pc.overrides = ov;
	}
	pc.audit = audit_cb;
	pc.render = fake_render;

	struct event_base *base = event_base_new();
	struct proxy *p = proxy_new(base, &pc);
	if (p == NULL)
		return 1;
	if (json_object_object_get_ex(cfg, "ca_out", &v)) {
		FILE *f = fopen(json_object_get_string(v), "w");
		if (f == NULL)
			return 1;
		fputs(proxy_ca_pem(p), f);
		fclose(f);
	}
	if (!json_object_object_get_ex(cfg, "listeners", &ls))
		return 2;
	for (size_t li = 0; li < json_object_array_length(ls) && nl < 16; li++) {
		struct json_object *l = json_object_array_get_idx(ls, li), *a;
		struct proxy_rules r = {0};
		struct proxy_allow allow[64];
		struct proxy_inject inj[64];
		struct proxy_route rt[64];

		r.session_id = json_object_object_get_ex(l, "session", &a)
				       ? json_object_get_string(a) : "test";
		r.owner = getuid();
		r.allow_private = json_object_object_get_ex(l, "allow_private", &a) &&
				  json_object_get_boolean(a);
		if (json_object_object_get_ex(l, "allow", &a))
			for (size_t i = 0; i < json_object_array_length(a) && i < 64; i++) {
				struct json_object *e = json_object_array_get_idx(a, i);
				allow[i].host = str_at(e, 0);
				allow[i].port = (uint16_t)json_object_get_int(
					json_object_array_get_idx(e, 1));
				r.n_allow++;
			}
		if (json_object_object_get_ex(l, "inject", &a))
			for (size_t i = 0; i < json_object_array_length(a) && i < 64; i++) {
				struct json_object *e = json_object_array_get_idx(a, i);
				inj[i].host = str_at(e, 0);
				inj[i].header = str_at(e, 1);
				inj[i].value = str_at(e, 2);
				r.n_inject++;
			}
		if (json_object_object_get_ex(l, "routes", &a))
			for (size_t i = 0; i < json_object_array_length(a) && i < 64; i++) {
				struct json_object *e = json_object_array_get_idx(a, i);
				rt[i].name = str_at(e, 0);
				rt[i].upstream = str_at(e, 1);
				rt[i].header = str_at(e, 2);
				rt[i].value = str_at(e, 3);
				rt[i].phantom = str_at(e, 4);
				r.n_routes++;
			}
		r.allow = allow;
		r.inject = inj;
		r.routes = rt;
		int fd = bind_local();
		int port = port_of(fd);
		json_object_object_get_ex(l, "token", &a);
		if (proxy_listener_add(p, fd, &r, json_object_get_string(a), &pl[nl]) < 0)
			return 1;
		printf("%s%d", nl ? " " : "", port);
		nl++;
	}
	printf("\n");
	fflush(stdout);

	struct event *sterm = evsignal_new(base, SIGTERM, stop_cb, base);
	struct event *sint = evsignal_new(base, SIGINT, stop_cb, base);
	evsignal_add(sterm, NULL);
	evsignal_add(sint, NULL);
	event_base_dispatch(base);

	for (size_t i = 0; i < nl; i++)
		proxy_listener_free(pl[i]);
	proxy_free(p);
	event_free(sterm);
	event_free(sint);
	event_base_free(base);
	json_object_put(cfg);
	if (audit_fp)
		fclose(audit_fp);
	return 0;
}
