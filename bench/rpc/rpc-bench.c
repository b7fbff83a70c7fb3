/*
 * nono-rpc-bench: control-socket throughput and per-connection memory of a
 * running nonod.
 *
 *   1. idle memory: nonod's VmRSS, then again with N clients connected that
 *      each finished daemon.hello and stay idle (needs --pid);
 *   2. daemon.status round trips per second over 1 connection and over C
 *      connections. Every connection says hello first and then has exactly
 *      one request outstanding (no pipelining): a reply triggers the next.
 *      With --pid, also the server's CPU time per round trip.
 *
 * One thread drives all connections through epoll, so the client costs
 * one core and nonod (single event loop) gets the other.
 * Output: "key value" lines on stdout (see bench/rpc/run.sh).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HELLO "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"daemon.hello\"," \
	      "\"params\":{\"protocol\":[1],\"client\":\"nono-rpc-bench/1\"}}\n"
#define STATUS "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}\n"
#define BUF_SIZE 65536

static size_t last_reply_len; /* bytes of the last reply, LF included */

struct bconn {
	int fd;
	size_t len;       /* bytes buffered in buf */
	char buf[BUF_SIZE];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "nono-rpc-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void diex(const char *what)
{
	fprintf(stderr, "nono-rpc-bench: %s\n", what);
	exit(1);
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			die("write");
		p += w;
		n -= (size_t)w;
	}
}

/*
 * Take one complete line from c->buf if there is one. Returns 1 and checks
 * it is a successful reply (0 for a notification, which is skipped), or -1
 * when no full line is buffered yet.
 */
static int take_line(struct bconn *c)
{
	char *nl = memchr(c->buf, '\n', c->len);
	size_t n;
	int r;

	if (nl == NULL) {
		if (c->len == sizeof(c->buf))
			diex("reply longer than the bench's buffer");
		return -1;
	}
	*nl = '\0';
	n = (size_t)(nl - c->buf) + 1;
	if (strstr(c->buf, "\"id\"") == NULL) {
		r = 0; /* a notification */
	} else if (strstr(c->buf, "\"result\"") != NULL) {
		r = 1;
		last_reply_len = n;
	} else {
		fprintf(stderr, "nono-rpc-bench: error reply: %.300s\n", c->buf);
		exit(1);
	}
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	return r;
}

/* Read until one reply is buffered (blocking fd). */
static void read_reply_blocking(struct bconn *c)
{
	for (;;) {
		int r = take_line(c);
		ssize_t got;

		if (r == 1)
			return;
		if (r == 0)
			continue;
		got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			die("read");
		if (got == 0)
			diex("nonod closed the connection");
		c->len += (size_t)got;
	}
}

static struct bconn *bconn_open(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct bconn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		die("calloc");
	if (strlen(path) >= sizeof(sa.sun_path))
		diex("socket path too long");
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket");
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	write_all(c->fd, HELLO, strlen(HELLO));
	read_reply_blocking(c);
	return c;
}

static void bconn_close(struct bconn *c)
{
	close(c->fd);
	free(c);
}

/* utime + stime of pid in seconds, or -1 (pid <= 0 or unreadable). */
static double cpu_s(pid_t pid)
{
	unsigned long long ut, st;
	char path[64], buf[1024], *p;
	size_t got;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	got = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[got] = '\0';
	/* Fields after the ")" that ends comm: state is field 3, utime 14. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * Round trips per second over n connections for `secs` seconds, after a
 * warm-up of `warm` seconds that is not counted. With pid > 0 also
 * *cpu_us_per_rt: the server's CPU time per round trip, which (unlike the
 * rate) hardly depends on what else the machine is running.
 */
static double round_trips(const char *path, int n, double warm, double secs,
			  pid_t pid, double *cpu_us_per_rt)
{
	double cpu0 = -1;
	struct bconn **cs = calloc((size_t)n, sizeof(*cs));
	struct epoll_event *evs = calloc((size_t)n, sizeof(*evs));
	uint64_t done = 0, counted_from = 0;
	double t0, t_start = 0, t_end;
	bool counting = false;
	int ep;

	if (cs == NULL || evs == NULL)
		die("calloc");
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	for (int i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		cs[i] = bconn_open(path);
		ev.data.ptr = cs[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i]->fd, &ev) < 0)
			die("epoll_ctl");
	}
	for (int i = 0; i < n; i++)
		write_all(cs[i]->fd, STATUS, strlen(STATUS));

	t0 = now_s();
	t_end = t0 + warm + secs;
	for (;;) {
		double t = now_s();
		int k;

		if (!counting && t >= t0 + warm) {
			counting = true;
			counted_from = done;
			t_start = t;
			cpu0 = cpu_s(pid);
		}
		if (t >= t_end)
			break;
		k = epoll_wait(ep, evs, n, 1000);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			die("epoll_wait");
		for (int j = 0; j < k; j++) {
			struct bconn *c = evs[j].data.ptr;
			ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
			int r;

			if (got < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (got < 0)
				die("read");
			if (got == 0)
				diex("nonod closed a connection");
			c->len += (size_t)got;
			while ((r = take_line(c)) >= 0) {
				if (r == 0)
					continue;
				done++;
				write_all(c->fd, STATUS, strlen(STATUS));
			}
		}
	}
	t_end = now_s();
	*cpu_us_per_rt = -1;
	if (cpu0 >= 0 && done > counted_from)
		*cpu_us_per_rt = (cpu_s(pid) - cpu0) * 1e6 / (double)(done - counted_from);
	for (int i = 0; i < n; i++)
		bconn_close(cs[i]);
	close(ep);
	free(cs);
	free(evs);
	return (double)(done - counted_from) / (t_end - t_start);
}

