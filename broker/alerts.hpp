// Alerts (config `alerts:`, README "Monitoring"): what an operator wants to
// hear about without watching a dashboard.
//
//   spike           a subtree's message rate above spike_factor x its baseline
//                   (and at least min_rate)
//   drop            a subtree's rate below baseline / drop_factor (baselines
//                   under min_rate are not watched)
//   stale           a topic under a `stale` filter that published once and
//                   then stayed silent longer than the filter's max_silence_s
//   reconnect_loop  one client id connecting `count` times within window_s
//
// A subtree is the first `levels` levels of a topic ("acme/dresden"). Its
// baseline is an exponentially weighted moving average of the per-second
// rate with time constant window_s; no rate alert is raised during the
// first window_s seconds of a subtree (the baseline is still forming).
//
// Raising an alert logs a warning, counts strata_alerts_total{kind}, and
// publishes a retained JSON message on $SYS/broker/alerts/KIND/SUBJECT:
// {"kind", "subject", "value", "baseline" or "threshold", "since",
// "active": true}; clearing it publishes the same with "active": false.
// strata_alerts_active is the number of alerts raised and not cleared.
//
// Cost on the publish path: count() finds the topic's subtree (the first
// `levels` slashes), compares it with the last subtree this thread counted
// (a hash lookup in the thread's own table when it differs) and adds one to
// the thread's own counter: no lock, no shared write. Topics matching a
// stale filter also record their time under a per-thread mutex that only
// the once-a-second tick contends for.
//
// Thread-safety: count() and connected() from any thread; tick() from one
// thread at a time (the server's timer). One alerts object is active per
// process (activate()); count() and connected() do nothing without one.
#pragma once

#include "broker/config.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::broker {

class broker_core;

class alerts {
public:
    enum class kind : std::uint8_t { spike, drop, stale, reconnect_loop };
    static constexpr std::size_t kind_count = 4;
    [[nodiscard]] static std::string_view to_string(kind k) noexcept;

    // Distinct subtrees counted; messages of further subtrees are not.
    static constexpr std::size_t max_subtrees = 4096;
    // Distinct topics watched for staleness.
    static constexpr std::size_t max_stale_topics = 100'000;

    alerts(broker_core& core, const alerts_config& cfg, prometheus::Registry& registry);
    ~alerts();
    alerts(const alerts&) = delete;
    alerts& operator=(const alerts&) = delete;

    // Makes this the object count() and connected() feed; deactivate()
    // before destroying it.
    void activate() noexcept;
    void deactivate() noexcept;

    // A client published on `topic` (network threads).
    static void count(std::string_view topic) noexcept {
        if (auto* a = current_.load(std::memory_order_acquire)) a->count_here(topic);
    }
    // A client connected with `client_id` (network threads).
    static void connected(std::string_view client_id) {
        if (auto* a = current_.load(std::memory_order_acquire)) a->connected_here(client_id);
    }

    // Once a second: sums the counts, moves the baselines, raises and
    // clears alerts.
    void tick(std::chrono::steady_clock::time_point now);

private:
    struct thread_counts;
    struct subtree_state {
        std::uint64_t last_total = 0;
        double baseline = 0;
        std::uint32_t samples = 0;
    };
    struct alert_state {
        double value = 0, reference = 0;
        std::int64_t since_ms = 0;
    };

    void count_here(std::string_view topic) noexcept;
    void connected_here(std::string_view client_id);
    thread_counts& local();
    std::uint32_t subtree_id(std::string_view subtree);
    [[nodiscard]] bool watched_for_staleness(std::string_view topic, std::uint32_t& max_silence_s) const noexcept;

    void check_rates(double seconds);
    void check_stale(std::int64_t now_ms);
    void check_reconnects(std::chrono::steady_clock::time_point now);
    // Raises (or, with active false, clears) the alert; a no-op when it is
    // already in that state.
    void set(kind k, const std::string& subject, bool active, double value, double reference);
    void publish(kind k, const std::string& subject, const alert_state& a, bool active);

    broker_core& core_;
    const alerts_config cfg_;
    const std::uint64_t generation_;

    // Subtree names by id; ids are handed out under the mutex.
    std::mutex subtrees_mutex_;
    std::unordered_map<std::string, std::uint32_t> subtree_ids_;
    std::vector<std::string> subtree_names_;
    std::atomic<bool> subtrees_full_logged_{false};

    // Every thread's counters (registered on its first count).
    std::mutex threads_mutex_;
    std::vector<std::unique_ptr<thread_counts>> threads_;

    std::mutex connects_mutex_;
    std::unordered_map<std::string, std::deque<std::chrono::steady_clock::time_point>> connects_;

    // Tick thread only.
    std::vector<subtree_state> rates_;
    std::chrono::steady_clock::time_point last_tick_{};
    std::map<std::pair<kind, std::string>, alert_state> active_;

    prometheus::Family<prometheus::Counter>& raised_family_;
    std::array<prometheus::Counter*, kind_count> raised_{};
    prometheus::Gauge& active_gauge_;

    static std::atomic<alerts*> current_;
};

}  // namespace strata::broker
