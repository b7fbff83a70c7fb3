/*
 * Strict HTTP/1.1 head parser and chunked-body validator (see http1.h for
 * what is refused and why).
 */
#include "http1.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar. */
static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / SP / HTAB / obs-text; never CR, LF, NUL or other controls. */
static bool
is_vchar_ws(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/*
 * Find the end of the head: the offset after "\r\n\r\n", 0 when not there
 * yet, or an error when a bare CR/LF is seen or the limit is passed.
 */
static int
head_end(const char *buf, size_t len, size_t *end)
{
	size_t lim = len < HTTP1_MAX_HEAD ? len : HTTP1_MAX_HEAD;

	for (size_t i = 0; i < lim; i++) {
		if (buf[i] == '\n')
			return HTTP1_E_SYNTAX; /* LF not after CR */
		if (buf[i] != '\r')
			continue;
		if (i + 1 >= len)
			return 0;
		if (buf[i + 1] != '\n')
			return HTTP1_E_SYNTAX; /* bare CR */
		if (i + 3 < len && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
			*end = i + 4;
			return 1;
		}
		if (i + 2 < len && buf[i + 2] == '\r' && i + 3 >= len)
			return 0;
		i++; /* skip the LF */
	}
	return len >= HTTP1_MAX_HEAD ? HTTP1_E_TOOBIG : 0;
}

static bool
ieq(const char *a, size_t alen, const char *b)
{
	return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

int
http1_find(const struct http1_msg *m, const char *name)
{
	for (size_t i = 0; i < m->n_hdr; i++)
		if (ieq(m->hdr[i].name, m->hdr[i].name_len, name))
			return (int)i;
	return -1;
}

bool
http1_list_has(const char *v, size_t len, const char *token)
{
	size_t i = 0;

	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < len && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e > s && ieq(v + s, e - s, token))
			return true;
	}
	return false;
}

/* Parse "HTTP/1.x" at p; sets *minor. */
static bool
parse_version(const char *p, size_t len, int *minor)
{
	if (len != 8 || memcmp(p, "HTTP/1.", 7) != 0)
		return false;
	if (p[7] != '0' && p[7] != '1')
		return false;
	*minor = p[7] - '0';
	return true;
}

/* Header lines from p (just after the start line's CRLF) to end. */
static int
parse_fields(const char *p, const char *end, struct http1_msg *m)
{
	m->n_hdr = 0;
	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		if (eol == NULL)
			return HTTP1_E_SYNTAX;
		if (eol == p)
			return 0; /* the empty line */
		if (*p == ' ' || *p == '\t')
			return HTTP1_E_SYNTAX; /* obs-fold */
		if (m->n_hdr == HTTP1_MAX_HEADERS)
			return HTTP1_E_TOOBIG;
		const char *n = p;
		while (p < eol && is_tchar((unsigned char)*p))
			p++;
		if (p == n || p == eol || *p != ':')
			return HTTP1_E_SYNTAX; /* empty name, bad char, WS before ':' */
		struct http1_header *h = &m->hdr[m->n_hdr++];
		h->name = n;
		h->name_len = (size_t)(p - n);
		p++;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		const char *v = p;
		for (; p < eol; p++)
			if (!is_vchar_ws((unsigned char)*p))
				return HTTP1_E_SYNTAX;
		const char *ve = eol;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		h->value = v;
		h->value_len = (size_t)(ve - v);
		p = eol + 2;
	}
	return HTTP1_E_SYNTAX;
}

static int
parse_uint(const char *v, size_t len, uint64_t *out)
{
	uint64_t n = 0;

	if (len == 0 || len > 18)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	*out = n;
	return 0;
}

/*
 * Shared checks: Content-Length / Transfer-Encoding / Connection / Host.
 * is_req selects the request rules.
 */
