/*
 * secret.* handlers (daemon/method-secret.c) on a real vault, and the canary
 * test: a random canary secret goes through set/list/info/render/rotate/
 * delete and every error path; then the daemon's log output, every JSON
 * response, and every file in the state dir (database and WAL included) are
 * searched for it in plain, hex and base64.
 *
 * rpc.c's rpc_call_take_fd and the nonod global are provided here with the
 * same semantics, so the handlers run without a socket server.
 */
#include <check.h>
#include <dirent.h>
#include <openssl/evp.h>

#include "daemon.h"
#include "log.h"
#include "rpc.h"
#include "vtest.h"
#include "../check-run.h"

extern const struct method secret_methods[];
struct json_object *secret_status_json(const char *open_error);

struct nonod *nonod;
static struct nonod fake_nonod;

int rpc_call_take_fd(struct rpc_call *call, int64_t idx, struct rpc_error *err)
{
	int fd;

	if (idx < 0 || (uint64_t)idx >= call->nfds || call->fds[idx] < 0)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "fds", "bad fd index"), -1;
	fd = call->fds[idx];
	call->fds[idx] = -1;
	return fd;
}

/* Every response of this process, as JSON text, for the canary scan. */
static char *responses;
static size_t responses_len;

static void record(const char *s)
{
	size_t n = strlen(s);

	responses = realloc(responses, responses_len + n + 2);
	ck_assert_ptr_nonnull(responses);
	memcpy(responses + responses_len, s, n);
	responses_len += n;
	responses[responses_len++] = '\n';
	responses[responses_len] = '\0';
}

/* Run method name with params (a JSON text) as peer; the result or error is recorded. */
static int call(const char *name, const char *params_json, uid_t uid, bool admin,
		int *fds, size_t nfds, struct json_object **result)
{
	const struct method *m = NULL;
	struct peer peer = { .uid = uid, .gid = uid, .pid = 1, .admin = admin };
	struct json_object *params = params_json ? json_tokener_parse(params_json) : NULL;
	struct rpc_call c = { .peer = &peer, .params = params, .fds = fds, .nfds = nfds };
	struct json_object *res = NULL;
	struct rpc_error err;
	int rc;

	for (const struct method *x = secret_methods; x->name != NULL; x++)
		if (strcmp(x->name, name) == 0)
			m = x;
	ck_assert_ptr_nonnull(m);
	rpc_error_clear(&err);
	/* As rpc.c does before any handler: authority, then params. */
	if (m->auth == AUTH_ADMIN && !admin)
		rc = rpc_error_set(&err, NONO_E_PERMISSION_DENIED, "method", "admin only");
	else
		rc = params_check(params, m->params, &err);
	if (rc == 0)
		rc = m->fn(&c, &res, &err);
	if (rc == 0) {
		record(res != NULL ? json_object_to_json_string(res) : "{}");
	} else {
		char line[1024];
		snprintf(line, sizeof(line), "{\"code\":%d,\"field\":\"%s\",\"detail\":\"%s\"}",
			 err.code, err.field, err.detail);
		record(line);
		ck_assert_int_eq(rc, err.code);
	}
	/* The value param was wiped in place: its json-c copy no longer holds it. */
	if (params != NULL && json_object_object_get_ex(params, "value", NULL) && rc == 0)
		ck_assert_ptr_null(strstr(json_object_get_string(params_get(params, "value")),
					  "CANARY"));
	json_object_put(params);
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (result != NULL)
		*result = res;
	else
		json_object_put(res);
	return rc;
}

/* The state dir, database and vault behind fake_nonod. */
static struct vt mt;

static void open_nonod(void)
{
	vt_fresh(&mt, NULL);
	memset(&fake_nonod, 0, sizeof(fake_nonod));
	fake_nonod.vault = mt.v;
	fake_nonod.db = mt.db;
	fake_nonod.state_dir = mt.dir;
	nonod = &fake_nonod;
}

static void close_nonod(void)
{
	vt_done(&mt);
	nonod = NULL;
}

