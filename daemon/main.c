/* nonod: argument parsing and path defaults; everything else is in the core library. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <systemd/sd-daemon.h>

#include "build-config.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "nono-protocol.h"
#include "vault.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nonod [--user | --system] [--socket PATH] [--state-dir DIR]\n"
		"             [--config FILE] [--check-config] [-v] [--version]\n"
		"\n"
		"Runs in the foreground. Without --user/--system: system mode for root,\n"
		"user mode otherwise.\n"
		"  --socket PATH     control socket (also $NONO_SOCKET); default\n"
		"                    %s (system) or $XDG_RUNTIME_DIR/%s (user)\n"
		"  --state-dir DIR   database, keys and snapshots; default /var/lib/nono\n"
		"                    (system) or $XDG_STATE_HOME/nono (user)\n"
		"  --config FILE     default /etc/nono/nonod.conf (system) or\n"
		"                    $XDG_CONFIG_HOME/nono/nonod.conf (user); see nonod.conf(5)\n"
		"  --check-config    validate the configuration and exit (0 valid, 78 invalid)\n"
		"  -v, --verbose     log debug messages\n",
		NONO_SYSTEM_SOCKET, NONO_USER_SOCKET_REL);
}

/* $VAR if set and absolute, else $HOME/fallback. */
static char *xdg_dir(const char *var, const char *fallback, const char *leaf)
{
	const char *v = getenv(var), *home = getenv("HOME");
	char *out = NULL;

	if (v != NULL && v[0] == '/') {
		if (asprintf(&out, "%s/%s", v, leaf) < 0)
			return NULL;
		return out;
	}
	if (home == NULL || home[0] != '/') {
		struct passwd *pw = getpwuid(getuid());
		home = pw != NULL ? pw->pw_dir : NULL;
	}
	if (home == NULL)
		return NULL;
	if (asprintf(&out, "%s/%s/%s", home, fallback, leaf) < 0)
		return NULL;
	return out;
}

/* systemd's *_DIRECTORY variables name the dirs it made for us. */
static char *systemd_dir(const char *var)
{
	const char *v = getenv(var);

	if (v == NULL || v[0] != '/' || strchr(v, ':') != NULL)
		return NULL;
	return strdup(v);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "user", no_argument, NULL, 'U' },
		{ "system", no_argument, NULL, 'S' },
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct nonod_options o = { .log_level = -1 };
	char *socket_path = NULL, *state_dir = NULL, *config_path = NULL, *rt;
	bool check_only = false, want_user = false, want_system = false;
	int c, rc, verbose = 0;

	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'U': want_user = true; break;
		case 'S': want_system = true; break;
		case 's': free(socket_path); socket_path = strdup(optarg); break;
		case 'd': free(state_dir); state_dir = strdup(optarg); break;
		case 'c': free(config_path); config_path = strdup(optarg); o.config_explicit = true; break;
		case 'C': check_only = true; break;
		case 'v': verbose++; break;
		case 'V': printf("nonod %s (protocol %d)\n", NONO_VERSION, NONO_PROTOCOL_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nonod: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (want_user && want_system) {
		fprintf(stderr, "nonod: --user and --system exclude each other\n");
		return 2;
	}
	o.mode = want_system || (!want_user && geteuid() == 0) ? NONOD_MODE_SYSTEM : NONOD_MODE_USER;
	if (o.mode == NONOD_MODE_SYSTEM && geteuid() != 0) {
		fprintf(stderr, "nonod: --system needs root\n");
		return 2;
	}
	if (verbose > 0)
		o.log_level = LOG_LEVEL_DEBUG;
	log_init("nonod", verbose > 0 ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	/* nonod words its own errors; OpenSSL's string tables only cost memory. */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, NULL);
	OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_SSL_STRINGS, NULL);
	/* Before any secret is in memory: no core dumps, no same-uid ptrace. */
	if (vault_harden_process() < 0)
		return 1;

	if (config_path == NULL) {
		char *d = systemd_dir("CONFIGURATION_DIRECTORY");
		if (d != NULL) {
			if (asprintf(&config_path, "%s/nonod.conf", d) < 0)
				config_path = NULL;
			free(d);
		} else if (o.mode == NONOD_MODE_SYSTEM) {
			config_path = strdup(NONO_SYSCONFDIR "/nono/nonod.conf");
		} else {
			config_path = xdg_dir("XDG_CONFIG_HOME", ".config", "nono/nonod.conf");
		}
	}
	o.config_path = config_path;
	if (check_only) {
		struct config *cfg = NULL;
		char err[1024];

		if (config_load(config_path, o.config_explicit, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "nonod: invalid configuration: %s\n", err);
			free(config_path);
			return 78; /* EX_CONFIG */
		}
		printf("%s: configuration is valid\n", cfg->path != NULL ? cfg->path : "(defaults)");
		config_free(cfg);
		free(config_path);
		return 0;
	}

	if (socket_path == NULL && getenv(NONO_SOCKET_ENV) != NULL && getenv(NONO_SOCKET_ENV)[0] != '\0')
		socket_path = strdup(getenv(NONO_SOCKET_ENV));
	if (socket_path == NULL) {
		if (o.mode == NONOD_MODE_SYSTEM) {
			socket_path = strdup(NONO_SYSTEM_SOCKET);
		} else if ((rt = getenv("XDG_RUNTIME_DIR")) != NULL && rt[0] == '/') {
			if (asprintf(&socket_path, "%s/%s", rt, NONO_USER_SOCKET_REL) < 0)
				socket_path = NULL;
		} else if (sd_listen_fds(0) > 0) {
			socket_path = strdup(""); /* the service manager's socket is used */
		} else {
			log_errorx("XDG_RUNTIME_DIR is not set: pass --socket PATH (or set NONO_SOCKET)");
			return 1;
		}
	}
	if (state_dir == NULL)
		state_dir = systemd_dir("STATE_DIRECTORY");
	if (state_dir == NULL)
		state_dir = o.mode == NONOD_MODE_SYSTEM ? strdup("/var/lib/nono")
						      : xdg_dir("XDG_STATE_HOME", ".local/state", "nono");
	if (socket_path == NULL || state_dir == NULL) {
		log_errorx("cannot determine the socket path or state directory");
		return 1;
	}
	if (state_dir[0] != '/') {
		char *abs = realpath(".", NULL), *joined = NULL;
		if (abs == NULL || asprintf(&joined, "%s/%s", abs, state_dir) < 0) {
			log_errorx("cannot make the state directory absolute");
			return 1;
		}
		free(abs);
		free(state_dir);
		state_dir = joined;
	}
	o.socket_path = socket_path;
	o.state_dir = state_dir;

	rc = nonod_init(&o);
	if (rc == 0)
		rc = nonod_run();
	else
		rc = rc == -EINVAL ? 78 : 1;
	nonod_fini();
	free(socket_path);
	free(state_dir);
	free(config_path);
	return rc;
}
