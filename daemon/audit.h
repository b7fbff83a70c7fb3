/*
 * The audit trail of proxied requests: every request and refusal, written
 * in batches so the proxy never waits on the disk, never with secret bytes
 * (the proxy hands over only the secret's name).
 */
#ifndef DAEMON_AUDIT_H
#define DAEMON_AUDIT_H

#include <sys/types.h>

struct proxy_audit_record;

int audit_init(void);
/* Queue one record (proxy callback; ctx unused). */
void audit_proxy_record(void *ctx, const struct proxy_audit_record *rec);
/* Write what is queued now. */
void audit_flush(void);
void audit_fini(void);

#endif
