/*
 * Session start-to-exit latency and throughput: nono sessions (with and
 * without a network namespace) beside plain fork+exec, bwrap and firejail,
 * all in the same run so the ratios hold on a noisy machine.
 *
 *   session-bench SOCKET [ITERATIONS] [SECONDS]
 *
 * Latency: median and p99 of (request sent -> session.exited received) for
 * /bin/true; for the competitors, fork -> waitpid. Throughput: sessions per
 * second with 1 and 2 parallel clients (threads, one connection each).
 */
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *sock_path;
static const char *workspace = "/tmp";

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stats {
	double median, p99, per_s;
};

static struct stats summarize(double *v, int n)
{
	struct stats s;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	s.median = v[n / 2];
	s.p99 = v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
	s.per_s = 0;
	return s;
}

/* ---- competitors: fork + exec + wait ------------------------------------ */

static int run_argv(char *const *argv)
{
	pid_t pid;
	int st;

	if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
		return -1;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	return 0;
}

/* ---- a tiny blocking JSON-RPC client ---------------------------------- */

struct client {
	int fd;
	char buf[65536];
	size_t len;
	char line[65536]; /* per client: the throughput phase runs two at once */
};

static int client_open(struct client *c)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	c->len = 0;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return -1;
	return 0;
}

/* Next line (NUL-terminated, valid until the next call on this client). */
static char *client_line(struct client *c)
{
	char *line = c->line;

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		ssize_t n;

		if (nl != NULL) {
			size_t l = (size_t)(nl - c->buf);

			memcpy(line, c->buf, l);
			line[l] = '\0';
			memmove(c->buf, nl + 1, c->len - l - 1);
			c->len -= l + 1;
			return line;
		}
		if (c->len == sizeof(c->buf))
			return NULL;
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n <= 0)
			return NULL;
		c->len += (size_t)n;
	}
}

