// Alerts: counting on the publish path, the once-a-second evaluation.
#include "broker/alerts.hpp"

#include "broker/broker_core.hpp"
#include "broker/http_admin.hpp"
#include "broker/stored.hpp"
#include "namespace/topic.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace strata::broker {


namespace {
// Lookups by string_view without making a std::string.
struct text_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using text_map = std::unordered_map<std::string, V, text_hash, std::equal_to<>>;
}  // namespace

// One thread's counts. The thread is the only writer of `n` (relaxed
// load+store); the tick reads it. `seen` (topic -> Unix ms of its last
// message) is guarded by `mutex`.
struct alerts::thread_counts {
    std::array<std::atomic<std::uint64_t>, max_subtrees> n{};
    std::mutex mutex;
    text_map<std::int64_t> seen;
};

std::atomic<alerts*> alerts::current_{nullptr};

namespace {

std::atomic<std::uint64_t> generations{0};

// The calling thread's view: its counters and the subtree ids it knows,
// for the alerts object of `generation`.
struct local_view {
    std::uint64_t generation = 0;
    void* counts = nullptr;
    std::string last;
    std::uint32_t last_id = 0;
    text_map<std::uint32_t> ids;
};
thread_local local_view view;

// The first `levels` levels of `topic` (all of it when it has fewer).
std::string_view subtree_of(std::string_view topic, std::uint32_t levels) noexcept {
    std::size_t pos = 0;
    for (std::uint32_t i = 0; i < levels; ++i) {
        pos = topic.find('/', pos);
        if (pos == std::string_view::npos) return topic;
        if (i + 1 < levels) ++pos;
    }
    return topic.substr(0, pos);
}

}  // namespace

std::string_view alerts::to_string(kind k) noexcept {
    switch (k) {
    case kind::spike: return "spike";
    case kind::drop: return "drop";
    case kind::stale: return "stale";
    case kind::reconnect_loop: return "reconnect_loop";
    }
    return "?";
}

alerts::alerts(broker_core& core, const alerts_config& cfg, prometheus::Registry& registry)
    : core_(core),
      cfg_(cfg),
      generation_(++generations),
      raised_family_(prometheus::BuildCounter()
                         .Name("strata_alerts_total")
                         .Help("Alerts raised, by kind (spike, drop, stale, reconnect_loop)")
                         .Register(registry)),
      active_gauge_(prometheus::BuildGauge()
                        .Name("strata_alerts_active")
                        .Help("Alerts raised and not cleared")
                        .Register(registry)
                        .Add({})) {
    for (std::size_t k = 0; k < kind_count; ++k)
        raised_[k] = &raised_family_.Add({{"kind", std::string(to_string(static_cast<kind>(k)))}});
}

alerts::~alerts() { deactivate(); }

void alerts::activate() noexcept { current_.store(this, std::memory_order_release); }

void alerts::deactivate() noexcept {
    alerts* self = this;
    current_.compare_exchange_strong(self, nullptr, std::memory_order_acq_rel);
}

alerts::thread_counts& alerts::local() {
    if (view.generation != generation_) {
        auto c = std::make_unique<thread_counts>();
        view = local_view{};
        view.generation = generation_;
        view.counts = c.get();
        std::lock_guard lock(threads_mutex_);
        threads_.push_back(std::move(c));
    }
    return *static_cast<thread_counts*>(view.counts);
}

std::uint32_t alerts::subtree_id(std::string_view subtree) {
    std::lock_guard lock(subtrees_mutex_);
    const auto it = subtree_ids_.find(std::string(subtree));
    if (it != subtree_ids_.end()) return it->second;
    if (subtree_names_.size() >= max_subtrees) return max_subtrees;
    const auto id = static_cast<std::uint32_t>(subtree_names_.size());
    subtree_names_.emplace_back(subtree);
    subtree_ids_.emplace(subtree, id);
    return id;
}

bool alerts::watched_for_staleness(std::string_view topic, std::uint32_t& max_silence_s) const noexcept {
    for (const auto& r : cfg_.stale) {
        if (ns::topic_matches(r.filter, topic)) {
            max_silence_s = r.max_silence_s;
            return true;
        }
    }
    return false;
}

void alerts::count_here(std::string_view topic) noexcept {
    if (topic.empty() || topic.front() == '$') return;
    try {
        auto& t = local();
        const auto subtree = subtree_of(topic, cfg_.levels);
        std::uint32_t id = view.last_id;
        if (subtree != view.last || view.last.empty()) {
            const auto it = view.ids.find(subtree);
            if (it != view.ids.end()) {
                id = it->second;
            } else {
                id = subtree_id(subtree);
                view.ids.emplace(subtree, id);
            }
            view.last.assign(subtree);
            view.last_id = id;
        }
        if (id < max_subtrees) {
            auto& c = t.n[id];
            c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        } else if (!subtrees_full_logged_.exchange(true)) {
            spdlog::warn("alerts: more than {} subtrees; further subtrees are not watched", max_subtrees);
        }
        std::uint32_t silence = 0;
        if (!cfg_.stale.empty() && watched_for_staleness(topic, silence)) {
            const auto now = now_ms();
            std::lock_guard lock(t.mutex);
            if (const auto it = t.seen.find(topic); it != t.seen.end()) {
                it->second = now;
            } else if (t.seen.size() < max_stale_topics) {
                t.seen.emplace(topic, now);
            }
        }
    } catch (const std::exception& e) {
        // Only allocation can fail here; an uncounted message is no reason
        // to fail a publish.
        spdlog::debug("alerts: message not counted: {}", e.what());
    }
}

