/* sandbox_netns_create(): see netns.h. */
#include "netns.h"
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct netns_job {
	uint16_t port;
	int netns_fd;
	int listen_fd;
	int rc;
	char err[160];
};

static int netns_lo_up(struct netns_job *j)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc = 0;

	if (s < 0)
		return sandbox_err(j->err, sizeof(j->err), -errno, "netns: socket");
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
		rc = sandbox_err(j->err, sizeof(j->err), -errno, "netns: SIOCGIFFLAGS lo");
	} else {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
			rc = sandbox_err(j->err, sizeof(j->err), -errno, "netns: SIOCSIFFLAGS lo up");
	}
	close(s);
	return rc;
}

static int netns_listen(struct netns_job *j)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int one = 1;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (s < 0)
		return sandbox_err(j->err, sizeof(j->err), -errno, "netns: listener socket");
	sin.sin_port = htons(j->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(s, 128) != 0) {
		int rc = -errno;

		close(s);
		return sandbox_err(j->err, sizeof(j->err), rc, "netns: listen 127.0.0.1:%u",
				   j->port);
	}
	j->listen_fd = s;
	return 0;
}

static void *netns_thread(void *arg)
{
	struct netns_job *j = arg;

	if (unshare(CLONE_NEWNET) != 0) {
		j->rc = sandbox_err(j->err, sizeof(j->err), -errno,
				    "netns: unshare(CLONE_NEWNET) (needs CAP_SYS_ADMIN)");
		return NULL;
	}
	j->rc = netns_lo_up(j);
	if (j->rc == 0)
		j->rc = netns_listen(j);
	if (j->rc == 0) {
		j->netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (j->netns_fd < 0) {
			j->rc = sandbox_err(j->err, sizeof(j->err), -errno,
					    "netns: open /proc/thread-self/ns/net");
			close(j->listen_fd);
			j->listen_fd = -1;
		}
	}
	return NULL;
}

int sandbox_netns_create(int *netns_fd, uint16_t port, int *listen_fd, char *errbuf,
			 size_t errlen)
{
	struct netns_job j = { .port = port, .netns_fd = -1, .listen_fd = -1 };
	pthread_t t;
	int rc;

	*netns_fd = -1;
	*listen_fd = -1;
	rc = pthread_create(&t, NULL, netns_thread, &j);
	if (rc != 0)
		return sandbox_err(errbuf, errlen, -rc, "netns: pthread_create");
	pthread_join(t, NULL);
	if (j.rc < 0) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s", j.err);
		return j.rc;
	}
	*netns_fd = j.netns_fd;
	*listen_fd = j.listen_fd;
	return 0;
}