/* A pipe holding value with its write end closed (or left open if keep_open). */
static int value_pipe(const char *value, size_t len, int *keep_open)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	if (len > 0)
		ck_assert_int_eq(write(p[1], value, len), (ssize_t)len);
	if (keep_open != NULL)
		*keep_open = p[1];
	else
		close(p[1]);
	return p[0];
}

START_TEST(set_value_and_fd)
{
	struct json_object *r = NULL;
	int fds[2], wr;

	open_nonod();
	ck_assert_int_eq(call("secret.set", "{\"name\":\"a\",\"value\":\"v1\"}", 1000, false, NULL, 0,
			      &r), 0);
	ck_assert_str_eq(json_object_get_string(params_get(r, "status")), "created");
	ck_assert_ptr_null(params_get(r, "value"));
	json_object_put(r);
	fds[0] = value_pipe("from-fd", 7, NULL);
	ck_assert_int_eq(call("secret.set", "{\"name\":\"a\",\"fd\":0}", 1000, false, fds, 1, &r), 0);
	ck_assert_str_eq(json_object_get_string(params_get(r, "status")), "updated");
	json_object_put(r);
	ck_assert_int_eq(vt_render(nonod->vault, 1000, "${secret:a}", "from-fd", NULL), 0);

	/* Exactly one source. */
	ck_assert_int_eq(call("secret.set", "{\"name\":\"a\"}", 1000, false, NULL, 0, NULL),
			 NONO_E_INVALID_PARAMS);
	fds[0] = value_pipe("x", 1, NULL);
	ck_assert_int_eq(call("secret.set", "{\"name\":\"a\",\"value\":\"v\",\"fd\":0}", 1000, false,
			      fds, 1, NULL), NONO_E_INVALID_PARAMS);
	/* An fd index that was not passed. */
	ck_assert_int_eq(call("secret.set", "{\"name\":\"a\",\"fd\":1}", 1000, false, NULL, 0, NULL),
			 NONO_E_INVALID_PARAMS);
	/* A pipe whose writer never closes: refused at once, never waited on. */
	fds[0] = value_pipe("partial", 7, &wr);
	ck_assert_int_eq(call("secret.set", "{\"name\":\"a\",\"fd\":0}", 1000, false, fds, 1, NULL),
			 NONO_E_INVALID_PARAMS);
	close(wr);
	fds[0] = value_pipe("", 0, &wr);
	ck_assert_int_eq(call("secret.set", "{\"name\":\"a\",\"fd\":0}", 1000, false, fds, 1, NULL),
			 NONO_E_INVALID_PARAMS);
	close(wr);
	/* The value is unchanged by the failed calls. */
	ck_assert_int_eq(vt_render(nonod->vault, 1000, "${secret:a}", "from-fd", NULL), 0);
	/* Bad names. */
	ck_assert_int_eq(call("secret.set", "{\"name\":\"a/b\",\"value\":\"v\"}", 1000, false, NULL, 0,
			      NULL), NONO_E_INVALID_PARAMS);
	ck_assert_int_eq(call("secret.set", "{\"name\":\"\",\"value\":\"v\"}", 1000, false, NULL, 0,
			      NULL), NONO_E_INVALID_PARAMS);
	close_nonod();
}
END_TEST

/* 64 KiB through a file is fine; one byte more is LIMIT_EXCEEDED. */
START_TEST(fd_size_limit)
{
	static char big[VAULT_VALUE_MAX + 1];
	char path[256];
	int fds[1];

	open_nonod();
	memset(big, 'z', sizeof(big));
	vt_path(&mt, "value", path, sizeof(path));
	vt_write_file(path, big, VAULT_VALUE_MAX, 0600);
	fds[0] = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(call("secret.set", "{\"name\":\"big\",\"fd\":0}", 1000, false, fds, 1, NULL), 0);
	vt_write_file(path, big, VAULT_VALUE_MAX + 1, 0600);
	fds[0] = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(call("secret.set", "{\"name\":\"big\",\"fd\":0}", 1000, false, fds, 1, NULL),
			 NONO_E_LIMIT_EXCEEDED);
	unlink(path);
	close_nonod();
}
END_TEST

