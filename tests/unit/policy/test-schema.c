/*
 * The editor schema (proto/policy/policy.schema.json) cannot drift from the
 * validator: the property names at every level equal the validator's key
 * tables, every object in the schema is one of those levels and closed
 * (additionalProperties: false), and the example policies in docs/policies/
 * pass both the schema (checked by the small draft 2020-12 subset evaluator
 * below) and the validator, while structurally bad inputs fail both.
 */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "../check-run.h"

static struct json_object *schema;

static char *slurp(const char *rel, size_t *len)
{
	const char *dir = getenv("NONO_SRCDIR");
	char path[4096];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", rel);
	f = fopen(path, "rb");
	ck_assert_msg(f, "cannot open %s (set NONO_SRCDIR)", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* JSON pointer lookup ("/properties/network/properties"), borrowed. */
static struct json_object *ptr(struct json_object *o, const char *p)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", p);
	for (char *t = strtok_r(buf, "/", &save); t && o; t = strtok_r(NULL, "/", &save)) {
		if (json_object_is_type(o, json_type_array))
			o = json_object_array_get_idx(o, (size_t)atoi(t));
		else if (!json_object_object_get_ex(o, t, &o))
			return NULL;
	}
	return o;
}

static const struct {
	const char *where, *pointer;
} levels[] = {
	{ "", "/properties" },
	{ "filesystem", "/properties/filesystem/properties" },
	{ "filesystem.path", "/$defs/pathEntry/oneOf/1/properties" },
	{ "network", "/properties/network/properties" },
	{ "network.inject", "/$defs/inject/properties" },
	{ "network.routes", "/$defs/route/properties" },
	{ "env", "/properties/env/properties" },
	{ "limits", "/properties/limits/properties" },
	{ "snapshot", "/properties/snapshot/properties" },
};
#define N_LEVELS (sizeof(levels) / sizeof(levels[0]))

START_TEST(test_keys_match)
{
	size_t n_sets = 0;

	for (size_t i = 0; policy_keysets[i].where; i++, n_sets++) {
		const struct policy_keyset *ks = &policy_keysets[i];
		struct json_object *props = NULL;
		size_t n = 0;

		for (size_t j = 0; j < N_LEVELS; j++)
			if (!strcmp(levels[j].where, ks->where))
				props = ptr(schema, levels[j].pointer);
		ck_assert_msg(props, "schema has no level for \"%s\"", ks->where);
		for (; ks->keys[n]; n++)
			ck_assert_msg(json_object_object_get_ex(props, ks->keys[n], NULL),
				      "schema lacks %s.%s", ks->where, ks->keys[n]);
		ck_assert_msg((size_t)json_object_object_length(props) == n,
			      "schema has extra keys at \"%s\"", ks->where);
	}
	ck_assert_uint_eq(n_sets, N_LEVELS);
}
END_TEST

/* Every object schema with "properties" is a known level and is closed. */
static void walk(struct json_object *o, const char *at, size_t *found)
{
	char sub[512];

	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			snprintf(sub, sizeof(sub), "%s/%zu", at, i);
			walk(json_object_array_get_idx(o, i), sub, found);
		}
		return;
	}
	if (!json_object_is_type(o, json_type_object))
		return;
	if (json_object_object_get_ex(o, "properties", NULL)) {
		struct json_object *ap;
		bool known = false;

		snprintf(sub, sizeof(sub), "%s/properties", at);
		for (size_t j = 0; j < N_LEVELS; j++)
			known = known || !strcmp(levels[j].pointer, sub);
		ck_assert_msg(known, "schema object at %s is not a validator level", at);
		ck_assert_msg(json_object_object_get_ex(o, "additionalProperties", &ap) &&
			      json_object_is_type(ap, json_type_boolean) && !json_object_get_boolean(ap),
			      "schema object at %s is not closed", at);
		(*found)++;
	}
	json_object_object_foreach(o, k, v) {
		snprintf(sub, sizeof(sub), "%s/%s", at, k);
		walk(v, sub, found);
	}
}

START_TEST(test_schema_closed)
{
	size_t found = 0;

	walk(schema, "", &found);
	ck_assert_uint_eq(found, N_LEVELS);
}
END_TEST

/* --- a small evaluator for the keywords this schema uses --- */

static bool eval(struct json_object *s, struct json_object *v, char *why, size_t n);

static bool type_ok(const char *t, struct json_object *v)
{
	if (!strcmp(t, "string"))
		return json_object_is_type(v, json_type_string);
	if (!strcmp(t, "integer"))
		return json_object_is_type(v, json_type_int);
	if (!strcmp(t, "boolean"))
		return json_object_is_type(v, json_type_boolean);
	if (!strcmp(t, "object"))
		return json_object_is_type(v, json_type_object);
	if (!strcmp(t, "array"))
		return json_object_is_type(v, json_type_array);
	ck_abort_msg("schema type %s not supported by the test", t);
	return false;
}

