/*
 * `nonoctl snapshot diff --patch`: for each change snapshot.diff reported,
 * load both sides and write a git-style patch (unidiff.c).
 *
 * A snapshot's side comes from snapshot.read, paged by offset until eof;
 * the live side is read here, as the calling user: the parent directory is
 * opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) below the
 * workspace and the entry itself is never followed, so a symlink shows as
 * its target text, as in the snapshot. Only UNIDIFF_MAX_BYTES of a side
 * are loaded; past that the first page is kept to tell binary content.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <json-c/json.h>

#include "nono-protocol.h"
#include "snapshot-patch.h"
#include "unidiff.h"
#include "utf8.h"

struct content {
	bool present;
	unsigned mode;          /* UNIDIFF_MODE_* */
	char *data;             /* owned */
	size_t len;
	bool too_large;
};

struct pctx {
	struct nonoctl *ctl;
	int64_t owner;          /* < 0: not given */
	int wsfd;               /* live workspace, or -1 */
};

static void content_free(struct content *c)
{
	free(c->data);
	memset(c, 0, sizeof(*c));
}

/* ---- encodings ---- */

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Strict base64 (padded, no whitespace) appended to out[*len..]; -EINVAL if malformed. */
static int b64_decode(const char *s, size_t slen, char *out, size_t *len)
{
	if (slen % 4 != 0)
		return -EINVAL;
	for (size_t i = 0; i < slen; i += 4) {
		int v[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)s[i + k];
			if (c == '=' && i + 4 == slen && k >= 2 && (k == 3 || s[i + 3] == '=')) {
				v[k] = 0;
				pad++;
			} else if ((v[k] = b64_val(c)) < 0) {
				return -EINVAL;
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		out[(*len)++] = (char)(w >> 16);
		if (pad < 2)
			out[(*len)++] = (char)(w >> 8);
		if (pad < 1)
			out[(*len)++] = (char)w;
	}
	return 0;
}

static void b64_encode(const unsigned char *p, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		out[o++] = t[w >> 18];
		out[o++] = t[(w >> 12) & 63];
		out[o++] = i + 1 < n ? t[(w >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[w & 63] : '=';
	}
	out[o] = '\0';
}

/* A path's bytes: hex when the daemon sent it (not UTF-8), else path. Owned. */
static char *path_bytes(const char *path, const char *hex)
{
	if (hex == NULL)
		return path != NULL && path[0] != '\0' ? strdup(path) : NULL;
	return path_from_hex(hex);
}

static char *change_path(struct json_object *c)
{
	return path_bytes(util_json_str(c, "path"), util_json_str(c, "path_hex"));
}

/* ---- the snapshot side ---- */

/* One blocking call; *out owns the parsed result. 0, or the exit code after printing why. */
static int call(struct pctx *pc, const char *what, const char *method, struct json_object *params,
		struct json_object **out, nono_error **errp)
{
	nono_error *err = NULL;
	char *text = NULL;
	int r;

	*out = NULL;
	r = nono_client_call(pc->ctl->client, method,
			     json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN), &text, &err);
	json_object_put(params);
	if (r < 0) {
		if (errp != NULL) {
			*errp = err;
			return EXIT_DAEMON_ERROR;
		}
		r = out_error(what, err);
		nono_error_free(err);
		return r;
	}
	*out = json_tokener_parse(text);
	free(text);
	if (*out == NULL || !json_object_is_type(*out, json_type_object)) {
		json_object_put(*out);
		*out = NULL;
		out_warnx("%s: the daemon's reply is not a JSON object", what);
		return EXIT_DAEMON_ERROR;
	}
	return 0;
}

static struct json_object *read_params(struct pctx *pc, const char *id, struct json_object *change,
				       uint64_t offset)
{
	struct json_object *p = json_object_new_object(), *v;

	json_object_object_add(p, "snapshot", json_object_new_string(id));
	if (json_object_object_get_ex(change, "path_hex", &v))
		json_object_object_add(p, "path_hex", json_object_get(v));
	else
		json_object_object_add(p, "path", json_object_new_string(util_json_str(change, "path")));
	json_object_object_add(p, "offset", json_object_new_int64((int64_t)offset));
	if (pc->owner >= 0)
		json_object_object_add(p, "owner", json_object_new_int64(pc->owner));
	return p;
}

/*
 * Load change's path from snapshot id into *c (absent when the snapshot has
 * no file or symlink there). 0, or the exit code after printing why.
 */
static int read_snapshot(struct pctx *pc, const char *id, struct json_object *change,
			 const char *shown, struct content *c)
{
	uint64_t offset = 0, size = 0;
	size_t cap = 0;
	int r;

	memset(c, 0, sizeof(*c));
	for (;;) {
		struct json_object *res;
		nono_error *err = NULL;
		const char *kind, *data;
		int64_t mode, sz, len;
		json_bool eof;
		struct json_object *e;

		r = call(pc, "snapshot diff --patch", NONO_M_SNAPSHOT_READ,
			 read_params(pc, id, change, offset), &res, &err);
		if (err != NULL) {
			/* No file or symlink there: a directory, a special file, or nothing. */
			if ((nono_error_code(err) == NONO_E_NOT_FOUND ||
			     nono_error_code(err) == NONO_E_INVALID_PARAMS) &&
			    strcmp(nono_error_field(err), "path") == 0) {
				nono_error_free(err);
				content_free(c);
				return 0;
			}
			r = out_error("snapshot diff --patch", err);
			nono_error_free(err);
		}
		if (r != 0) {
			content_free(c);
			return r;
		}
		kind = util_json_str(res, "kind");
		data = util_json_str(res, "data");
		if (kind == NULL || data == NULL || !util_json_int(res, "mode", &mode) ||
		    !util_json_int(res, "size", &sz) || !util_json_int(res, "length", &len) ||
		    !json_object_object_get_ex(res, "eof", &e) || sz < 0 || len < 0 ||
		    (offset > 0 && (uint64_t)sz != size) || (uint64_t)len > (uint64_t)sz - offset ||
		    strlen(data) != (size_t)(len + 2) / 3 * 4) {
			json_object_put(res);
			content_free(c);
			out_warnx("snapshot diff --patch: %s: malformed snapshot.read answer", shown);
			return EXIT_DAEMON_ERROR;
		}
		eof = json_object_get_boolean(e);
		if (offset == 0) {
			size = (uint64_t)sz;
			c->present = true;
			c->mode = strcmp(kind, "symlink") == 0 ? UNIDIFF_MODE_LINK
							      : unidiff_git_mode(S_IFREG | (unsigned)mode);
			c->too_large = size > UNIDIFF_MAX_BYTES;
			cap = c->too_large ? (size_t)len : (size_t)size;
			if ((c->data = malloc(cap + 3)) == NULL) {
				json_object_put(res);
				content_free(c);
				out_warnx("snapshot diff --patch: out of memory");
				return EXIT_DAEMON_ERROR;
			}
		}
		size_t before = c->len;
		if (c->len + (size_t)len > cap ||
		    b64_decode(data, strlen(data), c->data, &c->len) < 0 ||
		    c->len - before != (size_t)len || (len == 0 && !eof)) {
			json_object_put(res);
			content_free(c);
			out_warnx("snapshot diff --patch: %s: malformed snapshot.read answer", shown);
			return EXIT_DAEMON_ERROR;
		}
		json_object_put(res);
		offset += (uint64_t)len;
		if (eof || c->too_large)
			return 0;
	}
}

/* ---- the live side ---- */

static int open_parent(int wsfd, const char *parent)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, wsfd, parent, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

/* Read at most max bytes of fd into c->data. */
static int read_some(int fd, struct content *c, size_t max)
{
	if ((c->data = malloc(max + 1)) == NULL)
		return -ENOMEM;
	while (c->len < max) {
		ssize_t n = read(fd, c->data + c->len, max - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		c->len += (size_t)n;
	}
	return 0;
}

/*
 * Load path from the live workspace into *c (absent when there is no file
 * or symlink there, or a symlink or non-directory stands where a parent
 * directory should). 0, or the exit code after printing why.
 */
static int read_live(struct pctx *pc, const char *path, const char *shown, struct content *c)
{
	const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
	char *parent = slash ? strndup(path, (size_t)(slash - path)) : NULL;
	struct stat st;
	int pfd, fd = -1, rc = 0;

	memset(c, 0, sizeof(*c));
	if (slash != NULL && parent == NULL) {
		out_warnx("snapshot diff --patch: out of memory");
		return EXIT_DAEMON_ERROR;
	}
	pfd = open_parent(pc->wsfd, parent ? parent : ".");
	free(parent);
	if (pfd == -ENOENT || pfd == -ENOTDIR || pfd == -ELOOP || pfd == -EXDEV)
		return 0;
	if (pfd < 0) {
		rc = pfd;
		goto out;
	}
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	if (S_ISLNK(st.st_mode)) {
		char buf[PATH_MAX];
		ssize_t n = readlinkat(pfd, name, buf, sizeof(buf));
		if (n < 0 || (c->data = malloc((size_t)n + 1)) == NULL) {
			rc = n < 0 ? -errno : -ENOMEM;
			goto out;
		}
		memcpy(c->data, buf, (size_t)n);
		c->len = (size_t)n;
	} else if (S_ISREG(st.st_mode)) {
		fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			/* Gone since the stat: absent. A symlink swapped in: changed. */
			rc = errno == ENOENT ? 0 : errno == ELOOP ? -EAGAIN : -errno;
			goto out;
		}
		if (fstat(fd, &st) < 0) {
			rc = -errno;
			goto out;
		}
		if (!S_ISREG(st.st_mode)) {
			rc = -EAGAIN;
			goto out;
		}
		c->too_large = (uint64_t)st.st_size > UNIDIFF_MAX_BYTES;
		rc = read_some(fd, c, c->too_large ? UNIDIFF_BINARY_PROBE : UNIDIFF_MAX_BYTES + 1);
		if (rc == 0 && c->len > UNIDIFF_MAX_BYTES)
			c->too_large = true; /* grew while we read */
	} else {
		goto out; /* a directory or special file: no content to show */
	}
	if (rc == 0) {
		c->present = true;
		c->mode = unidiff_git_mode(st.st_mode);
	}
out:
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	if (rc < 0) {
		content_free(c);
		out_warnx("snapshot diff --patch: %s: cannot read the live file: %s", shown,
			  rc == -EAGAIN ? "it changed while being read" : strerror(-rc));
		return EXIT_DAEMON_ERROR;
	}
	return 0;
}

/* ---- output ---- */

/*
 * p[0..n) to f with what could drive a terminal made visible: C0 controls
 * (but tab and newline in text), DEL, C1 controls and bytes that are not
 * UTF-8 become \xNN in text, '?' otherwise. File content is the agent's.
 */
static void safe_write(FILE *f, const char *p, size_t n, bool text)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)p[i];
		size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		bool bad;

		if (len > n - i || utf8_valid_prefix(p + i, len) != len) {
			len = 1;
			bad = true;
		} else if (len == 1) {
			bad = (c < 0x20 && !(text && (c == '\n' || c == '\t'))) || c == 0x7f;
		} else {
			bad = c == 0xc2 && (unsigned char)p[i + 1] < 0xa0; /* C1 */
		}
		if (!bad)
			fwrite(p + i, 1, len, f);
		else if (text)
			fprintf(f, "\\x%02x", c);
		else
			fputc('?', f);
		i += len;
	}
}