/* VmRSS of pid in KiB, or -1. */
static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		die(path);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void idle_memory(const char *path, pid_t pid, int n)
{
	struct bconn **cs = calloc((size_t)n, sizeof(*cs));
	long before, after;

	if (cs == NULL)
		die("calloc");
	before = rss_kib(pid);
	for (int i = 0; i < n; i++)
		cs[i] = bconn_open(path); /* returns after hello's reply */
	/* One more round trip on a fresh connection: every accept before it
	 * has been handled by the time its reply arrives. */
	{
		struct bconn *probe = bconn_open(path);

		write_all(probe->fd, STATUS, strlen(STATUS));
		read_reply_blocking(probe);
		bconn_close(probe);
	}
	after = rss_kib(pid);
	printf("idle_clients %d\n", n);
	printf("rss_idle_kib %ld\n", before);
	printf("rss_with_idle_clients_kib %ld\n", after);
	printf("rss_per_idle_client_bytes %.0f\n",
	       (double)(after - before) * 1024.0 / (double)n);
	fflush(stdout);
	for (int i = 0; i < n; i++)
		bconn_close(cs[i]);
	free(cs);
}

static void raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit");
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	if (rl.rlim_cur < want && geteuid() == 0)
		rl.rlim_cur = rl.rlim_max = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit RLIMIT_NOFILE");
	if (rl.rlim_cur < want)
		diex("RLIMIT_NOFILE hard limit too low for --idle");
}

static void usage(void)
{
	fprintf(stderr,
		"usage: nono-rpc-bench --socket PATH [--pid PID] [--idle N]\n"
		"                      [--conns N] [--seconds S] [--warmup S]\n"
		"  --pid      the server's pid: idle-memory phase (VmRSS) and CPU per round trip\n"
		"  --idle     idle clients for the memory phase (1000; 0 skips it)\n"
		"  --conns    connections for the parallel phase (50)\n"
		"  --seconds  measured time per throughput phase (5)\n"
		"  --warmup   uncounted time before each phase (1)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "pid", required_argument, NULL, 'p' },
		{ "idle", required_argument, NULL, 'i' },
		{ "conns", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 't' },
		{ "warmup", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	pid_t pid = 0;
	int idle = 1000, conns = 50, o;
	double secs = 5, warm = 1, rate, cpu;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's': path = optarg; break;
		case 'p': pid = (pid_t)atoi(optarg); break;
		case 'i': idle = atoi(optarg); break;
		case 'c': conns = atoi(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'w': warm = atof(optarg); break;
		default: usage();
		}
	}
	if (path == NULL || idle < 0 || conns < 1 || secs <= 0 || warm < 0)
		usage();
	signal(SIGPIPE, SIG_IGN); /* a closed connection is an error we report */
	raise_nofile((rlim_t)(idle > conns ? idle : conns) + 64);

	if (pid > 0 && idle > 0)
		idle_memory(path, pid, idle);
	rate = round_trips(path, 1, warm, secs, pid, &cpu);
	printf("status_reply_bytes %zu\n", last_reply_len);
	printf("rt_per_sec_1_conn %.0f\n", rate);
	if (cpu > 0)
		printf("server_cpu_us_per_rt_1_conn %.2f\n", cpu);
	fflush(stdout);
	rate = round_trips(path, conns, warm, secs, pid, &cpu);
	printf("rt_per_sec_%d_conns %.0f\n", conns, rate);
	if (cpu > 0)
		printf("server_cpu_us_per_rt_%d_conns %.2f\n", conns, cpu);
	return 0;
}