static bool pattern_ok(const char *re, const char *s)
{
	regex_t r;
	bool ok;

	ck_assert_msg(regcomp(&r, re, REG_EXTENDED | REG_NOSUB) == 0, "bad pattern %s", re);
	ok = regexec(&r, s, 0, NULL, 0) == 0;
	regfree(&r);
	return ok;
}

static bool sfail(char *why, size_t n, const char *msg, const char *detail)
{
	snprintf(why, n, "%s %s", msg, detail ? detail : "");
	return false;
}

static bool eval_object(struct json_object *s, struct json_object *v, char *why, size_t n)
{
	struct json_object *props = NULL, *ap = NULL, *req, *pn;

	json_object_object_get_ex(s, "properties", &props);
	json_object_object_get_ex(s, "additionalProperties", &ap);
	if (json_object_object_get_ex(s, "required", &req))
		for (size_t i = 0; i < json_object_array_length(req); i++)
			if (!json_object_object_get_ex(
				    v, json_object_get_string(json_object_array_get_idx(req, i)), NULL))
				return sfail(why, n, "missing",
					    json_object_get_string(json_object_array_get_idx(req, i)));
	json_object_object_foreach(v, k, m) {
		struct json_object *ps = NULL;

		if (json_object_object_get_ex(s, "propertyNames", &pn)) {
			struct json_object *name = json_object_new_string(k);
			bool ok = eval(pn, name, why, n);

			json_object_put(name);
			if (!ok)
				return false;
		}
		if (props && json_object_object_get_ex(props, k, &ps)) {
			if (!eval(ps, m, why, n))
				return false;
		} else if (ap && json_object_is_type(ap, json_type_boolean)) {
			if (!json_object_get_boolean(ap))
				return sfail(why, n, "unknown key", k);
		} else if (ap && !eval(ap, m, why, n))
			return false;
	}
	return true;
}

static bool eval(struct json_object *s, struct json_object *v, char *why, size_t n)
{
	struct json_object *x;

	json_object_object_foreach(s, kw, arg) {
		static const char *const known[] = {
			"$schema", "$id", "title", "description", "default", "$defs", "$ref", "type",
			"const", "enum", "properties", "additionalProperties", "required", "items",
			"oneOf", "pattern", "minimum", "maximum", "propertyNames", NULL,
		};
		bool ok = false;

		for (int i = 0; known[i]; i++)
			ok = ok || !strcmp(known[i], kw);
		ck_assert_msg(ok, "schema keyword %s not supported by the test", kw);
		(void)arg;
	}
	if (json_object_object_get_ex(s, "$ref", &x)) {
		const char *ref = json_object_get_string(x);

		ck_assert(ref[0] == '#');
		if (!eval(ptr(schema, ref + 1), v, why, n))
			return false;
	}
	if (json_object_object_get_ex(s, "type", &x) && !type_ok(json_object_get_string(x), v))
		return sfail(why, n, "wrong type, want", json_object_get_string(x));
	if (json_object_object_get_ex(s, "const", &x) && !json_object_equal(x, v))
		return sfail(why, n, "not the constant", NULL);
	if (json_object_object_get_ex(s, "enum", &x)) {
		bool ok = false;

		for (size_t i = 0; i < json_object_array_length(x); i++)
			ok = ok || json_object_equal(json_object_array_get_idx(x, i), v);
		if (!ok)
			return sfail(why, n, "not in enum", json_object_get_string(v));
	}
	if (json_object_object_get_ex(s, "oneOf", &x)) {
		int matches = 0;

		for (size_t i = 0; i < json_object_array_length(x); i++)
			matches += eval(json_object_array_get_idx(x, i), v, why, n);
		if (matches != 1)
			return sfail(why, n, "oneOf matched", matches ? "several" : "none");
	}
	if (json_object_is_type(v, json_type_string) &&
	    json_object_object_get_ex(s, "pattern", &x) &&
	    !pattern_ok(json_object_get_string(x), json_object_get_string(v)))
		return sfail(why, n, "pattern mismatch:", json_object_get_string(v));
	if (json_object_is_type(v, json_type_int)) {
		if (json_object_object_get_ex(s, "minimum", &x) &&
		    json_object_get_int64(v) < json_object_get_int64(x))
			return sfail(why, n, "below minimum", NULL);
		if (json_object_object_get_ex(s, "maximum", &x) &&
		    json_object_get_int64(v) > json_object_get_int64(x))
			return sfail(why, n, "above maximum", NULL);
	}
	if (json_object_is_type(v, json_type_array) && json_object_object_get_ex(s, "items", &x))
		for (size_t i = 0; i < json_object_array_length(v); i++)
			if (!eval(x, json_object_array_get_idx(v, i), why, n))
				return false;
	if (json_object_is_type(v, json_type_object))
		return eval_object(s, v, why, n);
	return true;
}

