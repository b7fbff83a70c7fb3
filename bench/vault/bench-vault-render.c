/*
 * vault_render throughput on one core: the proxy's hot path (look up the
 * sealed row, AES-256-GCM open into locked memory, format the header).
 * Also vault_set for scale. Uses a real SQLite file (WAL) in a temp dir.
 *
 *   bench-vault-render [seconds-per-case]      (default 2)
 */
#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "vault.h"

#define MISS_NAMES 5000

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* CPU time of this thread: the rate per CPU-second holds even on a busy machine. */
static double cpu_s(void)
{
	return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static void report(const char *label, unsigned long n, double wall, double cpu)
{
	printf("%-34s %10.0f calls/cpu-s  %10.0f calls/s wall  (%.2f us cpu/call, %lu calls)\n",
	       label, (double)n / cpu, (double)n / wall, cpu * 1e6 / (double)n, n);
}

static int rm_one(const char *p, const struct stat *st, int f, struct FTW *w)
{
	(void)st; (void)f; (void)w;
	return remove(p);
}

static void bench_render(struct vault *v, const char *label, const char *tmpl, double secs)
{
	struct secbuf *out = NULL;
	struct vault_err err;
	unsigned long n = 0;
	double t0, c0, t;

	if (secbuf_new(VAULT_RENDER_MAX, &out) < 0)
		exit(1);
	t0 = now_s();
	c0 = cpu_s();
	do {
		for (int i = 0; i < 1000; i++) {
			if (vault_render(v, 1000, tmpl, out, &err) < 0) {
				fprintf(stderr, "render failed: %s\n", err.msg);
				exit(1);
			}
		}
		n += 1000;
		t = now_s() - t0;
	} while (t < secs);
	report(label, n, t, cpu_s() - c0);
	secbuf_free(out);
}

/* Cycle through more names than the cache has slots: (nearly) every call misses. */
static void bench_render_miss(struct vault *v, double secs)
{
	static char tmpls[MISS_NAMES][32];
	struct secbuf *out = NULL;
	struct vault_err err;
	unsigned long n = 0;
	double t0, c0, t;

	for (int i = 0; i < MISS_NAMES; i++)
		snprintf(tmpls[i], sizeof(tmpls[i]), "${secret:m%d}", i);
	if (secbuf_new(VAULT_RENDER_MAX, &out) < 0)
		exit(1);
	t0 = now_s();
	c0 = cpu_s();
	do {
		for (int i = 0; i < 1000; i++, n++) {
			if (vault_render(v, 1000, tmpls[n % MISS_NAMES], out, &err) < 0) {
				fprintf(stderr, "render failed: %s\n", err.msg);
				exit(1);
			}
		}
		t = now_s() - t0;
	} while (t < secs);
	report("render, cache miss (SQLite read)", n, t, cpu_s() - c0);
	secbuf_free(out);
}

static void bench_set(struct vault *v, double secs)
{
	static const char value[] = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
	struct vault_err err;
	unsigned long n = 0;
	double t0 = now_s(), c0 = cpu_s(), t;
	char name[32];

	do {
		snprintf(name, sizeof(name), "set-%lu", n % 1000);
		if (vault_set(v, 1000, name, value, sizeof(value) - 1, NULL, &err) < 0) {
			fprintf(stderr, "set failed: %s\n", err.msg);
			exit(1);
		}
		n++;
		t = now_s() - t0;
	} while (t < secs);
	report("vault_set (commit each)", n, t, cpu_s() - c0);
}

int main(int argc, char **argv)
{
	static const char token[] = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	char dir[] = "/tmp/nono-vault-bench.XXXXXX", path[128];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	cpu_set_t cpus;
	int rc;

	log_init("bench", LOG_LEVEL_WARN);
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus) < 0)
		perror("sched_setaffinity (running unpinned)");
	if (secs <= 0)
		secs = 2.0;
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/nonod.db", dir);
	rc = db_open(path, &db);
	if (rc == 0)
		rc = vault_open(db, dir, &(struct vault_options){ .provider = "key-file" }, &v, &err);
	if (rc == 0)
		rc = vault_set(v, 1000, "openai", token, sizeof(token) - 1, NULL, &err);
	if (rc == 0)
		rc = vault_set(v, 1000, "org", "org-12345", 9, NULL, &err);
	if (rc < 0) {
		fprintf(stderr, "setup failed: %s\n", err.msg);
		goto out;
	}
	/* Fill the table a bit so the lookup is not in a one-row tree. */
	rc = db_exec(db, "BEGIN;");
	for (int i = 0; i < MISS_NAMES && rc == 0; i++) {
		char name[32];
		snprintf(name, sizeof(name), "m%d", i);
		rc = vault_set(v, 1000, name, token, sizeof(token) - 1, NULL, &err);
	}
	if (rc == 0)
		rc = db_exec(db, "COMMIT;");
	printf("vault bench: one core (cpu 0), %.1f s per case, OpenSSL AES-256-GCM, SQLite %s\n",
	       secs, sqlite3_libversion());
	bench_render(v, "render \"Bearer ${secret:openai}\"", "Bearer ${secret:openai}", secs);
	bench_render(v, "render two secrets", "${secret:openai};${secret:org}", secs);
	bench_render(v, "render literal only", "no secret here", secs);
	bench_render_miss(v, secs);
	bench_set(v, secs);
out:
	vault_free(v);
	db_close(db);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return rc < 0 ? 1 : 0;
}