void alerts::connected_here(std::string_view client_id) {
    const auto now = steady_clock::now();
    std::lock_guard lock(connects_mutex_);
    auto& times = connects_[std::string(client_id)];
    times.push_back(now);
    while (times.size() > cfg_.reconnect_count) times.pop_front();
}

void alerts::tick(steady_clock::time_point now) {
    const double seconds =
        last_tick_ == steady_clock::time_point{} ? 1.0 : std::chrono::duration<double>(now - last_tick_).count();
    last_tick_ = now;
    if (seconds > 0) check_rates(seconds);
    if (!cfg_.stale.empty()) check_stale(now_ms());
    check_reconnects(now);
}

void alerts::check_rates(double seconds) {
    std::vector<std::uint64_t> totals;
    std::vector<std::string> names;
    {
        std::lock_guard lock(subtrees_mutex_);
        names = subtree_names_;
    }
    totals.assign(names.size(), 0);
    {
        std::lock_guard lock(threads_mutex_);
        for (const auto& t : threads_)
            for (std::size_t i = 0; i < totals.size(); ++i) totals[i] += t->n[i].load(std::memory_order_relaxed);
    }
    rates_.resize(names.size());
    const double alpha = std::min(1.0, seconds / static_cast<double>(cfg_.window_s));
    for (std::size_t i = 0; i < names.size(); ++i) {
        auto& s = rates_[i];
        const double rate = static_cast<double>(totals[i] - s.last_total) / seconds;
        s.last_total = totals[i];
        const bool warm = s.samples >= cfg_.window_s;
        if (warm) {
            const bool spike = rate >= cfg_.min_rate && rate > cfg_.spike_factor * s.baseline;
            const bool drop = s.baseline >= cfg_.min_rate && rate < s.baseline / cfg_.drop_factor;
            set(kind::spike, names[i], spike, rate, s.baseline);
            set(kind::drop, names[i], drop, rate, s.baseline);
        }
        // While forming, the baseline is the plain mean of the samples.
        ++s.samples;
        s.baseline = warm ? s.baseline + alpha * (rate - s.baseline)
                          : s.baseline + (rate - s.baseline) / static_cast<double>(s.samples);
    }
}

void alerts::check_stale(std::int64_t now) {
    std::unordered_map<std::string, std::int64_t> last;
    {
        std::lock_guard lock(threads_mutex_);
        for (const auto& t : threads_) {
            std::lock_guard l(t->mutex);
            for (const auto& [topic, ms] : t->seen) {
                auto& v = last[topic];
                v = std::max(v, ms);
            }
        }
    }
    for (const auto& [topic, ms] : last) {
        std::uint32_t silence = 0;
        if (!watched_for_staleness(topic, silence)) continue;
        const double silent_s = static_cast<double>(now - ms) / 1000.0;
        set(kind::stale, topic, silent_s > silence, silent_s, silence);
    }
}

void alerts::check_reconnects(steady_clock::time_point now) {
    const auto window = std::chrono::seconds(cfg_.reconnect_window_s);
    std::vector<std::pair<std::string, std::size_t>> counts;
    {
        std::lock_guard lock(connects_mutex_);
        for (auto it = connects_.begin(); it != connects_.end();) {
            auto& times = it->second;
            while (!times.empty() && now - times.front() > window) times.pop_front();
            if (times.empty()) {
                counts.emplace_back(it->first, 0);
                it = connects_.erase(it);
            } else {
                counts.emplace_back(it->first, times.size());
                ++it;
            }
        }
    }
    for (const auto& [id, n] : counts) {
        const bool loop = n >= cfg_.reconnect_count;
        if (loop || active_.contains({kind::reconnect_loop, id}))
            set(kind::reconnect_loop, id, loop, static_cast<double>(n), cfg_.reconnect_count);
    }
}

void alerts::set(kind k, const std::string& subject, bool active, double value, double reference) {
    const auto key = std::make_pair(k, subject);
    const auto it = active_.find(key);
    if (active == (it != active_.end())) return;
    if (active) {
        alert_state a{value, reference, now_ms()};
        spdlog::warn("alert {} on '{}': value {:.1f}, {} {:.1f}", to_string(k), subject, value,
                     k == kind::spike || k == kind::drop ? "baseline" : "threshold", reference);
        raised_[static_cast<std::size_t>(k)]->Increment();
        active_.emplace(key, a);
        publish(k, subject, a, true);
    } else {
        alert_state a = it->second;
        a.value = value;
        spdlog::info("alert {} on '{}' cleared: value {:.1f}", to_string(k), subject, value);
        active_.erase(it);
        publish(k, subject, a, false);
    }
    active_gauge_.Set(static_cast<double>(active_.size()));
}

void alerts::publish(kind k, const std::string& subject, const alert_state& a, bool active) {
    nlohmann::json j{{"kind", to_string(k)}, {"subject", subject}, {"value", a.value},
                     {"since", iso_time(a.since_ms)}, {"active", active}};
    j[k == kind::spike || k == kind::drop ? "baseline" : "threshold"] = a.reference;
    auto m = std::make_shared<message>();
    m->topic = "$SYS/broker/alerts/" + std::string(to_string(k)) + "/" + subject;
    m->payload = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    m->retain = true;
    m->props.payload_format_indicator = 1;
    m->props.content_type = "application/json";
    m->received_ms = now_ms();
    core_.publish(m);
}

}  // namespace strata::broker
