/*
 * The canonical form of a policy and its digest.
 *
 * policy_to_json() builds an object with every section present, defaults
 * written out, keys in byte order, lists in the normalized order of struct
 * policy (see policy.h), base-profile rules left out, and values that have no
 * default (unset limits, a route's optional header/value/env) omitted:
 *
 *   {"base":"default","enforcement":"strict",
 *    "env":{"pass":[..],"set":{NAME:VALUE,..}},
 *    "filesystem":{"deny":[F..],"read":[F..],"write":[F..]},
 *        F = {"optional":false,"path":"/abs"}, sorted by path
 *    "limits":{"cpu":S,"files":N,"memory":B,"pids":N,"wall":S},  (set ones only)
 *    "network":{"allow":["host:443","*.suffix:443",..]   (by host, plain first, port)
 *               "allow_private":true                     (only when true)
 *               "inject":[{"header":..,"host":..,"value":..}] (by host, header)
 *               "routes":[{"env":..,"header":..,"name":..,"upstream":..,"value":..}]}
 *                                                         (by name)
 *    "snapshot":{"exclude":[..],"on_exit":false,"on_start":false,"workspace":".."},
 *        (workspace absent only after resolving without the variable it names)
 *    "version":1}
 *
 * The canonical form is itself a valid policy: parsing it again gives the
 * same digest (tests/unit/policy checks this).
 *
 * The digest is SHA-256 over the UTF-8 bytes of that object serialized with
 * no whitespace at all, keys in the order above, strings escaping only '"'
 * and '\\' (the validator admits no control characters, so nothing else
 * needs escaping) and '/' left as is, integers in plain decimal. That is
 * exactly RFC 8785 (JCS) for this value domain (ASCII keys, integers below
 * 2^53), so any JCS implementation reproduces it from policy_to_json().
 * Paths are hashed as they stand: "$WORKSPACE/x" before policy_resolve(),
 * the expanded path after it.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Add v (taken) under key; on failure frees v and marks *ok false. */
static void put(struct json_object *o, const char *key, struct json_object *v, bool *ok,
		bool may_be_null)
{
	if (!v && !may_be_null) {
		*ok = false;
		return;
	}
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		*ok = false;
	}
}

static void push(struct json_object *a, struct json_object *v, bool *ok)
{
	if (!v || json_object_array_add(a, v) < 0) {
		json_object_put(v);
		*ok = false;
	}
}

static struct json_object *fs_json(const struct policy *p, bool *ok)
{
	static const char *const lists[] = { "deny", "read", "write" };
	static const unsigned bits[] = { POLICY_FS_DENY, POLICY_FS_READ, POLICY_FS_WRITE };
	struct json_object *fs = json_object_new_object();

	if (!fs)
		return NULL;
	for (int l = 0; l < 3; l++) {
		struct json_object *arr = json_object_new_array();

		for (size_t i = 0; arr && i < p->n_fs; i++) {
			struct json_object *e;

			if (p->fs[i].from_base || !(p->fs[i].access & bits[l]))
				continue;
			e = json_object_new_object();
			if (e) {
				put(e, "optional", json_object_new_boolean(p->fs[i].optional), ok, false);
				put(e, "path", json_object_new_string(p->fs[i].path), ok, false);
			}
			push(arr, e, ok);
		}
		put(fs, lists[l], arr, ok, false);
	}
	return fs;
}

static struct json_object *host_str(const char *host, bool wild, const char *suffix)
{
	char buf[320];

	snprintf(buf, sizeof(buf), "%s%s%s", wild ? "*." : "", host, suffix ? suffix : "");
	return json_object_new_string(buf);
}

static struct json_object *net_json(const struct policy *p, bool *ok)
{
	struct json_object *net = json_object_new_object();
	struct json_object *allow = json_object_new_array(), *inject = json_object_new_array();
	struct json_object *routes = json_object_new_array();

