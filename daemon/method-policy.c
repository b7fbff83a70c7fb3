/*
 * policy.* methods: policy.validate checks a policy (JSON/YAML text or a
 * JSON object) and returns its canonical form and digest, so clients and
 * `nonoctl policy check` see exactly what the daemon would enforce.
 *
 *   params: {policy: string (at most 1 MiB) | object,
 *            vars?: {workspace?, home?, tmpdir?}}
 *   result: {valid: true, digest: hex, resolved: bool, normalized: {...}}
 *   error:  NONO_E_POLICY_INVALID, data.field = path of the offending key
 *           ("network.inject[0].header", "vars.home", "" for the whole text),
 *           data.detail = "line L, column C: message" (position when known).
 *
 * With vars the variables are expanded (and the digest is that of the
 * expanded policy); without them paths keep their $VARIABLES. Neither the
 * result nor an error can contain a secret: a policy only names secrets.
 */
#include <stdio.h>
#include <string.h>

#include "methods.h"
#include "nono-protocol.h"
#include "policy.h"
#include "rpc.h"

#ifndef NONO_M_POLICY_VALIDATE
#define NONO_M_POLICY_VALIDATE "policy.validate" /* until nono-protocol.h has it */
#endif

static const struct param_spec policy_vars_spec[] = {
	{ "workspace", PARAM_STRING, false, 0, POLICY_MAX_PATH, NULL,
	  "value of $WORKSPACE (absolute path)" },
	{ "home", PARAM_STRING, false, 0, POLICY_MAX_PATH, NULL, "value of $HOME (absolute path)" },
	{ "tmpdir", PARAM_STRING, false, 0, POLICY_MAX_PATH, NULL,
	  "value of $TMPDIR (absolute path)" },
	{ NULL },
};

static const struct param_spec policy_validate_spec[] = {
	{ "policy", PARAM_ANY, true, 0, 0, NULL,
	  "policy as JSON or YAML text (at most 1 MiB) or as a JSON object" },
	{ "vars", PARAM_OBJECT, false, 0, 0, policy_vars_spec,
	  "variable values to expand; without them paths keep their $VARIABLES" },
	{ NULL },
};

static int policy_invalid(struct rpc_error *err, const struct policy_error *pe)
{
	if (pe->line > 0)
		return rpc_error_set(err, NONO_E_POLICY_INVALID, pe->path,
				     "line %d, column %d: %s", pe->line, pe->column, pe->message);
	return rpc_error_set(err, NONO_E_POLICY_INVALID, pe->path, "%s", pe->message);
}

static int policy_load_param(struct json_object *v, struct policy **p,
			     struct policy_error *pe, struct rpc_error *err)
{
	int r;

	if (json_object_is_type(v, json_type_string)) {
		size_t len = (size_t)json_object_get_string_len(v);

		if (len > POLICY_MAX_TEXT)
			return rpc_error_set(err, NONO_E_INVALID_PARAMS, "policy",
					     "policy text larger than %u bytes", POLICY_MAX_TEXT);
		r = policy_parse(json_object_get_string(v), len, p, pe);
	} else if (json_object_is_type(v, json_type_object)) {
		r = policy_from_json(v, p, pe);
	} else {
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "policy",
				     "expected a string or an object");
	}
	if (r == POLICY_ENOMEM)
		return rpc_error_set(err, NONO_E_INTERNAL, NULL, "out of memory");
	if (r < 0)
		return policy_invalid(err, pe);
	return 0;
}

static int policy_validate(struct rpc_call *call, struct json_object **result,
			   struct rpc_error *err)
{
	struct json_object *vars = params_get(call->params, "vars");
	struct json_object *normalized, *res;
	struct policy_error pe;
	struct policy *p = NULL;
	char digest[65];
	int r;

	if ((r = policy_load_param(params_get(call->params, "policy"), &p, &pe, err)) < 0)
		return r;
	if (vars) {
		struct policy_vars pv = {
			.workspace = params_str(vars, "workspace", NULL),
			.home = params_str(vars, "home", NULL),
			.tmpdir = params_str(vars, "tmpdir", NULL),
		};

		if ((r = policy_resolve(p, &pv, &pe)) == POLICY_ENOMEM) {
			policy_free(p);
			return rpc_error_set(err, NONO_E_INTERNAL, NULL, "out of memory");
		}
		if (r < 0) {
			policy_free(p);
			return policy_invalid(err, &pe);
		}
	}
	normalized = policy_to_json(p);
	res = json_object_new_object();
	if (!normalized || !res || policy_digest(p, digest) < 0) {
		json_object_put(normalized);
		json_object_put(res);
		policy_free(p);
		return rpc_error_set(err, NONO_E_INTERNAL, NULL, "out of memory");
	}
	json_object_object_add(res, "valid", json_object_new_boolean(1));
	json_object_object_add(res, "digest", json_object_new_string(digest));
	json_object_object_add(res, "resolved", json_object_new_boolean(p->resolved));
	json_object_object_add(res, "normalized", normalized); /* takes it */
	policy_free(p);
	*result = res;
	return 0;
}

const struct method policy_methods[] = {
	{ NONO_M_POLICY_VALIDATE, policy_validate_spec, AUTH_USER, policy_validate,
	  "Validate a policy; return its canonical form and SHA-256 digest" },
	{ NULL },
};
