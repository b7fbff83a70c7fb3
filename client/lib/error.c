/* libnono errors: the nono_error value, its accessors and constructors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

/* Returned when even the error cannot be allocated; never freed. */
static nono_error error_nomem = {
	.code = NONO_E_INTERNAL,
	.remote = false,
	.errnum = ENOMEM,
	.kind = (char *)ERR_KIND_NOMEM,
	.field = (char *)"",
	.detail = (char *)"out of memory",
	.message = (char *)"out of memory",
};

static nono_error *error_new(int code, bool remote, int errnum, const char *kind,
			     const char *field, const char *detail, const char *message)
{
	nono_error *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return &error_nomem;
	e->code = code;
	e->remote = remote;
	e->errnum = errnum;
	e->kind = strdup(kind != NULL ? kind : "");
	e->field = strdup(field != NULL ? field : "");
	e->detail = strdup(detail != NULL ? detail : "");
	e->message = strdup(message != NULL ? message : "");
	if (e->kind == NULL || e->field == NULL || e->detail == NULL || e->message == NULL) {
		nono_error_free(e);
		return &error_nomem;
	}
	return e;
}

nono_error *error_local(int code, const char *kind, int errnum, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return error_new(code, false, errnum, kind, "", detail, detail);
}

nono_error *error_remote(const struct rpc_response *resp)
{
	const struct rpc_error *re = &resp->error;
	const char *kind = NULL;
	struct json_object *data, *k;

	/* Prefer the daemon's own kind string; fall back to the table. */
	if (json_object_object_get_ex(resp->root, "error", &data) &&
	    json_object_object_get_ex(data, "data", &data) &&
	    json_object_object_get_ex(data, "kind", &k) &&
	    json_object_is_type(k, json_type_string) &&
	    json_object_get_string_len(k) > 0 && json_object_get_string_len(k) < 64)
		kind = json_object_get_string(k);
	if (kind == NULL)
		kind = proto_error_kind(re->code);
	return error_new(re->code, true, 0, kind, re->field,
			 re->detail[0] != '\0' ? re->detail : resp->message,
			 resp->message);
}

int error_out(nono_error **out, nono_error *e)
{
	int code = e != NULL ? e->code : NONO_E_INTERNAL;

	if (out != NULL)
		*out = e;
	else
		nono_error_free(e);
	return code;
}

int nono_error_code(const nono_error *e)
{
	return e != NULL ? e->code : NONO_E_OK;
}

const char *nono_error_kind(const nono_error *e)
{
	return e != NULL ? e->kind : "";
}

const char *nono_error_field(const nono_error *e)
{
	return e != NULL ? e->field : "";
}

const char *nono_error_detail(const nono_error *e)
{
	return e != NULL ? e->detail : "";
}

const char *nono_error_message(const nono_error *e)
{
	return e != NULL ? e->message : "";
}

int nono_error_errno(const nono_error *e)
{
	return e != NULL ? e->errnum : 0;
}

bool nono_error_is_remote(const nono_error *e)
{
	return e != NULL && e->remote;
}

nono_error *nono_error_dup(const nono_error *e)
{
	nono_error *d;

	if (e == NULL)
		return NULL;
	if (e == &error_nomem)
		return &error_nomem;
	d = error_new(e->code, e->remote, e->errnum, e->kind, e->field, e->detail,
		      e->message);
	return d == &error_nomem ? NULL : d;
}

void nono_error_free(nono_error *e)
{
	if (e == NULL || e == &error_nomem)
		return;
	free(e->kind);
	free(e->field);
	free(e->detail);
	free(e->message);
	free(e);
}

nono_error *error_copy(const nono_error *e)
{
	nono_error *d = nono_error_dup(e);

	return d != NULL ? d : &error_nomem;
}
