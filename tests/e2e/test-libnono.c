/*
 * libnono against a real nonod (NONOD from the environment), started with
 * fork/exec on a temporary socket and state dir by an unchecked fixture,
 * so it is stopped and the directory removed even when a test fails:
 * connect, status, blocking and async calls with a poll() dispatch loop,
 * session.create in fds mode and its session.exited notification, error
 * objects for bad params, a daemon killed mid-call, and the in-process
 * sandbox (nono_sandbox_apply) in forked children with control cases.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <unistd.h>
#include <json-c/json.h>

#include "nono.h"
#include "../unit/check-run.h"

static char dir[] = "/tmp/nono-libnono-XXXXXX";
static char sock[100], ws[256], outside[256];
static pid_t daemon_pid = -1;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static bool sock_ready(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void daemon_start(void)
{
	const char *nonod = getenv("NONOD");
	char state[300], conf[300];
	int st;

	if (mkdtemp(dir) == NULL)
		abort();
	chmod(dir, 0755);
	snprintf(sock, sizeof(sock), "%s/run/nonod.sock", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(conf, sizeof(conf), "%s/nonod.conf", dir);
	snprintf(ws, sizeof(ws), "%s/ws", dir);
	snprintf(outside, sizeof(outside), "%s/outside", dir);
	mkdir(ws, 0755);
	mkdir(outside, 0755);
	close(open(conf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	daemon_pid = fork();
	if (daemon_pid == 0) {
		int log = open("/dev/null", O_WRONLY);

		dup2(log, 1);
		dup2(log, 2);
		setsid();
		execl(nonod, nonod, "--user", "--socket", sock, "--state-dir", state,
		      "--config", conf, (char *)NULL);
		_exit(127);
	}
	/* Wait until it listens (or died); no deadline: meson's timeout is it. */
	while (!sock_ready()) {
		if (waitpid(daemon_pid, &st, WNOHANG) == daemon_pid) {
			fprintf(stderr, "nonod exited early (status 0x%x)\n", st);
			daemon_pid = -1;
			return;
		}
		usleep(10000);
	}
}

static void daemon_stop(void)
{
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		for (int i = 0; i < 500 && waitpid(daemon_pid, NULL, WNOHANG) == 0; i++)
			usleep(10000);
		kill(-daemon_pid, SIGKILL);
		kill(daemon_pid, SIGKILL);
		waitpid(daemon_pid, NULL, 0);
		daemon_pid = -1;
	}
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	strcpy(dir, "/tmp/nono-libnono-XXXXXX");
}

static nono_client *connect_ok(void)
{
	nono_client *c = NULL;
	nono_error *err = NULL;

	ck_assert_int_gt(daemon_pid, 0);
	ck_assert_msg(nono_client_connect(sock, "test-libnono/1", &c, &err) == 0, "connect: %s",
		      err ? nono_error_detail(err) : "?");
	nono_client_set_timeout(c, 60000);
	return c;
}

START_TEST(connect_and_status)
{
	nono_client *c = connect_ok();
	nono_status *st = NULL;
	nono_error *err = NULL;

	ck_assert_int_eq(nono_client_protocol(c), 1);
	ck_assert_str_eq(nono_client_socket_path(c), sock);
	ck_assert_int_eq(nono_client_status(c, &st, &err), 0);
	ck_assert_int_eq(nono_status_pid(st), daemon_pid);
	ck_assert_str_eq(nono_status_mode(st), "user");
	ck_assert(strlen(nono_status_version(st)) > 0);
	nono_status_free(st);
	nono_client_free(c);
}
END_TEST

START_TEST(blocking_call)
{
	nono_client *c = connect_ok();
	char *res = NULL;
	struct json_object *o;

	ck_assert_int_eq(nono_client_call(c, "daemon.status", NULL, &res, NULL), 0);
	o = json_tokener_parse(res);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "version", NULL));
	json_object_put(o);
	free(res);
	nono_client_free(c);
}
END_TEST

