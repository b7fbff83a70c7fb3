/*
 * Master-key providers: systemd credential, kernel keyring, macOS Keychain,
 * key file. See vault.h for the order "auto" tries them in. A provider that
 * has no key says -ENOKEY and the next one is tried; a provider that has a
 * key it cannot use (bad size, unsafe file mode) fails closed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "log.h"
#include "vault-int.h"

#ifdef __APPLE__
#include <Security/Security.h>
#endif

#ifndef KEY_SPEC_USER_KEYRING
#define KEY_SPEC_USER_KEYRING -4
#endif
#ifndef KEYCTL_SEARCH
#define KEYCTL_SEARCH 10
#endif
#ifndef KEYCTL_READ
#define KEYCTL_READ 11
#endif

/* Longest key material we accept: 64 hex digits and a newline. */
#define KEY_MATERIAL_MAX (2 * VAULT_KEY_LEN + 1)

static const char *const prov_names[] = {
	[VAULT_PROV_NONE] = "none",
	[VAULT_PROV_CREDENTIAL] = "systemd-credential",
	[VAULT_PROV_KEYRING] = "kernel-keyring",
	[VAULT_PROV_KEYCHAIN] = "macos-keychain",
	[VAULT_PROV_FILE] = "key-file",
};

const char *vault_provider_str(enum vault_provider p)
{
	if ((size_t)p >= sizeof(prov_names) / sizeof(prov_names[0]))
		return "unknown";
	return prov_names[p];
}

int vault_provider_parse(const char *s)
{
	if (s == NULL || strcmp(s, "auto") == 0)
		return VAULT_PROV_NONE;
	for (size_t i = 1; i < sizeof(prov_names) / sizeof(prov_names[0]); i++)
		if (strcmp(s, prov_names[i]) == 0)
			return (int)i;
	return -1;
}

/* Read at most KEY_MATERIAL_MAX bytes from fd into locked memory and parse them. */
static int read_key_fd(int fd, const char *what, struct secbuf **out, struct vault_err *err)
{
	struct secbuf *raw = NULL;
	size_t len = 0;
	int rc;

	rc = secbuf_new(KEY_MATERIAL_MAX + 1, &raw);
	if (rc < 0)
		return vault_errf(err, rc, "out of memory reading %s", what);
	for (;;) {
		ssize_t n = read(fd, secbuf_data(raw) + len, KEY_MATERIAL_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			secbuf_free(raw);
			return vault_errf(err, rc, "cannot read %s: %s", what, strerror(-rc));
		}
		if (n == 0 || (len += (size_t)n) > KEY_MATERIAL_MAX)
			break;
	}
	rc = len > KEY_MATERIAL_MAX ? -EINVAL : vault_key_parse(secbuf_data(raw), len, out);
	secbuf_free(raw);
	if (rc < 0)
		return vault_errf(err, -EINVAL, "%s is not a master key (need 32 raw bytes or 64 hex digits)",
				  what);
	return 0;
}

static int load_credential(const struct keyprov_cfg *cfg, struct secbuf **out, char *src,
			   size_t srclen, struct vault_err *err)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char what[PATH_MAX + 64];
	struct stat st;
	int fd, rc;

	if (dir == NULL || dir[0] == '\0')
		return vault_errf(err, -ENOKEY, "systemd credential %s (CREDENTIALS_DIRECTORY unset)",
				  cfg->credential_name);
	if (strchr(cfg->credential_name, '/') != NULL)
		return vault_errf(err, -EINVAL, "credential name %s contains '/'", cfg->credential_name);
	snprintf(src, srclen, "%s/%s", dir, cfg->credential_name);
	snprintf(what, sizeof(what), "systemd credential %s", src);
	fd = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno == ENOENT)
		return vault_errf(err, -ENOKEY, "systemd credential %s (absent)", src);
	if (fd < 0) {
		rc = -errno;
		return vault_errf(err, rc, "cannot open %s: %s", what, strerror(-rc));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 022) != 0) {
		close(fd);
		return vault_errf(err, -EPERM, "%s is not a regular file writable only by its owner",
				  what);
	}
	rc = read_key_fd(fd, what, out, err);
	close(fd);
	return rc;
}

