/*
 * The JSON-RPC 2.0 envelope. Both directions get hostile input (a client
 * from anyone on the socket, the daemon's replies from whatever answers on
 * the socket path), so parsing is strict: one JSON object per message, no
 * trailing bytes, no embedded NUL, bounded nesting, no batches, no unknown
 * envelope members, and every member typed.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "utf8.h"

#define RPC_MAX_DEPTH 64
#define RPC_MAX_METHOD 128
/*
 * json-c spends ~100 bytes per value: 1 MiB of "[]," costs ~50 MiB. A
 * request names at most this many values (responses are not limited: the
 * client chose to ask).
 */
#define RPC_MAX_REQUEST_VALUES 65536

/* Bytes the tokener may leave after the object: JSON whitespace only. */
static bool rpc_only_ws(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/*
 * Raw control bytes are invalid JSON (RFC 8259 wants them escaped inside
 * strings); json-c accepts them. Whitespace TAB/CR/LF stays allowed.
 */
static bool rpc_has_ctl(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
			return true;
	}
	return false;
}

/* json-c accepts NaN, Infinity and 1e999, which JSON has no way to express. */
static bool rpc_all_finite(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_double:
		return isfinite(json_object_get_double(o));
	case json_type_array:
		for (size_t i = 0, n = json_object_array_length(o); i < n; i++)
			if (!rpc_all_finite(json_object_array_get_idx(o, i)))
				return false;
		return true;
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			(void)key;
			if (!rpc_all_finite(val))
				return false;
		}
		return true;
	}
	default:
		return true;
	}
}

/*
 * Upper bound on the number of values in buf: containers and separators
 * outside strings. Only meaningful for input the tokener then accepts.
 */
static size_t rpc_count_values(const char *p, size_t n)
{
	bool in_str = false, esc = false;
	size_t count = 1;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{' || c == ',') {
			count++;
		}
	}
	return count;
}

/*
 * Parse buf[0..len) as exactly one JSON value. Returns 0 and a new
 * reference in *out (NULL for a JSON null), or NONO_E_PARSE with err set
 * (NONO_E_LIMIT_EXCEEDED when max_values > 0 and buf holds more values).
 */
/*
 * One tokener per thread, reset for each message: making one costs more
 * than parsing a typical request. Freed at thread exit by nobody: it is one
 * small allocation per thread that parses.
 */
static struct json_tokener *rpc_tokener(void)
{
	static __thread struct json_tokener *tok;

	if (tok == NULL) {
		tok = json_tokener_new_ex(RPC_MAX_DEPTH);
		if (tok == NULL)
			return NULL;
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	}
	json_tokener_reset(tok);
	return tok;
}

