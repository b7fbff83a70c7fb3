/*
 * The one nonod instance: event loop, configuration, database, and the
 * subsystems. Method handlers reach shared state through `nonod`.
 */
#ifndef DAEMON_DAEMON_H
#define DAEMON_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>

struct event_base;
struct config;
struct vault;
struct snap_store;
struct proxy;
struct sessions;
struct proxy_listener;

enum nonod_mode {
	NONOD_MODE_USER = 0,
	NONOD_MODE_SYSTEM,
};

struct nonod {
	struct event_base *base;
	struct config *cfg;          /* current config; replaced whole on SIGHUP */
	enum nonod_mode mode;
	char *state_dir;             /* absolute, 0700, owned by the daemon's uid */
	char *runtime_dir;           /* where the socket lives */
	char *socket_path;
	sqlite3 *db;                 /* state_dir/nonod.db */
	uint64_t start_ms;           /* CLOCK_MONOTONIC at start */
	unsigned int nclients;
	bool stopping;

	/* Subsystems (NULL until their part is enabled). */
	struct vault *vault;
	struct snap_store *snap;
	struct proxy *proxy;
	struct sessions *sessions;
};

extern struct nonod *nonod;

struct nonod_options {
	enum nonod_mode mode;
	const char *socket_path;  /* resolved: flag, $NONO_SOCKET, or mode default */
	const char *state_dir;    /* resolved */
	const char *config_path;  /* NULL = none */
	bool config_explicit;     /* --config given: the file must exist */
	int log_level;            /* -1 = from config */
};

/* Set up state dir, database, subsystems and the socket. 0 or -errno (logged). */
int nonod_init(const struct nonod_options *opts);
/* Run the loop until SIGTERM/SIGINT; returns the exit status. */
int nonod_run(void);
void nonod_fini(void);

const char *nonod_mode_name(enum nonod_mode m);
/* Why the vault could not be opened, or NULL. */
const char *nonod_vault_error(void);
/* The proxy, started on first use; NULL if it cannot start (logged). */
struct proxy *nonod_proxy(void);
/* The kernel's sandbox features, for daemon.status (new object). */
struct json_object *daemon_sandbox_json(void);
uint64_t nonod_now_ms(void); /* CLOCK_MONOTONIC, milliseconds */

#endif
