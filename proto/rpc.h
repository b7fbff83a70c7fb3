/* The JSON-RPC 2.0 envelope: parse requests and responses, build messages. */
#ifndef PROTO_RPC_H
#define PROTO_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "error.h"

/*
 * A parsed request or notification. root is owned (release with
 * rpc_request_free); method, id and params borrow from root.
 * id is NULL for a notification, and also for a request whose id is JSON
 * null (json-c represents null as NULL): use rpc_request_is_notification()
 * to decide whether to answer. params is NULL when absent; when present
 * it is always a JSON object (arrays are refused: nono uses named params).
 */
struct rpc_request {
	struct json_object *root;
	const char *method;
	struct json_object *id;
	struct json_object *params;
};

/*
 * Parse one framed message (without its LF). On success returns 0 and fills
 * *req. On failure returns a negative NONO_E_* code, fills *err, frees
 * everything, and sets *err_id to a NEW reference to the request id when
 * one could be recovered (else NULL) so the error response can echo it.
 * Refuses: invalid JSON or UTF-8, embedded NUL, trailing bytes other than
 * whitespace, nesting deeper than 64 (PARSE); non-object or batch arrays,
 * "jsonrpc" != "2.0", members other than jsonrpc/method/params/id,
 * missing/non-string/empty/NUL-containing method or one over 128 bytes,
 * id not string (<= 128 bytes)/int64/null (fractional numbers, objects,
 * arrays, booleans), params not object (INVALID_REQUEST, with field naming
 * the member). More than 65536 JSON values (a bound on json-c's ~100 bytes
 * per value) is LIMIT_EXCEEDED.
 */
int rpc_parse_request(const char *buf, size_t len, struct rpc_request *req,
		      struct rpc_error *err, struct json_object **err_id);
/* True when the message had no "id" member at all: send no response. */
bool rpc_request_is_notification(const struct rpc_request *req);
/* Release req->root and zero *req; NULL and a zeroed struct are no-ops. */
void rpc_request_free(struct rpc_request *req);

/* A parsed message received by a client. */
enum rpc_msg_type {
	RPC_MSG_RESULT = 1,
	RPC_MSG_ERROR,
	RPC_MSG_NOTIFICATION,
};

struct rpc_response {
	enum rpc_msg_type type;
	struct json_object *root;     /* owned */
	struct json_object *id;       /* borrowed; NULL for notifications */
	struct json_object *result;   /* borrowed; RESULT only */
	const char *method;           /* borrowed; NOTIFICATION only */
	struct json_object *params;   /* borrowed; NOTIFICATION only, may be NULL */
	struct rpc_error error;       /* ERROR only: code, field, detail from data */
	char message[256];            /* ERROR only: the "message" member */
};

/*
 * Parse a message received by a client, as strictly as requests: a
 * notification (method, optional object params, no id) or a response (id
 * plus exactly one of result/error; error is {code, message, data?} and data
 * only {kind?, field?, detail?} strings, copied truncated to valid UTF-8).
 * 0 or negative NONO_E_* (*err filled; *resp zeroed).
 */
int rpc_parse_response(const char *buf, size_t len, struct rpc_response *resp,
		       struct rpc_error *err);
void rpc_response_free(struct rpc_response *resp);

/*
 * Builders. Each returns a NEW object (caller owns). Arguments marked
 * "taken" are owned by the result afterwards, even on failure; "borrowed"
 * ones get their reference count raised.
 */
struct json_object *rpc_make_request(struct json_object *id /* borrowed, NULL = notification */,
				     const char *method,
				     struct json_object *params /* taken, may be NULL */);
struct json_object *rpc_make_result(struct json_object *id /* borrowed, NULL -> null */,
				    struct json_object *result /* taken, NULL -> {} */);
/* Codes not in the error table go out as NONO_E_INTERNAL; err NULL likewise. */
struct json_object *rpc_make_error(struct json_object *id /* borrowed, NULL -> null */,
				   const struct rpc_error *err);

/*
 * Serialize obj compactly (no pretty printing, no slash escaping) followed by
 * one LF. Returns a malloc'd buffer and its length (LF included), or NULL.
 */
char *rpc_serialize(struct json_object *obj, size_t *len);

#endif
