// Alerts (config `alerts:`, docs/operations.md "Alerts"): what an operator wants to
// hear about without watching a dashboard.
//
//   spike           a subtree's message rate above spike_factor x its baseline
//                   (and at least min_rate)
//   drop            a subtree's rate below baseline / drop_factor (baselines
//                   under min_rate are not watched)
//   stale           a topic that published once and then stayed silent longer
//                   than its limit: max_silence_s of the first `stale` filter
//                   it matches, or else stale_factor x the expected period of
//                   its data class in the namespace model
//   reconnect_loop  one client id connecting `count` times within window_s
//   slow_consumer   a subscriber the slow-consumer policy acted on
//                   (limits.slow_consumer): active for slow_consumer_hold
//                   after the latest action on it
//   sparkplug_offline  a Sparkplug edge node (subject GROUP/EDGE_NODE)
//                   offline longer than sparkplug.offline_alert_s since its
//                   death; cleared when it births again
//   sparkplug_seq_gap  a Sparkplug edge node whose messages had seq gaps
//                   (lost messages): active for sparkplug_gap_hold after
//                   the latest gap; value: its gaps so far
//
// A subtree is the first `levels` levels of a topic ("acme/dresden"). Its
// baseline is an exponentially weighted moving average of the per-second
// rate with time constant window_s; no rate alert is raised during the
// first window_s seconds of a subtree (the baseline is still forming).
//
// Raising an alert logs a warning, counts strata_alerts_total{kind}, and
// publishes a retained JSON message on $SYS/broker/alerts/KIND/SUBJECT:
// {"kind", "subject", "value", "baseline" or "threshold", "since",
// "active": true} (a stale alert from the model adds "class" and
// "expected_period_s"); clearing it publishes the same with "active": false.
// strata_alerts_active is the number of alerts raised and not cleared.
//
// Cost on the publish path: count() finds the topic's entry in the calling
// thread's own topic table (no lookup at all when the thread's previous
// message had the same topic) and adds one to its counter: no lock, no
// shared write, no clock. Only a topic the thread has not seen before takes
// the thread's own mutex, to insert it. Everything else happens in the
// once-a-second tick: it sums each entry's new messages into its subtree,
// works out each new topic's subtree and stale limit (again for every topic
// after a model reload), and notes when a topic's count last moved: a topic
// is silent since the tick that last saw its count change (so staleness is
// measured to within a second, never overstated). A thread's table holds up
// to max_topics topics; the messages of further topics are counted under
// their subtree only and are not watched for staleness.
//
// A reload changes the settings in place (reconfigure()): the baselines
// and the alerts raised stay, but for what the change makes moot: new
// `levels` make new subtrees (their baselines form again, their rate
// alerts are cleared); new stale rules or factor work every topic's limit
// out again; alerts enabled again form their baselines afresh and count
// silence from then on. Disabled, the object stays (inactive) with its
// alerts cleared.
//
// Thread-safety: count() and connected() from any thread; tick(),
// reconfigure() and clear() from one thread at a time (the server's
// timer's). One alerts object is active per process (activate());
// count() and connected() do nothing without one.
#pragma once

#include "broker/config.hpp"
#include "broker/core/broker_core.hpp"

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

namespace strata::ns {
class model;
}
namespace strata::broker::hosts {
class sparkplug_host;
}

namespace strata::broker::ops {

class alerts final : public core::message_observer {
public:
    enum class kind : std::uint8_t { spike, drop, stale, reconnect_loop, slow_consumer, sparkplug_offline, sparkplug_seq_gap };
    static constexpr std::size_t kind_count = 7;
    // How long a sparkplug_seq_gap alert stays active after the latest gap.
    static constexpr std::chrono::seconds sparkplug_gap_hold{60};
    // How long a slow_consumer alert stays active after the latest action.
    static constexpr std::chrono::seconds slow_consumer_hold{60};
    [[nodiscard]] static std::string_view to_string(kind k) noexcept;

    // Distinct subtrees counted; messages of further subtrees are not.
    static constexpr std::size_t max_subtrees = 4096;
    // Distinct topics in one thread's table.
    static constexpr std::size_t max_topics = 100'000;

    alerts(core::broker_core& core, const alerts_config& cfg, prometheus::Registry& registry);
    ~alerts();
    alerts(const alerts&) = delete;
    alerts& operator=(const alerts&) = delete;

    // Makes this the object the core's taken messages and connected()
    // feed; deactivate() before destroying it.
    void activate() noexcept;
    void deactivate() noexcept;

    // A message was published on `topic` (by a client, a bridge, a will;
    // any thread). '$' topics are not counted.
    void taken(std::string_view topic) noexcept override { count_here(topic); }
    // A client connected with `client_id` (network threads).
    static void connected(std::string_view client_id) {
        if (auto* a = current_.load(std::memory_order_acquire)) a->connected_here(client_id);
    }

