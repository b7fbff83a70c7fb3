/*
 * Rendering header values: "Bearer ${secret:NAME}" -> the value, unsealed
 * into locked memory and written into the caller's secbuf. The hot path of
 * the proxy: one cached statement, one AES-GCM open, no allocation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vault-int.h"

/* last_used is written at most once per this many seconds per secret. */
#define TOUCH_INTERVAL 60

static const char secret_ref[] = "${secret:";

static void touch(struct vault *v, uid_t owner, const char *name, int64_t now)
{
	sqlite3_bind_int64(v->st_touch, 1, owner);
	sqlite3_bind_text(v->st_touch, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(v->st_touch, 3, now);
	if (sqlite3_step(v->st_touch) != SQLITE_DONE)
		log_debug("cannot record last use of %s: %s", name, sqlite3_errmsg(v->rdb));
	sqlite3_reset(v->st_touch);
	sqlite3_clear_bindings(v->st_touch);
}

/* The sealed row of owner/name: from the cache, or read (and cached) from the database. */
static int lookup(struct vault *v, uint32_t owner, const char *name, int64_t now,
		  struct vault_cache_ent **ent, struct vault_cache_ent *tmp)
{
	sqlite3_stmt *st = v->st_get;
	int step;

	*ent = vault_cache_get(v, owner, name, now);
	if (*ent != NULL)
		return SQLITE_ROW;
	sqlite3_bind_int64(st, 1, owner);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(st, 0);
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		int64_t last = sqlite3_column_int64(st, 1);

		/* Inside a transaction the row may yet be rolled back: do not cache. */
		if (sqlite3_get_autocommit(v->rdb))
			*ent = vault_cache_put(v, owner, name, blob, len, last, now, false);
		if (*ent == NULL) {
			/* Uncached: a private copy that lives for this call. */
			tmp->sealed = malloc(len > 0 ? len : 1);
			if (tmp->sealed == NULL) {
				step = SQLITE_NOMEM;
			} else {
				memcpy(tmp->sealed, blob, len);
				tmp->len = len;
				tmp->last_used = last;
				*ent = tmp;
			}
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return step;
}

/* Keep a Secret Service value in the cache, sealed like a row (plaintext is never cached). */
static void cache_sss(struct vault *v, uint32_t owner, const char *name,
		      const struct secbuf *val, int64_t now)
{
	size_t len = secbuf_len(val) + VAULT_SEAL_OVERHEAD;
	unsigned char *sealed = malloc(len);

	if (sealed != NULL && vault_seal(&v->keys, VAULT_KIND_SECRET, owner, name,
					 secbuf_cdata(val), secbuf_len(val), sealed) == 0)
		vault_cache_put(v, owner, name, sealed, len, now, now, true);
	free(sealed);
}

int vault_resolve(struct vault *v, uid_t owner, const char *name, struct secbuf *out,
		  enum vault_backend *backend, struct vault_err *err)
{
	struct vault_cache_ent *e = NULL, tmp = { 0 };
	int64_t now = vault_now();
	int step, rc;

	step = lookup(v, (uint32_t)owner, name, now, &e, &tmp);
	if (step == SQLITE_ROW && e->from_sss) {
		rc = vault_unseal(&v->keys, VAULT_KIND_SECRET, (uint32_t)owner, name, e->sealed,
				  e->len, out);
		if (backend != NULL)
			*backend = VAULT_BACKEND_SECRET_SERVICE;
		return rc < 0 ? vault_errf(err, -EIO, "cached value of %s does not unseal", name) : 0;
	}
	if (step == SQLITE_ROW) {
		rc = vault_unseal(&v->keys, VAULT_KIND_SECRET, (uint32_t)owner, name, e->sealed,
				  e->len, out);
		if (rc == 0 && (now - e->last_used >= TOUCH_INTERVAL || now < e->last_used)) {
			touch(v, owner, name, now);
			e->last_used = now;
		}
		free(tmp.sealed);
		if (rc < 0) {
			log_errorx("secret %s of uid %u does not unseal: row corrupted", name,
				   (unsigned)owner);
			return vault_errf(err, -EBADMSG, "secret %s does not unseal: its stored row is "
					  "corrupted", name);
		}
		if (backend != NULL)
			*backend = VAULT_BACKEND_VAULT;
		return 0;
	}
	if (step != SQLITE_DONE)
		return vault_errf(err, -EIO, "database error looking up secret %s", name);
	if (v->sss != NULL && owner == v->sss_uid) {
		if (backend != NULL)
			*backend = VAULT_BACKEND_SECRET_SERVICE;
		rc = sss_lookup(v->sss, name, out, err);
		if (rc == 0 && sqlite3_get_autocommit(v->rdb))
			cache_sss(v, (uint32_t)owner, name, out, now);
		return rc;
	}
	return vault_errf(err, -ENOENT, "no secret named %s", name);
}

/* A header value may not hold CR, LF, NUL or other controls (TAB is fine). */
static bool header_safe(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return false;
	return true;
}

int vault_render_unlocked(struct vault *v, uid_t owner, const char *tmpl, struct secbuf *out,
		 struct vault_err *err)
{
	const char *p = tmpl;
	char name[VAULT_NAME_MAX + 1];
	int rc = 0;

	secbuf_clear(out);
	if (strnlen(tmpl, VAULT_RENDER_MAX + 1) > VAULT_RENDER_MAX)
		return vault_errf(err, -EINVAL, "template longer than %d bytes", VAULT_RENDER_MAX);
	while (*p != '\0') {
		const char *ref = strstr(p, "${"), *start, *end;
		size_t nlen;

		if (ref == NULL)
			ref = p + strlen(p);
		if (!header_safe((const unsigned char *)p, (size_t)(ref - p))) {
			rc = vault_errf(err, -EINVAL, "template contains control characters");
			break;
		}
		if (secbuf_append(out, p, (size_t)(ref - p)) < 0) {
			rc = vault_errf(err, -ENOSPC, "rendered value too long");
			break;
		}
		if (*ref == '\0')
			break;
		if (strncmp(ref, secret_ref, sizeof(secret_ref) - 1) != 0) {
			rc = vault_errf(err, -EINVAL, "template has \"${\" not followed by \"secret:\"");
			break;
		}
		start = ref + sizeof(secret_ref) - 1;
		end = strchr(start, '}');
		nlen = end != NULL ? (size_t)(end - start) : 0;
		if (end == NULL || nlen == 0 || nlen > VAULT_NAME_MAX) {
			rc = vault_errf(err, -EINVAL, "template has an unterminated or bad ${secret:NAME}");
			break;
		}
		memcpy(name, start, nlen);
		name[nlen] = '\0';
		if (!vault_name_valid(name)) {
			rc = vault_errf(err, -EINVAL, "template names an invalid secret name");
			break;
		}
		rc = vault_resolve(v, owner, name, v->scratch, NULL, err);
		if (rc < 0)
			break;
		if (!header_safe(secbuf_cdata(v->scratch), secbuf_len(v->scratch))) {
			rc = vault_errf(err, -EINVAL, "secret %s contains CR, LF, NUL or control bytes "
					"and cannot go in a header", name);
			break;
		}
		if (secbuf_append(out, secbuf_cdata(v->scratch), secbuf_len(v->scratch)) < 0) {
			rc = vault_errf(err, -ENOSPC, "rendered value too long");
			break;
		}
		secbuf_clear(v->scratch);
		p = end + 1;
	}
	secbuf_clear(v->scratch);
	if (rc < 0)
		secbuf_clear(out);
	return rc;
}

int vault_render_cb_unlocked(void *ctx, uid_t owner, const char *tmpl, char *out, size_t outlen,
		    size_t *len)
{
	struct vault *v = ctx;
	struct vault_err err;
	int rc;

	*len = 0;
	if (v->render == NULL) {
		rc = secbuf_new(VAULT_RENDER_MAX, &v->render);
		if (rc < 0)
			return rc;
	}
	rc = vault_render(v, owner, tmpl, v->render, &err);
	if (rc < 0) {
		log_warnx("rendering a header for uid %u: %s", (unsigned)owner, err.msg);
		return rc;
	}
	if (secbuf_len(v->render) + 1 > outlen) {
		secbuf_clear(v->render);
		return -ENOSPC;
	}
	memcpy(out, secbuf_cdata(v->render), secbuf_len(v->render) + 1);
	*len = secbuf_len(v->render);
	secbuf_clear(v->render);
	return 0;
}
