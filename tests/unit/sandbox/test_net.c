/*
 * Network and scope escapes: TCP connect to a port not allowed, bind, UDP,
 * raw, netlink, packet and SCTP sockets, abstract unix sockets and signals
 * across the sandbox boundary, and the strict mode's network namespace.
 * Each attack has a control that succeeds outside the sandbox.
 */
#include "harness.h"
#include "netns.h"
#include "probe.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../check-run.h"

#define RET(x) ((x) >= 0 ? 0 : errno)

static int listen_lo(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(s, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(s, 16), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return s;
}

static int a_connect(void *arg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (s < 0)
		return errno;
	sin.sin_port = htons(*(uint16_t *)arg);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r = RET(connect(s, (struct sockaddr *)&sin, sizeof(sin)));
	close(s);
	return r;
}

static int a_bind(void *arg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	(void)arg;
	if (s < 0)
		return errno;
	sin.sin_port = htons(0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r = RET(bind(s, (struct sockaddr *)&sin, sizeof(sin)));
	close(s);
	return r;
}

/* TCP Fast Open connects from sendto() without Landlock's connect hook. */
static int a_fastopen(void *arg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (s < 0)
		return errno;
	sin.sin_port = htons(*(uint16_t *)arg);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r = RET(sendto(s, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&sin, sizeof(sin)));
	close(s);
	return r;
}

/* listen() on an unbound socket autobinds an ephemeral port on 0.0.0.0. */
static int a_autobind_listen(void *arg)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	(void)arg;
	if (s < 0)
		return errno;
	r = RET(listen(s, 1));
	close(s);
	return r;
}

struct sock_args {
	int domain, type, proto;
};

static int a_socket(void *arg)
{
	struct sock_args *a = arg;
	int s = socket(a->domain, a->type | SOCK_CLOEXEC, a->proto);

	if (s < 0)
		return errno;
	close(s);
	return 0;
}

static void init_proxy(struct harness_spec *hs, uint16_t port)
{
	harness_spec_init(hs);
	hs->spec.net = SANDBOX_NET_PROXY;
	hs->ports[0] = port;
	hs->spec.nports = 1;
}

START_TEST(test_none_mode)
{
	struct harness_spec hs;
	struct sock_args tcp = { AF_INET, SOCK_STREAM, 0 }, unx = { AF_UNIX, SOCK_STREAM, 0 };

	harness_spec_init(&hs);
	ck_assert_int_eq(harness_run_plain(a_socket, &tcp), 0);
	ck_assert_int_eq(harness_run(&hs, a_socket, &tcp), EPERM);
	ck_assert_int_eq(harness_run(&hs, a_socket, &unx), 0);
}
END_TEST

START_TEST(test_tcp_ports)
{
	struct harness_spec hs;
	uint16_t ok_port, bad_port;
	int a = listen_lo(&ok_port), b = listen_lo(&bad_port), conn;

	init_proxy(&hs, ok_port);
	ck_assert_int_eq(harness_run(&hs, a_connect, &ok_port), 0);
	ck_assert_int_eq(harness_run_plain(a_connect, &bad_port), 0);
	ck_assert_int_eq(harness_run(&hs, a_connect, &bad_port), EACCES);
	ck_assert_int_eq(harness_run_plain(a_bind, NULL), 0);
	ck_assert_int_eq(harness_run(&hs, a_bind, NULL), EACCES);
	/* control: Fast Open really connects (the listener sees it) */
	ck_assert_int_eq(harness_run_plain(a_fastopen, &bad_port), 0);
	conn = accept(b, NULL, NULL);
	ck_assert_int_ge(conn, 0);
	close(conn);
	ck_assert_int_eq(harness_run(&hs, a_fastopen, &bad_port), EPERM);
	ck_assert_int_eq(harness_run_plain(a_autobind_listen, NULL), 0);
	ck_assert_int_eq(harness_run(&hs, a_autobind_listen, NULL), EPERM);
	close(a);
	close(b);
}
END_TEST

static const struct sock_args bad_socks[] = {
	{ AF_INET, SOCK_DGRAM, 0 },
	{ AF_INET6, SOCK_DGRAM, 0 },
	{ AF_INET, SOCK_RAW, IPPROTO_ICMP },
	{ AF_INET, SOCK_DGRAM, IPPROTO_ICMP },   /* "ping" socket */
	{ AF_NETLINK, SOCK_RAW, 0 },             /* NETLINK_ROUTE */
	{ AF_PACKET, SOCK_RAW, 0 },
	{ AF_INET, SOCK_STREAM, IPPROTO_SCTP },
	{ AF_INET, SOCK_STREAM, 262 },           /* IPPROTO_MPTCP */
	{ AF_INET, SOCK_SEQPACKET, 0 },
	{ AF_VSOCK, SOCK_STREAM, 0 },
};

START_TEST(test_socket_types)
{
	struct sock_args a = bad_socks[_i];
	struct harness_spec hs;
	int control;

	init_proxy(&hs, 9);
	control = harness_run_unrestricted(a_socket, &a);
	/* the control may lack kernel support (module absent) but is never
	 * EPERM for root (raw and packet sockets need CAP_NET_RAW) */
	if (harness_is_root())
		ck_assert_msg(control != EPERM, "control %d/%d/%d got EPERM", a.domain, a.type,
			      a.proto);
	ck_assert_int_eq(harness_run(&hs, a_socket, &a), EPERM);
}
END_TEST

START_TEST(test_python_udp_and_tcp)
{
	static const char code[] =
		"import socket, sys\n"
		"r = []\n"
		"try:\n"
		"    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 53))\n"
		"    r.append('udp-sent')\n"
		"except PermissionError:\n"
		"    r.append('udp-denied')\n"
		"try:\n"
		"    socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
		"    r.append('tcp-connected')\n"
		"except PermissionError:\n"
		"    r.append('tcp-denied')\n"
		"print(' '.join(r))\n";
	struct harness_spec hs;
	uint16_t ok_port, bad_port;
	int a = listen_lo(&ok_port), b = listen_lo(&bad_port);
	char port[8], out[128];
	char *argv[] = { "/usr/bin/python3", "-S", "-c", (char *)code, port, NULL };

	if (access(argv[0], X_OK) != 0) {
		fprintf(stderr, "not run: test_python_udp_and_tcp (no /usr/bin/python3)\n");
		close(a);
		close(b);
		return;
	}
	init_proxy(&hs, ok_port);
	snprintf(port, sizeof(port), "%u", bad_port);
	ck_assert_int_eq(harness_exec(&hs, argv, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "udp-denied tcp-denied\n");
	snprintf(port, sizeof(port), "%u", ok_port);
	ck_assert_int_eq(harness_exec(&hs, argv, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "udp-denied tcp-connected\n");
	close(a);
	close(b);
}
END_TEST

START_TEST(test_tcp_allowed_types)
{
	struct harness_spec hs;
	struct sock_args s4 = { AF_INET, SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_TCP };
	struct sock_args s6 = { AF_INET6, SOCK_STREAM, 0 };

	init_proxy(&hs, 9);
	ck_assert_int_eq(harness_run(&hs, a_socket, &s4), 0);
	ck_assert_int_eq(harness_run(&hs, a_socket, &s6), 0);
}
END_TEST

static pid_t tag_pid;  /* set before forking, so children name the same socket */

static struct sockaddr_un abstract_addr(const char *tag, socklen_t *len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int n = snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "nono-sbtest-%s-%d", tag,
			 (int)tag_pid);

	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	return sun;
}

static int a_abstract_connect(void *arg)
{
	socklen_t len;
	struct sockaddr_un sun = abstract_addr(arg, &len);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (s < 0)
		return errno;
	r = RET(connect(s, (struct sockaddr *)&sun, len));
	close(s);
	return r;
}

/* Listener created inside the sandbox: reachable from inside. */
static int a_abstract_own(void *arg)
{
	socklen_t len;
	struct sockaddr_un sun = abstract_addr("inner", &len);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	(void)arg;
	if (l < 0 || bind(l, (struct sockaddr *)&sun, len) != 0 || listen(l, 1) != 0)
		return 200;
	return a_abstract_connect("inner");
}

START_TEST(test_abstract_unix_scope)
{
	struct harness_spec hs;
	socklen_t len;
	struct sockaddr_un sun;
	int l;

	tag_pid = getpid();
	sun = abstract_addr("outer", &len);
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sun, len), 0);
	ck_assert_int_eq(listen(l, 8), 0);
	harness_spec_init(&hs);
	ck_assert_int_eq(harness_run_plain(a_abstract_connect, "outer"), 0);
	ck_assert_int_eq(harness_run(&hs, a_abstract_connect, "outer"), EPERM);
	ck_assert_int_eq(harness_run(&hs, a_abstract_own, NULL), 0);
	close(l);
}
END_TEST

