// boost_bench: times the access patterns of plain Boost.Interprocess peers so
// the Go benchmarks have something to be compared with. Results are printed
// in Go benchmark format:
//
//   BenchmarkBoostReopenBeat <iters> <ns> ns/op       worker: open_only + map +
//                                                     clear half + store seq
//   BenchmarkBoostMapCheck <iters> <ns> ns/op         checker: map an open object
//                                                     + read seq + compare
//   BenchmarkBoostScan/objects=<N> <iters> <ns> ns/op one pass over N objects,
//                                                     map-per-check each
//
// Usage: boost_bench [OBJECTS]   (default 10000)
//
// The objects are named shmmon-bench-<pid>-<i>, sized 4096, and are removed
// again at the end, on errors and on SIGINT/SIGTERM.

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
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
#include <vector>

namespace bip = boost::interprocess;
using Clock = std::chrono::steady_clock;

namespace {

const char kProg[] = "boost_bench";
const bip::offset_t kObjectSize = 4096;

volatile std::sig_atomic_t g_stop = 0;

extern "C" void on_stop(int) { g_stop = 1; }

struct Interrupted : std::runtime_error {
    Interrupted() : std::runtime_error("interrupted") {}
};

void check_stop() {
    if (g_stop) throw Interrupted();
}

// Objects owns the names this process created and removes them on destruction.
class Objects {
public:
    explicit Objects(long pid) : prefix_("shmmon-bench-" + std::to_string(pid) + "-") {}
    ~Objects() { remove_all(); }
    Objects(const Objects &) = delete;
    Objects &operator=(const Objects &) = delete;

    // create makes object i (create_only) and keeps its descriptor open.
    void create(std::size_t i) {
        const std::string name = prefix_ + std::to_string(i);
        bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write);
        names_.push_back(name);  // ours from now on: removed even if truncate fails
        shm.truncate(kObjectSize);
        open_.emplace_back();
        open_.back().swap(shm);
    }

    const std::string &name(std::size_t i) const { return names_[i]; }
    bip::shared_memory_object &shm(std::size_t i) { return open_[i]; }
    std::size_t size() const { return open_.size(); }

    void remove_all() {
        open_.clear();  // close the descriptors first
        for (const std::string &n : names_) bip::shared_memory_object::remove(n.c_str());
        names_.clear();
    }

private:
    std::string prefix_;
    std::vector<std::string> names_;
    std::vector<bip::shared_memory_object> open_;
};

// run_bench grows the iteration count the way Go's testing package does
// until one run of fn(n) takes at least `target` and has at least min_iters
// iterations; it then prints that run.
template <typename Fn>
void run_bench(const std::string &label, Clock::duration target, std::int64_t min_iters, Fn fn) {
    std::int64_t n = 1;
    for (;;) {
        check_stop();
        const auto t0 = Clock::now();
        fn(n);
        const auto elapsed = Clock::now() - t0;
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
        if ((elapsed >= target && n >= min_iters) || n >= 1000000000LL) {
            std::printf("%s %lld %.2f ns/op\n", label.c_str(), static_cast<long long>(n),
                        static_cast<double>(ns) / static_cast<double>(n));
            std::fflush(stdout);
            return;
        }
        const double target_ns =
            static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(target).count());
        // Aim 20% past the target, grow at most 100x, at least by one.
        double want = ns > 0 ? 1.2 * target_ns * static_cast<double>(n) / static_cast<double>(ns)
                             : static_cast<double>(n) * 100.0;
        want = std::min(want, static_cast<double>(n) * 100.0);
        std::int64_t next = static_cast<std::int64_t>(want);
        next = std::max<std::int64_t>(next, n + 1);
        next = std::max<std::int64_t>(next, min_iters);
        n = std::min<std::int64_t>(next, 1000000000LL);
    }
}

// Checker state per object, as the reference checker keeps it.
struct CheckState {
    std::uint64_t last = 0;
    unsigned failures = 0;
};

inline int map_check(bip::shared_memory_object &shm, CheckState &st) {
    bip::mapped_region region(shm, bip::read_write);
    std::uint64_t seq = 0;
    std::memcpy(&seq, region.get_address(), sizeof seq);
    if (seq != 0 && seq <= st.last) {
        ++st.failures;
        return st.failures == 3 ? -2 : -1;
    }
    st.last = seq;
    return 0;
}

void raise_fd_limit(std::size_t want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    const rlim_t need = static_cast<rlim_t>(want) + 64;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) ? need : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int run(std::size_t nobjects) {
    Objects objs(static_cast<long>(getpid()));
    raise_fd_limit(nobjects);
    for (std::size_t i = 0; i < nobjects; ++i) {
        check_stop();
        objs.create(i);
    }

    // Worker pattern: reopen by name, map, clear the worker half, store seq.
    {
        const std::string name = objs.name(0);
        std::uint64_t seq = 0;
        run_bench("BenchmarkBoostReopenBeat", std::chrono::seconds(1), 1, [&](std::int64_t n) {
            for (std::int64_t i = 0; i < n; ++i) {
                bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_write);
                bip::mapped_region region(shm, bip::read_write);
                char *base = static_cast<char *>(region.get_address());
                std::memset(base, 0, region.get_size() / 2);
                ++seq;
                std::memcpy(base, &seq, sizeof seq);
            }
        });
    }

    // Checker pattern on one object that stays open: map, read, compare.
    long long sink = 0;
    {
        bip::shared_memory_object &shm = objs.shm(0);
        CheckState st;
        run_bench("BenchmarkBoostMapCheck", std::chrono::seconds(1), 1, [&](std::int64_t n) {
            for (std::int64_t i = 0; i < n; ++i) sink += map_check(shm, st);
        });
    }

    // A scan over every object, each checked with a fresh mapping.
    {
        std::vector<CheckState> states(objs.size());
        run_bench("BenchmarkBoostScan/objects=" + std::to_string(objs.size()),
                  std::chrono::seconds(1), 5, [&](std::int64_t n) {
                      for (std::int64_t i = 0; i < n; ++i) {
                          check_stop();
                          for (std::size_t j = 0; j < objs.size(); ++j)
                              sink += map_check(objs.shm(j), states[j]);
                      }
                  });
    }
    if (sink == 42) std::fprintf(stderr, " ");  // keep the checks observable
    objs.remove_all();
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc > 2) {
        std::fprintf(stderr, "usage: %s [OBJECTS]\n", kProg);
        return 2;
    }
    long long nobjects = 10000;
    if (argc == 2) {
        errno = 0;
        char *end = nullptr;
        const char *s = argv[1];
        nobjects = std::strtoll(s, &end, 10);
        if (*s == '\0' || errno != 0 || *end != '\0' || nobjects < 1 || nobjects > 1000000) {
            std::fprintf(stderr, "%s: bad OBJECTS '%s': want an integer from 1 to 1000000\n", kProg,
                         s);
            return 2;
        }
    }

    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    try {
        return run(static_cast<std::size_t>(nobjects));
    } catch (const Interrupted &) {
        std::fprintf(stderr, "%s: interrupted, objects removed\n", kProg);
        return 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s: %s\n", kProg, e.what());
        return 1;
    }
}
