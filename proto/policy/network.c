/*
 * The network section: allow ("host:port", "*.suffix:port"), inject
 * (header templates for allowed hosts) and routes (reverse-proxy upstreams).
 * Cross-checks: an inject host must be covered by an allow entry; one header
 * per host; route names and route env variables are unique and do not clash
 * with env.pass/env.set (validated before this section).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static int allow_cmp(const void *a, const void *b)
{
	const struct policy_net_allow *x = a, *y = b;
	int r = strcmp(x->host, y->host);

	if (r)
		return r;
	if (x->wildcard != y->wildcard)
		return x->wildcard ? 1 : -1;
	return (int)x->port - (int)y->port;
}

static int inject_cmp(const void *a, const void *b)
{
	const struct policy_inject *x = a, *y = b;
	int r = strcmp(x->host, y->host);

	if (r)
		return r;
	if (x->wildcard != y->wildcard)
		return x->wildcard ? 1 : -1;
	return strcasecmp(x->header, y->header);
}

static int route_cmp(const void *a, const void *b)
{
	return strcmp(((const struct policy_route *)a)->name,
		      ((const struct policy_route *)b)->name);
}

/* Each element of arr is checked by fn with the path "<key>[i]". */
static int each(struct policy_vctx *c, struct json_object *arr,
		int (*fn)(struct policy_vctx *, struct json_object *, size_t))
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		size_t mark = policy_vpush_idx(c, i);
		int r = fn(c, json_object_array_get_idx(arr, i), i);

		if (r < 0)
			return r;
		policy_vpop(c, mark);
	}
	return 0;
}

static int allow_one(struct policy_vctx *c, struct json_object *v, size_t i)
{
	struct policy_net_allow *a = &c->p->allow[c->p->n_allow];
	const char *s, *colon, *msg;
	int r;

	if ((r = policy_vtype(c, v, json_type_string)) < 0)
		return r;
	s = json_object_get_string(v);
	colon = strrchr(s, ':');
	if (!colon)
		return policy_vfail(c, v, "expected \"host:port\"");
	if ((msg = policy_check_port(colon + 1, strlen(colon + 1), &a->port)) ||
	    (msg = policy_check_host(s, (size_t)(colon - s), true, &a->host, &a->wildcard)))
		return policy_vfail(c, v, "%s", msg);
	c->p->n_allow++;
	return 0;
}

/* A required string member, checked by check (may be NULL); *out borrowed. */
static int str_member(struct policy_vctx *c, struct json_object *obj, const char *key,
		      bool required, const char *(*check)(const char *), const char **out)
{
	struct json_object *v;
	size_t mark;
	const char *msg;
	int r;

	*out = NULL;
	if (!json_object_object_get_ex(obj, key, &v)) {
		if (required)
			return policy_vfail(c, obj, "missing key \"%s\"", key);
		return 0;
	}
	mark = policy_vpush_key(c, key);
	if ((r = policy_vtype(c, v, json_type_string)) < 0)
		return r;
	if (check && (msg = check(json_object_get_string(v))))
		return policy_vfail(c, v, "%s", msg);
	*out = json_object_get_string(v);
	policy_vpop(c, mark);
	return 0;
}

static int inject_one(struct policy_vctx *c, struct json_object *v, size_t i)
{
	struct policy *p = c->p;
	struct policy_inject *in = &p->inject[p->n_inject];
	const char *host, *header, *value, *msg;
	struct json_object *hv;
	bool covered = false;
	int r;

	if ((r = policy_vtype(c, v, json_type_object)) < 0 ||
	    (r = policy_vkeys(c, v, "network.inject")) < 0 ||
	    (r = str_member(c, v, "host", true, NULL, &host)) < 0 ||
	    (r = str_member(c, v, "header", true, policy_check_header, &header)) < 0 ||
	    (r = str_member(c, v, "value", true, policy_check_template, &value)) < 0)
		return r;
	json_object_object_get_ex(v, "host", &hv);
	policy_vpush_key(c, "host");
	if ((msg = policy_check_host(host, strlen(host), true, &in->host, &in->wildcard)))
		return policy_vfail(c, hv, "%s", msg);
	p->n_inject++; /* owns in->host from here, for policy_free */
	for (size_t j = 0; j < p->n_allow && !covered; j++)
		covered = policy_host_covered(in->host, in->wildcard, &p->allow[j]);
	if (!covered)
		return policy_vfail(c, hv, "host is not covered by network.allow");
	for (size_t j = 0; j + 1 < p->n_inject; j++)
		if (!strcmp(p->inject[j].host, in->host) && p->inject[j].wildcard == in->wildcard &&
		    !strcasecmp(p->inject[j].header, header))
			return policy_vfail(c, hv, "a second rule for the same host and header");
	in->header = strdup(header);
	in->value = strdup(value);
	if (!in->header || !in->value)
		return policy_oom(c->err);
	return 0;
}

static bool env_taken(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_env_pass; i++)
		if (!strcmp(p->env_pass[i], name))
			return true;
	for (size_t i = 0; i < p->n_env_set; i++)
		if (!strcmp(p->env_set[i].name, name))
			return true;
	for (size_t i = 0; i < p->n_routes; i++)
		if (p->routes[i].env && !strcmp(p->routes[i].env, name))
			return true;
	return false;
}