START_TEST(authority)
{
	struct json_object *r = NULL;

	open_nonod();
	ck_assert_int_eq(call("secret.set", "{\"name\":\"mine\",\"value\":\"m\"}", 1000, false, NULL, 0,
			      NULL), 0);
	/* Another user cannot read, list, change or delete it. */
	ck_assert_int_eq(call("secret.info", "{\"name\":\"mine\",\"uid\":1000}", 2000, false, NULL, 0,
			      NULL), NONO_E_PERMISSION_DENIED);
	ck_assert_int_eq(call("secret.list", "{\"uid\":1000}", 2000, false, NULL, 0, NULL),
			 NONO_E_PERMISSION_DENIED);
	ck_assert_int_eq(call("secret.set", "{\"name\":\"mine\",\"value\":\"x\",\"uid\":1000}", 2000,
			      false, NULL, 0, NULL), NONO_E_PERMISSION_DENIED);
	ck_assert_int_eq(call("secret.delete", "{\"name\":\"mine\",\"uid\":1000}", 2000, false, NULL,
			      0, NULL), NONO_E_PERMISSION_DENIED);
	/* Without uid they act on their own (empty) namespace. */
	ck_assert_int_eq(call("secret.info", "{\"name\":\"mine\"}", 2000, false, NULL, 0, NULL),
			 NONO_E_NOT_FOUND);
	ck_assert_int_eq(call("secret.delete", "{\"name\":\"mine\"}", 2000, false, NULL, 0, NULL),
			 NONO_E_NOT_FOUND);
	ck_assert_int_eq(call("secret.rotate_key", NULL, 2000, false, NULL, 0, NULL),
			 NONO_E_PERMISSION_DENIED);
	ck_assert_int_eq(vt_render(nonod->vault, 1000, "${secret:mine}", "m", NULL), 0);
	/* Control: an admin may. */
	ck_assert_int_eq(call("secret.list", "{\"uid\":1000}", 0, true, NULL, 0, &r), 0);
	ck_assert_int_eq(json_object_array_length(r), 1);
	json_object_put(r);
	ck_assert_int_eq(call("secret.info", "{\"name\":\"mine\",\"uid\":1000}", 0, true, NULL, 0, &r),
			 0);
	ck_assert_str_eq(json_object_get_string(params_get(r, "backend")), "vault");
	ck_assert_int_eq(json_object_get_int64(params_get(r, "owner")), 1000);
	json_object_put(r);
	ck_assert_int_eq(call("secret.rotate_key", NULL, 0, true, NULL, 0, &r), 0);
	json_object_put(r);
	ck_assert_int_eq(call("secret.delete", "{\"name\":\"mine\",\"uid\":1000}", 0, true, NULL, 0,
			      NULL), 0);
	ck_assert_int_eq(vt_render(nonod->vault, 1000, "${secret:mine}", NULL, NULL), -ENOENT);
	/* Unknown params are refused by the spec. */
	ck_assert_int_eq(call("secret.list", "{\"owner\":1}", 0, true, NULL, 0, NULL),
			 NONO_E_INVALID_PARAMS);
	close_nonod();
	{
		struct json_object *st;

		open_nonod();
		st = secret_status_json(NULL);
		ck_assert(json_object_get_boolean(params_get(st, "available")));
		ck_assert_str_eq(json_object_get_string(params_get(st, "provider")), "key-file");
		if (geteuid() == 0)
			ck_assert(json_object_get_boolean(params_get(st, "memory_locked")));
		json_object_put(st);
		close_nonod();
		st = secret_status_json("no master key found");
		ck_assert(!json_object_get_boolean(params_get(st, "available")));
		ck_assert_str_eq(json_object_get_string(params_get(st, "error")), "no master key found");
		json_object_put(st);
	}
	/* No vault: backend unavailable, not a crash. */
	ck_assert_int_eq(call("secret.list", NULL, 1000, false, NULL, 0, NULL),
			 NONO_E_BACKEND_UNAVAILABLE);
}
END_TEST

/* ---- the canary ---- */

