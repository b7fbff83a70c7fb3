/*
 * nonoctl's unified diff (client/nonoctl/unidiff.c). The hunks are checked
 * by applying them with a strict applier written here (every context and
 * removed line must match, every header count must add up) and comparing
 * with the target; small cases are also checked for minimality against an
 * O(nm) LCS. Plus git's header forms, quoting, binary and size limits.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unidiff.h"
#include "../check-run.h"

/* ---- helpers ---- */

static char *hunks(const char *a, const char *b, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	*rc = unidiff_hunks(f, a, strlen(a), b, strlen(b), UNIDIFF_CONTEXT);
	fclose(f);
	return buf;
}

/* The patch for a -> b; want is unidiff_file's answer (1: content left out). */
static char *file_patch_rc(const char *path, const struct unidiff_side *a,
			   const struct unidiff_side *b, int want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(unidiff_file(f, path, a, b), want);
	fclose(f);
	return buf;
}

static char *file_patch(const char *path, const struct unidiff_side *a,
			const struct unidiff_side *b)
{
	return file_patch_rc(path, a, b, 0);
}

/* One line of src starting at *pos (without its '\n'); NULL at the end. */
static const char *next_line(const char *src, size_t *pos, size_t *len)
{
	const char *p = src + *pos, *nl;

	if (*p == '\0')
		return NULL;
	nl = strchr(p, '\n');
	*len = nl ? (size_t)(nl - p) : strlen(p);
	*pos += *len + (nl ? 1 : 0);
	return p;
}

/* Lines of text (each with its '\n' when it has one). */
struct lines {
	const char **p;
	size_t *len;
	size_t n;
};

static void to_lines(const char *text, struct lines *l)
{
	size_t n = 0, cap = strlen(text) + 1;

	l->p = calloc(cap, sizeof(*l->p));
	l->len = calloc(cap, sizeof(*l->len));
	for (const char *s = text; *s;) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) + 1 : strlen(s);
		l->p[n] = s;
		l->len[n++] = len;
		s += len;
	}
	l->n = n;
}

/* "start[,count]" after skip bytes of *q; count defaults to 1. */
static bool parse_range(const char **q, size_t skip, long *start, long *count)
{
	char *end;

	*start = strtol(*q + skip, &end, 10);
	*count = 1;
	if (end == *q + skip)
		return false;
	if (*end == ',') {
		const char *c = end + 1;
		*count = strtol(c, &end, 10);
		if (end == c)
			return false;
	}
	*q = end;
	return true;
}

/*
 * Apply hunks to a strictly; returns the result (caller frees) or NULL
 * when the patch does not fit a exactly.
 */