static void count_reply(nono_client *c, const char *result, const nono_error *err, int *fds,
			size_t nfds, void *ud)
{
	(void)c, (void)fds, (void)nfds;
	ck_assert_ptr_null(err);
	ck_assert_ptr_nonnull(strstr(result, "\"version\""));
	(*(int *)ud)++;
}

static void pump(nono_client *c, const int *done, int want)
{
	struct pollfd p = { .fd = nono_client_get_fd(c), .events = POLLIN };

	while (*done < want) {
		if (nono_client_pending(c) == 0)
			ck_assert_int_ge(poll(&p, 1, -1), 0);
		ck_assert_int_ge(nono_client_dispatch(c), 0);
	}
}

START_TEST(async_calls_poll_loop)
{
	nono_client *c = connect_ok();
	int done = 0;

	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(nono_client_call_async(c, "daemon.status", "{}", NULL, 0, count_reply,
							&done, NULL), 0);
	pump(c, &done, 5);
	ck_assert_int_eq(done, 5);
	nono_client_free(c);
}
END_TEST

struct exited {
	char id[64];
	int done;
	int code;
};

static void on_note(nono_client *c, const char *method, const char *params, int *fds,
		    size_t nfds, void *ud)
{
	struct exited *x = ud;
	struct json_object *o = json_tokener_parse(params), *v, *st;

	(void)c, (void)fds, (void)nfds;
	if (strcmp(method, "session.exited") != 0 || o == NULL)
		goto out;
	if (!json_object_object_get_ex(o, "id", &v) || strcmp(json_object_get_string(v), x->id) != 0)
		goto out;
	ck_assert(json_object_object_get_ex(o, "status", &st));
	ck_assert(json_object_object_get_ex(st, "code", &v));
	x->code = json_object_get_int(v);
	x->done = 1;
out:
	json_object_put(o);
}

START_TEST(session_fds_and_exited_note)
{
	nono_client *c = connect_ok();
	struct exited x = { .code = -1 };
	nono_error *err = NULL;
	int p[2], fds[3], n;
	char *res = NULL, params[1024], buf[64];
	struct json_object *o, *id;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fds[1] = p[1];
	fds[2] = p[1];
	snprintf(params, sizeof(params),
		 "{\"argv\":[\"sh\",\"-c\",\"echo hi-from-worker; exit 3\"],\"cwd\":\"%s\","
		 "\"environ\":[\"PATH=/usr/bin:/bin\"],\"stdio\":{\"mode\":\"fds\",\"fds\":[0,1,2]}}", ws);
	nono_client_set_notify_cb(c, on_note, &x);
	ck_assert_msg(nono_client_call_fds(c, "session.create", params, fds, 3, &res, NULL, NULL,
					   &err) == 0, "create: %s", err ? nono_error_detail(err) : "");
	close(fds[0]);
	close(p[1]);
	o = json_tokener_parse(res);
	ck_assert(json_object_object_get_ex(o, "id", &id));
	snprintf(x.id, sizeof(x.id), "%s", json_object_get_string(id));
	json_object_put(o);
	free(res);
	pump(c, &x.done, 1);
	ck_assert_int_eq(x.code, 3);
	n = (int)read(p[0], buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "hi-from-worker\n");
	close(p[0]);
	nono_client_free(c);
}
END_TEST

START_TEST(error_objects)
{
	nono_client *c = connect_ok();
	nono_error *err = NULL;
	char *res = NULL;

	/* Missing required param: the daemon names it. */
	ck_assert_int_eq(nono_client_call(c, "session.get", "{}", &res, &err), NONO_E_INVALID_PARAMS);
	ck_assert(nono_error_is_remote(err));
	ck_assert_str_eq(nono_error_field(err), "id");
	nono_error_free(err);
	err = NULL;
	/* Wrong type. */
	ck_assert_int_eq(nono_client_call(c, "session.get", "{\"id\":42}", &res, &err),
			 NONO_E_INVALID_PARAMS);
	nono_error_free(err);
	err = NULL;
	/* Unknown session. */
	ck_assert_int_eq(nono_client_call(c, "session.get", "{\"id\":\"s-0000000000000000\"}", &res,
					  &err), NONO_E_NOT_FOUND);
	ck_assert_str_eq(nono_error_kind(err), "not_found");
	nono_error_free(err);
	err = NULL;
	/* Params that are not an object never leave the library. */
	ck_assert_int_eq(nono_client_call(c, "session.get", "[1]", &res, &err), NONO_E_INVALID_PARAMS);
	ck_assert(!nono_error_is_remote(err));
	ck_assert_str_eq(nono_error_kind(err), "invalid_argument");
	nono_error_free(err);
	err = NULL;
	/* The connection is still good. */
	ck_assert_int_eq(nono_client_call(c, "daemon.status", NULL, NULL, NULL), 0);
	ck_assert_ptr_null(res);
	nono_client_free(c);
}
END_TEST

