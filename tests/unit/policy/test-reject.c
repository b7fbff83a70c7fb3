/*
 * Every class of invalid policy is rejected, with the exact path of the
 * offending key and a message that says what is wrong. Each case is paired
 * with a control (the same text minus the fault parses) where that matters,
 * so a test cannot pass because the parser rejects everything.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "../check-run.h"

struct bad {
	const char *text;
	const char *path;    /* expected err.path */
	const char *message; /* substring of err.message */
};

#define V "version: 1\n"
#define ALLOW "network:\n  allow: [\"a.example.com:443\", \"*.wild.example:443\"]\n"

static const struct bad bad_cases[] = {
	/* top level and types */
	{ "", "", "empty policy" },
	{ "version: 2\n", "version", "unsupported version" },
	{ "version: \"1\"\n", "version", "expected an integer" },
	{ "version: 1.0\n", "version", "expected an integer" },
	{ "filesystem: {}\n", "", "missing key \"version\"" },
	{ "- version: 1\n", "", "mapping" },
	{ V "foo: 1\n", "foo", "unknown key" },
	{ V "filesystem: []\n", "filesystem", "expected a mapping" },
	{ V "enforcement: lenient\n", "enforcement", "\"strict\" or \"best_effort\"" },
	{ V "base: minimal\n", "base", "\"default\" or \"none\"" },
	/* unknown keys at every level */
	{ V "filesystem: {read: [/a], wirte: [/b]}\n", "filesystem.wirte", "unknown key" },
	{ V "filesystem: {read: [{path: /a, optinal: true}]}\n", "filesystem.read[0].optinal",
	  "unknown key" },
	{ V "network: {alow: []}\n", "network.alow", "unknown key" },
	{ V ALLOW "  inject: [{host: a.example.com, hedaer: X-A, value: v}]\n",
	  "network.inject[0].hedaer", "unknown key" },
	{ V "network: {routes: [{nmae: x, upstream: \"https://x.example\"}]}\n",
	  "network.routes[0].nmae", "unknown key" },
	{ V "env: {pas: [PATH]}\n", "env.pas", "unknown key" },
	{ V "limits: {mem: 1G}\n", "limits.mem", "unknown key" },
	{ V "snapshot: {onstart: true}\n", "snapshot.onstart", "unknown key" },
	/* wrong types inside sections */
	{ V "filesystem: {read: /usr}\n", "filesystem.read", "expected a list" },
	{ V "filesystem: {read: [1]}\n", "filesystem.read[0]", "expected a path" },
	{ V "filesystem: {read: [{optional: true}]}\n", "filesystem.read[0]", "missing key \"path\"" },
	{ V "filesystem: {read: [{path: /a, optional: \"yes\"}]}\n", "filesystem.read[0].optional",
	  "expected a boolean" },
	{ V "snapshot: {on_start: yes}\n", "snapshot.on_start", "expected a boolean" },
	{ V "env: {set: {A: 1}}\n", "env.set.A", "expected a string" },
	{ V "network: {allow: [443]}\n", "network.allow[0]", "expected a string" },
	/* paths */
	{ V "filesystem: {read: [\"~/x\"]}\n", "filesystem.read[0]", "$HOME" },
	{ V "filesystem: {read: [relative/x]}\n", "filesystem.read[0]", "absolute" },
	{ V "filesystem: {read: [\"$WORKSPACEX/a\"]}\n", "filesystem.read[0]", "unknown variable" },
	{ V "filesystem: {read: [\"$USER/a\"]}\n", "filesystem.read[0]", "unknown variable" },
	{ V "filesystem: {read: [\"${HOME/a\"]}\n", "filesystem.read[0]", "unterminated" },
	{ V "filesystem: {write: [\"$HOME/../etc\"]}\n", "filesystem.write[0]", "\"..\"" },
	{ V "filesystem: {deny: [\"/a/b/..\"]}\n", "filesystem.deny[0]", "\"..\"" },
	{ V "filesystem: {read: [\"/a\\nb\"]}\n", "filesystem.read[0]", "control" },
	{ V "snapshot: {workspace: \"~\"}\n", "snapshot.workspace", "$HOME" },
	/* contradictions */
	{ V "filesystem: {write: [/a], deny: [/a]}\n", "filesystem.deny[0]", "also allowed by filesystem.write[0]" },
	{ V "filesystem: {read: [/x, \"/a//\"], deny: [/b, /a/.]}\n", "filesystem.deny[1]",
	  "/a is also allowed by filesystem.read[1]" },
	/* network.allow */
	{ V "network: {allow: [a.example.com]}\n", "network.allow[0]", "host:port" },
	{ V "network: {allow: [\"a.example.com:0\"]}\n", "network.allow[0]", "port" },
	{ V "network: {allow: [\"a.example.com:65536\"]}\n", "network.allow[0]", "port" },
	{ V "network: {allow: [\"a.example.com:0443\"]}\n", "network.allow[0]", "port" },
	{ V "network: {allow: [\"a.example.com:\"]}\n", "network.allow[0]", "port" },
	{ V "network: {allow: [\"*.com:443\"]}\n", "network.allow[0]", "two labels" },
	{ V "network: {allow: [\"a.*.com:443\"]}\n", "network.allow[0]", "leading" },
	{ V "network: {allow: [\"*:443\"]}\n", "network.allow[0]", "leading" },
	{ V "network: {allow: [\"-a.com:443\"]}\n", "network.allow[0]", "start or end" },
	{ V "network: {allow: [\"a..com:443\"]}\n", "network.allow[0]", "empty label" },
	{ V "network: {allow: [\"a.com.:443\"]}\n", "network.allow[0]", "empty label" },
	{ V "network: {allow: [\"a_b.com:443\"]}\n", "network.allow[0]", "letters, digits" },
	{ V "network: {allow: [\"[::1]:443\"]}\n", "network.allow[0]", "letters, digits" },
	{ V "network: {allow: [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com:443\"]}\n",
	  "network.allow[0]", "63" },
	/* network.inject */
	{ V ALLOW "  inject: [{host: b.example.com, header: X-A, value: v}]\n",
	  "network.inject[0].host", "not covered" },
	{ V ALLOW "  inject: [{host: wild.example, header: X-A, value: v}]\n",
	  "network.inject[0].host", "not covered" },
	{ V ALLOW "  inject: [{host: a.example.com, header: X-A}]\n", "network.inject[0]",
	  "missing key \"value\"" },
	{ V ALLOW "  inject: [{host: a.example.com, header: Host, value: v}]\n",
	  "network.inject[0].header", "Host" },
	{ V ALLOW "  inject: [{host: a.example.com, header: content-length, value: v}]\n",
	  "network.inject[0].header", "Host" },
	{ V ALLOW "  inject: [{host: a.example.com, header: Transfer-Encoding, value: v}]\n",
	  "network.inject[0].header", "Host" },
	{ V ALLOW "  inject: [{host: a.example.com, header: \"Bad Header\", value: v}]\n",
	  "network.inject[0].header", "HTTP token" },
	{ V ALLOW "  inject: [{host: a.example.com, header: X-A, value: \"Bearer ${secret:}\"}]\n",
	  "network.inject[0].value", "secret name" },
	{ V ALLOW "  inject: [{host: a.example.com, header: X-A, value: \"${env:HOME}\"}]\n",
	  "network.inject[0].value", "only ${secret:NAME}" },
	{ V ALLOW "  inject: [{host: a.example.com, header: X-A, value: \"${secret:a b}\"}]\n",
	  "network.inject[0].value", "secret name" },
	{ V ALLOW "  inject: [{host: a.example.com, header: X-A, value: \"${secret:abc\"}]\n",
	  "network.inject[0].value", "secret name" },
	{ V ALLOW "  inject: [{host: a.example.com, header: X-A, value: \"v\\r\\nX-Evil: 1\"}]\n",
	  "network.inject[0].value", "control" },
	{ V ALLOW "  inject: [{host: a.example.com, header: X-A, value: a},"
		  " {host: a.example.com, header: x-a, value: b}]\n",
	  "network.inject[1].host", "same host and header" },
	/* network.routes */
	{ V "network: {routes: [{name: Open_AI, upstream: \"https://x.example\"}]}\n",
	  "network.routes[0].name", "[a-z0-9-]" },
	{ V "network: {routes: [{name: a, upstream: \"https://x.example\"}, {name: a, upstream: "
	    "\"https://y.example\"}]}\n", "network.routes[1].name", "duplicate" },
	{ V "network: {routes: [{name: a, upstream: \"http://x.example\"}]}\n",
	  "network.routes[0].upstream", "https://" },
	{ V "network: {routes: [{name: a, upstream: \"https://u:p@x.example\"}]}\n",
	  "network.routes[0].upstream", "credentials" },
	{ V "network: {routes: [{name: a, upstream: \"https://x.example:0\"}]}\n",
	  "network.routes[0].upstream", "port" },
	{ V "network: {routes: [{name: a, upstream: \"https://x.example/v1?k=1\"}]}\n",
	  "network.routes[0].upstream", "query" },
	{ V "network: {routes: [{name: a, upstream: \"https://*.x.example\"}]}\n",
	  "network.routes[0].upstream", "wildcard" },
	{ V "network: {routes: [{name: a, upstream: \"https://x.example\", header: X-A}]}\n",
	  "network.routes[0].value", "together" },
	{ V "network: {routes: [{name: a, upstream: \"https://x.example\", env: HTTPS_PROXY}]}\n",
	  "network.routes[0].env", "set by nono" },
	{ V "env: {set: {X_URL: a}}\nnetwork: {routes: [{name: a, upstream: \"https://x.example\", "
	    "env: X_URL}]}\n", "network.routes[0].env", "already set" },
	{ V "network: {routes: [{name: a, upstream: \"https://x.example\", env: U},"
	    " {name: b, upstream: \"https://y.example\", env: U}]}\n",
	  "network.routes[1].env", "already set" },
	/* env */
	{ V "env: {pass: [1ABC]}\n", "env.pass[0]", "environment names" },
	{ V "env: {pass: [\"A-B\"]}\n", "env.pass[0]", "environment names" },
	{ V "env: {pass: [https_proxy]}\n", "env.pass[0]", "set by nono" },
	{ V "env: {set: {TMPDIR: /tmp}}\n", "env.set.TMPDIR", "set by nono" },
	{ V "env: {set: {TOKEN: \"${secret:gh}\"}}\n", "env.set.TOKEN", "secrets cannot" },
	{ V "env: {pass: [PATH], set: {PATH: /bin}}\n", "env.set.PATH", "env.pass" },
	{ V "env: {set: {\"A=B\": x}}\n", "env.set.A=B", "environment names" },
	/* limits */
	{ V "limits: {memory: 2g}\n", "limits.memory", "size" },
	{ V "limits: {memory: 2GB}\n", "limits.memory", "size" },
	{ V "limits: {memory: -1}\n", "limits.memory", "size" },
	{ V "limits: {memory: 0}\n", "limits.memory", "size" },
	{ V "limits: {memory: 512K}\n", "limits.memory", "size" },
	{ V "limits: {memory: 99999999999999999999G}\n", "limits.memory", "size" },
	{ V "limits: {memory: 2000T}\n", "limits.memory", "size" },
	{ V "limits: {memory: \" 2G\"}\n", "limits.memory", "size" },
	{ V "limits: {wall: 1w}\n", "limits.wall", "duration" },
	{ V "limits: {wall: 1.5h}\n", "limits.wall", "duration" },
	{ V "limits: {wall: 0}\n", "limits.wall", "duration" },
	{ V "limits: {cpu: 367d}\n", "limits.cpu", "duration" },
	{ V "limits: {pids: 0}\n", "limits.pids", "out of range" },
	{ V "limits: {pids: 5000000}\n", "limits.pids", "out of range" },
	{ V "limits: {pids: \"10\"}\n", "limits.pids", "integer" },
	{ V "limits: {files: 2147483648}\n", "limits.files", "out of range" },
	{ V "limits: {files: true}\n", "limits.files", "integer" },
	/* snapshot */
	{ V "snapshot: {exclude: [/abs]}\n", "snapshot.exclude[0]", "relative" },
	{ V "snapshot: {exclude: [\"../x\"]}\n", "snapshot.exclude[0]", "\"..\"" },
	{ V "snapshot: {exclude: [\"a/../b\"]}\n", "snapshot.exclude[0]", "\"..\"" },
	{ V "snapshot: {exclude: [\"\"]}\n", "snapshot.exclude[0]", "empty" },
	/* reader: duplicates, YAML features, framing */
	{ "version: 1\nversion: 1\n", "", "duplicate key \"version\"" },
	{ V "env:\n  pass: [A]\n  pass: [B]\n", "", "duplicate key \"pass\"" },
	{ "{\"version\": 1, \"env\": {\"set\": {\"A\": \"x\", \"A\": \"y\"}}}", "",
	  "duplicate key \"A\"" },
	{ V "env: &e {pass: [A]}\n", "", "anchors" },
	{ V "env: {pass: [A]}\nlimits: *e\n", "", "aliases" },
	{ "version: !!int 1\n", "", "tags" },
	{ "version: !custom 1\n", "", "tags" },
	{ V "? [a]\n: 1\n", "", "mapping keys must be scalars" },
	{ "version: 1\n---\nversion: 1\n", "", "more than one document" },
	{ "{\"version\": 1", "", "syntax error" },
	{ "{\"version\": 1} x", "", "syntax error" },
	{ V "env: {pass: [\"\\0\"]}\n", "", "NUL" },
	{ "version: 99999999999999999999\n", "", "integer out of range" },
	{ V "<<: {base: none}\n", "<<", "unknown key" }, /* no merge keys */
	{ V "env: {set: {\"A\\x01\": x}}\n", "env.set.A?", "environment names" },
	{ "\xef\xbb\xbfversion: 1\nversion: 1\n", "", "duplicate" }, /* BOM is fine, dup is not */
	{ "\xff\xfev\0e\0r\0", "", "syntax error" }, /* UTF-16 is not read */
};

