/*
 * secret.* methods: manage the caller's secrets in the vault. No method ever
 * returns a secret value; values enter as a string param or through a passed
 * fd. Users act on their own secrets; admins may name another uid.
 *
 *   secret.set    {name, value? | fd?, uid?}  -> {name, status: "created"|"updated"}
 *   secret.list   {uid?}                      -> [{name, owner, backend, created,
 *                                                  updated, last_used, ...}]
 *   secret.info   {name, uid?}                -> {name, owner, backend, ...}
 *   secret.delete {name, uid?}                -> {name, deleted: true}
 *   secret.rotate_key {}  (admin)             -> {provider, rotated: true}
 *
 * The fd must hold the whole value and be at end of input (a regular file,
 * or a pipe whose write end the client closed): the daemon polls before each
 * read and never waits on a client's fd.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "fdrelease.h"
#include "log.h"
#include "methods.h"
#include "nono-protocol.h"
#include "rpc.h"
#include "vault.h"

#ifndef NONO_M_SECRET_SET
#define NONO_M_SECRET_SET "secret.set"
#define NONO_M_SECRET_LIST "secret.list"
#define NONO_M_SECRET_INFO "secret.info"
#define NONO_M_SECRET_DELETE "secret.delete"
#define NONO_M_SECRET_ROTATE_KEY "secret.rotate_key"
#endif

extern const struct method secret_methods[];
/* For daemon.status (declared here until methods.h lists it). */
struct json_object *secret_status_json(const char *open_error);

#define UID_PARAM { .name = "uid", .type = PARAM_INT, .min = 0, .max = 4294967294LL, \
		    .doc = "owner uid (administrators only; default: the caller)" }
#define NAME_PARAM { .name = "name", .type = PARAM_STRING, .required = true, \
		     .max = VAULT_NAME_MAX, .doc = "secret name, [A-Za-z0-9_.-]{1,128}" }

static const struct param_spec set_params[] = {
	NAME_PARAM,
	{ .name = "value", .type = PARAM_STRING, .max = VAULT_VALUE_MAX,
	  .doc = "the value (prefer fd: params may be kept in client logs)" },
	{ .name = "fd", .type = PARAM_INT, .min = 0, .max = NONO_MAX_FDS_PER_MESSAGE - 1,
	  .doc = "index of a passed fd to read the value from (up to 64 KiB, read to EOF)" },
	UID_PARAM,
	{ NULL },
};

static const struct param_spec name_params[] = {
	NAME_PARAM,
	UID_PARAM,
	{ NULL },
};

static const struct param_spec list_params[] = {
	UID_PARAM,
	{ NULL },
};

/* Map a vault error to the wire. The vault's messages name secrets, never values. */
static int secret_error(struct rpc_error *err, int rc, const char *field,
			const struct vault_err *ve)
{
	int code;

	switch (rc) {
	case -EINVAL: code = NONO_E_INVALID_PARAMS; break;
	case -ENOENT: code = NONO_E_NOT_FOUND; break;
	case -E2BIG:
	case -ENOSPC: code = NONO_E_LIMIT_EXCEEDED; break;
	case -EROFS: code = NONO_E_PERMISSION_DENIED; break;
	case -ENOKEY:
	case -EKEYREJECTED:
	case -ENOTCONN:
	case -EACCES:
	case -EOPNOTSUPP: code = NONO_E_BACKEND_UNAVAILABLE; break;
	default: code = NONO_E_INTERNAL; break;
	}
	return rpc_error_set(err, code, field, "%s", ve->msg);
}

/* The vault, and the owner the call acts for (checked against the caller). */
static int secret_target(struct rpc_call *call, uid_t *owner, struct rpc_error *err)
{
	struct json_object *u = params_get(call->params, "uid");

	if (nonod == NULL || nonod->vault == NULL)
		return rpc_error_set(err, NONO_E_BACKEND_UNAVAILABLE, "",
				     "the vault is not available (see the daemon's log)");
	*owner = u != NULL ? (uid_t)json_object_get_int64(u) : call->peer->uid;
	if (!peer_may_act_for(call->peer, *owner))
		return rpc_error_set(err, NONO_E_PERMISSION_DENIED, "uid",
				     "only administrators may manage another user's secrets");
	return 0;
}

static int name_param(struct rpc_call *call, const char **name, struct rpc_error *err)
{
	*name = params_str(call->params, "name", NULL);
	if (!vault_name_valid(*name))
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "name",
				     "secret names are 1 to %d of [A-Za-z0-9_.-]", VAULT_NAME_MAX);
	return 0;
}

