/*
 * secbuf: memory for secret bytes (secret values, the master key, rendered
 * header values).
 *
 * Each secbuf is its own anonymous mapping: mlock()ed so it is never
 * swapped, MADV_DONTDUMP so it never lands in a core file, MADV_WIPEONFORK
 * so a forked child does not inherit the bytes, and explicit_bzero()ed
 * before munmap() on free. A guard byte after the last usable byte is kept
 * at NUL, so secbuf_cstr() is always a C string.
 *
 * If mlock() fails (RLIMIT_MEMLOCK) the buffer is still created; the failure
 * is logged once and counted (secbuf_unlocked_count()) so daemon.status can
 * report that memory locking is not enforced.
 *
 * Ownership: secbuf_new() returns an owned buffer; secbuf_free() wipes and
 * releases it (NULL is a no-op). Pointers from secbuf_data() borrow.
 */
#ifndef VAULT_SECBUF_H
#define VAULT_SECBUF_H

#include <stdbool.h>
#include <stddef.h>

struct secbuf;

/* A buffer able to hold cap bytes (cap >= 1). 0 or -ENOMEM / -EINVAL. */
int secbuf_new(size_t cap, struct secbuf **out);
void secbuf_free(struct secbuf *sb);

unsigned char *secbuf_data(struct secbuf *sb);
const unsigned char *secbuf_cdata(const struct secbuf *sb);
/* The contents as a NUL-terminated string (contents may hold NULs too). */
const char *secbuf_cstr(const struct secbuf *sb);
size_t secbuf_len(const struct secbuf *sb);
size_t secbuf_cap(const struct secbuf *sb);
bool secbuf_locked(const struct secbuf *sb);

/* Set the length after writing into secbuf_data(); -ENOSPC if len > cap. */
int secbuf_set_len(struct secbuf *sb, size_t len);
/* Append n bytes; -ENOSPC (contents unchanged) if they do not fit. */
int secbuf_append(struct secbuf *sb, const void *p, size_t n);
/* Wipe the contents and set the length to 0. */
void secbuf_clear(struct secbuf *sb);

/* How many secbufs could not be mlock()ed since start. */
unsigned long secbuf_unlocked_count(void);

#endif
