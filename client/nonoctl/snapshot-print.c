/*
 * nonoctl snapshot: how results look on a terminal. Paths come back as
 * UTF-8 with "path_hex" carrying the exact bytes of names that are not;
 * they are printed C-quoted (like git) whenever they hold control
 * characters, quotes, backslashes or invalid UTF-8, so a file name with a
 * newline can never forge an output line. Everything the daemon sent is
 * treated as hostile: numbers are clamped, strings cleaned.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "nonoctl.h"
#include "snapshot-print.h"

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Valid UTF-8 without C1 controls (U+0080..U+009F: some terminals act on them). */
static bool utf8_clean(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = b[i] < 0x80 ? 0 : (b[i] & 0xe0) == 0xc0 ? 1 : (b[i] & 0xf0) == 0xe0 ? 2 :
			   (b[i] & 0xf8) == 0xf0 ? 3 : 4;
		if (k == 4 || (k == 1 && b[i] < 0xc2) || (b[i] == 0xc2 && i + 1 < n && b[i + 1] < 0xa0) ||
		    (k == 3 && b[i] > 0xf4) || i + k >= n)
			return false;
		for (size_t j = 1; j <= k; j++)
			if ((b[i + j] & 0xc0) != 0x80)
				return false;
		i += k + 1;
	}
	return true;
}

/* Print the path member key of o: exact bytes (from key_hex when present),
 * C-quoted when it holds control characters, quotes, backslashes or
 * invalid UTF-8; as is otherwise. */
void snapshot_print_path(struct json_object *o, const char *key)
{
	char hk[32];
	const char *s = util_json_str(o, key), *hex;
	unsigned char *b = NULL;
	size_t n = 0;
	bool raw = false, quote = false, high;

	snprintf(hk, sizeof(hk), "%s_hex", key);
	hex = util_json_str(o, hk);
	if (hex != NULL && strlen(hex) % 2 == 0 && (b = malloc(strlen(hex) / 2 + 1)) != NULL) {
		for (n = 0; hex[2 * n] != '\0'; n++) {
			int hi = hexval(hex[2 * n]), lo = hexval(hex[2 * n + 1]);
			if (hi < 0 || lo < 0)
				break;
			b[n] = (unsigned char)(hi << 4 | lo);
		}
		raw = hex[2 * n] == '\0'; /* else fall back to the UTF-8 form */
	}
	if (!raw) {
		free(b);
		b = (unsigned char *)strdup(s != NULL ? s : "?");
		if (b == NULL)
			return;
		n = strlen((char *)b);
	}
	/* Bytes >= 0x80 are escaped too unless they are clean UTF-8. */
	high = !utf8_clean(b, n);
	for (size_t i = 0; i < n; i++)
		if (b[i] < 0x20 || b[i] == 0x7f || b[i] == '"' || b[i] == '\\' ||
		    (high && b[i] >= 0x80))
			quote = true;
	if (!quote) {
		fwrite(b, 1, n, stdout);
		free(b);
		return;
	}
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = b[i];
		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f || (high && c >= 0x80))
			printf("\\%03o", c);
		else
			putchar(c);
	}
	putchar('"');
	free(b);
}

static void print_time(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[32] = "-";

	if (t > 0 && gmtime_r(&tt, &tm) != NULL &&
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, sizeof(buf), "-");
	printf("%-20s", buf);
}

void snapshot_human_bytes(char *buf, size_t len, int64_t v)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	int u = 0;

	while (d >= 1024 && u < 4) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRId64 " B", v);
	else
		snprintf(buf, len, "%.1f %s", d, unit[u]);
}

const char *snapshot_id(struct json_object *s)
{
	const char *id = util_json_str(s, "id");

	if (id == NULL || id[0] == '\0' || strlen(id) > 64 ||
	    strspn(id, "0123456789abcdef") != strlen(id))
		return "?";
	return id;
}

static int64_t stat_int(struct json_object *snap, const char *key)
{
	struct json_object *st;
	int64_t v = 0;

	if (json_object_object_get_ex(snap, "stats", &st))
		util_json_int(st, key, &v);
	return v;
}

