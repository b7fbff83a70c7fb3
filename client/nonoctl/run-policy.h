/*
 * nonoctl run: building the policy sent with session.create from
 * --policy FILE and the --allow-* / --inject flags, validated locally
 * first so that mistakes show FILE:LINE:COL before anything is sent.
 */
#ifndef NONOCTL_RUN_POLICY_H
#define NONOCTL_RUN_POLICY_H

#include <stdbool.h>
#include <stddef.h>

struct json_object;

struct run_policy_args {
	const char *file;        /* --policy, or NULL for the default policy */
	const char **read;       /* --allow-read paths */
	size_t nread;
	const char **write;      /* --allow-write paths */
	size_t nwrite;
	const char **hosts;      /* --allow-host HOST:PORT */
	size_t nhosts;
	const char **inject;     /* --inject HOST:HEADER=TEMPLATE */
	size_t ninject;
	bool snapshot;           /* --snapshot: snapshot.on_start and on_exit */
};

/*
 * Build and validate the policy document. On success *out is a new json
 * object the caller owns (json_object_put) and the result is 0; otherwise
 * a one-line "nonoctl: ..." message was printed and the result is -1.
 */
int run_policy_build(const struct run_policy_args *a, struct json_object **out);

/*
 * Read a policy file (at most POLICY_MAX_TEXT bytes; "-" = stdin) and
 * parse it. 0 with *p set; else prints "FILE:LINE:COL: path: message" (or
 * the I/O error) and returns -1.
 */
struct policy;
int run_policy_load(const char *file, struct policy **p);

#endif
