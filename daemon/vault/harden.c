/* Process hardening for a daemon that holds secrets: no core dumps, no ptrace by peers. */
#include <errno.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "log.h"
#include "vault.h"

int vault_harden_process(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) < 0) {
		int e = errno;
		log_error("setrlimit RLIMIT_CORE 0");
		return -e;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		int e = errno;
		log_error("prctl PR_SET_DUMPABLE 0");
		return -e;
	}
	return 0;
}
