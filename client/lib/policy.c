/*
 * libnono: the nono_policy builder used by nono_sandbox_apply(). A policy
 * is kept as a policy document (JSON tree) and validated by the policy
 * library when it is parsed and again, in full, when it is applied.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "policy.h"
#include "private.h"
#include "sandbox-int.h"

nono_error *error_from_policy(const struct policy_error *pe, int rc)
{
	nono_error *e;
	char *field;

	if (rc == POLICY_ENOMEM)
		return error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM, "out of memory");
	if (pe->line > 0)
		e = error_local(NONO_E_POLICY_INVALID, "policy_invalid", 0, "%d:%d: %s%s%s",
				pe->line, pe->column, pe->path, pe->path[0] ? ": " : "", pe->message);
	else
		e = error_local(NONO_E_POLICY_INVALID, "policy_invalid", 0, "%s%s%s", pe->path,
				pe->path[0] ? ": " : "", pe->message);
	field = strdup(pe->path);
	if (field != NULL && e->code == NONO_E_POLICY_INVALID) {
		free(e->field);
		e->field = field;
	} else {
		free(field);
	}
	return e;
}

nono_policy *nono_policy_new(void)
{
	nono_policy *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->doc = json_object_new_object();
	if (p->doc == NULL) {
		free(p);
		return NULL;
	}
	json_object_object_add(p->doc, "version", json_object_new_int(1));
	return p;
}

int nono_policy_from_text(const char *text, size_t len, nono_policy **out, nono_error **err)
{
	struct policy_error pe;
	struct policy *pol = NULL;
	nono_policy *p;
	int r;

	if (out == NULL || (text == NULL && len > 0))
		return error_out(err, error_local(NONO_E_INVALID_PARAMS, ERR_KIND_ARGUMENT, EINVAL,
						  "nono_policy_from_text: NULL argument"));
	*out = NULL;
	memset(&pe, 0, sizeof(pe));
	r = policy_parse(text != NULL ? text : "", len, &pol, &pe);
	if (r < 0)
		return error_out(err, error_from_policy(&pe, r));
	p = calloc(1, sizeof(*p));
	if (p != NULL)
		p->doc = policy_to_json(pol); /* canonical form, re-validated at apply */
	policy_free(pol);
	if (p == NULL || p->doc == NULL) {
		free(p);
		return error_out(err, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM,
						  "out of memory"));
	}
	*out = p;
	return 0;
}

static int policy_add_path(nono_policy *p, const char *list, const char *path)
{
	struct json_object *fs, *arr, *s;

	if (p == NULL || path == NULL || path[0] == '\0' || strlen(path) > POLICY_MAX_PATH)
		return NONO_E_INVALID_PARAMS;
	if (!json_object_object_get_ex(p->doc, "filesystem", &fs)) {
		fs = json_object_new_object();
		if (fs == NULL)
			return NONO_E_INTERNAL;
		json_object_object_add(p->doc, "filesystem", fs);
	}
	if (!json_object_object_get_ex(fs, list, &arr)) {
		arr = json_object_new_array();
		if (arr == NULL)
			return NONO_E_INTERNAL;
		json_object_object_add(fs, list, arr);
	}
	s = json_object_new_string(path);
	if (s == NULL || json_object_array_add(arr, s) < 0) {
		json_object_put(s);
		return NONO_E_INTERNAL;
	}
	return 0;
}

int nono_policy_allow_read(nono_policy *p, const char *path)
{
	return policy_add_path(p, "read", path);
}

int nono_policy_allow_write(nono_policy *p, const char *path)
{
	return policy_add_path(p, "write", path);
}

int nono_policy_deny(nono_policy *p, const char *path)
{
	return policy_add_path(p, "deny", path);
}

int nono_policy_allow_tcp_port(nono_policy *p, uint16_t port)
{
	if (p == NULL || port == 0)
		return NONO_E_INVALID_PARAMS;
	for (size_t i = 0; i < p->nports; i++)
		if (p->ports[i] == port)
			return 0;
	if (p->nports >= NONO_POLICY_MAX_PORTS)
		return NONO_E_LIMIT_EXCEEDED;
	p->ports[p->nports++] = port;
	return 0;
}

int nono_policy_set_best_effort(nono_policy *p, bool best_effort)
{
	if (p == NULL)
		return NONO_E_INVALID_PARAMS;
	json_object_object_add(p->doc, "enforcement",
			       json_object_new_string(best_effort ? "best_effort" : "strict"));
	return 0;
}

char *nono_policy_to_json(const nono_policy *p)
{
	if (p == NULL)
		return NULL;
	return strdup(json_object_to_json_string_ext(p->doc, JSON_C_TO_STRING_PLAIN |
						     JSON_C_TO_STRING_NOSLASHESCAPE));
}

void nono_policy_free(nono_policy *p)
{
	if (p == NULL)
		return;
	json_object_put(p->doc);
	free(p);
}
