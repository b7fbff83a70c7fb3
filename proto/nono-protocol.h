/*
 * nono wire protocol, version 1: the constants both sides agree on.
 *
 * Installed with the public headers (nono.h includes it) and compiled into
 * nonod, libnono and nonoctl, so no wire constant exists twice.
 *
 * Bump NONO_PROTOCOL_VERSION when a method, field or error is removed or
 * renamed, or its meaning changes. New optional fields and new methods do
 * not bump it: advertise them in daemon.hello's "features" instead.
 * proto/PROTOCOL.md and proto/openrpc.json document every item here.
 */
#ifndef NONO_PROTOCOL_H
#define NONO_PROTOCOL_H

#define NONO_PROTOCOL_VERSION 1
#define NONO_PROTOCOL_MIN_VERSION 1

/* Framing: one JSON-RPC 2.0 object per line, LF-terminated. */
#define NONO_MAX_MESSAGE_DEFAULT (1024u * 1024u)
#define NONO_MAX_MESSAGE_CEILING (64u * 1024u * 1024u)
/* File descriptors passed with one message (SCM_RIGHTS). */
#define NONO_MAX_FDS_PER_MESSAGE 16

/* Default socket locations (DESIGN.md: Wire protocol). */
#define NONO_SYSTEM_SOCKET "/run/nono/nonod.sock"
#define NONO_USER_SOCKET_REL "nono/nonod.sock" /* under $XDG_RUNTIME_DIR */
#define NONO_SOCKET_ENV "NONO_SOCKET"

/*
 * Error codes: the JSON-RPC 2.0 standard ones, then nono's own in
 * -32000..-32099. Every error carries data {"kind", "field", "detail"};
 * "kind" is the stable string a client acts on.
 */
enum nono_error_code {
	NONO_E_OK = 0,
	NONO_E_PARSE = -32700,            /* parse_error */
	NONO_E_INVALID_REQUEST = -32600,  /* invalid_request */
	NONO_E_METHOD_NOT_FOUND = -32601, /* method_not_found */
	NONO_E_INVALID_PARAMS = -32602,   /* invalid_params */
	NONO_E_INTERNAL = -32603,         /* internal_error */

	NONO_E_PERMISSION_DENIED = -32000,     /* permission_denied */
	NONO_E_HELLO_REQUIRED = -32001,        /* hello_required */
	NONO_E_UNSUPPORTED_PROTOCOL = -32002,  /* unsupported_protocol */
	NONO_E_NOT_FOUND = -32003,             /* not_found */
	NONO_E_ALREADY_EXISTS = -32004,        /* already_exists */
	NONO_E_POLICY_INVALID = -32005,        /* policy_invalid */
	NONO_E_SANDBOX_UNAVAILABLE = -32006,   /* sandbox_feature_unavailable */
	NONO_E_SIGNATURE_INVALID = -32007,     /* signature_invalid */
	NONO_E_LIMIT_EXCEEDED = -32008,        /* limit_exceeded */
	NONO_E_BACKEND_UNAVAILABLE = -32009,   /* backend_unavailable */
	NONO_E_MESSAGE_TOO_LARGE = -32010,     /* message_too_large */
	NONO_E_EXEC_FAILED = -32011,           /* exec_failed */
	NONO_E_BUSY = -32012,                  /* busy */
	NONO_E_TIMEOUT = -32013,               /* timeout */
};

/* Method names. */
#define NONO_M_DAEMON_HELLO "daemon.hello"
#define NONO_M_DAEMON_STATUS "daemon.status"
#define NONO_M_SECRET_SET "secret.set"
#define NONO_M_SECRET_LIST "secret.list"
#define NONO_M_SECRET_INFO "secret.info"
#define NONO_M_SECRET_DELETE "secret.delete"
#define NONO_M_SECRET_ROTATE_KEY "secret.rotate_key"
#define NONO_M_SESSION_CREATE "session.create"
#define NONO_M_SESSION_LIST "session.list"
#define NONO_M_SESSION_GET "session.get"
#define NONO_M_SESSION_WAIT "session.wait"
#define NONO_M_SESSION_SIGNAL "session.signal"
#define NONO_M_SESSION_KILL "session.kill"
#define NONO_M_SESSION_OUTPUT "session.output"
#define NONO_M_POLICY_VALIDATE "policy.validate"
#define NONO_M_AUDIT_LIST "audit.list"
#define NONO_M_SNAPSHOT_CREATE "snapshot.create"
#define NONO_M_SNAPSHOT_LIST "snapshot.list"
#define NONO_M_SNAPSHOT_DIFF "snapshot.diff"
#define NONO_M_SNAPSHOT_RESTORE "snapshot.restore"
#define NONO_M_SNAPSHOT_DELETE "snapshot.delete"
#define NONO_M_SNAPSHOT_VERIFY "snapshot.verify"
#define NONO_M_SNAPSHOT_GC "snapshot.gc"
#define NONO_M_SNAPSHOT_READ "snapshot.read"

#endif /* NONO_PROTOCOL_H */