static int rpc_parse_json(const char *buf, size_t len, size_t max_values,
			  struct json_object **out, struct rpc_error *err)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end;

	*out = NULL;
	if (buf == NULL || len == 0 || rpc_only_ws(buf, len))
		return rpc_error_set(err, NONO_E_PARSE, NULL, "empty message");
	if (memchr(buf, '\0', len) != NULL)
		return rpc_error_set(err, NONO_E_PARSE, NULL, "message contains a NUL byte");
	/* json-c's own UTF-8 check lets overlong forms through: use ours. */
	if (!utf8_valid(buf, len))
		return rpc_error_set(err, NONO_E_PARSE, NULL, "message is not valid UTF-8");
	if (rpc_has_ctl(buf, len))
		return rpc_error_set(err, NONO_E_PARSE, NULL,
				     "message contains a raw control character");
	if (len > INT32_MAX)
		return rpc_error_set(err, NONO_E_PARSE, NULL, "message too long");
	if (max_values > 0 && rpc_count_values(buf, len) > max_values)
		return rpc_error_set(err, NONO_E_LIMIT_EXCEEDED, NULL,
				     "more than %zu JSON values in one message", max_values);

	tok = rpc_tokener();
	if (tok == NULL)
		return rpc_error_set(err, NONO_E_INTERNAL, NULL, "out of memory");

	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_continue) {
		/* A bare top-level number needs a delimiter to finish. */
		obj = json_tokener_parse_ex(tok, " ", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	} else {
		end = json_tokener_get_parse_end(tok);
	}
	if (jerr != json_tokener_success) {
		json_object_put(obj);
		if (jerr == json_tokener_continue)
			rpc_error_set(err, NONO_E_PARSE, NULL, "incomplete JSON");
		else if (jerr == json_tokener_error_depth)
			rpc_error_set(err, NONO_E_PARSE, NULL,
				      "JSON nested deeper than %d levels", RPC_MAX_DEPTH);
		else
			rpc_error_set(err, NONO_E_PARSE, NULL, "invalid JSON: %s",
				      json_tokener_error_desc(jerr));
		return NONO_E_PARSE;
	}
	if (end < len && !rpc_only_ws(buf + end, len - end)) {
		json_object_put(obj);
		return rpc_error_set(err, NONO_E_PARSE, NULL,
				     "trailing data after the JSON value");
	}
	/* Recursion is bounded by the tokener's depth limit. */
	if (!rpc_all_finite(obj)) {
		json_object_put(obj);
		return rpc_error_set(err, NONO_E_PARSE, NULL,
				     "number is not finite (NaN, Infinity or out of range)");
	}
	*out = obj;
	return 0;
}

/* Top level must be a single object; arrays are batches, which nono refuses. */
static int rpc_check_object(struct json_object *root, struct rpc_error *err)
{
	if (json_object_is_type(root, json_type_array))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, NULL,
				     "batch requests are not supported");
	if (!json_object_is_type(root, json_type_object))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, NULL,
				     "message must be a JSON object");
	return 0;
}

static int rpc_check_members(struct json_object *root, const char *const *allowed,
			     struct rpc_error *err)
{
	json_object_object_foreach(root, key, val) {
		bool ok = false;

		(void)val;
		for (size_t i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				ok = true;
		if (!ok)
			return rpc_error_set(err, NONO_E_INVALID_REQUEST, key,
					     "unknown member in envelope");
	}
	return 0;
}

static int rpc_check_version(struct json_object *root, struct rpc_error *err)
{
	struct json_object *v;

	if (!json_object_object_get_ex(root, "jsonrpc", &v))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "jsonrpc",
				     "missing \"jsonrpc\": \"2.0\"");
	if (!json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) != 3 ||
	    memcmp(json_object_get_string(v), "2.0", 3) != 0)
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "jsonrpc",
				     "\"jsonrpc\" must be \"2.0\"");
	return 0;
}

/* An integer id must fit int64 (json-c clamps larger literals to UINT64/INT64 max). */
static bool rpc_int_fits(struct json_object *o)
{
	return json_object_get_int64(o) < 0 ||
	       json_object_get_uint64(o) <= (uint64_t)INT64_MAX;
}

/* id must be string, integer or null. *present tells whether "id" exists. */
static int rpc_check_id(struct json_object *root, struct json_object **id,
			bool *present, struct rpc_error *err)
{
	*id = NULL;
	*present = json_object_object_get_ex(root, "id", id);
	if (!*present || *id == NULL)
		return 0;
	if (json_object_is_type(*id, json_type_string)) {
		size_t n = (size_t)json_object_get_string_len(*id);

		if (n > RPC_MAX_METHOD || memchr(json_object_get_string(*id), '\0', n))
			goto bad;
		return 0;
	}
	if (json_object_is_type(*id, json_type_int) && rpc_int_fits(*id))
		return 0;
bad:
	*id = NULL;
	return rpc_error_set(err, NONO_E_INVALID_REQUEST, "id",
			     "id must be a string of at most %d bytes, a 64-bit integer or null",
			     RPC_MAX_METHOD);
}

static int rpc_check_method(struct json_object *root, const char **method,
			    struct rpc_error *err)
{
	struct json_object *m;
	const char *s;
	size_t n;

