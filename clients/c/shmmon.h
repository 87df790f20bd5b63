/*
 * shmmon.h: make a C or C++ program a shmmon worker. One header, libc only.
 *
 *     #include "shmmon.h"
 *     for (;;) { do_work(); shmmon_beat(); }   // beats $SHMMON_NAME; a no-op without it
 *
 * or, naming the object:
 *
 *     shmmon_worker w;
 *     if (shmmon_open(&w, "abcd") != 0) { perror("shmmon_open"); exit(2); }  // EINVAL: bad name
 *     for (;;) { do_work(); shmmon_worker_beat(&w); }
 *     shmmon_close(&w);
 *
 * Build: C99 or later, or C++ (any standard); GCC or Clang on Linux; `-lrt` only on glibc before
 * 2.34 (shm_open lived there). Strict ISO modes (-std=c99, -std=c11) hide POSIX: add
 * -D_POSIX_C_SOURCE=200809L, as for any POSIX program. With C11 atomics (<stdatomic.h>) the
 * header uses them; otherwise (C99, C++) the GCC/Clang __atomic builtins.
 *
 * The contract is the Go worker's (package worker):
 *
 *   - shmmon_open opens the existing object NAME as Boost does (shm_open("/NAME", O_RDWR):
 *     /dev/shm/NAME on Linux), maps it once, clears the worker half and writes this process's
 *     pid at offset 8. The monitor creates the object; a worker never does.
 *   - A beat is one atomic add to the sequence at offset 0 and a read of the coarse monotonic
 *     clock, which Linux serves from the vDSO: no system call, no allocation, safe from any
 *     number of threads at once.
 *   - A missing object (no monitor yet, or one that went away) makes beats no-ops, and the
 *     object is tried again at most about once per second. So is one that cannot be used yet:
 *     not a regular file, or under 16 bytes (a Boost checker that created but has not sized it).
 *   - Once per second one beat, whichever comes first after the second is up, also checks the
 *     object: when its monitor marked it retired (the record's flag at size/2 + 76) or the name
 *     shows another object (another inode, or a size below the mapping), the beat reopens it
 *     by name. So a worker follows a monitor that re-published the object, or a Boost checker
 *     that removed and re-created it, within about a second. That check is a shm_open, fstat
 *     and close (a few microseconds), plus mmap and munmap when it switches objects; the other
 *     threads go on beating meanwhile.
 *   - A mapping that was switched away from stays mapped until the next switch (a beat on
 *     another thread may still be adding to it), and is unmapped then or by shmmon_close.
 *
 * SIGBUS. A mapping faults (SIGBUS) when the page it touches is no longer in the object: a
 * third party truncated it under the worker (to 0 bytes, say). C has no portable way to
 * recover, and this header installs no signal handler (a handler is process-wide and would take
 * the faults of the program's own mapped files too). It relies on the monitor's promise
 * instead: shmmon never shrinks an object a worker may have mapped. Every new object, and every
 * new size, is a new file published under the name by rename(2); the old one is marked retired
 * and keeps its size, so the old mapping stays valid until the worker has moved. The Boost
 * checker removes the object and creates a new one. So only someone else who may write the
 * object (its mode lets them) can truncate it, and then the worker dies of SIGBUS at its next
 * beat, as with any truncated mapped file; under `shmmon run` or `shmmon serve` it is restarted
 * like any crashed worker.
 *
 * Byte layout: struct shmmon_worker_half and struct shmmon_record below, native byte order; a
 * compat test compares their offsets with package shmobj's constants. One process beats one
 * object: after fork(), the child still beats its parent's mapping.
 */
#ifndef SHMMON_H
#define SHMMON_H

#if !defined(__cplusplus) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && \
    !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#error "shmmon.h needs POSIX.1-2008 (shm_open, clock_gettime): compile with -D_POSIX_C_SOURCE=200809L, or in a gnu99/gnu11 mode"
#endif

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Atomics: C11's where the compiler has them, else the GCC/Clang builtins (C99, C++). */
#if !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && \
    !defined(__STDC_NO_ATOMICS__)
#include <stdatomic.h>
#define SHMMON_ATOMIC_(T) _Atomic(T)
#define shmmon_load_(p, order) atomic_load_explicit((p), memory_order_##order)
#define shmmon_store_(p, v, order) atomic_store_explicit((p), (v), memory_order_##order)
#define shmmon_add_(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define shmmon_cas_(p, expected, desired)                                          \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_acquire, \
                                            memory_order_relaxed)