static int a_kill_parent(void *arg)
{
	(void)arg;
	return RET(kill(getppid(), 0));
}

static int a_kill_own_child(void *arg)
{
	pid_t p = fork();
	int r;

	(void)arg;
	if (p == 0) {
		pause();
		_exit(0);
	}
	r = RET(kill(p, SIGKILL));
	waitpid(p, NULL, 0);
	return r;
}

START_TEST(test_signal_scope)
{
	struct harness_spec hs;

	harness_spec_init(&hs);
	/* Same uid as the target, so only the scope can refuse. */
	hs.spec.creds.set = false;
	ck_assert_int_eq(harness_run_unrestricted(a_kill_parent, NULL), 0);
	ck_assert_int_eq(harness_run(&hs, a_kill_parent, NULL), EPERM);
	ck_assert_int_eq(harness_run(&hs, a_kill_own_child, NULL), 0);
}
END_TEST

START_TEST(test_netns_strict)
{
	struct harness_spec hs;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	uint16_t ns_port, host_port;
	struct sock_args udp = { AF_INET, SOCK_DGRAM, 0 };
	char err[256];
	int nsfd, lfd, host, conn;

	if (!sandbox_probe()->cap_sys_admin || !sandbox_probe()->netns) {
		fprintf(stderr, "skipped test_netns_strict: no CAP_SYS_ADMIN/netns\n");
		return;
	}
	ck_assert_msg(sandbox_netns_create(&nsfd, 0, &lfd, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	ns_port = ntohs(sin.sin_port);
	host = listen_lo(&host_port);
	harness_spec_init(&hs);
	hs.spec.net = SANDBOX_NET_NETNS;
	hs.spec.netns_fd = nsfd;
	hs.ports[0] = ns_port;
	hs.ports[1] = host_port;  /* Landlock would allow it: the namespace must not */
	hs.spec.nports = 2;
	ck_assert_int_eq(harness_run(&hs, a_connect, &ns_port), 0);
	conn = accept(lfd, NULL, NULL);  /* the connection reached the netns listener */
	ck_assert_int_ge(conn, 0);
	close(conn);
	ck_assert_int_eq(harness_run_plain(a_connect, &host_port), 0);
	ck_assert_int_eq(harness_run(&hs, a_connect, &host_port), ECONNREFUSED);
	ck_assert_int_eq(harness_run(&hs, a_socket, &udp), EPERM);
	close(host);
	close(lfd);
	close(nsfd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sandbox_net");
	TCase *tc = tcase_create("net");

	if (sandbox_probe()->landlock_abi < 6 || !sandbox_probe()->seccomp_filter) {
		fprintf(stderr, "SKIP: needs Landlock ABI >= 6 and seccomp (ABI %d)\n",
			sandbox_probe()->landlock_abi);
		return 77;
	}
	tcase_add_unchecked_fixture(tc, harness_setup, harness_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_none_mode);
	tcase_add_test(tc, test_tcp_ports);
	tcase_add_loop_test(tc, test_socket_types, 0, (int)(sizeof(bad_socks) / sizeof(bad_socks[0])));
	tcase_add_test(tc, test_tcp_allowed_types);
	tcase_add_test(tc, test_python_udp_and_tcp);
	tcase_add_test(tc, test_abstract_unix_scope);
	tcase_add_test(tc, test_signal_scope);
	tcase_add_test(tc, test_netns_strict);
	suite_add_tcase(s, tc);
	return check_run(s);
}
