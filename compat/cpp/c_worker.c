/*
 * c_worker: a C worker written with clients/c/shmmon.h only, for the compat tests.
 *
 *   c_worker [--name NAME] [--period MS] [--for MS]   beat every MS ms (default 20), for MS ms
 *                                                     (default: until killed); print "ready"
 *                                                     after the first beat
 *   c_worker [--name NAME] --threads K --beats M      K threads beat M times each, then print
 *                                                     "beats K*M" and exit 0
 *   c_worker [--name NAME] --burst N                  beat, wait 1.2 s, beat (past the first
 *                                                     follow check), then beat N times between two
 *                                                     writes to stderr ("burst begin", "burst
 *                                                     end"), and exit
 *   c_worker --layout                                 print the header's byte layout
 *
 * Without --name it beats with shmmon_beat() (the object SHMMON_NAME names), else through
 * shmmon_open(NAME) and shmmon_worker_beat. Bad usage exits 2 with one line on stderr.
 */
#define _POSIX_C_SOURCE 200809L

#include "shmmon.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>

static const char prog[] = "c_worker";
static shmmon_worker named;
static int use_named;

static void beat(void) {
    if (use_named)
        shmmon_worker_beat(&named);
    else
        shmmon_beat();
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static long beats_per_thread;

/* beater beats beats_per_thread times, pausing 1 ms every 100 beats so that the run spans
 * several of the monitor's checks. */
static void *beater(void *arg) {
    long i;
    (void)arg;
    for (i = 1; i <= beats_per_thread; i++) {
        beat();
        if (i % 100 == 0) sleep_ms(1);
    }
    return NULL;
}

static void layout(void) {
    printf("sequence %zu pid %zu record %zu magic %zu version %zu length %zu monitor_pid %zu watched_pid %zu "
           "last_seq %zu last_progress %zu last_check %zu interval %zu stalls %zu threshold %zu state %zu "
           "retired %zu kills %zu restarts %zu kind %zu min_size %d max_name %d follow_ms %lld\n",
           offsetof(struct shmmon_worker_half, sequence), offsetof(struct shmmon_worker_half, pid),
           sizeof(struct shmmon_record), offsetof(struct shmmon_record, magic),
           offsetof(struct shmmon_record, version), offsetof(struct shmmon_record, length),
           offsetof(struct shmmon_record, monitor_pid), offsetof(struct shmmon_record, watched_pid),
           offsetof(struct shmmon_record, last_seq), offsetof(struct shmmon_record, last_progress),
           offsetof(struct shmmon_record, last_check), offsetof(struct shmmon_record, interval),
           offsetof(struct shmmon_record, stalls), offsetof(struct shmmon_record, threshold),
           offsetof(struct shmmon_record, state), offsetof(struct shmmon_record, retired),
           offsetof(struct shmmon_record, kills), offsetof(struct shmmon_record, restarts),
           offsetof(struct shmmon_record, kind), SHMMON_MIN_SIZE, SHMMON_MAX_NAME_LEN,
           (long long)(SHMMON_FOLLOW_PERIOD_NS / 1000000));
}

/* number parses the value of flag as an integer from min to max, or exits 2. */
static long number(const char *flag, const char *s, long min, long max) {
    char *end = NULL;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
        fprintf(stderr, "%s: bad %s '%s': want an integer from %ld to %ld\n", prog, flag, s, min, max);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    const char *name = NULL;
    long period = 20, duration = 0, threads = 0, burst = 0;
    int i;
    for (i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--layout") == 0) {
            layout();
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: bad argument '%s': want --name NAME, --period MS, --for MS, --threads K --beats M, --burst N or --layout\n",
                    prog, flag);
            return 2;
        }
        if (strcmp(flag, "--name") == 0) name = argv[++i];
        else if (strcmp(flag, "--period") == 0) period = number(flag, argv[++i], 1, 60000);
        else if (strcmp(flag, "--for") == 0) duration = number(flag, argv[++i], 1, LONG_MAX);
        else if (strcmp(flag, "--threads") == 0) threads = number(flag, argv[++i], 1, 64);
        else if (strcmp(flag, "--beats") == 0) beats_per_thread = number(flag, argv[++i], 1, 100000000);
        else if (strcmp(flag, "--burst") == 0) burst = number(flag, argv[++i], 1, 1000000000);
        else {
            fprintf(stderr, "%s: bad argument '%s': want --name NAME, --period MS, --for MS, --threads K --beats M, --burst N or --layout\n",
                    prog, flag);
            return 2;
        }
    }
    if ((threads > 0) != (beats_per_thread > 0)) {
        fprintf(stderr, "%s: --threads and --beats go together\n", prog);
        return 2;
    }
    if (name != NULL) {
        if (shmmon_open(&named, name) != 0) {
            fprintf(stderr, "%s: bad --name '%s': want 1-255 bytes, no '/', not '.' or '..'\n", prog, name);
            return 2;
        }
        use_named = 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (burst > 0) {
        long n;
        /* Past the first follow period, so that the burst runs in the steady state: one beat
         * now, one after the period (it runs the check), then the burst within the next. */
        beat();
        sleep_ms(1200);
        beat();
        /* The two writes are the markers a system-call trace is cut at. */
        if (write(2, "burst begin\n", 12) < 0) return 1;
        for (n = 0; n < burst; n++) beat();
        if (write(2, "burst end\n", 10) < 0) return 1;
        return 0;
    }
    if (threads > 0) {
        pthread_t tid[64];
        long t;
        for (t = 0; t < threads; t++) {
            if (pthread_create(&tid[t], NULL, beater, NULL) != 0) {
                fprintf(stderr, "%s: pthread_create failed\n", prog);
                return 1;
            }
        }
        for (t = 0; t < threads; t++) pthread_join(tid[t], NULL);
        printf("beats %ld\n", threads * beats_per_thread);
        return 0;
    }

    beat();
    printf("ready\n");
    {
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
            sleep_ms(period);
            beat();
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (duration > 0 && (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >= duration)
                break;
        }
    }
    if (use_named) shmmon_close(&named);
    return 0;
}
