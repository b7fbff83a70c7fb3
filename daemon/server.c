/*
 * The listening socket and accept loop. Identity comes from SO_PEERCRED;
 * accept pauses on EMFILE instead of spinning.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "activation-launchd.h"
#include "config.h"
#include "conn.h"
#include "daemon.h"
#include "log.h"
#include "rpc-dispatch.h"
#include "server.h"

#define ACCEPT_BATCH 64

static int listen_fd = -1;
static int lock_fd = -1;
static char *sock_path;   /* set when we created the socket file */
static char *lock_path;
static struct event *ev_accept, *ev_resume;

static int path_to_sun(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

/* The socket's directory must be ours and not writable by others, or the socket could be swapped. */
static int server_check_dir(const char *path, bool system_mode)
{
	char *dir = strdup(path), *slash;
	struct stat st;
	int rc = 0;

	if (dir == NULL)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir) {
		free(dir);
		return 0;
	}
	*slash = '\0';
	if (mkdir(dir, system_mode ? 0755 : 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		log_error("mkdir %s", dir);
	} else if (lstat(dir, &st) < 0) {
		rc = -errno;
		log_error("stat %s", dir);
	} else if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0022) != 0) {
		log_errorx("%s must be a directory owned by uid %u and not writable by others",
			   dir, (unsigned)geteuid());
		rc = -EPERM;
	}
	free(dir);
	return rc;
}

static int server_lock(const char *path)
{
	char pid[32];

	if (asprintf(&lock_path, "%s.lock", path) < 0) {
		lock_path = NULL;
		return -ENOMEM;
	}
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd < 0) {
		int e = errno;
		log_error("open %s", lock_path);
		return -e;
	}
	if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		ssize_t n = pread(lock_fd, pid, sizeof(pid) - 1, 0);

		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (e == EWOULDBLOCK)
			log_errorx("another nonod%s%s is already serving %s",
				   pid[0] != '\0' ? " (pid " : "", pid[0] != '\0' ? pid : "", path);
		else
			log_error("lock %s", lock_path);
		if (pid[0] != '\0' && e == EWOULDBLOCK)
			log_errorx("(pid %s holds %s)", pid, lock_path);
		close(lock_fd);
		lock_fd = -1;
		free(lock_path);
		lock_path = NULL;
		return -EADDRINUSE;
	}
	if (ftruncate(lock_fd, 0) == 0) {
		int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
		if (pwrite(lock_fd, pid, (size_t)n, 0) < 0)
			log_warn("write %s", lock_path);
	}
	return 0;
}