/* Read the whole value from fd without ever blocking on it. */
static int read_value_fd(int fd, struct secbuf *sb, struct rpc_error *err)
{
	/* (A file on a FUSE file system, whose read could wait on this loop
	 * forever, never gets here: conn.c refuses those as they arrive.) */
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		unsigned char *dst = secbuf_data(sb) + secbuf_len(sb);
		size_t room = secbuf_cap(sb) - secbuf_len(sb);
		ssize_t n;

		if (poll(&p, 1, 0) < 0) {
			if (errno == EINTR)
				continue;
			return rpc_error_set(err, NONO_E_INTERNAL, "fd", "poll: %s", strerror(errno));
		}
		if (p.revents & POLLNVAL)
			return rpc_error_set(err, NONO_E_INVALID_PARAMS, "fd", "not an open fd");
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			return rpc_error_set(err, NONO_E_INVALID_PARAMS, "fd",
					     "the value fd has no more data but is not at end of "
					     "input: write the value, then close the write end");
		if (room == 0)
			return rpc_error_set(err, NONO_E_LIMIT_EXCEEDED, "fd",
					     "secret value longer than %d bytes", VAULT_VALUE_MAX);
		n = read(fd, dst, room);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return rpc_error_set(err, NONO_E_INVALID_PARAMS, "fd", "cannot read the value "
					     "fd: %s", strerror(errno));
		if (n == 0)
			return 0;
		secbuf_set_len(sb, secbuf_len(sb) + (size_t)n);
	}
}

static int secret_set(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct json_object *jv = params_get(call->params, "value");
	struct json_object *jfd = params_get(call->params, "fd");
	struct secbuf *sb = NULL;
	struct vault_err ve;
	const char *name;
	bool created = false;
	uid_t owner;
	int rc, fd;

	if (secret_target(call, &owner, err) < 0 || name_param(call, &name, err) < 0)
		return err->code;
	if ((jv == NULL) == (jfd == NULL))
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, jv != NULL ? "fd" : "value",
				     "give exactly one of value and fd");
	/* One byte more than the limit, to tell "exactly 64 KiB" from "longer". */
	rc = secbuf_new(VAULT_VALUE_MAX + 1, &sb);
	if (rc < 0)
		return rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
	if (jfd != NULL) {
		fd = rpc_call_take_fd(call, json_object_get_int64(jfd), err);
		if (fd < 0) {
			secbuf_free(sb);
			return err->code;
		}
		rc = read_value_fd(fd, sb, err);
		fd_release(call->peer->uid, fd); /* a socket may linger on close */
		if (rc < 0) {
			secbuf_free(sb);
			return rc;
		}
	} else {
		/* params is borrowed, but nothing after us needs the value: wipe json-c's copy. */
		char *s = (char *)json_object_get_string(jv);
		size_t len = (size_t)json_object_get_string_len(jv);

		rc = secbuf_append(sb, s, len);
		explicit_bzero(s, len);
		if (rc < 0) {
			secbuf_free(sb);
			return rpc_error_set(err, NONO_E_LIMIT_EXCEEDED, "value",
					     "secret value longer than %d bytes", VAULT_VALUE_MAX);
		}
	}
	rc = vault_set(nonod->vault, owner, name, secbuf_cdata(sb), secbuf_len(sb), &created, &ve);
	secbuf_free(sb);
	if (rc < 0)
		return secret_error(err, rc, "name", &ve);
	log_info("secret %s of uid %u %s by uid %u", name, (unsigned)owner,
		 created ? "created" : "updated", (unsigned)call->peer->uid);
	*result = json_object_new_object();
	json_object_object_add(*result, "name", json_object_new_string(name));
	json_object_object_add(*result, "status", json_object_new_string(created ? "created" : "updated"));
	return 0;
}

static struct json_object *time_json(int64_t t)
{
	return t > 0 ? json_object_new_int64(t) : NULL;
}

static struct json_object *info_json(const struct vault_secret_info *i)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(i->name));
	json_object_object_add(o, "owner", json_object_new_int64(i->owner));
	json_object_object_add(o, "backend", json_object_new_string(
		i->backend == VAULT_BACKEND_VAULT ? "vault" : "secret-service"));
	json_object_object_add(o, "created", time_json(i->created));
	json_object_object_add(o, "updated", time_json(i->updated));
	json_object_object_add(o, "last_used", time_json(i->last_used));
	if (i->corrupt)
		json_object_object_add(o, "corrupt", json_object_new_boolean(true));
	if (i->shadowed)
		json_object_object_add(o, "shadowed", json_object_new_boolean(true));
	return o;
}

static int list_one(void *ctx, const struct vault_secret_info *info)
{
	return json_object_array_add(ctx, info_json(info)) == 0 ? 0 : -ENOMEM;
}