START_TEST(test_bad)
{
	const struct bad *b = &bad_cases[_i];
	struct policy_error err;
	struct policy *p = (struct policy *)0x1;
	int r = policy_parse(b->text, strlen(b->text), &p, &err);

	ck_assert_msg(r == POLICY_EINVAL, "case %d accepted: %s", _i, b->text);
	ck_assert_ptr_null(p);
	ck_assert_msg(!strcmp(err.path, b->path), "case %d: path \"%s\", want \"%s\" (%s)", _i,
		      err.path, b->path, err.message);
	ck_assert_msg(strstr(err.message, b->message), "case %d: message \"%s\", want \"%s\"", _i,
		      err.message, b->message);
}
END_TEST

/* Controls: near-misses of the cases above that must be accepted. */
static const char *const good_cases[] = {
	V,
	V "filesystem: {read: [/a], write: [/b], deny: [/a/c]}\n", /* deny inside allow */
	V "filesystem: {deny: [/a], write: [/a/b]}\n",             /* allow inside deny */
	V "filesystem: {read: [\"$WORKSPACE\", \"${HOME}/x\", \"$TMPDIR/\", \"/a/./b//\"]}\n",
	V "filesystem: {read: [\"/$HOME\", \"/a/..b\", \"/a/b..\"]}\n", /* literal, not ".." */
	V "filesystem: {read: [/a, {path: /b, optional: true}]}\n",
	V ALLOW "  inject: [{host: x.wild.example, header: X-A, value: \"k ${secret:a.b-c_1} $x\"}]\n",
	V ALLOW "  inject: [{host: \"*.wild.example\", header: Authorization, value: \"${secret:t}\"}]\n",
	V ALLOW "  inject: [{host: A.Example.COM, header: X-A, value: v}, {host: a.example.com, "
		"header: X-B, value: w}]\n",
	V "network: {allow: [\"a.example.com:65535\", \"127.0.0.1:1\", \"localhost:8080\"]}\n",
	V "network: {routes: [{name: open-ai-2, upstream: \"https://api.x.example:8443/v1\", "
	  "header: X-K, value: \"${secret:k}\", env: X_BASE}]}\n",
	V "env: {pass: [PATH, _X, a1], set: {LANG: C.UTF-8, EMPTY: \"\", DOLLAR: \"$HOME ${x}\"}}\n",
	V "limits: {memory: 1048576, pids: 1, wall: 30s, files: 1048576, cpu: 10m}\n",
	V "limits: {memory: 1T, wall: 366d, cpu: 1}\n",
	V "snapshot: {workspace: \"$WORKSPACE/src\", exclude: [\"**/*.o\", \"a..b\"], on_exit: true}\n",
	"{\"version\": 1, \"enforcement\": \"best_effort\", \"base\": \"none\"}",
	"# comment\nversion: 1 # trailing\n",
};

