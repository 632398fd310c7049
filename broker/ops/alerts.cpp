// Alerts: counting on the publish path, the once-a-second evaluation.
#include "broker/ops/alerts.hpp"

#include "broker/core/broker_core.hpp"
#include "broker/hosts/sparkplug_host.hpp"
#include "broker/ops/http_admin.hpp"
#include "broker/core/stats.hpp"
#include "broker/core/stored.hpp"
#include "namespace/model.hpp"
#include "namespace/topic.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

namespace strata::broker::ops {

namespace {
// Lookups by string_view without making a std::string.
struct text_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using text_map = std::unordered_map<std::string, V, text_hash, std::equal_to<>>;

// The key of a subtree's entry for the topics beyond max_topics: no topic
// name contains U+0000, so it cannot clash with a topic.
constexpr char aggregate_mark = '\0';

constexpr std::uint32_t unresolved = std::numeric_limits<std::uint32_t>::max();
}  // namespace

// One topic in one thread's table. `n` is written by that thread only
// (relaxed load+store); the rest belongs to the tick, under the table's
// mutex.
struct alerts::topic_entry {
    std::atomic<std::uint64_t> n{0};
    std::uint64_t seen_n = 0;          // n at the tick that last saw it change
    std::int64_t changed_ms = 0;       // when that tick ran (steady clock, ms)
    std::uint32_t subtree = unresolved;
    std::int64_t max_silence_ms = 0;   // 0: not watched for staleness
};

// One thread's table. Entries never move (node-based map) and are never
// removed. The owner looks entries up without the mutex and takes it to
// insert; the tick takes it to walk the table.
struct alerts::thread_counts {
    std::mutex mutex;
    text_map<topic_entry> topics;
};

std::atomic<alerts*> alerts::current_{nullptr};

namespace {

std::atomic<std::uint64_t> generations{0};

// The calling thread's view: its table for the alerts object of
// `generation`, and the key and counter of the entry it counted last.
// Constant-initialised and trivially destructible, so that reading it is a
// plain thread-local access (no initialisation guard).
struct local_view {
    std::uint64_t generation = 0;
    void* counts = nullptr;
    const std::string* last_key = nullptr;
    std::atomic<std::uint64_t>* last_n = nullptr;
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

bool is_aggregate(std::string_view key) noexcept { return !key.empty() && key.front() == aggregate_mark; }

}  // namespace

std::string_view alerts::to_string(kind k) noexcept {
    switch (k) {
    case kind::spike: return "spike";
    case kind::drop: return "drop";
    case kind::stale: return "stale";
    case kind::reconnect_loop: return "reconnect_loop";
    case kind::slow_consumer: return "slow_consumer";
    case kind::sparkplug_offline: return "sparkplug_offline";
    case kind::sparkplug_seq_gap: return "sparkplug_seq_gap";
    }
    return "?";
}

alerts::alerts(core::broker_core& core, const alerts_config& cfg, prometheus::Registry& registry)
    : core_(core),
      cfg_(cfg),
      levels_(cfg.levels),
      generation_(++generations),
      raised_family_(prometheus::BuildCounter()
                         .Name("strata_alerts_total")
                         .Help("Alerts raised, by kind (spike, drop, stale, reconnect_loop, slow_consumer, sparkplug_offline, "
                               "sparkplug_seq_gap)")
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

void alerts::activate() noexcept {
    current_.store(this, std::memory_order_release);
    core_.observe(this);
}

void alerts::deactivate() noexcept {
    alerts* self = this;
    if (current_.compare_exchange_strong(self, nullptr, std::memory_order_acq_rel)) core_.observe(nullptr);
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

void alerts::count_here(std::string_view topic) noexcept {
    if (topic.empty() || topic.front() == '$') return;
    // The common case under load: the same topic as this thread's last
    // message (a publisher's messages arrive in batches).
    if (view.generation == generation_ && view.last_key != nullptr && *view.last_key == topic) {
        core::bump(*view.last_n);
        return;
    }
    try {
        count_new(topic);
    } catch (const std::exception& e) {
        // Only allocation can fail here; an uncounted message is no reason
        // to fail a publish.
        spdlog::debug("alerts: message not counted: {}", e.what());
    }
}

void alerts::count_new(std::string_view topic) {
    auto& t = local();
    view.last_key = nullptr;
    auto it = t.topics.find(topic);
    if (it == t.topics.end()) {
        std::string key;
        if (t.topics.size() < max_topics) {
            key.assign(topic);
        } else {
            // Full: counted under the subtree's entry (looked up again for
            // every message).
            key.assign(1, aggregate_mark);
            key += subtree_of(topic, levels_.load(std::memory_order_relaxed));
            it = t.topics.find(key);
            if (it == t.topics.end() && t.topics.size() >= max_topics + max_subtrees) return;
            if (!topics_full_logged_.load(std::memory_order_relaxed) && !topics_full_logged_.exchange(true))
                spdlog::warn("alerts: more than {} topics on one thread; further topics are counted per subtree "
                             "only, not watched for staleness", max_topics);
        }
        if (it == t.topics.end()) {
            std::lock_guard lock(t.mutex);
            it = t.topics.try_emplace(std::move(key)).first;
        }
    }
    core::bump(it->second.n);
    view.last_key = &it->first;
    view.last_n = &it->second.n;
}

void alerts::connected_here(std::string_view client_id) {
    const auto now = core::steady_clock::now();
    const std::uint64_t h = std::hash<std::string_view>{}(client_id);
    std::lock_guard lock(connects_mutex_);
    auto it = connects_.find(std::string(client_id));
    if (it == connects_.end()) {
        first_connect& mark = first_connects_[h % first_connect_slots];
        const bool again = mark.id_hash == h && now - mark.at <= std::chrono::seconds(cfg_.reconnect_window_s);
        if (!again) {
            mark = {h, now};
            return;
        }
        it = connects_.emplace(std::string(client_id), std::deque<core::steady_clock::time_point>{mark.at}).first;
        mark = {};
    }
    auto& times = it->second;
    times.push_back(now);
    while (times.size() > cfg_.reconnect_count) times.pop_front();
}

std::uint32_t alerts::subtree_id(std::string_view subtree) {
    const auto it = subtree_ids_.find(std::string(subtree));
    if (it != subtree_ids_.end()) return it->second;
    if (subtree_names_.size() >= max_subtrees) {
        if (!subtrees_full_logged_)
            spdlog::warn("alerts: more than {} subtrees; further subtrees are not watched", max_subtrees);
        subtrees_full_logged_ = true;
        return max_subtrees;
    }
    const auto id = static_cast<std::uint32_t>(subtree_names_.size());
    subtree_names_.emplace_back(subtree);
    subtree_ids_.emplace(subtree, id);
    return id;
}

alerts::stale_limit alerts::limit_for(std::string_view topic, const ns::model* m) const {
    stale_limit l;
    for (const auto& r : cfg_.stale) {
        if (ns::topic_matches(r.filter, topic)) {
            l.max_silence_ms = std::int64_t{r.max_silence_s} * 1000;
            return l;
        }
    }
    if (m == nullptr || cfg_.stale_factor <= 0) return l;
    // The topic alone decides its class (an empty retained payload is
    // checked for its topic only).
    const ns::verdict v = m->evaluate(topic, {}, true);
    if (v.klass == nullptr || !v.klass->expected_period) return l;
    const double period_ms = static_cast<double>(v.klass->expected_period->count());
    l.max_silence_ms = static_cast<std::int64_t>(std::clamp(std::ceil(period_ms * cfg_.stale_factor), 1.0, 1e15));
    l.data_class = v.klass->name;
    l.period_s = period_ms / 1000.0;
    return l;
}

void alerts::tick(core::steady_clock::time_point now) {
    const double seconds =
        last_tick_ == core::steady_clock::time_point{} ? 1.0 : std::chrono::duration<double>(now - last_tick_).count();
    last_tick_ = now;
    // Silence is measured on the steady clock (a wall clock step is no
    // silence).
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    std::vector<std::uint64_t> per_subtree;
    std::map<std::string, stale_topic> silent;
    scan(ms, per_subtree, silent);
    if (seconds > 0) check_rates(seconds, per_subtree);
    check_stale(ms, silent);
    check_reconnects(now);
    check_slow_consumers(now);
    check_sparkplug(now);
}

void alerts::check_slow_consumers(std::chrono::steady_clock::time_point now) {
    // value: the messages in its queue when it was acted on; threshold: the queue limit.
    const auto events = core_.slow_consumers_since(now - slow_consumer_hold);
    const double limit = core_.cfg().limits.max_queued_messages;
    for (const auto& e : events) set(kind::slow_consumer, e.client_id, true, static_cast<double>(e.queued), limit);
    std::vector<std::string> cleared;
    for (const auto& entry : active_) {
        const auto& [k, subject] = entry.first;
        if (k != kind::slow_consumer) continue;
        const std::string& id = subject;  // (a structured binding cannot be captured with clang 14)
        if (std::none_of(events.begin(), events.end(), [&id](const auto& e) { return e.client_id == id; }))
            cleared.push_back(id);
    }
    for (const auto& id : cleared) set(kind::slow_consumer, id, false, 0, limit);
}

void alerts::check_sparkplug(std::chrono::steady_clock::time_point now) {
    if (sparkplug_ == nullptr) return;
    // Deaths are stamped with the wall clock (they are shown as times).
    const std::int64_t wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
    std::set<std::pair<kind, std::string>> raised;
    std::map<std::string, gap_seen> gaps;
    for (const auto& s : sparkplug_->status()) {
        for (const auto& n : s.nodes) {
            std::string subject = n.group + "/" + n.edge_node;
            const std::int64_t down_ms = wall - n.death_ms;
            if (s.offline_alert_ms > 0 && !n.online && n.death_ms > 0 && down_ms > s.offline_alert_ms) {
                set(kind::sparkplug_offline, subject, true, static_cast<double>(down_ms) / 1000.0,
                    static_cast<double>(s.offline_alert_ms) / 1000.0);
                raised.emplace(kind::sparkplug_offline, subject);
            }
            gap_seen g = sparkplug_gaps_[subject];
            if (n.seq_gaps > g.count) g = {n.seq_gaps, now};
            if (g.count > 0 && now - g.at < sparkplug_gap_hold) {
                set(kind::sparkplug_seq_gap, subject, true, static_cast<double>(n.seq_gaps), 0);
                raised.emplace(kind::sparkplug_seq_gap, subject);
            }
            gaps.emplace(std::move(subject), g);
        }
    }
    sparkplug_gaps_ = std::move(gaps);  // nodes no longer followed are forgotten
    std::vector<std::pair<kind, std::string>> cleared;
    for (const auto& entry : active_) {
        const kind k = entry.first.first;
        if ((k == kind::sparkplug_offline || k == kind::sparkplug_seq_gap) && !raised.contains(entry.first))
            cleared.push_back(entry.first);
    }
    for (const auto& [k, subject] : cleared) set(k, subject, false, 0, 0);
}

void alerts::reconfigure(const alerts_config& next) {
    if (next.levels != cfg_.levels) {
        // Other subtrees: their rates start afresh, and the rate alerts of
        // the old ones no longer mean anything.
        std::vector<std::pair<kind, std::string>> moot;
        for (const auto& [key, a] : active_)
            if (key.first == kind::spike || key.first == kind::drop) moot.push_back(key);
        for (const auto& [k, subject] : moot) set(k, subject, false, 0, 0);
        subtree_ids_.clear();
        subtree_names_.clear();
        subtrees_full_logged_ = false;
        rates_.clear();
        resubtree_ = true;
    }
    if (next.stale != cfg_.stale || next.stale_factor != cfg_.stale_factor) relimit_ = true;
    if (next.window_s != cfg_.window_s) {
        // A longer window: the baselines are not yet as warm as it asks.
        for (auto& r : rates_) r.samples = std::min(r.samples, next.window_s);
    }
    if (next.enabled && !cfg_.enabled) {
        rates_.clear();
        last_tick_ = {};
        silent_from_now_ = true;
    }
    levels_.store(next.levels, std::memory_order_relaxed);
    std::lock_guard lock(connects_mutex_);
    cfg_ = next;
}

void alerts::clear() {
    std::vector<std::pair<kind, std::string>> all;
    for (const auto& [key, a] : active_) all.push_back(key);
    for (const auto& [k, subject] : all) set(k, subject, false, 0, 0);
}

void alerts::scan(std::int64_t now, std::vector<std::uint64_t>& per_subtree,
                  std::map<std::string, stale_topic>& silent) {
    // A model reload (or a model installed or removed) changes the limits,
    // and so do new stale settings.
    const std::uint64_t generation = core_.model_generation();
    const bool relimit = generation != model_generation_ || relimit_;
    const bool resubtree = std::exchange(resubtree_, false);
    const bool from_now = std::exchange(silent_from_now_, false);
    relimit_ = false;
    model_generation_ = generation;
    const ns::model* m = cfg_.stale_factor > 0 ? core_.model() : nullptr;

    std::vector<thread_counts*> threads;
    {
        std::lock_guard lock(threads_mutex_);
        for (const auto& t : threads_) threads.push_back(t.get());
    }
    for (auto* t : threads) {
        std::lock_guard lock(t->mutex);
        for (auto& [key, e] : t->topics) {
            const bool aggregate = is_aggregate(key);
            if (resubtree) e.subtree = unresolved;
            if (from_now) e.changed_ms = now;
            if (e.subtree == unresolved || (relimit && !aggregate)) {
                const std::int64_t before = e.max_silence_ms;
                if (e.subtree == unresolved)
                    e.subtree = subtree_id(aggregate ? std::string_view(key).substr(1) : subtree_of(key, cfg_.levels));
                e.max_silence_ms = aggregate ? 0 : limit_for(key, m).max_silence_ms;
                // Newly watched: silent from now on, not since its last message.
                if (before == 0 && e.max_silence_ms != 0 && e.seen_n != 0) e.changed_ms = now;
            }
            const std::uint64_t n = e.n.load(std::memory_order_relaxed);
            if (n != e.seen_n) {
                if (e.subtree < max_subtrees) {
                    if (per_subtree.size() <= e.subtree) per_subtree.resize(e.subtree + 1, 0);
                    per_subtree[e.subtree] += n - e.seen_n;
                }
                e.seen_n = n;
                e.changed_ms = now;
            }
            if (e.max_silence_ms != 0 && e.seen_n != 0 && now - e.changed_ms > e.max_silence_ms)
                silent.emplace(key, stale_topic{});
        }
    }
    // Silent on one thread is not silent: the topic may be published from
    // another.
    for (auto it = silent.begin(); it != silent.end();) {
        it->second = latest(it->first);
        if (now - it->second.last_change_ms > it->second.max_silence_ms) {
            ++it;
        } else {
            it = silent.erase(it);
        }
    }
}

alerts::stale_topic alerts::latest(const std::string& topic) {
    stale_topic s;
    std::lock_guard lock(threads_mutex_);
    for (const auto& t : threads_) {
        std::lock_guard l(t->mutex);
        const auto it = t->topics.find(topic);
        if (it == t->topics.end() || it->second.seen_n == 0) continue;
        s.last_change_ms = std::max(s.last_change_ms, it->second.changed_ms);
        s.max_silence_ms = it->second.max_silence_ms;
    }
    return s;
}

void alerts::check_rates(double seconds, const std::vector<std::uint64_t>& per_subtree) {
    const std::size_t subtrees = subtree_names_.size();
    rates_.resize(subtrees);
    const double alpha = std::min(1.0, seconds / static_cast<double>(cfg_.window_s));
    for (std::size_t i = 0; i < subtrees; ++i) {
        auto& s = rates_[i];
        const double rate = static_cast<double>(i < per_subtree.size() ? per_subtree[i] : 0) / seconds;
        const bool warm = s.samples >= cfg_.window_s;
        if (warm) {
            const bool spike = rate >= cfg_.min_rate && rate > cfg_.spike_factor * s.baseline;
            const bool drop = s.baseline >= cfg_.min_rate && rate < s.baseline / cfg_.drop_factor;
            set(kind::spike, subtree_names_[i], spike, rate, s.baseline);
            set(kind::drop, subtree_names_[i], drop, rate, s.baseline);
        }
        // While forming, the baseline is the plain mean of the samples.
        ++s.samples;
        s.baseline = warm ? s.baseline + alpha * (rate - s.baseline)
                          : s.baseline + (rate - s.baseline) / static_cast<double>(s.samples);
    }
}

void alerts::check_stale(std::int64_t now, std::map<std::string, stale_topic>& silent) {
    const ns::model* m = cfg_.stale_factor > 0 ? core_.model() : nullptr;
    for (const auto& [topic, s] : silent) {
        if (active_.contains({kind::stale, topic})) continue;
        const stale_limit limit = limit_for(topic, m);
        set(kind::stale, topic, true, static_cast<double>(now - s.last_change_ms) / 1000.0,
            static_cast<double>(s.max_silence_ms) / 1000.0, &limit);
    }
    // Cleared: it published again, or is no longer watched.
    std::vector<std::string> cleared;
    for (const auto& [key, a] : active_)
        if (key.first == kind::stale && !silent.contains(key.second)) cleared.push_back(key.second);
    for (const auto& topic : cleared) {
        const stale_topic s = latest(topic);
        set(kind::stale, topic, false, static_cast<double>(std::max<std::int64_t>(0, now - s.last_change_ms)) / 1000.0,
            0);
    }
}

void alerts::check_reconnects(core::steady_clock::time_point now) {
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

void alerts::set(kind k, const std::string& subject, bool active, double value, double reference,
                 const stale_limit* limit) {
    const auto key = std::make_pair(k, subject);
    const auto it = active_.find(key);
    if (active == (it != active_.end())) return;
    if (active) {
        alert_state a{value, reference, core::now_ms(), {}, 0};
        if (limit != nullptr) {
            a.data_class = limit->data_class;
            a.period_s = limit->period_s;
        }
        spdlog::warn("alert {} on '{}': value {:.1f}, {} {:.1f}{}", to_string(k), subject, value,
                     k == kind::spike || k == kind::drop ? "baseline" : "threshold", reference,
                     a.data_class.empty() ? std::string()
                                          : fmt::format(" (class '{}', expected period {} s, x {})", a.data_class,
                                                        a.period_s, cfg_.stale_factor));
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
    if (!a.data_class.empty()) {
        j["class"] = a.data_class;
        j["expected_period_s"] = a.period_s;
    }
    auto m = std::make_shared<core::message>();
    m->topic = "$SYS/broker/alerts/" + std::string(to_string(k)) + "/" + subject;
    m->payload = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    m->retain = true;
    auto& props = m->props.edit();
    props.payload_format_indicator = 1;
    props.content_type = "application/json";
    m->received_ms = core::now_ms();
    core_.publish(m);
}

}  // namespace strata::broker::ops