#elif defined(__GNUC__)
#define SHMMON_ATOMIC_(T) T
#define SHMMON_ORDER_relaxed_ __ATOMIC_RELAXED
#define SHMMON_ORDER_acquire_ __ATOMIC_ACQUIRE
#define SHMMON_ORDER_release_ __ATOMIC_RELEASE
#define shmmon_load_(p, order) __atomic_load_n((p), SHMMON_ORDER_##order##_)
#define shmmon_store_(p, v, order) __atomic_store_n((p), (v), SHMMON_ORDER_##order##_)
#define shmmon_add_(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define shmmon_cas_(p, expected, desired) \
    __atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)
#else
#error "shmmon.h needs C11 atomics or the GCC/Clang __atomic builtins"
#endif

#if defined(__GCC_ATOMIC_LLONG_LOCK_FREE) && __GCC_ATOMIC_LLONG_LOCK_FREE != 2
#error "shmmon.h needs lock-free 64-bit atomics: another process shares the sequence"
#endif

#if defined(__GNUC__)
/* One default worker for the whole program, however many translation units include this. */
#define SHMMON_SHARED_ __attribute__((weak))
/* The follow check is rare: keep it out of the inlined beat. */
#define SHMMON_COLD_ __attribute__((noinline, cold))
#else
#define SHMMON_SHARED_ static
#define SHMMON_COLD_
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* SHMMON_ENV_NAME is the environment variable naming the object shmmon_beat beats; `shmmon run`
 * and `shmmon serve` set it for the programs they start. */
#define SHMMON_ENV_NAME "SHMMON_NAME"
/* SHMMON_MAX_NAME_LEN is the longest object name, in bytes. */
#define SHMMON_MAX_NAME_LEN 255
/* SHMMON_MIN_SIZE is the smallest object a worker maps: a sequence in each half. */
#define SHMMON_MIN_SIZE 16
/* SHMMON_MAGIC starts a monitor half that holds a status record. */
#define SHMMON_MAGIC "SHMMON01"
/* SHMMON_FOLLOW_PERIOD_NS is how often a worker checks its object (and retries a missing one). */
#define SHMMON_FOLLOW_PERIOD_NS INT64_C(1000000000)

/* The start of the worker half [0, size/2): the part Boost workers write too. */
struct shmmon_worker_half {
    uint64_t sequence; /* +1 per beat; 0 = no beat yet */
    int64_t pid;       /* the worker's pid, written on open (0 = unknown); only when size/2 >= 16 */
};

/* The monitor's status record at the start of the monitor half [size/2, size), present when
 * size/2 >= sizeof(struct shmmon_record), size/2 is a multiple of 8 and magic is SHMMON_MAGIC.
 * The monitor writes every field with an atomic store. A worker reads only retired. */
struct shmmon_record {
    char magic[8];          /* SHMMON_MAGIC, not NUL-terminated */
    uint32_t version;       /* 1 */
    uint32_t length;        /* 128 */
    int64_t monitor_pid;
    int64_t watched_pid;    /* 0 = unknown */
    uint64_t last_seq;      /* the sequence at the last check */
    int64_t last_progress;  /* Unix ns of the last progress; 0 = none yet */
    int64_t last_check;     /* Unix ns of the last check; 0 = none yet */
    int64_t interval;       /* check interval, ns */
    uint32_t stalls;        /* consecutive stalls */
    uint32_t threshold;     /* stalls that make a hang */
    uint32_t state;         /* 0 unknown, 1 waiting, 2 ok, 3 stalled, 4 abnormal, 5 killed, 6 exited, 7 running */
    uint32_t retired;       /* 1: the monitor replaced this object; reopen it by name */
    uint64_t kills;
    uint64_t restarts;
    uint32_t kind;          /* how beats arrive: 0 shm, 1 notify, 2 socket, 3 none, 4 proctab */
    unsigned char reserved[28];
};

/* shmmon_worker beats one object. Open it with shmmon_open; its fields are private. */
typedef struct shmmon_worker {
    SHMMON_ATOMIC_(unsigned char *) mem_; /* the mapping beats go to; NULL while there is none */
    SHMMON_ATOMIC_(int64_t) next_ns_;     /* coarse-clock time of the next follow check */
    SHMMON_ATOMIC_(int) busy_;            /* 1 while a thread runs the follow check */
    SHMMON_ATOMIC_(int) err_;             /* errno of the last failed open; 0 while attached */
    /* Only the thread that holds busy_ (or shmmon_open, shmmon_close) touches these. */
    size_t size_;                         /* the size of mem_ */
    unsigned char *prev_;                 /* the mapping before the last switch */
    size_t prev_size_;
    dev_t dev_;                           /* the identity of the object mem_ maps */
    ino_t ino_;
    int64_t pid_;
    char path_[SHMMON_MAX_NAME_LEN + 2];  /* "/NAME", Boost's name for shm_open */
} shmmon_worker;

