/*
 * c_bench: times the beat of the C client (clients/c/shmmon.h) for BENCHMARKS.md, in Go
 * benchmark format, beside boost_bench's Boost reopen pattern:
 *
 *   BenchmarkCBeat <iters> <ns> ns/op           shmmon_worker_beat from one thread
 *   BenchmarkCBeatParallel <iters> <ns> ns/op   2 threads beating one object (wall time per beat,
 *                                               as Go's RunParallel reports it)
 *
 * It creates its own object (shmmon-cbench-<pid>, 4096 bytes), as a monitor would, and removes
 * it at the end, on errors and on SIGINT/SIGTERM.
 */
#define _POSIX_C_SOURCE 200809L

#include "shmmon.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

static const char prog[] = "c_bench";
static char name[64];
static volatile sig_atomic_t stop;
static shmmon_worker w;

static void on_stop(int sig) {
    (void)sig;
    stop = 1;
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long long per_thread;

static void *beater(void *arg) {
    long long i;
    (void)arg;
    for (i = 0; i < per_thread; i++) shmmon_worker_beat(&w);
    return NULL;
}

/* run beats n times on `threads` threads (1: on this one) and returns the wall time in ns. */
static int64_t run(long long n, int threads) {
    int64_t t0 = mono_ns();
    if (threads == 1) {
        long long i;
        for (i = 0; i < n; i++) shmmon_worker_beat(&w);
    } else {
        pthread_t tid[2];
        int t;
        per_thread = n / threads;
        for (t = 0; t < threads; t++) pthread_create(&tid[t], NULL, beater, NULL);
        for (t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    }
    return mono_ns() - t0;
}

/* bench grows the count as Go's testing package does until one run takes at least 1 s, and
 * prints that run. It returns 0, or 1 when interrupted. */
static int bench(const char *label, int threads) {
    long long n = 1;
    for (;;) {
        int64_t ns;
        if (stop) return 1;
        ns = run(n, threads);
        if (ns >= 1000000000 || n >= 2000000000LL) {
            printf("%s %lld %.2f ns/op\n", label, n, (double)ns / (double)n);
            fflush(stdout);
            return 0;
        }
        {
            double want = ns > 0 ? 1.2e9 * (double)n / (double)ns : (double)n * 100;
            long long next;
            if (want > (double)n * 100) want = (double)n * 100;
            next = (long long)want;
            if (next < n + 1) next = n + 1;
            if (next % threads != 0) next += threads - next % threads;
            n = next < 2000000000LL ? next : 2000000000LL;
        }
    }
}

int main(void) {
    struct sigaction sa;
    int fd, rc;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    snprintf(name, sizeof name, "/shmmon-cbench-%ld", (long)getpid());
    fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
        fprintf(stderr, "%s: create %s: %s\n", prog, name, strerror(errno));
        return 1;
    }
    rc = ftruncate(fd, 4096) != 0 ? errno : 0;
    close(fd);
    if (rc == 0 && shmmon_open(&w, name + 1) != 0) rc = errno;
    if (rc == 0) rc = shmmon_worker_error(&w);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot set up %s: %s\n", prog, name, strerror(rc));
        shm_unlink(name);
        return 1;
    }
    rc = bench("BenchmarkCBeat", 1);
    if (rc == 0) rc = bench("BenchmarkCBeatParallel", 2);
    shmmon_close(&w);
    shm_unlink(name);
    if (rc != 0) fprintf(stderr, "%s: interrupted, object removed\n", prog);
    return rc;
}
