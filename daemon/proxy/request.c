/*
 * Building the upstream request for one HTTP exchange: which upstream
 * (intercepted CONNECT host, reverse route, or absolute-form plain http),
 * the checks that gate it (Host must match the CONNECT target, the route's
 * phantom token, no secret over cleartext, allow list), and the rewritten
 * head: hop-by-hop fields and the client's copies of injected fields
 * dropped, the injected value rendered in by the vault callback.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "proxy-int.h"

bool
http_hdr_is(const struct http1_header *h, const char *name)
{
	return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

/* Drop from the forwarded request: hop-by-hop and proxy headers. */
static bool
hop_by_hop(const struct http1_header *h)
{
	static const char *const names[] = {
		"connection", "keep-alive", "proxy-connection", "proxy-authorization",
		"te", "upgrade", "trailer",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (http_hdr_is(h, names[i]))
			return true;
	return false;
}

/* Render tmpl for the session owner and append "name: value\r\n". */
static int
add_injected(struct conn *c, const char *name, const char *tmpl)
{
	struct ploop *p = c->proxy;
	char buf[PROXY_RENDER_MAX];
	size_t len = 0;
	int r = -ENOENT;

	if (p->cfg.render)
		r = p->cfg.render(p->cfg.render_ctx, c->l->rules.owner, tmpl, buf,
				  sizeof(buf), &len);
	if (r == 0 && len >= sizeof(buf))
		r = -E2BIG;
	for (size_t i = 0; r == 0 && i < len; i++)
		if (buf[i] != '\t' && ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f))
			r = -EINVAL; /* a CR/LF in a secret must not split the head */
	if (r == 0) {
		evbuffer_add(c->x->head, name, strlen(name));
		evbuffer_add(c->x->head, ": ", 2);
		evbuffer_add(c->x->head, buf, len);
		evbuffer_add(c->x->head, "\r\n", 2);
	}
	/* a successful render wrote len bytes and a NUL; a failed one, who knows */
	OPENSSL_cleanse(buf, r == 0 && len < sizeof(buf) ? len + 1 : sizeof(buf));
	return r;
}

/* "https://host[:port][/base]" */
static int
parse_route_url(const char *url, char *host, size_t hostlen, uint16_t *port,
		const char **base)
{
	const char *a = url + 8, *e = a + strcspn(a, "/?#");
	const char *colon = NULL;
	bool is_ip;

	for (const char *q = a; q < e; q++)
		if (*q == ':')
			colon = q;
	if (colon && a[0] == '[' && colon < e && colon[-1] != ']')
		colon = NULL;
	*port = 443;
	if (colon) {
		unsigned long v = 0;
		for (const char *q = colon + 1; q < e; q++) {
			if (*q < '0' || *q > '9')
				return -EINVAL;
			v = v * 10 + (unsigned long)(*q - '0');
			if (v > 65535)
				return -EINVAL;
		}
		if (v == 0)
			return -EINVAL;
		*port = (uint16_t)v;
	}
	*base = *e == '/' ? e : "";
	return proxy_host_norm(a, (size_t)((colon ? colon : e) - a), host, hostlen,
			       &is_ip);
}

static void
set_audit_path(struct exch *x, const char *t, size_t n)
{
	size_t q = 0;

	while (q < n && t[q] != '?' && t[q] != '#')
		q++;
	if (q >= sizeof(x->path))
		q = sizeof(x->path) - 1;
	memcpy(x->path, t, q);
	x->path[q] = '\0';
}

static bool
host_matches(struct conn *c, const struct http1_header *h)
{
	char want[PROXY_HOST_MAX + 8];
	size_t hl = strlen(c->host);

	if (h->value_len == hl && strncasecmp(h->value, c->host, hl) == 0)
		return true;
	snprintf(want, sizeof(want), "%s:%u", c->host, c->port);
	return h->value_len == strlen(want) &&
	       strncasecmp(h->value, want, h->value_len) == 0;
}

/*
 * Build the upstream head for x->m. Returns 0, or an HTTP status to refuse
 * with (reason set).
 */
