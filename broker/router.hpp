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
#pragma once

#include "broker/message.hpp"
#include "broker/session.hpp"
#include "broker/thread_rwlock.hpp"
#include "namespace/model.hpp"
#include "namespace/retained_tree.hpp"
#include "namespace/subscription_trie.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace strata::broker {

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
    struct result {
        std::size_t delivered = 0;  // sessions it was queued for
        std::size_t refused = 0;    // sessions whose full queue refused it (policy refuse)
        bool admitted = true;       // false: refused by the model
    };
    result publish(const message_ptr& m, store_ops* ops = nullptr, const ns::model* model = nullptr,
                   ns::verdict* verdict = nullptr);

    // Stores, replaces or (empty payload) clears the retained message of m->topic.
    void retain(const message_ptr& m);
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

    [[nodiscard]] std::size_t retained_count() const;
    [[nodiscard]] std::size_t subscription_count() const;

private:
    using trie = ns::subscription_trie<session*, subscription_entry>;
    // One member of a matching shared group, or nullopt when none may take it.
    std::optional<deliver_result> deliver_to_group(const trie::shared_group& group, const message_ptr& m,
                                                   store_ops* ops);

    mutable thread_rwlock subs_mutex_;
    trie subs_;

    mutable std::shared_mutex retained_mutex_;
    std::atomic<bool> retained_expiry_{false};  // a retained message may carry an expiry
    ns::retained_tree<message_ptr> retained_;
};

}  // namespace strata::broker
