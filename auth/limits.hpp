// Limits per identity (connections, publish rate in messages and bytes per
// second) and the back-off for failed logins per source address.
//
// Rates are token buckets per identity, shared by all of that identity's
// connections, holding one second's worth of tokens (the burst). Anonymous
// clients are one identity ("anonymous"). Failed logins: an address may
// fail `free_attempts` times; the failure that reaches that count, and every
// further one, blocks the address for a doubling time (initial, 2x, 4x, ...
// up to max), so `free_attempts: 3` means three passwords are checked and a
// fourth attempt is refused unchecked while blocked. A success clears the
// address.
//
// Thread-safety: every member may be called from any thread. Each
// identity's bucket has its own mutex (contended only by connections of the
// same identity); the registry and the login guard take a mutex per
// connect, never per message.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace strata::auth {

using steady_clock = std::chrono::steady_clock;

struct identity_limits {
    std::uint32_t connections = 0;         // per identity; 0: unlimited
    std::uint32_t publish_rate = 0;        // messages per second per identity; 0: unlimited
    std::uint64_t publish_bytes_rate = 0;  // topic+payload bytes per second per identity; 0: unlimited
    std::uint32_t subscriptions = 0;       // per client; 0: unlimited
    // Each identity's share of the retained store: topics, and their topic +
    // payload bytes, that it set last (0: no share, the broker-wide limits only).
    std::uint64_t retained = 100'000;
    std::uint64_t retained_bytes = 256ull << 20;
    [[nodiscard]] bool any_rate() const noexcept { return publish_rate != 0 || publish_bytes_rate != 0; }
    bool operator==(const identity_limits&) const = default;
};

enum class rate_verdict : std::uint8_t { ok, too_many_messages, too_many_bytes };

class identity_registry;

// One identity's shared state; connections hold it while they live.
class identity_state {
public:
    identity_state(identity_registry& owner, std::string identity, const identity_limits& limits);
    ~identity_state();
    identity_state(const identity_state&) = delete;
    identity_state& operator=(const identity_state&) = delete;

    // Whether a rate applies (admit() can refuse); no lock.
    [[nodiscard]] bool rated() const noexcept { return rated_.load(std::memory_order_relaxed); }
    // Takes one message of `bytes` from the buckets, or says which is empty.
    [[nodiscard]] rate_verdict admit(std::size_t bytes, steady_clock::time_point now);

private:
    friend class identity_registry;
    // New rates (a reload): the buckets keep what they hold, up to the new burst.
    void set_limits(const identity_limits& limits);

    identity_registry& owner_;
    std::string identity_;
    std::mutex mutex_;
    identity_limits limits_;  // guarded by mutex_
    std::atomic<bool> rated_;
    double messages_ = 0;
    double bytes_ = 0;
    steady_clock::time_point last_{};
    std::uint32_t connections_ = 0;  // guarded by the registry's mutex
};

class identity_registry {
public:
    explicit identity_registry(identity_limits limits) : limits_(limits) {}
    identity_registry(const identity_registry&) = delete;
    identity_registry& operator=(const identity_registry&) = delete;

    [[nodiscard]] identity_limits limits() const;
    // New limits (a reload): the rates apply to the connected identities at
    // once; a lower connection limit refuses further connections only.
    void set_limits(const identity_limits& limits);

    // A handle for one more connection of `identity` (empty: anonymous), or
    // null when the identity is at its connection limit. The connection is
    // counted until the handle is released.
    [[nodiscard]] std::shared_ptr<identity_state> acquire(std::string_view identity);

private:
    friend class identity_state;
    void release(identity_state* s);

    mutable std::mutex mutex_;
    identity_limits limits_;  // guarded by mutex_
    std::unordered_map<std::string, std::weak_ptr<identity_state>> identities_;
};

struct backoff_config {
    std::uint32_t free_attempts = 3;        // failures per address that block it (0 acts as 1)
    std::uint32_t initial_ms = 1'000;       // first block
    std::uint32_t max_ms = 60'000;          // longest block
    bool operator==(const backoff_config&) const = default;
};

class login_guard {
public:
    explicit login_guard(backoff_config cfg) : cfg_(cfg) {}
    // New settings (a reload) for the failures from now on; blocks in
    // force run out as they were set.
    void set_config(backoff_config cfg);

    // How long `address` must still wait before trying again (0: it may);
    // a nonzero answer counts as a refused attempt.
    [[nodiscard]] std::chrono::milliseconds blocked_for(std::string_view address, steady_clock::time_point now);
    // Whether `address` is blocked now, without counting anything.
    [[nodiscard]] bool is_blocked(std::string_view address, steady_clock::time_point now) const;
    void failed(std::string_view address, steady_clock::time_point now);
    void succeeded(std::string_view address);

    [[nodiscard]] std::uint64_t failures() const noexcept;   // every failed login so far
    [[nodiscard]] std::uint64_t refused() const noexcept;    // attempts refused while blocked
    [[nodiscard]] std::size_t blocked_addresses(steady_clock::time_point now) const;

private:
    struct entry {
        std::uint32_t failures = 0;
        steady_clock::time_point blocked_until{};
        steady_clock::time_point last_failure{};
    };
    void prune_locked(steady_clock::time_point now);

    mutable std::mutex mutex_;
    backoff_config cfg_;  // guarded by mutex_
    std::unordered_map<std::string, entry> by_address_;
    std::uint64_t failures_ = 0;
    std::uint64_t refused_ = 0;
};

}  // namespace strata::auth
