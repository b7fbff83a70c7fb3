/*
 * A hostile TLS 1.3 client for the proxy tests: CONNECT through the proxy,
 * handshake with the interception leaf (not verified: this is the
 * attacker), send one request, then send KeyUpdate(update_requested)
 * records for SECONDS, reading and discarding whatever comes back so the
 * proxy is never blocked on writing to it. Each KeyUpdate makes the proxy
 * decrypt a record and answer with one of its own: a stream of work that
 * carries no application bytes.
 *
 *   tls-keyupdate PORT TOKEN SECONDS
 *
 * Prints the number of KeyUpdates sent. Exit 0, or 1 on a setup failure.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

static const char req[] = "GET /sse HTTP/1.1\r\nHost: api.test\r\n\r\n";

int
main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char buf[65536], plain[300], b64[420];
	long sent = 0;
	int fd, n;

	if (argc != 4)
		return 1;
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 1;
	n = snprintf(plain, sizeof(plain), "nono:%s", argv[2]);
	EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)plain, n);
	n = snprintf(buf, sizeof(buf), "CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n"
		     "Proxy-Authorization: Basic %s\r\n\r\n", b64);
	if (write(fd, buf, (size_t)n) != n || read(fd, buf, 39) != 39 ||
	    memcmp(buf, "HTTP/1.1 200", 12) != 0)
		return 1;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL *ssl = SSL_new(ctx);
	SSL_set_tlsext_host_name(ssl, "api.test");
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1 || SSL_write(ssl, req, sizeof(req) - 1) <= 0)
		return 1;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	time_t end = time(NULL) + atoi(argv[3]);
	while (time(NULL) < end) {
		while (recv(fd, buf, sizeof(buf), 0) > 0)
			; /* discard: the proxy's replies must not block it */
		if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1) {
			ERR_print_errors_fp(stderr);
			break;
		}
		int r = SSL_do_handshake(ssl);
		if (r != 1) {
			int e = SSL_get_error(ssl, r);
			if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
				fprintf(stderr, "tls-keyupdate: SSL error %d\n", e);
				ERR_print_errors_fp(stderr);
				break;
			}
			usleep(1000);
			continue;
		}
		sent++;
	}
	printf("%ld\n", sent);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return 0;
}