static void dead_reply(nono_client *c, const char *result, const nono_error *err, int *fds,
		       size_t nfds, void *ud)
{
	(void)c, (void)fds, (void)nfds;
	ck_assert_ptr_null(result);
	ck_assert_ptr_nonnull(err);
	ck_assert_str_eq(nono_error_kind(err), "connection");
	(*(int *)ud)++;
}

START_TEST(daemon_killed_mid_call)
{
	nono_client *c = connect_ok();
	nono_error *err = NULL;
	char *res = NULL, params[512];
	struct json_object *o, *v;
	struct pollfd p;
	int done = 0, fds[3], r;
	pid_t worker;

	fds[0] = fds[1] = fds[2] = open("/dev/null", O_RDWR | O_CLOEXEC);
	snprintf(params, sizeof(params),
		 "{\"argv\":[\"sleep\",\"60\"],\"cwd\":\"%s\",\"environ\":[\"PATH=/usr/bin:/bin\"],"
		 "\"stdio\":{\"mode\":\"fds\",\"fds\":[0,1,2]}}", ws);
	ck_assert_int_eq(nono_client_call_fds(c, "session.create", params, fds, 3, &res, NULL, NULL,
					      &err), 0);
	close(fds[0]);
	o = json_tokener_parse(res);
	ck_assert(json_object_object_get_ex(o, "pid", &v));
	worker = (pid_t)json_object_get_int(v);
	ck_assert(json_object_object_get_ex(o, "id", &v));
	snprintf(params, sizeof(params), "{\"id\":\"%s\"}", json_object_get_string(v));
	json_object_put(o);
	free(res);
	/* A call in flight (the worker sleeps) when the daemon dies. */
	ck_assert_int_eq(nono_client_call_async(c, "session.wait", params, NULL, 0, dead_reply, &done,
						NULL), 0);
	kill(daemon_pid, SIGKILL);
	waitpid(daemon_pid, NULL, 0);
	daemon_pid = -1;
	kill(-worker, SIGKILL);
	p.fd = nono_client_get_fd(c);
	p.events = POLLIN;
	while (done == 0) {
		if (nono_client_pending(c) == 0)
			ck_assert_int_ge(poll(&p, 1, -1), 0);
		r = nono_client_dispatch(c);
		if (r < 0)
			ck_assert_int_eq(r, NONO_E_BACKEND_UNAVAILABLE);
	}
	/* Dead for good: later calls fail at once, they do not hang. */
	ck_assert_int_eq(nono_client_call(c, "daemon.status", NULL, NULL, &err),
			 NONO_E_BACKEND_UNAVAILABLE);
	ck_assert_str_eq(nono_error_kind(err), "connection");
	nono_error_free(err);
	nono_client_free(c);
	/* And a new connection is refused, not hung. */
	err = NULL;
	ck_assert_int_eq(nono_client_connect(sock, NULL, &c, &err), NONO_E_BACKEND_UNAVAILABLE);
	nono_error_free(err);
}
END_TEST

/* ---- in-process sandbox, each in a forked child ---------------------- */

