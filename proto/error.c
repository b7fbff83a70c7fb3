/*
 * The error table: every NONO_E_* code with its stable kind string and a
 * short human message, and the rpc_error value handlers fill.
 */
#include <stdio.h>
#include <string.h>

#include "error.h"

struct error_entry {
	int code;
	const char *kind;
	const char *message;
};

static const struct error_entry error_table[] = {
	{ NONO_E_PARSE, "parse_error", "Parse error" },
	{ NONO_E_INVALID_REQUEST, "invalid_request", "Invalid request" },
	{ NONO_E_METHOD_NOT_FOUND, "method_not_found", "Method not found" },
	{ NONO_E_INVALID_PARAMS, "invalid_params", "Invalid params" },
	{ NONO_E_INTERNAL, "internal_error", "Internal error" },
	{ NONO_E_PERMISSION_DENIED, "permission_denied", "Permission denied" },
	{ NONO_E_HELLO_REQUIRED, "hello_required", "Hello required" },
	{ NONO_E_UNSUPPORTED_PROTOCOL, "unsupported_protocol", "Unsupported protocol version" },
	{ NONO_E_NOT_FOUND, "not_found", "Not found" },
	{ NONO_E_ALREADY_EXISTS, "already_exists", "Already exists" },
	{ NONO_E_POLICY_INVALID, "policy_invalid", "Policy invalid" },
	{ NONO_E_SANDBOX_UNAVAILABLE, "sandbox_feature_unavailable", "Sandbox feature unavailable" },
	{ NONO_E_SIGNATURE_INVALID, "signature_invalid", "Signature invalid" },
	{ NONO_E_LIMIT_EXCEEDED, "limit_exceeded", "Limit exceeded" },
	{ NONO_E_BACKEND_UNAVAILABLE, "backend_unavailable", "Backend unavailable" },
	{ NONO_E_MESSAGE_TOO_LARGE, "message_too_large", "Message too large" },
	{ NONO_E_EXEC_FAILED, "exec_failed", "Exec failed" },
	{ NONO_E_BUSY, "busy", "Busy" },
	{ NONO_E_TIMEOUT, "timeout", "Timeout" },
};

#define ERROR_TABLE_LEN (sizeof(error_table) / sizeof(error_table[0]))

static const struct error_entry *error_find(int code)
{
	for (size_t i = 0; i < ERROR_TABLE_LEN; i++)
		if (error_table[i].code == code)
			return &error_table[i];
	return NULL;
}

const char *proto_error_kind(int code)
{
	const struct error_entry *e = error_find(code);

	return e ? e->kind : "internal_error";
}

const char *proto_error_message(int code)
{
	const struct error_entry *e = error_find(code);

	return e ? e->message : "Internal error";
}

int proto_error_code(const char *kind)
{
	if (kind == NULL)
		return 0;
	for (size_t i = 0; i < ERROR_TABLE_LEN; i++)
		if (strcmp(error_table[i].kind, kind) == 0)
			return error_table[i].code;
	return 0;
}

bool proto_error_known(int code)
{
	return error_find(code) != NULL;
}

int rpc_error_setv(struct rpc_error *err, int code, const char *field,
		   const char *fmt, va_list ap)
{
	if (err == NULL)
		return code;
	err->code = code;
	/* snprintf always NUL-terminates and truncates; "%s" keeps field literal. */
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	if (fmt != NULL)
		vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	else
		err->detail[0] = '\0';
	return code;
}

int rpc_error_set(struct rpc_error *err, int code, const char *field,
		  const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = rpc_error_setv(err, code, field, fmt, ap);
	va_end(ap);
	return ret;
}

void rpc_error_clear(struct rpc_error *err)
{
	if (err == NULL)
		return;
	err->code = NONO_E_OK;
	err->field[0] = '\0';
	err->detail[0] = '\0';
}