static int
framing(struct http1_msg *m, bool is_req)
{
	int cl = -1, te = -1;

	m->host_idx = -1;
	m->keep_alive = m->minor == 1;
	m->upgrade = false;
	for (size_t i = 0; i < m->n_hdr; i++) {
		const struct http1_header *h = &m->hdr[i];
		if (ieq(h->name, h->name_len, "content-length")) {
			if (cl >= 0)
				return HTTP1_E_FRAMING;
			cl = (int)i;
		} else if (ieq(h->name, h->name_len, "transfer-encoding")) {
			if (te >= 0)
				return HTTP1_E_FRAMING;
			te = (int)i;
		} else if (ieq(h->name, h->name_len, "host")) {
			if (m->host_idx >= 0)
				return HTTP1_E_SYNTAX;
			m->host_idx = (int)i;
		} else if (ieq(h->name, h->name_len, "connection")) {
			if (http1_list_has(h->value, h->value_len, "close"))
				m->keep_alive = false;
			else if (http1_list_has(h->value, h->value_len, "keep-alive"))
				m->keep_alive = true;
			if (http1_list_has(h->value, h->value_len, "upgrade"))
				m->upgrade = true;
		}
	}
	if (cl >= 0 && te >= 0)
		return HTTP1_E_FRAMING;
	if (te >= 0) {
		const struct http1_header *h = &m->hdr[te];
		if (m->minor == 0)
			return HTTP1_E_FRAMING;
		if (ieq(h->value, h->value_len, "chunked")) {
			m->body = HTTP1_BODY_CHUNKED;
		} else if (is_req) {
			return HTTP1_E_FRAMING;
		} else {
			/* a response whose last coding is not chunked: read to close */
			m->body = HTTP1_BODY_CLOSE;
			m->keep_alive = false;
		}
	} else if (cl >= 0) {
		if (parse_uint(m->hdr[cl].value, m->hdr[cl].value_len,
			       &m->content_length) < 0)
			return HTTP1_E_FRAMING;
		m->body = m->content_length ? HTTP1_BODY_LENGTH : HTTP1_BODY_NONE;
	} else if (is_req) {
		m->body = HTTP1_BODY_NONE;
	} else {
		m->body = HTTP1_BODY_CLOSE;
		m->keep_alive = false;
	}
	if (is_req && m->minor == 1 && m->host_idx < 0)
		return HTTP1_E_SYNTAX;
	return 0;
}

