/*
 * The daemon's method table and proto/openrpc.json must agree: the same
 * methods, and for each the same params with the same names, required flags
 * and JSON types (nested objects too). `test-openrpc --dump` prints the
 * table's params in OpenRPC form, to start a new method's entry from.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "../check-run.h"

static const char *doc_path;
static struct json_object *doc;

static const char *schema_type(enum param_type t)
{
	switch (t) {
	case PARAM_STRING: return "string";
	case PARAM_INT: return "integer";
	case PARAM_BOOL: return "boolean";
	case PARAM_OBJECT: return "object";
	case PARAM_ARRAY:
	case PARAM_STRING_ARRAY:
	case PARAM_INT_ARRAY: return "array";
	case PARAM_ANY: return NULL; /* any JSON: no "type", or a list of types */
	}
	return "?";
}

static struct json_object *find_method(const char *name)
{
	struct json_object *methods = json_object_object_get(doc, "methods");

	for (size_t i = 0; i < json_object_array_length(methods); i++) {
		struct json_object *m = json_object_array_get_idx(methods, i);
		if (strcmp(json_object_get_string(json_object_object_get(m, "name")), name) == 0)
			return m;
	}
	return NULL;
}

/* Compare one spec list with a list of {name, required, schema} (or a schema's properties). */
static void compare_params(const char *where, const struct param_spec *spec,
			   struct json_object *params, bool is_props, struct json_object *required)
{
	size_t nspec = 0, ndoc = is_props ? (size_t)json_object_object_length(params)
					  : json_object_array_length(params);

	for (const struct param_spec *p = spec; p != NULL && p->name != NULL; p++, nspec++) {
		struct json_object *schema = NULL, *t;
		bool req = false;

		if (is_props) {
			schema = json_object_object_get(params, p->name);
			for (size_t k = 0; required != NULL && k < json_object_array_length(required); k++)
				req |= strcmp(json_object_get_string(json_object_array_get_idx(required, k)),
					      p->name) == 0;
		} else {
			for (size_t i = 0; i < ndoc; i++) {
				struct json_object *e = json_object_array_get_idx(params, i);
				if (strcmp(json_object_get_string(json_object_object_get(e, "name")), p->name) == 0) {
					schema = json_object_object_get(e, "schema");
					req = json_object_get_boolean(json_object_object_get(e, "required"));
				}
			}
		}
		ck_assert_msg(schema != NULL, "%s: param '%s' is in the method table but not in %s",
			      where, p->name, doc_path);
		ck_assert_msg(req == p->required, "%s.%s: required is %d in the table, %d in the document",
			      where, p->name, p->required, req);
		t = json_object_object_get(schema, "type");
		if (schema_type(p->type) != NULL)
			ck_assert_msg(t != NULL && strcmp(json_object_get_string(t), schema_type(p->type)) == 0,
				      "%s.%s: type %s in the table, %s in the document", where, p->name,
				      schema_type(p->type), t ? json_object_get_string(t) : "(none)");
		if (p->type == PARAM_OBJECT && p->sub != NULL) {
			char sub[256];

			snprintf(sub, sizeof(sub), "%s.%s", where, p->name);
			compare_params(sub, p->sub, json_object_object_get(schema, "properties"), true,
				       json_object_object_get(schema, "required"));
		}
	}
	ck_assert_msg(nspec == ndoc, "%s: %zu params in the table, %zu in the document", where, nspec,
		      ndoc);
}

START_TEST(every_table_method_is_documented)
{
	for (size_t t = 0; rpc_method_tables[t] != NULL; t++)
		for (const struct method *m = rpc_method_tables[t]; m->name != NULL; m++) {
			struct json_object *d = find_method(m->name);

			ck_assert_msg(d != NULL, "%s is in the method table but not in %s", m->name, doc_path);
			compare_params(m->name, m->params, json_object_object_get(d, "params"), false, NULL);
			ck_assert_msg(json_object_object_get(d, "result") != NULL, "%s: no result schema", m->name);
		}
}
END_TEST

START_TEST(every_documented_method_exists)
{
	struct json_object *methods = json_object_object_get(doc, "methods");

	for (size_t i = 0; i < json_object_array_length(methods); i++) {
		const char *name = json_object_get_string(
			json_object_object_get(json_object_array_get_idx(methods, i), "name"));
		ck_assert_msg(rpc_method_lookup(name) != NULL,
			      "%s is documented in %s but the daemon has no such method", name, doc_path);
	}
}
END_TEST

static struct json_object *dump_spec(const struct param_spec *spec, bool props)
{
	struct json_object *out = props ? json_object_new_object() : json_object_new_array();

	for (const struct param_spec *p = spec; p != NULL && p->name != NULL; p++) {
		struct json_object *schema = json_object_new_object(), *e;

		if (schema_type(p->type) != NULL)
			json_object_object_add(schema, "type", json_object_new_string(schema_type(p->type)));
		if (p->type == PARAM_OBJECT && p->sub != NULL) {
			struct json_object *req = json_object_new_array();

			json_object_object_add(schema, "properties", dump_spec(p->sub, true));
			for (const struct param_spec *q = p->sub; q->name != NULL; q++)
				if (q->required)
					json_object_array_add(req, json_object_new_string(q->name));
			json_object_object_add(schema, "required", req);
		}
		if (props) {
			json_object_object_add(schema, "description", json_object_new_string(p->doc ? p->doc : ""));
			json_object_object_add(out, p->name, schema);
			continue;
		}
		e = json_object_new_object();
		json_object_object_add(e, "name", json_object_new_string(p->name));
		json_object_object_add(e, "description", json_object_new_string(p->doc ? p->doc : ""));
		json_object_object_add(e, "required", json_object_new_boolean(p->required));
		json_object_object_add(e, "schema", schema);
		json_object_array_add(out, e);
	}
	return out;
}

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;
	int failed;

	if (argc == 2 && strcmp(argv[1], "--dump") == 0) {
		struct json_object *all = json_object_new_array();

		for (size_t t = 0; rpc_method_tables[t] != NULL; t++)
			for (const struct method *m = rpc_method_tables[t]; m->name != NULL; m++) {
				struct json_object *e = json_object_new_object();
				json_object_object_add(e, "name", json_object_new_string(m->name));
				json_object_object_add(e, "summary", json_object_new_string(m->summary ? m->summary : ""));
				json_object_object_add(e, "paramStructure", json_object_new_string("by-name"));
				json_object_object_add(e, "params", dump_spec(m->params, false));
				json_object_array_add(all, e);
			}
		puts(json_object_to_json_string_ext(all, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(all);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: test-openrpc OPENRPC.json | --dump\n");
		return 2;
	}
	doc_path = argv[1];
	doc = json_object_from_file(doc_path);
	if (doc == NULL) {
		fprintf(stderr, "cannot read %s\n", doc_path);
		return 1;
	}
	s = suite_create("openrpc");
	tc = tcase_create("methods");
	tcase_add_test(tc, every_table_method_is_documented);
	tcase_add_test(tc, every_documented_method_exists);
	suite_add_tcase(s, tc);
	failed = check_run(s);
	json_object_put(doc);
	return failed;
}
