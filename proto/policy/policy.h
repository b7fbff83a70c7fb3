/*
 * The policy model: parse a JSON or YAML policy (version 1), validate it
 * strictly, normalize it into a C structure the session code reads, expand
 * $WORKSPACE/$HOME/$TMPDIR, merge the built-in base profile, and produce the
 * canonical JSON form and its SHA-256 digest.
 *
 * This library does not log. Every failure fills a struct policy_error that
 * names the offending key by its path ("network.inject[0].hedaer") and, when
 * the value came from the input text, its 1-based line and column.
 *
 * Lifecycle:
 *   policy_parse()       text -> struct policy (variables still unexpanded)
 *   policy_resolve()     expand variables (optional; needed before enforcing)
 *   policy_merge_base()  add the base profile rules when base == "default"
 *   policy_to_json() / policy_digest()  canonical form (see canon.c)
 *   policy_free()
 */
#ifndef PROTO_POLICY_H
#define PROTO_POLICY_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define POLICY_MAX_TEXT (1024u * 1024u) /* bytes of JSON/YAML text */
#define POLICY_MAX_DEPTH 16             /* nesting of mappings/sequences */
#define POLICY_MAX_NODES 65536          /* scalars + collections in one text */
#define POLICY_MAX_PATH 4096            /* bytes of a filesystem path */
#define POLICY_MAX_VALUE 8192           /* bytes of a header template or env value */

/* Errors returned by every function below (negative, -errno style). */
#define POLICY_EINVAL (-EINVAL) /* invalid policy: err is filled */
#define POLICY_ENOMEM (-ENOMEM) /* out of memory: err is filled */

struct policy_error {
	char path[256];    /* "network.inject[0].header"; "" for the whole text */
	char message[512]; /* human sentence; never contains a secret value */
	int line, column;  /* 1-based position in the text; 0 when unknown */
};

/* Filesystem access bits. READ = read + execute; WRITE = modify (create,
 * remove, write, truncate) without read; DENY excludes the path from any
 * allowed parent and is never combined with READ or WRITE. */
#define POLICY_FS_READ 0x1u
#define POLICY_FS_WRITE 0x2u
#define POLICY_FS_DENY 0x4u

struct policy_fs_rule {
	char *path;      /* absolute, lexically normal; "$VAR/..." before resolve */
	unsigned access; /* POLICY_FS_* bits */
	bool optional;   /* a missing path is skipped instead of failing */
	bool from_base;  /* added by policy_merge_base(); not in the canonical form */
	/* Where the rule was first written: list (0 read, 1 write, 2 deny, 3 base)
	 * and index, for error paths after resolve. */
	uint8_t origin_list;
	uint32_t origin_index;
};

struct policy_net_allow {
	char *host;    /* lower case LDH name; for a wildcard, the suffix ("pypi.org") */
	uint16_t port; /* 1..65535 */
	bool wildcard; /* "*.pypi.org": any name strictly below host, not host itself */
};

struct policy_inject {
	char *host;    /* as net_allow.host */
	bool wildcard;
	char *header;  /* HTTP token, as written */
	char *value;   /* template with ${secret:NAME} placeholders */
};

struct policy_route {
	char *name;          /* [a-z0-9-]{1,64}, unique */
	char *upstream;      /* "https://host[:port][/path]" as written */
	char *upstream_host; /* lower case */
	uint16_t upstream_port; /* 443 when not written */
	char *upstream_path; /* "" or "/..." */
	char *header;        /* NULL when the route injects nothing */
	char *value;         /* NULL iff header is NULL */
	char *env;           /* NULL or an environment variable name */
};

struct policy_env_var {
	char *name;
	char *value;
};

struct policy_limits {
	bool memory_set, pids_set, wall_set, files_set, cpu_set;
	uint64_t memory_bytes;
	uint64_t pids;
	uint64_t wall_seconds;
	uint64_t files;
	uint64_t cpu_seconds;
};

struct policy_snapshot {
	char *workspace;  /* path; "$WORKSPACE" when not written; NULL after a
			   * resolve without that variable (only allowed when
			   * on_start and on_exit are false) */
	char **exclude;   /* sorted, unique relative globs */
	size_t n_exclude;
	bool on_start, on_exit;
};

enum policy_enforcement {
	POLICY_ENFORCE_STRICT = 0,
	POLICY_ENFORCE_BEST_EFFORT,
};

enum policy_base {
	POLICY_BASE_DEFAULT = 0,
	POLICY_BASE_NONE,
};

