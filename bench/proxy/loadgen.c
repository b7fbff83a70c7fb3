/*
 * loadgen: a small HTTP/1.1 load generator for the proxy benchmark, because
 * wrk cannot speak CONNECT. One thread per connection, blocking sockets,
 * OpenSSL client; keep-alive or one request per connection; optional CONNECT
 * through an authenticated proxy; per-request latency -> p50/p99.
 *
 *   loadgen -c CONNS -d SECONDS -P PORT -s SNI/HOST [-x PROXYPORT -t TOKEN]
 *           [-a CAFILE] [-n] [-k plain] [-u PATH] [-B]
 *
 *   -C  CONNECT target (default SNI-host:PORT)
 *   -n  new connection (CONNECT + TLS handshake) for every request
 *   -k  plain HTTP (no TLS): for reverse routes
 *   -B  bulk: one request, read the body to the end, report bytes/s
 *   -R  raw tunnel: after CONNECT read bytes until EOF (no TLS, no HTTP)
 *   -S PORT  serve: send 1 GiB of zeros to each connection on 127.0.0.1:PORT
 *            from memory; the -R reader discards with MSG_TRUNC (no copy out),
 *            so the ends run at several GB/s and the proxy is what is measured
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

static int conns = 4, secs = 5, port, pport;
static const char *host = "api.test", *token, *cafile, *path = "/";
static const char *target; /* CONNECT target; default host:port */
static bool newconn, plain, bulk, raw;
static SSL_CTX *ctx;
static volatile int stop;

struct stats {
	uint64_t *lat;
	size_t n, cap;
	uint64_t bytes;
	uint64_t errors;
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct io {
	int fd;
	SSL *ssl;
};

static int
io_write(struct io *io, const void *b, size_t n)
{
	if (io->ssl)
		return SSL_write(io->ssl, b, (int)n) == (int)n ? 0 : -1;
	return send(io->fd, b, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static ssize_t
io_read(struct io *io, void *b, size_t n)
{
	if (io->ssl) {
		int r = SSL_read(io->ssl, b, (int)n);
		return r > 0 ? r : -1;
	}
	ssize_t r = recv(io->fd, b, n, 0);
	return r > 0 ? r : -1;
}

static void
io_close(struct io *io)
{
	if (io->ssl)
		SSL_free(io->ssl);
	if (io->fd >= 0)
		close(io->fd);
	io->ssl = NULL;
	io->fd = -1;
}

static int
io_open(struct io *io)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int one = 1;
	char buf[4096];

	io->ssl = NULL;
	io->fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(io->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)(pport ? pport : port));
	if (connect(io->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	if (pport) {
		unsigned char cred[300], b64[420];
		int cl = snprintf((char *)cred, sizeof(cred), "nono:%s", token);
		EVP_EncodeBlock(b64, cred, cl);
		char t[300];
		if (target)
			snprintf(t, sizeof(t), "%s", target);
		else
			snprintf(t, sizeof(t), "%s:%d", host, port);
		int n = snprintf(buf, sizeof(buf),
				 "CONNECT %s HTTP/1.1\r\nHost: %s\r\n"
				 "Proxy-Authorization: Basic %s\r\n\r\n",
				 t, t, b64);
		if (send(io->fd, buf, (size_t)n, 0) != n)
			return -1;
		/* peek, then consume exactly the reply head: in raw mode the
		 * upstream may already be sending right behind it */
		char *end;
		for (;;) {
			ssize_t r = recv(io->fd, buf, sizeof(buf) - 1, MSG_PEEK);
			if (r <= 0)
				return -1;
			buf[r] = '\0';
			if ((end = strstr(buf, "\r\n\r\n")) != NULL)
				break;
			if (r >= (ssize_t)sizeof(buf) - 1)
				return -1;
			usleep(100);
		}
		size_t hl = (size_t)(end + 4 - buf);
		if (recv(io->fd, buf, hl, MSG_WAITALL) != (ssize_t)hl)
			return -1;
		buf[hl] = '\0';
		if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
			return -1;
	}
	if (plain || raw)
		return 0;
	io->ssl = SSL_new(ctx);
	SSL_set_fd(io->ssl, io->fd);
	SSL_set_tlsext_host_name(io->ssl, host);
	SSL_set1_host(io->ssl, host);
	return SSL_connect(io->ssl) == 1 ? 0 : -1;
}

/* One request/response; returns body bytes or -1. */
static long long
roundtrip(struct io *io, const char *req, size_t reqlen, char *buf, size_t cap)
{
	if (io_write(io, req, reqlen) < 0)
		return -1;
	size_t got = 0;
	char *end = NULL;
	while (!end) {
		ssize_t r = io_read(io, buf + got, cap - got - 1);
		if (r < 0)
			return -1;
		got += (size_t)r;
		buf[got] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end && got >= cap - 1)
			return -1;
	}
	char *cl = strcasestr(buf, "\r\ncontent-length:");
	if (cl == NULL || cl > end)
		return -1;
	long long want = atoll(cl + 17);
	long long have = (long long)(got - (size_t)(end + 4 - buf));
	while (have < want) {
		ssize_t r = io_read(io, buf, cap);
		if (r < 0)
			return -1;
		have += r;
	}
	return want;
}

static void
record(struct stats *s, uint64_t v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 65536;
		s->lat = realloc(s->lat, s->cap * sizeof(*s->lat));
	}
	s->lat[s->n++] = v;
}

static void *
worker(void *arg)
{
	struct stats *s = arg;
	struct io io = {.fd = -1};
	char req[1024], *buf = malloc(1 << 20);
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
			 "Authorization: Bearer PHANTOM\r\nUser-Agent: loadgen\r\n\r\n",
			 path, host);

