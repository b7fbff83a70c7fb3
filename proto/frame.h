/* Newline-delimited framing: find one message in a contiguous buffer. */
#ifndef PROTO_FRAME_H
#define PROTO_FRAME_H

#include <stddef.h>

enum frame_status {
	FRAME_TOO_LONG = -1, /* no LF within max+1 bytes: framing is lost */
	FRAME_NEED_MORE = 0, /* no LF yet, and fewer than max+1 bytes buffered */
	FRAME_OK = 1,        /* a message of *msg_len bytes; consume *msg_len + 1 */
};

/*
 * Scan buf[0..len) for the first LF. A message is at most max bytes, not
 * counting the LF (a trailing CR before the LF is kept in the message and is
 * JSON whitespace, so it parses). Never reads beyond buf+len.
 */
enum frame_status frame_scan(const char *buf, size_t len, size_t max,
			     size_t *msg_len);

#endif
