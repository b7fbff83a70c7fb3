/*
 * Newline-delimited framing. A message is the bytes before the first LF and
 * is at most max bytes long; if max+1 bytes are buffered without an LF the
 * peer has exceeded the limit and framing is lost.
 */
#include <stdint.h>
#include <string.h>

#include "frame.h"

enum frame_status frame_scan(const char *buf, size_t len, size_t max,
			     size_t *msg_len)
{
	/* An LF may sit at index max at the latest (message of max bytes). */
	size_t window = max < SIZE_MAX ? max + 1 : max;
	const char *lf;

	if (window > len)
		window = len;
	lf = window > 0 ? memchr(buf, '\n', window) : NULL;
	if (lf != NULL) {
		*msg_len = (size_t)(lf - buf);
		return FRAME_OK;
	}
	if (len > max)
		return FRAME_TOO_LONG;
	return FRAME_NEED_MORE;
}
