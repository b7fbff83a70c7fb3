/*
 * Check tests for the strict HTTP/1.1 parser: well-formed requests and
 * responses, and a corpus of request-smuggling and malformed payloads that
 * must be refused (never guessed at).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "../check-run.h"

static int
req(const char *s, struct http1_msg *m)
{
	return http1_parse_request(s, strlen(s), m);
}

START_TEST(test_simple_get)
{
	struct http1_msg m;
	const char *s = "GET /a?b=c HTTP/1.1\r\nHost: api.test\r\nX-A:  v  \r\n\r\n";

	ck_assert_int_eq(req(s, &m), (int)strlen(s));
	ck_assert_int_eq((int)m.method_len, 3);
	ck_assert_int_eq((int)m.target_len, 6);
	ck_assert_int_eq(m.minor, 1);
	ck_assert_int_eq((int)m.n_hdr, 2);
	ck_assert_int_eq(m.body, HTTP1_BODY_NONE);
	ck_assert(m.keep_alive);
	ck_assert_int_eq((int)m.hdr[1].value_len, 1); /* OWS trimmed */
	ck_assert_int_eq(m.host_idx, 0);
}
END_TEST

START_TEST(test_incomplete)
{
	struct http1_msg m;
	const char *parts[] = {
		"", "G", "GET / HTTP/1.1\r", "GET / HTTP/1.1\r\nHost: a\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\r",
	};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		ck_assert_int_eq(req(parts[i], &m), 0);
}
END_TEST

START_TEST(test_framing)
{
	struct http1_msg m;

	ck_assert_int_gt(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", &m), 0);
	ck_assert_int_eq(m.body, HTTP1_BODY_LENGTH);
	ck_assert_int_eq((int)m.content_length, 5);
	ck_assert_int_gt(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &m), 0);
	ck_assert_int_eq(m.body, HTTP1_BODY_CHUNKED);
	ck_assert_int_gt(req("GET / HTTP/1.0\r\n\r\n", &m), 0);
	ck_assert(!m.keep_alive);
	ck_assert_int_gt(req("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &m), 0);
	ck_assert(!m.keep_alive);
}
END_TEST

/* Each of these must be refused with a negative result. */
static const char *const bad[] = {
	/* CL.TE / TE.CL */
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
	/* duplicate / conflicting / malformed Content-Length */
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
	/* Transfer-Encoding variants */
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0b" "chunked\r\n\r\n",
	"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	/* obs-fold */
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",
	/* bare LF / bare CR */
	"GET / HTTP/1.1\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n\n",
	"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\rb\r\nHost: a\r\n\r\n",
	/* bad tokens, NUL, control bytes */
	"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
	"GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n",
	"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	/* versions and Host */
	"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.10\r\nHost: a\r\n\r\n",
	"GET / http/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
};

START_TEST(test_smuggling_corpus)
{
	struct http1_msg m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* the NUL-containing entry is measured by strlen: test it apart */
		int r = http1_parse_request(bad[i], strlen(bad[i]), &m);
		ck_assert_msg(r < 0, "payload %zu accepted: %s", i, bad[i]);
	}
	const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
	ck_assert_int_lt(http1_parse_request(nul, sizeof(nul) - 1, &m), 0);
}
END_TEST

START_TEST(test_limits)
{
	struct http1_msg m;
	size_t n = HTTP1_MAX_HEAD + 100;
	char *big = malloc(n + 1);

	ck_assert_ptr_nonnull(big);
	/* one huge header line, never terminated */
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	memset(big + 19, 'a', n - 19);
	big[n] = '\0';
	ck_assert_int_eq(http1_parse_request(big, n, &m), HTTP1_E_TOOBIG);
	/* 101 headers */
	size_t off = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < HTTP1_MAX_HEADERS; i++)
		off += (size_t)sprintf(big + off, "X-%d: v\r\n", i);
	off += (size_t)sprintf(big + off, "\r\n");
	ck_assert_int_eq(http1_parse_request(big, off, &m), HTTP1_E_TOOBIG);
	free(big);
}
END_TEST