static inline int64_t shmmon_now_ns_(void) {
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    /* Read from the vDSO page without a system call, whatever the clock source. */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * INT64_C(1000000000) + (int64_t)ts.tv_nsec;
}

/* shmmon_switch_ makes mem (of size bytes, or NULL) the mapping beats go to. The mapping it
 * replaces is kept until the next switch: a beat on another thread may still be adding to it. */
static inline void shmmon_switch_(shmmon_worker *w, unsigned char *mem, size_t size, const struct stat *st) {
    unsigned char *old = shmmon_load_(&w->mem_, relaxed);
    if (w->prev_ != NULL) munmap(w->prev_, w->prev_size_);
    w->prev_ = old;
    w->prev_size_ = w->size_;
    w->size_ = size;
    w->dev_ = st != NULL ? st->st_dev : 0;
    w->ino_ = st != NULL ? st->st_ino : 0;
    shmmon_store_(&w->mem_, mem, release);
}

/* shmmon_retired_ reports whether the monitor marked the mapped object retired. */
static inline int shmmon_retired_(const shmmon_worker *w, unsigned char *mem) {
    size_t half = w->size_ / 2;
    if (half < sizeof(struct shmmon_record) || half % 8 != 0) return 0; /* no record */
    return shmmon_load_((SHMMON_ATOMIC_(uint32_t) *)(void *)(mem + half + offsetof(struct shmmon_record, retired)),
                        relaxed) != 0;
}

/* shmmon_attach_ opens the object by name and, unless it is the one already mapped (and
 * neither retired nor shrunk), maps it, starts its worker half over and switches to it. When
 * the name shows nothing usable, beats go nowhere until the next try. Only the holder of
 * busy_, or shmmon_open, calls it. */
static inline void shmmon_attach_(shmmon_worker *w) {
    unsigned char *cur = shmmon_load_(&w->mem_, relaxed);
    struct stat st;
    int err = 0;
    /* glibc and musl add O_NOFOLLOW|O_CLOEXEC; O_NONBLOCK keeps a FIFO put in its place from
     * blocking the open. */
    int fd = shm_open(w->path_, O_RDWR | O_NONBLOCK, 0);
    if (fd < 0) {
        err = errno;
    } else if (fstat(fd, &st) != 0) {
        err = errno;
    } else if (!S_ISREG(st.st_mode) || st.st_size < SHMMON_MIN_SIZE) {
        err = EINVAL; /* not an object, or not sized yet */
    } else if ((uintmax_t)st.st_size > (uintmax_t)SIZE_MAX) {
        err = EFBIG;
    } else if (cur != NULL && st.st_dev == w->dev_ && st.st_ino == w->ino_ &&
               (size_t)st.st_size >= w->size_ && !shmmon_retired_(w, cur)) {
        close(fd); /* still ours */
        return;
    } else {
        size_t size = (size_t)st.st_size, half = size / 2;
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            err = errno;
        } else {
            unsigned char *mem = (unsigned char *)m;
            struct shmmon_worker_half *wh = (struct shmmon_worker_half *)m;
            shmmon_store_((SHMMON_ATOMIC_(uint64_t) *)(void *)&wh->sequence, (uint64_t)0, relaxed);
            if (half >= sizeof *wh) {
                memset(mem + sizeof *wh, 0, half - sizeof *wh);
                shmmon_store_((SHMMON_ATOMIC_(int64_t) *)(void *)&wh->pid, w->pid_, relaxed);
            }
            close(fd);
            shmmon_switch_(w, mem, size, &st);
            shmmon_store_(&w->err_, 0, relaxed);
            return;
        }
    }
    if (fd >= 0) close(fd);
    if (cur != NULL) shmmon_switch_(w, NULL, 0, NULL); /* gone, replaced by nothing usable */
    shmmon_store_(&w->err_, err, relaxed);
}

