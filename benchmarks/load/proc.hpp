// strata-bench: what /proc says about the broker and the machine.
#pragma once

#include <cstdint>
#include <sys/types.h>

namespace strata::bench {

// utime + stime of a process in seconds; < 0 when it cannot be read.
double process_cpu_seconds(pid_t pid);

// VmRSS of a process in KiB; < 0 when it cannot be read.
long process_rss_kib(pid_t pid);

// CPU time of this process (user + system), seconds.
double self_cpu_seconds();

// Aggregate jiffies of all CPUs: busy (everything but idle and iowait) and total.
struct machine_jiffies {
    std::uint64_t busy = 0;
    std::uint64_t total = 0;
};
machine_jiffies read_machine_jiffies();

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
long raise_nofile_limit();

}  // namespace strata::bench
