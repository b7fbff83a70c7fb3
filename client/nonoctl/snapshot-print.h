/* nonoctl snapshot: terminal output of snapshot.* results (snapshot-print.c). */
#ifndef NONOCTL_SNAPSHOT_PRINT_H
#define NONOCTL_SNAPSHOT_PRINT_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

/* A Snapshot's "id" when it is hex (at most 64 digits), else "?". Borrowed. */
const char *snapshot_id(struct json_object *s);
/* "12.3 MiB" (binary units) into buf. */
void snapshot_human_bytes(char *buf, size_t len, int64_t v);
/* Member key of o (a path; exact bytes from key_hex when present), quoted
 * like git when it is not plain printable UTF-8. To stdout, no newline. */
void snapshot_print_path(struct json_object *o, const char *key);
/* One `snapshot list` line for a Snapshot object. */
void snapshot_print_row(struct json_object *s);
/* The summary of `snapshot create` for a Snapshot object. */
void snapshot_print_created(struct json_object *s);
/* `A/D/M/T<TAB>path` lines for {changes, total, truncated}. */
void snapshot_print_changes(struct json_object *res);
/* Redraw the progress bar on stderr from snapshot.progress params (JSON text). */
void snapshot_print_progress(const char *params);

#endif
