/*
 * Policy text -> json-c tree, for both JSON and YAML.
 *
 * One reader serves both formats: libyaml's event API. JSON is (for our
 * purposes) YAML flow syntax, so a JSON policy gives the same events and the
 * same tree. Doing it this way gives one place that
 *   - rejects duplicate keys (json-c's own parser silently keeps the last),
 *   - rejects anchors, aliases, tags and complex keys (no billion-laughs:
 *     without aliases the tree is never larger than the text),
 *   - bounds size (POLICY_MAX_TEXT), depth (POLICY_MAX_DEPTH) and node count,
 *   - records the line/column of every node for error messages.
 * Scalars are typed by the YAML 1.2 core schema, for plain (unquoted)
 * scalars only: null/~/empty, true/false, decimal integers, floats; anything
 * else, and every quoted scalar, is a string. So YAML 1.1's yes/no/on/off are
 * strings here, and a boolean key given "yes" is a type error.
 * Known limit: libyaml refuses \u escapes of UTF-16 surrogates, so a JSON
 * "\ud83d\ude00" must be written as the UTF-8 character itself.
 * Input must be UTF-8 (no BOM-driven UTF-16) and must not contain NUL.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "internal.h"

#define POS_SHIFT (sizeof(uintptr_t) * 4)
#define POS_MASK ((((uintptr_t)1) << POS_SHIFT) - 1)

struct frame {
	struct json_object *obj; /* mapping or sequence being filled */
	char *key;               /* mapping: pending key, owned */
	int key_line, key_col;
};

struct loader {
	struct frame stack[POLICY_MAX_DEPTH + 1];
	int depth;
	size_t nodes;
	struct json_object *root;
	struct policy_error *err;
};

static void pos_set(struct json_object *o, const yaml_mark_t *m)
{
	uintptr_t line = (uintptr_t)m->line + 1, col = (uintptr_t)m->column + 1;

	/* json-c uses a double's userdata as its format string: leave them. */
	if (!o || json_object_is_type(o, json_type_double))
		return;
	if (line > POS_MASK || col > POS_MASK)
		return;
	json_object_set_userdata(o, (void *)((line << POS_SHIFT) | col), NULL);
}

void policy_node_pos(struct json_object *node, int *line, int *column)
{
	uintptr_t v = 0;

	*line = *column = 0;
	if (node && !json_object_is_type(node, json_type_double))
		v = (uintptr_t)json_object_get_userdata(node);
	*line = (int)(v >> POS_SHIFT);
	*column = (int)(v & POS_MASK);
}

static int load_fail(struct loader *l, const yaml_mark_t *m, const char *msg)
{
	policy_fail(l->err, "", NULL, "%s", msg);
	if (l->err && m) {
		l->err->line = (int)m->line + 1;
		l->err->column = (int)m->column + 1;
	}
	return POLICY_EINVAL;
}

static bool all_in(const char *s, const char *set)
{
	return *s && s[strspn(s, set)] == '\0';
}

/* Resolve a plain scalar by the core schema; quoted ones are strings. */
static int scalar_value(struct loader *l, const yaml_event_t *e, struct json_object **out)
{
	const char *s = (const char *)e->data.scalar.value;

	*out = NULL;
	if (e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		const char *d = (*s == '-' || *s == '+') ? s + 1 : s;

		if (!strcmp(s, "") || !strcmp(s, "~") || !strcmp(s, "null") ||
		    !strcmp(s, "Null") || !strcmp(s, "NULL"))
			return 0; /* json-c null is NULL */
		if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
			*out = json_object_new_boolean(1);
		else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
			*out = json_object_new_boolean(0);
		else if (all_in(d, "0123456789")) {
			char *end;
			long long v;

			errno = 0;
			v = strtoll(s, &end, 10);
			if (errno == ERANGE || *end)
				return load_fail(l, &e->start_mark, "integer out of range");
			*out = json_object_new_int64(v);
		} else if (all_in(d, "0123456789.eE+-") && strpbrk(d, "0123456789")) {
			char *end;
			double v = strtod(s, &end);

			if (*end)
				*out = json_object_new_string(s);
			else
				*out = json_object_new_double(v);
		} else
			*out = json_object_new_string(s);
	} else
		*out = json_object_new_string_len(s, (int)e->data.scalar.length);
	if (!*out)
		return policy_oom(l->err);
	return 0;
}

/* Attach a finished node to its parent (or make it the root). Takes v. */
static int attach(struct loader *l, struct json_object *v, const yaml_mark_t *m)
{
	struct frame *f;

	if (l->depth == 0) {
		l->root = v;
		return 0;
	}
	f = &l->stack[l->depth - 1];
	if (json_object_is_type(f->obj, json_type_array)) {
		if (json_object_array_add(f->obj, v) < 0) {
			json_object_put(v);
			return policy_oom(l->err);
		}
		return 0;
	}
	if (!f->key) { /* on_start refuses collections as keys: unreachable */
		json_object_put(v);
		return load_fail(l, m, "mapping keys must be scalars");
	}
	if (json_object_object_get_ex(f->obj, f->key, NULL)) {
		struct yaml_mark_s km = { 0, (size_t)f->key_line - 1, (size_t)f->key_col - 1 };
		char msg[300];

		json_object_put(v);
		snprintf(msg, sizeof(msg), "duplicate key \"%.200s\"", f->key);
		return load_fail(l, &km, msg);
	}
	if (json_object_object_add(f->obj, f->key, v) < 0) {
		json_object_put(v);
		return policy_oom(l->err);
	}
	free(f->key);
	f->key = NULL;
	return 0;
}