static bool can_read(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Run fn in a child; its exit status (0 = all checks passed). */
static int in_child(int (*fn)(void))
{
	int st;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn());
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static int child_apply(void)
{
	char standin[300], mine[300];
	nono_policy *p = nono_policy_new();
	nono_error *err = NULL;
	char *report;

	snprintf(standin, sizeof(standin), "%s/shadow", outside);
	snprintf(mine, sizeof(mine), "%s/mine", ws);
	if (chdir(ws) < 0 || !can_read(standin) || !can_read(mine))
		return 10; /* control: both readable before */
	if (p == NULL || nono_policy_allow_write(p, "$WORKSPACE") < 0)
		return 11;
	if (nono_sandbox_apply(p, &err) < 0) {
		fprintf(stderr, "apply: %s\n", nono_error_detail(err));
		return 12;
	}
	nono_policy_free(p);
	if (open(standin, O_RDONLY) >= 0 || errno != EACCES)
		return 13; /* the attack: read outside the policy */
	if (!can_read(mine))
		return 14; /* control: the workspace still works */
	if (open("/etc/shadow", O_RDONLY) >= 0)
		return 15;
	report = nono_sandbox_report_json();
	if (report == NULL || strstr(report, "\"landlock.fs\"") == NULL)
		return 16;
	free(report);
	return 0;
}

START_TEST(sandbox_apply_denies_outside)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/shadow", outside);
	write_file(path, "root:$6$stand-in:0:0\n");
	snprintf(path, sizeof(path), "%s/mine", ws);
	write_file(path, "workspace file\n");
	ck_assert_int_eq(in_child(child_apply), 0);
}
END_TEST

static int child_deny(void)
{
	nono_policy *p = nono_policy_new();
	nono_error *err = NULL;

	if (chdir(ws) < 0 || !can_read("private/key") || !can_read("mine"))
		return 30; /* control */
	if (nono_policy_allow_write(p, "$WORKSPACE") < 0 ||
	    nono_policy_deny(p, "$WORKSPACE/private") < 0)
		return 31;
	if (nono_sandbox_apply(p, &err) < 0) {
		fprintf(stderr, "apply: %s\n", nono_error_detail(err));
		return 32;
	}
	nono_policy_free(p);
	if (open("private/key", O_RDONLY) >= 0 || errno != EACCES)
		return 33; /* carved out of the allowed workspace */
	if (!can_read("mine"))
		return 34; /* the rest of the workspace still works */
	return 0;
}

START_TEST(sandbox_deny_inside_workspace)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/private", ws);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/private/key", ws);
	write_file(path, "-----BEGIN KEY-----\n");
	snprintf(path, sizeof(path), "%s/mine", ws);
	write_file(path, "workspace file\n");
	ck_assert_int_eq(in_child(child_deny), 0);
}
END_TEST

static int listen_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

static int port_ok, port_denied;

static int try_connect(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	r = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 ? 0 : -errno;
	close(fd);
	return r;
}

static int child_ports(void)
{
	nono_policy *p = nono_policy_new();
	nono_error *err = NULL;

	if (try_connect(port_ok) != 0 || try_connect(port_denied) != 0)
		return 40; /* control: both reachable before */
	if (nono_policy_allow_tcp_port(p, (uint16_t)port_ok) < 0)
		return 41;
	if (nono_sandbox_apply(p, &err) < 0) {
		fprintf(stderr, "apply: %s\n", nono_error_detail(err));
		return 42;
	}
	nono_policy_free(p);
	if (try_connect(port_denied) != -EACCES)
		return 43; /* the attack: a port the policy does not name */
	if (try_connect(port_ok) != 0)
		return 44; /* control: the granted port */
	return 0;
}

START_TEST(sandbox_tcp_ports)
{
	port_ok = listen_port();
	port_denied = listen_port();
	ck_assert_int_eq(in_child(child_ports), 0);
}
END_TEST

static void *idle_thread(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

static int child_threads(void)
{
	char standin[300];
	nono_policy *p = nono_policy_new();
	nono_error *err = NULL;
	pthread_t t;

	snprintf(standin, sizeof(standin), "%s/shadow", outside);
	if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
		return 20;
	if (nono_sandbox_apply(p, &err) == 0)
		return 21;
	if (nono_error_code(err) != NONO_E_SANDBOX_UNAVAILABLE ||
	    strstr(nono_error_detail(err), "threads") == NULL)
		return 22;
	nono_error_free(err);
	nono_policy_free(p);
	return can_read(standin) ? 0 : 23; /* nothing was applied */
}

START_TEST(sandbox_refuses_threads)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/shadow", outside);
	write_file(path, "stand-in\n");
	ck_assert_int_eq(in_child(child_threads), 0);
}
END_TEST

