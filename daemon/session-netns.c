/*
 * A small pool of ready network namespaces with a listener inside each,
 * kept full by a thread of its own: making one (unshare, lo up, a listener:
 * the kernel's setup_net) costs about as much as the rest of a session
 * start, so it happens beside the event loop, not in it. The loop only pops
 * from the pool; when the pool is empty (a burst, or the maker failed) it
 * makes one itself, so a failure is reported to the session that needed it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "netns.h"
#include "session-netns.h"
#include "thread.h"

#define NETNS_POOL 4

struct ready_ns {
	int ns, lfd;
	uint16_t port;
};

/* All below guarded by lock; the maker thread runs from the first take to fini. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct ready_ns pool[NETNS_POOL];
static int pool_n;
static bool maker_running, maker_stop, maker_failed;
static pthread_t maker;

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

/* The maker: refill to NETNS_POOL, sleep until a take. It never logs (the
 * log belongs to the loop thread); after a failure it stops, and the loop
 * makes its own namespaces, reporting why they fail. */
static void *netns_maker(void *arg)
{
	char err[256];

	pthread_mutex_lock(&lock);
	while (!maker_stop) {
		struct ready_ns r;
		int rc;

		if (pool_n >= NETNS_POOL) {
			pthread_cond_wait(&wake, &lock);
			continue;
		}
		pthread_mutex_unlock(&lock);
		rc = netns_make(&r, err, sizeof(err));
		pthread_mutex_lock(&lock);
		if (rc < 0) {
			maker_failed = true;
			break;
		}
		if (maker_stop || pool_n >= NETNS_POOL) {
			close(r.ns);
			close(r.lfd);
			continue;
		}
		pool[pool_n++] = r;
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

int session_netns_take(int *netns_fd, int *listen_fd, uint16_t *port, char *err, size_t errlen)
{
	struct ready_ns r;
	bool have = false;
	int rc;

	pthread_mutex_lock(&lock);
	if (pool_n > 0) {
		r = pool[--pool_n];
		have = true;
	}
	if (!maker_running && !maker_failed) {
		maker_running = thread_start(&maker, false, netns_maker, NULL) == 0;
		if (!maker_running) {
			maker_failed = true;
			log_warnx("network namespace pool: no maker thread; made on demand");
		}
	}
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	if (!have && (rc = netns_make(&r, err, errlen)) < 0)
		return rc;
	*netns_fd = r.ns;
	*listen_fd = r.lfd;
	*port = r.port;
	return 0;
}

void session_netns_fini(void)
{
	pthread_mutex_lock(&lock);
	maker_stop = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	if (maker_running) {
		pthread_join(maker, NULL);
		maker_running = false;
	}
	while (pool_n > 0) {
		pool_n--;
		close(pool[pool_n].ns);
		close(pool[pool_n].lfd);
	}
}
