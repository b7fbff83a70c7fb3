/*
 * Declarative parameter checking: every method's params are validated
 * against its spec before the handler runs, so handlers only see members
 * they declared, with the declared types, ranges and sizes.
 */
#include <stdio.h>
#include <string.h>

#include "params.h"
#include "utf8.h"

#define PARAMS_PATH_MAX 128 /* == sizeof(((struct rpc_error *)0)->field) */

const char *param_type_name(enum param_type t)
{
	switch (t) {
	case PARAM_STRING:
		return "string";
	case PARAM_INT:
		return "integer";
	case PARAM_BOOL:
		return "boolean";
	case PARAM_OBJECT:
		return "object";
	case PARAM_ARRAY:
	case PARAM_STRING_ARRAY:
	case PARAM_INT_ARRAY:
		return "array";
	case PARAM_ANY:
		return "any";
	}
	return "unknown";
}

/* json-c clamps integer literals beyond int64 to INT64/UINT64 max. */
static bool params_int_fits(struct json_object *o)
{
	return json_object_get_int64(o) < 0 ||
	       json_object_get_uint64(o) <= (uint64_t)INT64_MAX;
}

static const char *params_json_type(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "boolean";
	case json_type_double:
		return "number";
	case json_type_int:
		return "integer";
	case json_type_object:
		return "object";
	case json_type_array:
		return "array";
	case json_type_string:
		return "string";
	}
	return "unknown";
}

/* A string value must be valid UTF-8 without NUL, and at most max bytes when max > 0. */
static int params_check_string(struct json_object *v, int64_t max, const char *path,
			       struct rpc_error *err)
{
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);

	if (memchr(s, '\0', n) != NULL)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, path,
				     "string contains a NUL character");
	if (!utf8_valid(s, n))
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, path,
				     "string is not valid UTF-8");
	if (max > 0 && n > (uint64_t)max)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, path,
				     "string longer than %lld bytes", (long long)max);
	return 0;
}

static int params_check_int(struct json_object *v, int64_t min, int64_t max,
			    const char *path, struct rpc_error *err)
{
	int64_t i;

	if (!params_int_fits(v))
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, path,
				     "integer out of range");
	i = json_object_get_int64(v);
	if (min < max && (i < min || i > max))
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, path,
				     "must be between %lld and %lld",
				     (long long)min, (long long)max);
	return 0;
}

static int params_wrong_type(struct json_object *v, const char *want,
			     const char *path, struct rpc_error *err)
{
	return rpc_error_set(err, NONO_E_INVALID_PARAMS, path, "must be %s %s, not %s",
			     strchr("aeiou", want[0]) ? "an" : "a", want,
			     params_json_type(v));
}

