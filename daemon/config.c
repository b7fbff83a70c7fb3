/* Parsing and validating nonod.conf. */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "nono-protocol.h"
#include "snap/snap.h"

struct config *config_new_defaults(void)
{
	struct config *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->admin_gid = (gid_t)-1;
	c->socket_gid = (gid_t)-1;
	c->log_level = LOG_LEVEL_INFO;
	c->max_message = NONO_MAX_MESSAGE_DEFAULT;
	c->max_clients = 4096;
	c->max_clients_per_uid = 1024;
	c->max_output = 4u * 1024 * 1024;
	c->request_timeout_ms = 30000;
	c->shutdown_grace_ms = 5000;
	c->snapshot_max_entries = SNAP_DEFAULT_MAX_ENTRIES;
	c->snapshot_max_memory = SNAP_DEFAULT_MAX_META;
	c->socket_group = strdup("nono");
	if (c->socket_group == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->socket_group);
	free(c->admin_group);
	free(c->proxy_extra_ca);
	if (c->resolve_override != NULL)
		for (char **p = c->resolve_override; *p != NULL; p++)
			free(*p);
	free(c->resolve_override);
	free(c);
}

/* Value parsers: 0 or -1 with a reason. */
typedef int (*value_fn)(struct config *c, size_t off, const char *v, char *why, size_t wl);

static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (!isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n > max)
		return -1;
	*out = n;
	return 0;
}

static int val_uint(struct config *c, size_t off, const char *v, char *why, size_t wl)
{
	uint64_t n;

	if (parse_u64(v, UINT_MAX, &n) < 0 || n == 0) {
		snprintf(why, wl, "'%s' is not a positive whole number", v);
		return -1;
	}
	*(unsigned int *)((char *)c + off) = (unsigned int)n;
	return 0;
}

/* Sizes: a number with an optional K, M or G suffix (powers of 1024). */
static int val_size(struct config *c, size_t off, const char *v, char *why, size_t wl)
{
	char num[32];
	size_t len = strlen(v), mult = 1;
	uint64_t n;

	if (len > 0 && len < sizeof(num)) {
		switch (v[len - 1]) {
		case 'K': case 'k': mult = 1024; len--; break;
		case 'M': case 'm': mult = 1024 * 1024; len--; break;
		case 'G': case 'g': mult = 1024 * 1024 * 1024; len--; break;
		}
	}
	if (len == 0 || len >= sizeof(num)) {
		snprintf(why, wl, "'%s' is not a size", v);
		return -1;
	}
	memcpy(num, v, len);
	num[len] = '\0';
	if (parse_u64(num, SIZE_MAX / mult, &n) < 0 || n == 0) {
		snprintf(why, wl, "'%s' is not a size", v);
		return -1;
	}
	*(size_t *)((char *)c + off) = (size_t)n * mult;
	return 0;
}

