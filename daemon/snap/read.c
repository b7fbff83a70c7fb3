/*
 * snapshot.read: bytes of one regular file, or a symlink's target, as a
 * snapshot recorded it. The path is walked through the snapshot's tree
 * objects only: nothing on the live filesystem is opened, so a workspace
 * full of symlinks cannot steer the read. A reply carries at most
 * SNAP_READ_MAX bytes; the client pages with an offset. Every object read
 * is re-hashed (a corrupt store fails the read instead of returning wrong
 * bytes), and only the chunks overlapping the requested range are loaded;
 * the zero chunk (a hole, chunk.c) is known by its hash and never loaded.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "snap-int.h"

/* One chunk-list record in an OBJ_FILE object: u64 length, hash. */
#define CHUNK_REC (8 + SNAP_HASH_LEN)

struct rd {
	struct snap_repo *r;
	struct snap_result *res;
	const char *id;
	char shown[600];        /* the path, printable, for messages */
};

/* Record err with a message (and the param it is about); returns err. */
static int rd_fail(struct rd *d, int err, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int rd_fail(struct rd *d, int err, const char *field, const char *fmt, ...)
{
	char msg[sizeof(d->res->detail)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (d->res->err == 0)
		d->res->field = field;
	snap_set_err(d->res, err, "%s", msg);
	return err;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 :
		     s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;

	if (len == 0 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0; /* overlong, surrogate, past U+10FFFF */
	return len;
}

/*
 * path for messages: valid UTF-8 stays (but C1 controls), control bytes,
 * backslash and bytes that are not UTF-8 become \xNN, so the detail is
 * UTF-8 that cannot drive a terminal. Truncated to fit out.
 */
static void shown_path(const char *path, char *out, size_t outlen)
{
	size_t o = 0, n = strlen(path);

	for (size_t i = 0; i < n && o + 16 < outlen;) {
		const unsigned char *u = (const unsigned char *)path + i;
		unsigned char c = u[0];
		size_t len = utf8_seq(u, n - i);
		bool ok = len > 0 && !(len == 1 && (c < 0x20 || c == 0x7f || c == '\\')) &&
			  !(c == 0xc2 && u[1] < 0xa0);

		if (!ok) {
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
			i++;
			continue;
		}
		memcpy(out + o, path + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
}

/*
 * A path inside a snapshot: relative, components separated by one '/',
 * none empty, "." or "..", each at most 255 bytes. No normalization: a
 * request names exactly one entry or is refused.
 */
static int path_check(const char *p)
{
	size_t n;

	if (p[0] == '\0' || p[0] == '/')
		return -EINVAL;
	while (*p != '\0') {
		n = strcspn(p, "/");
		if (n == 0 || n > 255 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		p += n;
		if (*p == '/' && *++p == '\0')
			return -EINVAL; /* trailing slash */
	}
	return 0;
}

static const struct tree_ent *tree_find(const struct tree *t, const char *name, size_t nlen)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = tree_name_cmp(t->ents[mid].name, t->ents[mid].nlen, name, nlen);
		if (c == 0)
			return &t->ents[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int load_tree_verified(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN], struct tree *t)
{
	uint8_t *data;
	size_t len;
	int rc = obj_get(r, h, OBJ_TREE, true, &data, &len, NULL);

	memset(t, 0, sizeof(*t));
	return rc < 0 ? rc : tree_decode(data, len, t);
}

/* Find path's entry below root; *ent is a copy (its name is not kept). */
static int lookup(struct rd *d, const uint8_t root[SNAP_HASH_LEN], const char *path,
		  struct tree_ent *ent)
{
	uint8_t h[SNAP_HASH_LEN];
	const char *p = path;
	int rc;

	memcpy(h, root, SNAP_HASH_LEN);
	for (;;) {
		struct tree t;
		const struct tree_ent *e;
		size_t n = strcspn(p, "/");

		if ((rc = load_tree_verified(d->r, h, &t)) < 0)
			return rc;
		e = tree_find(&t, p, n);
		if (e == NULL) {
			tree_release(&t);
			return rd_fail(d, -ENOENT, "path", "no %s in snapshot %s", d->shown, d->id);
		}
		*ent = *e;
		ent->name = NULL;
		tree_release(&t);
		p += n;
		if (*p == '\0')
			return 0;
		if (ent->type != TT_DIR)
			return rd_fail(d, -ENOENT, "path", "no %s in snapshot %s (a parent is not a "
				       "directory)", d->shown, d->id);
		memcpy(h, ent->hash, SNAP_HASH_LEN);
		p++;
	}
}

/* Copy the overlap of [off, off+len) with blob bytes [boff, boff+blen) into out. */
static void copy_overlap(const uint8_t *blob, uint64_t boff, size_t blen, uint64_t off,
			 size_t len, uint8_t *out)
{
	uint64_t s = off > boff ? off : boff;
	uint64_t e = off + len < boff + blen ? off + len : boff + blen;

	if (s < e)
		memcpy(out + (s - off), blob + (s - boff), (size_t)(e - s));
}

/* Read bytes [off, off+len) of the content with hash h and total size. */
static int read_content(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN], uint64_t size,
			uint64_t off, size_t len, uint8_t *out)
{
	uint8_t *d = NULL;
	size_t l;
	enum obj_type t;
	uint64_t pos = 0;
	const struct cdc_zero *z = NULL;
	int rc = obj_get(r, h, 0, true, &d, &l, &t);

	if (rc < 0)
		return rc;
	if (cdc_zero_get(&z) < 0)
		z = NULL; /* the zero chunk is then loaded like any other */
	if (t == OBJ_BLOB) {
		if (l != size)
			rc = -EBADMSG;
		else
			copy_overlap(d, 0, l, off, len, out);
		free(d);
		return rc;
	}
	if (t != OBJ_FILE || l % CHUNK_REC != 0) {
		free(d);
		return -EBADMSG;
	}
	for (size_t i = 0; i < l && rc == 0; i += CHUNK_REC) {
		uint64_t clen = 0;
		for (int k = 0; k < 8; k++)
			clen |= (uint64_t)d[i + k] << (8 * k);
		if (clen > CDC_MAX || pos + clen > size) {
			rc = -EBADMSG;
			break;
		}
		if (pos < off + len && pos + clen > off && z != NULL && clen == z->len &&
		    memcmp(d + i + 8, z->hash, SNAP_HASH_LEN) == 0) {
			copy_overlap(z->data, pos, clen, off, len, out); /* a hole: zeros */
		} else if (pos < off + len && pos + clen > off) {
			uint8_t *c = NULL;
			size_t cl;
			rc = obj_get(r, d + i + 8, OBJ_BLOB, true, &c, &cl, NULL);
			if (rc == 0 && cl != clen)
				rc = -EBADMSG;
			if (rc == 0)
				copy_overlap(c, pos, cl, off, len, out);
			free(c);
		}
		pos += clen;
	}
	if (rc == 0 && pos != size)
		rc = -EBADMSG;
	free(d);
	return rc;
}

static const char *type_name(uint8_t type)
{
	switch (type) {
	case TT_DIR: return "a directory";
	case TT_FIFO: return "a fifo";
	case TT_SOCK: return "a socket";
	case TT_CHR: return "a character device";
	case TT_BLK: return "a block device";
	case TT_UNREADABLE: return "a file that was unreadable when the snapshot was taken";
	default: return "not a regular file";
	}
}

int snap_read_run(struct snap_repo *r, const struct snap_params *p, struct snap_result *res)
{
	struct rd d = { .r = r, .res = res, .id = p->snapshot ? p->snapshot : "" };
	struct snap_info si = { 0 };
	struct snap_read_out *o = &res->read;
	uint8_t root[SNAP_HASH_LEN];
	struct tree_ent e;
	uint64_t want;
	uint8_t *raw = NULL;
	int rc;

	if (p->npaths != 1 || p->paths == NULL || p->paths[0] == NULL)
		return rd_fail(&d, -EINVAL, "path", "path is required");
	shown_path(p->paths[0], d.shown, sizeof(d.shown));
	if (path_check(p->paths[0]) < 0)
		return rd_fail(&d, -EINVAL, "path", "invalid path '%s': it must be relative, "
			       "without empty, '.' or '..' components", d.shown);
	if ((rc = repo_lock(r, false)) < 0) {
		snap_set_err(res, rc, "cannot lock the snapshot store");
		return rc;
	}
	if ((rc = index_get_snapshot(r->db, d.id, &si)) < 0)
		return rd_fail(&d, rc, "snapshot", rc == -ENOENT ? "no snapshot %s" :
			       "cannot read snapshot %s", d.id);
	rc = snap_unhex(si.root, root);
	snap_info_clear(&si);
	if (rc < 0)
		rc = -EBADMSG;
	if (rc == 0)
		rc = lookup(&d, root, p->paths[0], &e);
	if (rc == 0 && e.type == TT_DIR)
		rc = rd_fail(&d, -EISDIR, "path", "%s is a directory, not a file or symlink",
			     d.shown);
	else if (rc == 0 && e.type != TT_REG && e.type != TT_SYMLINK)
		rc = rd_fail(&d, -EINVAL, "path", "%s is %s, not a file or symlink", d.shown,
			     type_name(e.type));
	if (rc < 0)
		goto out;
	o->kind = e.type == TT_REG ? SNAP_READ_FILE : SNAP_READ_SYMLINK;
	o->mode = e.mode;
	o->size = e.size;
	o->offset = p->read_offset;
	if (p->read_offset > e.size) {
		rc = rd_fail(&d, -EINVAL, "offset", "offset %llu is past the end of %s (%llu bytes)",
			     (unsigned long long)p->read_offset, d.shown,
			     (unsigned long long)e.size);
		goto out;
	}
	want = e.size - p->read_offset;
	if (want > p->read_length)
		want = p->read_length;
	if (want > SNAP_READ_MAX)
		want = SNAP_READ_MAX;
	raw = malloc(want ? (size_t)want : 1);
	o->data = malloc(4 * (((size_t)want + 2) / 3) + 1);
	if (raw == NULL || o->data == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	o->len = (size_t)want;
	if (want > 0)
		rc = read_content(r, e.hash, e.size, p->read_offset, o->len, raw);
	if (rc == 0)
		EVP_EncodeBlock((unsigned char *)o->data, raw, (int)o->len);
	o->eof = p->read_offset + want == e.size;
out:
	if (rc == -ENOENT && res->err == 0)
		rc = -EBADMSG; /* an object the snapshot names is gone */
	if (rc == -EBADMSG)
		snap_set_err(res, rc, "snapshot %s: store object missing or corrupt (run verify)",
			     d.id);
	if (rc < 0) {
		free(o->data);
		o->data = NULL;
		o->len = 0;
	}
	free(raw);
	return rc;
}
