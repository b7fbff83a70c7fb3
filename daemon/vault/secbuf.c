/* Locked, non-dumpable, wiped-on-free buffers for secret bytes. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "secbuf.h"

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#ifndef MADV_DONTDUMP
#define MADV_DONTDUMP 16
#endif

/* The header lives at the start of the mapping; data follows it. */
struct secbuf {
	size_t map_len;
	size_t cap;
	size_t len;
	bool locked;
	unsigned char data[];
};

static unsigned long unlocked_count;

unsigned long secbuf_unlocked_count(void)
{
	return unlocked_count;
}

int secbuf_new(size_t cap, struct secbuf **out)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t need, map_len;
	struct secbuf *sb;
	void *p;

	*out = NULL;
	if (cap == 0 || page <= 0 || cap > SIZE_MAX / 2)
		return -EINVAL;
	need = sizeof(*sb) + cap + 1; /* + the NUL guard */
	map_len = (need + (size_t)page - 1) & ~((size_t)page - 1);
	p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_warn("mmap %zu bytes", map_len);
		return -ENOMEM;
	}
	sb = p;
	/* Not fatal on older kernels: the mapping is still private and wiped on free. */
	(void)madvise(p, map_len, MADV_DONTDUMP);
	(void)madvise(p, map_len, MADV_WIPEONFORK);
	sb->map_len = map_len;
	sb->cap = cap;
	sb->len = 0;
	sb->locked = mlock(p, map_len) == 0;
	if (!sb->locked) {
		if (unlocked_count++ == 0)
			log_warn("mlock (secret memory may be swapped; raise RLIMIT_MEMLOCK)");
	}
	*out = sb;
	return 0;
}

void secbuf_free(struct secbuf *sb)
{
	size_t map_len;

	if (sb == NULL)
		return;
	map_len = sb->map_len;
	explicit_bzero(sb, map_len);
	munlock(sb, map_len);
	munmap(sb, map_len);
}

unsigned char *secbuf_data(struct secbuf *sb)
{
	return sb->data;
}

const unsigned char *secbuf_cdata(const struct secbuf *sb)
{
	return sb->data;
}

const char *secbuf_cstr(const struct secbuf *sb)
{
	return (const char *)sb->data;
}

size_t secbuf_len(const struct secbuf *sb)
{
	return sb->len;
}

size_t secbuf_cap(const struct secbuf *sb)
{
	return sb->cap;
}

bool secbuf_locked(const struct secbuf *sb)
{
	return sb->locked;
}

int secbuf_set_len(struct secbuf *sb, size_t len)
{
	if (len > sb->cap)
		return -ENOSPC;
	if (len < sb->len)
		explicit_bzero(sb->data + len, sb->len - len);
	sb->len = len;
	sb->data[len] = '\0';
	return 0;
}

int secbuf_append(struct secbuf *sb, const void *p, size_t n)
{
	if (n > sb->cap - sb->len)
		return -ENOSPC;
	memcpy(sb->data + sb->len, p, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
	return 0;
}

void secbuf_clear(struct secbuf *sb)
{
	explicit_bzero(sb->data, sb->len);
	sb->len = 0;
	sb->data[0] = '\0';
}
