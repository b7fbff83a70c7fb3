/*
 * Variable expansion and the base profile: $WORKSPACE/$HOME/$TMPDIR expand
 * only as a whole leading component, results are normal absolute paths,
 * missing or bad variables fail naming the rule, contradictions that appear
 * only after expansion are caught, a failed resolve leaves the policy as it
 * was, and the base profile adds system paths without overriding the
 * policy's own rules or leaking $HOME, /tmp, /run or /var.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "../check-run.h"

static struct policy *parse_ok(const char *t)
{
	struct policy_error err;
	struct policy *p = NULL;

	ck_assert_msg(policy_parse(t, strlen(t), &p, &err) == 0, "%s: %s", err.path, err.message);
	return p;
}

static const struct policy_fs_rule *find(const struct policy *p, const char *path)
{
	for (size_t i = 0; i < p->n_fs; i++)
		if (!strcmp(p->fs[i].path, path))
			return &p->fs[i];
	return NULL;
}

START_TEST(test_expand)
{
	struct policy_vars v = { .workspace = "/w/proj/", .home = "/home/u", .tmpdir = "/" };
	struct policy *p = parse_ok("version: 1\nfilesystem:\n"
				    "  read: [$WORKSPACE, \"${HOME}/.config\", \"$TMPDIR/x\", /$HOME]\n"
				    "  write: [\"$TMPDIR\"]\n"
				    "snapshot: {workspace: \"${WORKSPACE}/src\"}\n");
	struct policy_error err;

	ck_assert_int_eq(policy_resolve(p, &v, &err), 0);
	ck_assert(p->resolved);
	ck_assert_ptr_nonnull(find(p, "/w/proj"));
	ck_assert_ptr_nonnull(find(p, "/home/u/.config"));
	ck_assert_ptr_nonnull(find(p, "/x"));     /* "/" + "/x" is not "//x" */
	ck_assert_ptr_nonnull(find(p, "/$HOME")); /* not at the start: literal */
	ck_assert_ptr_nonnull(find(p, "/"));
	ck_assert_str_eq(p->snapshot.workspace, "/w/proj/src");
	for (size_t i = 1; i < p->n_fs; i++)
		ck_assert(strcmp(p->fs[i - 1].path, p->fs[i].path) < 0);
	ck_assert_int_eq(policy_resolve(p, &v, &err), -EALREADY);
	policy_free(p);
}
END_TEST

START_TEST(test_missing_and_bad_vars)
{
	struct policy_vars none = { 0 };
	struct policy_vars rel = { .workspace = "w", .home = "/h", .tmpdir = "/t" };
	struct policy_vars dots = { .workspace = "/w/../etc", .home = "/h", .tmpdir = "/t" };
	struct policy_vars nl = { .workspace = "/w\n", .home = "/h", .tmpdir = "/t" };
	struct policy *p = parse_ok("version: 1\nfilesystem: {read: [/usr], deny: [\"$HOME/.ssh\"]}\n");
	struct policy_error err;
	char before[65], after[65];

	ck_assert_int_eq(policy_digest(p, before), 0);
	ck_assert_int_eq(policy_resolve(p, &none, &err), POLICY_EINVAL);
	ck_assert_str_eq(err.path, "filesystem.deny[0]");
	ck_assert_ptr_nonnull(strstr(err.message, "$HOME is not set"));
	ck_assert_int_eq(policy_resolve(p, NULL, &err), POLICY_EINVAL);
	ck_assert_int_eq(policy_resolve(p, &rel, &err), POLICY_EINVAL);
	ck_assert_str_eq(err.path, "vars.workspace");
	ck_assert_int_eq(policy_resolve(p, &dots, &err), POLICY_EINVAL);
	ck_assert_str_eq(err.path, "vars.workspace");
	ck_assert_int_eq(policy_resolve(p, &nl, &err), POLICY_EINVAL);
	ck_assert_str_eq(err.path, "vars.workspace");
	/* Failed resolves changed nothing. */
	ck_assert(!p->resolved);
	ck_assert_int_eq(policy_digest(p, after), 0);
	ck_assert_str_eq(before, after);
	/* Control: a used variable set, unused ones absent, is fine. */
	none.home = "/h";
	ck_assert_int_eq(policy_resolve(p, &none, &err), 0);
	ck_assert_ptr_nonnull(find(p, "/h/.ssh"));
	policy_free(p);
}
END_TEST

/* Same path allowed and denied only after expansion. */
START_TEST(test_contradiction_after_expand)
{
	struct policy_vars v = { .workspace = "/home/u/proj", .home = "/home/u", .tmpdir = "/t" };
	struct policy *p = parse_ok("version: 1\nfilesystem:\n  write: [$WORKSPACE]\n"
				    "  deny: [\"$HOME/.ssh\", \"$HOME/proj\"]\n");
	struct policy_error err;

	ck_assert_int_eq(policy_resolve(p, &v, &err), POLICY_EINVAL);
	ck_assert_str_eq(err.path, "filesystem.deny[1]");
	ck_assert_ptr_nonnull(strstr(err.message, "/home/u/proj"));
	ck_assert(!p->resolved);
	/* Control: a deny inside the workspace is a carve-out, not a contradiction. */
	v.workspace = "/home/u";
	policy_free(p);
	p = parse_ok("version: 1\nfilesystem:\n  write: [$WORKSPACE]\n  deny: [\"$HOME/.ssh\"]\n");
	ck_assert_int_eq(policy_resolve(p, &v, &err), 0);
	policy_free(p);
}
END_TEST