/* A path for messages (owned; never NULL). */
static char *shown_path(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f != NULL) {
		safe_write(f, path, strlen(path), false);
		fclose(f);
	}
	return buf != NULL ? buf : strdup("?");
}

/* Put patch text into change: "patch", plus "patch_base64" when not UTF-8. */
static void attach_patch(struct json_object *change, const char *p, size_t len)
{
	char *lossy, *b64;
	size_t o = 0;

	if (utf8_valid(p, len)) {
		json_object_object_add(change, "patch", json_object_new_string_len(p, (int)len));
		return;
	}
	lossy = malloc(len * 3 + 1);
	b64 = malloc((len + 2) / 3 * 4 + 1);
	if (lossy != NULL && b64 != NULL) {
		for (size_t i = 0; i < len;) {
			size_t ok = utf8_valid_prefix(p + i, len - i);
			memcpy(lossy + o, p + i, ok);
			o += ok;
			i += ok;
			if (i < len) {
				memcpy(lossy + o, "\xef\xbf\xbd", 3);
				o += 3;
				i++;
			}
		}
		b64_encode((const unsigned char *)p, len, b64);
		json_object_object_add(change, "patch", json_object_new_string_len(lossy, (int)o));
		json_object_object_add(change, "patch_base64", json_object_new_string(b64));
	}
	free(lossy);
	free(b64);
}