static int
feed_all(const char *s, size_t *used)
{
	struct http1_chunked c;

	http1_chunked_init(&c);
	return http1_chunked_feed(&c, s, strlen(s), used);
}

START_TEST(test_chunked)
{
	size_t used;
	const char *ok = "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\nNEXT";

	ck_assert_int_eq(feed_all(ok, &used), 1);
	ck_assert_int_eq((int)used, (int)strlen(ok) - 4);
	ck_assert_int_eq(feed_all("5\r\nhel", &used), 0);
	ck_assert_int_eq((int)used, 6);

	/* byte by byte gives the same answer */
	struct http1_chunked c;
	http1_chunked_init(&c);
	int r = 0;
	size_t i;
	for (i = 0; i < strlen(ok) && r == 0; i++) {
		size_t u;
		r = http1_chunked_feed(&c, ok + i, 1, &u);
	}
	ck_assert_int_eq(r, 1);
	ck_assert_int_eq((int)i, (int)strlen(ok) - 4);

	const char *badc[] = {
		"x\r\n", "\r\n", "-1\r\n", "5 \r\nhello\r\n", "5\nhello\r\n",
		"5\r\nhelloX\r\n", "5\r\nhello\n0\r\n\r\n",
		"fffffffffffffffff\r\n", "0\r\n x\r\n\r\n", "0\r\nX: a\rb\r\n\r\n",
		"0\r\n\n", ";x\r\n",
	};
	for (size_t k = 0; k < sizeof(badc) / sizeof(badc[0]); k++)
		ck_assert_msg(feed_all(badc[k], &used) < 0, "chunked %zu accepted", k);
}
END_TEST

START_TEST(test_response)
{
	struct http1_msg m;
	const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";

	ck_assert_int_eq(http1_parse_response(s, strlen(s), "GET", 3, &m), (int)strlen(s) - 3);
	ck_assert_int_eq(m.status, 200);
	ck_assert_int_eq(m.body, HTTP1_BODY_LENGTH);
	s = "HTTP/1.1 200 OK\r\n\r\n";
	ck_assert_int_gt(http1_parse_response(s, strlen(s), "GET", 3, &m), 0);
	ck_assert_int_eq(m.body, HTTP1_BODY_CLOSE);
	ck_assert(!m.keep_alive);
	s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
	ck_assert_int_gt(http1_parse_response(s, strlen(s), "HEAD", 4, &m), 0);
	ck_assert_int_eq(m.body, HTTP1_BODY_NONE);
	ck_assert(m.keep_alive);
	s = "HTTP/1.1 304 Not Modified\r\n\r\n";
	ck_assert_int_gt(http1_parse_response(s, strlen(s), "GET", 3, &m), 0);
	ck_assert_int_eq(m.body, HTTP1_BODY_NONE);
	ck_assert(m.keep_alive);
	s = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
	ck_assert_int_lt(http1_parse_response(s, strlen(s), "GET", 3, &m), 0);
	s = "HTTP/1.1 20 OK\r\n\r\n";
	ck_assert_int_lt(http1_parse_response(s, strlen(s), "GET", 3, &m), 0);
	s = "HTTP/1.1 200OK\r\n\r\n";
	ck_assert_int_lt(http1_parse_response(s, strlen(s), "GET", 3, &m), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("proxy-http1");
	TCase *tc = tcase_create("parser");

	tcase_add_test(tc, test_simple_get);
	tcase_add_test(tc, test_incomplete);
	tcase_add_test(tc, test_framing);
	tcase_add_test(tc, test_smuggling_corpus);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_chunked);
	tcase_add_test(tc, test_response);
	suite_add_tcase(s, tc);
	return check_run(s);
}
