/*
 * Error reporting for the policy library: the path of the value being
 * checked ("network.inject[0].header"), the error struct, and the small
 * type/key checks every section uses.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

int policy_fail(struct policy_error *err, const char *path, struct json_object *node,
		const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return POLICY_EINVAL;
	snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	policy_node_pos(node, &err->line, &err->column);
	return POLICY_EINVAL;
}

int policy_oom(struct policy_error *err)
{
	if (err) {
		policy_fail(err, "", NULL, "out of memory");
	}
	return POLICY_ENOMEM;
}

size_t policy_vpush_key(struct policy_vctx *c, const char *key)
{
	size_t mark = c->len;
	int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "%s%s",
			 c->len ? "." : "", key);

	if (n > 0)
		c->len = strnlen(c->path, sizeof(c->path) - 1);
	/* Keys come from the input: keep control characters out of messages. */
	for (size_t i = mark; i < c->len; i++)
		if ((unsigned char)c->path[i] < 0x20 || c->path[i] == 0x7f)
			c->path[i] = '?';
	return mark;
}

size_t policy_vpush_idx(struct policy_vctx *c, size_t i)
{
	size_t mark = c->len;

	snprintf(c->path + c->len, sizeof(c->path) - c->len, "[%zu]", i);
	c->len = strnlen(c->path, sizeof(c->path) - 1);
	return mark;
}

void policy_vpop(struct policy_vctx *c, size_t mark)
{
	c->len = mark;
	c->path[mark] = '\0';
}

int policy_vfail(struct policy_vctx *c, struct json_object *node, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return policy_fail(c->err, c->path, node, "%s", msg);
}

int policy_vkeys(struct policy_vctx *c, struct json_object *obj, const char *where)
{
	const char *const *keys = NULL;

	for (int i = 0; policy_keysets[i].where; i++)
		if (!strcmp(policy_keysets[i].where, where))
			keys = policy_keysets[i].keys;
	json_object_object_foreach(obj, k, v) {
		bool ok = false;

		for (int i = 0; keys && keys[i]; i++)
			ok = ok || !strcmp(keys[i], k);
		if (!ok) {
			policy_vpush_key(c, k);
			return policy_vfail(c, v ? v : obj, "unknown key");
		}
	}
	return 0;
}

int policy_vtype(struct policy_vctx *c, struct json_object *v, json_type t)
{
	static const char *const names[] = {
		[json_type_null] = "null", [json_type_boolean] = "a boolean",
		[json_type_double] = "a number", [json_type_int] = "an integer",
		[json_type_object] = "a mapping", [json_type_array] = "a list",
		[json_type_string] = "a string",
	};

	if (json_object_is_type(v, t))
		return 0;
	return policy_vfail(c, v, "expected %s, got %s", names[t],
			    names[json_object_get_type(v)]);
}

bool policy_env_reserved(const char *name)
{
	static const char *const reserved[] = {
		"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE",
		"SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
		"NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "TMPDIR", NULL,
	};

	for (int i = 0; reserved[i]; i++)
		if (!strcasecmp(name, reserved[i]))
			return true;
	return false;
}
