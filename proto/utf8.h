/* Strict UTF-8 validation (RFC 3629): no overlongs, surrogates or > U+10FFFF. */
#ifndef PROTO_UTF8_H
#define PROTO_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Length of the longest prefix of s[0..len) made of complete, valid UTF-8
 * sequences. NUL bytes count as valid here; callers that forbid them check
 * separately. Never reads beyond s+len.
 */
size_t utf8_valid_prefix(const char *s, size_t len);

/* True when all of s[0..len) is valid UTF-8. */
bool utf8_valid(const char *s, size_t len);

/*
 * A path that is not UTF-8 travels in JSON as "path_hex", the hex of its
 * bytes. Decoded into a new NUL-terminated string (caller frees); NULL when
 * hex is empty, of odd length, not hex, holds a NUL byte, or on ENOMEM.
 */
char *path_from_hex(const char *hex);

#endif