static int load_keyring(const struct keyprov_cfg *cfg, struct secbuf **out, char *src,
			size_t srclen, struct vault_err *err)
{
	struct secbuf *raw = NULL;
	long serial, n;
	int rc;

	snprintf(src, srclen, "user key %s", cfg->keyring_desc);
	/* Thread, process and session keyrings (no upcall: callout_info NULL). */
	serial = syscall(SYS_request_key, "user", cfg->keyring_desc, NULL, 0);
	if (serial < 0 && (errno == ENOKEY || errno == ENOENT))
		serial = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user",
				 cfg->keyring_desc, 0);
	if (serial < 0) {
		rc = errno;
		if (rc == ENOKEY || rc == ENOENT)
			return vault_errf(err, -ENOKEY, "kernel keyring %s (absent)", src);
		if (rc == ENOSYS || rc == EPERM)
			return vault_errf(err, -ENOKEY, "kernel keyring (unavailable: %s)", strerror(rc));
		return vault_errf(err, -rc, "kernel keyring %s: %s", src, strerror(rc));
	}
	rc = secbuf_new(KEY_MATERIAL_MAX + 1, &raw);
	if (rc < 0)
		return vault_errf(err, rc, "out of memory");
	n = syscall(SYS_keyctl, KEYCTL_READ, serial, secbuf_data(raw), KEY_MATERIAL_MAX + 1);
	if (n < 0) {
		rc = -errno;
		secbuf_free(raw);
		return vault_errf(err, rc, "kernel keyring %s: read: %s", src, strerror(-rc));
	}
	rc = n > KEY_MATERIAL_MAX ? -EINVAL : vault_key_parse(secbuf_data(raw), (size_t)n, out);
	secbuf_free(raw);
	if (rc < 0)
		return vault_errf(err, -EINVAL, "kernel keyring %s is not a master key "
				  "(need 32 raw bytes or 64 hex digits)", src);
	return 0;
}

#ifdef __APPLE__
static int load_keychain(const struct keyprov_cfg *cfg, struct secbuf **out, char *src,
			 size_t srclen, struct vault_err *err)
{
	CFStringRef service = CFSTR("nono"), account;
	CFMutableDictionaryRef q;
	CFTypeRef data = NULL;
	OSStatus st;
	int rc;

	snprintf(src, srclen, "generic password nono/%s", cfg->keyring_desc);
	account = CFStringCreateWithCString(NULL, cfg->keyring_desc, kCFStringEncodingUTF8);
	q = CFDictionaryCreateMutable(NULL, 0, &kCFTypeDictionaryKeyCallBacks,
				      &kCFTypeDictionaryValueCallBacks);
	CFDictionarySetValue(q, kSecClass, kSecClassGenericPassword);
	CFDictionarySetValue(q, kSecAttrService, service);
	CFDictionarySetValue(q, kSecAttrAccount, account);
	CFDictionarySetValue(q, kSecReturnData, kCFBooleanTrue);
	CFDictionarySetValue(q, kSecMatchLimit, kSecMatchLimitOne);
	st = SecItemCopyMatching(q, &data);
	CFRelease(q);
	CFRelease(account);
	if (st == errSecItemNotFound)
		return vault_errf(err, -ENOKEY, "macOS Keychain %s (absent)", src);
	if (st != errSecSuccess || data == NULL)
		return vault_errf(err, -EACCES, "macOS Keychain %s: error %d", src, (int)st);
	rc = vault_key_parse(CFDataGetBytePtr((CFDataRef)data), (size_t)CFDataGetLength((CFDataRef)data),
			     out);
	CFRelease(data);
	if (rc < 0)
		return vault_errf(err, -EINVAL, "macOS Keychain %s is not a master key", src);
	return 0;
}
#endif