	if (raw) {
		if (io_open(&io) == 0) {
			ssize_t r;
			/* MSG_TRUNC: TCP discards the bytes without copying them out */
			while ((r = recv(io.fd, buf, 1 << 20, MSG_TRUNC)) > 0)
				s->bytes += (uint64_t)r;
		}
		io_close(&io);
		free(buf);
		return NULL;
	}
	while (!stop) {
		uint64_t t0 = now_us();
		if (io.fd < 0 && io_open(&io) < 0) {
			s->errors++;
			io_close(&io);
			usleep(1000);
			continue;
		}
		long long b = roundtrip(&io, req, (size_t)n, buf, 1 << 20);
		if (b < 0) {
			s->errors++;
			io_close(&io);
			continue;
		}
		s->bytes += (uint64_t)b;
		record(s, now_us() - t0);
		if (newconn || bulk)
			io_close(&io);
		if (bulk)
			break;
	}
	io_close(&io);
	free(buf);
	return NULL;
}

static void *
serve_one(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static char zero[1 << 20];

	for (int i = 0; i < 1024; i++)
		if (send(fd, zero, sizeof(zero), MSG_NOSIGNAL) != (ssize_t)sizeof(zero))
			break;
	close(fd);
	return NULL;
}

static int
serve(int sport)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)sport);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
		return 1;
	for (;;) {
		int c = accept(fd, NULL, NULL);
		pthread_t t;
		if (c < 0)
			continue;
		pthread_create(&t, NULL, serve_one, (void *)(intptr_t)c);
		pthread_detach(t);
	}
}

static int
cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	int o;

	while ((o = getopt(argc, argv, "c:d:P:s:x:t:a:u:C:S:nkBR")) != -1) {
		switch (o) {
		case 'c': conns = atoi(optarg); break;
		case 'd': secs = atoi(optarg); break;
		case 'P': port = atoi(optarg); break;
		case 's': host = optarg; break;
		case 'x': pport = atoi(optarg); break;
		case 't': token = optarg; break;
		case 'a': cafile = optarg; break;
		case 'u': path = optarg; break;
		case 'C': target = optarg; break;
		case 'S': return serve(atoi(optarg));
		case 'n': newconn = true; break;
		case 'k': plain = true; break;
		case 'B': bulk = true; break;
		case 'R': raw = true; break;
		default: return 2;
		}
	}
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cafile && SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1)
		return 2;
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

	pthread_t th[256];
	struct stats st[256] = {0};
	if (conns > 256)
		conns = 256;
	uint64_t t0 = now_us();
	for (int i = 0; i < conns; i++)
		pthread_create(&th[i], NULL, worker, &st[i]);
	if (!bulk && !raw) {
		sleep((unsigned)secs);
		stop = 1;
	}
	struct stats all = {0};
	for (int i = 0; i < conns; i++) {
		pthread_join(th[i], NULL);
		for (size_t j = 0; j < st[i].n; j++)
			record(&all, st[i].lat[j]);
		all.bytes += st[i].bytes;
		all.errors += st[i].errors;
		free(st[i].lat);
	}
	double el = (double)(now_us() - t0) / 1e6;
	if (bulk || raw) {
		printf("bytes=%llu seconds=%.3f MB/s=%.1f errors=%llu\n",
		       (unsigned long long)all.bytes, el, (double)all.bytes / el / 1e6,
		       (unsigned long long)all.errors);
		return all.bytes ? 0 : 1;
	}
	qsort(all.lat, all.n, sizeof(*all.lat), cmp);
	printf("requests=%zu rps=%.0f p50_us=%llu p99_us=%llu errors=%llu\n", all.n,
	       (double)all.n / el,
	       (unsigned long long)(all.n ? all.lat[all.n / 2] : 0),
	       (unsigned long long)(all.n ? all.lat[all.n * 99 / 100] : 0),
	       (unsigned long long)all.errors);
	free(all.lat);
	return all.n ? 0 : 1;
}
