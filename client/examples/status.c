/*
 * Example: connect to nonod with libnono, print the daemon version and its
 * status, and wait for one async call from a poll() loop.
 * Build: cc status.c $(pkg-config --cflags --libs nono)
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include <nono.h>

static void on_status(nono_client *c, const char *result_json, const nono_error *err,
		      int *fds, size_t nfds, void *userdata)
{
	int *done = userdata;

	if (err != NULL)
		fprintf(stderr, "daemon.status failed: %s (%s)\n", nono_error_detail(err),
			nono_error_kind(err));
	else
		printf("async status: %s\n", result_json);
	*done = 1;
}

int main(int argc, char **argv)
{
	const char *socket_path = argc > 1 ? argv[1] : NULL;
	nono_client *c = NULL;
	nono_status *st = NULL;
	nono_error *err = NULL;
	int done = 0;

	if (nono_client_connect(socket_path, "example-status/1", &c, &err) < 0) {
		fprintf(stderr, "%s\n", nono_error_detail(err));
		nono_error_free(err);
		return 69;
	}
	printf("connected to nonod %s (protocol %d)\n", nono_client_daemon_version(c),
	       nono_client_protocol(c));

	/* Blocking, typed. */
	if (nono_client_status(c, &st, &err) < 0) {
		fprintf(stderr, "status: %s\n", nono_error_detail(err));
		nono_error_free(err);
		nono_client_free(c);
		return 1;
	}
	printf("mode %s, pid %ld, %u client(s)\n", nono_status_mode(st),
	       (long)nono_status_pid(st), nono_status_clients(st));
	nono_status_free(st);

	/* Async, from an event loop (here a bare poll()). */
	if (nono_client_call_async(c, NONO_M_DAEMON_STATUS, NULL, NULL, 0, on_status, &done,
				   &err) < 0) {
		fprintf(stderr, "status: %s\n", nono_error_detail(err));
		nono_error_free(err);
		nono_client_free(c);
		return 1;
	}
	while (!done) {
		struct pollfd pfd = { .fd = nono_client_get_fd(c), .events = POLLIN };

		if (nono_client_pending(c) == 0 && poll(&pfd, 1, -1) < 0)
			break;
		if (nono_client_dispatch(c) < 0)
			break;
	}
	nono_client_free(c);
	return done ? 0 : 1;
}