static int client_send(struct client *c, const char *msg)
{
	size_t len = strlen(msg), off = 0;

	while (off < len) {
		ssize_t n = write(c->fd, msg + off, len - off);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static const char *net_policy =
	",\"policy\":{\"version\":1,\"filesystem\":{\"read\":[\"$WORKSPACE\"]},"
	"\"network\":{\"allow\":[\"example.com:443\"]}}";

/* One session of /bin/true: create, then wait for session.exited. */
static int nono_once(struct client *c, bool net)
{
	char req[1024];
	char *line;

	snprintf(req, sizeof(req),
		 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"session.create\",\"params\":"
		 "{\"argv\":[\"/bin/true\"],\"cwd\":\"%s\"%s}}\n", workspace, net ? net_policy : "");
	if (client_send(c, req) < 0)
		return -1;
	while ((line = client_line(c)) != NULL) {
		if (strstr(line, "\"error\"") != NULL) {
			fprintf(stderr, "session.create: %s\n", line);
			return -1;
		}
		if (strstr(line, "\"session.exited\"") != NULL)
			return strstr(line, "\"code\":0") != NULL ? 0 : -1;
	}
	return -1;
}

static int nono_client(struct client *c)
{
	if (client_open(c) < 0 ||
	    client_send(c, "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"daemon.hello\",\"params\":"
			   "{\"protocol\":[1],\"client\":\"session-bench/1\"}}\n") < 0 ||
	    client_line(c) == NULL)
		return -1;
	return 0;
}

/* ---- measurement ---------------------------------------------------------- */

enum kind { K_PLAIN, K_NONO, K_NONO_NET, K_BWRAP, K_FIREJAIL };
static const char *const kind_names[] = {
	"plain fork+exec", "nono session", "nono session + netns", "bwrap --unshare-all",
	"firejail --noprofile",
};

static int once(enum kind k, struct client *c)
{
	static char *const plain[] = { "/bin/true", NULL };
	static char *const bwrap[] = { "/usr/bin/bwrap", "--unshare-all", "--ro-bind", "/", "/",
				       "/bin/true", NULL };
	static char *const firejail[] = { "/usr/bin/firejail", "--quiet", "--noprofile", "/bin/true", NULL };

	switch (k) {
	case K_PLAIN: return run_argv(plain);
	case K_NONO: return nono_once(c, false);
	case K_NONO_NET: return nono_once(c, true);
	case K_BWRAP: return run_argv(bwrap);
	case K_FIREJAIL: return run_argv(firejail);
	}
	return -1;
}

static int latency(enum kind k, int iters, struct stats *out)
{
	double *v = calloc((size_t)iters, sizeof(*v));
	struct client c;

	if (v == NULL)
		return -1;
	if ((k == K_NONO || k == K_NONO_NET) && nono_client(&c) < 0) {
		free(v);
		return -1;
	}
	for (int i = 0; i < iters + 5; i++) {
		double t0 = now_ms();

		if (once(k, &c) < 0) {
			free(v);
			return -1;
		}
		if (i >= 5) /* warm-up */
			v[i - 5] = now_ms() - t0;
	}
	*out = summarize(v, iters);
	free(v);
	if (k == K_NONO || k == K_NONO_NET)
		close(c.fd);
	return 0;
}

struct worker {
	enum kind k;
	double seconds;
	long done;
	int failed;
};

static void *throughput_worker(void *arg)
{
	struct worker *w = arg;
	struct client c;
	double end;

	if ((w->k == K_NONO || w->k == K_NONO_NET) && nono_client(&c) < 0) {
		w->failed = 1;
		return NULL;
	}
	end = now_ms() + w->seconds * 1e3;
	while (now_ms() < end) {
		if (once(w->k, &c) < 0) {
			w->failed = 1;
			break;
		}
		w->done++;
	}
	if (w->k == K_NONO || w->k == K_NONO_NET)
		close(c.fd);
	return NULL;
}

static double throughput(enum kind k, int parallel, double seconds)
{
	pthread_t t[2];
	struct worker w[2];
	long total = 0;

	for (int i = 0; i < parallel; i++) {
		w[i] = (struct worker){ .k = k, .seconds = seconds };
		pthread_create(&t[i], NULL, throughput_worker, &w[i]);
	}
	for (int i = 0; i < parallel; i++) {
		pthread_join(t[i], NULL);
		if (w[i].failed)
			return -1;
		total += w[i].done;
	}
	return (double)total / seconds;
}

int main(int argc, char **argv)
{
	int iters = argc > 2 ? atoi(argv[2]) : 200;
	double seconds = argc > 3 ? atof(argv[3]) : 3.0;
	struct stats lat[5];
	double tput[5][2];
	bool have[5];

	if (argc < 2) {
		fprintf(stderr, "usage: session-bench SOCKET [ITERATIONS] [SECONDS]\n");
		return 2;
	}
	sock_path = argv[1];
	if (getenv("NONO_BENCH_WORKSPACE") != NULL)
		workspace = getenv("NONO_BENCH_WORKSPACE");
	for (int k = 0; k < 5; k++) {
		/* NONO_BENCH_KINDS=1,2 runs only those rows (for profiling one of them). */
		const char *only = getenv("NONO_BENCH_KINDS");

		if (only != NULL && strchr(only, '0' + k) == NULL) {
			have[k] = false;
			continue;
		}
		have[k] = latency((enum kind)k, iters, &lat[k]) == 0;
		if (!have[k]) {
			fprintf(stderr, "%s: not available here, skipped\n", kind_names[k]);
			continue;
		}
		for (int p = 1; p <= 2; p++)
			tput[k][p - 1] = throughput((enum kind)k, p, seconds);
	}
	printf("%-24s %10s %10s %12s %12s %10s\n", "", "median ms", "p99 ms", "per s (1)",
	       "per s (2)", "x plain");
	for (int k = 0; k < 5; k++) {
		if (!have[k])
			continue;
		printf("%-24s %10.2f %10.2f %12.0f %12.0f %10.2f\n", kind_names[k], lat[k].median,
		       lat[k].p99, tput[k][0], tput[k][1],
		       have[K_PLAIN] ? lat[k].median / lat[K_PLAIN].median : 0.0);
	}
	printf("\ntargets: session median <= 1.5x plain (with and without netns); >= 5x faster than "
	       "bwrap; sessions/s >= 0.7x plain\n");
	for (int k = K_NONO; k <= K_NONO_NET; k++) {
		if (!have[k] || !have[K_PLAIN])
			continue;
		printf("%s: median %.2fx plain (target <= 1.5)", kind_names[k],
		       lat[k].median / lat[K_PLAIN].median);
		if (have[K_BWRAP])
			printf(", bwrap/nono %.2fx (target >= 5)", lat[K_BWRAP].median / lat[k].median);
		printf(", rate %.2fx plain with 1 client, %.2fx with 2 (target >= 0.7)\n",
		       tput[k][0] / tput[K_PLAIN][0], tput[k][1] / tput[K_PLAIN][1]);
	}
	return 0;
}
