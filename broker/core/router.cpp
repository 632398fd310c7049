#include "broker/core/router.hpp"


#include <algorithm>
#include <mutex>
#include <optional>

namespace strata::broker::core {

struct retained_slot {
    message_ptr msg;  // null once the topic was cleared
    // The share it counts against (an entry of router::by_identity_), null
    // for '$' topics, the broker's own messages and recovered ones.
    std::pair<const std::string, router::retained_usage>* owner = nullptr;
};

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

router::result router::publish(const message_ptr& m, store_ops* ops, const ns::model* model, ns::verdict* verdict,
                               const std::string* identity, flow_gate* gate) {
    // Reused per thread: matching allocates nothing once warmed up.
    thread_local std::vector<match> matches;
    thread_local std::vector<const trie::shared_group*> groups;
    matches.clear();
    groups.clear();
    result r;
    const auto count = [&r](deliver_result d) {
        if (d == deliver_result::queued) ++r.delivered;
        if (d == deliver_result::dropped) ++r.dropped;
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
    // client subscribing meanwhile gets it either way. One the retained
    // limits refuse is not delivered either: the publisher is told it was
    // refused, so it must have had no effect.
    if (m->retain) {
        r.retained = retain(m, identity);
        if (r.retained != retain_verdict::stored) return r;
    }

    for (const trie::shared_group* g : groups)
        if (const auto d = deliver_to_group(*g, m, ops, model, verdict, gate)) count(*d);
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
        // The grants read the topic as the routing walk did (its verdict).
        if (mt.filtered && !mt.s->may_receive(m->topic, model, verdict)) continue;
        const std::uint8_t qos = std::min(m->qos, mt.qos);
        count(mt.s->deliver(m, qos, mt.retain_as_published && m->retain, mt.ids, ops, gate));
    }
    return r;
}

std::optional<deliver_result> router::deliver_to_group(const trie::shared_group& group, const message_ptr& m,
                                                      store_ops* ops, const ns::model* model,
                                                      const ns::verdict* verdict, flow_gate* gate) {
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
        if (member.data.filtered && !member.subscriber->may_receive(m->topic, model, verdict)) continue;
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
    return s->deliver(m, qos, e.options.retain_as_published && m->retain, ids, ops, gate);
}

void router::set_retained_limits(const retained_limits& l) {
    std::unique_lock lock(retained_mutex_);
    limits_ = l;
}

namespace {
// '$' topics are the broker's own ($SYS): a fixed set, never refused.
bool counted(std::string_view topic) noexcept { return topic.front() != '$'; }
}  // namespace

retain_verdict router::admit_locked(const retained_slot* existing, std::size_t weight,
                                    const std::string* identity) const {
    const std::uint64_t old_weight = existing != nullptr ? existing->msg->weight() : 0;
    // A replacement no larger than the value it replaces adds nothing.
    if (existing != nullptr && weight <= old_weight) return retain_verdict::stored;
    const std::uint64_t grow = weight - old_weight;
    if (existing == nullptr && totals_.messages >= limits_.max_messages) return retain_verdict::over_messages;
    if (totals_.bytes + grow > limits_.max_bytes) return retain_verdict::over_bytes;
    if (identity == nullptr) return retain_verdict::stored;
    const auto it = by_identity_.find(*identity);
    const retained_usage mine = it != by_identity_.end() ? it->second : retained_usage{};
    // Its own topic grows by the difference; another's becomes its own.
    const bool own = existing != nullptr && existing->owner != nullptr && existing->owner->first == *identity;
    if (existing == nullptr && limits_.identity_messages != 0 && mine.messages >= limits_.identity_messages)
        return retain_verdict::over_identity_messages;
    if (limits_.identity_bytes != 0 && mine.bytes + (own ? grow : weight) > limits_.identity_bytes)
        return retain_verdict::over_identity_bytes;
    return retain_verdict::stored;
}

retain_verdict router::retain(const message_ptr& m, const std::string* identity, bool enforce) {
    if (m->payload.empty()) {
        std::unique_lock lock(retained_mutex_);
        erase_locked(m->topic);
        return retain_verdict::stored;
    }
    const bool counts = counted(m->topic);
    if (!counts) identity = nullptr;
    const std::size_t weight = m->weight();
    std::unique_lock lock(retained_mutex_);
    retained_ref* existing = retained_.find(m->topic);
    if (enforce && counts) {
        const auto v = admit_locked(existing != nullptr ? existing->get() : nullptr, weight, identity);
        if (v != retain_verdict::stored) return v;
    }
    if (m->expires_at) retained_expiry_.store(true, std::memory_order_relaxed);
    retained_slot* slot = nullptr;
    if (existing != nullptr) {
        slot = existing->get();
        if (slot->owner != nullptr) {
            slot->owner->second.messages -= 1;
            slot->owner->second.bytes -= slot->msg->weight();
        }
        if (counts) totals_.bytes -= slot->msg->weight();
    } else {
        auto fresh = std::make_shared<retained_slot>();
        slot = fresh.get();
        retained_.set(m->topic, std::move(fresh));
        if (counts) ++totals_.messages;
    }
    // Set while the lock is held: a replay reading the slot gets the newest value.
    auto* previous_owner = slot->owner;
    slot->msg = m;
    slot->owner = nullptr;
    if (counts) {
        totals_.bytes += weight;
        if (identity != nullptr) {
            auto& entry = *by_identity_.try_emplace(*identity).first;
            entry.second.messages += 1;
            entry.second.bytes += weight;
            slot->owner = &entry;
        }
    }
    if (previous_owner != nullptr && previous_owner != slot->owner && previous_owner->second.messages == 0)
        by_identity_.erase(previous_owner->first);
    return retain_verdict::stored;
}

bool router::erase_locked(std::string_view topic) {
    retained_ref* found = retained_.find(topic);
    if (found == nullptr) return false;
    retained_slot& slot = **found;
    if (counted(topic)) {
        totals_.messages -= 1;
        totals_.bytes -= slot.msg->weight();
    }
    if (slot.owner != nullptr) {
        slot.owner->second.messages -= 1;
        slot.owner->second.bytes -= slot.msg->weight();
        if (slot.owner->second.messages == 0) by_identity_.erase(slot.owner->first);
        slot.owner = nullptr;
    }
    slot.msg.reset();
    return retained_.erase(topic);
}

bool router::erase_retained_if_same(const message_ptr& m) {
    std::unique_lock lock(retained_mutex_);
    const retained_ref* found = retained_.find(m->topic);
    return found != nullptr && (*found)->msg == m && erase_locked(m->topic);
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
        retained_.match(filter, [&](const retained_ref& slot) {
            if (!slot->msg->expired(now)) found.push_back(slot->msg);
        });
    }
    for (const auto& m : found) f(m);
}