/*
 * A validated, normalized policy. Every array is sorted (fs by path, allow by
 * host/port/wildcard, inject by host/header, routes by name, env by name) and
 * free of duplicates. All memory belongs to the policy; readers borrow it.
 */
struct policy {
	int version;
	struct policy_fs_rule *fs;
	size_t n_fs;
	struct policy_net_allow *allow;
	size_t n_allow;
	struct policy_inject *inject;
	size_t n_inject;
	struct policy_route *routes;
	size_t n_routes;
	bool allow_private; /* network.allow_private: names may resolve to loopback/private/link-local */
	char **env_pass;
	size_t n_env_pass;
	struct policy_env_var *env_set;
	size_t n_env_set;
	struct policy_limits limits;
	struct policy_snapshot snapshot;
	enum policy_enforcement enforcement;
	enum policy_base base;
	bool resolved;    /* policy_resolve() succeeded */
	bool base_merged; /* policy_merge_base() ran */
};

struct policy_vars {
	const char *workspace; /* absolute paths; NULL = not available */
	const char *home;
	const char *tmpdir;
};

/*
 * Parse and validate len bytes of JSON or YAML (auto-detected: text whose
 * first non-blank byte is '{' is JSON; both are read by the same YAML 1.2
 * core-schema reader, see load.c). On success *out is a new policy the
 * caller frees with policy_free(). On failure returns POLICY_EINVAL or
 * POLICY_ENOMEM, *out is NULL and err (may be NULL) is filled.
 */
int policy_parse(const char *buf, size_t len, struct policy **out,
		 struct policy_error *err);

/*
 * Validate an already-parsed JSON tree (borrowed), e.g. a policy sent as an
 * object inside an RPC. Same contract as policy_parse (line/column are 0).
 */
int policy_from_json(struct json_object *root, struct policy **out,
		     struct policy_error *err);

/*
 * Expand $WORKSPACE, ${WORKSPACE}, $HOME, $TMPDIR at the start of every
 * path (filesystem rules and snapshot.workspace). Each variable used must be
 * set in vars and be an absolute, lexically normal path. The result is
 * re-normalized and re-checked for contradictions (a path both denied and
 * allowed). On failure the policy is left unchanged. Calling it twice is an
 * error (-EALREADY = -114 with err filled).
 */
int policy_resolve(struct policy *p, const struct policy_vars *vars,
		   struct policy_error *err);

/*
 * Expand one path of a policy (as written: "$VAR/rest" or absolute) the way
 * policy_resolve() does, into *out (owned by the caller). For paths needed
 * before the session exists, such as an unresolved snapshot.workspace.
 */
int policy_expand_path(const char *path, const struct policy_vars *vars, const char *field,
		       char **out, struct policy_error *err);

/*
 * Add the built-in base profile (base-profile.c) when p->base is
 * POLICY_BASE_DEFAULT; a no-op for "none" or when already merged. A path the
 * policy denies is left out of the base; a path it allows gets the union of
 * the access bits. Returns 0 or POLICY_ENOMEM.
 */
int policy_merge_base(struct policy *p);

/*
 * The canonical normalized form (owned by the caller; json_object_put).
 * Rules added by policy_merge_base() are not part of it. NULL on ENOMEM.
 */
struct json_object *policy_to_json(const struct policy *p);

/*
 * SHA-256 over the canonical serialization, lower-case hex + NUL.
 * Returns 0, POLICY_ENOMEM, or -EIO if the digest failed.
 */
int policy_digest(const struct policy *p, char hex[65]);

/* Canonical serialization (what policy_digest hashes); caller frees. */
char *policy_canonical_string(const struct policy *p, size_t *len);

void policy_free(struct policy *p);

/* Built-in base profile, a read-only table (base-profile.c). */
struct policy_base_entry {
	const char *path;
	unsigned access; /* POLICY_FS_READ / POLICY_FS_WRITE */
	bool optional;
	const char *why; /* one line: who needs it */
};
extern const struct policy_base_entry policy_base_profile[];
extern const size_t policy_base_profile_len;

/*
 * Secret names used by a value template, for the proxy/vault: calls fn for
 * each ${secret:NAME} in order (NAME is not NUL-terminated: name, len).
 * Returns 0, or the first non-zero value fn returned.
 */
int policy_template_foreach(const char *tmpl,
			    int (*fn)(const char *name, size_t len, void *ud),
			    void *ud);

#endif
