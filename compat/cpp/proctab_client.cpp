// proctab_client: a peer of the older heartbeat design, written for this
// project with plain System V calls. Services of that design share one
// System V segment holding a table of fixed-size process records and guard
// it with a System V semaphore used as a mutex; a checkproc sweeper kills
// the processes whose heartbeat is older than their timeout.
//
// The table (x86-64, C layout, checked by the static_asserts below):
//   segment    shm key 0x5095, SLOTS records (default 1000), mode 0666
//   record     72 bytes: int32 pid @0 (0 = free slot), char name[51] @4
//              (NUL-terminated), int32 timeout @56 (seconds), int64 atime
//              @64 (Unix seconds of the last heartbeat)
//   lock       semaphore set key 0x5095, semaphore 0 used as a mutex: the
//              process that creates the set sets it to 1; take = -1, release
//              = +1, both with SEM_UNDO, so a holder that dies releases it.
//
// Usage:
//   proctab_client [-v] [--key K] [--sem-key K] [--slots N] NAME TIMEOUT_S PERIOD_MS [COUNT]
//       Registers NAME (at most 50 bytes) with TIMEOUT_S under the lock: the
//       record that already holds this pid is reused, else the first free
//       one. Prints "proctab_client NAME pid P slot S registered", then
//       stores atime = time(nullptr) every PERIOD_MS (with -v it prints
//       "proctab_client NAME pid P slot S atime T" each time). After COUNT
//       updates (0 or absent = no limit), or on SIGTERM/SIGINT, it clears
//       its record under the lock (if the record still holds its pid) and
//       exits 0.
//   proctab_client --layout
//       Prints "sizeof 72 pid 0 name 4 timeout 56 atime 64" and exits 0.
//   proctab_client [--key K] [--sem-key K] --hold-lock
//       Takes the lock, prints "locked" and waits; SIGTERM/SIGINT release the
//       lock and end it with 0, SIGKILL leaves the release to SEM_UNDO.
//
//   --key K      shm key, decimal or 0x hex, not 0 (default 0x5095)
//   --sem-key K  semaphore key (default: the --key value, so 0x5095 when
//                neither is given)
//   --slots N    number of records in the segment (default 1000)
//
// Exit status: 0 done, 1 system call failure or full table, 2 bad arguments.
// Errors are one line on stderr.
//
// SIGTERM and SIGINT are blocked from the start and collected while the
// program sleeps or waits for the lock, so they are never acted on halfway
// through an update and they work in background jobs that ignore SIGINT.

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include "stop_signals.hpp"

