/* A hostile FUSE filesystem served over raw /dev/fuse (see fuse-liar.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuse-liar.h"

enum {
	INO_ROOT = FUSE_ROOT_ID, INO_HONEST, INO_LIAR, INO_ENDLESS, INO_LONGDIR,
	INO_A = 10, INO_SMALL, INO_BIG, INO_LONG,
	INO_ENDLESS0 = 1000,    /* + n for endless/e<n> */
};

struct node {
	uint64_t ino, parent;
	const char *name;
	bool dir;
	uint64_t reported, real;
	bool direct;            /* FOPEN_DIRECT_IO */
	uint32_t max_read;      /* bytes per read reply, 0 = as asked */
};

static char longname[FL_LONGNAME_LEN + 1];

static const struct node nodes[] = {
	{ INO_ROOT, INO_ROOT, "", true, 0, 0, false, 0 },
	{ INO_HONEST, INO_ROOT, "honest", true, 0, 0, false, 0 },
	{ INO_LIAR, INO_ROOT, "liar", true, 0, 0, false, 0 },
	{ INO_ENDLESS, INO_ROOT, "endless", true, 0, 0, false, 0 },
	{ INO_LONGDIR, INO_ROOT, "longname", true, 0, 0, false, 0 },
	{ INO_A, INO_HONEST, "a.txt", false, 100, 100, false, 0 },
	{ INO_SMALL, INO_LIAR, "small.txt", false, FL_SMALL_REPORTED, FL_SMALL_REAL, true,
	  FL_SMALL_REPORTED },
	{ INO_BIG, INO_LIAR, "big.bin", false, FL_BIG_REPORTED, FL_BIG_REAL, true, 0 },
	{ INO_LONG, INO_LONGDIR, longname, false, 1, 1, false, 0 },
};
#define NNODES (sizeof(nodes) / sizeof(nodes[0]))

static struct node endless_node(uint64_t n)
{
	return (struct node){ INO_ENDLESS0 + n, INO_ENDLESS, "", false, 0, 0, false, 0 };
}

static bool find(uint64_t ino, struct node *out)
{
	if (ino >= INO_ENDLESS0) {
		*out = endless_node(ino - INO_ENDLESS0);
		return true;
	}
	for (size_t i = 0; i < NNODES; i++)
		if (nodes[i].ino == ino) {
			*out = nodes[i];
			return true;
		}
	return false;
}

static void fill_attr(const struct node *n, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = n->ino;
	a->size = n->dir ? 0 : n->reported;
	a->mode = n->dir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
	a->nlink = n->dir ? 2 : 1;
	a->mtime = a->ctime = a->atime = 1000000000; /* fixed: nothing ever "changes" */
	a->blksize = 4096;
}

static void reply(int fd, uint64_t unique, int error, const void *data, size_t len)
{
	struct fuse_out_header h = { .len = (uint32_t)(sizeof(h) + len), .error = error,
				     .unique = unique };
	char buf[sizeof(h) + 128 * 1024];

	if (len > sizeof(buf) - sizeof(h))
		len = 0;
	memcpy(buf, &h, sizeof(h));
	if (len > 0)
		memcpy(buf + sizeof(h), data, len);
	if (write(fd, buf, sizeof(h) + len) < 0 && errno != ENOENT)
		_exit(3);
}

static void do_lookup(int fd, const struct fuse_in_header *in, const char *name)
{
	struct fuse_entry_out eo = { 0 };
	struct node n = { 0 };
	bool ok = false;

	if (in->nodeid == INO_ENDLESS && name[0] == 'e') {
		char *end;
		unsigned long long k = strtoull(name + 1, &end, 10);
		ok = *end == '\0';
		n = endless_node(k);
	}
	for (size_t i = 0; !ok && i < NNODES; i++)
		if (nodes[i].parent == in->nodeid && nodes[i].ino != INO_ROOT &&
		    strcmp(nodes[i].name, name) == 0) {
			n = nodes[i];
			ok = true;
		}
	if (!ok) {
		reply(fd, in->unique, -ENOENT, NULL, 0);
		return;
	}
	eo.nodeid = n.ino;
	fill_attr(&n, &eo.attr);
	reply(fd, in->unique, 0, &eo, sizeof(eo));
}

/* One dirent at buf[*off]; false when it does not fit in size. */
static bool put_dirent(char *buf, size_t *off, size_t size, uint64_t ino, uint64_t next,
		       const char *name, bool dir)
{
	size_t nl = strlen(name), len = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + nl);
	struct fuse_dirent *d = (struct fuse_dirent *)(buf + *off);

	if (*off + len > size)
		return false;
	memset(d, 0, len);
	d->ino = ino;
	d->off = next;
	d->namelen = (uint32_t)nl;
	d->type = dir ? DT_DIR : DT_REG;
	memcpy(d->name, name, nl);
	*off += len;
	return true;
}