static bool schema_accepts(const char *text, char *why, size_t n)
{
	struct json_object *tree;
	struct policy_error err;
	bool ok;

	ck_assert_msg(policy_load_text(text, strlen(text), &tree, &err) == 0, "%s", err.message);
	ok = eval(schema, tree, why, n);
	json_object_put(tree);
	return ok;
}

static const char *const examples[] = {
	"docs/policies/agent-default.yaml",
	"docs/policies/claude-code.yaml",
	"docs/policies/offline-build.json",
};

START_TEST(test_examples)
{
	struct policy_vars vars = { "/home/u/proj", "/home/u", "/tmp/nono-s1" };
	struct policy_error err;
	struct policy *p;
	char why[512] = "", hex[65];
	size_t len;
	char *text = slurp(examples[_i], &len);

	ck_assert_msg(schema_accepts(text, why, sizeof(why)), "%s: schema: %s", examples[_i], why);
	ck_assert_msg(policy_parse(text, len, &p, &err) == 0, "%s: %s: %s (line %d)", examples[_i],
		      err.path, err.message, err.line);
	ck_assert_msg(policy_resolve(p, &vars, &err) == 0, "%s: %s: %s", examples[_i], err.path,
		      err.message);
	ck_assert_int_eq(policy_merge_base(p), 0);
	ck_assert_int_eq(policy_digest(p, hex), 0);
	policy_free(p);
	free(text);
}
END_TEST

/* Inputs both the schema and the validator must refuse (and a control). */
static const char *const both_bad[] = {
	"filesystem: {}\n",
	"version: 2\n",
	"version: 1\nfilesystem: {read: [/a], wirte: [/b]}\n",
	"version: 1\nfilesystem: {read: [{path: /a, optinal: true}]}\n",
	"version: 1\nfilesystem: {read: [\"~/x\"]}\n",
	"version: 1\nnetwork: {allow: [\"a.example.com\"]}\n",
	"version: 1\nnetwork: {allow: [\"a.example.com:443\"], inject: [{host: a.example.com, "
	"hedaer: X, value: v}]}\n",
	"version: 1\nnetwork: {routes: [{name: Bad_Name, upstream: \"https://x.example\"}]}\n",
	"version: 1\nnetwork: {routes: [{name: a, upstream: \"http://x.example\"}]}\n",
	"version: 1\nenv: {pass: [1A]}\n",
	"version: 1\nenv: {set: {\"A-B\": x}}\n",
	"version: 1\nlimits: {memory: 2g, pids: 0}\n",
	"version: 1\nlimits: {wall: 1w}\n",
	"version: 1\nsnapshot: {on_start: yes}\n",
	"version: 1\nenforcement: lenient\n",
};

START_TEST(test_agree_bad)
{
	struct policy_error err;
	struct policy *p;
	char why[512];

	ck_assert_msg(!schema_accepts(both_bad[_i], why, sizeof(why)), "schema accepts %s",
		      both_bad[_i]);
	ck_assert_int_eq(policy_parse(both_bad[_i], strlen(both_bad[_i]), &p, &err), POLICY_EINVAL);
}
END_TEST

START_TEST(test_agree_good)
{
	const char *t = "version: 1\nfilesystem: {read: [/a, {path: $HOME/b, optional: true}]}\n"
			"network: {allow: [\"*.a.example:443\"], inject: [{host: x.a.example, "
			"header: X-K, value: \"${secret:k}\"}], routes: [{name: r-1, "
			"upstream: \"https://r.example/v1\", env: R_URL}]}\n"
			"env: {pass: [PATH], set: {LANG: C}}\n"
			"limits: {memory: 2G, pids: 10, wall: 30, files: 64, cpu: 1h}\n"
			"snapshot: {workspace: $WORKSPACE, exclude: [a], on_start: true, on_exit: false}\n"
			"enforcement: best_effort\nbase: none\n";
	struct policy_error err;
	struct policy *p;
	char why[512] = "";

	ck_assert_msg(schema_accepts(t, why, sizeof(why)), "%s", why);
	ck_assert_int_eq(policy_parse(t, strlen(t), &p, &err), 0);
	policy_free(p);
}
END_TEST

static void load_schema(void)
{
	size_t len;
	char *text = slurp("proto/policy/policy.schema.json", &len);

	schema = json_tokener_parse(text);
	free(text);
	ck_assert_ptr_nonnull(schema);
}

static void free_schema(void)
{
	json_object_put(schema);
	schema = NULL;
}

static Suite *schema_suite(void)
{
	Suite *s = suite_create("policy-schema");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, load_schema, free_schema);
	tcase_add_test(tc, test_keys_match);
	tcase_add_test(tc, test_schema_closed);
	tcase_add_loop_test(tc, test_examples, 0, (int)(sizeof(examples) / sizeof(examples[0])));
	tcase_add_loop_test(tc, test_agree_bad, 0, (int)(sizeof(both_bad) / sizeof(both_bad[0])));
	tcase_add_test(tc, test_agree_good);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(schema_suite());
}
