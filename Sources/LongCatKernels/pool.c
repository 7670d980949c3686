// Fork-join pool (see lc_pool.h). One job at a time, published in one of two slots by bumping
// `generation`. Workers claim tasks from the slot with an atomic counter, so the caller waits only for the
// tasks to finish, never for a worker that the OS has not scheduled yet. A slot is rewritten two
// generations later, and only once no worker still holds it: a worker announces itself in `users` and then
// checks that the generation has not moved on before reading the slot.
#include "lc_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define LC_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define LC_PAUSE() __asm__ __volatile__("yield")
#else
#define LC_PAUSE() ((void)0)
#endif

enum { LC_MAX_WORKERS = 255 };
// How long an idle worker spins before it sleeps: long enough to bridge the gaps between the products
// of a decode step, short enough not to hold a core away from other processes for long.
static const int64_t LC_SPIN_NANOSECONDS = 200000;

typedef struct {
    lc_task_fn fn;
    void *context;
    int64_t tasks;
    int participants;  // worker indices below this take part (the caller is not counted)
    atomic_int_fast64_t next_task;
    atomic_int_fast64_t done;
    atomic_int users;
} lc_job;

static struct {
    pthread_mutex_t submit;  // held by the thread whose job is running
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    atomic_int sleepers;
    atomic_uint_fast64_t generation;
    int workers;
    lc_job slots[2];
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static uint64_t start_generation[LC_MAX_WORKERS];
static _Thread_local int in_task = 0;

int lc_in_parallel_task(void) { return in_task; }

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void run_tasks(lc_job *job) {
    in_task = 1;
    for (;;) {
        int64_t t = atomic_fetch_add(&job->next_task, 1);
        if (t >= job->tasks) break;
        job->fn(job->context, t);
        atomic_fetch_add_explicit(&job->done, 1, memory_order_release);
    }
    in_task = 0;
}

static uint64_t wait_for_generation(uint64_t seen) {
    int64_t spin_start = now_ns();
    for (unsigned spins = 1;; spins++) {
        uint64_t g = atomic_load_explicit(&pool.generation, memory_order_acquire);
        if (g != seen) return g;
        LC_PAUSE();
        if ((spins & 255) == 0 && now_ns() - spin_start > LC_SPIN_NANOSECONDS) break;
    }
    pthread_mutex_lock(&pool.sleep_lock);
    atomic_fetch_add(&pool.sleepers, 1);
    uint64_t g;
    while ((g = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.sleep_lock);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.sleep_lock);
    return g;
}

static void *worker_main(void *arg) {
    const int index = (int)(intptr_t)arg;
    uint64_t seen = start_generation[index];
    for (;;) {
        seen = wait_for_generation(seen);
        lc_job *job = &pool.slots[seen & 1];
        atomic_fetch_add(&job->users, 1);
        if (atomic_load(&pool.generation) == seen && index < job->participants) run_tasks(job);
        atomic_fetch_sub(&job->users, 1);
    }
    return NULL;
}

void lc_parallel_for(int64_t tasks, int threads, lc_task_fn fn, void *context) {
    if (tasks <= 0) return;
    if (threads > LC_MAX_WORKERS + 1) threads = LC_MAX_WORKERS + 1;
    if (tasks == 1 || threads <= 1 || in_task || pthread_mutex_trylock(&pool.submit) != 0) {
        for (int64_t t = 0; t < tasks; t++) fn(context, t);
        return;
    }
    while (pool.workers < threads - 1) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        // A new worker takes part from the next generation on, however late its thread starts.
        start_generation[pool.workers] = atomic_load(&pool.generation);
        int ok = pthread_create(&thread, &attr, worker_main, (void *)(intptr_t)pool.workers) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break;
        pool.workers++;
    }
    const uint64_t generation = atomic_load(&pool.generation) + 1;
    lc_job *job = &pool.slots[generation & 1];
    while (atomic_load(&job->users) > 0) LC_PAUSE();  // a late worker still looking at this slot's last job
    job->fn = fn;
    job->context = context;
    job->tasks = tasks;
    job->participants = threads - 1;
    atomic_store(&job->next_task, 0);
    atomic_store(&job->done, 0);
    atomic_store(&pool.generation, generation);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep_lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep_lock);
    }
    run_tasks(job);
    // Tasks a worker claimed are still running; give up the core now and then in case it needs ours.
    for (unsigned spins = 1; atomic_load_explicit(&job->done, memory_order_acquire) < tasks; spins++) {
        LC_PAUSE();
        if ((spins & 4095) == 0) sched_yield();
    }
    pthread_mutex_unlock(&pool.submit);
}
