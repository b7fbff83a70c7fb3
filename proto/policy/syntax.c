/*
 * Lexical rules for the values inside a policy: paths, host names, ports,
 * HTTP header names, secret templates, environment names, globs, upstream
 * URLs, sizes and durations. Each check returns NULL when the value is valid
 * or a static message saying what is wrong; it never logs.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define MAX_HOST 253
#define MAX_LABEL 63
#define MAX_HEADER 128
#define MAX_ENV_NAME 128
#define MAX_SECRET_NAME 128
#define MAX_ROUTE_NAME 64
#define MAX_GLOB 255

static const char *const path_vars[] = { "WORKSPACE", "HOME", "TMPDIR", NULL };

const char *policy_check_text(const char *s, size_t max)
{
	size_t n = 0;

	for (const unsigned char *c = (const unsigned char *)s; *c; c++, n++)
		if (*c < 0x20 || *c == 0x7f)
			return "control characters are not allowed";
	if (n > max)
		return "value too long";
	return NULL;
}

/* Length of the variable prefix ("$HOME", "${HOME}") or 0; *var = its name. */
static size_t path_var(const char *s, const char **var, const char **msg)
{
	bool braced = s[1] == '{';
	const char *name = s + 1 + braced;
	size_t n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");

	*msg = NULL;
	if (braced && name[n] != '}') {
		*msg = "unterminated ${...} variable";
		return 0;
	}
	for (int i = 0; path_vars[i]; i++) {
		if (strlen(path_vars[i]) == n && !strncmp(name, path_vars[i], n)) {
			*var = path_vars[i];
			return 1 + braced + n + braced;
		}
	}
	*msg = "unknown variable: only $WORKSPACE, $HOME and $TMPDIR are defined";
	return 0;
}

const char *policy_check_path(const char *s, char **norm)
{
	const char *msg, *var = NULL, *rest = s;
	char *out, *o;
	size_t n;

	*norm = NULL;
	if (!*s)
		return "empty path";
	if ((msg = policy_check_text(s, POLICY_MAX_PATH)))
		return msg;
	if (s[0] == '~')
		return "\"~\" is not expanded: write $HOME";
	if (s[0] == '$') {
		n = path_var(s, &var, &msg);
		if (!n)
			return msg;
		rest = s + n;
		if (*rest && *rest != '/')
			return "a variable must be followed by \"/\" or end the path";
	} else if (s[0] != '/')
		return "path must be absolute or start with $WORKSPACE, $HOME or $TMPDIR";

	out = malloc(strlen(s) + 3);
	if (!out)
		return "out of memory";
	o = out;
	if (var)
		o += sprintf(o, "$%s", var);
	/* Lexical normalization: drop empty and "." components, refuse "..". */
	while (*rest) {
		const char *c;

		while (*rest == '/')
			rest++;
		c = rest;
		n = strcspn(c, "/");
		rest = c + n;
		if (n == 0 || (n == 1 && c[0] == '.'))
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			free(out);
			return "\"..\" is not allowed in a path";
		}
		*o++ = '/';
		memcpy(o, c, n);
		o += n;
	}
	if (o == out)
		*o++ = '/';
	*o = '\0';
	*norm = out;
	return NULL;
}

static const char *check_labels(const char *s, size_t len, int *labels)
{
	size_t i = 0;

	*labels = 0;
	if (len == 0)
		return "empty host name";
	if (len > MAX_HOST)
		return "host name longer than 253 bytes";
	while (i <= len) {
		size_t start = i;

		while (i < len && s[i] != '.') {
			if (s[i] == '*')
				return "a wildcard is only allowed as a leading \"*.\"";
			if (!isascii((unsigned char)s[i]) ||
			    !(isalnum((unsigned char)s[i]) || s[i] == '-'))
				return "host names are letters, digits, \"-\" and \".\"";
			i++;
		}
		if (i == start)
			return "empty label in host name";
		if (i - start > MAX_LABEL)
			return "host label longer than 63 bytes";
		if (s[start] == '-' || s[i - 1] == '-')
			return "a host label cannot start or end with \"-\"";
		(*labels)++;
		i++;
	}
	return NULL;
}