static int secret_list(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct json_object *a;
	struct vault_err ve;
	uid_t owner;
	int rc;

	if (secret_target(call, &owner, err) < 0)
		return err->code;
	a = json_object_new_array();
	rc = vault_list(nonod->vault, owner, list_one, a, &ve);
	if (rc != 0) {
		json_object_put(a);
		if (rc == -ENOMEM)
			return rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
		return secret_error(err, rc < 0 ? rc : -EIO, "", &ve);
	}
	*result = a;
	return 0;
}

static int secret_info(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct vault_secret_info info;
	struct vault_err ve;
	const char *name;
	uid_t owner;
	int rc;

	if (secret_target(call, &owner, err) < 0 || name_param(call, &name, err) < 0)
		return err->code;
	rc = vault_info(nonod->vault, owner, name, &info, &ve);
	if (rc < 0)
		return secret_error(err, rc, "name", &ve);
	*result = info_json(&info);
	return 0;
}

static int secret_delete(struct rpc_call *call, struct json_object **result,
			 struct rpc_error *err)
{
	struct vault_err ve;
	const char *name;
	uid_t owner;
	int rc;

	if (secret_target(call, &owner, err) < 0 || name_param(call, &name, err) < 0)
		return err->code;
	rc = vault_delete(nonod->vault, owner, name, &ve);
	if (rc < 0)
		return secret_error(err, rc, "name", &ve);
	log_info("secret %s of uid %u deleted by uid %u", name, (unsigned)owner,
		 (unsigned)call->peer->uid);
	*result = json_object_new_object();
	json_object_object_add(*result, "name", json_object_new_string(name));
	json_object_object_add(*result, "deleted", json_object_new_boolean(true));
	return 0;
}

static int secret_rotate_key(struct rpc_call *call, struct json_object **result,
			     struct rpc_error *err)
{
	struct vault_err ve;
	int rc;

	if (nonod == NULL || nonod->vault == NULL)
		return rpc_error_set(err, NONO_E_BACKEND_UNAVAILABLE, "",
				     "the vault is not available (see the daemon's log)");
	rc = vault_rotate_key(nonod->vault, &ve);
	if (rc < 0)
		return secret_error(err, rc, "", &ve);
	log_info("vault master key rotated by uid %u", (unsigned)call->peer->uid);
	*result = json_object_new_object();
	json_object_object_add(*result, "provider",
			       json_object_new_string(vault_provider_name(nonod->vault)));
	json_object_object_add(*result, "rotated", json_object_new_boolean(true));
	return 0;
}

/*
 * The "vault" member of daemon.status: provider, where the key came from,
 * counts, and whether memory locking holds. open_error (may be NULL) is
 * vault_open()'s message when the vault could not be opened. Owned result.
 */
struct json_object *secret_status_json(const char *open_error)
{
	struct json_object *o = json_object_new_object();
	struct vault_status st;

	if (nonod == NULL || nonod->vault == NULL) {
		json_object_object_add(o, "available", json_object_new_boolean(false));
		if (open_error != NULL)
			json_object_object_add(o, "error", json_object_new_string(open_error));
		return o;
	}
	vault_get_status(nonod->vault, &st);
	json_object_object_add(o, "available", json_object_new_boolean(true));
	json_object_object_add(o, "provider", json_object_new_string(st.provider));
	json_object_object_add(o, "key_source",
			       json_object_new_string(vault_provider_source(nonod->vault)));
	json_object_object_add(o, "sealed", json_object_new_int64((int64_t)st.sealed));
	json_object_object_add(o, "corrupt", json_object_new_int64((int64_t)st.corrupt));
	json_object_object_add(o, "memory_locked", json_object_new_boolean(st.memory_locked));
	json_object_object_add(o, "secret_service", json_object_new_boolean(st.secret_service));
	return o;
}

const struct method secret_methods[] = {
	{ NONO_M_SECRET_SET, set_params, AUTH_USER, secret_set,
	  "create or replace a secret; the value comes as a string or a passed fd, never echoed" },
	{ NONO_M_SECRET_LIST, list_params, AUTH_USER, secret_list,
	  "list secrets (names and metadata, never values) of the caller or, for admins, a uid" },
	{ NONO_M_SECRET_INFO, name_params, AUTH_USER, secret_info,
	  "metadata of one secret (never its value)" },
	{ NONO_M_SECRET_DELETE, name_params, AUTH_USER, secret_delete,
	  "delete a secret from the vault backend" },
	{ NONO_M_SECRET_ROTATE_KEY, NULL, AUTH_ADMIN, secret_rotate_key,
	  "re-seal every secret under a new master key (key file: generated; other "
	  "providers: the key provisioned as <name>.next)" },
	{ NULL },
};
