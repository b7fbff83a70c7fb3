/* A small pool of ready network namespaces with a listener inside each. */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon.h"
#include "log.h"
#include "netns.h"
#include "session-netns.h"

#define NETNS_POOL 2

struct ready_ns {
	int ns, lfd;
	uint16_t port;
};

static struct ready_ns pool[NETNS_POOL];
static int pool_n;
static bool refill_scheduled;

static int netns_make(struct ready_ns *r, char *err, size_t errlen)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int rc = sandbox_netns_create(&r->ns, 0, &r->lfd, err, errlen);

	if (rc < 0)
		return rc;
	if (getsockname(r->lfd, (struct sockaddr *)&sin, &len) < 0) {
		rc = -errno;
		close(r->ns);
		close(r->lfd);
		return rc;
	}
	r->port = ntohs(sin.sin_port);
	return 0;
}

static void netns_refill(evutil_socket_t fd, short what, void *arg)
{
	char err[256];

	refill_scheduled = false;
	while (pool_n < NETNS_POOL && nonod != NULL && !nonod->stopping) {
		if (netns_make(&pool[pool_n], err, sizeof(err)) < 0) {
			log_warnx("network namespace pool: %s", err);
			return;
		}
		pool_n++;
	}
}

int session_netns_take(int *netns_fd, int *listen_fd, uint16_t *port, char *err, size_t errlen)
{
	struct ready_ns r;
	int rc = 0;

	if (pool_n > 0)
		r = pool[--pool_n];
	else if ((rc = netns_make(&r, err, errlen)) < 0)
		return rc;
	*netns_fd = r.ns;
	*listen_fd = r.lfd;
	*port = r.port;
	if (!refill_scheduled &&
	    event_base_once(nonod->base, -1, EV_TIMEOUT, netns_refill, NULL, NULL) == 0)
		refill_scheduled = true;
	return 0;
}

void session_netns_fini(void)
{
	while (pool_n > 0) {
		pool_n--;
		close(pool[pool_n].ns);
		close(pool[pool_n].lfd);
	}
}