START_TEST(test_good)
{
	struct policy_error err;
	struct policy *p = NULL;
	int r = policy_parse(good_cases[_i], strlen(good_cases[_i]), &p, &err);

	ck_assert_msg(r == 0, "control %d rejected at %s: %s", _i, err.path, err.message);
	ck_assert_ptr_nonnull(p);
	policy_free(p);
}
END_TEST

START_TEST(test_positions)
{
	const char *t = "version: 1\nfilesystem:\n  read:\n    - /a\n    - relative\n";
	struct policy_error err;
	struct policy *p;

	ck_assert_int_eq(policy_parse(t, strlen(t), &p, &err), POLICY_EINVAL);
	ck_assert_str_eq(err.path, "filesystem.read[1]");
	ck_assert_int_eq(err.line, 5);
	ck_assert_int_eq(err.column, 7);

	t = "{\"version\": 1,\n \"snapshot\": {\"on_exit\": \"no\"}}";
	ck_assert_int_eq(policy_parse(t, strlen(t), &p, &err), POLICY_EINVAL);
	ck_assert_str_eq(err.path, "snapshot.on_exit");
	ck_assert_int_eq(err.line, 2);
	ck_assert_int_eq(err.column, 26);

	t = "version: 1\nenv: {}\nenv: {}\n";
	ck_assert_int_eq(policy_parse(t, strlen(t), &p, &err), POLICY_EINVAL);
	ck_assert_int_eq(err.line, 3);
	ck_assert_int_eq(err.column, 1);
}
END_TEST

