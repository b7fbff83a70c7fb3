/*
 * The Secret Service backend against a real gnome-keyring-daemon; run by
 * test-vault-sss.sh, which stores the items on a private session bus.
 */
#include <check.h>

#include "vtest.h"
#include "../check-run.h"

static const struct vault_options *sss_opts(void)
{
	static struct vault_options o = { .provider = "key-file", .secret_service = true };

	o.secret_service_uid = getuid();
	return &o;
}

START_TEST(lookup_and_resolution)
{
	char dir[128];
	struct vault_secret_info info;
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	uid_t me = getuid();

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, sss_opts(), &db, &v, &err), 0);
	ck_assert_int_eq(vt_render(v, me, "Bearer ${secret:gh}", "Bearer ss-value-1", &err), 0);
	/* Again, now from the cache (sealed by the vault). */
	ck_assert_int_eq(vt_render(v, me, "Bearer ${secret:gh}", "Bearer ss-value-1", &err), 0);
	/* Only the bus owner's lookups reach the Secret Service. */
	ck_assert_int_eq(vt_render(v, me + 1, "${secret:gh}", NULL, &err), -ENOENT);
	/* Items for another target are not ours. */
	ck_assert_int_eq(vt_render(v, me, "${secret:tgt}", NULL, &err), -ENOENT);
	/* Values that would split a header are refused from this backend too. */
	ck_assert_int_eq(vt_render(v, me, "${secret:crlf}", NULL, &err), -EINVAL);
	/* The vault wins when both have the name. */
	ck_assert_int_eq(vt_render(v, me, "${secret:both}", "from-secret-service", &err), 0);
	ck_assert_int_eq(vault_set(v, me, "both", "from-vault", 10, NULL, &err), 0);
	ck_assert_int_eq(vt_render(v, me, "${secret:both}", "from-vault", &err), 0);
	ck_assert_int_eq(vault_info(v, me, "gh", &info, &err), 0);
	ck_assert_int_eq(info.backend, VAULT_BACKEND_SECRET_SERVICE);
	ck_assert_int_eq(vault_info(v, me, "both", &info, &err), 0);
	ck_assert_int_eq(info.backend, VAULT_BACKEND_VAULT);
	/* Read-only from here: delete names the tool to use. */
	ck_assert_int_eq(vault_delete(v, me, "gh", &err), -EROFS);
	ck_assert_ptr_nonnull(strstr(err.msg, "secret-tool"));
	ck_assert_int_eq(vt_render(v, me, "${secret:gh}", "ss-value-1", &err), 0);
	/* Deleting the vault copy uncovers the Secret Service item. */
	ck_assert_int_eq(vault_delete(v, me, "both", &err), 0);
	ck_assert_int_eq(vt_render(v, me, "${secret:both}", "from-secret-service", &err), 0);
	vt_close(db, v);
}
END_TEST

static int collect(void *ctx, const struct vault_secret_info *i)
{
	char *s = ctx;

	strcat(s, i->name);
	strcat(s, i->backend == VAULT_BACKEND_VAULT ? "=v" : "=s");
	strcat(s, i->shadowed ? "(shadowed)," : ",");
	return 0;
}

START_TEST(list_both_backends)
{
	char dir[128], got[1024] = "";
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	uid_t me = getuid();

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, sss_opts(), &db, &v, &err), 0);
	ck_assert_int_eq(vault_set(v, me, "both", "from-vault", 10, NULL, &err), 0);
	ck_assert_int_eq(vault_set(v, me, "local", "x", 1, NULL, &err), 0);
	ck_assert_int_eq(vault_list(v, me, collect, got, &err), 0);
	ck_assert_ptr_nonnull(strstr(got, "both=v,local=v,"));
	ck_assert_ptr_nonnull(strstr(got, "gh=s,"));
	ck_assert_ptr_nonnull(strstr(got, "both=s(shadowed),"));
	ck_assert_ptr_nonnull(strstr(got, "crlf=s,"));
	ck_assert_ptr_null(strstr(got, "tgt"));
	ck_assert_ptr_null(strstr(got, "bad name"));
	ck_assert_ptr_null(strstr(got, "ss-value"));
	vt_close(db, v);
}
END_TEST

/* Control: with the backend off, the same names are not found. */
START_TEST(backend_off)
{
	char dir[128];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vt_render(v, getuid(), "${secret:gh}", NULL, &err), -ENOENT);
	vt_close(db, v);
}
END_TEST

/* No session bus: a clear backend error; vault secrets keep working. */
START_TEST(bus_unreachable)
{
	char dir[128], addr[256];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	snprintf(addr, sizeof(addr), "unix:path=%s/no-such-bus", dir);
	setenv("DBUS_SESSION_BUS_ADDRESS", addr, 1);
	ck_assert_int_eq(vt_open(dir, sss_opts(), &db, &v, &err), 0);
	ck_assert_int_eq(vault_set(v, getuid(), "local", "L", 1, NULL, &err), 0);
	ck_assert_int_eq(vt_render(v, getuid(), "${secret:local}", "L", &err), 0);
	ck_assert_int_eq(vt_render(v, getuid(), "${secret:gh}", NULL, &err), -ENOTCONN);
	ck_assert_ptr_nonnull(strstr(err.msg, "Secret Service"));
	vt_close(db, v);
}
END_TEST

/* A locked keyring: a clear error, no prompt, no hang; vault secrets unaffected. */
START_TEST(locked_item)
{
	char dir[128];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, sss_opts(), &db, &v, &err), 0);
	ck_assert_int_eq(vault_set(v, getuid(), "local", "L", 1, NULL, &err), 0);
	ck_assert_int_eq(vt_render(v, getuid(), "${secret:gh}", NULL, &err), -EACCES);
	ck_assert_ptr_nonnull(strstr(err.msg, "locked"));
	ck_assert_int_eq(vt_render(v, getuid(), "${secret:local}", "L", &err), 0);
	vt_close(db, v);
}
END_TEST

/* A value changed with secret-tool is seen once the cache entry is gone. */
START_TEST(cache_follows_changes)
{
	char dir[128];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	uid_t me = getuid();

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, sss_opts(), &db, &v, &err), 0);
	ck_assert_int_eq(system("printf changed | secret-tool store --label=x service nono "
				"username chg target default"), 0);
	ck_assert_int_eq(vt_render(v, me, "${secret:chg}", "changed", &err), 0);
	ck_assert_int_eq(system("printf changed-again | secret-tool store --label=x service nono "
				"username chg target default"), 0);
	ck_assert_int_eq(vt_render(v, me, "${secret:chg}", "changed", &err), 0); /* cached */
	vault_cache_flush(v);
	ck_assert_int_eq(vt_render(v, me, "${secret:chg}", "changed-again", &err), 0);
	vt_close(db, v);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vault-secret-service");
	TCase *tc = tcase_create("gnome-keyring");

	const char *phase = getenv("NONO_SSS_TEST");

	if (phase == NULL) {
		fprintf(stderr, "SKIP: run through test-vault-sss.sh (needs a private session bus)\n");
		return 77;
	}
	tcase_add_unchecked_fixture(tc, vt_root_setup, vt_root_teardown);
	tcase_set_timeout(tc, 60);
	if (strcmp(phase, "locked") == 0) {
		tcase_add_test(tc, locked_item);
	} else {
		tcase_add_test(tc, lookup_and_resolution);
		tcase_add_test(tc, list_both_backends);
		tcase_add_test(tc, backend_off);
		tcase_add_test(tc, bus_unreachable);
		tcase_add_test(tc, cache_follows_changes);
	}
	suite_add_tcase(s, tc);
	return check_run(s);
}
