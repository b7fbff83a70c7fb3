/*
 * A bounded cache of SEALED rows for vault_render (and of Secret Service
 * values, sealed by the vault before they are cached, which saves four bus
 * round trips per render): the proxy renders the
 * same few secrets over and over, and an SQLite point query (with its file
 * locks) costs several times the AES-GCM open. Only ciphertext is cached:
 * every render still unseals into locked memory, and no plaintext outlives
 * the call. Direct-mapped, VAULT_CACHE_SLOTS entries; an entry lives at most
 * VAULT_CACHE_TTL seconds and is dropped by set/delete of its name; rotation
 * and vault_cache_flush() drop everything.
 */
#include <stdlib.h>
#include <string.h>

#include "vault-int.h"

static size_t slot_of(uint32_t owner, const char *name)
{
	uint64_t h = 1469598103934665603ULL;

	for (int i = 0; i < 4; i++)
		h = (h ^ ((owner >> (8 * i)) & 0xff)) * 1099511628211ULL;
	for (const char *p = name; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (size_t)(h & (VAULT_CACHE_SLOTS - 1));
}

static void ent_clear(struct vault_cache_ent *e)
{
	free(e->sealed);
	memset(e, 0, sizeof(*e));
}

struct vault_cache_ent *vault_cache_get(struct vault *v, uint32_t owner, const char *name,
					int64_t now)
{
	struct vault_cache_ent *e;

	if (v->cache == NULL)
		return NULL;
	e = &v->cache[slot_of(owner, name)];
	if (e->sealed == NULL || e->owner != owner || strcmp(e->name, name) != 0)
		return NULL;
	if (now < e->fetched || now - e->fetched >= VAULT_CACHE_TTL) {
		ent_clear(e);
		return NULL;
	}
	return e;
}

struct vault_cache_ent *vault_cache_put(struct vault *v, uint32_t owner, const char *name,
					const void *sealed, size_t len, int64_t last_used,
					int64_t now, bool from_sss)
{
	struct vault_cache_ent *e;
	unsigned char *copy;

	if (v->cache == NULL || strlen(name) > VAULT_NAME_MAX || len == 0)
		return NULL;
	copy = malloc(len);
	if (copy == NULL)
		return NULL;
	memcpy(copy, sealed, len);
	e = &v->cache[slot_of(owner, name)];
	ent_clear(e);
	e->owner = owner;
	strcpy(e->name, name);
	e->sealed = copy;
	e->len = len;
	e->fetched = now;
	e->last_used = last_used;
	e->from_sss = from_sss;
	return e;
}

void vault_cache_forget(struct vault *v, uint32_t owner, const char *name)
{
	struct vault_cache_ent *e;

	if (v->cache == NULL)
		return;
	e = &v->cache[slot_of(owner, name)];
	if (e->sealed != NULL && e->owner == owner && strcmp(e->name, name) == 0)
		ent_clear(e);
}

void vault_cache_flush_unlocked(struct vault *v)
{
	if (v->cache == NULL)
		return;
	for (size_t i = 0; i < VAULT_CACHE_SLOTS; i++)
		ent_clear(&v->cache[i]);
}
