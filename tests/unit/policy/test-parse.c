/*
 * Parsing and the canonical form: JSON and YAML give the same policy and
 * digest; key order, list order, duplicates and spelling variants of the same
 * meaning do not change the digest, while any change of meaning does; the
 * canonical bytes are pinned; hostile inputs (alias bombs, deep nesting, huge
 * texts) are refused quickly and without running out of memory.
 */
#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "../check-run.h"

static struct policy *parse_ok(const char *t)
{
	struct policy_error err;
	struct policy *p = NULL;
	int r = policy_parse(t, strlen(t), &p, &err);

	ck_assert_msg(r == 0, "rejected at \"%s\" (%d:%d): %s\n%s", err.path, err.line, err.column,
		      err.message, t);
	return p;
}

static void digest_of(const char *t, char hex[65])
{
	struct policy *p = parse_ok(t);

	ck_assert_int_eq(policy_digest(p, hex), 0);
	policy_free(p);
}

static const char yaml_full[] =
	"version: 1\n"
	"filesystem:\n"
	"  read:  [/usr, $WORKSPACE, {path: /opt/tool, optional: true}]\n"
	"  write: [$WORKSPACE, $TMPDIR]\n"
	"  deny:  [$HOME/.ssh]\n"
	"network:\n"
	"  allow: [\"api.github.com:443\", \"*.pypi.org:443\"]\n"
	"  inject:\n"
	"    - host: api.github.com\n"
	"      header: Authorization\n"
	"      value: \"Bearer ${secret:gh}\"\n"
	"  routes:\n"
	"    - {name: openai, upstream: \"https://api.openai.com\", header: Authorization,\n"
	"       value: \"Bearer ${secret:openai}\", env: OPENAI_BASE_URL}\n"
	"env: {pass: [PATH, LANG], set: {A: \"1\", B: \"two words\"}}\n"
	"limits: {memory: 2G, pids: 256, wall: 1h, files: 1024, cpu: 90s}\n"
	"snapshot: {exclude: [node_modules, .venv], on_start: true}\n";

/* Same meaning: JSON, other key order, other list order, repeats, spellings. */
static const char json_full[] =
	"{\"snapshot\": {\"on_start\": true, \"exclude\": [\".venv\", \"node_modules\", \".venv\"],"
	"  \"workspace\": \"${WORKSPACE}\", \"on_exit\": false},"
	" \"limits\": {\"cpu\": 90, \"files\": 1024, \"wall\": \"60m\", \"pids\": 256,"
	"  \"memory\": 2147483648},"
	" \"env\": {\"set\": {\"B\": \"two words\", \"A\": \"1\"}, \"pass\": [\"LANG\", \"PATH\", \"LANG\"]},"
	" \"network\": {\"routes\": [{\"env\": \"OPENAI_BASE_URL\", \"value\": \"Bearer ${secret:openai}\","
	"  \"header\": \"Authorization\", \"upstream\": \"https://api.openai.com\", \"name\": \"openai\"}],"
	"  \"inject\": [{\"value\": \"Bearer ${secret:gh}\", \"header\": \"Authorization\","
	"  \"host\": \"API.GitHub.com\"}],"
	"  \"allow\": [\"*.PyPI.org:443\", \"api.github.com:443\", \"api.github.com:443\"]},"
	" \"filesystem\": {\"deny\": [\"${HOME}/.ssh/\"], \"write\": [\"$TMPDIR\", \"$WORKSPACE\"],"
	"  \"read\": [{\"optional\": true, \"path\": \"/opt//tool\"}, \"$WORKSPACE/.\", \"/usr\"]},"
	" \"enforcement\": \"strict\", \"base\": \"default\", \"version\": 1}";

START_TEST(test_json_yaml_same_digest)
{
	char a[65], b[65];

	digest_of(yaml_full, a);
	digest_of(json_full, b);
	ck_assert_str_eq(a, b);
	ck_assert_int_eq((int)strlen(a), 64);
}
END_TEST

/* Any change of meaning changes the digest. */
START_TEST(test_digest_sensitive)
{
	static const char *const edits[][2] = {
		{ "cpu: 90s", "cpu: 91s" },
		{ "[PATH, LANG]", "[PATH, LANG, TERM]" },
		{ "optional: true", "optional: false" },
		{ "$HOME/.ssh", "$HOME/.aws" },
		{ "*.pypi.org:443", "pypi.org:443" },
		{ "Bearer ${secret:gh}", "Bearer ${secret:gh2}" },
		{ "on_start: true", "on_exit: true" },
		{ "version: 1\n", "version: 1\nenforcement: best_effort\n" },
		{ "version: 1\n", "version: 1\nbase: none\n" },
	};
	char base[65], other[65];

	digest_of(yaml_full, base);
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		char buf[sizeof(yaml_full) + 64];
		const char *at = strstr(yaml_full, edits[i][0]);

		ck_assert_ptr_nonnull(at);
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - yaml_full), yaml_full, edits[i][1],
			 at + strlen(edits[i][0]));
		digest_of(buf, other);
		ck_assert_msg(strcmp(base, other), "edit %zu did not change the digest", i);
	}
}
END_TEST

