/* Small threading helpers. */
#ifndef HODEI_SYNC_H
#define HODEI_SYNC_H

#include <pthread.h>
#include <stdint.h>

/* Initialises cv to time its waits on CLOCK_MONOTONIC (pthread_cond_timedwait
 * deadlines then come from clock_gettime(CLOCK_MONOTONIC), immune to wall
 * clock jumps). Returns pthread_cond_init's result. */
int hodei_cond_init_monotonic(pthread_cond_t *cv);

/* Waits on cv (made by hodei_cond_init_monotonic) at most ms milliseconds;
 * pthread_cond_timedwait's result. */
int hodei_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

#endif