int keyprov_file_read(const char *path, struct secbuf **out, struct vault_err *err)
{
	char what[PATH_MAX + 16];
	struct stat st;
	int fd, rc;

	snprintf(what, sizeof(what), "key file %s", path);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return vault_errf(err, -ENOENT, "key file %s (absent)", path);
		if (rc == -ELOOP)
			return vault_errf(err, -EPERM, "key file %s is a symlink: refused", path);
		return vault_errf(err, rc, "cannot open key file %s: %s", path, strerror(-rc));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return vault_errf(err, -EPERM, "key file %s is not a regular file: refused", path);
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		close(fd);
		return vault_errf(err, -EPERM, "key file %s has owner uid %u and mode %04o: refused "
				  "(must be owned by uid %u and mode 0600)", path,
				  (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
				  (unsigned)geteuid());
	}
	rc = read_key_fd(fd, what, out, err);
	close(fd);
	return rc;
}

static int fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	int fd, rc = 0;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int keyprov_file_create(const char *path, struct secbuf **out, struct vault_err *err)
{
	char tmp[PATH_MAX];
	struct secbuf *k = NULL;
	size_t off = 0;
	int fd, rc;

	*out = NULL;
	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= (int)sizeof(tmp))
		return vault_errf(err, -ENAMETOOLONG, "key file path too long");
	rc = secbuf_new(VAULT_KEY_LEN, &k);
	if (rc < 0)
		return vault_errf(err, rc, "out of memory");
	if (RAND_priv_bytes(secbuf_data(k), VAULT_KEY_LEN) != 1) {
		secbuf_free(k);
		return vault_errf(err, -EIO, "no randomness for a new master key");
	}
	secbuf_set_len(k, VAULT_KEY_LEN);
	/* mkostemp opens with O_EXCL and mode 0600. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		secbuf_free(k);
		return vault_errf(err, rc, "cannot create key file in %s: %s", path, strerror(-rc));
	}
	while (off < VAULT_KEY_LEN) {
		ssize_t n = write(fd, secbuf_cdata(k) + off, VAULT_KEY_LEN - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, 0600) < 0 || fsync(fd) < 0) {
		rc = -errno;
		goto fail;
	}
	/* link() is the atomic "create only if absent" for a complete file. */
	if (link(tmp, path) < 0) {
		rc = -errno;
		goto fail;
	}
	unlink(tmp);
	close(fd);
	rc = fsync_parent(path);
	if (rc < 0) {
		secbuf_free(k);
		return vault_errf(err, rc, "fsync directory of %s: %s", path, strerror(-rc));
	}
	*out = k;
	return 0;
fail:
	unlink(tmp);
	close(fd);
	secbuf_free(k);
	return vault_errf(err, rc, "cannot create key file %s: %s", path, strerror(-rc));
}

/* Remove temp files a crash inside keyprov_file_create left next to path. */
void keyprov_file_sweep(const char *path)
{
	char dir[PATH_MAX], base[PATH_MAX], pfx1[PATH_MAX + 8], pfx2[PATH_MAX + 16];
	struct dirent *de;
	DIR *d;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir) ||
	    snprintf(base, sizeof(base), "%s", path) >= (int)sizeof(base))
		return;
	snprintf(pfx1, sizeof(pfx1), "%s.tmp", basename(base));
	snprintf(pfx2, sizeof(pfx2), "%s.next.tmp", basename(base));
	d = opendir(dirname(dir));
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, pfx1, strlen(pfx1)) != 0 &&
		    strncmp(de->d_name, pfx2, strlen(pfx2)) != 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			log_warnx("removed %s/%s left by an interrupted key write", dir, de->d_name);
	}
	closedir(d);
}