static int route_one(struct policy_vctx *c, struct json_object *v, size_t i)
{
	struct policy *p = c->p;
	struct policy_route *rt = &p->routes[p->n_routes];
	const char *name, *up, *header, *value, *env, *msg;
	struct json_object *field;
	int r;

	if ((r = policy_vtype(c, v, json_type_object)) < 0 ||
	    (r = policy_vkeys(c, v, "network.routes")) < 0 ||
	    (r = str_member(c, v, "name", true, policy_check_route_name, &name)) < 0 ||
	    (r = str_member(c, v, "upstream", true, NULL, &up)) < 0 ||
	    (r = str_member(c, v, "header", false, policy_check_header, &header)) < 0 ||
	    (r = str_member(c, v, "value", false, policy_check_template, &value)) < 0 ||
	    (r = str_member(c, v, "env", false, policy_check_env_name, &env)) < 0)
		return r;
	for (size_t j = 0; j < p->n_routes; j++) {
		if (!strcmp(p->routes[j].name, name)) {
			json_object_object_get_ex(v, "name", &field);
			policy_vpush_key(c, "name");
			return policy_vfail(c, field, "duplicate route name");
		}
	}
	if (!header != !value) {
		policy_vpush_key(c, header ? "value" : "header");
		return policy_vfail(c, v, "header and value go together");
	}
	if (env && (policy_env_reserved(env) || env_taken(p, env))) {
		json_object_object_get_ex(v, "env", &field);
		policy_vpush_key(c, "env");
		return policy_vfail(c, field, policy_env_reserved(env) ?
				    "this variable is set by nono" :
				    "variable already set by env or another route");
	}
	p->n_routes++; /* owns its strings from here, for policy_free */
	if ((msg = policy_check_upstream(up, &rt->upstream_host, &rt->upstream_port,
					 &rt->upstream_path))) {
		json_object_object_get_ex(v, "upstream", &field);
		policy_vpush_key(c, "upstream");
		return policy_vfail(c, field, "%s", msg);
	}
	rt->name = strdup(name);
	rt->upstream = strdup(up);
	rt->header = header ? strdup(header) : NULL;
	rt->value = value ? strdup(value) : NULL;
	rt->env = env ? strdup(env) : NULL;
	if (!rt->name || !rt->upstream || (header && !rt->header) || (value && !rt->value) ||
	    (env && !rt->env))
		return policy_oom(c->err);
	return 0;
}

/* Allocate room for n elements of size sz into *v (at least one). */
static int room(struct policy_vctx *c, void **v, struct json_object *arr, size_t sz)
{
	size_t n = arr ? json_object_array_length(arr) : 0;

	*v = calloc(n ? n : 1, sz);
	return *v ? 0 : policy_oom(c->err);
}

static int section_list(struct policy_vctx *c, struct json_object *net, const char *key,
			struct json_object **arr)
{
	size_t mark;
	int r;

	*arr = NULL;
	if (!json_object_object_get_ex(net, key, arr))
		return 0;
	mark = policy_vpush_key(c, key);
	if ((r = policy_vtype(c, *arr, json_type_array)) < 0)
		return r;
	policy_vpop(c, mark);
	return 0;
}

int policy_validate_network(struct policy_vctx *c, struct json_object *net)
{
	struct policy *p = c->p;
	struct json_object *allow, *inject, *routes, *ap;
	size_t mark;
	int r;

	if ((r = policy_vkeys(c, net, "network")) < 0 ||
	    (r = section_list(c, net, "allow", &allow)) < 0 ||
	    (r = section_list(c, net, "inject", &inject)) < 0 ||
	    (r = section_list(c, net, "routes", &routes)) < 0 ||
	    (r = room(c, (void **)&p->allow, allow, sizeof(*p->allow))) < 0 ||
	    (r = room(c, (void **)&p->inject, inject, sizeof(*p->inject))) < 0 ||
	    (r = room(c, (void **)&p->routes, routes, sizeof(*p->routes))) < 0)
		return r;
	if (json_object_object_get_ex(net, "allow_private", &ap)) {
		mark = policy_vpush_key(c, "allow_private");
		if ((r = policy_vtype(c, ap, json_type_boolean)) < 0)
			return r;
		p->allow_private = json_object_get_boolean(ap);
		policy_vpop(c, mark);
	}
	if (allow) {
		mark = policy_vpush_key(c, "allow");
		if ((r = each(c, allow, allow_one)) < 0)
			return r;
		policy_vpop(c, mark);
	}
	if (inject) {
		mark = policy_vpush_key(c, "inject");
		if ((r = each(c, inject, inject_one)) < 0)
			return r;
		policy_vpop(c, mark);
	}
	if (routes) {
		mark = policy_vpush_key(c, "routes");
		if ((r = each(c, routes, route_one)) < 0)
			return r;
		policy_vpop(c, mark);
	}
	/* Sort, and drop repeated allow entries (they mean the same thing). */
	qsort(p->allow, p->n_allow, sizeof(*p->allow), allow_cmp);
	for (size_t i = 1; i < p->n_allow;) {
		if (allow_cmp(&p->allow[i - 1], &p->allow[i]) == 0) {
			free(p->allow[i].host);
			memmove(&p->allow[i], &p->allow[i + 1],
				(p->n_allow - i - 1) * sizeof(*p->allow));
			p->n_allow--;
		} else
			i++;
	}
	qsort(p->inject, p->n_inject, sizeof(*p->inject), inject_cmp);
	qsort(p->routes, p->n_routes, sizeof(*p->routes), route_cmp);
	return 0;
}

void policy_free_network(struct policy *p)
{
	for (size_t i = 0; i < p->n_allow; i++)
		free(p->allow[i].host);
	free(p->allow);
	for (size_t i = 0; i < p->n_inject; i++) {
		free(p->inject[i].host);
		free(p->inject[i].header);
		free(p->inject[i].value);
	}
	free(p->inject);
	for (size_t i = 0; i < p->n_routes; i++) {
		struct policy_route *r = &p->routes[i];

		free(r->name);
		free(r->upstream);
		free(r->upstream_host);
		free(r->upstream_path);
		free(r->header);
		free(r->value);
		free(r->env);
	}
	free(p->routes);
}