static char *apply(const char *a, const char *patch)
{
	struct lines al;
	char *out = NULL;
	size_t olen = 0, pos = 0, len, ai = 0;
	FILE *o = open_memstream(&out, &olen);
	const char *ln;
	bool ok = true;

	to_lines(a, &al);
	ln = next_line(patch, &pos, &len);
	while (ok && ln != NULL) {
		long as, ac, bs, bc, seen_a = 0, seen_b = 0;
		const char *q = ln;

		if (strncmp(q, "@@ -", 4) != 0 || !parse_range(&q, 4, &as, &ac) ||
		    strncmp(q, " +", 2) != 0 || !parse_range(&q, 2, &bs, &bc) ||
		    strncmp(q, " @@", 3) != 0) {
			ok = false;
			break;
		}
		(void)bs;
		/* Copy unchanged lines before the hunk. */
		size_t start = ac == 0 ? (size_t)as : (size_t)as - 1;
		if (start < ai) {
			ok = false;
			break;
		}
		while (ai < start && ai < al.n) {
			fwrite(al.p[ai], 1, al.len[ai], o);
			ai++;
		}
		while ((ln = next_line(patch, &pos, &len)) != NULL && ln[0] != '@') {
			size_t peek = pos, plen;
			const char *nx = next_line(patch, &peek, &plen);
			bool nonl = nx != NULL && nx[0] == '\\';
			size_t want = len - 1 + (nonl ? 0 : 1);

			if (ln[0] == '\\')
				continue;
			if (ln[0] == ' ' || ln[0] == '-') {
				if (ai >= al.n || al.len[ai] != want || memcmp(al.p[ai], ln + 1, len - 1) != 0 ||
				    (!nonl && al.p[ai][len - 1] != '\n')) {
					ok = false;
					break;
				}
				ai++;
				seen_a++;
			}
			if (ln[0] == ' ' || ln[0] == '+') {
				fwrite(ln + 1, 1, len - 1, o);
				if (!nonl)
					fputc('\n', o);
				seen_b++;
			}
			if (ln[0] != ' ' && ln[0] != '-' && ln[0] != '+') {
				ok = false;
				break;
			}
		}
		if (seen_a != ac || seen_b != bc)
			ok = false;
	}
	while (ok && ai < al.n) {
		fwrite(al.p[ai], 1, al.len[ai], o);
		ai++;
	}
	fclose(o);
	free(al.p);
	free(al.len);
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

static size_t count_changes(const char *patch)
{
	size_t pos = 0, len, n = 0;
	const char *ln;

	while ((ln = next_line(patch, &pos, &len)) != NULL)
		if (ln[0] == '-' || ln[0] == '+')
			n++;
	return n;
}

static size_t lcs(const char *a, const char *b)
{
	struct lines x, y;
	size_t *dp, r;

	to_lines(a, &x);
	to_lines(b, &y);
	dp = calloc((x.n + 1) * (y.n + 1), sizeof(*dp));
	for (size_t i = 1; i <= x.n; i++)
		for (size_t j = 1; j <= y.n; j++) {
			size_t *c = &dp[i * (y.n + 1) + j];
			if (x.len[i - 1] == y.len[j - 1] && memcmp(x.p[i - 1], y.p[j - 1], x.len[i - 1]) == 0)
				*c = dp[(i - 1) * (y.n + 1) + j - 1] + 1;
			else
				*c = dp[(i - 1) * (y.n + 1) + j] > dp[i * (y.n + 1) + j - 1] ?
				     dp[(i - 1) * (y.n + 1) + j] : dp[i * (y.n + 1) + j - 1];
		}
	r = dp[x.n * (y.n + 1) + y.n];
	free(dp);
	free(x.p);
	free(x.len);
	free(y.p);
	free(y.len);
	return r;
}

static size_t nlines(const char *s)
{
	struct lines l;
	size_t n;

	to_lines(s, &l);
	n = l.n;
	free(l.p);
	free(l.len);
	return n;
}

/* Random text over a few distinct lines (so there is much to match). */
static char *random_text(unsigned *seed, size_t maxlines, int alphabet)
{
	size_t n = (size_t)rand_r(seed) % (maxlines + 1), len = 0;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, &len);

	for (size_t i = 0; i < n; i++)
		fprintf(f, "line %d\n", rand_r(seed) % alphabet);
	if (n > 0 && rand_r(seed) % 4 == 0)
		fputs("tail without newline", f);
	fclose(f);
	return buf;
}

static void check_roundtrip(const char *a, const char *b, bool minimal)
{
	int rc;
	char *p = hunks(a, b, &rc), *got;

	ck_assert_int_eq(rc, 0);
	got = apply(a, p);
	ck_assert_msg(got != NULL, "patch does not apply:\n--- a\n%s\n--- b\n%s\n--- patch\n%s", a, b, p);
	ck_assert_msg(strcmp(got, b) == 0, "patch gives the wrong text:\n%s\n--- patch\n%s", got, p);
	if (minimal)
		ck_assert_uint_eq(count_changes(p), nlines(a) + nlines(b) - 2 * lcs(a, b));
	free(got);
	free(p);
}

/* ---- tests ---- */

START_TEST(simple_hunk_is_exact)
{
	int rc;
	char *p = hunks("a\nb\nc\nd\ne\nf\ng\nh\n", "a\nb\nc\nD\ne\nf\ng\nh\n", &rc);

	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(p, "@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n");
	free(p);
}
END_TEST

START_TEST(identical_gives_nothing)
{
	int rc;
	char *p = hunks("same\ntext\n", "same\ntext\n", &rc);

	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(p, "");
	free(p);
}
END_TEST

START_TEST(empty_sides)
{
	int rc;
	char *p = hunks("", "x\ny\n", &rc);

	ck_assert_str_eq(p, "@@ -0,0 +1,2 @@\n+x\n+y\n");
	free(p);
	p = hunks("only\n", "", &rc);
	ck_assert_str_eq(p, "@@ -1 +0,0 @@\n-only\n");
	free(p);
}
END_TEST

START_TEST(no_newline_at_eof)
{
	int rc;
	char *p = hunks("a\nb", "a\nb\n", &rc);

	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(p, "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n");
	free(p);
	check_roundtrip("x\ny", "x\nz", true);
	check_roundtrip("one", "", true);
}
END_TEST

START_TEST(far_apart_changes_make_two_hunks)
{
	int rc;
	char *p = hunks("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n",
			"X\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\nY\n", &rc);

	ck_assert_str_eq(p, "@@ -1,4 +1,4 @@\n-1\n+X\n 2\n 3\n 4\n"
			    "@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+Y\n");
	free(p);
	/* Six unchanged lines between changes: one hunk. */
	p = hunks("1\n2\n3\n4\n5\n6\n7\n8\n", "X\n2\n3\n4\n5\n6\n7\nY\n", &rc);
	ck_assert_str_eq(p, "@@ -1,8 +1,8 @@\n-1\n+X\n 2\n 3\n 4\n 5\n 6\n 7\n-8\n+Y\n");
	free(p);
}
END_TEST

