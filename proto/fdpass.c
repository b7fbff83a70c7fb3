/*
 * File descriptors over a Unix stream socket (SCM_RIGHTS). Received fds are
 * close-on-exec from the moment they exist (MSG_CMSG_CLOEXEC), and every fd
 * the kernel installs is either handed to the caller or closed here.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "fdpass.h"
#include "nono-protocol.h"

#define FDPASS_CMSG_SPACE CMSG_SPACE(sizeof(int) * NONO_MAX_FDS_PER_MESSAGE)

ssize_t fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	union {
		char buf[FDPASS_CMSG_SPACE];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > NONO_MAX_FDS_PER_MESSAGE || (nfds > 0 && fds == NULL))
		return -EINVAL;
	/* fds ride on the first byte: a zero-length send would drop them. */
	if (nfds > 0 && len == 0)
		return -EINVAL;
	if (nfds > 0) {
		struct cmsghdr *c;

		for (size_t i = 0; i < nfds; i++)
			if (fds[i] < 0)
				return -EBADF;
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Hand the fds of one SCM_RIGHTS message to the caller, or drop them. */
static void fdpass_take(const int *in, size_t n, int *fds, size_t *nfds, size_t cap,
			int keep, int *truncated, void (*drop)(int fd, void *arg), void *arg)
{
	for (size_t i = 0; i < n; i++) {
		if (keep && fds != NULL && nfds != NULL && *nfds < cap) {
			fds[(*nfds)++] = in[i];
		} else {
			if (drop != NULL)
				drop(in[i], arg);
			else
				close(in[i]);
			*truncated = 1;
		}
	}
}

ssize_t fdpass_recv(int sock, void *buf, size_t len, int *fds, size_t *nfds,
		    size_t cap, int *truncated)
{
	return fdpass_recv_drop(sock, buf, len, fds, nfds, cap, truncated, NULL, NULL);
}

ssize_t fdpass_recv_drop(int sock, void *buf, size_t len, int *fds, size_t *nfds,
			 size_t cap, int *truncated, void (*drop)(int fd, void *arg), void *arg)
{
	union {
		char buf[FDPASS_CMSG_SPACE];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	int dummy = 0;
	int *trunc = truncated != NULL ? truncated : &dummy;
	int keep;
	ssize_t n;

	if (fds == NULL && cap == 0) { /* take none: the kernel drops them unopened */
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
	}
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	/* On MSG_CTRUNC the kernel already dropped what did not fit; close the rest. */
	keep = !(msg.msg_flags & MSG_CTRUNC);
	if (!keep)
		*trunc = 1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		size_t bytes;
		int in[NONO_MAX_FDS_PER_MESSAGE];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		bytes = c->cmsg_len - CMSG_LEN(0);
		if (bytes > sizeof(in))
			bytes = sizeof(in); /* cannot happen: bounded by our buffer */
		memcpy(in, CMSG_DATA(c), bytes);
		fdpass_take(in, bytes / sizeof(int), fds, nfds, cap, keep, trunc, drop, arg);
	}
	return n;
}

void fdpass_close_all(int *fds, size_t n)
{
	if (fds == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}