/* The live workspace of snapshot id, opened; -1 after printing why. */
static int open_workspace(struct pctx *pc, const char *id)
{
	struct json_object *params = json_object_new_object(), *res, *a;
	char *ws = NULL;
	int fd = -1;

	if (pc->owner >= 0)
		json_object_object_add(params, "owner", json_object_new_int64(pc->owner));
	if (call(pc, "snapshot diff --patch", NONO_M_SNAPSHOT_LIST, params, &res, NULL) != 0)
		return -1;
	if (json_object_object_get_ex(res, "snapshots", &a) && json_object_is_type(a, json_type_array))
		for (size_t i = 0; i < json_object_array_length(a) && ws == NULL; i++) {
			struct json_object *s = json_object_array_get_idx(a, i);
			const char *sid = util_json_str(s, "id");
			if (sid != NULL && strcmp(sid, id) == 0)
				ws = path_bytes(util_json_str(s, "workspace"),
						util_json_str(s, "workspace_hex"));
		}
	json_object_put(res);
	if (ws == NULL) {
		out_warnx("snapshot diff --patch: snapshot %s not found in the list", id);
		return -1;
	}
	fd = open(ws, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		out_warnx("snapshot diff --patch: cannot open the workspace %s: %s", ws,
			  strerror(errno));
	free(ws);
	return fd;
}

int snapshot_patch(struct nonoctl *ctl, struct json_object *res, const char *from,
		   const char *to, int64_t owner)
{
	struct pctx pc = { .ctl = ctl, .owner = owner, .wsfd = -1 };
	struct json_object *changes, *t;
	bool tty = !ctl->json && isatty(1);
	size_t left_out = 0;    /* binary or too large: appliers skip them */
	int r = EXIT_OK;

	if (!json_object_object_get_ex(res, "changes", &changes) ||
	    !json_object_is_type(changes, json_type_array)) {
		out_warnx("snapshot diff --patch: the daemon's answer has no changes");
		return EXIT_DAEMON_ERROR;
	}
	if (to == NULL && (pc.wsfd = open_workspace(&pc, from)) < 0)
		return EXIT_DAEMON_ERROR;
	for (size_t i = 0; i < json_object_array_length(changes); i++) {
		struct json_object *c = json_object_array_get_idx(changes, i);
		const char *kind = util_json_str(c, "kind");
		char *path = change_path(c), *buf = NULL, *shown;
		struct content a = { 0 }, b = { 0 };
		size_t blen = 0;
		int rr = 0;

		if (path == NULL || kind == NULL) {
			free(path);
			out_warnx("snapshot diff --patch: a change without a path or kind");
			r = EXIT_DAEMON_ERROR;
			continue;
		}
		shown = shown_path(path);
		if (strcmp(kind, "added") != 0)
			rr = read_snapshot(&pc, from, c, shown, &a);
		if (rr == 0 && strcmp(kind, "removed") != 0)
			rr = to ? read_snapshot(&pc, to, c, shown, &b) : read_live(&pc, path, shown, &b);
		if (rr == 0 && (a.present || b.present)) {
			struct unidiff_side sa = { a.present, a.mode, a.data, a.len, a.too_large },
					    sb = { b.present, b.mode, b.data, b.len, b.too_large };
			FILE *out = ctl->json || tty ? open_memstream(&buf, &blen) : stdout;
			int ur = out != NULL ? unidiff_file(out, path, &sa, &sb) : -ENOMEM;
			if (ur < 0)
				rr = EXIT_DAEMON_ERROR;
			else if (ur == 1)
				left_out++;
			if (out != stdout && out != NULL && fclose(out) != 0)
				rr = EXIT_DAEMON_ERROR;
			if (rr == 0 && tty)
				safe_write(stdout, buf, blen, true);
			if (rr != 0)
				out_warnx("snapshot diff --patch: %s: cannot write the patch", shown);
		}
		if (rr == 0 && strcmp(kind, "type_changed") == 0 && (!a.present || !b.present)) {
			/* snapshot.diff does not descend into a directory that replaced a
			 * file (or the reverse), so its entries cannot be in the patch. */
			out_warnx("snapshot diff --patch: %s: a directory or special file replaced a "
				  "file or symlink (or the reverse); the patch holds only the file side",
				  shown);
			r = EXIT_DAEMON_ERROR;
		}
		if (ctl->json && rr == 0)
			attach_patch(c, buf ? buf : "", buf ? blen : 0);
		if (rr != 0)
			r = rr;
		free(buf);
		free(path);
		free(shown);
		content_free(&a);
		content_free(&b);
	}
	if (pc.wsfd >= 0)
		close(pc.wsfd);
	if (left_out > 0)
		out_warnx("snapshot diff --patch: %zu file%s binary or too large: the patch "
			  "does not carry %s content", left_out, left_out == 1 ? " is" : "s are",
			  left_out == 1 ? "its" : "their");
	if (json_object_object_get_ex(res, "truncated", &t) && json_object_get_boolean(t)) {
		out_warnx("snapshot diff --patch: more changes than the daemon lists; the patch is "
			  "incomplete");
		r = EXIT_DAEMON_ERROR;
	}
	if (ctl->json) {
		int pr = out_json_pretty(json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN));
		if (r == EXIT_OK)
			r = pr;
	} else if (fflush(stdout) != 0) {
		out_warnx("snapshot diff --patch: cannot write the patch: %s", strerror(errno));
		r = EXIT_DAEMON_ERROR;
	}
	return r;
}