	if (!json_object_object_get_ex(root, "method", &m))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "method", "missing method");
	if (!json_object_is_type(m, json_type_string))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "method",
				     "method must be a string");
	s = json_object_get_string(m);
	n = (size_t)json_object_get_string_len(m);
	if (n == 0)
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "method", "method is empty");
	if (n > RPC_MAX_METHOD)
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "method",
				     "method longer than %d bytes", RPC_MAX_METHOD);
	if (strlen(s) != n)
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "method",
				     "method contains a NUL character");
	*method = s;
	return 0;
}

/* params: absent, or an object (named params). */
static int rpc_check_params(struct json_object *root, struct json_object **params,
			    struct rpc_error *err)
{
	struct json_object *p;

	*params = NULL;
	if (!json_object_object_get_ex(root, "params", &p))
		return 0;
	if (!json_object_is_type(p, json_type_object))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "params",
				     "params must be an object (named parameters)");
	*params = p;
	return 0;
}

static const char *const rpc_request_members[] = {
	"jsonrpc", "method", "params", "id", NULL,
};

int rpc_parse_request(const char *buf, size_t len, struct rpc_request *req,
		      struct rpc_error *err, struct json_object **err_id)
{
	struct json_object *root, *id;
	bool has_id;
	int r;

	memset(req, 0, sizeof(*req));
	if (err_id != NULL)
		*err_id = NULL;
	r = rpc_parse_json(buf, len, RPC_MAX_REQUEST_VALUES, &root, err);
	if (r < 0)
		return r;
	r = rpc_check_object(root, err);
	if (r < 0)
		goto fail;
	/* Recover the id first so that every later error can echo it. */
	r = rpc_check_id(root, &id, &has_id, err);
	if (r < 0)
		goto fail;
	if (err_id != NULL)
		*err_id = json_object_get(id);
	if ((r = rpc_check_version(root, err)) < 0 ||
	    (r = rpc_check_members(root, rpc_request_members, err)) < 0 ||
	    (r = rpc_check_method(root, &req->method, err)) < 0 ||
	    (r = rpc_check_params(root, &req->params, err)) < 0)
		goto fail; /* *err_id keeps its reference for the error reply */
	req->root = root;
	req->id = id;
	if (err_id != NULL) {
		json_object_put(*err_id);
		*err_id = NULL;
	}
	return 0;

fail:
	memset(req, 0, sizeof(*req));
	json_object_put(root);
	return r;
}

bool rpc_request_is_notification(const struct rpc_request *req)
{
	return req->root == NULL || !json_object_object_get_ex(req->root, "id", NULL);
}

void rpc_request_free(struct rpc_request *req)
{
	if (req == NULL)
		return;
	json_object_put(req->root);
	memset(req, 0, sizeof(*req));
}

/* Copy a string member of data into dst (truncated, NUL-terminated). */
static int rpc_copy_str(struct json_object *obj, const char *key, char *dst,
			size_t size, const char *field, struct rpc_error *err)
{
	struct json_object *v;

	dst[0] = '\0';
	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, field,
				     "must be a string");
	snprintf(dst, size, "%s", json_object_get_string(v));
	/* Never hand out a string cut in the middle of a UTF-8 sequence. */
	dst[utf8_valid_prefix(dst, strlen(dst))] = '\0';
	return 0;
}

static int rpc_parse_error_obj(struct json_object *e, struct rpc_response *resp,
			       struct rpc_error *err)
{
	static const char *const error_members[] = { "code", "message", "data", NULL };
	static const char *const data_members[] = { "kind", "field", "detail", NULL };
	struct json_object *code, *data;
	char kind[64];
	int64_t c;
	int r;