START_TEST(random_roundtrips_are_minimal)
{
	unsigned seed = 12345;

	for (int i = 0; i < 3000; i++) {
		char *a = random_text(&seed, 60, 1 + i % 8), *b;
		if (i % 3 == 0) {
			/* b = a with a few edits: the common case. */
			b = strdup(a);
			size_t n = strlen(b);
			for (int k = 0; k < 3 && n > 0; k++)
				b[rand_r(&seed) % n] = 'Z';
		} else {
			b = random_text(&seed, 60, 1 + i % 8);
		}
		check_roundtrip(a, b, true);
		free(a);
		free(b);
	}
}
END_TEST

START_TEST(expensive_diff_stays_correct)
{
	/* Two unrelated 40,000-line texts: past the cost limit, still applies. */
	size_t n = 40000, la = 0, lb = 0;
	char *a = NULL, *b = NULL;
	FILE *fa = open_memstream(&a, &la), *fb = open_memstream(&b, &lb);

	for (size_t i = 0; i < n; i++) {
		fprintf(fa, "a%zu\n", i * 7 % 1000);
		fprintf(fb, "a%zu\n", i * 13 % 997);
	}
	fclose(fa);
	fclose(fb);
	check_roundtrip(a, b, false);
	free(a);
	free(b);
}
END_TEST

START_TEST(too_many_lines)
{
	size_t n = UNIDIFF_MAX_LINES + 1;
	char *a = malloc(2 * n + 1);
	struct unidiff_side sa = { .present = true, .mode = UNIDIFF_MODE_FILE, .data = a },
			    sb = { .present = true, .mode = UNIDIFF_MODE_FILE, .data = "x\n", .len = 2 };
	char *buf = NULL, *p;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (size_t i = 0; i < n; i++)
		memcpy(a + 2 * i, "y\n", 2);
	a[2 * n] = '\0';
	sa.len = 2 * n;
	ck_assert_int_eq(unidiff_hunks(f, a, 2 * n, "x\n", 2, 3), -E2BIG);
	fclose(f);
	free(buf);
	p = file_patch_rc("big.txt", &sa, &sb, 1);
	ck_assert_str_eq(p, "Files a/big.txt and b/big.txt differ (file too large to diff)\n");
	free(p);
	free(a);
}
END_TEST

START_TEST(too_large_flag)
{
	struct unidiff_side sa = { .present = true, .mode = UNIDIFF_MODE_FILE, .data = "abc",
				   .len = 3, .too_large = true },
			    none = { .present = false };
	char *p = file_patch_rc("huge", &sa, &none, 1);

	ck_assert_str_eq(p, "Files a/huge and /dev/null differ (file too large to diff)\n");
	free(p);
}
END_TEST

START_TEST(binary_files)
{
	static const char bin[] = { 'P', 'K', 0, 1, 2 };
	struct unidiff_side sa = { .present = true, .mode = UNIDIFF_MODE_FILE, .data = bin,
				   .len = sizeof(bin) },
			    sb = { .present = true, .mode = UNIDIFF_MODE_FILE, .data = "text\n", .len = 5 },
			    none = { .present = false };
	char *p;

	ck_assert(unidiff_is_binary(bin, sizeof(bin)));
	ck_assert(!unidiff_is_binary("text\n", 5));
	p = file_patch_rc("x.bin", &sa, &sb, 1);
	ck_assert_str_eq(p, "diff --git a/x.bin b/x.bin\nindex 1cbab28..8e27be7 100644\n"
			    "Binary files a/x.bin and b/x.bin differ\n");
	free(p);
	p = file_patch_rc("x.bin", &none, &sa, 1);
	ck_assert_str_eq(p, "diff --git a/x.bin b/x.bin\nnew file mode 100644\n"
			    "index 0000000..1cbab28\nBinary files /dev/null and b/x.bin differ\n");
	free(p);
	/* A NUL past the probe window does not count, as in git. */
	char *late = calloc(1, UNIDIFF_BINARY_PROBE + 10);
	memset(late, 'a', UNIDIFF_BINARY_PROBE + 9);
	late[UNIDIFF_BINARY_PROBE + 5] = '\0';
	ck_assert(!unidiff_is_binary(late, UNIDIFF_BINARY_PROBE + 9));
	free(late);
}
END_TEST

