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
// A client decides what goes into a line (its client id, topics, the user
// name it claims) and how many refusal lines it causes, so the log is
// bounded three ways:
// - Fields: identity, client id, topic and reason longer than
//   audit.max_field_bytes are cut (at a UTF-8 boundary) and marked with
//   their length: "acme/aaaa...[truncated, 61440 bytes]".
// - Refusal lines (outcome other than "allowed": refused subscribes,
//   publishes and commands, failed and refused logins) are rate limited
//   per subject (audit_limiter): audit.refusals_per_second a second, the
//   rest counted and written as one summary line a second,
//     {"identity":"ana",...,"action":"audit","outcome":"suppressed",
//      "reason":"1234 more refusal lines suppressed ...","suppressed":1234}
//   The subject is the authenticated identity, or the client's address
//   for anonymous clients and for logins (whose user name is only a claim
//   until checked). Allowed actions (logins, commands) are never rate
//   limited: they are what an auditor must be able to trace one by one,
//   and a client cannot cause them without credentials that allow them.
// - The file: rotated by size (audit.max_bytes); audit.log.1 is the
//   newest old file, audit.keep of them are kept, older ones deleted.
//
// Thread-safety: write() may be called from any thread; it only appends to
// a bounded in-memory queue (a full queue drops the line and counts it).
// audit_limiter's members may be called from any thread.
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
#include <unordered_map>
#include <vector>

namespace strata::auth {

struct audit_event {
    std::string_view action;    // "login", "publish", "command", "subscribe"
    std::string_view outcome;   // "allowed", "refused", "failed", ...
    std::string_view identity;  // empty: anonymous
    const std::vector<std::string>* roles = nullptr;
    std::string_view client_id;
    std::string_view address;   // as written: "ip:port" of an MQTT client, the IP of an HTTP one
    std::string_view peer;      // the client's IP (rate limit subject); empty: `address`
    std::string_view topic;     // empty: none
    std::string_view reason;    // empty: none
    std::uint64_t suppressed = 0;  // a summary line: the lines it stands for (0: not a summary)
    // A command that came over a bridge: who sent it at the broker it came
    // from, and that broker's id (empty: none).
    std::string_view origin_identity{};
    std::string_view origin_broker{};
};

inline constexpr std::size_t default_max_field_bytes = 256;

// One line (without newline). Identity, client id, topic and reason longer
// than `max_field` bytes are cut and marked.
[[nodiscard]] std::string format_audit_line(const audit_event& e, std::chrono::system_clock::time_point t,
                                            std::size_t max_field = default_max_field_bytes);
// `s` cut to at most `max` bytes (not inside a UTF-8 sequence) plus
// "...[truncated, N bytes]", or `s` itself when it fits.
[[nodiscard]] std::string clip_field(std::string_view s, std::size_t max);

// Who refusal lines are counted against: an identity, or (identity empty)
// an address.
struct audit_subject {
    std::string identity;
    std::string address;
    bool operator==(const audit_subject&) const = default;
};

// Refusal lines per subject: a token bucket of `per_second` lines (the
// burst is one second's worth); the lines over it are counted per subject
// and handed out by take_summaries().
class audit_limiter {
public:
    using clock = std::chrono::steady_clock;
    explicit audit_limiter(std::uint32_t per_second) : rate_(per_second) {}

    // Whether a refusal line of `who` may be written at `now`; when not, it
    // is counted toward the subject's next summary.
    [[nodiscard]] bool admit(const audit_subject& who, clock::time_point now);

    struct summary {
        audit_subject who;
        std::uint64_t suppressed = 0;
    };
    // The subjects with lines suppressed since their last summary (their
    // counts start again at 0). Subjects idle long enough that their
    // bucket is full again are forgotten, so the table holds only the
    // subjects of about the last second.
    [[nodiscard]] std::vector<summary> take_summaries(clock::time_point now);

    [[nodiscard]] std::uint64_t suppressed_total() const;
    [[nodiscard]] std::uint32_t per_second() const noexcept { return rate_.load(std::memory_order_relaxed); }
    // A new rate (a reload); 0: unlimited.
    void set_per_second(std::uint32_t per_second) noexcept { rate_.store(per_second, std::memory_order_relaxed); }

private:
    struct bucket {
        audit_subject who;
        double tokens = 0;
        clock::time_point last{};
        std::uint64_t suppressed = 0;
    };
    void refill(bucket& b, double rate, clock::time_point now) const;

    std::atomic<std::uint32_t> rate_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, bucket> buckets_;  // by "i:" identity or "a:" address
    std::uint64_t suppressed_total_ = 0;
};

class audit_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Size-based rotation of the audit file.
struct audit_rotation {
    std::uint64_t max_bytes = 100ull << 20;  // a line that would grow the file beyond this starts a new one; 0: never
    std::uint32_t keep = 5;                  // old files kept (PATH.1 newest ... PATH.keep); 0: none
};

class audit_log {
public:
    // Opens `path` for appending (created with mode 0600); throws
    // audit_error. `max_pending`, `max_pending_bytes`: what is held in
    // memory before lines are dropped.
    explicit audit_log(const std::string& path, audit_rotation rotation = {}, std::size_t max_pending = 100'000,
                       std::size_t max_pending_bytes = 16u << 20);
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
    [[nodiscard]] std::uint64_t rotations() const noexcept { return rotations_.load(std::memory_order_relaxed); }

private:
    void run();
    // Writer thread: PATH -> PATH.1 -> ... -> PATH.keep (the oldest goes),
    // then a new PATH. On failure the file stays closed and lines are
    // dropped (counted) until it opens again.
    void rotate();
    [[nodiscard]] bool open_file();

    const std::string path_;
    const audit_rotation rotation_;
    std::FILE* file_ = nullptr;      // writer thread (and constructor/destructor)
    std::uint64_t size_ = 0;         // of the current file; writer thread
    std::size_t max_pending_;
    std::size_t max_pending_bytes_;
    std::size_t pending_bytes_ = 0;  // guarded by mutex_
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    std::vector<std::string> pending_;
    std::uint64_t queued_total_ = 0;     // guarded by mutex_
    std::uint64_t flushed_total_ = 0;    // guarded by mutex_
    bool stopping_ = false;
    std::atomic<std::uint64_t> written_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::uint64_t> rotations_{0};
    std::thread writer_;
};

}  // namespace strata::auth
