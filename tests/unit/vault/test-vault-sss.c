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
	struct vt t;
	struct vault_secret_info info;
	uid_t me = getuid();

	vt_fresh(&t, sss_opts());
	ck_assert_int_eq(vt_render(t.v, me, "Bearer ${secret:gh}", "Bearer ss-value-1", &t.err), 0);
	/* Again, now from the cache (sealed by the vault). */
	ck_assert_int_eq(vt_render(t.v, me, "Bearer ${secret:gh}", "Bearer ss-value-1", &t.err), 0);
	/* Only the bus owner's lookups reach the Secret Service. */
	ck_assert_int_eq(vt_render(t.v, me + 1, "${secret:gh}", NULL, &t.err), -ENOENT);
	/* Items for another target are not ours. */
	ck_assert_int_eq(vt_render(t.v, me, "${secret:tgt}", NULL, &t.err), -ENOENT);
	/* Values that would split a header are refused from this backend too. */
	ck_assert_int_eq(vt_render(t.v, me, "${secret:crlf}", NULL, &t.err), -EINVAL);
	/* The vault wins when both have the name. */
	ck_assert_int_eq(vt_render(t.v, me, "${secret:both}", "from-secret-service", &t.err), 0);
	ck_assert_int_eq(vault_set(t.v, me, "both", "from-vault", 10, NULL, &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, me, "${secret:both}", "from-vault", &t.err), 0);
	ck_assert_int_eq(vault_info(t.v, me, "gh", &info, &t.err), 0);
	ck_assert_int_eq(info.backend, VAULT_BACKEND_SECRET_SERVICE);
	ck_assert_int_eq(vault_info(t.v, me, "both", &info, &t.err), 0);
	ck_assert_int_eq(info.backend, VAULT_BACKEND_VAULT);
	/* Read-only from here: delete names the tool to use. */
	ck_assert_int_eq(vault_delete(t.v, me, "gh", &t.err), -EROFS);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "secret-tool"));
	ck_assert_int_eq(vt_render(t.v, me, "${secret:gh}", "ss-value-1", &t.err), 0);
	/* Deleting the vault copy uncovers the Secret Service item. */
	ck_assert_int_eq(vault_delete(t.v, me, "both", &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, me, "${secret:both}", "from-secret-service", &t.err), 0);
	vt_done(&t);
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
	struct vt t;
	char got[1024] = "";
	uid_t me = getuid();

	vt_fresh(&t, sss_opts());
	ck_assert_int_eq(vault_set(t.v, me, "both", "from-vault", 10, NULL, &t.err), 0);
	ck_assert_int_eq(vault_set(t.v, me, "local", "x", 1, NULL, &t.err), 0);
	ck_assert_int_eq(vault_list(t.v, me, collect, got, &t.err), 0);
	ck_assert_ptr_nonnull(strstr(got, "both=v,local=v,"));
	ck_assert_ptr_nonnull(strstr(got, "gh=s,"));
	ck_assert_ptr_nonnull(strstr(got, "both=s(shadowed),"));
	ck_assert_ptr_nonnull(strstr(got, "crlf=s,"));
	ck_assert_ptr_null(strstr(got, "tgt"));
	ck_assert_ptr_null(strstr(got, "bad name"));
	ck_assert_ptr_null(strstr(got, "ss-value"));
	vt_done(&t);
}
END_TEST

/* Control: with the backend off, the same names are not found. */
START_TEST(backend_off)
{
	struct vt t;

	vt_fresh(&t, NULL);
	ck_assert_int_eq(vt_render(t.v, getuid(), "${secret:gh}", NULL, &t.err), -ENOENT);
	vt_done(&t);
}
END_TEST

/* No session bus: a clear backend error; vault secrets keep working. */
START_TEST(bus_unreachable)
{
	struct vt t;
	char addr[256];

	vt_mkdir(&t);
	snprintf(addr, sizeof(addr), "unix:path=%s/no-such-bus", t.dir);
	setenv("DBUS_SESSION_BUS_ADDRESS", addr, 1);
	ck_assert_int_eq(vt_open(&t, sss_opts()), 0);
	ck_assert_int_eq(vault_set(t.v, getuid(), "local", "L", 1, NULL, &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, getuid(), "${secret:local}", "L", &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, getuid(), "${secret:gh}", NULL, &t.err), -ENOTCONN);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "Secret Service"));
	vt_done(&t);
}
END_TEST

/* A locked keyring: a clear error, no prompt, no hang; vault secrets unaffected. */
START_TEST(locked_item)
{
	struct vt t;

	vt_fresh(&t, sss_opts());
	ck_assert_int_eq(vault_set(t.v, getuid(), "local", "L", 1, NULL, &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, getuid(), "${secret:gh}", NULL, &t.err), -EACCES);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "locked"));
	ck_assert_int_eq(vt_render(t.v, getuid(), "${secret:local}", "L", &t.err), 0);
	vt_done(&t);
}
END_TEST

/* A value changed with secret-tool is seen once the cache entry is gone. */
START_TEST(cache_follows_changes)
{
	struct vt t;
	uid_t me = getuid();

	vt_fresh(&t, sss_opts());
	ck_assert_int_eq(system("printf changed | secret-tool store --label=x service nono "
				"username chg target default"), 0);
	ck_assert_int_eq(vt_render(t.v, me, "${secret:chg}", "changed", &t.err), 0);
	ck_assert_int_eq(system("printf changed-again | secret-tool store --label=x service nono "
				"username chg target default"), 0);
	ck_assert_int_eq(vt_render(t.v, me, "${secret:chg}", "changed", &t.err), 0); /* cached */
	vault_cache_flush(t.v);
	ck_assert_int_eq(vt_render(t.v, me, "${secret:chg}", "changed-again", &t.err), 0);
	vt_done(&t);
}
END_TEST

int main(void)
{
	const char *phase = getenv("NONO_SSS_TEST");
	Suite *s;
	TCase *tc;

	if (phase == NULL) {
		fprintf(stderr, "SKIP: run through test-vault-sss.sh (needs a private session bus)\n");
		return 77;
	}
	s = suite_create("vault-secret-service");
	tc = vt_tcase("gnome-keyring", 60);
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
