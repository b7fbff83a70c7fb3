/*
 * Normal form of the filesystem rules: one rule per path, sorted by path
 * (byte order), access bits merged (a path in read and write gets both; it is
 * optional only if every mention is optional). A path that is both denied and
 * allowed is a contradiction and an error naming the deny entry. A deny
 * strictly below an allowed path is the normal case (carved out of it), and
 * an allow strictly below a denied path is allowed too: the most specific
 * rule wins (see DESIGN.md "Policy").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *policy_origin_name(uint8_t list)
{
	static const char *const names[] = { "filesystem.read", "filesystem.write",
					     "filesystem.deny", "base" };

	return list < 4 ? names[list] : "?";
}

static int rule_cmp(const void *a, const void *b)
{
	const struct policy_fs_rule *x = a, *y = b;
	int r = strcmp(x->path, y->path);

	if (r)
		return r;
	if (x->origin_list != y->origin_list)
		return (int)x->origin_list - (int)y->origin_list;
	return x->origin_index < y->origin_index ? -1 : x->origin_index > y->origin_index;
}

int policy_normalize_fs(struct policy *p, struct policy_error *err)
{
	size_t out = 0;

	qsort(p->fs, p->n_fs, sizeof(*p->fs), rule_cmp);
	/* Contradictions first, so that nothing is freed on failure. */
	for (size_t i = 0; i < p->n_fs; i++) {
		const struct policy_fs_rule *deny = NULL, *allow = NULL;
		size_t j;

		for (j = i; j < p->n_fs && !strcmp(p->fs[j].path, p->fs[i].path); j++) {
			if (p->fs[j].access & POLICY_FS_DENY)
				deny = deny ? deny : &p->fs[j];
			else
				allow = allow ? allow : &p->fs[j];
		}
		if (deny && allow) {
			char path[64];

			snprintf(path, sizeof(path), "%s[%u]", policy_origin_name(deny->origin_list),
				 deny->origin_index);
			return policy_fail(err, path, NULL, "%s is also allowed by %s[%u]",
					   deny->path, policy_origin_name(allow->origin_list),
					   allow->origin_index);
		}
		i = j - 1;
	}
	for (size_t i = 0; i < p->n_fs; i++) {
		if (out && !strcmp(p->fs[out - 1].path, p->fs[i].path)) {
			p->fs[out - 1].access |= p->fs[i].access;
			p->fs[out - 1].optional = p->fs[out - 1].optional && p->fs[i].optional;
			p->fs[out - 1].from_base = p->fs[out - 1].from_base && p->fs[i].from_base;
			free(p->fs[i].path);
			continue;
		}
		p->fs[out++] = p->fs[i];
	}
	p->n_fs = out;
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void policy_sort_strings(char **v, size_t *n)
{
	size_t out = 0;

	qsort(v, *n, sizeof(char *), str_cmp);
	for (size_t i = 0; i < *n; i++) {
		if (out && !strcmp(v[out - 1], v[i])) {
			free(v[i]);
			continue;
		}
		v[out++] = v[i];
	}
	*n = out;
}
