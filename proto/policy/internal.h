/* Helpers shared by the files of the policy library; not installed. */
#ifndef PROTO_POLICY_INTERNAL_H
#define PROTO_POLICY_INTERNAL_H

#include <stdarg.h>

#include "policy.h"

/* load.c: text -> json-c tree (owned by the caller), positions attached. */
int policy_load_text(const char *buf, size_t len, struct json_object **out,
		     struct policy_error *err);
/* Position recorded by load.c for a node (0/0 when none). */
void policy_node_pos(struct json_object *node, int *line, int *column);

/* context.c: error helpers; they return POLICY_EINVAL (or POLICY_ENOMEM). */
int policy_fail(struct policy_error *err, const char *path, struct json_object *node,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int policy_oom(struct policy_error *err);

/* syntax.c: lexical checks. Each returns NULL when valid, else a message. */
/* A policy path: "/abs" or "$VAR[/...]"; *norm gets the normalized copy. */
const char *policy_check_path(const char *s, char **norm);
/* "host" or "*.suffix" (lower-cased into *host). */
const char *policy_check_host(const char *s, size_t len, bool allow_wildcard,
			      char **host, bool *wildcard);
const char *policy_check_port(const char *s, size_t len, uint16_t *port);
const char *policy_check_header(const char *s);
const char *policy_check_template(const char *s);
const char *policy_check_env_name(const char *s);
const char *policy_check_route_name(const char *s);
const char *policy_check_glob(const char *s);
/* Plain text: no control characters (C0, DEL), at most max bytes. */
const char *policy_check_text(const char *s, size_t max);
/* "https://host[:port][/path]" */
const char *policy_check_upstream(const char *s, char **host, uint16_t *port, char **path);
/* "2G" / 1024 etc.: value is a json string or int. */
const char *policy_parse_size(struct json_object *v, uint64_t *out);
const char *policy_parse_duration(struct json_object *v, uint64_t *out);
const char *policy_parse_count(struct json_object *v, uint64_t max, uint64_t *out);

/* Wildcard-aware coverage: is (host, wild) inside allow entry a? */
bool policy_host_covered(const char *host, bool wild, const struct policy_net_allow *a);

/* normalize.c: sort + merge fs rules; report a path both denied and allowed. */
int policy_normalize_fs(struct policy *p, struct policy_error *err);
/* Name of origin list 0..3 ("filesystem.read" ... "base"). */
const char *policy_origin_name(uint8_t list);

/* validate.c: key tables, shared with the schema test. */
struct policy_keyset {
	const char *where; /* "", "filesystem", "filesystem.path", "network", ... */
	const char *const *keys; /* NULL-terminated */
};
extern const struct policy_keyset policy_keysets[];

/* context.c: validation context, the path of the value being checked. */
struct policy_vctx {
	struct policy_error *err;
	struct policy *p;
	char path[256];
	size_t len;
};
size_t policy_vpush_key(struct policy_vctx *c, const char *key);
size_t policy_vpush_idx(struct policy_vctx *c, size_t i);
void policy_vpop(struct policy_vctx *c, size_t mark);
int policy_vfail(struct policy_vctx *c, struct json_object *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Unknown keys of obj against keyset `where`; obj must be an object. */
int policy_vkeys(struct policy_vctx *c, struct json_object *obj, const char *where);
/* Type check with a message naming the expected type. */
int policy_vtype(struct policy_vctx *c, struct json_object *v, json_type t);
/* Variables nono sets itself (proxy, CA bundle, TMPDIR): not for policies. */
bool policy_env_reserved(const char *name);
/* network.c */
int policy_validate_network(struct policy_vctx *c, struct json_object *net);
void policy_free_network(struct policy *p);
/* Sort helpers (normalize.c) */
void policy_sort_strings(char **v, size_t *n); /* sorts, frees duplicates */

#endif
