/*
 * snapbench: drive the snapshot store library from the command line for the
 * benchmark (bench.sh). Prints the operation's own wall time on stderr as
 * "op_ms=<n>" and a short result on stdout.
 *
 *   snapbench STORE create WORKSPACE [LABEL]   -> prints the snapshot id
 *   snapbench STORE restore ID
 *   snapbench STORE verify | gc KEEP_LAST | list
 *
 * SNAPBENCH_MAX_ENTRIES / SNAPBENCH_MAX_META set create's limits; the
 * resident set after the operation is printed as "rss_after_kb=<n>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "snap.h"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static long rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f != NULL) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv)
{
	struct snap_params p = { .keep_last = -1, .keep_within = -1 };
	struct snap_result r;
	struct snap_store *s;
	enum snap_op op;
	double t0;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: snapbench STORE create WS [LABEL] | restore ID | verify | gc N | list\n");
		return 2;
	}
	log_init("snapbench", getenv("SNAPBENCH_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
	p.owner = getuid();
	p.group = getgid();
	if (strcmp(argv[2], "create") == 0 && argc >= 4) {
		op = SNAP_OP_CREATE;
		p.workspace = argv[3];
		p.label = argc > 4 ? argv[4] : "";
	} else if (strcmp(argv[2], "restore") == 0 && argc >= 4) {
		op = SNAP_OP_RESTORE;
		p.snapshot = argv[3];
	} else if (strcmp(argv[2], "verify") == 0) {
		op = SNAP_OP_VERIFY;
	} else if (strcmp(argv[2], "gc") == 0 && argc >= 4) {
		op = SNAP_OP_GC;
		p.keep_last = atoi(argv[3]);
	} else if (strcmp(argv[2], "list") == 0) {
		op = SNAP_OP_LIST;
	} else {
		fprintf(stderr, "snapbench: bad command\n");
		return 2;
	}
	if (getenv("SNAPBENCH_MAX_ENTRIES"))
		p.max_entries = strtoull(getenv("SNAPBENCH_MAX_ENTRIES"), NULL, 10);
	if (getenv("SNAPBENCH_MAX_META"))
		p.max_meta_bytes = strtoull(getenv("SNAPBENCH_MAX_META"), NULL, 10);
	if (snap_store_new(argv[1], NULL, &s) < 0)
		return 1;
	t0 = now_ms();
	rc = snap_run(s, op, &p, &r);
	fprintf(stderr, "op_ms=%.1f\n", now_ms() - t0);
	fprintf(stderr, "rss_after_kb=%ld\n", rss_kb());
	if (rc < 0) {
		fprintf(stderr, "snapbench: %s\n", r.detail);
	} else if (op == SNAP_OP_CREATE) {
		printf("%s\n", r.snaps[0].id);
		fprintf(stderr, "root=%s files=%llu read=%llu new_objects=%llu new_bytes=%llu\n",
			r.snaps[0].root,
			(unsigned long long)r.snaps[0].stats.files,
			(unsigned long long)r.snaps[0].stats.read_files,
			(unsigned long long)r.snaps[0].stats.new_objects,
			(unsigned long long)r.snaps[0].stats.new_bytes);
	} else if (op == SNAP_OP_RESTORE) {
		printf("changed=%zu\n", r.nchanges);
	} else if (op == SNAP_OP_VERIFY) {
		printf("snapshots=%llu objects=%llu missing=%llu corrupt=%llu\n",
		       (unsigned long long)r.verify.snapshots, (unsigned long long)r.verify.objects,
		       (unsigned long long)r.verify.missing, (unsigned long long)r.verify.corrupt);
	} else if (op == SNAP_OP_LIST) {
		for (size_t i = 0; i < r.nsnaps; i++)
			printf("%s %s\n", r.snaps[i].id, r.snaps[i].label);
	}
	snap_result_free(&r);
	snap_store_free(s);
	return rc < 0 ? 1 : 0;
}
