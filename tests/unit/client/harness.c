/* The scripted fake nonod used by the libnono unit tests (see harness.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fdpass.h"
#include "harness.h"

static char base_dir[] = "/tmp/nono-client-test.XXXXXX";

void h_global_setup(void)
{
	if (mkdtemp(base_dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void h_global_teardown(void)
{
	nftw(base_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int read_line_fd(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	for (;;) {
		char ch;
		ssize_t r = read(fd, &ch, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (ch == '\n')
			break;
		if (n + 1 < cap)
			buf[n++] = ch;
	}
	buf[n] = '\0';
	return 0;
}

static void write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t r = send(fd, s, len, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		s += r;
		len -= (size_t)r;
	}
}

static void *hello_thread(void *arg)
{
	struct harness *h = arg;
	int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (read_line_fd(fd, h->hello_req, sizeof(h->hello_req)) < 0 || h->hello_reply == NULL) {
		close(fd);
		return NULL;
	}
	write_all(fd, h->hello_reply, strlen(h->hello_reply));
	h->sfd = fd;
	return NULL;
}

void h_start(struct harness *h, const char *hello_reply)
{
	static int seq;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	memset(h, 0, sizeof(*h));
	h->sfd = -1;
	h->hello_reply = hello_reply;
	snprintf(h->path, sizeof(h->path), "%s/s%d.%d.sock", base_dir, (int)getpid(), seq++);
	h->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(h->lfd, 0);
	ck_assert_uint_lt(strlen(h->path), sizeof(sun.sun_path));
	memcpy(sun.sun_path, h->path, strlen(h->path) + 1);
	ck_assert_int_eq(bind(h->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(h->lfd, 4), 0);
	ck_assert_int_eq(pthread_create(&h->thr, NULL, hello_thread, h), 0);
	h->thr_started = true;
}

int h_connect(struct harness *h, nono_error **err)
{
	int r = nono_client_connect(h->path, "test/1", &h->c, err);

	pthread_join(h->thr, NULL);
	h->thr_started = false;
	return r;
}

void h_open(struct harness *h)
{
	nono_error *err = NULL;

	h_start(h, HELLO_OK);
	if (h_connect(h, &err) < 0)
		ck_abort_msg("connect: %s", nono_error_detail(err));
	ck_assert_int_ge(h->sfd, 0);
}

void h_stop(struct harness *h)
{
	nono_client_free(h->c);
	h->c = NULL;
	if (h->thr_started) {
		shutdown(h->lfd, SHUT_RDWR);
		pthread_join(h->thr, NULL);
	}
	if (h->sfd >= 0)
		close(h->sfd);
	if (h->lfd >= 0)
		close(h->lfd);
	unlink(h->path);
	h->sfd = h->lfd = -1;
}

char *h_read_line(struct harness *h)
{
	char buf[65536];

	if (read_line_fd(h->sfd, buf, sizeof(buf)) < 0)
		return NULL;
	return strdup(buf);
}

void h_write(struct harness *h, const char *s)
{
	write_all(h->sfd, s, strlen(s));
}

void h_write_fds(struct harness *h, const char *s, const int *fds, size_t nfds)
{
	size_t len = strlen(s);
	ssize_t n = fdpass_send(h->sfd, s, len, fds, nfds);

	ck_assert_int_gt(n, 0);
	write_all(h->sfd, s + n, len - (size_t)n);
}

void h_write_bytes(struct harness *h, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		write_all(h->sfd, s + i, 1);
}

int h_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

bool h_is_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	return fl >= 0 && (fl & FD_CLOEXEC);
}

void h_on_reply(nono_client *c, const char *result_json, const nono_error *err,
		int *fds, size_t nfds, void *userdata)
{
	struct seen *s = userdata;
	int i = s->calls++;

	ck_assert_int_lt(i, 4);
	ck_assert((result_json == NULL) != (err == NULL));
	snprintf(s->result[i], sizeof(s->result[i]), "%s", result_json ? result_json : "");
	s->code[i] = nono_error_code(err);
	s->nfds[i] = nfds;
	if (nfds > 0) {
		s->kept_fd = fds[0];
		fds[0] = -1; /* keep it */
	}
}

void h_on_notify(nono_client *c, const char *method, const char *params_json,
		 int *fds, size_t nfds, void *userdata)
{
	struct notes *ns = userdata;

	ck_assert_int_lt(ns->n, 4);
	snprintf(ns->text[ns->n], sizeof(ns->text[0]), "%s %s", method, params_json);
	ns->nfds[ns->n++] = nfds;
}

void h_expect_request(struct harness *h, const char *method, int id)
{
	char *line = h_read_line(h);
	struct json_object *req, *v;

	ck_assert_ptr_nonnull(line);
	req = json_tokener_parse(line);
	ck_assert_ptr_nonnull(req);
	ck_assert(json_object_object_get_ex(req, "method", &v));
	ck_assert_str_eq(json_object_get_string(v), method);
	ck_assert(json_object_object_get_ex(req, "id", &v));
	ck_assert_int_eq(json_object_get_int(v), id);
	json_object_put(req);
	free(line);
}