	for (size_t i = 0; allow && i < p->n_allow; i++) {
		char port[8];

		snprintf(port, sizeof(port), ":%u", p->allow[i].port);
		push(allow, host_str(p->allow[i].host, p->allow[i].wildcard, port), ok);
	}
	for (size_t i = 0; inject && i < p->n_inject; i++) {
		struct json_object *e = json_object_new_object();

		if (e) {
			put(e, "header", json_object_new_string(p->inject[i].header), ok, false);
			put(e, "host", host_str(p->inject[i].host, p->inject[i].wildcard, NULL), ok,
			    false);
			put(e, "value", json_object_new_string(p->inject[i].value), ok, false);
		}
		push(inject, e, ok);
	}
	for (size_t i = 0; routes && i < p->n_routes; i++) {
		const struct policy_route *r = &p->routes[i];
		struct json_object *e = json_object_new_object();

		if (e) {
			if (r->env)
				put(e, "env", json_object_new_string(r->env), ok, false);
			if (r->header)
				put(e, "header", json_object_new_string(r->header), ok, false);
			put(e, "name", json_object_new_string(r->name), ok, false);
			put(e, "upstream", json_object_new_string(r->upstream), ok, false);
			if (r->value)
				put(e, "value", json_object_new_string(r->value), ok, false);
		}
		push(routes, e, ok);
	}
	if (!net) {
		json_object_put(allow);
		json_object_put(inject);
		json_object_put(routes);
		return NULL;
	}
	put(net, "allow", allow, ok, false);
	/* Only when set, so every policy written before the key keeps its digest. */
	if (p->allow_private)
		put(net, "allow_private", json_object_new_boolean(true), ok, false);
	put(net, "inject", inject, ok, false);
	put(net, "routes", routes, ok, false);
	return net;
}

static struct json_object *env_json(const struct policy *p, bool *ok)
{
	struct json_object *env = json_object_new_object(), *pass = json_object_new_array();
	struct json_object *set = json_object_new_object();

	for (size_t i = 0; pass && i < p->n_env_pass; i++)
		push(pass, json_object_new_string(p->env_pass[i]), ok);
	for (size_t i = 0; set && i < p->n_env_set; i++)
		put(set, p->env_set[i].name, json_object_new_string(p->env_set[i].value), ok, false);
	if (!env) {
		json_object_put(pass);
		json_object_put(set);
		return NULL;
	}
	put(env, "pass", pass, ok, false);
	put(env, "set", set, ok, false);
	return env;
}

static struct json_object *limits_json(const struct policy *p, bool *ok)
{
	const struct policy_limits *l = &p->limits;
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (l->cpu_set)
		put(o, "cpu", json_object_new_int64((int64_t)l->cpu_seconds), ok, false);
	if (l->files_set)
		put(o, "files", json_object_new_int64((int64_t)l->files), ok, false);
	if (l->memory_set)
		put(o, "memory", json_object_new_int64((int64_t)l->memory_bytes), ok, false);
	if (l->pids_set)
		put(o, "pids", json_object_new_int64((int64_t)l->pids), ok, false);
	if (l->wall_set)
		put(o, "wall", json_object_new_int64((int64_t)l->wall_seconds), ok, false);
	return o;
}

static struct json_object *snapshot_json(const struct policy *p, bool *ok)
{
	const struct policy_snapshot *s = &p->snapshot;
	struct json_object *o = json_object_new_object(), *ex = json_object_new_array();

	for (size_t i = 0; ex && i < s->n_exclude; i++)
		push(ex, json_object_new_string(s->exclude[i]), ok);
	if (!o) {
		json_object_put(ex);
		return NULL;
	}
	put(o, "exclude", ex, ok, false);
	put(o, "on_exit", json_object_new_boolean(s->on_exit), ok, false);
	put(o, "on_start", json_object_new_boolean(s->on_start), ok, false);
	if (s->workspace)
		put(o, "workspace", json_object_new_string(s->workspace), ok, false);
	return o;
}

struct json_object *policy_to_json(const struct policy *p)
{
	struct json_object *o = json_object_new_object();
	bool ok = true;

	if (!o)
		return NULL;
	put(o, "base", json_object_new_string(p->base == POLICY_BASE_NONE ? "none" : "default"),
	    &ok, false);
	put(o, "enforcement",
	    json_object_new_string(p->enforcement == POLICY_ENFORCE_BEST_EFFORT ? "best_effort"
										: "strict"),
	    &ok, false);
	put(o, "env", env_json(p, &ok), &ok, false);
	put(o, "filesystem", fs_json(p, &ok), &ok, false);
	put(o, "limits", limits_json(p, &ok), &ok, false);
	put(o, "network", net_json(p, &ok), &ok, false);
	put(o, "snapshot", snapshot_json(p, &ok), &ok, false);
	put(o, "version", json_object_new_int(1), &ok, false);
	if (!ok) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

char *policy_canonical_string(const struct policy *p, size_t *len)
{
	struct json_object *o = policy_to_json(p);
	size_t n = 0;
	const char *s;
	char *copy = NULL;

	if (!o)
		return NULL;
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
					      JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	if (s)
		copy = strndup(s, n);
	json_object_put(o);
	if (copy && len)
		*len = n;
	return copy;
}

int policy_digest(const struct policy *p, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t len = 0;
	char *s = policy_canonical_string(p, &len);

	hex[0] = '\0';
	if (!s)
		return POLICY_ENOMEM;
	if (!EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
		free(s);
		return -EIO;
	}
	free(s);
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}
