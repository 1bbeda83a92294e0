/* Steps of a test that runs on two threads: one sets the stage, the other
 * waits until it is reached.  For the core tests that hand blocks between
 * threads at fixed points (include after <pthread.h>). */
#ifndef LM_TESTS_CORE_STAGE_H
#define LM_TESTS_CORE_STAGE_H

#include <pthread.h>

static pthread_mutex_t g_stage_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_stage_cv = PTHREAD_COND_INITIALIZER;
static int g_stage;

/* Waits until the stage is s or later. */
static inline void stage_wait(int s) {
  pthread_mutex_lock(&g_stage_mu);
  while (g_stage < s) pthread_cond_wait(&g_stage_cv, &g_stage_mu);
  pthread_mutex_unlock(&g_stage_mu);
}

static inline void stage_set(int s) {
  pthread_mutex_lock(&g_stage_mu);
  g_stage = s;
  pthread_cond_broadcast(&g_stage_cv);
  pthread_mutex_unlock(&g_stage_mu);
}

#endif
