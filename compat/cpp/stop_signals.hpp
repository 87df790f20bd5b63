// stop_signals.hpp: how the C++ peers end on SIGTERM and SIGINT. The two
// signals are blocked from the start and collected only while a peer sleeps
// or waits, so they are never acted on halfway through a beat, a check or an
// update, and they work in background jobs whose shell ignores SIGINT.
//
//   block_stop_signals(set)        block SIGTERM and SIGINT, and fill set with
//                                  them; false (errno set) when sigprocmask fails
//   sleep_until(set, deadline)     sleep until the monotonic deadline; the
//                                  stop signal taken meanwhile, or 0 at the
//                                  deadline (a signal already pending then
//                                  still counts)
//   pending_stop(set)              take a pending stop signal without waiting:
//                                  its number, or 0 when none is pending

#ifndef SHMMON_COMPAT_STOP_SIGNALS_HPP
#define SHMMON_COMPAT_STOP_SIGNALS_HPP

#include <cerrno>
#include <chrono>
#include <csignal>

#include <time.h>

namespace stop_signals {

inline bool block_stop_signals(sigset_t &set) {
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return sigprocmask(SIG_BLOCK, &set, nullptr) == 0;
}

inline int sleep_until(const sigset_t &set, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        auto left = deadline - std::chrono::steady_clock::now();
        if (left < std::chrono::steady_clock::duration::zero()) left = left.zero();
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        struct timespec ts;
        ts.tv_sec = static_cast<time_t>(ns / 1000000000LL);
        ts.tv_nsec = static_cast<long>(ns % 1000000000LL);
        const int sig = sigtimedwait(&set, nullptr, &ts);
        if (sig > 0) return sig;
        if (errno == EINTR) continue;  // e.g. woken by SIGCONT: wait out the rest
        return 0;                      // EAGAIN: deadline reached
    }
}

inline int pending_stop(const sigset_t &set) {
    return sleep_until(set, std::chrono::steady_clock::now());
}

}  // namespace stop_signals

#endif  // SHMMON_COMPAT_STOP_SIGNALS_HPP