router::retained_page router::read_retained_page(std::string_view filter, const std::string* after, std::size_t limit,
                                                 std::size_t scan, std::size_t max_bytes,
                                                 const std::function<bool(std::string_view)>& visible) const {
    const auto now = steady_clock::now();
    retained_page page;
    std::size_t looked = 0, bytes = 0;
    const std::string_view from = after ? std::string_view(*after) : std::string_view();
    std::shared_lock lock(retained_mutex_);
    retained_.match_ordered(filter, after ? &from : nullptr, [&](std::string_view topic, const retained_ref& slot) {
        const message_ptr& m = slot->msg;
        if (!m->expired(now) && visible(topic)) {
            if (page.messages.size() == limit || bytes >= max_bytes) {
                // One more exists: the page is full and has a successor.
                page.next = page.messages.back()->topic;
                return false;
            }
            page.messages.push_back(m);
            bytes += m->weight();
        }
        if (++looked < scan) return true;
        page.next = std::string(topic);
        return false;
    });
    return page;
}

std::vector<retained_ref> router::retained_snapshot(std::string_view filter) const {
    std::vector<retained_ref> out;
    std::shared_lock lock(retained_mutex_);
    retained_.match(filter, [&](const retained_ref& slot) { out.push_back(slot); });
    return out;
}

void router::current(std::span<const retained_ref> slots, std::vector<message_ptr>& out) const {
    std::shared_lock lock(retained_mutex_);
    for (const auto& slot : slots) out.push_back(slot->msg);
}

std::vector<std::string> router::purge_expired_retained(steady_clock::time_point now) {
    std::vector<std::string> expired;
    if (!retained_expiry_.exchange(false, std::memory_order_relaxed)) return expired;
    bool more = false;
    {
        std::shared_lock lock(retained_mutex_);
        retained_.for_each([&](std::string_view topic, const retained_ref& slot) {
            const message_ptr& m = slot->msg;
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
        const retained_ref* slot = retained_.find(t);
        if (slot == nullptr || !(*slot)->msg->expired(now)) return true;
        erase_locked(t);
        return false;
    });
    return expired;
}

std::size_t router::retained_count() const {
    std::shared_lock lock(retained_mutex_);
    return retained_.size();
}

router::retained_usage router::retained_totals() const {
    std::shared_lock lock(retained_mutex_);
    return totals_;
}

std::size_t router::subscription_count() const {
    std::lock_guard lock(subs_mutex_);
    return subs_.size();
}

}  // namespace strata::broker::core