const char *policy_check_host(const char *s, size_t len, bool allow_wildcard,
			      char **host, bool *wildcard)
{
	const char *msg;
	int labels;

	*host = NULL;
	*wildcard = false;
	if (len >= 2 && s[0] == '*' && s[1] == '.') {
		if (!allow_wildcard)
			return "a wildcard is not allowed here";
		*wildcard = true;
		s += 2;
		len -= 2;
	}
	if ((msg = check_labels(s, len, &labels)))
		return msg;
	if (*wildcard && labels < 2)
		return "a wildcard must cover at least two labels (\"*.example.com\")";
	*host = strndup(s, len);
	if (!*host)
		return "out of memory";
	for (char *c = *host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return NULL;
}

const char *policy_check_port(const char *s, size_t len, uint16_t *port)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return "port must be a number from 1 to 65535";
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return "port must be a number from 1 to 65535";
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (s[0] == '0' || v < 1 || v > 65535)
		return "port must be a number from 1 to 65535";
	*port = (uint16_t)v;
	return NULL;
}

static const char *const forbidden_headers[] = {
	"Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
	"Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "TE",
	"Trailer", "Upgrade", NULL,
};

const char *policy_check_header(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_HEADER)
		return "header name must be 1 to 128 characters";
	for (size_t i = 0; i < n; i++)
		if (!isascii((unsigned char)s[i]) ||
		    !(isalnum((unsigned char)s[i]) || strchr("!#$%&'*+-.^_`|~", s[i])))
			return "header name must be an HTTP token";
	for (int i = 0; forbidden_headers[i]; i++)
		if (!strcasecmp(s, forbidden_headers[i]))
			return "hop-by-hop, Host and framing headers cannot be injected";
	return NULL;
}

static bool secret_char(char c)
{
	/* c != 0 first: strchr() finds the terminator of its set. */
	return c && isascii((unsigned char)c) && (isalnum((unsigned char)c) || strchr("_.-", c));
}

int policy_template_foreach(const char *tmpl,
			    int (*fn)(const char *name, size_t len, void *ud), void *ud)
{
	for (const char *p = strstr(tmpl, "${secret:"); p; p = strstr(p, "${secret:")) {
		const char *name = p + 9;
		size_t n = 0;
		int r;

		while (secret_char(name[n]))
			n++;
		if (name[n] != '}')
			return 0; /* validated templates never get here */
		if ((r = fn(name, n, ud)) != 0)
			return r;
		p = name + n + 1;
	}
	return 0;
}

const char *policy_check_template(const char *s)
{
	size_t len = strlen(s);

	if (len > POLICY_MAX_VALUE)
		return "value too long";
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			return "header values are printable ASCII (no control characters)";
	for (const char *p = strstr(s, "${"); p; p = strstr(p, "${")) {
		const char *name = p + 9;
		size_t n = 0;

		if (strncmp(p, "${secret:", 9))
			return "only ${secret:NAME} placeholders are allowed";
		while (secret_char(name[n]))
			n++;
		if (name[n] != '}' || n == 0 || n > MAX_SECRET_NAME)
			return "a secret name is 1 to 128 of [A-Za-z0-9_.-], closed by \"}\"";
		p = name + n + 1;
	}
	return NULL;
}

const char *policy_check_env_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_ENV_NAME || isdigit((unsigned char)s[0]))
		return "environment names are 1 to 128 of [A-Za-z0-9_], not starting with a digit";
	for (size_t i = 0; i < n; i++)
		if (!isascii((unsigned char)s[i]) || !(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return "environment names are 1 to 128 of [A-Za-z0-9_], not starting with a digit";
	return NULL;
}

const char *policy_check_route_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_ROUTE_NAME || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
		return "route names are 1 to 64 of [a-z0-9-]";
	return NULL;
}