/* The canonical bytes are the contract other implementations reproduce. */
START_TEST(test_canonical_bytes)
{
	static const char want[] =
		"{\"base\":\"default\",\"enforcement\":\"strict\",\"env\":{\"pass\":[],\"set\":{}},"
		"\"filesystem\":{\"deny\":[],\"read\":[],\"write\":[]},"
		"\"limits\":{},"
		"\"network\":{\"allow\":[],\"inject\":[],\"routes\":[]},"
		"\"snapshot\":{\"exclude\":[],\"on_exit\":false,\"on_start\":false,"
		"\"workspace\":\"$WORKSPACE\"},\"version\":1}";
	unsigned char md[32];
	unsigned int n = 0;
	char hex[65], want_hex[65];
	struct policy *p = parse_ok("version: 1\n");
	size_t len = 0;
	char *s = policy_canonical_string(p, &len);

	ck_assert_str_eq(s, want);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_int_eq(policy_digest(p, hex), 0);
	ck_assert(EVP_Digest(want, strlen(want), md, &n, EVP_sha256(), NULL));
	for (unsigned i = 0; i < n; i++)
		snprintf(want_hex + 2 * i, 3, "%02x", md[i]);
	ck_assert_str_eq(hex, want_hex);
	free(s);
	policy_free(p);

	p = parse_ok("version: 1\nfilesystem: {read: [\"/a\\\"b\\\\c/é\"]}\n"
		     "network: {allow: [\"*.X.example:8443\"]}\nlimits: {memory: 1G}\n");
	s = policy_canonical_string(p, NULL);
	ck_assert_ptr_nonnull(strstr(s, "\"read\":[{\"optional\":false,\"path\":\"/a\\\"b\\\\c/é\"}]"));
	ck_assert_ptr_nonnull(strstr(s, "\"allow\":[\"*.x.example:8443\"]"));
	ck_assert_ptr_nonnull(strstr(s, "\"memory\":1073741824"));
	free(s);
	policy_free(p);
}
END_TEST

START_TEST(test_struct_contents)
{
	struct policy *p = parse_ok(json_full);

	ck_assert_int_eq(p->version, 1);
	/* fs: $HOME/.ssh deny, $TMPDIR w, $WORKSPACE rw, /opt/tool r opt, /usr r */
	ck_assert_uint_eq(p->n_fs, 5);
	ck_assert_str_eq(p->fs[0].path, "$HOME/.ssh");
	ck_assert_uint_eq(p->fs[0].access, POLICY_FS_DENY);
	ck_assert_str_eq(p->fs[2].path, "$WORKSPACE");
	ck_assert_uint_eq(p->fs[2].access, POLICY_FS_READ | POLICY_FS_WRITE);
	ck_assert_str_eq(p->fs[3].path, "/opt/tool");
	ck_assert(p->fs[3].optional);
	ck_assert(!p->fs[4].optional);
	ck_assert_uint_eq(p->n_allow, 2);
	ck_assert_str_eq(p->allow[0].host, "api.github.com");
	ck_assert(!p->allow[0].wildcard);
	ck_assert_str_eq(p->allow[1].host, "pypi.org");
	ck_assert(p->allow[1].wildcard);
	ck_assert_uint_eq(p->allow[1].port, 443);
	ck_assert_uint_eq(p->n_inject, 1);
	ck_assert_str_eq(p->inject[0].host, "api.github.com");
	ck_assert_uint_eq(p->n_routes, 1);
	ck_assert_str_eq(p->routes[0].upstream_host, "api.openai.com");
	ck_assert_uint_eq(p->routes[0].upstream_port, 443);
	ck_assert_str_eq(p->routes[0].upstream_path, "");
	ck_assert_uint_eq(p->n_env_pass, 2);
	ck_assert_str_eq(p->env_pass[0], "LANG");
	ck_assert_uint_eq(p->n_env_set, 2);
	ck_assert_str_eq(p->env_set[0].name, "A");
	ck_assert(p->limits.memory_set && p->limits.memory_bytes == 2ull << 30);
	ck_assert(p->limits.wall_set && p->limits.wall_seconds == 3600);
	ck_assert(p->limits.cpu_set && p->limits.cpu_seconds == 90);
	ck_assert(p->limits.pids_set && p->limits.pids == 256);
	ck_assert(p->limits.files_set && p->limits.files == 1024);
	ck_assert_uint_eq(p->snapshot.n_exclude, 2);
	ck_assert(p->snapshot.on_start && !p->snapshot.on_exit);
	ck_assert_str_eq(p->snapshot.workspace, "$WORKSPACE");
	ck_assert_int_eq(p->enforcement, POLICY_ENFORCE_STRICT);
	ck_assert_int_eq(p->base, POLICY_BASE_DEFAULT);
	policy_free(p);
}
END_TEST

