/*
 * Unified diffs (see unidiff.h): lines are interned to integers, Myers'
 * linear-space algorithm marks the lines each side does not share, and the
 * marks become hunks. Library-style code: no logging, errors are returned.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "unidiff.h"

/* ---- lines ---- */

struct line {
	const char *p;
	size_t len;          /* with the '\n', when there is one */
};

struct side {
	struct line *lines;
	uint32_t *id;        /* interned: equal lines have equal ids */
	uint8_t *changed;    /* deleted (a) / inserted (b) */
	long n;
};

/* Split data into lines; -E2BIG past UNIDIFF_MAX_LINES. */
static int split_lines(const char *data, size_t len, struct side *s)
{
	size_t n = 0, cap = 0;

	memset(s, 0, sizeof(*s));
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(data + off, '\n', len - off);
		size_t l = nl ? (size_t)(nl - (data + off)) + 1 : len - off;
		if (n == UNIDIFF_MAX_LINES)
			return -E2BIG;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct line *v = realloc(s->lines, nc * sizeof(*v));
			if (v == NULL)
				return -ENOMEM;
			s->lines = v;
			cap = nc;
		}
		s->lines[n].p = data + off;
		s->lines[n++].len = l;
		off += l;
	}
	s->n = (long)n;
	s->id = calloc(n + 1, sizeof(*s->id));
	s->changed = calloc(n + 1, 1);
	return s->id && s->changed ? 0 : -ENOMEM;
}

static void side_free(struct side *s)
{
	free(s->lines);
	free(s->id);
	free(s->changed);
}

static uint64_t line_hash(const struct line *l)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (size_t i = 0; i < l->len; i++)
		h = (h ^ (unsigned char)l->p[i]) * 1099511628211ull;
	return h;
}

/* Give equal lines of both sides equal ids (open addressing on content). */
static int intern(struct side *a, struct side *b)
{
	size_t cap = 16, total = (size_t)a->n + (size_t)b->n;
	const struct line **slot;
	uint32_t *slot_id, next = 0;
	struct side *sides[2] = { a, b };

	while (cap < 2 * total + 1)
		cap *= 2;
	slot = calloc(cap, sizeof(*slot));
	slot_id = calloc(cap, sizeof(*slot_id));
	if (slot == NULL || slot_id == NULL) {
		free(slot);
		free(slot_id);
		return -ENOMEM;
	}
	for (int k = 0; k < 2; k++) {
		for (long i = 0; i < sides[k]->n; i++) {
			const struct line *l = &sides[k]->lines[i];
			size_t h = (size_t)line_hash(l) & (cap - 1);
			while (slot[h] != NULL &&
			       (slot[h]->len != l->len || memcmp(slot[h]->p, l->p, l->len) != 0))
				h = (h + 1) & (cap - 1);
			if (slot[h] == NULL) {
				slot[h] = l;
				slot_id[h] = next++;
			}
			sides[k]->id[i] = slot_id[h];
		}
	}
	free(slot);
	free(slot_id);
	return 0;
}

/* ---- Myers ---- */

struct box {
	long x0, x1, y0, y1;
};

struct myers {
	const uint32_t *a, *b;
	uint8_t *da, *ib;
	long *v1, *v2;       /* 2 * (UNIDIFF_COST_MAX + 2) + 1 entries each */
	struct box *stack;
	size_t nstack, capstack;
};

