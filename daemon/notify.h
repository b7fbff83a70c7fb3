/* Service-manager notifications (sd_notify): readiness, status, reload, stop, watchdog. */
#ifndef DAEMON_NOTIFY_H
#define DAEMON_NOTIFY_H

struct event_base;

void notify_ready(const char *status);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void notify_reloading(void);
void notify_reloaded(void);
void notify_stopping(void);
/* Ping WATCHDOG=1 at half the interval the manager asked for (if it asked). */
int notify_watchdog_start(struct event_base *base);
void notify_watchdog_stop(void);

#endif