/* policy_from_json(): the object form the RPC accepts gives the same policy. */
START_TEST(test_from_json_object)
{
	struct json_object *o = json_tokener_parse(json_full);
	struct policy_error err;
	struct policy *p;
	char a[65], b[65];

	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(policy_from_json(o, &p, &err), 0);
	ck_assert_int_eq(policy_digest(p, a), 0);
	digest_of(yaml_full, b);
	ck_assert_str_eq(a, b);
	policy_free(p);
	json_object_put(o);
}
END_TEST

/* The canonical form is a valid policy with the same digest. */
START_TEST(test_round_trip)
{
	const char *texts[] = { yaml_full, json_full, "version: 1\nbase: none\n",
				"version: 1\nnetwork: {routes: [{name: a, upstream: \"https://a.example/x\"}]}\n" };

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct policy *p = parse_ok(texts[i]), *q;
		char a[65], b[65], *s = policy_canonical_string(p, NULL);

		q = parse_ok(s);
		ck_assert_int_eq(policy_digest(p, a), 0);
		ck_assert_int_eq(policy_digest(q, b), 0);
		ck_assert_str_eq(a, b);
		free(s);
		policy_free(p);
		policy_free(q);
	}
}
END_TEST

START_TEST(test_alias_bomb)
{
	static const char bomb[] =
		"version: 1\n"
		"a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
		"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
		"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
		"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
		"f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
		"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
		"h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
		"i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
	struct policy_error err;
	struct policy *p;

	ck_assert_int_eq(policy_parse(bomb, strlen(bomb), &p, &err), POLICY_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.message, "anchors"));
	ck_assert_int_eq(err.line, 2);
}
END_TEST

START_TEST(test_deep_nesting)
{
	size_t n = 100000;
	char *t = malloc(2 * n + 32);
	struct policy_error err;
	struct policy *p;

	size_t pre;

	strcpy(t, "{\"version\": 1, \"x\": ");
	pre = strlen(t);
	memset(t + pre, '[', n);
	t[pre + n] = '\0';
	ck_assert_int_eq(policy_parse(t, strlen(t), &p, &err), POLICY_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.message, "nesting too deep"));
	free(t);

	/* At the limit but valid YAML structure: still an error, not a crash. */
	t = strdup("version: 1\nenv: {set: {A: [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}}\n");
	ck_assert_int_eq(policy_parse(t, strlen(t), &p, &err), POLICY_EINVAL);
	free(t);
}
END_TEST

START_TEST(test_huge)
{
	size_t n = POLICY_MAX_TEXT + 1;
	char *t = malloc(n);
	struct policy_error err;
	struct policy *p;

	/* A valid policy padded with a comment to one byte over the limit. */
	memset(t, ' ', n);
	memcpy(t, "version: 1\n#", 12);
	ck_assert_int_eq(policy_parse(t, n, &p, &err), POLICY_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.message, "larger than"));
	/* Control: exactly at the limit parses. */
	ck_assert_int_eq(policy_parse(t, n - 1, &p, &err), 0);
	policy_free(p);
	free(t);

	/* Many small values: node limit, not memory, stops it. */
	n = POLICY_MAX_TEXT;
	t = malloc(n + 1);
	strcpy(t, "version: 1\nenv: {pass: [");
	for (size_t i = strlen(t); i + 4 < n; i += 2)
		memcpy(t + i, "A,", 2), t[i + 2] = '\0';
	strcat(t, "A]}");
	ck_assert_int_eq(policy_parse(t, strlen(t), &p, &err), POLICY_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.message, "too many values"));
	free(t);
}
END_TEST

static int collect(const char *name, size_t len, void *ud)
{
	strncat(ud, name, len);
	strcat(ud, ";");
	return 0;
}

START_TEST(test_template_names)
{
	char buf[128] = "";

	ck_assert_int_eq(policy_template_foreach("a ${secret:x.y} b ${secret:z} $c", collect, buf), 0);
	ck_assert_str_eq(buf, "x.y;z;");
}
END_TEST

static Suite *parse_suite(void)
{
	Suite *s = suite_create("policy-parse");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_json_yaml_same_digest);
	tcase_add_test(tc, test_digest_sensitive);
	tcase_add_test(tc, test_canonical_bytes);
	tcase_add_test(tc, test_struct_contents);
	tcase_add_test(tc, test_from_json_object);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_alias_bomb);
	tcase_add_test(tc, test_deep_nesting);
	tcase_add_test(tc, test_huge);
	tcase_add_test(tc, test_template_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(parse_suite());
}