static int push(struct myers *m, long x0, long x1, long y0, long y1)
{
	if (m->nstack == m->capstack) {
		size_t nc = m->capstack ? m->capstack * 2 : 64;
		struct box *s = realloc(m->stack, nc * sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		m->stack = s;
		m->capstack = nc;
	}
	m->stack[m->nstack++] = (struct box){ x0, x1, y0, y1 };
	return 0;
}

/*
 * The middle snake of box (both sides non-empty, no common first or last
 * line), as in Myers' paper: forward and reverse searches meet on an
 * optimal path; *x,*y is a point on it, relative to the box. Past
 * UNIDIFF_COST_MAX edits, the furthest forward point instead. Returns
 * false when there is no useful split (then the box is replaced whole).
 */
static bool bisect(struct myers *m, const struct box *bx, long *sx, long *sy)
{
	const uint32_t *a = m->a + bx->x0, *b = m->b + bx->y0;
	long n = bx->x1 - bx->x0, mm = bx->y1 - bx->y0, delta = n - mm;
	long maxd = (n + mm + 1) / 2, dlim = maxd < UNIDIFF_COST_MAX ? maxd : UNIDIFF_COST_MAX;
	long off = dlim + 1, vlen = 2 * dlim + 3;
	long k1start = 0, k1end = 0, k2start = 0, k2end = 0, d;
	bool front = (delta & 1) != 0;
	long *v1 = m->v1, *v2 = m->v2;

	for (long i = 0; i < vlen; i++)
		v1[i] = v2[i] = -1;
	v1[off + 1] = v2[off + 1] = 0;
	for (d = 0; d < dlim; d++) {
		for (long k1 = -d + k1start; k1 <= d - k1end; k1 += 2) {
			long ko = off + k1, x, y;
			x = (k1 == -d || (k1 != d && v1[ko - 1] < v1[ko + 1])) ? v1[ko + 1]
			    : v1[ko - 1] + 1;
			y = x - k1;
			while (x < n && y < mm && a[x] == b[y])
				x++, y++;
			v1[ko] = x;
			if (x > n) {
				k1end += 2;
			} else if (y > mm) {
				k1start += 2;
			} else if (front) {
				long k2o = off + delta - k1;
				if (k2o >= 0 && k2o < vlen && v2[k2o] != -1 && x >= n - v2[k2o]) {
					*sx = x;
					*sy = y;
					return true;
				}
			}
		}
		for (long k2 = -d + k2start; k2 <= d - k2end; k2 += 2) {
			long ko = off + k2, x, y;
			x = (k2 == -d || (k2 != d && v2[ko - 1] < v2[ko + 1])) ? v2[ko + 1]
			    : v2[ko - 1] + 1;
			y = x - k2;
			while (x < n && y < mm && a[n - x - 1] == b[mm - y - 1])
				x++, y++;
			v2[ko] = x;
			if (x > n) {
				k2end += 2;
			} else if (y > mm) {
				k2start += 2;
			} else if (!front) {
				long k1o = off + delta - k2;
				if (k1o >= 0 && k1o < vlen && v1[k1o] != -1 && v1[k1o] >= n - x) {
					*sx = v1[k1o];
					*sy = v1[k1o] - (delta - k2);
					return true;
				}
			}
		}
	}
	if (dlim == maxd)
		return false; /* not reached: the searches always meet by maxd */
	/* Too expensive: split at the furthest point the forward search reached. */
	long best = 0;
	for (long k1 = -(d - 1); k1 <= d - 1; k1 += 2) {
		long x = v1[off + k1], y = x - k1;
		if (x >= 0 && x <= n && y >= 0 && y <= mm && x + y > best &&
		    !(x == n && y == mm)) {
			best = x + y;
			*sx = x;
			*sy = y;
		}
	}
	return best > 0;
}

/* Mark the lines of a and b that are not in a longest common subsequence. */
static int myers_run(struct myers *m, long na, long nb)
{
	int rc = push(m, 0, na, 0, nb);

	while (rc == 0 && m->nstack > 0) {
		struct box bx = m->stack[--m->nstack];
		long sx, sy;

		while (bx.x0 < bx.x1 && bx.y0 < bx.y1 && m->a[bx.x0] == m->b[bx.y0])
			bx.x0++, bx.y0++;
		while (bx.x0 < bx.x1 && bx.y0 < bx.y1 && m->a[bx.x1 - 1] == m->b[bx.y1 - 1])
			bx.x1--, bx.y1--;
		if (bx.x0 == bx.x1 || bx.y0 == bx.y1 || !bisect(m, &bx, &sx, &sy) ||
		    (sx == 0 && sy == 0) || (sx == bx.x1 - bx.x0 && sy == bx.y1 - bx.y0)) {
			memset(m->da + bx.x0, 1, (size_t)(bx.x1 - bx.x0));
			memset(m->ib + bx.y0, 1, (size_t)(bx.y1 - bx.y0));
			continue;
		}
		rc = push(m, bx.x0, bx.x0 + sx, bx.y0, bx.y0 + sy);
		if (rc == 0)
			rc = push(m, bx.x0 + sx, bx.x1, bx.y0 + sy, bx.y1);
	}
	return rc;
}

/* ---- hunks ---- */

static void put_range(FILE *out, long start, long count)
{
	if (count == 0)
		fprintf(out, "%ld,0", start); /* the line before the empty range */
	else if (count == 1)
		fprintf(out, "%ld", start + 1);
	else
		fprintf(out, "%ld,%ld", start + 1, count);
}

static void put_line(FILE *out, char tag, const struct line *l)
{
	fputc(tag, out);
	fwrite(l->p, 1, l->len, out);
	if (l->len == 0 || l->p[l->len - 1] != '\n')
		fputs("\n\\ No newline at end of file\n", out);
}

/* Next change at or after (*i, *j): its extent in a and b. false when none. */
static bool next_change(const struct side *a, const struct side *b, long *i, long *j,
			long *ie, long *je)
{
	while (*i < a->n && *j < b->n && !a->changed[*i] && !b->changed[*j])
		(*i)++, (*j)++;
	if (*i >= a->n && *j >= b->n)
		return false;
	*ie = *i;
	*je = *j;
	while (*ie < a->n && a->changed[*ie])
		(*ie)++;
	while (*je < b->n && b->changed[*je])
		(*je)++;
	return true;
}

static void write_hunks(FILE *out, const struct side *a, const struct side *b, long ctx)
{
	long i = 0, j = 0, ie, je;

	if (!next_change(a, b, &i, &j, &ie, &je))
		return;
	while (i < a->n || j < b->n) {
		/* One hunk: changes closer than 2 * ctx unchanged lines merge. */
		long lead = i < ctx ? i : ctx, ha = i - lead, hb = j - lead, ea = ie, eb = je;
		long ni = ie, nj = je, nie = 0, nje = 0;
		bool more;

		for (;;) {
			more = next_change(a, b, &ni, &nj, &nie, &nje);
			if (!more || ni - ea > 2 * ctx)
				break;
			ea = nie;
			eb = nje;
			ni = nie;
			nj = nje;
		}
		long trail = a->n - ea < ctx ? a->n - ea : ctx;
		fputs("@@ -", out);
		put_range(out, ha, ea + trail - ha);
		fputs(" +", out);
		put_range(out, hb, eb + trail - hb);
		fputs(" @@\n", out);
		for (long x = ha, y = hb, xe = ea + trail, ye = eb + trail; x < xe || y < ye;) {
			if (x < xe && a->changed[x]) {
				put_line(out, '-', &a->lines[x++]);
			} else if (y < ye && b->changed[y]) {
				put_line(out, '+', &b->lines[y++]);
			} else if (x < xe && y < ye) {
				put_line(out, ' ', &a->lines[x++]);
				y++;
			} else {
				break; /* not reached: unchanged lines pair up */
			}
		}
		if (!more)
			break;
		i = ni;
		j = nj;
		ie = nie;
		je = nje;
	}
}

int unidiff_hunks(FILE *out, const char *a, size_t alen, const char *b, size_t blen,
		  unsigned context)
{
	struct side sa, sb;
	struct myers m = { 0 };
	int rc;

	rc = split_lines(a, alen, &sa);
	if (rc == 0)
		rc = split_lines(b, blen, &sb);
	else
		memset(&sb, 0, sizeof(sb));
	if (rc == 0)
		rc = intern(&sa, &sb);
	if (rc == 0) {
		m.a = sa.id;
		m.b = sb.id;
		m.da = sa.changed;
		m.ib = sb.changed;
		m.v1 = malloc((2 * UNIDIFF_COST_MAX + 5) * sizeof(long));
		m.v2 = malloc((2 * UNIDIFF_COST_MAX + 5) * sizeof(long));
		rc = m.v1 && m.v2 ? myers_run(&m, sa.n, sb.n) : -ENOMEM;
	}
	if (rc == 0)
		write_hunks(out, &sa, &sb, (long)context);
	free(m.v1);
	free(m.v2);
	free(m.stack);
	side_free(&sa);
	side_free(&sb);
	if (rc == 0 && ferror(out))
		rc = -EIO;
	return rc;
}

/* ---- file headers ---- */

bool unidiff_is_binary(const char *data, size_t len)
{
	return data != NULL &&
	       memchr(data, '\0', len < UNIDIFF_BINARY_PROBE ? len : UNIDIFF_BINARY_PROBE) != NULL;
}

unsigned unidiff_git_mode(unsigned st_mode)
{
	if (S_ISLNK(st_mode))
		return UNIDIFF_MODE_LINK;
	return (st_mode & S_IXUSR) ? UNIDIFF_MODE_EXEC : UNIDIFF_MODE_FILE;
}

static bool needs_quote(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
			return true;
	return false;
}

/* prefix + path as git writes it: plain, or C-quoted as a whole. */
static void put_name(FILE *out, const char *prefix, const char *path)
{
	static const char esc[] = "\a\b\t\n\v\f\r\"\\", rep[] = "abtnvfr\"\\";

	if (!needs_quote(path)) {
		fprintf(out, "%s%s", prefix, path);
		return;
	}
	fprintf(out, "\"%s", prefix);
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		const char *e = strchr(esc, *p);
		if (e != NULL)
			fprintf(out, "\\%c", rep[e - esc]);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(out, "\\%03o", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

/* "--- a/x" / "+++ b/x" (or /dev/null); a tab ends a name with a space. */
static void put_file_line(FILE *out, const char *tag, const char *prefix, const char *path,
			  bool present)
{
	fprintf(out, "%s ", tag);
	if (!present) {
		fputs("/dev/null\n", out);
		return;
	}
	put_name(out, prefix, path);
	fputs(!needs_quote(path) && strchr(path, ' ') ? "\t\n" : "\n", out);
}

static void put_pair(FILE *out, const char *path, bool apresent, bool bpresent,
		     const char *sep)
{
	if (apresent)
		put_name(out, "a/", path);
	else
		fputs("/dev/null", out);
	fputs(sep, out);
	if (bpresent)
		put_name(out, "b/", path);
	else
		fputs("/dev/null", out);
}

/* Over the limits: only a prefix loaded, too many bytes or too many lines. */
static bool side_large(const struct unidiff_side *s)
{
	size_t lines = 0;

	if (!s->present)
		return false;
	if (s->too_large || s->len > UNIDIFF_MAX_BYTES)
		return true;
	for (const char *p = s->data, *end = s->data + s->len; p != NULL && p < end; lines++) {
		p = memchr(p, '\n', (size_t)(end - p));
		if (p != NULL)
			p++;
	}
	return lines > UNIDIFF_MAX_LINES;
}

/* git's abbreviated blob id (7 hex digits) of content; "0000000" when absent. */
static int blob_id(const struct unidiff_side *s, char out[8])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	char hdr[32];
	int hl = snprintf(hdr, sizeof(hdr), "blob %zu", s->len) + 1; /* with its NUL */
	EVP_MD_CTX *c;
	int rc = 0;

	if (!s->present) {
		memcpy(out, "0000000", 8);
		return 0;
	}
	c = EVP_MD_CTX_new();
	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(c, hdr, (size_t)hl) != 1 ||
	    (s->len > 0 && EVP_DigestUpdate(c, s->data, s->len) != 1) ||
	    EVP_DigestFinal_ex(c, md, NULL) != 1)
		rc = -ENOMEM;
	EVP_MD_CTX_free(c);
	for (int i = 0; i < 7 && rc == 0; i++)
		out[i] = hex[(md[i / 2] >> (i % 2 ? 0 : 4)) & 15];
	out[7] = '\0';
	return rc;
}

static bool same_content(const struct unidiff_side *a, const struct unidiff_side *b)
{
	return !a->too_large && !b->too_large && a->len == b->len &&
	       (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* One patch between sides of the same kind (or one side absent). */
static int one_patch(FILE *out, const char *path, const struct unidiff_side *a,
		     const struct unidiff_side *b)
{
	bool binary = (a->present && unidiff_is_binary(a->data, a->len)) ||
		      (b->present && unidiff_is_binary(b->data, b->len));
	bool large = side_large(a) || side_large(b);
	bool equal = a->present && b->present && same_content(a, b);
	char ida[8], idb[8];
	int rc;

	if (a->present && b->present && equal && a->mode == b->mode)
		return 0;
	if (large) {
		fputs("Files ", out);
		put_pair(out, path, a->present, b->present, " and ");
		fputs(" differ (file too large to diff)\n", out);
		return ferror(out) ? -EIO : 1;
	}
	fputs("diff --git ", out);
	put_pair(out, path, true, true, " ");
	fputc('\n', out);
	if (!a->present)
		fprintf(out, "new file mode %06o\n", b->mode);
	else if (!b->present)
		fprintf(out, "deleted file mode %06o\n", a->mode);
	else if (a->mode != b->mode)
		fprintf(out, "old mode %06o\nnew mode %06o\n", a->mode, b->mode);
	if (equal)
		return ferror(out) ? -EIO : 0; /* a mode change only */
	/* As git writes it; GNU patch needs the mode here to patch a symlink. */
	if ((rc = blob_id(a, ida)) < 0 || (rc = blob_id(b, idb)) < 0)
		return rc;
	fprintf(out, "index %s..%s", ida, idb);
	if (a->present && b->present && a->mode == b->mode)
		fprintf(out, " %06o", a->mode);
	fputc('\n', out);
	if ((!a->present || a->len == 0) && (!b->present || b->len == 0))
		return ferror(out) ? -EIO : 0; /* an empty file added or removed */
	if (binary) {
		fputs("Binary files ", out);
		put_pair(out, path, a->present, b->present, " and ");
		fputs(" differ\n", out);
		return ferror(out) ? -EIO : 1;
	}
	put_file_line(out, "---", "a/", path, a->present);
	put_file_line(out, "+++", "b/", path, b->present);
	rc = unidiff_hunks(out, a->present ? a->data : NULL, a->present ? a->len : 0,
			   b->present ? b->data : NULL, b->present ? b->len : 0, UNIDIFF_CONTEXT);
	return rc;
}

int unidiff_file(FILE *out, const char *path, const struct unidiff_side *a,
		 const struct unidiff_side *b)
{
	struct unidiff_side none = { .present = false };
	int rc;

	if (a->present && b->present &&
	    (a->mode == UNIDIFF_MODE_LINK) != (b->mode == UNIDIFF_MODE_LINK)) {
		int r2;
		rc = one_patch(out, path, a, &none);
		if (rc < 0 || (r2 = one_patch(out, path, &none, b)) < 0)
			return rc < 0 ? rc : r2;
		return rc | r2;
	}
	return one_patch(out, path, a, b);
}