const char *policy_check_glob(const char *s)
{
	const char *msg;

	if (!*s)
		return "empty pattern";
	if ((msg = policy_check_text(s, MAX_GLOB)))
		return msg;
	if (s[0] == '/')
		return "patterns are relative to the workspace";
	for (const char *c = s; c; c = strchr(c, '/')) {
		if (*c == '/')
			c++;
		if (!strncmp(c, "..", 2) && (c[2] == '/' || c[2] == '\0'))
			return "\"..\" is not allowed in a pattern";
	}
	return NULL;
}

const char *policy_check_upstream(const char *s, char **host, uint16_t *port, char **path)
{
	const char *auth, *p, *colon, *msg;
	bool wild;

	*host = *path = NULL;
	*port = 443;
	if (strncmp(s, "https://", 8))
		return "upstream must be an https:// URL";
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			return "upstream must be printable ASCII without spaces";
	if (strlen(s) > 2048)
		return "upstream URL too long";
	if (strpbrk(s, "?#"))
		return "upstream cannot have a query or fragment";
	auth = s + 8;
	p = auth + strcspn(auth, "/");
	if (memchr(auth, '@', (size_t)(p - auth)))
		return "upstream cannot carry credentials";
	if (auth[0] == '[')
		return "IPv6 literals are not supported in upstream";
	colon = memchr(auth, ':', (size_t)(p - auth));
	if (colon && (msg = policy_check_port(colon + 1, (size_t)(p - colon - 1), port)))
		return msg;
	if ((msg = policy_check_host(auth, (size_t)((colon ? colon : p) - auth), false, host, &wild)))
		return msg;
	*path = strdup(p);
	if (!*path) {
		free(*host);
		*host = NULL;
		return "out of memory";
	}
	return NULL;
}

/* Strict "digits[unit]" with a multiplier table; json ints are taken as is. */
static const char *parse_units(struct json_object *v, const char *units,
			       const uint64_t *mult, uint64_t min, uint64_t max,
			       const char *what, uint64_t *out)
{
	uint64_t n = 0, m = 1;
	const char *s, *u;

	if (json_object_is_type(v, json_type_int)) {
		int64_t i = json_object_get_int64(v);

		if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
			return what;
		*out = (uint64_t)i;
		return NULL;
	}
	if (!json_object_is_type(v, json_type_string))
		return what;
	s = json_object_get_string(v);
	if (!isdigit((unsigned char)s[0]))
		return what;
	for (; isdigit((unsigned char)*s); s++) {
		if (n > (UINT64_MAX - 9) / 10)
			return what;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (*s) {
		if (s[1] || !(u = strchr(units, *s)))
			return what;
		m = mult[u - units];
	}
	if (n > max / m || n * m < min)
		return what;
	*out = n * m;
	return NULL;
}

const char *policy_parse_size(struct json_object *v, uint64_t *out)
{
	static const uint64_t mult[] = { 1ull << 10, 1ull << 20, 1ull << 30, 1ull << 40 };

	return parse_units(v, "KMGT", mult, 1ull << 20, 1ull << 50,
			   "expected bytes or a size like \"512M\"/\"2G\" (K/M/G/T, 1M to 1024T)",
			   out);
}

const char *policy_parse_duration(struct json_object *v, uint64_t *out)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400 };

	return parse_units(v, "smhd", mult, 1, 366ull * 86400,
			   "expected seconds or a duration like \"30s\"/\"10m\"/\"1h\"/\"2d\" (1s to 366d)",
			   out);
}

const char *policy_parse_count(struct json_object *v, uint64_t max, uint64_t *out)
{
	int64_t i;

	if (!json_object_is_type(v, json_type_int))
		return "expected an integer";
	i = json_object_get_int64(v);
	if (i < 1 || (uint64_t)i > max)
		return "out of range";
	*out = (uint64_t)i;
	return NULL;
}

bool policy_host_covered(const char *host, bool wild, const struct policy_net_allow *a)
{
	size_t hl = strlen(host), al = strlen(a->host);

	if (!a->wildcard)
		return !wild && !strcmp(host, a->host);
	if (wild && !strcmp(host, a->host))
		return true; /* "*.x.y" inside "*.x.y" */
	return hl > al + 1 && host[hl - al - 1] == '.' && !strcmp(host + hl - al, a->host);
}
