/*
 * Output buffers of HTTP exchanges: merging small writes into one TLS
 * record, and the request head that carries a rendered secret: kept in one
 * chain, lent to libevent by reference and wiped in place when libevent is
 * done with it (never freed or copied with the secret in it).
 */
#include <errno.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "proxy-int.h"

/*
 * A TLS stream writes one record (and one write(2)) per evbuffer chain
 * link: a response head and a small body moved in as separate links cost
 * two records and two syscalls. Below one record's worth, make them one.
 */
void
outbuf_coalesce(struct evbuffer *out)
{
	size_t len = evbuffer_get_length(out);

	if (len > 0 && len <= PROXY_COALESCE_MAX && evbuffer_peek(out, -1, NULL, NULL, 0) > 1)
		evbuffer_pullup(out, -1);
}

/*
 * Free a buffer that may hold a rendered secret, wiping every chain in
 * place (a pullup would copy into a new chain and free the old ones unwiped).
 */
void
outbuf_wipe_free(struct evbuffer *b)
{
	struct evbuffer_ptr pos;
	struct evbuffer_iovec v;

	if (b == NULL)
		return;
	if (evbuffer_ptr_set(b, &pos, 0, EVBUFFER_PTR_SET) == 0) {
		while (evbuffer_peek(b, -1, &pos, &v, 1) > 0 && v.iov_len > 0) {
			OPENSSL_cleanse(v.iov_base, v.iov_len);
			if (evbuffer_ptr_set(b, &pos, v.iov_len, EVBUFFER_PTR_ADD) < 0)
				break;
		}
	}
	evbuffer_free(b);
}

/* libevent is done with a request head it was lent: wipe it. */
static void
head_sent_cb(const void *data, size_t len, void *arg)
{
	outbuf_wipe_free(arg);
}

/*
 * Make *headp one chain (it normally is: request.c reserves the room), so it
 * can be lent out whole and wiped in one place. Copies, if it must, into a
 * fresh buffer and wipes the old. On failure *headp is wiped and NULL.
 */
int
outbuf_head_flatten(struct evbuffer **headp)
{
	struct evbuffer *head = *headp, *flat;
	size_t len = evbuffer_get_length(head);
	struct evbuffer_iovec v;

	if (evbuffer_peek(head, -1, NULL, NULL, 0) <= 1)
		return 0;
	flat = evbuffer_new();
	if (flat == NULL || evbuffer_expand(flat, len) < 0 ||
	    evbuffer_reserve_space(flat, (ev_ssize_t)len, &v, 1) != 1 ||
	    evbuffer_copyout(head, v.iov_base, len) != (ev_ssize_t)len) {
		if (flat)
			evbuffer_free(flat); /* nothing committed: no copy in it */
		outbuf_wipe_free(head);
		*headp = NULL;
		return -ENOMEM;
	}
	v.iov_len = len;
	evbuffer_commit_space(flat, &v, 1);
	outbuf_wipe_free(head);
	*headp = flat;
	return 0;
}

/*
 * Lend the (flattened) request head to the upstream output, so that once
 * written, or dropped with the connection, it is wiped rather than freed
 * with the secret in it. Takes head in every case.
 */
int
outbuf_head_lend(struct evbuffer *out, struct evbuffer *head)
{
	size_t len = evbuffer_get_length(head);
	unsigned char *p = evbuffer_pullup(head, -1); /* one chain: no copy */

	if (p == NULL || evbuffer_add_reference(out, p, len, head_sent_cb, head) < 0) {
		outbuf_wipe_free(head);
		return -ENOMEM;
	}
	return 0;
}