START_TEST(headers_new_deleted_mode)
{
	struct unidiff_side f1 = { .present = true, .mode = UNIDIFF_MODE_FILE, .data = "hi\n", .len = 3 },
			    x1 = { .present = true, .mode = UNIDIFF_MODE_EXEC, .data = "hi\n", .len = 3 },
			    e = { .present = true, .mode = UNIDIFF_MODE_FILE },
			    none = { .present = false };
	char *p;

	p = file_patch("d/new.txt", &none, &f1);
	ck_assert_str_eq(p, "diff --git a/d/new.txt b/d/new.txt\nnew file mode 100644\n"
			    "index 0000000..45b983b\n--- /dev/null\n+++ b/d/new.txt\n@@ -0,0 +1 @@\n+hi\n");
	free(p);
	p = file_patch("gone", &f1, &none);
	ck_assert_str_eq(p, "diff --git a/gone b/gone\ndeleted file mode 100644\n"
			    "index 45b983b..0000000\n--- a/gone\n+++ /dev/null\n@@ -1 +0,0 @@\n-hi\n");
	free(p);
	p = file_patch("run.sh", &f1, &x1);
	ck_assert_str_eq(p, "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n");
	free(p);
	p = file_patch("empty", &none, &e);
	ck_assert_str_eq(p, "diff --git a/empty b/empty\nnew file mode 100644\n"
			    "index 0000000..e69de29\n");
	free(p);
	p = file_patch("same", &f1, &f1);
	ck_assert_str_eq(p, "");
	free(p);
}
END_TEST

START_TEST(symlinks_and_type_change)
{
	struct unidiff_side l1 = { .present = true, .mode = UNIDIFF_MODE_LINK, .data = "target",
				   .len = 6 },
			    l2 = { .present = true, .mode = UNIDIFF_MODE_LINK, .data = "other", .len = 5 },
			    f = { .present = true, .mode = UNIDIFF_MODE_FILE, .data = "x\n", .len = 2 };
	char *p;

	p = file_patch("ln", &l1, &l2);
	ck_assert_str_eq(p, "diff --git a/ln b/ln\nindex 1de5659..27fa349 120000\n--- a/ln\n+++ b/ln\n@@ -1 +1 @@\n"
			    "-target\n\\ No newline at end of file\n"
			    "+other\n\\ No newline at end of file\n");
	free(p);
	p = file_patch("t", &f, &l1);
	ck_assert_str_eq(p, "diff --git a/t b/t\ndeleted file mode 100644\nindex 587be6b..0000000\n"
			    "--- a/t\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
			    "diff --git a/t b/t\nnew file mode 120000\nindex 0000000..1de5659\n"
			    "--- /dev/null\n+++ b/t\n"
			    "@@ -0,0 +1 @@\n+target\n\\ No newline at end of file\n");
	free(p);
	ck_assert_uint_eq(unidiff_git_mode(0120777), UNIDIFF_MODE_LINK);
	ck_assert_uint_eq(unidiff_git_mode(0100700), UNIDIFF_MODE_EXEC);
	ck_assert_uint_eq(unidiff_git_mode(0100604), UNIDIFF_MODE_FILE);
}
END_TEST

START_TEST(names_are_quoted_like_git)
{
	struct unidiff_side none = { .present = false },
			    f = { .present = true, .mode = UNIDIFF_MODE_FILE, .data = "x\n", .len = 2 };
	char *p;

	p = file_patch("with space.txt", &none, &f);
	ck_assert_str_eq(p, "diff --git a/with space.txt b/with space.txt\nnew file mode 100644\n"
			    "index 0000000..587be6b\n--- /dev/null\n+++ b/with space.txt\t\n@@ -0,0 +1 @@\n+x\n");
	free(p);
	p = file_patch("t\tab\"q\\\xc3\xa9\n", &none, &f);
	ck_assert_str_eq(p, "diff --git \"a/t\\tab\\\"q\\\\\\303\\251\\n\" "
			    "\"b/t\\tab\\\"q\\\\\\303\\251\\n\"\nnew file mode 100644\n"
			    "index 0000000..587be6b\n--- /dev/null\n+++ \"b/t\\tab\\\"q\\\\\\303\\251\\n\"\n@@ -0,0 +1 @@\n+x\n");
	free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("unidiff");
	TCase *tc = tcase_create("unidiff");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, simple_hunk_is_exact);
	tcase_add_test(tc, identical_gives_nothing);
	tcase_add_test(tc, empty_sides);
	tcase_add_test(tc, no_newline_at_eof);
	tcase_add_test(tc, far_apart_changes_make_two_hunks);
	tcase_add_test(tc, random_roundtrips_are_minimal);
	tcase_add_test(tc, expensive_diff_stays_correct);
	tcase_add_test(tc, too_many_lines);
	tcase_add_test(tc, too_large_flag);
	tcase_add_test(tc, binary_files);
	tcase_add_test(tc, headers_new_deleted_mode);
	tcase_add_test(tc, symlinks_and_type_change);
	tcase_add_test(tc, names_are_quoted_like_git);
	suite_add_tcase(s, tc);
	return check_run(s);
}
