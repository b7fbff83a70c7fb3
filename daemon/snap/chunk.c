/*
 * FastCDC content-defined chunking (Xia et al., USENIX ATC '16) with
 * normalized chunking, level 2.
 *
 * Parameters (part of the store format: changing them changes every hash of
 * a chunked file, so they never change in place):
 *   min 256 KiB, average 1 MiB, max 4 MiB;
 *   gear hash h = (h << 1) + gear[byte], a 64-bit table from splitmix64
 *   seeded with 0x6e6f6e6f (fixed);
 *   before the average point a cut needs the top 22 bits of h zero
 *   (harder), after it the top 18 bits (easier), which narrows the chunk
 *   size distribution around 1 MiB. The top bits are used because they
 *   depend on the last 64 bytes, the low bits on only the last few.
 * Files shorter than CDC_MIN are one blob; a one-byte edit in a large file
 * changes one or two chunks, so the next snapshot stores about 1-2 MiB.
 *
 * The state is reset at every chunk start, so a chunk that starts in a run
 * of zeros at least CDC_MAX long always has the same length and hash (the
 * zero chunk, cdc_zero()): a hole of a sparse file is stored as that chunk
 * without reading it, and restored by seeking over it (README.md).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "snap-int.h"

#define MASK_S (((1ULL << 22) - 1) << 42)
#define MASK_L (((1ULL << 18) - 1) << 46)

static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static void gear_init(void)
{
	uint64_t x = 0x6e6f6e6fULL;

	for (int i = 0; i < 256; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		gear[i] = z ^ (z >> 31);
	}
}

size_t cdc_cut(const uint8_t *p, size_t n)
{
	size_t i, normal;
	uint64_t h = 0;

	pthread_once(&gear_once, gear_init);
	if (n <= CDC_MIN)
		return n;
	if (n > CDC_MAX)
		n = CDC_MAX;
	normal = n < CDC_AVG ? n : CDC_AVG;
	for (i = CDC_MIN; i < normal; i++) {
		h = (h << 1) + gear[p[i]];
		if ((h & MASK_S) == 0)
			return i + 1;
	}
	for (; i < n; i++) {
		h = (h << 1) + gear[p[i]];
		if ((h & MASK_L) == 0)
			return i + 1;
	}
	return n;
}

/* Never written: the zero bytes the zero chunk is cut from (bss, no RSS
 * until read, and then the kernel's zero page). */
static uint8_t zero_buf[CDC_MAX];
static struct cdc_zero zero;
static atomic_bool zero_ok;
static pthread_mutex_t zero_mu = PTHREAD_MUTEX_INITIALIZER;

int cdc_zero_get(const struct cdc_zero **out)
{
	int rc = 0;

	if (!atomic_load_explicit(&zero_ok, memory_order_acquire)) {
		pthread_mutex_lock(&zero_mu);
		if (!atomic_load_explicit(&zero_ok, memory_order_relaxed)) {
			/* The real chunker over zeros, with as much input as it
			 * ever gets in the middle of a file. */
			zero.len = cdc_cut(zero_buf, CDC_MAX);
			zero.data = zero_buf;
			rc = obj_hash(OBJ_BLOB, zero_buf, zero.len, zero.hash);
			if (rc == 0)
				atomic_store_explicit(&zero_ok, true, memory_order_release);
		}
		pthread_mutex_unlock(&zero_mu);
	}
	if (rc < 0)
		return rc;
	*out = &zero;
	return 0;
}