    // Once a second: sums the counts, moves the baselines, raises and
    // clears alerts.
    void tick(std::chrono::steady_clock::time_point now);
    // New settings (a reload; `enabled` is the caller's: activate() and
    // deactivate()).
    void reconfigure(const alerts_config& next);
    // Clears every alert raised (alerts disabled).
    void clear();
    // The Sparkplug host whose edge nodes are watched (before the first tick).
    void watch_sparkplug(const hosts::sparkplug_host* s) noexcept { sparkplug_ = s; }

private:
    struct topic_entry;
    struct thread_counts;
    struct subtree_state {
        double baseline = 0;
        std::uint32_t samples = 0;
    };
    struct alert_state {
        double value = 0, reference = 0;
        std::int64_t since_ms = 0;
        std::string data_class;  // stale from the model: the topic's class
        double period_s = 0;     // ... and its expected period
    };
    // How a topic is watched for staleness (max_silence_ms 0: not at all).
    struct stale_limit {
        std::int64_t max_silence_ms = 0;
        std::string data_class;  // empty: from a `stale` filter
        double period_s = 0;
    };
    struct stale_topic {
        std::int64_t last_change_ms = 0;  // the latest over every thread's entry
        std::int64_t max_silence_ms = 0;
    };

    void count_here(std::string_view topic) noexcept;
    // A topic other than the thread's last: finds or inserts its entry.
    void count_new(std::string_view topic);
    void connected_here(std::string_view client_id);
    thread_counts& local();
    std::uint32_t subtree_id(std::string_view subtree);
    [[nodiscard]] stale_limit limit_for(std::string_view topic, const ns::model* m) const;

    // The tick's pass over every thread's table: new messages per subtree
    // (indexed by subtree id) and the topics silent past their limit.
    void scan(std::int64_t now, std::vector<std::uint64_t>& per_subtree, std::map<std::string, stale_topic>& silent);
    // The latest change of `topic` over every thread's table.
    [[nodiscard]] stale_topic latest(const std::string& topic);
    void check_rates(double seconds, const std::vector<std::uint64_t>& per_subtree);
    void check_stale(std::int64_t now, std::map<std::string, stale_topic>& silent);
    void check_reconnects(std::chrono::steady_clock::time_point now);
    void check_slow_consumers(std::chrono::steady_clock::time_point now);
    void check_sparkplug(std::chrono::steady_clock::time_point now);
    // Raises (or, with active false, clears) the alert; a no-op when it is
    // already in that state.
    void set(kind k, const std::string& subject, bool active, double value, double reference,
             const stale_limit* limit = nullptr);
    void publish(kind k, const std::string& subject, const alert_state& a, bool active);

    core::broker_core& core_;
    // The tick thread's; connected() reads the reconnect settings under
    // connects_mutex_, which reconfigure() holds to change it.
    alerts_config cfg_;
    std::atomic<std::uint32_t> levels_;  // cfg_.levels, for count()
    const std::uint64_t generation_;
    std::atomic<bool> topics_full_logged_{false};

    // Every thread's table (registered on its first count).
    std::mutex threads_mutex_;
    std::vector<std::unique_ptr<thread_counts>> threads_;

    // Reconnect loops. A client id's first connect only marks a slot of a
    // fixed table (by a hash of the id), so that the many clients that
    // connect once cost no memory each; a second connect within the window
    // that finds its mark moves the id into `connects_`, which keeps the
    // times of its recent connects. (A storm of other connects may overwrite
    // a mark: such a client is then followed from its next connect on.)
    struct first_connect {
        std::uint64_t id_hash = 0;
        std::chrono::steady_clock::time_point at{};
    };
    static constexpr std::size_t first_connect_slots = 8192;
    std::mutex connects_mutex_;
    std::vector<first_connect> first_connects_ = std::vector<first_connect>(first_connect_slots);
    std::unordered_map<std::string, std::deque<std::chrono::steady_clock::time_point>> connects_;

    // Tick thread only.
    std::unordered_map<std::string, std::uint32_t> subtree_ids_;
    std::vector<std::string> subtree_names_;
    bool subtrees_full_logged_ = false;
    std::vector<subtree_state> rates_;
    std::uint64_t model_generation_ = 0;  // of the model the stale limits were worked out with
    bool relimit_ = false;                // the stale settings changed: limits worked out again
    bool resubtree_ = false;              // `levels` changed: every topic's subtree worked out again
    bool silent_from_now_ = false;        // enabled again: silence counts from the next tick
    std::chrono::steady_clock::time_point last_tick_{};
    std::map<std::pair<kind, std::string>, alert_state> active_;
    // Tick thread only: each edge node's seq gaps at the latest change.
    struct gap_seen {
        std::uint64_t count = 0;
        std::chrono::steady_clock::time_point at{};
    };
    const hosts::sparkplug_host* sparkplug_ = nullptr;
    std::map<std::string, gap_seen> sparkplug_gaps_;

    prometheus::Family<prometheus::Counter>& raised_family_;
    std::array<prometheus::Counter*, kind_count> raised_{};
    prometheus::Gauge& active_gauge_;

    static std::atomic<alerts*> current_;
};

}  // namespace strata::broker::ops