/* Not NUL-terminated input: the parser must respect len. */
START_TEST(test_length_respected)
{
	char buf[] = { 'v', 'e', 'r', 's', 'i', 'o', 'n', ':', ' ', '1', 'X', 'Y' };
	struct policy_error err;
	struct policy *p;

	ck_assert_int_eq(policy_parse(buf, 10, &p, &err), 0);
	policy_free(p);
	ck_assert_int_eq(policy_parse(buf, sizeof(buf), &p, &err), POLICY_EINVAL);
}
END_TEST

/*
 * Deterministic mutation fuzzing: byte flips, truncations and splices of a
 * policy that uses every section. The parser must only ever accept or reject
 * (ASan/UBSan builds catch memory errors), and errors must be terminated
 * strings.
 */
static const char fuzz_seed[] =
	"version: 1\nfilesystem: {read: [/usr, $WORKSPACE, {path: /o, optional: true}], "
	"write: [$TMPDIR], deny: [$HOME/.ssh]}\n"
	"network:\n  allow: [\"a.example.com:443\", \"*.b.example:443\"]\n"
	"  inject: [{host: a.example.com, header: X-K, value: \"k ${secret:t}\"}]\n"
	"  routes: [{name: r, upstream: \"https://r.example:8443/v1\", header: A, value: \"${secret:r}\", env: R_URL}]\n"
	"env: {pass: [PATH], set: {LANG: C}}\nlimits: {memory: 2G, pids: 9, wall: 1h, files: 64, cpu: 30s}\n"
	"snapshot: {exclude: [a, \"b/*\"], on_start: true}\nenforcement: strict\nbase: none\n";

