/* Helpers for the snapshot store tests. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "helpers.h"

char *th_tmpdir(const char *tag)
{
	const char *t = getenv("TMPDIR");
	char *p;

	ck_assert(asprintf(&p, "%s/nono-snap-%s-XXXXXX", t ? t : "/tmp", tag) > 0);
	ck_assert_ptr_nonnull(mkdtemp(p));
	chmod(p, 0755);
	return p;
}

static void rmrf_at(int dfd, const char *name)
{
	struct stat st;
	int fd;
	DIR *d;
	struct dirent *de;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlinkat(dfd, name, 0);
		return;
	}
	fchmodat(dfd, name, 0700, 0);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rmrf_at(dirfd(d), de->d_name);
	closedir(d);
	unlinkat(dfd, name, AT_REMOVEDIR);
}

void th_rmrf(const char *path)
{
	if (path != NULL)
		rmrf_at(AT_FDCWD, path);
}

static char *join(const char *dir, const char *rel)
{
	char *p;

	ck_assert(asprintf(&p, "%s/%s", dir, rel) > 0);
	return p;
}

void th_write(const char *dir, const char *rel, const void *data, size_t len, mode_t mode)
{
	char *p = join(dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode);

	ck_assert_msg(fd >= 0, "open %s: %s", p, strerror(errno));
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	fchmod(fd, mode);
	close(fd);
	free(p);
}

void th_writes(const char *dir, const char *rel, const char *s)
{
	th_write(dir, rel, s, strlen(s), 0644);
}

void th_mkdir(const char *dir, const char *rel, mode_t mode)
{
	char *p = join(dir, rel);

	ck_assert_msg(mkdir(p, mode) == 0 || errno == EEXIST, "mkdir %s", p);
	chmod(p, mode);
	free(p);
}

void th_symlink(const char *dir, const char *rel, const char *target)
{
	char *p = join(dir, rel);

	ck_assert_int_eq(symlink(target, p), 0);
	free(p);
}

char *th_read(const char *dir, const char *rel, size_t *len)
{
	char *p = join(dir, rel), *buf = NULL;
	FILE *f = fopen(p, "rb");
	size_t cap = 0, n = 0;

	free(p);
	if (f == NULL)
		return NULL;
	for (;;) {
		if (n + 4096 > cap) {
			cap = (cap + 4096) * 2;
			buf = realloc(buf, cap + 1);
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

struct lines {
	char **v;
	size_t n, cap;
};

static void add_line(struct lines *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(char *));
	}
	l->v[l->n++] = s;
}

static void hash_fd(int fd, char out[65])
{
	unsigned char md[32], buf[65536];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	ssize_t r;

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(c, buf, (size_t)r);
	EVP_DigestFinal_ex(c, md, NULL);
	EVP_MD_CTX_free(c);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void manifest_rec(int dfd, const char *rel, struct lines *l, bool with_mtime)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		char *crel, *line, extra[4200] = "";
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		ck_assert_int_eq(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
		ck_assert(asprintf(&crel, "%s%s%s", rel, *rel ? "/" : "", de->d_name) > 0);
		if (S_ISREG(st.st_mode)) {
			int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW);
			if (fd >= 0) {
				hash_fd(fd, extra);
				close(fd);
			} else {
				strcpy(extra, "unreadable");
			}
		} else if (S_ISLNK(st.st_mode)) {
			ssize_t n = readlinkat(dirfd(d), de->d_name, extra, sizeof(extra) - 1);
			extra[n > 0 ? n : 0] = '\0';
		}
		ck_assert(asprintf(&line, "%o %lld %lld [%s] %s", st.st_mode,
				   S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size,
				   with_mtime && !S_ISDIR(st.st_mode) ? (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec : 0LL,
				   crel, extra) > 0);
		add_line(l, line);
		if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			if (fd >= 0)
				manifest_rec(fd, crel, l, with_mtime);
		}
		free(crel);
	}
	closedir(d);
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *th_manifest(const char *dir, bool with_mtime)
{
	struct lines l = { 0 };
	size_t len = 1;
	char *out;
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	ck_assert_int_ge(fd, 0);
	manifest_rec(fd, "", &l, with_mtime);
	qsort(l.v, l.n, sizeof(char *), cmpstr);
	for (size_t i = 0; i < l.n; i++)
		len += strlen(l.v[i]) + 1;
	out = malloc(len);
	len = 0;
	for (size_t i = 0; i < l.n; i++) {
		size_t n = strlen(l.v[i]);
		memcpy(out + len, l.v[i], n);
		out[len + n] = '\n';
		len += n + 1;
		free(l.v[i]);
	}
	out[len] = '\0';
	free(l.v);
	return out;
}

static void chown_at(int dfd, const char *name, uid_t uid, gid_t gid)
{
	struct stat st;

	if (fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			chown_at(dirfd(d), de->d_name, uid, gid);
	closedir(d);
}

void th_chown_r(const char *path, uid_t uid, gid_t gid)
{
	chown_at(AT_FDCWD, path, uid, gid);
}

char *th_store_root(const char *tmp)
{
	char *p;

	ck_assert(asprintf(&p, "%s/store", tmp) > 0);
	return p;
}

char *th_tmp;

void th_tmp_setup(void)
{
	th_tmp = th_tmpdir("snaptest");
}

void th_tmp_teardown(void)
{
	th_rmrf(th_tmp);
	free(th_tmp);
	th_tmp = NULL;
}

void th_env_open(struct th_env *e, const char *tag)
{
	memset(e, 0, sizeof(*e));
	ck_assert(asprintf(&e->dir, "%s/%s", th_tmp, tag) > 0);
	ck_assert_int_eq(mkdir(e->dir, 0755), 0);
	ck_assert(asprintf(&e->ws, "%s/ws", e->dir) > 0);
	ck_assert_int_eq(mkdir(e->ws, 0755), 0);
	e->root = th_store_root(e->dir);
	ck_assert(asprintf(&e->packs, "%s/%u/packs", e->root, (unsigned)getuid()) > 0);
	ck_assert_int_eq(snap_store_new(e->root, NULL, &e->s), 0);
	e->p.owner = getuid();
	e->p.group = getgid();
	e->p.workspace = e->ws;
	e->p.keep_last = -1;
	e->p.keep_within = -1;
}

void th_env_close(struct th_env *e)
{
	snap_store_free(e->s);
	free(e->dir);
	free(e->ws);
	free(e->root);
	free(e->packs);
}
