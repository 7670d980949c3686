// A fork-join pool of spinning worker threads. Decode runs a few hundred short parallel products per token
// (each 50-500 us); waking sleeping threads through the kernel costs tens of microseconds per product on a
// virtual machine, so workers spin between products and sleep only after a long idle stretch.
#ifndef LC_POOL_H
#define LC_POOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*lc_task_fn)(void *context, int64_t task);

/// Runs fn(context, t) for every t in [0, tasks) on up to `threads` threads (the caller is one of them) and
/// returns when all are done. Runs everything on the calling thread when called from inside a task or while
/// another thread's job holds the pool.
void lc_parallel_for(int64_t tasks, int threads, lc_task_fn fn, void *context);

/// 1 when the calling thread is running a task of lc_parallel_for.
int lc_in_parallel_task(void);

#ifdef __cplusplus
}
#endif

#endif
