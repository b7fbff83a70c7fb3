/*
 * libFuzzer target for the strict HTTP/1.1 parser: request and response
 * heads and the chunked-body validator, fed whole and in two pieces (the
 * incremental answer must match the one-shot answer).
 * Build and run: tests/unit/proxy/fuzz/run.sh [SECONDS]
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http1_msg m;
	const char *p = (const char *)data;
	int r = http1_parse_request(p, size, &m);

	if (r > 0) {
		if ((size_t)r > size || m.head_len != (size_t)r || m.n_hdr > HTTP1_MAX_HEADERS)
			abort();
		for (size_t i = 0; i < m.n_hdr; i++)
			if (m.hdr[i].name < p || m.hdr[i].value + m.hdr[i].value_len > p + r)
				abort();
	}
	/* a prefix of a complete head is never an error, and never complete */
	if (r > 1) {
		int r2 = http1_parse_request(p, (size_t)r - 1, &m);
		if (r2 != 0)
			abort();
	}
	http1_parse_response(p, size, "GET", 3, &m);

	struct http1_chunked a, b;
	size_t ua = 0, ub1 = 0, ub2 = 0;
	http1_chunked_init(&a);
	http1_chunked_init(&b);
	int ra = http1_chunked_feed(&a, p, size, &ua);
	size_t half = size / 2;
	int rb = http1_chunked_feed(&b, p, half, &ub1);
	if (rb == 0)
		rb = http1_chunked_feed(&b, p + half, size - half, &ub2);
	else
		ub2 = 0;
	if (ra < 0 ? rb >= 0 : (ra != rb || ua != ub1 + ub2))
		abort();
	return 0;
}
