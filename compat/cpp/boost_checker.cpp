// boost_checker: the reference checker. It reproduces the behaviour of the
// original Boost.Interprocess SharedMemoryChecker, quirks included, so the Go
// monitor can be compared against it:
//
//   - startup: remove NAME (a missing object is fine), create it create_only
//     read_write, then truncate it to SIZE (there is a window in which the
//     object exists with size 0);
//   - each check maps the whole object anew and reads the uint64 at offset 0;
//   - a sequence that is not greater than the last one (and is not 0) counts
//     as a failure: the result is -2 when the failure count equals THRESHOLD,
//     otherwise -1 (so failures after the threshold go back to -1);
//   - the failure count is never reset, a sequence of 0 always passes and
//     becomes the new "last", and a restarted worker (smaller sequence) is
//     counted as failing;
//   - on exit the object is left in place (it is not removed).
//
// Usage: boost_checker NAME SIZE INTERVAL_MS [COUNT] [THRESHOLD]
//   COUNT      number of checks, 0 or absent = run until SIGTERM/SIGINT
//   THRESHOLD  failure count that yields -2 (default 3)
//
// Output (stdout, flushed per line):
//   boost_checker NAME ready size S
//   check K result R seq S            (K counts from 1)

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
#include <string>

#include "stop_signals.hpp"

namespace bip = boost::interprocess;

namespace {

const char kProg[] = "boost_checker";

void usage() {
    std::fprintf(stderr, "usage: %s NAME SIZE INTERVAL_MS [COUNT] [THRESHOLD]\n", kProg);
}

// parse_int accepts a whole decimal integer in [lo, hi].
bool parse_int(const char *s, long long lo, long long hi, long long &out) {
    if (s == nullptr || *s == '\0') return false;
    errno = 0;
    char *end = nullptr;
    long long v = std::strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') return false;
    if (v < lo || v > hi) return false;
    out = v;
    return true;
}

class SeqChecker {
public:
    SeqChecker(const std::string &name, bip::offset_t size, unsigned threshold)
        : threshold_(threshold) {
        bip::shared_memory_object::remove(name.c_str());
        bip::shared_memory_object created(bip::create_only, name.c_str(), bip::read_write);
        shm_.swap(created);
        shm_.truncate(size);
    }

    // check returns 0 (ok), -1 (failed) or -2 (failure count hit the
    // threshold); seq_out receives the sequence that was read.
    int check(std::uint64_t &seq_out) {
        bip::mapped_region region(shm_, bip::read_write);
        std::uint64_t seq = 0;
        std::memcpy(&seq, region.get_address(), sizeof seq);
        seq_out = seq;
        if (seq != 0 && seq <= last_) {
            ++failures_;
            return failures_ == threshold_ ? -2 : -1;
        }
        last_ = seq;
        return 0;
    }

private:
    bip::shared_memory_object shm_;
    std::uint64_t last_ = 0;
    unsigned failures_ = 0;
    unsigned threshold_;
};

}  // namespace

int main(int argc, char **argv) {
    if (argc > 6) {
        std::fprintf(stderr, "%s: unexpected argument '%s' (usage: %s NAME SIZE INTERVAL_MS [COUNT] [THRESHOLD])\n",
                     kProg, argv[6], kProg);
        return 2;
    }
    if (argc < 4) {
        usage();
        return 2;
    }
    const std::string name = argv[1];
    if (name.empty()) {
        std::fprintf(stderr, "%s: bad NAME '': must not be empty\n", kProg);
        return 2;
    }
    long long size = 0, interval_ms = 0, count = 0, threshold = 3;
    if (!parse_int(argv[2], 8, (1LL << 40), size)) {
        std::fprintf(stderr, "%s: bad SIZE '%s': want an integer from 8 to %lld bytes\n", kProg,
                     argv[2], (1LL << 40));
        return 2;
    }
    if (!parse_int(argv[3], 1, 2147483647LL, interval_ms)) {
        std::fprintf(stderr, "%s: bad INTERVAL_MS '%s': want an integer number of milliseconds > 0\n",
                     kProg, argv[3]);
        return 2;
    }
    if (argc > 4 && !parse_int(argv[4], 0, (1LL << 62), count)) {
        std::fprintf(stderr, "%s: bad COUNT '%s': want an integer >= 0 (0 = forever)\n", kProg,
                     argv[4]);
        return 2;
    }
    if (argc > 5 && !parse_int(argv[5], 1, 1000000, threshold)) {
        std::fprintf(stderr, "%s: bad THRESHOLD '%s': want an integer from 1 to 1000000\n", kProg,
                     argv[5]);
        return 2;
    }

    // Block the stop signals before anything else: they are collected only between two checks,
    // so a signal can never slip in unnoticed.
    sigset_t stop_set;
    if (!stop_signals::block_stop_signals(stop_set)) {
        std::fprintf(stderr, "%s: sigprocmask: %s\n", kProg, std::strerror(errno));
        return 1;
    }

    SeqChecker *checker = nullptr;
    try {
        checker = new SeqChecker(name, static_cast<bip::offset_t>(size),
                                 static_cast<unsigned>(threshold));
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s: %s: %s\n", kProg, name.c_str(), e.what());
        return 1;
    }

    std::printf("%s %s ready size %lld\n", kProg, name.c_str(), size);
    std::fflush(stdout);

    const auto interval = std::chrono::milliseconds(interval_ms);
    auto next = std::chrono::steady_clock::now() + interval;
    int rc = 0;
    for (long long k = 1; count == 0 || k <= count; ++k) {
        if (stop_signals::sleep_until(stop_set, next) != 0) break;  // SIGTERM/SIGINT: exit 0
        std::uint64_t seq = 0;
        int result = 0;
        try {
            result = checker->check(seq);
        } catch (const std::exception &e) {
            std::fprintf(stderr, "%s: %s: check %lld: %s\n", kProg, name.c_str(), k, e.what());
            rc = 1;
            break;
        }
        std::printf("check %lld result %d seq %llu\n", k, result,
                    static_cast<unsigned long long>(seq));
        std::fflush(stdout);

        next += interval;
        const auto now = std::chrono::steady_clock::now();
        if (next < now) next = now;  // fell behind: no burst of checks
    }
    delete checker;  // closes the descriptor; the object stays in /dev/shm
    return rc;
}
