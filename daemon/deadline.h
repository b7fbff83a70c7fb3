/* Absolute deadlines for the timed waits (pthread_cond_timedwait and kin). */
#ifndef DAEMON_DEADLINE_H
#define DAEMON_DEADLINE_H

#include <time.h>

/* The time on clk ms milliseconds from now, normalized. */
struct timespec deadline_after(clockid_t clk, unsigned int ms);

#endif