static bool contains(const unsigned char *hay, size_t n, const char *needle)
{
	return memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* Every encoding of canary we look for: plain, hex (both cases), base64 at 3 alignments. */
static size_t encodings(const char *canary, char out[8][256])
{
	size_t k = 0, n = strlen(canary);

	snprintf(out[k++], 256, "%s", canary);
	for (int upper = 0; upper < 2; upper++, k++)
		for (size_t i = 0; i < n; i++)
			sprintf(out[k] + 2 * i, upper ? "%02X" : "%02x", (unsigned char)canary[i]);
	for (size_t off = 0; off < 3; off++, k++) {
		int len = EVP_EncodeBlock((unsigned char *)out[k], (const unsigned char *)canary + off,
					  (int)(n - off));
		/* Drop the tail that depends on what follows. */
		out[k][len - 4] = '\0';
	}
	return k;
}

/* Index of the first encoding of canary found in buf, or -1. */
static int found(const unsigned char *buf, size_t n, const char *canary)
{
	char enc[8][256];
	size_t k = encodings(canary, enc);

	for (size_t i = 0; i < k; i++)
		if (contains(buf, n, enc[i]))
			return (int)i;
	return -1;
}

static void scan(const char *what, const unsigned char *buf, size_t n, const char *canary)
{
	int i = found(buf, n, canary);

	ck_assert_msg(i < 0, "canary (encoding %d) found in %s", i, what);
}

/* Control for the scanner: it does see the canary hidden in each encoding. */
static void scanner_control(const char *canary)
{
	char hex[256], text[512];
	unsigned char b64[256];
	size_t n = strlen(canary);

	ck_assert_int_eq(found((const unsigned char *)canary, n, canary), 0);
	for (size_t i = 0; i < n; i++)
		sprintf(hex + 2 * i, "%02X", (unsigned char)canary[i]);
	snprintf(text, sizeof(text), "pre%spost", hex);
	ck_assert_int_ge(found((unsigned char *)text, strlen(text), canary), 1);
	for (int pre = 0; pre < 3; pre++) {
		snprintf(text, sizeof(text), "%.*s%s!", pre, "ab", canary);
		EVP_EncodeBlock(b64, (unsigned char *)text, (int)strlen(text));
		ck_assert_int_ge(found(b64, strlen((char *)b64), canary), 3);
	}
}

static void scan_dir(const char *dir, const char *canary, int *files)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		char path[512];
		unsigned char *b;
		size_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		b = vt_slurp(path, &n);
		ck_assert_ptr_nonnull(b);
		scan(path, b, n, canary);
		free(b);
		(*files)++;
	}
	closedir(d);
}

