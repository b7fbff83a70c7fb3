/*
 * sandbox-self: libnono's in-process sandbox. Applies a policy that
 * allows only the current directory (plus the read-only base profile),
 * then shows that /etc/shadow and $HOME/.ssh cannot be read while the
 * current directory still can. No daemon needed.
 *
 *   nono-example-sandbox-self [FILE-IN-CWD]
 *
 * Exit status: 0 when every check came out as expected, 1 otherwise,
 * 77 when the kernel has no Landlock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nono.h>

/* Try to open path for reading; print the outcome; true if it opened. */
static int try_read(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		printf("  open %-40s -> %s\n", path, strerror(errno));
		return 0;
	}
	printf("  open %-40s -> ok\n", path);
	close(fd);
	return 1;
}

int main(int argc, char **argv)
{
	const char *home = getenv("HOME");
	const char *probe = argc > 1 ? argv[1] : ".";
	char ssh[4096];
	nono_policy *p = nono_policy_new();
	nono_error *err = NULL;
	char *report;
	int bad = 0;

	if (p == NULL || nono_policy_allow_write(p, "$WORKSPACE") < 0) {
		fputs("out of memory\n", stderr);
		return 1;
	}
	snprintf(ssh, sizeof(ssh), "%s/.ssh", home != NULL ? home : "/root");
	puts("before:");
	try_read("/etc/shadow");
	try_read(ssh);
	if (nono_sandbox_apply(p, &err) < 0) {
		fprintf(stderr, "nono_sandbox_apply: %s (%s)\n", nono_error_detail(err),
			nono_error_kind(err));
		bad = nono_error_code(err) == NONO_E_SANDBOX_UNAVAILABLE ? 77 : 1;
		nono_error_free(err);
		nono_policy_free(p);
		return bad;
	}
	nono_policy_free(p);
	report = nono_sandbox_report_json();
	printf("enforced: %s\n", report != NULL ? report : "(no report)");
	free(report);
	puts("after:");
	bad |= try_read("/etc/shadow");
	bad |= try_read(ssh);
	bad |= !try_read(probe); /* control: the workspace still works */
	puts(bad ? "UNEXPECTED" : "as expected");
	return bad ? 1 : 0;
}
