/* The error table and the error value that travels from handlers to the wire. */
#ifndef PROTO_ERROR_H
#define PROTO_ERROR_H

#include <stdarg.h>
#include <stdbool.h>

#include "nono-protocol.h"

/*
 * An error as handlers report it. The RPC layer turns it into a JSON-RPC
 * error object: {"code": code, "message": <table message>,
 *                "data": {"kind": <table kind>, "field": field?, "detail": detail?}}.
 * field is the dotted path of the offending parameter ("" when none);
 * detail is a human sentence. Neither may ever contain secret bytes.
 */
struct rpc_error {
	int code;
	char field[128];
	char detail[512];
};

/* Stable kind string ("permission_denied"); "internal_error" for unknown codes. */
const char *proto_error_kind(int code);
/* Short human message ("Permission denied"). */
const char *proto_error_message(int code);
/* Reverse lookup: code for a kind string, or 0 when unknown. */
int proto_error_code(const char *kind);
/* True for codes in the table. */
bool proto_error_known(int code);

/*
 * Fill *err (may be NULL: then nothing happens) and return code, so that
 * handlers can write `return rpc_error_set(err, NONO_E_NOT_FOUND, "id", "no session %s", id);`.
 * field may be NULL. Always NUL-terminates, truncating if needed.
 */
int rpc_error_set(struct rpc_error *err, int code, const char *field,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int rpc_error_setv(struct rpc_error *err, int code, const char *field,
		   const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
void rpc_error_clear(struct rpc_error *err);

#endif
