/*
 * Example and measurement: how many daemon.status calls per second one
 * client gets from nonod, blocking and pipelined async (BATCH calls in
 * flight, driven by poll() + nono_client_dispatch()), and what a fresh
 * connect + hello costs.
 *   usage: nono-example-call-rate [SOCKET] [CALLS]
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <nono.h>

#define BATCH 100
#define CONNECTS 200

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_reply(nono_client *c, const char *result_json, const nono_error *err,
		     int *fds, size_t nfds, void *userdata)
{
	(*(int *)userdata) += err == NULL ? 1 : 1000000;
}

static int fail(const char *what, nono_error *err)
{
	fprintf(stderr, "%s: %s\n", what, nono_error_detail(err));
	nono_error_free(err);
	return 1;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : NULL;
	int calls = argc > 2 ? atoi(argv[2]) : 20000;
	nono_client *c;
	nono_error *err = NULL;
	double t0;
	int got = 0;

	if (calls < BATCH)
		calls = BATCH;
	t0 = now();
	for (int i = 0; i < CONNECTS; i++) {
		if (nono_client_connect(path, "call-rate/1", &c, &err) < 0)
			return fail("connect", err);
		nono_client_free(c);
	}
	printf("connect + hello:   %7.1f us each (%d)\n", (now() - t0) / CONNECTS * 1e6, CONNECTS);

	if (nono_client_connect(path, "call-rate/1", &c, &err) < 0)
		return fail("connect", err);
	t0 = now();
	for (int i = 0; i < calls; i++) {
		char *res;

		if (nono_client_call(c, NONO_M_DAEMON_STATUS, NULL, &res, &err) < 0)
			return fail("status", err);
		free(res);
	}
	printf("blocking:          %7.1f us/call, %.0f calls/s (%d)\n",
	       (now() - t0) / calls * 1e6, calls / (now() - t0), calls);

	t0 = now();
	for (int done = 0; done < calls / BATCH; done++) {
		for (int i = 0; i < BATCH; i++)
			if (nono_client_call_async(c, NONO_M_DAEMON_STATUS, NULL, NULL, 0,
						   on_reply, &got, &err) < 0)
				return fail("status", err);
		while (got < (done + 1) * BATCH) {
			struct pollfd pfd = { .fd = nono_client_get_fd(c), .events = POLLIN };

			if (poll(&pfd, 1, -1) < 0 || nono_client_dispatch(c) < 0) {
				fprintf(stderr, "connection lost\n");
				return 1;
			}
		}
	}
	printf("async, %d in flight: %5.1f us/call, %.0f calls/s (%d)\n", BATCH,
	       (now() - t0) / got * 1e6, got / (now() - t0), got);
	nono_client_free(c);
	return got == calls / BATCH * BATCH ? 0 : 1;
}
