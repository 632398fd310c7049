#include "broker/router.hpp"

#include "broker/connection.hpp"

#include <algorithm>
#include <mutex>
#include <optional>

namespace strata::broker {

namespace {

// One session's merged view of every subscription that matched a message.
struct match {
    session* s = nullptr;
    std::uint8_t qos = 0;
    bool retain_as_published = false;
    bool filtered = true;  // every matching subscription is `filtered`
    subscription_ids ids;
};

}  // namespace

router::result router::publish(const message_ptr& m, store_ops* ops, const ns::model* model, ns::verdict* verdict) {
    // Reused per thread: matching allocates nothing once warmed up.
    thread_local std::vector<match> matches;
    thread_local std::vector<const trie::shared_group*> groups;
    matches.clear();
    groups.clear();
    result r;
    const auto count = [&r](deliver_result d) {
        if (d == deliver_result::queued) ++r.delivered;
        if (d == deliver_result::refused) ++r.refused;
    };
    const auto on_sub = [&](session* s, const subscription_entry& e) {
        if (e.options.no_local && s == m->origin) return;
        match mt{s, e.options.qos, e.options.retain_as_published, e.filtered, {}};
        if (e.identifier != 0) mt.ids.push_back(e.identifier);
        matches.push_back(std::move(mt));
    };
    const auto on_group = [&](const trie::shared_group& group) { groups.push_back(&group); };

    std::shared_lock lock(subs_mutex_);
    if (model == nullptr) {
        subs_.match(m->topic, on_sub, on_group);
    } else {
        // One walk over the topic's levels: the trie matches each level and
        // the model reads it; then the verdict decides, before anything is
        // retained or delivered.
        ns::topic_walk walk(*model, m->topic);
        subs_.match(m->topic, on_sub, on_group,
                    [&walk](std::string_view level, std::size_t begin) { return walk.step(level, begin); });
        *verdict = model->check(walk, m->payload, m->retain);
        if (!verdict->admitted()) {
            r.admitted = false;
            return r;
        }
    }
    // Retained before it is delivered, while the subscriptions are locked: a
    // client subscribing meanwhile gets it either way.
    if (m->retain) retain(m);

    for (const trie::shared_group* g : groups)
        if (const auto d = deliver_to_group(*g, m, ops)) count(*d);
    if (matches.size() > 1) {
        // Overlapping subscriptions of one session: one delivery at the
        // highest QoS with every identifier.
        std::sort(matches.begin(), matches.end(),
                  [](const match& a, const match& b) { return a.s < b.s; });
        std::size_t out = 0;
        for (std::size_t i = 0; i < matches.size(); ++i) {
            if (out > 0 && matches[out - 1].s == matches[i].s) {
                auto& into = matches[out - 1];
                into.qos = std::max(into.qos, matches[i].qos);
                into.retain_as_published = into.retain_as_published || matches[i].retain_as_published;
                into.filtered = into.filtered && matches[i].filtered;
                into.ids.insert(into.ids.end(), matches[i].ids.begin(), matches[i].ids.end());
            } else {
                if (out != i) matches[out] = std::move(matches[i]);
                ++out;
            }
        }
        matches.resize(out);
    }
    for (auto& mt : matches) {
        if (mt.filtered && !mt.s->may_receive(m->topic)) continue;
        const std::uint8_t qos = std::min(m->qos, mt.qos);
        count(mt.s->deliver(m, qos, mt.retain_as_published && m->retain, mt.ids, false, ops));
    }
    return r;
}

std::optional<deliver_result> router::deliver_to_group(const trie::shared_group& group, const message_ptr& m,
                                                      store_ops* ops) {
    const auto& members = group.members();
    if (members.empty()) return std::nullopt;
    // Round robin, preferring a member whose client is connected, among the
    // members allowed to receive the message.
    const std::size_t n = members.size();
    const std::size_t start = group.next() % n;
    std::size_t pick = n;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = (start + i) % n;
        const auto& member = members[k];
        if (member.data.filtered && !member.subscriber->may_receive(m->topic)) continue;
        if (pick == n) pick = k;
        if (member.subscriber->connected()) {
            pick = k;
            break;
        }
    }
    if (pick == n) return std::nullopt;
    session* s = members[pick].subscriber;
    const subscription_entry& e = members[pick].data;
    if (e.options.no_local && s == m->origin) return std::nullopt;
    subscription_ids ids;
    if (e.identifier != 0) ids.push_back(e.identifier);
    const std::uint8_t qos = std::min(m->qos, e.options.qos);
    return s->deliver(m, qos, e.options.retain_as_published && m->retain, ids, false, ops);
}

void router::retain(const message_ptr& m) {
    if (m->expires_at) retained_expiry_.store(true, std::memory_order_relaxed);
    std::unique_lock lock(retained_mutex_);
    if (m->payload.empty()) {
        retained_.erase(m->topic);
    } else {
        retained_.set(m->topic, m);
    }
}

bool router::erase_retained_if_same(const message_ptr& m) {
    std::unique_lock lock(retained_mutex_);
    bool same = false;
    retained_.match(m->topic, [&](const message_ptr& stored) { same = stored == m; });  // a topic: one match at most
    return same && retained_.erase(m->topic);
}

bool router::subscribe(session* s, const std::string& filter, const subscription_entry& e) {
    std::unique_lock lock(subs_mutex_);
    return subs_.insert(filter, s, e);
}

bool router::subscribe_shared(session* s, std::string_view group, std::string_view filter,
                              const subscription_entry& e) {
    std::unique_lock lock(subs_mutex_);
    return subs_.insert_shared(group, filter, s, e);
}

bool router::unsubscribe(session* s, const std::string& filter) {
    std::unique_lock lock(subs_mutex_);
    return subs_.erase(filter, s);
}

bool router::unsubscribe_shared(session* s, std::string_view group, std::string_view filter) {
    std::unique_lock lock(subs_mutex_);
    return subs_.erase_shared(group, filter, s);
}

void router::for_each_retained(std::string_view filter,
                               const std::function<void(const message_ptr&)>& f) const {
    const auto now = steady_clock::now();
    std::vector<message_ptr> found;
    {
        std::shared_lock lock(retained_mutex_);
        retained_.match(filter, [&](const message_ptr& m) {
            if (!m->expired(now)) found.push_back(m);
        });
    }
    for (const auto& m : found) f(m);
}

std::vector<std::string> router::purge_expired_retained(steady_clock::time_point now) {
    std::vector<std::string> expired;
    if (!retained_expiry_.exchange(false, std::memory_order_relaxed)) return expired;
    bool more = false;
    {
        std::shared_lock lock(retained_mutex_);
        retained_.for_each([&](std::string_view topic, const message_ptr& m) {
            if (m->expired(now)) {
                expired.emplace_back(topic);
            } else if (m->expires_at) {
                more = true;
            }
        });
    }
    if (more) retained_expiry_.store(true, std::memory_order_relaxed);
    if (expired.empty()) return expired;
    std::unique_lock lock(retained_mutex_);
    // Replaced meanwhile by a fresh value: keep that one.
    std::erase_if(expired, [&](const std::string& t) {
        const message_ptr* m = retained_.find(t);
        if (m == nullptr || !(*m)->expired(now)) return true;
        retained_.erase(t);
        return false;
    });
    return expired;
}

std::size_t router::retained_count() const {
    std::shared_lock lock(retained_mutex_);
    return retained_.size();
}

std::size_t router::subscription_count() const {
    std::lock_guard lock(subs_mutex_);
    return subs_.size();
}

}  // namespace strata::broker
