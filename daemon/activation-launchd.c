/*
 * launchd socket activation (macOS only). On other systems the function
 * exists and returns -ENOTSUP so callers and the build stay uniform.
 */
#include <errno.h>
#include <stdlib.h>

#include "activation-launchd.h"

#ifdef __APPLE__
#include <fcntl.h>
#include <launch.h>
#include <unistd.h>

#include "log.h"

int activation_launchd_fds(const char *name, int **fds, size_t *n)
{
	int *got = NULL;
	size_t cnt = 0;
	int r;

	*fds = NULL;
	*n = 0;
	if (name == NULL || name[0] == '\0')
		return -EINVAL;

	/* Returns 0 or an errno value (not -1/errno). */
	r = launch_activate_socket(name, &got, &cnt);
	if (r != 0) {
		if (r != ESRCH && r != ENOENT) {
			errno = r;
			log_warn("%s: launch_activate_socket %s", __func__, name);
		}
		return -r;
	}
	if (cnt == 0) {
		free(got);
		return -ENOENT;
	}
	for (size_t i = 0; i < cnt; i++) {
		if (fcntl(got[i], F_SETFD, FD_CLOEXEC) < 0) {
			r = -errno;
			log_warn("%s: fcntl FD_CLOEXEC", __func__);
			for (size_t j = 0; j < cnt; j++)
				close(got[j]);
			free(got);
			return r;
		}
	}
	*fds = got; /* ownership of the array and the fds moves to the caller */
	*n = cnt;
	return 0;
}

#else

int activation_launchd_fds(const char *name, int **fds, size_t *n)
{
	(void)name;
	*fds = NULL;
	*n = 0;
	return -ENOTSUP;
}

#endif
