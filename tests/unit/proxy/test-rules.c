/*
 * Check tests for the proxy's policy helpers: allow-list matching (exact,
 * *.suffix, ports), host normalization (what counts as an IP literal), the
 * private-address classifier, and secret-name extraction for audit.
 */
#include <arpa/inet.h>
#include <check.h>
#include <string.h>

#include "proxy-int.h"
#include "../check-run.h"

static struct proxy_allow allow[] = {
	{"api.example.com", 443},
	{"*.pypi.org", 443},
	{"any.example.com", 0},
};
static struct rules r = {.allow = allow, .n_allow = 3};

START_TEST(test_allow)
{
	ck_assert(rules_allowed(&r, "api.example.com", 443));
	ck_assert(rules_allowed(&r, "API.Example.COM", 443));
	ck_assert(!rules_allowed(&r, "api.example.com", 444));
	ck_assert(!rules_allowed(&r, "xapi.example.com", 443));
	ck_assert(!rules_allowed(&r, "api.example.com.evil.test", 443));
	ck_assert(rules_allowed(&r, "files.pypi.org", 443));
	ck_assert(rules_allowed(&r, "a.b.pypi.org", 443));
	ck_assert(!rules_allowed(&r, "pypi.org", 443)); /* *. means subdomains */
	ck_assert(!rules_allowed(&r, "evilpypi.org", 443));
	ck_assert(rules_allowed(&r, "any.example.com", 1));
}
END_TEST

static int
norm(const char *in, char *out, bool *ip)
{
	return proxy_host_norm(in, strlen(in), out, PROXY_HOST_MAX + 1, ip);
}

START_TEST(test_host_norm)
{
	char out[PROXY_HOST_MAX + 1];
	bool ip;

	ck_assert_int_eq(norm("Api.Example.com.", out, &ip), 0);
	ck_assert_str_eq(out, "api.example.com");
	ck_assert(!ip);
	ck_assert_int_eq(norm("127.0.0.1", out, &ip), 0);
	ck_assert(ip);
	ck_assert_int_eq(norm("2130706433", out, &ip), 0); /* numeric trick */
	ck_assert(ip);
	ck_assert_int_eq(norm("[::1]", out, &ip), 0);
	ck_assert(ip);
	ck_assert_int_lt(norm("a..b", out, &ip), 0);
	ck_assert_int_lt(norm("a b", out, &ip), 0);
	ck_assert_int_lt(norm("a/b", out, &ip), 0);
	ck_assert_int_lt(norm("a@b", out, &ip), 0);
	ck_assert_int_lt(norm("", out, &ip), 0);
	ck_assert_int_lt(norm("[::1", out, &ip), 0);
	ck_assert_int_lt(norm("[::1]x]", out, &ip), 0);
}
END_TEST

static bool
priv(const char *a)
{
	struct sockaddr_storage ss = {0};

	if (strchr(a, ':')) {
		struct sockaddr_in6 *s6 = (void *)&ss;
		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, a, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (void *)&ss;
		s4->sin_family = AF_INET;
		inet_pton(AF_INET, a, &s4->sin_addr);
	}
	return resolve_is_private((struct sockaddr *)&ss);
}

START_TEST(test_private)
{
	const char *yes[] = {"127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1",
			     "172.31.255.255", "192.168.1.1", "169.254.169.254",
			     "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255",
			     "::1", "::", "fe80::1", "fc00::1", "fd12::1",
			     "::ffff:127.0.0.1", "::ffff:10.1.2.3", "64:ff9b::a9fe:a9fe",
			     "ff02::1"};
	const char *no[] = {"8.8.8.8", "1.1.1.1", "172.32.0.1", "192.169.0.1",
			    "2606:4700::1111", "::ffff:8.8.8.8"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(priv(yes[i]), "%s should be private", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!priv(no[i]), "%s should be public", no[i]);
}
END_TEST

START_TEST(test_secret_name)
{
	char n[64];

	proxy_secret_name("Bearer ${secret:openai}", n, sizeof(n));
	ck_assert_str_eq(n, "openai");
	proxy_secret_name("no secret", n, sizeof(n));
	ck_assert_str_eq(n, "");
	proxy_secret_name("${secret:unterminated", n, sizeof(n));
	ck_assert_str_eq(n, "");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("proxy-rules");
	TCase *tc = tcase_create("rules");

	tcase_add_test(tc, test_allow);
	tcase_add_test(tc, test_host_norm);
	tcase_add_test(tc, test_private);
	tcase_add_test(tc, test_secret_name);
	suite_add_tcase(s, tc);
	return check_run(s);
}