namespace {

const char kProg[] = "proctab_client";
const char kUsage[] =
    "usage: proctab_client [-v] [--key K] [--sem-key K] [--slots N] NAME TIMEOUT_S PERIOD_MS [COUNT]\n"
    "       proctab_client --layout\n"
    "       proctab_client [--key K] [--sem-key K] --hold-lock\n";

constexpr long long kDefaultKey = 0x5095;
constexpr long long kDefaultSlots = 1000;
constexpr std::size_t kNameSize = 51;  // name field, NUL included

// One process record, laid out as the original C++ services lay it out.
struct ProcRecord {
    std::int32_t pid;
    char name[kNameSize];
    std::int32_t timeout;
    std::int64_t atime;
};

static_assert(sizeof(ProcRecord) == 72, "record must be 72 bytes");
static_assert(offsetof(ProcRecord, pid) == 0, "pid must be at offset 0");
static_assert(offsetof(ProcRecord, name) == 4, "name must be at offset 4");
static_assert(offsetof(ProcRecord, timeout) == 56, "timeout must be at offset 56");
static_assert(offsetof(ProcRecord, atime) == 64, "atime must be at offset 64");
static_assert(sizeof(time_t) == sizeof(std::int64_t), "time_t must be 64 bits");

// The largest table whose byte size still fits an int (shmget takes size_t,
// but no real table comes near this).
constexpr long long kMaxSlots = 2147483647LL / static_cast<long long>(sizeof(ProcRecord));

// How long one lock attempt waits before looking at pending stop signals.
constexpr long kLockPollNs = 100 * 1000 * 1000;

// glibc leaves the definition of semctl's fourth argument to the caller.
union SemArg {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

// parse_ll accepts a whole number in [lo, hi]; with allow_hex a leading 0x
// or 0X selects base 16, otherwise (and always without it) base 10.
bool parse_ll(const char *s, bool allow_hex, long long lo, long long hi, long long &out) {
    if (s == nullptr || *s == '\0') return false;
    int base = 10;
    const char *digits = s;
    if (allow_hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        digits = s + 2;
    }
    // strtoll would accept leading blanks and a sign: insist on a digit.
    if (!(*digits >= '0' && *digits <= '9') &&
        !(base == 16 && ((*digits >= 'a' && *digits <= 'f') || (*digits >= 'A' && *digits <= 'F')))) {
        return false;
    }
    errno = 0;
    char *end = nullptr;
    const long long v = std::strtoll(digits, &end, base);
    if (errno != 0 || end == digits || *end != '\0') return false;
    if (v < lo || v > hi) return false;
    out = v;
    return true;
}

// bad_arg reports a bad command-line value and returns the exit status 2.
int bad_arg(const char *what, const char *value, const char *want) {
    std::fprintf(stderr, "%s: bad %s '%s': %s\n", kProg, what, value, want);
    return 2;
}

// sys_fail reports a failed system call (errno) and returns the exit status 1.
int sys_fail(const std::string &what) {
    std::fprintf(stderr, "%s: %s: %s\n", kProg, what.c_str(), std::strerror(errno));
    return 1;
}

std::string hex_key(key_t key) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%x", static_cast<unsigned>(key));
    return buf;
}


// The semaphore used as the table's mutex.
class TableLock {
public:
    explicit TableLock(key_t key) : key_(key) {}

    // open gets the set, creating it (and setting it to 1) when absent.
    // Returns 0, or an exit status after reporting the error.
    int open() {
        id_ = semget(key_, 1, IPC_CREAT | IPC_EXCL | 0666);
        if (id_ != -1) {
            // We created it: a new Linux semaphore is 0, i.e. "held".
            SemArg arg;
            arg.val = 1;
            if (semctl(id_, 0, SETVAL, arg) == -1) {
                const int err = errno;
                semctl(id_, 0, IPC_RMID);  // do not leave a lock nobody can take
                errno = err;
                return sys_fail("semctl SETVAL semaphore key " + hex_key(key_));
            }
            return 0;
        }
        if (errno != EEXIST) return sys_fail("semget semaphore key " + hex_key(key_));
        id_ = semget(key_, 1, 0666);
        if (id_ == -1) return sys_fail("semget semaphore key " + hex_key(key_));
        return 0;
    }

    // take waits for the lock. With stop_set it gives up when SIGTERM/SIGINT
    // is pending and returns -1 (the signal is consumed); without it waits
    // regardless. Returns 0 when taken, or an exit status (> 0) after
    // reporting a failure.
    int take(const sigset_t *stop_set) {
        struct sembuf op;
        op.sem_num = 0;
        op.sem_op = -1;
        op.sem_flg = SEM_UNDO;
        for (;;) {
            // The same operation as semop, bounded so that the stop signals
            // are still noticed while another process holds the lock.
            struct timespec poll = {0, kLockPollNs};
            if (semtimedop(id_, &op, 1, &poll) == 0) {
                held_ = true;
                return 0;
            }
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return sys_fail("semop take lock, semaphore key " + hex_key(key_));
            if (stop_set != nullptr && stop_signals::pending_stop(*stop_set) != 0) return -1;
        }
    }

