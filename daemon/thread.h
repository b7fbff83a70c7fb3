/* nonod's helper threads: signals stay with the event loop's thread. */
#ifndef DAEMON_THREAD_H
#define DAEMON_THREAD_H

#include <pthread.h>
#include <stdbool.h>

/* Start fn(arg) on a new thread (detached, or joinable through *th) with
 * every signal blocked, so none is delivered to it. 0 or -errno. */
int thread_start(pthread_t *th, bool detached, void *(*fn)(void *), void *arg);

#endif
