// The router: subscription trie and retained messages.
//
// With a namespace model, publish() reads the topic's levels once: as the
// trie descends level by level, the model's walk (ns::topic_walk) takes the
// same level and finds its rules. The matches are collected first; then the
// model's verdict decides whether the message is retained and delivered.
//
// Thread-safety: all members may be called from any thread. Matching takes
// the calling thread's own slot of a per-thread reader-writer lock (see
// thread_rwlock.hpp), so publishes on different threads never contend;
// subscribe/unsubscribe take every slot. Deliveries into sessions happen under the shared lock,
// which is what keeps a session alive while it is being delivered to: a
// session is removed from the trie (exclusive lock) before it is destroyed.
// No lock is held across any I/O.
//
// Retained messages: one slot per topic holds its current value; the tree
// holds the slot, and so does a retained replay waiting to send it (see
// session::replay_retained), which reads the slot when its turn comes and so
// sends the newest value, or nothing once the topic was cleared. The store
// is bounded (retained_limits): a retained message that would grow it past a
// limit is refused, neither retained nor delivered. Each topic counts
// against the share of the identity that set it last ('$' topics, the
// broker's own, count against nothing).
#pragma once

#include "broker/core/message.hpp"
#include "broker/core/router_fwd.hpp"
#include "broker/core/session.hpp"
#include "broker/core/thread_rwlock.hpp"
#include "namespace/model.hpp"
#include "namespace/retained_tree.hpp"
#include "namespace/subscription_trie.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::broker::core {

// Bounds of the retained store, set from the config by the broker core
// (docs/operations.md "Limits"). Default: none. 0 in a per-identity field: no share.
struct retained_limits {
    std::uint64_t max_messages = UINT64_MAX;  // limits.max_retained_messages
    std::uint64_t max_bytes = UINT64_MAX;     // limits.max_retained_bytes (topic + payload)
    std::uint64_t identity_messages = 0;      // auth.limits.retained
    std::uint64_t identity_bytes = 0;         // auth.limits.retained_bytes
};

// What became of a retained message (the limit that refused it, if any).
enum class retain_verdict : std::uint8_t { stored, over_messages, over_bytes, over_identity_messages, over_identity_bytes };
inline constexpr std::array<const char*, 4> retain_refusal_labels{"messages", "bytes", "identity_messages",
                                                                  "identity_bytes"};

// retained_slot (router_fwd.hpp): one retained topic's current value (see
// the top of this file). Its fields belong to the router and are read and
// written under its lock.

class router {
public:
    // Keeps `m` as the retained value of its topic when m->retain (see
    // retain()) and routes it to every matching subscription. Overlapping
    // subscriptions of one session give one delivery at the highest granted
    // QoS carrying all matching subscription identifiers; each matching
    // shared group gives one delivery to one member (round robin, preferring
    // connected members). Persistent sessions append their deliveries to
    // `ops` (when not null).
    //
    // With a `model`, the topic is checked in the same walk that matches it
    // and the verdict of model->check(...) is stored in `*verdict`; a message
    // the verdict does not admit (ns::verdict::admitted) is neither retained
    // nor delivered.
    //
    // A retained message is checked against the retained store's limits
    // (see retain()) after the model and before anything is delivered: one
    // the limits refuse goes nowhere (`retained` says which limit).
    // `identity`: whose share it counts against (null: the broker's own,
    // bridges and OPC UA sources; they count against the broker-wide limits
    // only).
    struct result {
        std::size_t delivered = 0;  // sessions it was queued for
        std::size_t dropped = 0;    // matching sessions that dropped it (queue full, QoS 0 while offline)
        std::size_t refused = 0;    // sessions whose full queue refused it (policy refuse)
        bool admitted = true;       // false: refused by the model
        retain_verdict retained = retain_verdict::stored;  // not `stored`: refused by the retained limits
        // Some subscription matched (whatever became of the message there).
        [[nodiscard]] std::size_t matched() const noexcept { return delivered + dropped + refused; }
    };
    // `gate`: the publisher's flow gate, which a full subscriber queue may
    // hold (session::deliver).
    result publish(const message_ptr& m, store_ops* ops = nullptr, const ns::model* model = nullptr,
                   ns::verdict* verdict = nullptr, const std::string* identity = nullptr, flow_gate* gate = nullptr);

