/*
 * nonod's configuration file: `key = value` lines, `#` comments, strict.
 * docs/nonod.conf.md documents every key. A bad key or value is an error
 * naming the file, line and key; reload parses into a fresh struct and the
 * caller swaps it in only when it is valid.
 */
#ifndef DAEMON_CONFIG_H
#define DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct config {
	char *path;                  /* file it came from, NULL for defaults */
	char *socket_group;          /* system mode: group owning the socket */
	char *admin_group;           /* members are admins (root always is); NULL = none */
	gid_t admin_gid;             /* resolved admin_group, (gid_t)-1 if none */
	gid_t socket_gid;            /* resolved socket_group, (gid_t)-1 if none */
	int log_level;               /* enum log_level */
	size_t max_message;          /* bytes per JSON-RPC message */
	unsigned int max_clients;    /* connections at once */
	unsigned int max_clients_per_uid;
	size_t max_output;           /* per-connection queued output before reading pauses */
	unsigned int request_timeout_ms; /* a started message must complete within this */
	unsigned int shutdown_grace_ms;  /* SIGTERM -> SIGKILL for sessions on stop */
	char *proxy_extra_ca;        /* extra upstream CA bundle for the proxy, or NULL */
	unsigned int proxy_threads;  /* proxy loop threads; 0 (unset): one per CPU, at most 8 */
	char **resolve_override;     /* NULL-terminated "name:port=addr:port" list (tests) */
	unsigned int snapshot_max_entries; /* per snapshot walk (daemon/snap/snap.h) */
	size_t snapshot_max_memory;  /* bytes of names/metadata one snapshot may hold */
};

struct config *config_new_defaults(void);
/*
 * Load path over the defaults. must_exist=false lets a missing default file
 * yield the defaults. On error returns -1 with a one-line message in err
 * ("/etc/nono/nonod.conf:3: max_clients: 'x' is not a number").
 */
int config_load(const char *path, bool must_exist, struct config **out,
		char *err, size_t errlen);
void config_free(struct config *cfg);

#endif
