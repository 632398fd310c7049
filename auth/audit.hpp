// The audit log: one JSON line per security-relevant event (logins,
// refused publishes and subscriptions, commands), appended to a file by a
// writer thread of its own, so that a network thread never waits on disk.
//
//   {"time":"2026-11-25T21:30:00.123Z","identity":"olga","roles":["operator"],
//    "client_id":"hmi-2","address":"10.0.0.7:51234","action":"command",
//    "topic":"acme/dresden/press-shop/line-2/press-7/cmd/stop","outcome":"allowed"}
//
// `identity` is null for anonymous clients; `topic` is absent for logins;
// `reason` is present when the outcome has one.
//
// Thread-safety: write() may be called from any thread; it only appends to
// a bounded in-memory queue (a full queue drops the line and counts it).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace strata::auth {

struct audit_event {
    std::string_view action;    // "login", "publish", "command", "subscribe"
    std::string_view outcome;   // "allowed", "refused", "failed", ...
    std::string_view identity;  // empty: anonymous
    const std::vector<std::string>* roles = nullptr;
    std::string_view client_id;
    std::string_view address;
    std::string_view topic;     // empty: none
    std::string_view reason;    // empty: none
};

[[nodiscard]] std::string format_audit_line(const audit_event& e, std::chrono::system_clock::time_point t);

class audit_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class audit_log {
public:
    // Opens `path` for appending (created with mode 0600); throws
    // audit_error. `max_pending`: lines held in memory before dropping.
    explicit audit_log(const std::string& path, std::size_t max_pending = 100'000);
    // Writes what is queued, then stops the writer.
    ~audit_log();
    audit_log(const audit_log&) = delete;
    audit_log& operator=(const audit_log&) = delete;

    // Queues one line (without newline). Never blocks on disk.
    void write(std::string line);
    // Blocks until every line queued so far is written and flushed.
    void flush();

    [[nodiscard]] std::uint64_t written() const noexcept { return written_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

private:
    void run();

    std::FILE* file_ = nullptr;
    std::size_t max_pending_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    std::vector<std::string> pending_;
    std::uint64_t queued_total_ = 0;     // guarded by mutex_
    std::uint64_t flushed_total_ = 0;    // guarded by mutex_
    bool stopping_ = false;
    std::atomic<std::uint64_t> written_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::thread writer_;
};

}  // namespace strata::auth
