/*
 * Test harness for libnono: a scripted fake nonod. A thread accepts one
 * connection on a socket in a temporary directory and answers the hello;
 * after nono_client_connect returns, the test holds the server end (sfd)
 * and writes exactly the bytes (and fds) it wants the client to see.
 */
#ifndef TEST_CLIENT_HARNESS_H
#define TEST_CLIENT_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <check.h>

#include "nono.h"

#define HELLO_OK "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":1,\"daemon\":\"9.8.7\"," \
	"\"features\":[\"x\"],\"limits\":{\"max_message\":4096,\"max_fds\":16}," \
	"\"peer\":{\"uid\":0,\"gid\":0,\"admin\":true}}}\n"

struct harness {
	char path[256];
	int lfd;
	int sfd;               /* server end of the connection, after h_connect */
	pthread_t thr;
	bool thr_started;
	const char *hello_reply; /* written after reading the hello; NULL = close instead */
	char hello_req[4096];  /* the hello request line the client sent */
	nono_client *c;
};

/* Per-tcase (unchecked, runs in the parent): make / remove the temp dir. */
void h_global_setup(void);
void h_global_teardown(void);

/* Listen and start the hello thread (hello_reply as above). */
void h_start(struct harness *h, const char *hello_reply);
/* nono_client_connect to the harness, join the thread. Returns its result. */
int h_connect(struct harness *h, nono_error **err);
/* h_start(HELLO_OK) + h_connect that must succeed. */
void h_open(struct harness *h);
/* Free the client, close everything. */
void h_stop(struct harness *h);

/* Read one line the client sent (LF stripped), malloc'd. */
char *h_read_line(struct harness *h);
/* Write all of s (then optionally fds with the first byte). */
void h_write(struct harness *h, const char *s);
void h_write_fds(struct harness *h, const char *s, const int *fds, size_t nfds);
/* Write s one byte per write(). */
void h_write_bytes(struct harness *h, const char *s, size_t len);

/* Number of open fds in this process (leak checks). */
int h_count_fds(void);
/* Is fd open and FD_CLOEXEC? */
bool h_is_cloexec(int fd);

#define RESULT(id, res) "{\"jsonrpc\":\"2.0\",\"id\":" #id ",\"result\":" res "}\n"

/* What reply callbacks (h_on_reply) saw. */
struct seen {
	int calls;
	char result[4][256];
	int code[4];
	size_t nfds[4];
	int kept_fd;       /* the first fd of the last reply that had one (kept) */
};

/* Notifications seen (h_on_notify), in order, as "method params". */
struct notes {
	int n;
	char text[4][256];
	size_t nfds[4];
};

/* nono_reply_cb recording into struct seen (userdata). */
void h_on_reply(nono_client *c, const char *result_json, const nono_error *err,
		int *fds, size_t nfds, void *userdata);
/* nono_notify_cb recording into struct notes (userdata). */
void h_on_notify(nono_client *c, const char *method, const char *params_json,
		 int *fds, size_t nfds, void *userdata);
/* Read one request from the client and check its method and id. */
void h_expect_request(struct harness *h, const char *method, int id);

#endif