START_TEST(canary_never_leaks)
{
	char canary[64], params[512], logpath[256], tmpl[] = "Bearer ${secret:canary}";
	unsigned char rnd[16], *log_buf;
	struct secbuf *out = NULL;
	struct vault_err verr;
	size_t log_len;
	int fds[1], saved_err, logfd, files = 0;
	char header[256];
	size_t hlen;
	FILE *ur;

	ur = fopen("/dev/urandom", "rb");
	ck_assert_ptr_nonnull(ur);
	ck_assert_int_eq(fread(rnd, 1, sizeof(rnd), ur), sizeof(rnd));
	fclose(ur);
	strcpy(canary, "CANARY");
	for (size_t i = 0; i < sizeof(rnd); i++)
		sprintf(canary + 6 + 2 * i, "%02x", rnd[i]);

	scanner_control(canary);
	/* Everything the vault and the handlers log goes to this file. */
	snprintf(logpath, sizeof(logpath), "%s/log", vt_root);
	logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(logfd, 0);
	fflush(stderr);
	saved_err = dup(2);
	dup2(logfd, 2);
	log_init("nonod", LOG_LEVEL_DEBUG);

	open_nonod();
	snprintf(params, sizeof(params), "{\"name\":\"canary\",\"value\":\"%s\"}", canary);
	ck_assert_int_eq(call("secret.set", params, 1000, false, NULL, 0, NULL), 0);
	fds[0] = value_pipe(canary, strlen(canary), NULL);
	ck_assert_int_eq(call("secret.set", "{\"name\":\"canary2\",\"fd\":0}", 1000, false, fds, 1,
			      NULL), 0);
	/* A canary that cannot go in a header, and error paths carrying the canary. */
	snprintf(params, sizeof(params), "{\"name\":\"crlf\",\"value\":\"%s\\r\\nX: 1\"}", canary);
	ck_assert_int_eq(call("secret.set", params, 1000, false, NULL, 0, NULL), 0);
	snprintf(params, sizeof(params), "{\"name\":\"bad/name\",\"value\":\"%s\"}", canary);
	ck_assert_int_ne(call("secret.set", params, 1000, false, NULL, 0, NULL), 0);
	snprintf(params, sizeof(params), "{\"name\":\"x\",\"value\":\"%s\",\"uid\":7}", canary);
	ck_assert_int_ne(call("secret.set", params, 1000, false, NULL, 0, NULL), 0);
	snprintf(params, sizeof(params), "{\"name\":\"x\",\"value\":\"%s\",\"extra\":1}", canary);
	ck_assert_int_ne(call("secret.set", params, 1000, false, NULL, 0, NULL), 0);

	ck_assert_int_eq(call("secret.list", NULL, 1000, false, NULL, 0, NULL), 0);
	ck_assert_int_eq(call("secret.info", "{\"name\":\"canary\"}", 1000, false, NULL, 0, NULL), 0);

	/* Render: the value is there (control), in the caller's buffer only. */
	ck_assert_int_eq(secbuf_new(VAULT_RENDER_MAX, &out), 0);
	ck_assert_int_eq(vault_render(nonod->vault, 1000, tmpl, out, &verr), 0);
	ck_assert(strstr(secbuf_cstr(out), canary) != NULL);
	ck_assert_int_eq(vault_render(nonod->vault, 1000, "${secret:crlf}", out, &verr), -EINVAL);
	record(verr.msg);
	ck_assert_int_eq(vault_render(nonod->vault, 1000, "${secret:canary", out, &verr), -EINVAL);
	record(verr.msg);
	ck_assert_int_eq(vault_render_cb(nonod->vault, 1000, tmpl, header, sizeof(header), &hlen), 0);
	ck_assert(strstr(header, canary) != NULL);
	explicit_bzero(header, sizeof(header));
	ck_assert_int_eq(vault_render_cb(nonod->vault, 1000, tmpl, header, 8, &hlen), -ENOSPC);
	secbuf_free(out);

	ck_assert_int_eq(call("secret.rotate_key", NULL, 0, true, NULL, 0, NULL), 0);
	ck_assert_int_eq(call("secret.list", "{\"uid\":1000}", 0, true, NULL, 0, NULL), 0);
	ck_assert_int_eq(call("secret.delete", "{\"name\":\"canary2\"}", 1000, false, NULL, 0, NULL), 0);
	/* Make sure everything reached the files: checkpoint the WAL too. */
	ck_assert_int_eq(vt_render(nonod->vault, 1000, "${secret:canary}", NULL, NULL), 0);
	close_nonod();

	fflush(stderr);
	dup2(saved_err, 2);
	close(saved_err);
	close(logfd);

	log_buf = vt_slurp(logpath, &log_len);
	ck_assert_ptr_nonnull(log_buf);
	/* Control: the log is not empty, and names the secrets. */
	ck_assert(contains(log_buf, log_len, "secret canary of uid 1000 created"));
	scan("the log", log_buf, log_len, canary);
	free(log_buf);
	ck_assert_ptr_nonnull(responses);
	ck_assert(strstr(responses, "\"canary\"") != NULL);
	scan("the responses", (unsigned char *)responses, responses_len, canary);
	scan_dir(mt.dir, canary, &files);
	ck_assert_int_ge(files, 2); /* nonod.db and master.key at least */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vault-methods");
	TCase *tc = vt_tcase("methods", 60);
	int failed;

	tcase_add_test(tc, set_value_and_fd);
	tcase_add_test(tc, fd_size_limit);
	tcase_add_test(tc, authority);
	tcase_add_test(tc, canary_never_leaks);
	suite_add_tcase(s, tc);
	failed = check_run(s);
	free(responses);
	return failed;
}
