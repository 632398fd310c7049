// Counters of namespace checks per subtree and outcome, for Prometheus.
//
// Every publish is counted once, so the increment must be cheap and must not
// make the network threads fight over one cache line: each subtree's
// counters are striped (one cache line set per stripe, a thread always uses
// the same stripe), and increments are relaxed atomics. Subtrees are looked
// up in a fixed-size open-addressing table (seeded hash) without locks; a
// new subtree is inserted under a mutex, once. The number of subtrees is capped (site names
// may come from a pattern or `any`, so a misbehaving client could otherwise
// mint unbounded label values): past the cap, counts go to "(other)".
// Checks that fail before the metrics level (a wrong enterprise or site)
// count under "(outside model)"; free topics count under their free filter.
//
// Thread-safety: record(), add() and snapshot() may be called concurrently
// from any threads. snapshot() sums the stripes without stopping writers,
// so a row is a consistent-enough sum, not an atomic one.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace strata::ns {

struct verdict;

class model_stats {
public:
    enum class counter : std::uint8_t {
        pass,
        free,
        rejected_topic,
        rejected_payload,
        rejected_retain,
        warned_topic,
        warned_payload,
        warned_retain,
        quarantined_topic,
        quarantined_payload,
        quarantined_retain,
    };
    static constexpr std::size_t counter_count = 11;

    static constexpr std::string_view outside_label = "(outside model)";
    static constexpr std::string_view other_label = "(other)";

    // max_subtrees: distinct subtree labels kept before "(other)".
    explicit model_stats(std::size_t max_subtrees = 1024);
    ~model_stats();
    model_stats(const model_stats&) = delete;
    model_stats& operator=(const model_stats&) = delete;

    // Counts one verdict under its subtree.
    void record(const verdict& v) noexcept;
    void add(std::string_view subtree, counter c, std::uint64_t n = 1) noexcept;

    // One subtree's counters, looked up once and then counted into without
    // hashing the name again (model::check keeps one per cached topic).
    // Valid for as long as this object lives; opaque to callers.
    struct subtree_counters;
    [[nodiscard]] subtree_counters& counters_for(std::string_view subtree) noexcept;
    static void add(subtree_counters& at, counter c, std::uint64_t n = 1) noexcept;

    struct row {
        std::string subtree;
        std::array<std::uint64_t, counter_count> values{};
        [[nodiscard]] std::uint64_t operator[](counter c) const noexcept { return values[static_cast<std::size_t>(c)]; }
    };
    // All subtrees seen so far, sorted by name.
    [[nodiscard]] std::vector<row> snapshot() const;
    // One counter summed over all subtrees.
    [[nodiscard]] std::uint64_t total(counter c) const;

    [[nodiscard]] static counter counter_for(const verdict& v) noexcept;
    // Prometheus-style labels: outcome "pass", "free", "rejected", "warned",
    // "quarantined"; reason "" or "topic_invalid", "payload_invalid",
    // "retain_violation".
    [[nodiscard]] static std::string_view outcome_label(counter c) noexcept;
    [[nodiscard]] static std::string_view reason_label(counter c) noexcept;

private:
    static constexpr std::size_t stripes = 8;
    struct alignas(64) stripe {
        std::array<std::atomic<std::uint64_t>, counter_count> c{};
    };
    using entry = subtree_counters;

    entry* find_or_insert(std::string_view key, std::size_t hash) noexcept;

    std::size_t max_subtrees_;
    std::size_t mask_;
    std::unique_ptr<std::atomic<entry*>[]> table_;
    mutable std::mutex insert_mutex_;
    std::vector<std::unique_ptr<entry>> owned_;  // guarded by insert_mutex_
    std::unique_ptr<entry> other_;
};

struct model_stats::subtree_counters {
    std::string key;
    std::size_t hash = 0;
    std::array<stripe, stripes> s;
};

}  // namespace strata::ns