    // release gives the lock back. Returns 0, or an exit status after
    // reporting a failure.
    int release() {
        if (!held_) return 0;
        struct sembuf op;
        op.sem_num = 0;
        op.sem_op = 1;
        op.sem_flg = SEM_UNDO;
        for (;;) {
            if (semop(id_, &op, 1) == 0) {
                held_ = false;
                return 0;
            }
            if (errno != EINTR) return sys_fail("semop release lock, semaphore key " + hex_key(key_));
        }
    }

private:
    key_t key_;
    int id_ = -1;
    bool held_ = false;
};

// attach gets (creating if absent) and maps the table. Returns 0, or an exit
// status after reporting the error.
int attach(key_t key, long long slots, ProcRecord *&table) {
    const std::size_t bytes = static_cast<std::size_t>(slots) * sizeof(ProcRecord);
    const int id = shmget(key, bytes, IPC_CREAT | 0666);
    if (id == -1) {
        const int err = errno;
        std::string hint;
        // EINVAL mostly means an existing segment smaller than asked for.
        if (err == EINVAL) {
            const int old = shmget(key, 0, 0);
            struct shmid_ds ds;
            if (old != -1 && shmctl(old, IPC_STAT, &ds) == 0) {
                const auto have = static_cast<unsigned long long>(ds.shm_segsz);
                hint = " (the existing segment has " + std::to_string(have) + " bytes = " +
                       std::to_string(have / sizeof(ProcRecord)) + " slots)";
            }
        }
        std::fprintf(stderr, "%s: shmget key %s (%lld slots, %zu bytes): %s%s\n", kProg, hex_key(key).c_str(),
                     slots, bytes, std::strerror(err), hint.c_str());
        return 1;
    }
    void *p = shmat(id, nullptr, 0);
    if (p == reinterpret_cast<void *>(-1)) return sys_fail("shmat key " + hex_key(key));
    table = static_cast<ProcRecord *>(p);
    return 0;
}

int print_layout() {
    std::printf("sizeof %zu pid %zu name %zu timeout %zu atime %zu\n", sizeof(ProcRecord),
                offsetof(ProcRecord, pid), offsetof(ProcRecord, name), offsetof(ProcRecord, timeout),
                offsetof(ProcRecord, atime));
    std::fflush(stdout);
    return 0;
}

int hold_lock(key_t sem_key, const sigset_t &stop_set) {
    TableLock lock(sem_key);
    if (int rc = lock.open(); rc != 0) return rc;
    const int rc = lock.take(&stop_set);
    if (rc < 0) return 0;  // stopped while waiting
    if (rc > 0) return rc;
    std::printf("locked\n");
    std::fflush(stdout);
    for (;;) {
        int sig = 0;
        if (sigwait(&stop_set, &sig) == 0 && (sig == SIGTERM || sig == SIGINT)) break;
    }
    return lock.release();
}

struct ClientArgs {
    key_t key;
    key_t sem_key;
    long long slots;
    std::string name;
    std::int32_t timeout;
    long long period_ms;
    long long count;  // 0 = no limit
    bool verbose;
};

// unregister clears the record in slot if it still holds pid, under the
// lock, and detaches the table. Returns the exit status.
int unregister(TableLock &lock, ProcRecord *table, long long slot, std::int32_t pid) {
    if (int rc = lock.take(nullptr); rc != 0) return rc;
    ProcRecord *rec = &table[slot];
    if (rec->pid == pid) {
        // pid first: a reader that skips the lock never sees our pid next
        // to a zeroed atime (which would look like a long-stalled process).
        __atomic_store_n(&rec->pid, 0, __ATOMIC_RELEASE);
        std::memset(rec->name, 0, sizeof rec->name);
        rec->timeout = 0;
        rec->atime = 0;
    }
    const int rc = lock.release();
    shmdt(table);
    return rc;
}

int run_client(const ClientArgs &a, const sigset_t &stop_set) {
    TableLock lock(a.sem_key);
    if (int rc = lock.open(); rc != 0) return rc;
    ProcRecord *table = nullptr;
    if (int rc = attach(a.key, a.slots, table); rc != 0) return rc;

    const std::int32_t pid = static_cast<std::int32_t>(getpid());
    if (int rc = lock.take(&stop_set); rc != 0) {
        shmdt(table);
        return rc < 0 ? 0 : rc;  // stopped before registering: nothing to undo
    }
    long long slot = -1;
    for (long long i = 0; i < a.slots; ++i) {
        if (table[i].pid == pid) {  // left behind by an earlier process with our pid
            slot = i;
            break;
        }
    }
    for (long long i = 0; slot < 0 && i < a.slots; ++i) {
        if (table[i].pid == 0) slot = i;
    }
    if (slot < 0) {
        lock.release();
        shmdt(table);
        std::fprintf(stderr, "%s: table full (%lld slots)\n", kProg, a.slots);
        return 1;
    }
    ProcRecord *rec = &table[slot];
    // Fresh atime first and pid last, so that a reader that skips the lock
    // never sees our pid with someone else's old heartbeat.
    rec->atime = static_cast<std::int64_t>(std::time(nullptr));
    rec->timeout = a.timeout;
    std::memset(rec->name, 0, sizeof rec->name);
    std::memcpy(rec->name, a.name.data(), a.name.size());
    __atomic_store_n(&rec->pid, pid, __ATOMIC_RELEASE);
    if (int rc = lock.release(); rc != 0) {
        shmdt(table);
        return rc;
    }
    std::printf("%s %s pid %ld slot %lld registered\n", kProg, a.name.c_str(), static_cast<long>(pid), slot);
    std::fflush(stdout);

    const auto period = std::chrono::milliseconds(a.period_ms);
    long long done = 0;
    auto next = std::chrono::steady_clock::now();
    for (;;) {
        next += period;
        const auto now = std::chrono::steady_clock::now();
        if (next < now) next = now;  // fell behind (stopped, starved): no burst of updates
        if (stop_signals::sleep_until(stop_set, next) != 0) break;  // SIGTERM/SIGINT

        if (rec->pid != pid) {
            // Someone cleared or took over the record: never write into a
            // record that is not ours.
            std::fprintf(stderr, "%s: slot %lld no longer holds pid %ld (record cleared by another process)\n",
                         kProg, slot, static_cast<long>(pid));
            shmdt(table);
            return 1;
        }
        const std::int64_t t = static_cast<std::int64_t>(std::time(nullptr));
        rec->atime = t;  // the heartbeat: a plain store, as the original does
        ++done;
        if (a.verbose) {
            std::printf("%s %s pid %ld slot %lld atime %lld\n", kProg, a.name.c_str(), static_cast<long>(pid), slot,
                        static_cast<long long>(t));
            std::fflush(stdout);
        }
        if (a.count > 0 && done >= a.count) break;
    }
    return unregister(lock, table, slot, pid);
}

// option_value returns the value of "--opt V" or "--opt=V" when argv[i] is
// that option (advancing i past V), nullptr otherwise; missing is set when
// the option is given without a value.
const char *option_value(int argc, char **argv, int &i, const char *opt, bool &missing) {
    const char *a = argv[i];
    const std::size_t n = std::strlen(opt);
    if (std::strncmp(a, opt, n) != 0) return nullptr;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return nullptr;
    if (i + 1 >= argc) {
        missing = true;
        return nullptr;
    }
    return argv[++i];
}

}  // namespace