    void set_retained_limits(const retained_limits& l);

    // Stores, replaces or (empty payload) clears the retained message of
    // m->topic. With `enforce`, a value that would take the store past a
    // limit is refused (and nothing changes); clearing a topic, and
    // replacing a value with one no larger, are always accepted. Without
    // (start-up recovery), it is taken whatever the limits say.
    retain_verdict retain(const message_ptr& m, const std::string* identity = nullptr, bool enforce = true);
    // Removes the retained messages whose Message Expiry has passed and
    // returns their topics. Walks the tree only when a message with an
    // expiry was retained since the last walk found none left.
    std::vector<std::string> purge_expired_retained(steady_clock::time_point now);
    // Removes the retained message of m->topic if it is still `m` (not
    // replaced meanwhile); returns whether it did.
    bool erase_retained_if_same(const message_ptr& m);

    // Adds or replaces a subscription; returns true when it is new.
    bool subscribe(session* s, const std::string& filter, const subscription_entry& e);
    bool subscribe_shared(session* s, std::string_view group, std::string_view filter,
                          const subscription_entry& e);
    bool unsubscribe(session* s, const std::string& filter);
    bool unsubscribe_shared(session* s, std::string_view group, std::string_view filter);

    // Calls f for each unexpired retained message matching `filter`.
    void for_each_retained(std::string_view filter, const std::function<void(const message_ptr&)>& f) const;

    // One page of the unexpired retained messages matching `filter`, in
    // topic order (ns::retained_tree::match_ordered: level by level), after
    // the topic `after` (null: from the first). `visible(topic)` says
    // whether the caller may see a message (false: skipped). The page ends
    // after `limit` messages, once their weight() reaches `max_bytes`, or
    // after `scan` topics were looked at (so that the read lock is held for
    // a bounded time however few the caller may see); `next` is then the
    // topic the next page starts after, and empty when the walk reached the
    // end.
    struct retained_page {
        std::vector<message_ptr> messages;
        std::optional<std::string> next;
    };
    [[nodiscard]] retained_page read_retained_page(std::string_view filter, const std::string* after,
                                                   std::size_t limit, std::size_t scan, std::size_t max_bytes,
                                                   const std::function<bool(std::string_view)>& visible) const;

    // The slots of every retained topic matching `filter` now (16 bytes
    // each: no message is copied). current() reads their values later.
    [[nodiscard]] std::vector<retained_ref> retained_snapshot(std::string_view filter) const;
    // Appends the current value of each slot to `out`, null for a topic
    // cleared since (one lock for the batch).
    void current(std::span<const retained_ref> slots, std::vector<message_ptr>& out) const;

    [[nodiscard]] std::size_t retained_count() const;
    // What counts against the limits: retained messages outside '$' and
    // their topic + payload bytes.
    struct retained_usage {
        std::uint64_t messages = 0, bytes = 0;
    };
    [[nodiscard]] retained_usage retained_totals() const;
    [[nodiscard]] std::size_t subscription_count() const;

private:
    using trie = ns::subscription_trie<session*, subscription_entry>;
    // One member of a matching shared group, or nullopt when none may take it.
    // `model` and `verdict`: the topic's reading for the members' grants (null: none).
    std::optional<deliver_result> deliver_to_group(const trie::shared_group& group, const message_ptr& m,
                                                   store_ops* ops, const ns::model* model, const ns::verdict* verdict,
                                                   flow_gate* gate);

    mutable thread_rwlock subs_mutex_;
    trie subs_;

    // Under retained_mutex_ (exclusive): removes the topic's value and its
    // counts; a replay still holding the slot sees it cleared.
    bool erase_locked(std::string_view topic);
    [[nodiscard]] retain_verdict admit_locked(const retained_slot* existing, std::size_t weight,
                                              const std::string* identity) const;

    mutable std::shared_mutex retained_mutex_;
    std::atomic<bool> retained_expiry_{false};  // a retained message may carry an expiry
    ns::retained_tree<retained_ref> retained_;
    // Guarded by retained_mutex_: the limits, the totals and each identity's
    // share (an entry lives while some topic counts against it; slots point
    // at their entry).
    retained_limits limits_;
    retained_usage totals_;
    std::unordered_map<std::string, retained_usage> by_identity_;
};

}  // namespace strata::broker::core
