/*
 * Shared fixture for the sandbox tests: a temporary tree with a stand-in
 * ~/.ssh/id_rsa, a workspace, a read-only dir and an "outside" dir, plus
 * helpers that compile a spec, fork, sandbox_enter() and run an attack in
 * the child. Attack functions return 0 or an errno; the child exits with it.
 */
#ifndef SANDBOX_TEST_HARNESS_H
#define SANDBOX_TEST_HARNESS_H

#include "sandbox.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define HARNESS_NOBODY 65534

struct harness {
	char root[64];           /* the temp dir */
	char ws[PATH_MAX];       /* WRITE: file, sub/ok, secret/key, link -> id_rsa */
	char home[PATH_MAX];     /* .ssh/id_rsa, .bashrc */
	char secret[PATH_MAX];   /* home/.ssh/id_rsa */
	char outside[PATH_MAX];  /* no rule: target */
	char ro[PATH_MAX];       /* READ: file */
};
extern struct harness H;

/* Unchecked fixture (runs in the runner process, so teardown always runs). */
void harness_setup(void);
void harness_teardown(void);

bool harness_is_root(void);
/* base/rel into one of 8 rotating static buffers. */
char *hp(const char *base, const char *rel);

struct harness_spec {
	struct sandbox_spec spec;
	struct sandbox_path_rule rules[32];
	char paths[32][PATH_MAX];    /* copies: hp() buffers rotate */
	gid_t groups[1];
	uint16_t ports[4];
};

/* System dirs READ, /dev/null WRITE, ws WRITE, ro READ; as root, drop to
 * nobody; NONE network. */
void harness_spec_init(struct harness_spec *hs);
void harness_spec_add(struct harness_spec *hs, const char *path, enum sandbox_access a);

/* Exit code of fn(arg) run in a sandboxed child, 128+N if killed by signal
 * N, 100+step if sandbox_enter failed. Fails the test if compile fails. */
int harness_run(struct harness_spec *hs, int (*fn)(void *), void *arg);
/* The same, with between() called after compiling and before entering:
 * the filesystem changing under a compiled sandbox. */
int harness_run_after(struct harness_spec *hs, void (*between)(void), int (*fn)(void *),
		      void *arg);
/* Control: fn(arg) in a child that only drops to nobody (when root). */
int harness_run_plain(int (*fn)(void *), void *arg);
/* Control without dropping anything (root keeps its capabilities). */
int harness_run_unrestricted(int (*fn)(void *), void *arg);
/* Only the seccomp program of the compiled spec (plus no_new_privs), with
 * root's capabilities kept: attributes a denial to the filter alone. */
int harness_run_seccomp_only(struct harness_spec *hs, int (*fn)(void *), void *arg);
/* execve(argv) inside the sandbox with the compiled envp; stdout captured
 * (NUL-terminated, truncated to outlen-1). Returns like harness_run. */
int harness_exec(struct harness_spec *hs, char *const argv[], char *out, size_t outlen);

/* Standard attack helpers: return 0 on success, else errno. */
int try_read(void *path);
int try_create(void *path);

#endif