int keyprov_file_commit(const char *from, const char *to)
{
	if (rename(from, to) < 0)
		return -errno;
	return fsync_parent(to);
}

static int load_file(const struct keyprov_cfg *cfg, struct secbuf **out, char *src,
		     size_t srclen, struct vault_err *err)
{
	int rc;

	snprintf(src, srclen, "%s", cfg->key_file);
	rc = keyprov_file_read(cfg->key_file, out, err);
	if (rc != -ENOENT)
		return rc;
	if (!cfg->may_create)
		return vault_errf(err, -ENOKEY, "key file %s (absent)", cfg->key_file);
	rc = keyprov_file_create(cfg->key_file, out, err);
	if (rc == 0)
		log_info("created master key file %s", cfg->key_file);
	return rc;
}

typedef int (*load_fn)(const struct keyprov_cfg *, struct secbuf **, char *, size_t,
		       struct vault_err *);

static load_fn provider_fn(enum vault_provider p)
{
	switch (p) {
	case VAULT_PROV_CREDENTIAL: return load_credential;
	case VAULT_PROV_KEYRING: return load_keyring;
#ifdef __APPLE__
	case VAULT_PROV_KEYCHAIN: return load_keychain;
#endif
	case VAULT_PROV_FILE: return load_file;
	default: return NULL;
	}
}

int keyprov_load_next(const struct keyprov_cfg *cfg, enum vault_provider p,
		      struct secbuf **master, char *source, size_t source_len,
		      struct vault_err *err)
{
	char cred[NAME_MAX + 1], desc[256], file[PATH_MAX];
	struct keyprov_cfg next = *cfg;
	load_fn fn = provider_fn(p);

	*master = NULL;
	if (fn == NULL)
		return vault_errf(err, -ENOTSUP, "provider %s unavailable", vault_provider_str(p));
	if (snprintf(cred, sizeof(cred), "%s.next", cfg->credential_name) >= (int)sizeof(cred) ||
	    snprintf(desc, sizeof(desc), "%s.next", cfg->keyring_desc) >= (int)sizeof(desc) ||
	    snprintf(file, sizeof(file), "%s.next", cfg->key_file) >= (int)sizeof(file))
		return vault_errf(err, -ENAMETOOLONG, "key name too long");
	next.credential_name = cred;
	next.keyring_desc = desc;
	next.key_file = file;
	next.may_create = false;
	return fn(&next, master, source, source_len, err);
}

int keyprov_load(const struct keyprov_cfg *cfg, struct secbuf **master,
		 enum vault_provider *prov, char *source, size_t source_len,
		 struct vault_err *err)
{
	static const enum vault_provider order[] = {
		VAULT_PROV_CREDENTIAL, VAULT_PROV_KEYRING, VAULT_PROV_KEYCHAIN, VAULT_PROV_FILE,
	};
	char looked[sizeof(struct vault_err)] = "";
	struct vault_err e;

	*master = NULL;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		enum vault_provider p = order[i];
		load_fn fn = provider_fn(p);
		int rc;

		if (cfg->want != VAULT_PROV_NONE && cfg->want != p)
			continue;
		if (fn == NULL) {
			if (cfg->want == p)
				return vault_errf(err, -ENOTSUP, "master-key provider %s is not available "
						  "on this platform", vault_provider_str(p));
			continue;
		}
		e.msg[0] = '\0';
		rc = fn(cfg, master, source, source_len, &e);
		if (rc == 0) {
			*prov = p;
			return 0;
		}
		if (rc != -ENOKEY)
			return vault_errf(err, rc, "master-key provider %s: %s", vault_provider_str(p),
					  e.msg);
		size_t l = strlen(looked);
		snprintf(looked + l, sizeof(looked) - l, "%s%s", l > 0 ? "; " : "", e.msg);
	}
	return vault_errf(err, -ENOKEY, "no master key found (looked for: %s)", looked);
}
