/*
 * The floor under any snapshot that looks at every file: walk DIR with
 * getdents64 and fstatat every entry on N threads (a shared stack of
 * directories, as daemon/snap/walk.c does), and nothing else: no hashing,
 * no stat cache, no index. Prints entries and milliseconds (median of R
 * runs). bench.sh runs it on the 30,000-file tree beside the 10-file
 * incremental snapshot, whose target (<= 50 ms) is compared with it.
 *
 *   statwalk DIR [THREADS=2] [RUNS=7]
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct walk {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int *dirs;     /* open directory fds waiting to be read */
	size_t n, cap;
	int busy;      /* threads reading a directory (may push more) */
	long entries;
};

static void push(struct walk *w, int fd)
{
	pthread_mutex_lock(&w->mu);
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 1024;
		if ((w->dirs = realloc(w->dirs, w->cap * sizeof(int))) == NULL)
			abort();
	}
	w->dirs[w->n++] = fd;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* One directory: stat every entry, push the subdirectories. */
static long scan(struct walk *w, int fd, char *buf, size_t size)
{
	long got, n = 0;

	while ((got = getdents64(fd, buf, size)) > 0) {
		for (long off = 0; off < got;) {
			struct dirent64 *e = (struct dirent64 *)(buf + off);
			struct stat st;

			off += e->d_reclen;
			if (e->d_name[0] == '.' &&
			    (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
				continue;
			if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			n++;
			if (S_ISDIR(st.st_mode)) {
				int c = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (c >= 0)
					push(w, c);
			}
		}
	}
	close(fd);
	return n;
}

static void *worker(void *arg)
{
	struct walk *w = arg;
	size_t size = 65536;
	char *buf = malloc(size);
	long n = 0;

	if (buf == NULL)
		abort();
	pthread_mutex_lock(&w->mu);
	for (;;) {
		int fd;

		while (w->n == 0 && w->busy > 0)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->n == 0)
			break;
		fd = w->dirs[--w->n];
		w->busy++;
		pthread_mutex_unlock(&w->mu);
		n += scan(w, fd, buf, size);
		pthread_mutex_lock(&w->mu);
		w->busy--;
		if (w->n == 0 && w->busy == 0)
			pthread_cond_broadcast(&w->cv);
	}
	w->entries += n;
	pthread_mutex_unlock(&w->mu);
	free(buf);
	return NULL;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int nt = argc > 2 ? atoi(argv[2]) : 2, runs = argc > 3 ? atoi(argv[3]) : 7;
	double ms[64];
	long entries = 0;

	if (argc < 2 || nt < 1 || nt > 64 || runs < 1 || runs > 64) {
		fprintf(stderr, "usage: statwalk DIR [THREADS] [RUNS]\n");
		return 2;
	}
	for (int r = 0; r < runs; r++) {
		struct walk w = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
		pthread_t th[64];
		double t0 = now_ms();
		int fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0) {
			perror(argv[1]);
			return 1;
		}
		push(&w, fd);
		for (int i = 0; i < nt; i++)
			pthread_create(&th[i], NULL, worker, &w);
		for (int i = 0; i < nt; i++)
			pthread_join(th[i], NULL);
		ms[r] = now_ms() - t0;
		entries = w.entries;
		free(w.dirs);
	}
	qsort(ms, (size_t)runs, sizeof(ms[0]), cmp);
	printf("entries=%ld threads=%d median_ms=%.1f min_ms=%.1f\n", entries, nt, ms[runs / 2], ms[0]);
	return 0;
}
