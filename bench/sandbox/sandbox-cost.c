/*
 * What the kernel enforcement costs per spawn, each against its baseline in
 * the same run: median and p90 in microseconds over N iterations.
 *   fork+wait                      baseline
 *   compile                        sandbox_compile() of a typical spec
 *   fork+enter+wait                sandbox_enter() in the child
 *   fork+exec /bin/true            baseline for a real worker start
 *   compile+fork+enter+exec        what nonod pays per session start
 *   ... + strict mount ns          the same in strict mode (root)
 *   netns create (+lo up, listen)  sandbox_netns_create(), strict mode
 *   fork+setns+wait                joining that namespace
 * Needs root for netns and the credential drop; without it those rows are
 * skipped.
 */
#include "netns.h"
#include "sandbox.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("%-28s median %8.1f us   p90 %8.1f us   (n=%d)\n", name, v[n / 2],
	       v[(n * 9) / 10], n);
}

static void wait_child(pid_t p)
{
	int st;

	if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "child failed\n");
		exit(1);
	}
}

/* Compile, fork, enter and exec /bin/true: what a session start costs the
 * kernel and the sandbox library, in v[0..n). */
static int time_sandboxed_exec(const struct sandbox_spec *spec, double *v, int n)
{
	struct sandbox_compiled *c;
	char err[256];

	for (int i = 0; i < n; i++) {
		char *av[] = { "/bin/true", NULL };
		double t = now_us();
		pid_t p;

		if (sandbox_compile(spec, &c, err, sizeof(err)) != 0) {
			fprintf(stderr, "compile: %s\n", err);
			return -1;
		}
		p = fork();
		if (p == 0) {
			if (sandbox_enter(c, NULL) != 0)
				_exit(1);
			execve(av[0], av, sandbox_compiled_envp(c));
			_exit(127);
		}
		wait_child(p);
		sandbox_compiled_free(c);
		v[i] = now_us() - t;
	}
	return 0;
}

static const char *const pass[] = { "PATH", "HOME", "LANG" };

static void spec_init(struct sandbox_spec *s, struct sandbox_path_rule *r, gid_t *g)
{
	char *home = getenv("HOME");
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	r[n++] = (struct sandbox_path_rule){ "/usr", SANDBOX_READ, 0 };
	r[n++] = (struct sandbox_path_rule){ "/etc", SANDBOX_READ, 0 };
	r[n++] = (struct sandbox_path_rule){ "/dev/null", SANDBOX_WRITE, 0 };
	r[n++] = (struct sandbox_path_rule){ "/tmp", SANDBOX_WRITE, 0 };
	if (home && home[0] == '/') {
		r[n++] = (struct sandbox_path_rule){ home, SANDBOX_READ, SANDBOX_PATH_OPTIONAL };
		r[n++] = (struct sandbox_path_rule){ "/root/.ssh", SANDBOX_DENY, 0 };
	}
	s->paths = r;
	s->npaths = n;
	s->netns_fd = -1;
	s->net = SANDBOX_NET_NONE;
	s->env.pass = pass;
	s->env.npass = 3;
	s->limits.nofile = 1024;
	if (geteuid() == 0) {
		*g = 65534;
		s->creds = (struct sandbox_creds){ true, 65534, 65534, g, 1 };
	}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200;
	double *v = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
	struct sandbox_path_rule rules[8];
	struct sandbox_compiled *c;
	struct sandbox_spec spec;
	char err[256];
	gid_t g;
	int nsfd = -1, lfd = -1;

	if (n <= 0 || !v)
		return 2;
	spec_init(&spec, rules, &g);
	for (int i = 0; i < n; i++) {
		double t = now_us();
		pid_t p = fork();

		if (p == 0)
			_exit(0);
		wait_child(p);
		v[i] = now_us() - t;
	}
	report("fork+wait", v, n);

	for (int i = 0; i < n; i++) {
		double t = now_us();

		if (sandbox_compile(&spec, &c, err, sizeof(err)) != 0) {
			fprintf(stderr, "compile: %s\n", err);
			return 1;
		}
		v[i] = now_us() - t;
		sandbox_compiled_free(c);
	}
	report("compile", v, n);

	if (sandbox_compile(&spec, &c, err, sizeof(err)) != 0)
		return 1;
	for (int i = 0; i < n; i++) {
		double t = now_us();
		pid_t p = fork();

		if (p == 0)
			_exit(sandbox_enter(c, NULL) == 0 ? 0 : 1);
		wait_child(p);
		v[i] = now_us() - t;
	}
	report("fork+enter+wait", v, n);

	for (int i = 0; i < n; i++) {
		char *av[] = { "/bin/true", NULL };
		double t = now_us();
		pid_t p = fork();

		if (p == 0) {
			execve(av[0], av, sandbox_compiled_envp(c));
			_exit(127);
		}
		wait_child(p);
		v[i] = now_us() - t;
	}
	report("fork+exec /bin/true", v, n);
	sandbox_compiled_free(c);

	if (time_sandboxed_exec(&spec, v, n) != 0)
		return 1;
	report("compile+fork+enter+exec", v, n);
	/* The strict mode's private mount namespace, on top: the floor under
	 * a nonod session start, without the daemon's own work. Also last
	 * but one, for the same reason as the network namespace below. */
	if (geteuid() == 0) {
		spec.readonly_mounts = spec.hide_shared_dirs = true;
		if (time_sandboxed_exec(&spec, v, n) != 0)
			return 1;
		report("... + strict mount ns", v, n);
		spec.readonly_mounts = spec.hide_shared_dirs = false;
	}

	/* Last: namespaces are torn down asynchronously by a kernel worker,
	 * which would slow down whatever ran after them. */
	if (sandbox_netns_create(&nsfd, 0, &lfd, err, sizeof(err)) == 0) {
		close(nsfd);
		close(lfd);
		for (int i = 0; i < n; i++) {
			double t = now_us();

			if (sandbox_netns_create(&nsfd, 0, &lfd, err, sizeof(err)) != 0) {
				fprintf(stderr, "%s\n", err);
				return 1;
			}
			v[i] = now_us() - t;
			close(nsfd);
			close(lfd);
		}
		report("netns create", v, n);
		sandbox_netns_create(&nsfd, 0, &lfd, err, sizeof(err));
		for (int i = 0; i < n; i++) {
			double t = now_us();
			pid_t p = fork();

			if (p == 0)
				_exit(setns(nsfd, CLONE_NEWNET) == 0 ? 0 : 1);
			wait_child(p);
			v[i] = now_us() - t;
		}
		report("fork+setns+wait", v, n);
		close(nsfd);
		close(lfd);
	} else {
		printf("%-28s skipped: %s\n", "netns create", err);
	}

	free(v);
	return 0;
}
