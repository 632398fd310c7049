#include "benchmarks/load/proc.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

namespace strata::bench {
namespace {

// Reads a small /proc file into buf (NUL-terminated); returns its length or -1.
long read_small(const char* path, char* buf, std::size_t cap) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    std::size_t have = 0;
    while (have + 1 < cap) {
        const ssize_t n = ::read(fd, buf + have, cap - 1 - have);
        if (n <= 0) break;
        have += static_cast<std::size_t>(n);
    }
    ::close(fd);
    buf[have] = 0;
    return static_cast<long>(have);
}

}  // namespace

double process_cpu_seconds(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    char buf[2048];
    if (read_small(path, buf, sizeof buf) <= 0) return -1;
    // The command name is in parentheses and may contain spaces: skip past the last ')'.
    const char* p = std::strrchr(buf, ')');
    if (!p) return -1;
    ++p;
    // Fields after ')': state(3) ppid(4) ... utime(14) stime(15), numbered from 1 for pid.
    int field = 2;
    unsigned long long utime = 0, stime = 0;
    while (*p && field < 15) {
        while (*p == ' ') ++p;
        ++field;
        if (field == 14) utime = std::strtoull(p, nullptr, 10);
        if (field == 15) stime = std::strtoull(p, nullptr, 10);
        while (*p && *p != ' ') ++p;
    }
    if (field < 15) return -1;
    static const long hz = ::sysconf(_SC_CLK_TCK);
    return static_cast<double>(utime + stime) / static_cast<double>(hz > 0 ? hz : 100);
}

long process_rss_kib(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
    char buf[8192];
    if (read_small(path, buf, sizeof buf) <= 0) return -1;
    const char* p = std::strstr(buf, "\nVmRSS:");
    if (!p) return -1;
    return std::strtol(p + 7, nullptr, 10);
}

double self_cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

machine_jiffies read_machine_jiffies() {
    char buf[4096];
    machine_jiffies m;
    if (read_small("/proc/stat", buf, sizeof buf) <= 0 || std::strncmp(buf, "cpu ", 4) != 0) return m;
    const char* p = buf + 4;
    for (int i = 0; i < 8; ++i) {  // user nice system idle iowait irq softirq steal
        char* end = nullptr;
        const unsigned long long v = std::strtoull(p, &end, 10);
        if (end == p) break;
        p = end;
        m.total += v;
        if (i != 3 && i != 4) m.busy += v;
    }
    return m;
}

long raise_nofile_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
        ::getrlimit(RLIMIT_NOFILE, &rl);
    }
    return static_cast<long>(rl.rlim_cur);
}

}  // namespace strata::bench