int
http1_parse_request(const char *buf, size_t len, struct http1_msg *m)
{
	size_t end = 0;
	int r = head_end(buf, len, &end);

	if (r <= 0)
		return r;
	memset(m, 0, sizeof(*m));
	const char *p = buf, *e = buf + end;
	const char *eol = memchr(p, '\r', end);
	/* method SP target SP version */
	const char *s = p;
	while (p < eol && is_tchar((unsigned char)*p))
		p++;
	if (p == s || p == eol || *p != ' ')
		return HTTP1_E_SYNTAX;
	m->method = s;
	m->method_len = (size_t)(p - s);
	s = ++p;
	while (p < eol && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
		p++;
	if (p == s || p == eol || *p != ' ')
		return HTTP1_E_SYNTAX;
	m->target = s;
	m->target_len = (size_t)(p - s);
	p++;
	if (!parse_version(p, (size_t)(eol - p), &m->minor))
		return eol - p > 5 && memcmp(p, "HTTP/", 5) == 0 ? HTTP1_E_VERSION
								 : HTTP1_E_SYNTAX;
	r = parse_fields(eol + 2, e, m);
	if (r < 0)
		return r;
	m->head_len = end;
	r = framing(m, true);
	if (r < 0)
		return r;
	return (int)end;
}

int
http1_parse_response(const char *buf, size_t len, const char *req_method,
		     size_t req_method_len, struct http1_msg *m)
{
	size_t end = 0;
	int r = head_end(buf, len, &end);

	if (r <= 0)
		return r;
	memset(m, 0, sizeof(*m));
	const char *p = buf;
	const char *eol = memchr(p, '\r', end);
	if (eol - p < 12 || !parse_version(p, 8, &m->minor) || p[8] != ' ')
		return HTTP1_E_SYNTAX;
	p += 9;
	for (int i = 0; i < 3; i++) {
		if (p[i] < '0' || p[i] > '9')
			return HTTP1_E_SYNTAX;
		m->status = m->status * 10 + (p[i] - '0');
	}
	if (m->status < 100 || (p + 3 < eol && p[3] != ' '))
		return HTTP1_E_SYNTAX;
	for (const char *q = p + 3; q < eol; q++)
		if (!is_vchar_ws((unsigned char)*q))
			return HTTP1_E_SYNTAX;
	r = parse_fields(eol + 2, buf + end, m);
	if (r < 0)
		return r;
	m->head_len = end;
	r = framing(m, false);
	if (r < 0)
		return r;
	if ((m->status >= 100 && m->status < 200) || m->status == 204 ||
	    m->status == 304 || ieq(req_method, req_method_len, "HEAD")) {
		/* re-derive keep-alive without the close-delimited default */
		if (m->body == HTTP1_BODY_CLOSE) {
			m->keep_alive = m->minor == 1;
			int c = http1_find(m, "connection");
			if (c >= 0 && http1_list_has(m->hdr[c].value,
						     m->hdr[c].value_len, "close"))
				m->keep_alive = false;
		}
		m->body = HTTP1_BODY_NONE;
	}
	return (int)end;
}

enum {
	CH_SIZE = 0, /* reading hex digits / extension up to CR */
	CH_SIZE_LF,
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER,    /* start of a trailer line (or the final CRLF) */
	CH_TRAILER_IN, /* inside a trailer line */
	CH_TRAILER_LF,
	CH_END_LF,
	CH_DONE,
};

void
http1_chunked_init(struct http1_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
}

static int
hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int
http1_chunked_feed(struct http1_chunked *c, const char *p, size_t len,
		   size_t *consumed)
{
	size_t i = 0;

	while (i < len) {
		unsigned char ch = (unsigned char)p[i];
		switch (c->state) {
		case CH_SIZE:
			if (++c->line > HTTP1_MAX_CHUNK_LINE)
				return HTTP1_E_SYNTAX;
			if (ch == '\r') {
				if (!c->saw_digit)
					return HTTP1_E_SYNTAX;
				c->state = CH_SIZE_LF;
			} else if (c->ext) {
				if (!is_vchar_ws(ch))
					return HTTP1_E_SYNTAX;
			} else if (ch == ';' && c->saw_digit) {
				c->ext = true;
			} else {
				int v = hexval(ch);
				if (v < 0 || c->remaining >> 56)
					return HTTP1_E_SYNTAX;
				c->remaining = c->remaining << 4 | (uint64_t)v;
				c->saw_digit = true;
			}
			i++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return HTTP1_E_SYNTAX;
			i++;
			c->line = 0;
			c->ext = c->saw_digit = false;
			c->state = c->remaining ? CH_DATA : CH_TRAILER;
			break;
		case CH_DATA: {
			size_t n = len - i;
			if (n > c->remaining)
				n = (size_t)c->remaining;
			c->remaining -= n;
			i += n;
			if (c->remaining == 0)
				c->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (ch != '\r')
				return HTTP1_E_SYNTAX;
			i++;
			c->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return HTTP1_E_SYNTAX;
			i++;
			c->state = CH_SIZE;
			break;
		case CH_TRAILER:
			if (ch == '\r') {
				i++;
				c->state = CH_END_LF;
				break;
			}
			if (!is_tchar(ch))
				return HTTP1_E_SYNTAX; /* also refuses obs-fold */
			c->state = CH_TRAILER_IN;
			break;
		case CH_TRAILER_IN:
			if (++c->trailers > HTTP1_MAX_TRAILERS)
				return HTTP1_E_SYNTAX;
			if (ch == '\r')
				c->state = CH_TRAILER_LF;
			else if (!is_vchar_ws(ch))
				return HTTP1_E_SYNTAX;
			i++;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return HTTP1_E_SYNTAX;
			i++;
			c->state = CH_TRAILER;
			break;
		case CH_END_LF:
			if (ch != '\n')
				return HTTP1_E_SYNTAX;
			i++;
			c->state = CH_DONE;
			*consumed = i;
			return 1;
		default:
			*consumed = i;
			return 1;
		}
	}
	*consumed = i;
	return c->state == CH_DONE ? 1 : 0;
}