/* We hold the lock, so a socket file left at path is stale unless someone else answers on it. */
static int server_remove_stale(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_errorx("%s exists and is not a socket; not touching it", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	if (rc == 0) {
		log_errorx("a process without our lock answers on %s; refusing to replace it", path);
		return -EADDRINUSE;
	}
	log_info("removing stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT) {
		int e = errno;
		log_error("unlink %s", path);
		return -e;
	}
	return 0;
}

/* The socket launchd made for us (macOS; -ENOTSUP elsewhere). */
static int server_launchd(int *fd)
{
	int *fds = NULL, rc;
	size_t n = 0;

	rc = activation_launchd_fds(ACTIVATION_LAUNCHD_SOCKET_NAME, &fds, &n);
	if (rc < 0)
		return rc == -ENOTSUP || rc == -ESRCH ? 0 : rc;
	if (n != 1) {
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		free(fds);
		log_errorx("launchd passed %zu sockets; nonod takes exactly one", n);
		return -EINVAL;
	}
	*fd = fds[0];
	free(fds);
	return 1;
}

static int server_activated(char **path_out)
{
	struct sockaddr_un sun;
	socklen_t len = sizeof(sun);
	int n = sd_listen_fds(1), fd = SD_LISTEN_FDS_START;

	if (n == 0)
		n = server_launchd(&fd);
	if (n <= 0)
		return n; /* 0: not socket-activated */
	if (n > 1) {
		log_errorx("systemd passed %d sockets; nonod takes exactly one", n);
		return -EINVAL;
	}
	if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
		log_errorx("the socket systemd passed is not a listening Unix stream socket");
		return -EINVAL;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	memset(&sun, 0, sizeof(sun));
	if (getsockname(fd, (struct sockaddr *)&sun, &len) == 0 && sun.sun_path[0] != '\0')
		*path_out = strdup(sun.sun_path);
	else
		*path_out = strdup("(socket from systemd)");
	listen_fd = fd;
	log_info("using the socket passed by the service manager: %s", *path_out);
	return 1;
}

int server_open(const char *path, bool system_mode, gid_t socket_gid, char **path_out)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd, rc;

	*path_out = NULL;
	rc = server_activated(path_out);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if ((rc = path_to_sun(path, &sun)) < 0) {
		log_errorx("socket path too long: %s", path);
		return rc;
	}
	if ((rc = server_check_dir(path, system_mode)) < 0 || (rc = server_lock(path)) < 0 ||
	    (rc = server_remove_stale(path, &sun)) < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Never a moment with a wider mode than intended. */
	old = umask(system_mode ? 0117 : 0177);
	rc = bind(fd, (const struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc < 0) {
		rc = -errno;
		log_error("bind %s", path);
		close(fd);
		return rc;
	}
	if (system_mode && socket_gid != (gid_t)-1 && chown(path, (uid_t)-1, socket_gid) < 0)
		log_warn("chown %s to the socket group", path);
	if (listen(fd, SOMAXCONN) < 0) {
		rc = -errno;
		log_error("listen %s", path);
		close(fd);
		unlink(path);
		return rc;
	}
	listen_fd = fd;
	sock_path = strdup(path);
	*path_out = strdup(path);
	return *path_out != NULL && sock_path != NULL ? 0 : -ENOMEM;
}

/* root, or a member (primary or supplementary) of the admin group. */
static bool server_peer_admin(uid_t uid, gid_t gid)
{
	gid_t admin = nonod->cfg->admin_gid, groups[256];
	int n = (int)(sizeof(groups) / sizeof(groups[0]));
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (uid == 0)
		return true;
	if (admin == (gid_t)-1)
		return false;
	if (gid == admin)
		return true;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return false;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == admin)
			return true;
	return false;
}

/* A connection we cannot take still gets told why, in the protocol's terms. */
static void server_refuse(int fd, int code, const char *why)
{
	struct rpc_error err;
	struct json_object *msg;
	size_t len;
	char *buf;

	rpc_error_set(&err, code, "", "%s", why);
	msg = rpc_make_error(NULL, &err);
	buf = msg != NULL ? rpc_serialize(msg, &len) : NULL;
	if (buf != NULL && send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("refusal not delivered: %s", strerror(errno));
	free(buf);
	json_object_put(msg);
	close(fd);
}

static void server_on_resume(evutil_socket_t fd, short what, void *arg)
{
	event_add(ev_accept, NULL);
}

static void server_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		struct peer peer;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Pause rather than spin on a readable listener we cannot serve. */
				struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
				log_warn("accept: pausing for 200 ms");
				event_del(ev_accept);
				evtimer_add(ev_resume, &tv);
			} else if (errno != EAGAIN) {
				log_warn("accept");
			}
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			log_warn("SO_PEERCRED");
			close(fd);
			continue;
		}
		if (nonod->stopping) {
			server_refuse(fd, NONO_E_BACKEND_UNAVAILABLE, "nonod is stopping");
			continue;
		}
		if (nonod->nclients >= nonod->cfg->max_clients) {
			log_warnx("refusing uid %u: %u clients connected (max_clients)",
				  (unsigned)cred.uid, nonod->nclients);
			server_refuse(fd, NONO_E_LIMIT_EXCEEDED, "too many clients connected");
			continue;
		}
		if (cred.uid != 0 && conn_count_uid(cred.uid) >= nonod->cfg->max_clients_per_uid) {
			log_warnx("refusing uid %u: max_clients_per_user reached", (unsigned)cred.uid);
			server_refuse(fd, NONO_E_LIMIT_EXCEEDED, "too many connections for this user");
			continue;
		}
		memset(&peer, 0, sizeof(peer));
		peer.uid = cred.uid;
		peer.gid = cred.gid;
		peer.pid = cred.pid;
		peer.admin = server_peer_admin(cred.uid, cred.gid);
		peer.in_session = rpc_peer_in_session != NULL && rpc_peer_in_session(&peer) != 0;
		if (peer.in_session)
			log_warnx("connection from pid %d inside a session: its requests will be refused",
				  (int)cred.pid);
		conn_new(fd, &peer);
	}
}

int server_start(void)
{
	ev_accept = event_new(nonod->base, listen_fd, EV_READ | EV_PERSIST, server_on_accept, NULL);
	ev_resume = evtimer_new(nonod->base, server_on_resume, NULL);
	if (ev_accept == NULL || ev_resume == NULL || event_add(ev_accept, NULL) < 0)
		return -ENOMEM;
	return 0;
}

void server_close(void)
{
	if (ev_accept != NULL)
		event_free(ev_accept);
	if (ev_resume != NULL)
		event_free(ev_resume);
	ev_accept = ev_resume = NULL;
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
	if (sock_path != NULL && unlink(sock_path) < 0 && errno != ENOENT)
		log_warn("unlink %s", sock_path);
	free(sock_path);
	sock_path = NULL;
	/* The lock file stays: unlinking it would let two daemons lock different inodes. */
	if (lock_fd >= 0)
		close(lock_fd);
	lock_fd = -1;
	free(lock_path);
	lock_path = NULL;
}
