#include "namespace/model_stats.hpp"

#include <algorithm>
#include <chrono>
#include <random>

#include "namespace/model.hpp"
#include "namespace/model_impl.hpp"  // name_hash

namespace strata::ns {

std::uint64_t process_seed() noexcept {
    static const std::uint64_t seed = [] {
        std::uint64_t s = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        try {
            std::random_device rd;
            s ^= (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
        } catch (...) {
            // no entropy source: the clock alone
        }
        return s;
    }();
    return seed;
}

namespace {

// Threads take stripes round-robin as they first count something.
std::size_t this_thread_stripe(std::size_t stripes) noexcept {
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed);
    return mine % stripes;
}

}  // namespace

model_stats::model_stats(std::size_t max_subtrees) : max_subtrees_(std::max<std::size_t>(max_subtrees, 1)) {
    // At most half full, so probes stay short and always find a hole.
    std::size_t cap = 16;
    while (cap < max_subtrees_ * 2) cap *= 2;
    mask_ = cap - 1;
    table_ = std::make_unique<std::atomic<entry*>[]>(cap);
    for (std::size_t i = 0; i < cap; ++i) table_[i].store(nullptr, std::memory_order_relaxed);
    other_ = std::make_unique<entry>();
    other_->key = std::string(other_label);
}

model_stats::~model_stats() = default;

model_stats::entry* model_stats::find_or_insert(std::string_view key, std::size_t hash) noexcept {
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
        entry* e = table_[i].load(std::memory_order_acquire);
        if (e == nullptr) break;
        if (e->hash == hash && e->key == key) return e;
    }
    // Not there: insert under the lock (re-probing, another thread may have
    // inserted it meanwhile).
    try {
        std::lock_guard lock(insert_mutex_);
        std::size_t i = hash & mask_;
        for (;; i = (i + 1) & mask_) {
            entry* e = table_[i].load(std::memory_order_acquire);
            if (e == nullptr) break;
            if (e->hash == hash && e->key == key) return e;
        }
        if (owned_.size() >= max_subtrees_) return other_.get();
        auto fresh = std::make_unique<entry>();
        fresh->key = std::string(key);
        fresh->hash = hash;
        entry* raw = fresh.get();
        owned_.push_back(std::move(fresh));
        table_[i].store(raw, std::memory_order_release);
        return raw;
    } catch (...) {
        return other_.get();  // out of memory: still count, coarsely
    }
}

model_stats::subtree_counters& model_stats::counters_for(std::string_view subtree) noexcept {
    if (subtree.empty()) subtree = outside_label;
    return *find_or_insert(subtree, static_cast<std::size_t>(name_hash(subtree, process_seed())));
}

void model_stats::add(subtree_counters& at, counter c, std::uint64_t n) noexcept {
    at.s[this_thread_stripe(stripes)].c[static_cast<std::size_t>(c)].fetch_add(n, std::memory_order_relaxed);
}

void model_stats::add(std::string_view subtree, counter c, std::uint64_t n) noexcept {
    add(counters_for(subtree), c, n);
}

void model_stats::record(const verdict& v) noexcept { add(v.subtree, counter_for(v)); }

model_stats::counter model_stats::counter_for(const verdict& v) noexcept {
    if (v.result == outcome::pass) return counter::pass;
    if (v.result == outcome::free) return counter::free;
    int reason = 0;
    if (v.code == reason_code::payload_invalid) reason = 1;
    else if (v.code == reason_code::retain_violation) reason = 2;
    int base = static_cast<int>(counter::rejected_topic);
    if (v.mode == enforcement::warn) base = static_cast<int>(counter::warned_topic);
    else if (v.mode == enforcement::quarantine) base = static_cast<int>(counter::quarantined_topic);
    return static_cast<counter>(base + reason);
}

std::string_view model_stats::outcome_label(counter c) noexcept {
    switch (c) {
    case counter::pass: return "pass";
    case counter::free: return "free";
    case counter::rejected_topic:
    case counter::rejected_payload:
    case counter::rejected_retain: return "rejected";
    case counter::warned_topic:
    case counter::warned_payload:
    case counter::warned_retain: return "warned";
    case counter::quarantined_topic:
    case counter::quarantined_payload:
    case counter::quarantined_retain: return "quarantined";
    }
    return "";
}

std::string_view model_stats::reason_label(counter c) noexcept {
    switch (c) {
    case counter::pass:
    case counter::free: return "";
    case counter::rejected_topic:
    case counter::warned_topic:
    case counter::quarantined_topic: return "topic_invalid";
    case counter::rejected_payload:
    case counter::warned_payload:
    case counter::quarantined_payload: return "payload_invalid";
    case counter::rejected_retain:
    case counter::warned_retain:
    case counter::quarantined_retain: return "retain_violation";
    }
    return "";
}

std::vector<model_stats::row> model_stats::snapshot() const {
    std::vector<row> out;
    const auto sum = [](const entry& e) {
        row r;
        r.subtree = e.key;
        for (const stripe& s : e.s)
            for (std::size_t i = 0; i < counter_count; ++i) r.values[i] += s.c[i].load(std::memory_order_relaxed);
        return r;
    };
    {
        std::lock_guard lock(insert_mutex_);
        for (const auto& e : owned_) out.push_back(sum(*e));
    }
    row other = sum(*other_);
    if (std::any_of(other.values.begin(), other.values.end(), [](std::uint64_t v) { return v != 0; }))
        out.push_back(std::move(other));
    std::sort(out.begin(), out.end(), [](const row& a, const row& b) { return a.subtree < b.subtree; });
    return out;
}

std::uint64_t model_stats::total(counter c) const {
    std::uint64_t t = 0;
    for (const row& r : snapshot()) t += r[c];
    return t;
}

}  // namespace strata::ns
