/* Passing file descriptors over a Unix stream socket with SCM_RIGHTS. */
#ifndef PROTO_FDPASS_H
#define PROTO_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

/*
 * One sendmsg() of buf[0..len) with fds attached (nfds may be 0,
 * at most NONO_MAX_FDS_PER_MESSAGE). MSG_NOSIGNAL. Returns bytes sent or -errno.
 * The kernel attaches fds to the first byte sent; callers that get a short
 * write must send the rest without fds.
 */
ssize_t fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds);

/*
 * One recvmsg() into buf. Received fds are appended to fds[*nfds..cap) with
 * O_CLOEXEC; *nfds is updated. fds beyond cap, or any when the control
 * message was truncated (MSG_CTRUNC), are closed and *truncated is set to 1
 * so the caller can refuse the message; *truncated is never cleared here
 * (initialize it to 0; it may be NULL). Returns bytes read (0 = EOF) or
 * -errno (-EAGAIN when nothing is ready on a nonblocking socket).
 *
 * Which message owns the fds: Linux may return bytes sent without fds
 * together with a later send that carries fds in one read, but it ends the
 * read at the end of that fd-carrying send. So when senders start every
 * fd-carrying message with its own fdpass_send() and put nothing after it
 * in the same send, fds received by one read belong to the LAST message
 * that begins in the bytes of that read.
 */
ssize_t fdpass_recv(int sock, void *buf, size_t len, int *fds, size_t *nfds,
		    size_t cap, int *truncated);
/* fdpass_recv, but the fds it does not hand over go to drop (instead of
 * close()), with arg: a daemon closes clients' fds off its loop. cap 0
 * with fds NULL takes no fds: the kernel drops them unopened (MSG_CTRUNC),
 * *truncated says so. */
ssize_t fdpass_recv_drop(int sock, void *buf, size_t len, int *fds, size_t *nfds,
			 size_t cap, int *truncated, void (*drop)(int fd, void *arg), void *arg);

/* Close every fd in fds[0..n) that is >= 0, and set them to -1. */
void fdpass_close_all(int *fds, size_t n);

#endif