/* Same path twice after expansion: merged into one rule. */
START_TEST(test_merge_after_expand)
{
	struct policy_vars v = { .workspace = "/home/u", .home = "/home/u", .tmpdir = "/t" };
	struct policy *p = parse_ok("version: 1\nfilesystem:\n  read: [$WORKSPACE]\n  write: [$HOME]\n");
	struct policy_error err;

	ck_assert_int_eq(policy_resolve(p, &v, &err), 0);
	ck_assert_uint_eq(p->n_fs, 1);
	ck_assert_uint_eq(p->fs[0].access, POLICY_FS_READ | POLICY_FS_WRITE);
	policy_free(p);
}
END_TEST

START_TEST(test_base_profile)
{
	struct policy_vars v = { .workspace = "/w", .home = "/home/u", .tmpdir = "/tmp/nono-1" };
	struct policy *p = parse_ok("version: 1\nfilesystem:\n  read: [$WORKSPACE, /dev/pts]\n"
				    "  deny: [/etc/passwd]\n");
	struct policy_error err;
	char before[65], after[65];
	const struct policy_fs_rule *r;

	ck_assert_int_eq(policy_resolve(p, &v, &err), 0);
	ck_assert_int_eq(policy_digest(p, before), 0);
	ck_assert_int_eq(policy_merge_base(p), 0);
	ck_assert(p->base_merged);
	ck_assert_int_eq(policy_merge_base(p), 0); /* idempotent */
	r = find(p, "/usr");
	ck_assert(r && r->from_base && r->access == POLICY_FS_READ && !r->optional);
	r = find(p, "/proc");
	ck_assert(r && r->access == POLICY_FS_READ);
	r = find(p, "/dev/null");
	ck_assert(r && r->access == (POLICY_FS_READ | POLICY_FS_WRITE));
	/* The policy's own rules win over the base for the same path. */
	r = find(p, "/etc/passwd");
	ck_assert(r && r->access == POLICY_FS_DENY && !r->from_base);
	r = find(p, "/dev/pts");
	ck_assert(r && r->access == POLICY_FS_READ && !r->from_base);
	/* Never in the base. */
	ck_assert_ptr_null(find(p, "/tmp"));
	ck_assert_ptr_null(find(p, "/home"));
	ck_assert_ptr_null(find(p, "/home/u"));
	ck_assert_ptr_null(find(p, "/run"));
	ck_assert_ptr_null(find(p, "/var"));
	ck_assert_ptr_null(find(p, "/etc"));
	ck_assert_ptr_null(find(p, "/etc/shadow"));
	ck_assert_ptr_null(find(p, "/dev/shm"));
	for (size_t i = 0; i < p->n_fs; i++) {
		ck_assert_msg(strncmp(p->fs[i].path, "/var/", 5) && strncmp(p->fs[i].path, "/run/", 5) &&
			      strncmp(p->fs[i].path, "/tmp/", 5) && strncmp(p->fs[i].path, "/home/", 6),
			      "base leaks %s", p->fs[i].path);
		if (i)
			ck_assert(strcmp(p->fs[i - 1].path, p->fs[i].path) < 0);
	}
	/* The canonical form and digest are those of the policy as written. */
	ck_assert_int_eq(policy_digest(p, after), 0);
	ck_assert_str_eq(before, after);
	policy_free(p);

	p = parse_ok("version: 1\nbase: none\nfilesystem: {read: [/opt]}\n");
	ck_assert_int_eq(policy_merge_base(p), 0);
	ck_assert_uint_eq(p->n_fs, 1);
	policy_free(p);
}
END_TEST

/* Every base entry is absolute, normal, unique and documented. */
START_TEST(test_base_table)
{
	for (size_t i = 0; i < policy_base_profile_len; i++) {
		const struct policy_base_entry *b = &policy_base_profile[i];

		ck_assert(b->path[0] == '/' && !strstr(b->path, "//") && !strstr(b->path, "..") &&
			  b->path[strlen(b->path) - 1] != '/');
		ck_assert(b->access && !(b->access & POLICY_FS_DENY));
		ck_assert(b->why && *b->why);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(policy_base_profile[j].path, b->path);
	}
}
END_TEST

/* Snapshot workspace: needed only when automatic snapshots are on. */
START_TEST(test_snapshot_workspace)
{
	struct policy_vars none = { 0 };
	struct policy_error err;
	struct policy *p = parse_ok("version: 1\n");
	char *s;

	ck_assert_int_eq(policy_resolve(p, &none, &err), 0);
	ck_assert_ptr_null(p->snapshot.workspace);
	s = policy_canonical_string(p, NULL);
	ck_assert_ptr_nonnull(strstr(s, "\"snapshot\":{\"exclude\":[],\"on_exit\":false,\"on_start\":false}"));
	free(s);
	policy_free(p);

	p = parse_ok("version: 1\nsnapshot: {on_exit: true}\n");
	ck_assert_int_eq(policy_resolve(p, &none, &err), POLICY_EINVAL);
	ck_assert_str_eq(err.path, "snapshot.workspace");
	policy_free(p);
}
END_TEST

static Suite *resolve_suite(void)
{
	Suite *s = suite_create("policy-resolve");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_expand);
	tcase_add_test(tc, test_missing_and_bad_vars);
	tcase_add_test(tc, test_contradiction_after_expand);
	tcase_add_test(tc, test_merge_after_expand);
	tcase_add_test(tc, test_base_profile);
	tcase_add_test(tc, test_base_table);
	tcase_add_test(tc, test_snapshot_workspace);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(resolve_suite());
}