static int params_check_array(struct json_object *v, const struct param_spec *s,
			      const char *path, struct rpc_error *err)
{
	size_t n = json_object_array_length(v);
	char epath[PARAMS_PATH_MAX];
	int r;

	if (s->max > 0 && n > (uint64_t)s->max)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, path,
				     "more than %lld elements", (long long)s->max);
	if (s->type == PARAM_ARRAY)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);

		/* Truncation is fine: the path is only reported. */
		if (snprintf(epath, sizeof(epath), "%s[%zu]", path, i) < 0)
			epath[0] = '\0';
		if (s->type == PARAM_STRING_ARRAY) {
			if (!json_object_is_type(e, json_type_string))
				return params_wrong_type(e, "string", epath, err);
			r = params_check_string(e, 0, epath, err);
		} else {
			if (!json_object_is_type(e, json_type_int))
				return params_wrong_type(e, "integer", epath, err);
			r = params_check_int(e, 0, 0, epath, err);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int params_check_at(struct json_object *params, const struct param_spec *spec,
			   const char *prefix, struct rpc_error *err);

static int params_check_value(struct json_object *v, const struct param_spec *s,
			      const char *path, struct rpc_error *err)
{
	switch (s->type) {
	case PARAM_STRING:
		if (!json_object_is_type(v, json_type_string))
			return params_wrong_type(v, "string", path, err);
		return params_check_string(v, s->max, path, err);
	case PARAM_INT:
		/* json_type_double is refused even when integral (1.0, 1e3). */
		if (!json_object_is_type(v, json_type_int))
			return params_wrong_type(v, "integer", path, err);
		return params_check_int(v, s->min, s->max, path, err);
	case PARAM_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return params_wrong_type(v, "boolean", path, err);
		return 0;
	case PARAM_OBJECT:
		if (!json_object_is_type(v, json_type_object))
			return params_wrong_type(v, "object", path, err);
		return s->sub != NULL ? params_check_at(v, s->sub, path, err) : 0;
	case PARAM_ARRAY:
	case PARAM_STRING_ARRAY:
	case PARAM_INT_ARRAY:
		if (!json_object_is_type(v, json_type_array))
			return params_wrong_type(v, "array", path, err);
		return params_check_array(v, s, path, err);
	case PARAM_ANY:
		return 0;
	}
	return rpc_error_set(err, NONO_E_INTERNAL, path, "bad parameter spec");
}

static void params_path(char *dst, const char *prefix, const char *name)
{
	/* Truncation is fine: the path is only reported. */
	if (snprintf(dst, PARAMS_PATH_MAX, "%s%s%s", prefix,
		     prefix[0] != '\0' ? "." : "", name) < 0)
		dst[0] = '\0';
}

static const struct param_spec *params_find(const struct param_spec *spec,
					    const char *name)
{
	for (; spec != NULL && spec->name != NULL; spec++)
		if (strcmp(spec->name, name) == 0)
			return spec;
	return NULL;
}

static int params_check_at(struct json_object *params, const struct param_spec *spec,
			   const char *prefix, struct rpc_error *err)
{
	char path[PARAMS_PATH_MAX];
	int r;

	if (params != NULL) {
		json_object_object_foreach(params, key, val) {
			const struct param_spec *s = params_find(spec, key);

			params_path(path, prefix, key);
			if (s == NULL)
				return rpc_error_set(err, NONO_E_INVALID_PARAMS, path,
						     "unknown parameter");
			if ((r = params_check_value(val, s, path, err)) < 0)
				return r;
		}
	}
	for (; spec != NULL && spec->name != NULL; spec++) {
		if (!spec->required ||
		    (params != NULL && json_object_object_get_ex(params, spec->name, NULL)))
			continue;
		params_path(path, prefix, spec->name);
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, path,
				     "missing required parameter");
	}
	return 0;
}

int params_check(struct json_object *params, const struct param_spec *spec,
		 struct rpc_error *err)
{
	if (params != NULL && !json_object_is_type(params, json_type_object))
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "",
				     "params must be an object");
	return params_check_at(params, spec, "", err);
}

struct json_object *params_get(struct json_object *params, const char *name)
{
	char key[PARAMS_PATH_MAX];
	const char *dot;
	struct json_object *v;

	while (params != NULL && name != NULL &&
	       json_object_is_type(params, json_type_object)) {
		dot = strchr(name, '.');
		if (dot == NULL)
			return json_object_object_get_ex(params, name, &v) ? v : NULL;
		if ((size_t)(dot - name) >= sizeof(key))
			return NULL;
		memcpy(key, name, (size_t)(dot - name));
		key[dot - name] = '\0';
		if (!json_object_object_get_ex(params, key, &params))
			return NULL;
		name = dot + 1;
	}
	return NULL;
}

const char *params_str(struct json_object *params, const char *name, const char *def)
{
	struct json_object *v = params_get(params, name);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : def;
}

int64_t params_int(struct json_object *params, const char *name, int64_t def)
{
	struct json_object *v = params_get(params, name);

	return json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : def;
}

bool params_bool(struct json_object *params, const char *name, bool def)
{
	struct json_object *v = params_get(params, name);

	return json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : def;
}
