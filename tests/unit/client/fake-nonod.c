/*
 * A one-connection fake nonod for the nonoctl tests: answers daemon.hello,
 * then daemon.status according to MODE, then exits.
 *   usage: fake-nonod SOCKET ok|error|garbage|hostile|hang
 * (hang: never answers daemon.status)
 * Binds SOCKET, serves one client, unlinks SOCKET.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char hello[] =
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":1,\"daemon\":\"0.0.1-fake\","
	"\"features\":[],\"limits\":{\"max_message\":65536,\"max_fds\":16},"
	"\"peer\":{\"uid\":0,\"gid\":0,\"admin\":true}}}\n";

static const char status_ok[] =
	"{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"version\":\"0.0.1-fake\",\"protocol\":1,"
	"\"mode\":\"user\",\"pid\":4242,\"uptime_ms\":3723000,\"socket\":\"/fake.sock\","
	"\"state_dir\":\"/fake/state\",\"clients\":2,\"sandbox\":{\"landlock_abi\":7,"
	"\"seccomp\":true,\"namespaces\":{\"net\":false,\"ids\":[1,2]}}}}\n";

static const char status_error[] =
	"{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32000,\"message\":\"Permission denied\","
	"\"data\":{\"kind\":\"permission_denied\",\"detail\":\"admins only\"}}}\n";

/* Terminal escape sequences in every string the human output shows. */
static const char status_hostile[] =
	"{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"version\":\"\\u001b]0;pwned\\u0007\","
	"\"mode\":\"user\\u001b[2J\",\"socket\":\"/s\",\"state_dir\":\"/d\\r\",\"pid\":1,"
	"\"sandbox\":{\"k\\u001b\":\"v\\u001b\"}}}\n";

static int read_line(int fd)
{
	char ch;

	for (;;) {
		if (read(fd, &ch, 1) != 1)
			return -1;
		if (ch == '\n')
			return 0;
	}
}

static void put(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len > 0) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *reply;
	int lfd, fd;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sun.sun_path))
		return 2;
	if (strcmp(argv[2], "ok") == 0)
		reply = status_ok;
	else if (strcmp(argv[2], "error") == 0)
		reply = status_error;
	else if (strcmp(argv[2], "garbage") == 0)
		reply = "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}} junk\n";
	else if (strcmp(argv[2], "hostile") == 0)
		reply = status_hostile;
	else if (strcmp(argv[2], "hang") == 0)
		reply = "";
	else
		return 2;
	strcpy(sun.sun_path, argv[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(lfd, 1) < 0) {
		perror("fake-nonod");
		return 1;
	}
	fd = accept(lfd, NULL, NULL);
	if (fd >= 0 && read_line(fd) == 0) {
		put(fd, hello);
		if (read_line(fd) == 0)
			put(fd, reply);
		read_line(fd); /* until the client hangs up */
	}
	unlink(argv[1]);
	return 0;
}
