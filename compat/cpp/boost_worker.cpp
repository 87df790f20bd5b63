// boost_worker: a heartbeat worker written the way an ordinary C++ service
// using Boost.Interprocess does it. On every beat it reopens the object by
// name, maps all of it, clears the worker half (the first size/2 bytes) and
// stores its beat counter in bytes 0..7 (native byte order).
//
// It knows nothing about the monitor: while the object is missing or cannot
// be mapped it reports the error once and simply tries again next period.
//
// Usage: boost_worker [-v] [NAME [PERIOD_MS]]
//   NAME       object name (default: $SHMMON_NAME, else SHMMON_DEFAULT_NAME)
//   PERIOD_MS  beat period in milliseconds, > 0 (default 1000)
//   -v         print "boost_worker NAME pid P seq N" for every beat
//
// SIGTERM and SIGINT end it with status 0 (between beats, never halfway
// through one). They are blocked and collected while it sleeps, so they work
// even when the shell started it with SIGINT ignored (background jobs).

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include <unistd.h>

#include "stop_signals.hpp"

#ifndef SHMMON_DEFAULT_NAME
#define SHMMON_DEFAULT_NAME "abcd"
#endif

namespace bip = boost::interprocess;

namespace {

const char kProg[] = "boost_worker";

void usage() {
    std::fprintf(stderr, "usage: %s [-v] [NAME [PERIOD_MS]]\n", kProg);
}

// parse_period accepts a decimal integer in [1, INT32_MAX] milliseconds.
bool parse_period(const char *s, long long &out) {
    if (s == nullptr || *s == '\0') return false;
    errno = 0;
    char *end = nullptr;
    long long v = std::strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') return false;
    if (v <= 0 || v > 2147483647LL) return false;
    out = v;
    return true;
}

// One beat, exactly as a plain Boost worker does it: open, map, clear the
// worker half, store the next sequence number. Throws on any failure; the
// counter only advances once the object is open and mapped.
std::uint64_t beat(const std::string &name, std::uint64_t &counter) {
    bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_write);
    bip::mapped_region region(shm, bip::read_write);
    const std::size_t size = region.get_size();
    if (size < sizeof(std::uint64_t)) {
        throw std::runtime_error("object is smaller than 8 bytes (size " +
                                 std::to_string(size) + ")");
    }
    char *base = static_cast<char *>(region.get_address());
    std::memset(base, 0, size / 2);
    ++counter;
    std::memcpy(base, &counter, sizeof counter);
    return counter;
}

}  // namespace

int main(int argc, char **argv) {
    bool verbose = false;
    int argi = 1;
    for (; argi < argc; ++argi) {
        const char *a = argv[argi];
        if (std::strcmp(a, "-v") == 0) {
            verbose = true;
        } else if (std::strcmp(a, "--") == 0) {
            ++argi;
            break;
        } else if (std::strcmp(a, "-h") == 0 || std::strcmp(a, "--help") == 0) {
            usage();
            return 0;
        } else if (a[0] == '-' && a[1] != '\0') {
            std::fprintf(stderr, "%s: unknown option '%s' (usage: %s [-v] [NAME [PERIOD_MS]])\n",
                         kProg, a, kProg);
            return 2;
        } else {
            break;
        }
    }
    const int rest = argc - argi;
    if (rest > 2) {
        std::fprintf(stderr, "%s: unexpected argument '%s' (usage: %s [-v] [NAME [PERIOD_MS]])\n",
                     kProg, argv[argi + 2], kProg);
        return 2;
    }

    std::string name;
    if (rest >= 1) {
        name = argv[argi];
    } else if (const char *env = std::getenv("SHMMON_NAME"); env != nullptr && *env != '\0') {
        name = env;
    } else {
        name = SHMMON_DEFAULT_NAME;
    }
    if (name.empty()) {
        std::fprintf(stderr, "%s: empty NAME\n", kProg);
        return 2;
    }

    long long period_ms = 1000;
    if (rest == 2 && !parse_period(argv[argi + 1], period_ms)) {
        std::fprintf(stderr, "%s: bad PERIOD_MS '%s': want an integer number of milliseconds > 0\n",
                     kProg, argv[argi + 1]);
        return 2;
    }

    sigset_t stop_set;
    if (!stop_signals::block_stop_signals(stop_set)) {
        std::fprintf(stderr, "%s: sigprocmask: %s\n", kProg, std::strerror(errno));
        return 1;
    }

    const long pid = static_cast<long>(getpid());
    const auto period = std::chrono::milliseconds(period_ms);
    std::uint64_t counter = 0;
    std::string last_error;  // last error reported; cleared by a good beat

    auto next = std::chrono::steady_clock::now();
    for (;;) {
        try {
            const std::uint64_t seq = beat(name, counter);
            last_error.clear();
            if (verbose) {
                std::printf("%s %s pid %ld seq %llu\n", kProg, name.c_str(), pid,
                            static_cast<unsigned long long>(seq));
                std::fflush(stdout);
            }
        } catch (const std::exception &e) {
            const std::string msg = e.what();
            if (msg != last_error) {
                std::fprintf(stderr, "%s: %s: %s\n", kProg, name.c_str(), msg.c_str());
                std::fflush(stderr);
                last_error = msg;
            }
        }

        next += period;
        const auto now = std::chrono::steady_clock::now();
        if (next < now) next = now;  // fell behind (stopped, starved): no burst of beats
        if (stop_signals::sleep_until(stop_set, next) != 0) return 0;  // SIGTERM/SIGINT
    }
}
