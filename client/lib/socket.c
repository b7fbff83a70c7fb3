/* libnono: where the daemon's socket is, and connecting to it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "private.h"

static const char *copy_path(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s%s", a, b);

	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	return buf;
}

const char *nono_default_socket(char *buf, size_t len)
{
	const char *env = secure_getenv(NONO_SOCKET_ENV);
	const char *xdg;
	struct stat st;

	if (buf == NULL || len == 0) {
		errno = EINVAL;
		return NULL;
	}
	if (env != NULL && env[0] != '\0')
		return copy_path(buf, len, env, "");
	if (geteuid() == 0)
		return copy_path(buf, len, NONO_SYSTEM_SOCKET, "");
	xdg = secure_getenv("XDG_RUNTIME_DIR");
	if (xdg == NULL || xdg[0] != '/')
		return copy_path(buf, len, NONO_SYSTEM_SOCKET, "");
	if (copy_path(buf, len, xdg, "/" NONO_USER_SOCKET_REL) == NULL)
		return NULL;
	if (lstat(buf, &st) < 0 && errno == ENOENT && lstat(NONO_SYSTEM_SOCKET, &st) == 0)
		return copy_path(buf, len, NONO_SYSTEM_SOCKET, "");
	return buf;
}

/* connect() was interrupted: the connection goes on; wait for its result. */
static int connect_finish(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t sl = sizeof(int);
	int soerr = 0;

	for (;;) {
		int r = poll(&pfd, 1, -1);

		if (r > 0)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -errno;
	return -soerr;
}

int socket_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t plen = strlen(path);
	int fd, r, flags;

	if (plen == 0)
		return -EINVAL;
	if (plen >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, plen + 1);

	/* Blocking connect (a Unix socket only blocks on a full backlog),
	 * then nonblocking for all I/O. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (r < 0)
		r = errno == EINTR ? connect_finish(fd) : -errno;
	if (r == 0) {
		flags = fcntl(fd, F_GETFL);
		if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
			r = -errno;
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}