int
http_prepare(struct conn *c, const char **reason)
{
	struct exch *x = c->x;
	struct http1_msg *m = &x->m;
	const struct rules *rules = &c->l->rules;
	const struct proxy_route *route = NULL;
	const char *path = m->target, *base = "";
	size_t path_len = m->target_len;
	bool rewrite_host = false;

	if (c->intercept) {
		snprintf(x->host, sizeof(x->host), "%s", c->host);
		x->port = c->port;
		x->tls = true;
		if (m->target[0] != '/')
			return *reason = "request target must be origin-form", 400;
		if (m->host_idx < 0 || !host_matches(c, &m->hdr[m->host_idx]))
			return *reason = "Host header does not match the CONNECT target", 400;
	} else if (m->target[0] == '/') {
		size_t rest = 0;
		route = rules_route(rules, m->target, m->target_len, &rest);
		if (route == NULL)
			return *reason = "no such route", 404;
		int n = 0;
		bool ok = false;
		for (size_t i = 0; i < m->n_hdr; i++) {
			if (!http_hdr_is(&m->hdr[i], route->header))
				continue;
			size_t pl = strlen(route->phantom);
			ok = m->hdr[i].value_len == pl &&
			     CRYPTO_memcmp(m->hdr[i].value, route->phantom, pl) == 0;
			n++;
		}
		if (n != 1 || !ok)
			return *reason = "missing or wrong route token", 403;
		if (parse_route_url(route->upstream, x->host, sizeof(x->host),
				    &x->port, &base) < 0)
			return *reason = "invalid route upstream", 502;
		x->tls = true;
		path = m->target + rest;
		path_len = m->target_len - rest;
		rewrite_host = true;
	} else if (m->target_len > 7 && strncasecmp(m->target, "http://", 7) == 0) {
		bool is_ip;
		if (!proxy_conn_auth_ok(c, m))
			return *reason = "missing or wrong proxy credentials", 407;
		const char *a = m->target + 7, *end = m->target + m->target_len;
		const char *e = a;
		while (e < end && *e != '/' && *e != '?')
			e++;
		char auth[PROXY_HOST_MAX + 8];
		size_t al = (size_t)(e - a);
		if (al == 0 || al >= sizeof(auth) || memchr(a, '@', al))
			return *reason = "bad request target", 400;
		memcpy(auth, a, al);
		auth[al] = '\0';
		if (memchr(auth, ':', al) == NULL || auth[al - 1] == ']') {
			if (al + 3 >= sizeof(auth))
				return *reason = "bad request target", 400;
			memcpy(auth + al, ":80", 4);
			al += 3;
		}
		if (proxy_conn_parse_authority(auth, al, x->host, sizeof(x->host),
					 &x->port, &is_ip) < 0)
			return *reason = "bad request target", 400;
		if (rules_has_inject(rules, x->host))
			return *reason = "refusing plain http to a host with secrets", 403;
		if (!rules_allowed(rules, x->host, x->port))
			return *reason = "host is not in the allow list", 403;
		x->tls = false;
		path = e;
		path_len = (size_t)(end - e);
		rewrite_host = true;
	} else {
		return *reason = "bad request target", 400;
	}
	set_audit_path(x, path, path_len);

	/*
	 * Room for the whole head in one chain up front: an evbuffer that grows
	 * copies data into new chains and frees the old ones unwiped, and this
	 * one will hold the rendered secret (http.c wipes it in place).
	 */
	size_t n_secret = route ? 1 : 0;
	for (size_t j = 0; c->intercept && j < rules->n_inject; j++)
		n_secret += strcasecmp(rules->inject[j].host, x->host) == 0;
	x->head = evbuffer_new();
	if (x->head == NULL ||
	    evbuffer_expand(x->head, m->head_len + strlen(base) + 2 * PROXY_HOST_MAX + 256 +
					     n_secret * (PROXY_RENDER_MAX + 128)) < 0)
		return *reason = "out of memory", 502;
	if (path_len == 0 || path[0] != '/')
		evbuffer_add_printf(x->head, "%s %s/%.*s HTTP/1.1\r\n", x->method, base,
				    (int)path_len, path);
	else
		evbuffer_add_printf(x->head, "%s %s%.*s HTTP/1.1\r\n", x->method, base,
				    (int)path_len, path);
	int ci = http1_find(m, "connection");
	if (ci >= 0) {
		const char *cv = m->hdr[ci].value;
		size_t cl = m->hdr[ci].value_len;
		if (http1_list_has(cv, cl, "content-length") ||
		    http1_list_has(cv, cl, "transfer-encoding") ||
		    http1_list_has(cv, cl, "host"))
			return *reason = "Connection names a framing header", 400;
	}
	for (size_t i = 0; i < m->n_hdr; i++) {
		const struct http1_header *h = &m->hdr[i];
		bool drop = hop_by_hop(h) || (rewrite_host && http_hdr_is(h, "host"));
		if (!drop && ci >= 0 && h->name_len < 64) {
			/* fields the client named in Connection are hop-by-hop too */
			char name[64];
			memcpy(name, h->name, h->name_len);
			name[h->name_len] = '\0';
			drop = http1_list_has(m->hdr[ci].value, m->hdr[ci].value_len, name);
		}
		for (size_t j = 0; !drop && c->intercept && j < rules->n_inject; j++)
			drop = strcasecmp(rules->inject[j].host, x->host) == 0 &&
			       http_hdr_is(h, rules->inject[j].header);
		if (!drop && route)
			drop = http_hdr_is(h, route->header);
		if (drop)
			continue;
		evbuffer_add(x->head, h->name, h->name_len);
		evbuffer_add(x->head, ": ", 2);
		evbuffer_add(x->head, h->value, h->value_len);
		evbuffer_add(x->head, "\r\n", 2);
	}
	if (rewrite_host) {
		bool dflt = x->port == (x->tls ? 443 : 80);
		if (dflt)
			evbuffer_add_printf(x->head, "Host: %s\r\n", x->host);
		else
			evbuffer_add_printf(x->head, "Host: %s:%u\r\n", x->host, x->port);
	}
	if (c->intercept) {
		for (size_t j = 0; j < rules->n_inject; j++) {
			if (strcasecmp(rules->inject[j].host, x->host) != 0)
				continue;
			if (!x->secret[0])
				proxy_secret_name(rules->inject[j].value, x->secret,
						  sizeof(x->secret));
			if (add_injected(c, rules->inject[j].header, rules->inject[j].value) < 0)
				return *reason = "cannot render the injected header", 502;
		}
	} else if (route) {
		proxy_secret_name(route->value, x->secret, sizeof(x->secret));
		if (add_injected(c, route->header, route->value) < 0)
			return *reason = "cannot render the injected header", 502;
	}
	int u = http1_find(m, "upgrade");
	/* only websocket: an h2c upgrade would turn the rest of the connection
	 * into frames this proxy does not parse */
	x->upgrade = m->upgrade && u >= 0 && m->body == HTTP1_BODY_NONE &&
		     http1_list_has(m->hdr[u].value, m->hdr[u].value_len, "websocket");
	if (x->upgrade) {
		evbuffer_add_printf(x->head, "Connection: upgrade\r\nUpgrade: ");
		evbuffer_add(x->head, m->hdr[u].value, m->hdr[u].value_len);
		evbuffer_add(x->head, "\r\n", 2);
	}
	evbuffer_add(x->head, "\r\n", 2);
	return 0;
}