/* shmmon_follow_ runs the once-per-second check for the beat that found the second up. */
SHMMON_COLD_ static void shmmon_follow_(shmmon_worker *w, int64_t now) {
    int idle = 0;
    if (!shmmon_cas_(&w->busy_, &idle, 1)) return; /* another thread checks */
    if (now >= shmmon_load_(&w->next_ns_, relaxed)) {
        shmmon_store_(&w->next_ns_, now + SHMMON_FOLLOW_PERIOD_NS, relaxed);
        if (w->path_[0] != '\0') shmmon_attach_(w); /* never opened: nothing to follow */
    }
    shmmon_store_(&w->busy_, 0, release);
}

/* shmmon_open starts w beating the object name: 1 to 255 bytes, no '/', not "." or "..".
 * It returns 0, or -1 with errno EINVAL for a bad name (w or name NULL included); there is no
 * other error: a missing or unusable object makes the beats no-ops until a monitor publishes
 * it (see shmmon_worker_error). w must not be open already (shmmon_close it first). */
static inline int shmmon_open(shmmon_worker *w, const char *name) {
    size_t n;
    if (w == NULL || name == NULL) {
        errno = EINVAL;
        return -1;
    }
    n = strlen(name);
    if (n == 0 || n > SHMMON_MAX_NAME_LEN || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0) {
        errno = EINVAL;
        return -1;
    }
    memset(w, 0, sizeof *w);
    w->path_[0] = '/';
    memcpy(w->path_ + 1, name, n + 1);
    w->pid_ = (int64_t)getpid();
    shmmon_attach_(w);
    shmmon_store_(&w->next_ns_, shmmon_now_ns_() + SHMMON_FOLLOW_PERIOD_NS, release);
    return 0;
}

/* shmmon_worker_beat bumps w's sequence by one: an atomic add, no system call (see the top of
 * this file for the once-per-second check). Safe from many threads at once; it must not run
 * concurrently with shmmon_close. After shmmon_close it does nothing. */
static inline void shmmon_worker_beat(shmmon_worker *w) {
    unsigned char *mem = shmmon_load_(&w->mem_, acquire);
    int64_t now;
    if (mem != NULL) shmmon_add_((SHMMON_ATOMIC_(uint64_t) *)(void *)mem, (uint64_t)1);
    now = shmmon_now_ns_();
    if (now >= shmmon_load_(&w->next_ns_, relaxed)) shmmon_follow_(w, now);
}

/* shmmon_worker_error returns 0 while w has an object to beat, else the errno of its last try
 * to open it: ENOENT (no monitor yet), EACCES (the object's mode shuts this user out), EINVAL
 * (the name shows no regular file of at least 16 bytes), or another of shm_open and mmap. */
static inline int shmmon_worker_error(shmmon_worker *w) { return shmmon_load_(&w->err_, relaxed); }

/* shmmon_close unmaps w's object. Safe to call twice; no beat may run concurrently with it. */
static inline void shmmon_close(shmmon_worker *w) {
    unsigned char *mem = shmmon_load_(&w->mem_, relaxed);
    shmmon_store_(&w->next_ns_, INT64_MAX, relaxed); /* no more follow checks */
    shmmon_store_(&w->mem_, (unsigned char *)NULL, relaxed);
    if (mem != NULL) munmap(mem, w->size_);
    if (w->prev_ != NULL) munmap(w->prev_, w->prev_size_);
    w->prev_ = NULL;
    w->size_ = w->prev_size_ = 0;
}

/* The worker of shmmon_beat; state 0 not opened yet, 1 opening, 2 open, 3 disabled. */
struct shmmon_default_ {
    SHMMON_ATOMIC_(int) state;
    shmmon_worker w;
};
SHMMON_SHARED_ struct shmmon_default_ shmmon_default_worker_;

/* shmmon_beat beats the object named by the environment variable SHMMON_NAME, which
 * `shmmon run` and `shmmon serve` set. The first call opens it as shmmon_open does (threads
 * that call at the same time wait for it); without the variable, or with an invalid name in
 * it, shmmon_beat does nothing. */
static inline void shmmon_beat(void) {
    struct shmmon_default_ *d = &shmmon_default_worker_;
    int state = shmmon_load_(&d->state, acquire);
    if (state != 2) {
        int unopened = 0;
        if (state == 0 && shmmon_cas_(&d->state, &unopened, 1)) {
            const char *name = getenv(SHMMON_ENV_NAME);
            int ok = name != NULL && shmmon_open(&d->w, name) == 0;
            shmmon_store_(&d->state, ok ? 2 : 3, release);
        }
        while ((state = shmmon_load_(&d->state, acquire)) == 1) sched_yield();
        if (state != 2) return;
    }
    shmmon_worker_beat(&d->w);
}

#ifdef __cplusplus
}
#endif

#endif /* SHMMON_H */