START_TEST(policy_text_errors)
{
	static const char bad[] = "version: 1\nfilesystem:\n  raed: [/usr]\n";
	static const char net[] = "{\"version\":1,\"network\":{\"allow\":[\"a.com:443\"]}}";
	nono_policy *p = NULL;
	nono_error *err = NULL;
	char *json;

	ck_assert_int_eq(nono_policy_from_text(bad, strlen(bad), &p, &err), NONO_E_POLICY_INVALID);
	ck_assert_ptr_null(p);
	ck_assert_str_eq(nono_error_field(err), "filesystem.raed");
	ck_assert_msg(strncmp(nono_error_detail(err), "3:", 2) == 0, "%s", nono_error_detail(err));
	nono_error_free(err);
	err = NULL;
	ck_assert_int_eq(nono_policy_from_text("{\"version\":1}", 13, &p, &err), 0);
	ck_assert_int_eq(nono_policy_allow_read(p, NULL), NONO_E_INVALID_PARAMS);
	ck_assert_int_eq(nono_policy_allow_tcp_port(p, 0), NONO_E_INVALID_PARAMS);
	ck_assert_int_eq(nono_policy_allow_read(p, "relative/path"), 0);
	/* The relative path is caught when the whole policy is checked. */
	ck_assert_int_eq(nono_sandbox_check(p, NULL, &err), NONO_E_POLICY_INVALID);
	nono_error_free(err);
	json = nono_policy_to_json(p);
	ck_assert_ptr_nonnull(strstr(json, "relative/path"));
	free(json);
	nono_policy_free(p);
	/* Network rules need the daemon's proxy: refused in-process. */
	ck_assert_int_eq(nono_policy_from_text(net, strlen(net), &p, &err), 0);
	ck_assert_int_eq(nono_sandbox_check(p, NULL, &err), NONO_E_POLICY_INVALID);
	ck_assert_str_eq(nono_error_field(err), "");
	nono_error_free(err);
	nono_policy_free(p);
	nono_policy_free(NULL);
}
END_TEST

static bool have_landlock(void)
{
	return syscall(SYS_landlock_create_ruleset, NULL, 0, 1u) > 0;
}

int main(void)
{
	Suite *s = suite_create("libnono-e2e");
	TCase *live = tcase_create("live"), *dead = tcase_create("dead");
	TCase *sb = tcase_create("sandbox");

	if (getenv("NONOD") == NULL || access(getenv("NONOD"), X_OK) != 0) {
		printf("SKIP: NONOD does not name the built nonod\n");
		return 77;
	}
	tcase_add_unchecked_fixture(live, daemon_start, daemon_stop);
	tcase_set_timeout(live, 60);
	tcase_add_test(live, connect_and_status);
	tcase_add_test(live, blocking_call);
	tcase_add_test(live, async_calls_poll_loop);
	tcase_add_test(live, session_fds_and_exited_note);
	tcase_add_test(live, error_objects);
	suite_add_tcase(s, live);
	tcase_add_unchecked_fixture(dead, daemon_start, daemon_stop);
	tcase_set_timeout(dead, 60);
	tcase_add_test(dead, daemon_killed_mid_call);
	suite_add_tcase(s, dead);
	tcase_add_unchecked_fixture(sb, daemon_start, daemon_stop); /* for the dirs */
	tcase_add_test(sb, policy_text_errors);
	if (have_landlock()) {
		tcase_add_test(sb, sandbox_apply_denies_outside);
		tcase_add_test(sb, sandbox_refuses_threads);
		tcase_add_test(sb, sandbox_deny_inside_workspace);
		tcase_add_test(sb, sandbox_tcp_ports);
	} else {
		printf("note: no Landlock in this kernel: sandbox_apply tests not run\n");
	}
	suite_add_tcase(s, sb);
	return check_run(s);
}
