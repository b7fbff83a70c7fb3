/* Declarative parameter specs, checked centrally before any handler runs. */
#ifndef PROTO_PARAMS_H
#define PROTO_PARAMS_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "error.h"

enum param_type {
	PARAM_STRING = 1, /* UTF-8 string without NUL; max_len bytes if set */
	PARAM_INT,        /* integer (no fraction) in [min, max] if min < max */
	PARAM_BOOL,
	PARAM_OBJECT,     /* nested object; its members are checked by its own spec if sub != NULL */
	PARAM_ARRAY,      /* any array */
	PARAM_STRING_ARRAY,
	PARAM_INT_ARRAY,
	PARAM_ANY,        /* any JSON value (checked by the handler) */
};

struct param_spec {
	const char *name;      /* NULL terminates a spec array */
	enum param_type type;
	bool required;
	int64_t min, max;      /* PARAM_INT range, or max length for strings/arrays (max only) */
	const struct param_spec *sub; /* PARAM_OBJECT members, NULL = unchecked */
	const char *doc;       /* one line for PROTOCOL.md / OpenRPC */
};

/* "string", "integer", "boolean", "object", "array", "array", "array", "any". */
const char *param_type_name(enum param_type t);

/*
 * Check params (may be NULL: treated as {}) against spec (may be NULL: no
 * params allowed). Unknown members, missing required ones, wrong types and
 * out-of-range values are INVALID_PARAMS with err->field the dotted path
 * ("limits.memory"; array elements as "env.pass[2]"). A member present with
 * JSON null is a wrong type unless PARAM_ANY. Strings (also in
 * PARAM_STRING_ARRAY) must be valid UTF-8 without NUL. Integers must be
 * json_type_int within int64 (1.0 and 1e3 are refused). For arrays, max > 0
 * bounds the element count. Returns 0 or NONO_E_INVALID_PARAMS.
 */
int params_check(struct json_object *params, const struct param_spec *spec,
		 struct rpc_error *err);

/*
 * Typed getters for handlers, after params_check. Borrowed results. name may
 * be a dotted path into nested objects ("limits.memory"). The default is
 * returned when the member is absent, null or of another type.
 */
const char *params_str(struct json_object *params, const char *name, const char *def);
int64_t params_int(struct json_object *params, const char *name, int64_t def);
bool params_bool(struct json_object *params, const char *name, bool def);
struct json_object *params_get(struct json_object *params, const char *name);

#endif