void snapshot_print_row(struct json_object *s)
{
	const char *label = util_json_str(s, "label");
	char size[32];
	int64_t created = 0;

	util_json_int(s, "created", &created);
	snapshot_human_bytes(size, sizeof(size), stat_int(s, "bytes"));
	printf("%-12s  ", snapshot_id(s));
	print_time(created);
	printf("  %8" PRId64 "  %10s  ", stat_int(s, "files"), size);
	snapshot_print_path(s, "workspace");
	if (label != NULL && label[0] != '\0') {
		fputs("  ", stdout);
		snapshot_print_path(s, "label");
	}
	putchar('\n');
}

void snapshot_print_created(struct json_object *s)
{
	char size[32], stored[32];

	snapshot_human_bytes(size, sizeof(size), stat_int(s, "bytes"));
	snapshot_human_bytes(stored, sizeof(stored), stat_int(s, "new_bytes"));
	printf("snapshot %s of ", snapshot_id(s));
	snapshot_print_path(s, "workspace");
	printf(": %" PRId64 " files, %" PRId64 " dirs, %s; read %" PRId64 " files, stored %" PRId64
	       " new objects (%s)\n", stat_int(s, "files"), stat_int(s, "dirs"), size,
	       stat_int(s, "read_files"), stat_int(s, "new_objects"), stored);
	if (stat_int(s, "unreadable") > 0)
		printf("warning: %" PRId64 " unreadable entries recorded as such\n",
		       stat_int(s, "unreadable"));
}

/* git --name-status letters. */
static char kind_letter(const char *k)
{
	if (k == NULL)
		return '?';
	if (strcmp(k, "added") == 0)
		return 'A';
	if (strcmp(k, "removed") == 0)
		return 'D';
	if (strcmp(k, "modified") == 0)
		return 'M';
	if (strcmp(k, "type_changed") == 0)
		return 'T';
	return '?';
}

void snapshot_print_changes(struct json_object *res)
{
	struct json_object *a, *tr;
	int64_t total = 0;
	size_t n = 0;

	if (json_object_object_get_ex(res, "changes", &a) && json_object_is_type(a, json_type_array))
		n = json_object_array_length(a);
	for (size_t i = 0; i < n; i++) {
		struct json_object *c = json_object_array_get_idx(a, i);
		printf("%c\t", kind_letter(util_json_str(c, "kind")));
		snapshot_print_path(c, "path");
		putchar('\n');
	}
	util_json_int(res, "total", &total);
	if (json_object_object_get_ex(res, "truncated", &tr) && json_object_get_boolean(tr))
		out_warnx("%" PRId64 " changes in all; only the first %zu are listed", total, n);
}

void snapshot_print_progress(const char *params)
{
	struct json_object *o = json_tokener_parse(params);
	int64_t fd = 0, ft = 0, bd = 0, bt = 0;
	const char *op = util_json_str(o, "op");
	char done[32], total[32], bar[31];
	double frac = 0;
	int fill;

	util_json_int(o, "files_done", &fd);
	util_json_int(o, "files_total", &ft);
	util_json_int(o, "bytes_done", &bd);
	util_json_int(o, "bytes_total", &bt);
	/* Doubles and clamping: the numbers come from the daemon. */
	if (bt > 0 && bd > 0)
		frac = (double)bd / (double)bt;
	else if (bt <= 0 && ft > 0 && fd > 0)
		frac = (double)fd / (double)ft;
	frac = frac > 1 ? 1 : frac;
	fill = (int)(frac * 30);
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(30 - fill));
	bar[30] = '\0';
	snapshot_human_bytes(done, sizeof(done), bd > 0 ? bd : 0);
	snapshot_human_bytes(total, sizeof(total), bt > 0 ? bt : 0);
	if (op == NULL || strlen(op) > 10 || strspn(op, "abcdefghijklmnopqrstuvwxyz") != strlen(op))
		op = "";
	fprintf(stderr, "\r\033[K%-7s [%s] %3d%%  %" PRId64 "/%" PRId64 " files  %s/%s", op, bar,
		(int)(frac * 100), fd > 0 ? fd : 0, ft > 0 ? ft : 0, done, total);
	fflush(stderr);
	json_object_put(o);
}
