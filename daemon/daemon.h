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

const char *nonod_mode_name(enum nonod_mode m);
uint64_t nonod_now_ms(void); /* CLOCK_MONOTONIC, milliseconds */

#endif