START_TEST(test_mutations)
{
	static const char alphabet[] = "{}[]:,\"'&*!|>-?#$/\\\n ${secret:}.0a9Z~\t%@";
	uint32_t seed = 12345;
	size_t len = sizeof(fuzz_seed) - 1;
	char *buf = malloc(2 * len + 1);
	int accepted = 0;

	for (int iter = 0; iter < 20000; iter++) {
		size_t n = len;
		struct policy_error err;
		struct policy *p;
		int r;

		memcpy(buf, fuzz_seed, len);
		for (int k = 0; k < 1 + iter % 4; k++) {
			size_t at;

			seed = seed * 1103515245u + 12345u;
			at = (seed >> 8) % n;
			switch ((seed >> 4) % 4) {
			case 0:
				buf[at] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
				break;
			case 1: /* truncate */
				n = at;
				break;
			case 2: /* duplicate a slice */
				if (n + 16 <= 2 * len) {
					memmove(buf + at + 16, buf + at, n - at);
					n += 16;
				}
				break;
			default: /* delete a byte */
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
			}
			if (n == 0)
				break;
		}
		r = policy_parse(buf, n, &p, &err);
		ck_assert(r == 0 || r == POLICY_EINVAL);
		if (r == 0) {
			char hex[65];

			accepted++;
			ck_assert_int_eq(policy_digest(p, hex), 0);
			policy_free(p);
		} else {
			ck_assert(memchr(err.path, 0, sizeof(err.path)));
			ck_assert(memchr(err.message, 0, sizeof(err.message)));
			ck_assert(err.message[0]);
		}
	}
	ck_assert_int_gt(accepted, 0); /* control: not everything is rejected */
	free(buf);
}
END_TEST

static Suite *reject_suite(void)
{
	Suite *s = suite_create("policy-reject");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_loop_test(tc, test_good, 0, (int)(sizeof(good_cases) / sizeof(good_cases[0])));
	tcase_add_test(tc, test_positions);
	tcase_add_test(tc, test_length_respected);
	tcase_add_test(tc, test_mutations);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(reject_suite());
}