	if (!json_object_is_type(e, json_type_object))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "error",
				     "error must be an object");
	if ((r = rpc_check_members(e, error_members, err)) < 0)
		return r;
	if (!json_object_object_get_ex(e, "code", &code) ||
	    !json_object_is_type(code, json_type_int))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "error.code",
				     "error code must be an integer");
	c = json_object_get_int64(code);
	if (c < INT32_MIN || c > INT32_MAX || !rpc_int_fits(code))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "error.code",
				     "error code out of range");
	if (!json_object_object_get_ex(e, "message", NULL))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "error.message",
				     "missing error message");
	if ((r = rpc_copy_str(e, "message", resp->message, sizeof(resp->message),
			      "error.message", err)) < 0)
		return r;
	resp->error.code = (int)c;
	if (!json_object_object_get_ex(e, "data", &data))
		return 0;
	/* data is {kind, field, detail} in nono; anything else is refused. */
	if (!json_object_is_type(data, json_type_object))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "error.data",
				     "error data must be an object");
	if ((r = rpc_check_members(data, data_members, err)) < 0 ||
	    (r = rpc_copy_str(data, "kind", kind, sizeof(kind), "error.data.kind", err)) < 0 ||
	    (r = rpc_copy_str(data, "field", resp->error.field, sizeof(resp->error.field),
			      "error.data.field", err)) < 0 ||
	    (r = rpc_copy_str(data, "detail", resp->error.detail, sizeof(resp->error.detail),
			      "error.data.detail", err)) < 0)
		return r;
	return 0;
}

static const char *const rpc_response_members[] = {
	"jsonrpc", "id", "result", "error", NULL,
};
static const char *const rpc_notification_members[] = {
	"jsonrpc", "method", "params", NULL,
};

static int rpc_classify(struct json_object *root, struct rpc_response *resp,
			struct rpc_error *err)
{
	struct json_object *e;
	bool has_id, has_result, has_error;
	int r;

	if ((r = rpc_check_version(root, err)) < 0)
		return r;
	if (json_object_object_get_ex(root, "method", NULL)) {
		/* Server -> client messages with a method are notifications only. */
		if ((r = rpc_check_members(root, rpc_notification_members, err)) < 0 ||
		    (r = rpc_check_method(root, &resp->method, err)) < 0 ||
		    (r = rpc_check_params(root, &resp->params, err)) < 0)
			return r;
		resp->type = RPC_MSG_NOTIFICATION;
		return 0;
	}
	if ((r = rpc_check_members(root, rpc_response_members, err)) < 0 ||
	    (r = rpc_check_id(root, &resp->id, &has_id, err)) < 0)
		return r;
	if (!has_id)
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "id",
				     "response without id");
	has_result = json_object_object_get_ex(root, "result", &resp->result);
	has_error = json_object_object_get_ex(root, "error", &e);
	if (has_result == has_error)
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, NULL,
				     "response must have exactly one of result and error");
	if (has_result) {
		resp->type = RPC_MSG_RESULT;
		return 0;
	}
	resp->result = NULL;
	if ((r = rpc_parse_error_obj(e, resp, err)) < 0)
		return r;
	resp->type = RPC_MSG_ERROR;
	return 0;
}

int rpc_parse_response(const char *buf, size_t len, struct rpc_response *resp,
		       struct rpc_error *err)
{
	struct json_object *root;
	int r;

	memset(resp, 0, sizeof(*resp));
	r = rpc_parse_json(buf, len, 0, &root, err);
	if (r < 0)
		return r;
	if ((r = rpc_check_object(root, err)) < 0 ||
	    (r = rpc_classify(root, resp, err)) < 0) {
		json_object_put(root);
		memset(resp, 0, sizeof(*resp));
		return r;
	}
	resp->root = root;
	return 0;
}

void rpc_response_free(struct rpc_response *resp)
{
	if (resp == NULL)
		return;
	json_object_put(resp->root);
	memset(resp, 0, sizeof(*resp));
}

/*
 * Add val to obj, taking val in every case: json_object_object_add() leaves
 * val with the caller when it fails (allocation failure).
 */
static int rpc_add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		return -1;
	}
	return 0;
}

