/*
 * sandbox_spec_dup(): a copy of a spec that owns every string and array it
 * points to, for compiling it later on another thread, after the policy,
 * environment and configuration the original borrowed from may be gone.
 */
#include "sandbox.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct spec_dup {
	struct sandbox_spec spec;     /* first: the pointer handed out */
	struct sandbox_path_rule *paths;
	char **pass, **set, **from;   /* NULL-terminated */
	uint16_t *ports;
	gid_t *groups;
	char *cwd;
};

static void strv_free(char **v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* The first n strings of v (n = SIZE_MAX: up to its NULL), NULL-terminated. */
static char **strv_dup(const char *const *v, size_t n)
{
	size_t len = 0;
	char **out;

	while (v != NULL && len < n && v[len] != NULL)
		len++;
	out = calloc(len + 1, sizeof(*out));
	for (size_t i = 0; out != NULL && i < len; i++)
		if ((out[i] = strdup(v[i])) == NULL) {
			strv_free(out);
			return NULL;
		}
	return out;
}

void sandbox_spec_dup_free(struct sandbox_spec *spec)
{
	struct spec_dup *d = (struct spec_dup *)spec;

	if (d == NULL)
		return;
	for (size_t i = 0; d->paths != NULL && i < d->spec.npaths; i++)
		free((char *)d->paths[i].path);
	free(d->paths);
	strv_free(d->pass);
	strv_free(d->set);
	strv_free(d->from);
	free(d->ports);
	free(d->groups);
	free(d->cwd);
	free(d);
}

struct sandbox_spec *sandbox_spec_dup(const struct sandbox_spec *in)
{
	const struct sandbox_env_spec *e = &in->env;
	struct spec_dup *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->spec = *in;
	d->spec.npaths = 0; /* counts the copied paths until all are there */
	d->paths = calloc(in->npaths + 1, sizeof(*d->paths));
	d->pass = strv_dup(e->pass, e->npass);
	d->set = strv_dup(e->set, e->nset);
	d->from = strv_dup((const char *const *)e->from, SIZE_MAX);
	d->ports = calloc(in->nports + 1, sizeof(*d->ports));
	d->groups = calloc(in->creds.ngroups + 1, sizeof(*d->groups));
	if (d->paths == NULL || d->pass == NULL || d->set == NULL || d->from == NULL ||
	    d->ports == NULL || d->groups == NULL ||
	    (in->cwd != NULL && (d->cwd = strdup(in->cwd)) == NULL))
		goto fail;
	for (size_t i = 0; i < in->npaths; i++) {
		d->paths[i] = in->paths[i];
		if ((d->paths[i].path = strdup(in->paths[i].path)) == NULL)
			goto fail;
		d->spec.npaths = i + 1;
	}
	if (in->nports > 0)
		memcpy(d->ports, in->ports, in->nports * sizeof(*d->ports));
	if (in->creds.ngroups > 0)
		memcpy(d->groups, in->creds.groups, in->creds.ngroups * sizeof(*d->groups));
	d->spec.paths = d->paths;
	d->spec.env.pass = (const char *const *)d->pass;
	d->spec.env.set = (const char *const *)d->set;
	d->spec.env.from = e->from != NULL ? d->from : NULL;
	d->spec.ports = d->ports;
	d->spec.creds.groups = in->creds.groups != NULL ? d->groups : NULL;
	d->spec.cwd = d->cwd;
	return &d->spec;
fail:
	sandbox_spec_dup_free(&d->spec);
	return NULL;
}