/* Durations: a number with ms, s, m or h (default seconds), stored in ms. */
static int val_duration(struct config *c, size_t off, const char *v, char *why, size_t wl)
{
	char *end;
	unsigned long long n;
	uint64_t mult;

	errno = 0;
	n = isdigit((unsigned char)v[0]) ? strtoull(v, &end, 10) : 0;
	if (!isdigit((unsigned char)v[0]) || errno != 0)
		goto bad;
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (*end == '\0' || strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60000;
	else if (strcmp(end, "h") == 0)
		mult = 3600000;
	else
		goto bad;
	if (n == 0 || n > UINT_MAX / mult)
		goto bad;
	*(unsigned int *)((char *)c + off) = (unsigned int)(n * mult);
	return 0;
bad:
	snprintf(why, wl, "'%s' is not a duration (like 500ms, 30s, 5m)", v);
	return -1;
}

static int val_string(struct config *c, size_t off, const char *v, char *why, size_t wl)
{
	char **slot = (char **)((char *)c + off);
	char *s = strdup(v);

	if (s == NULL) {
		snprintf(why, wl, "out of memory");
		return -1;
	}
	free(*slot);
	*slot = s;
	return 0;
}

static int val_log_level(struct config *c, size_t off, const char *v, char *why, size_t wl)
{
	int l = log_level_parse(v);

	if (l < 0) {
		snprintf(why, wl, "'%s' is not one of error, warn, info, debug", v);
		return -1;
	}
	c->log_level = l;
	return 0;
}

/* resolve_override may repeat: "name:port=addr:port". */
static int val_override(struct config *c, size_t off, const char *v, char *why, size_t wl)
{
	const char *eq = strchr(v, '=');
	size_t n = 0;
	char **list;

	if (eq == NULL || eq == v || strchr(v, ':') == NULL || strrchr(eq, ':') == NULL ||
	    eq[1] == '\0') {
		snprintf(why, wl, "'%s' is not name:port=address:port", v);
		return -1;
	}
	while (c->resolve_override != NULL && c->resolve_override[n] != NULL)
		n++;
	list = realloc(c->resolve_override, (n + 2) * sizeof(*list));
	if (list == NULL || (list[n] = strdup(v)) == NULL) {
		if (list != NULL)
			c->resolve_override = list;
		snprintf(why, wl, "out of memory");
		return -1;
	}
	list[n + 1] = NULL;
	c->resolve_override = list;
	return 0;
}

static const struct config_key {
	const char *name;
	value_fn fn;
	size_t off;
} config_keys[] = {
	{ "admin_group", val_string, offsetof(struct config, admin_group) },
	{ "log_level", val_log_level, 0 },
	{ "max_clients", val_uint, offsetof(struct config, max_clients) },
	{ "max_clients_per_user", val_uint, offsetof(struct config, max_clients_per_uid) },
	{ "max_message_size", val_size, offsetof(struct config, max_message) },
	{ "max_output_buffer", val_size, offsetof(struct config, max_output) },
	{ "proxy_extra_ca", val_string, offsetof(struct config, proxy_extra_ca) },
	{ "proxy_threads", val_uint, offsetof(struct config, proxy_threads) },
	{ "request_timeout", val_duration, offsetof(struct config, request_timeout_ms) },
	{ "resolve_override", val_override, 0 },
	{ "shutdown_grace", val_duration, offsetof(struct config, shutdown_grace_ms) },
	{ "snapshot_max_entries", val_uint, offsetof(struct config, snapshot_max_entries) },
	{ "snapshot_max_memory", val_size, offsetof(struct config, snapshot_max_memory) },
	{ "socket_group", val_string, offsetof(struct config, socket_group) },
};

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int config_line(struct config *c, char *line, char *why, size_t wl)
{
	char *eq = strchr(line, '='), *key, *val;

	if (eq == NULL) {
		snprintf(why, wl, "expected 'key = value'");
		return -1;
	}
	*eq = '\0';
	key = trim(line);
	val = trim(eq + 1);
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++) {
		const struct config_key *k = &config_keys[i];
		char sub[400];

		if (strcmp(k->name, key) != 0)
			continue;
		if (*val == '\0') {
			snprintf(why, wl, "%s: empty value", key);
			return -1;
		}
		if (k->fn(c, k->off, val, sub, sizeof(sub)) < 0) {
			snprintf(why, wl, "%s: %s", key, sub);
			return -1;
		}
		return 0;
	}
	snprintf(why, wl, "unknown key '%.64s'", key);
	return -1;
}

/* Names to gids now, so a typo is a config error rather than a surprise later. */
static int config_resolve(struct config *c, char *why, size_t wl)
{
	struct group *g;

	if (c->admin_group != NULL) {
		if ((g = getgrnam(c->admin_group)) == NULL) {
			snprintf(why, wl, "admin_group: no group named '%s'", c->admin_group);
			return -1;
		}
		c->admin_gid = g->gr_gid;
	}
	if (c->socket_group != NULL && (g = getgrnam(c->socket_group)) != NULL)
		c->socket_gid = g->gr_gid;
	if (c->max_message > NONO_MAX_MESSAGE_CEILING || c->max_message < 4096) {
		snprintf(why, wl, "max_message_size: must be between 4K and %uM",
			 NONO_MAX_MESSAGE_CEILING >> 20);
		return -1;
	}
	if (c->max_output < c->max_message) {
		snprintf(why, wl, "max_output_buffer: must be at least max_message_size");
		return -1;
	}
	return 0;
}

int config_load(const char *path, bool must_exist, struct config **out,
		char *err, size_t errlen)
{
	struct config *c = config_new_defaults();
	char why[512], *line = NULL;
	size_t cap = 0;
	unsigned int lineno = 0;
	FILE *f = NULL;

	*out = NULL;
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (path != NULL) {
		f = fopen(path, "re");
		if (f == NULL && (errno != ENOENT || must_exist)) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
	}
	if (f != NULL) {
		if ((c->path = strdup(path)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		ssize_t n;

		while ((n = getline(&line, &cap, f)) > 0) {
			char *s;

			lineno++;
			if (n > 4096 || strlen(line) != (size_t)n) {
				snprintf(err, errlen, "%s:%u: line too long or contains NUL",
					 path, lineno);
				goto fail;
			}
			s = trim(line);
			if (*s == '\0' || *s == '#')
				continue;
			if (config_line(c, s, why, sizeof(why)) < 0) {
				snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
				goto fail;
			}
		}
		fclose(f);
		f = NULL;
	}
	if (config_resolve(c, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", path != NULL ? path : "defaults", why);
		goto fail;
	}
	free(line);
	*out = c;
	return 0;
fail:
	if (f != NULL)
		fclose(f);
	free(line);
	config_free(c);
	return -1;
}