static void do_readdir(int fd, const struct fuse_in_header *in, const struct fuse_read_in *rd)
{
	static char buf[64 * 1024];
	size_t size = rd->size < sizeof(buf) ? rd->size : sizeof(buf), off = 0;

	if (in->nodeid == INO_ENDLESS) {
		/* Never ends: every offset has more. */
		for (uint64_t k = rd->offset;; k++) {
			char name[32];
			snprintf(name, sizeof(name), "e%llu", (unsigned long long)k);
			if (!put_dirent(buf, &off, size, INO_ENDLESS0 + k, k + 1, name, false))
				break;
		}
	} else {
		uint64_t k = 0;
		for (size_t i = 0; i < NNODES; i++) {
			if (nodes[i].parent != in->nodeid || nodes[i].ino == INO_ROOT)
				continue;
			if (k++ < rd->offset)
				continue;
			if (!put_dirent(buf, &off, size, nodes[i].ino, k, nodes[i].name, nodes[i].dir))
				break;
		}
	}
	reply(fd, in->unique, 0, buf, off);
}

static void do_read(int fd, const struct fuse_in_header *in, const struct fuse_read_in *rd)
{
	static uint8_t buf[128 * 1024];
	struct node n;
	uint64_t len = rd->size;

	if (!find(in->nodeid, &n) || n.dir) {
		reply(fd, in->unique, -EIO, NULL, 0);
		return;
	}
	if (rd->offset >= n.real)
		len = 0;
	else if (len > n.real - rd->offset)
		len = n.real - rd->offset;
	if (n.max_read && len > n.max_read)
		len = n.max_read;
	if (len > sizeof(buf))
		len = sizeof(buf);
	for (uint64_t i = 0; i < len; i++)
		buf[i] = n.ino == INO_A ? 'a' : (uint8_t)((rd->offset + i) * 7 + 3);
	reply(fd, in->unique, 0, buf, len);
}

static void serve(int fd)
{
	static char buf[FUSE_MIN_READ_BUFFER + 1024 * 1024];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == ENOENT))
			continue;
		if (n < (ssize_t)sizeof(struct fuse_in_header))
			_exit(0); /* unmounted (ENODEV) */
		const struct fuse_in_header *in = (const void *)buf;
		const void *arg = buf + sizeof(*in);
		struct node nd;

		switch (in->opcode) {
		case FUSE_INIT: {
			struct fuse_init_out io = { .major = FUSE_KERNEL_VERSION,
						    .minor = FUSE_KERNEL_MINOR_VERSION,
						    .max_write = 64 * 1024, .time_gran = 1,
						    .max_background = 16,
						    .congestion_threshold = 12 };
			reply(fd, in->unique, 0, &io, sizeof(io));
			break;
		}
		case FUSE_LOOKUP:
			do_lookup(fd, in, arg);
			break;
		case FUSE_GETATTR: {
			struct fuse_attr_out ao = { 0 };
			if (!find(in->nodeid, &nd)) {
				reply(fd, in->unique, -ENOENT, NULL, 0);
				break;
			}
			fill_attr(&nd, &ao.attr);
			reply(fd, in->unique, 0, &ao, sizeof(ao));
			break;
		}
		case FUSE_OPEN:
		case FUSE_OPENDIR: {
			struct fuse_open_out oo = { 0 };
			if (find(in->nodeid, &nd) && nd.direct)
				oo.open_flags = FOPEN_DIRECT_IO;
			reply(fd, in->unique, 0, &oo, sizeof(oo));
			break;
		}
		case FUSE_READDIR:
			do_readdir(fd, in, arg);
			break;
		case FUSE_READ:
			do_read(fd, in, arg);
			break;
		case FUSE_RELEASE:
		case FUSE_RELEASEDIR:
		case FUSE_FLUSH:
		case FUSE_DESTROY:
			reply(fd, in->unique, 0, NULL, 0);
			break;
		case FUSE_FORGET:
		case FUSE_BATCH_FORGET:
		case FUSE_INTERRUPT:
			break; /* no reply */
		default:
			reply(fd, in->unique, -ENOSYS, NULL, 0);
			break;
		}
	}
}

bool fuse_liar_start(struct fuse_liar *fl, const char *mnt, char *why, size_t whylen)
{
	char opts[128];
	int fd;

	memset(fl, 0, sizeof(*fl));
	fl->server = -1;
	memset(longname, 'L', FL_LONGNAME_LEN);
	longname[FL_LONGNAME_LEN] = '\0';
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		snprintf(why, whylen, "no private mount namespace: %s", strerror(errno));
		return false;
	}
	if ((fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)) < 0) {
		snprintf(why, whylen, "/dev/fuse: %s", strerror(errno));
		return false;
	}
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%u,group_id=%u,allow_other",
		 fd, (unsigned)getuid(), (unsigned)getgid());
	if (mount("nonotest", mnt, "fuse.nonotest", MS_NOSUID | MS_NODEV, opts) < 0) {
		snprintf(why, whylen, "mount fuse: %s", strerror(errno));
		close(fd);
		return false;
	}
	fl->server = fork();
	if (fl->server == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		serve(fd);
		_exit(0);
	}
	close(fd); /* the server alone holds the connection: if it dies, requests fail */
	if (fl->server < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		umount2(mnt, MNT_DETACH);
		return false;
	}
	fl->mnt = strdup(mnt);
	return true;
}

void fuse_liar_stop(struct fuse_liar *fl)
{
	if (fl->mnt != NULL)
		umount2(fl->mnt, MNT_DETACH);
	if (fl->server > 0) {
		kill(fl->server, SIGKILL);
		waitpid(fl->server, NULL, 0);
	}
	free(fl->mnt);
	memset(fl, 0, sizeof(*fl));
}