static int on_scalar(struct loader *l, const yaml_event_t *e)
{
	struct frame *f = l->depth ? &l->stack[l->depth - 1] : NULL;
	struct json_object *v;
	int r;

	if (strlen((const char *)e->data.scalar.value) != e->data.scalar.length)
		return load_fail(l, &e->start_mark, "NUL character in a value");
	if (f && json_object_is_type(f->obj, json_type_object) && !f->key) {
		f->key = strdup((const char *)e->data.scalar.value);
		if (!f->key)
			return policy_oom(l->err);
		f->key_line = (int)e->start_mark.line + 1;
		f->key_col = (int)e->start_mark.column + 1;
		return 0;
	}
	r = scalar_value(l, e, &v);
	if (r < 0)
		return r;
	pos_set(v, &e->start_mark);
	return attach(l, v, &e->start_mark);
}

static int on_start(struct loader *l, const yaml_event_t *e, bool map)
{
	struct frame *f = l->depth ? &l->stack[l->depth - 1] : NULL;
	struct json_object *v;

	if (f && json_object_is_type(f->obj, json_type_object) && !f->key)
		return load_fail(l, &e->start_mark, "mapping keys must be scalars");
	if (l->depth >= POLICY_MAX_DEPTH)
		return load_fail(l, &e->start_mark, "nesting too deep");
	v = map ? json_object_new_object() : json_object_new_array();
	if (!v)
		return policy_oom(l->err);
	pos_set(v, &e->start_mark);
	l->stack[l->depth].obj = v;
	l->stack[l->depth].key = NULL;
	l->depth++;
	return 0;
}

static int on_end(struct loader *l, const yaml_event_t *e)
{
	struct frame *f;
	struct json_object *v;

	if (l->depth == 0) /* libyaml balances events; do not trust it blindly */
		return load_fail(l, &e->start_mark, "unbalanced collection end");
	f = &l->stack[--l->depth];
	v = f->obj;

	f->obj = NULL;
	free(f->key); /* cannot be set: the parser balances keys and values */
	f->key = NULL;
	return attach(l, v, &e->start_mark);
}

static int on_event(struct loader *l, const yaml_event_t *e, int *docs)
{
	const yaml_char_t *anchor = NULL, *tag = NULL;

	switch (e->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1)
			return load_fail(l, &e->start_mark, "more than one document");
		return 0;
	case YAML_ALIAS_EVENT:
		return load_fail(l, &e->start_mark, "YAML aliases are not allowed");
	case YAML_SCALAR_EVENT:
		anchor = e->data.scalar.anchor;
		tag = e->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = e->data.sequence_start.anchor;
		tag = e->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = e->data.mapping_start.anchor;
		tag = e->data.mapping_start.tag;
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_end(l, e);
	default:
		return 0;
	}
	if (anchor)
		return load_fail(l, &e->start_mark, "YAML anchors are not allowed");
	if (tag)
		return load_fail(l, &e->start_mark, "YAML tags are not allowed");
	if (++l->nodes > POLICY_MAX_NODES)
		return load_fail(l, &e->start_mark, "too many values");
	if (e->type == YAML_SCALAR_EVENT)
		return on_scalar(l, e);
	return on_start(l, e, e->type == YAML_MAPPING_START_EVENT);
}

static void loader_cleanup(struct loader *l)
{
	for (int i = 0; i < l->depth; i++) {
		json_object_put(l->stack[i].obj);
		free(l->stack[i].key);
	}
	l->depth = 0;
}

int policy_load_text(const char *buf, size_t len, struct json_object **out,
		     struct policy_error *err)
{
	struct loader l = { .err = err };
	yaml_parser_t parser;
	yaml_event_t ev;
	int docs = 0, r = 0;
	bool done = false;

	*out = NULL;
	if (len > POLICY_MAX_TEXT)
		return policy_fail(err, "", NULL, "policy text larger than %u bytes",
				   POLICY_MAX_TEXT);
	/* A UTF-8 byte order mark is allowed; libyaml mis-tracks it with an
	 * explicit encoding, so drop it here. */
	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) {
		buf += 3;
		len -= 3;
	}
	if (!yaml_parser_initialize(&parser))
		return policy_oom(err);
	yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done && r == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			if (parser.error == YAML_MEMORY_ERROR) {
				r = policy_oom(err);
			} else {
				char msg[400];

				snprintf(msg, sizeof(msg), "syntax error: %s%s%s",
					 parser.problem ? parser.problem : "unknown",
					 parser.context ? " " : "",
					 parser.context ? parser.context : "");
				r = load_fail(&l, &parser.problem_mark, msg);
			}
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		r = on_event(&l, &ev, &docs);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	if (r == 0 && docs == 0)
		r = policy_fail(err, "", NULL, "empty policy");
	if (r < 0) {
		loader_cleanup(&l);
		json_object_put(l.root);
		return r;
	}
	*out = l.root;
	return 0;
}