int main(int argc, char **argv) {
    bool verbose = false, layout = false, hold = false;
    long long key = kDefaultKey, sem_key = -1, slots = kDefaultSlots;
    int argi = 1;
    for (; argi < argc; ++argi) {
        const char *a = argv[argi];
        bool missing = false;
        const char *v = nullptr;
        if (std::strcmp(a, "--") == 0) {
            ++argi;
            break;
        } else if (std::strcmp(a, "-h") == 0 || std::strcmp(a, "--help") == 0) {
            std::fputs(kUsage, stderr);
            return 0;
        } else if (std::strcmp(a, "-v") == 0) {
            verbose = true;
        } else if (std::strcmp(a, "--layout") == 0) {
            layout = true;
        } else if (std::strcmp(a, "--hold-lock") == 0) {
            hold = true;
        } else if ((v = option_value(argc, argv, argi, "--key", missing)) != nullptr) {
            if (!parse_ll(v, true, 1, 0xffffffffLL, key))
                return bad_arg("--key", v, "want a key in decimal or 0x hex, 1 to 0xffffffff");
        } else if ((v = option_value(argc, argv, argi, "--sem-key", missing)) != nullptr) {
            if (!parse_ll(v, true, 1, 0xffffffffLL, sem_key))
                return bad_arg("--sem-key", v, "want a key in decimal or 0x hex, 1 to 0xffffffff");
        } else if ((v = option_value(argc, argv, argi, "--slots", missing)) != nullptr) {
            if (!parse_ll(v, false, 1, kMaxSlots, slots))
                return bad_arg("--slots", v, ("want a decimal number of records, 1 to " + std::to_string(kMaxSlots)).c_str());
        } else if (missing) {
            std::fprintf(stderr, "%s: option '%s' needs a value\n", kProg, a);
            return 2;
        } else if (a[0] == '-' && a[1] != '\0') {
            std::fprintf(stderr, "%s: unknown option '%s' (try --help)\n", kProg, a);
            return 2;
        } else {
            break;
        }
    }
    if (sem_key < 0) sem_key = key;
    const int rest = argc - argi;

    if (layout && hold) {
        std::fprintf(stderr, "%s: --layout and --hold-lock exclude each other\n", kProg);
        return 2;
    }
    if ((layout || hold) && rest > 0) {
        std::fprintf(stderr, "%s: unexpected argument '%s' with %s\n", kProg, argv[argi],
                     layout ? "--layout" : "--hold-lock");
        return 2;
    }
    if (layout) return print_layout();

    ClientArgs ca;
    ca.key = static_cast<key_t>(static_cast<std::uint32_t>(key));
    ca.sem_key = static_cast<key_t>(static_cast<std::uint32_t>(sem_key));
    ca.slots = slots;
    ca.verbose = verbose;
    if (!hold) {
        if (rest < 3 || rest > 4) {
            if (rest > 4) {
                std::fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n", kProg, argv[argi + 4]);
            } else {
                std::fprintf(stderr, "%s: want NAME TIMEOUT_S PERIOD_MS [COUNT] (try --help)\n", kProg);
            }
            return 2;
        }
        ca.name = argv[argi];
        if (ca.name.empty() || ca.name.size() >= kNameSize) {
            return bad_arg("NAME", argv[argi], ("want 1 to " + std::to_string(kNameSize - 1) + " bytes").c_str());
        }
        long long v = 0;
        if (!parse_ll(argv[argi + 1], false, 1, 2147483647LL, v))
            return bad_arg("TIMEOUT_S", argv[argi + 1], "want a whole number of seconds > 0");
        ca.timeout = static_cast<std::int32_t>(v);
        if (!parse_ll(argv[argi + 2], false, 1, 2147483647LL, ca.period_ms))
            return bad_arg("PERIOD_MS", argv[argi + 2], "want a whole number of milliseconds > 0");
        ca.count = 0;
        if (rest == 4 && !parse_ll(argv[argi + 3], false, 0, 9223372036854775807LL, ca.count))
            return bad_arg("COUNT", argv[argi + 3], "want a whole number of updates >= 0 (0 = no limit)");
    }

    sigset_t stop_set;
    if (!stop_signals::block_stop_signals(stop_set)) return sys_fail("sigprocmask");

    if (hold) return hold_lock(ca.sem_key, stop_set);
    return run_client(ca, stop_set);
}