static int rpc_add_str(struct json_object *obj, const char *key, const char *s, size_t n)
{
	struct json_object *v;

	if (n > INT32_MAX)
		return -1;
	v = json_object_new_string_len(s, (int)n);
	if (v == NULL)
		return -1;
	return rpc_add(obj, key, v);
}

static struct json_object *rpc_envelope(void)
{
	struct json_object *o = json_object_new_object();

	if (o != NULL && rpc_add_str(o, "jsonrpc", "2.0", 3) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

struct json_object *rpc_make_request(struct json_object *id, const char *method,
				     struct json_object *params)
{
	struct json_object *o;

	if (method == NULL || (o = rpc_envelope()) == NULL) {
		json_object_put(params);
		return NULL;
	}
	if (rpc_add_str(o, "method", method, strlen(method)) < 0)
		goto fail;
	if (params != NULL) {
		struct json_object *p = params;

		params = NULL; /* rpc_add takes it, even on failure */
		if (rpc_add(o, "params", p) < 0)
			goto fail;
	}
	if (id != NULL && rpc_add(o, "id", json_object_get(id)) < 0)
		goto fail;
	return o;
fail:
	json_object_put(params);
	json_object_put(o);
	return NULL;
}

struct json_object *rpc_make_result(struct json_object *id, struct json_object *result)
{
	struct json_object *o = rpc_envelope();

	if (o == NULL) {
		json_object_put(result);
		return NULL;
	}
	if (rpc_add(o, "id", json_object_get(id)) < 0)
		goto fail;
	if (result == NULL && (result = json_object_new_object()) == NULL)
		goto fail;
	if (rpc_add(o, "result", result) < 0) {
		result = NULL; /* taken by rpc_add */
		goto fail;
	}
	return o;
fail:
	json_object_put(result);
	json_object_put(o);
	return NULL;
}

/* Add s (at most size bytes, cut to valid UTF-8) unless it is empty. */
static int rpc_add_bounded(struct json_object *obj, const char *key, const char *s,
			   size_t size)
{
	size_t n = utf8_valid_prefix(s, strnlen(s, size));

	return n == 0 ? 0 : rpc_add_str(obj, key, s, n);
}

struct json_object *rpc_make_error(struct json_object *id, const struct rpc_error *err)
{
	struct json_object *o, *e, *data;
	int code = err != NULL ? err->code : NONO_E_INTERNAL;

	/* Only documented codes go on the wire. */
	if (!proto_error_known(code))
		code = NONO_E_INTERNAL;
	o = rpc_envelope();
	if (o == NULL)
		return NULL;
	if (rpc_add(o, "id", json_object_get(id)) < 0)
		goto fail;
	/* e and data are owned by o as soon as they are added. */
	if ((e = json_object_new_object()) == NULL || rpc_add(o, "error", e) < 0 ||
	    rpc_add(e, "code", json_object_new_int(code)) < 0 ||
	    rpc_add_str(e, "message", proto_error_message(code),
			strlen(proto_error_message(code))) < 0 ||
	    (data = json_object_new_object()) == NULL || rpc_add(e, "data", data) < 0 ||
	    rpc_add_str(data, "kind", proto_error_kind(code),
			strlen(proto_error_kind(code))) < 0)
		goto fail;
	if (err != NULL &&
	    (rpc_add_bounded(data, "field", err->field, sizeof(err->field)) < 0 ||
	     rpc_add_bounded(data, "detail", err->detail, sizeof(err->detail)) < 0))
		goto fail;
	return o;
fail:
	json_object_put(o);
	return NULL;
}

char *rpc_serialize(struct json_object *obj, size_t *len)
{
	const char *s;
	size_t n = 0;
	char *out;

	if (obj == NULL)
		return NULL;
	s = json_object_to_json_string_length(obj,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	if (s == NULL || n == SIZE_MAX - 1)
		return NULL;
	out = malloc(n + 2);
	if (out == NULL)
		return NULL;
	memcpy(out, s, n);
	out[n] = '\n';
	out[n + 1] = '\0';
	if (len != NULL)
		*len = n + 1;
	return out;
}
