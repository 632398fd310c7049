#include "broker/core/handshake_gate.hpp"

#include <boost/asio/post.hpp>

#include <utility>
#include <vector>

namespace strata::broker::core {

handshake_gate::ticket handshake_gate::acquire(const asio::any_io_executor& ex, waiter w) {
    std::lock_guard lock(mutex_);
    if (in_progress_ < max_) {
        ++in_progress_;
        return 0;
    }
    const ticket t = next_++;
    waiting_.emplace(t, queued{ex, std::move(w)});
    return t;
}

void handshake_gate::cancel(ticket t) {
    queued q;
    {
        std::lock_guard lock(mutex_);
        const auto it = waiting_.find(t);
        if (it == waiting_.end()) return;  // the slot is on its way to it
        q = std::move(it->second);
        waiting_.erase(it);
    }
    asio::post(q.ex, [w = std::move(q.w)] { w(false); });
}

void handshake_gate::release() {
    queued next;
    {
        std::lock_guard lock(mutex_);
        // More in progress than the bound (lowered by a reload): the slot
        // is freed, not passed on.
        if (waiting_.empty() || in_progress_ > max_) {
            if (in_progress_ > 0) --in_progress_;
            return;
        }
        // The slot passes to the first in line without being freed.
        next = std::move(waiting_.begin()->second);
        waiting_.erase(waiting_.begin());
    }
    asio::post(next.ex, [w = std::move(next.w)] { w(true); });
}

void handshake_gate::set_limit(std::size_t max) {
    std::vector<queued> granted;
    {
        std::lock_guard lock(mutex_);
        max_ = max;
        while (in_progress_ < max_ && !waiting_.empty()) {
            ++in_progress_;
            granted.push_back(std::move(waiting_.begin()->second));
            waiting_.erase(waiting_.begin());
        }
    }
    for (auto& q : granted) asio::post(q.ex, [w = std::move(q.w)] { w(true); });
}

std::size_t handshake_gate::limit() const {
    std::lock_guard lock(mutex_);
    return max_;
}

void handshake_gate::clear() {
    std::map<ticket, queued> dropped;
    std::lock_guard lock(mutex_);
    dropped.swap(waiting_);
    // `dropped` goes after the lock: a waiter's destructor may end a
    // tls_start, which calls cancel().
}

std::size_t handshake_gate::in_progress() const {
    std::lock_guard lock(mutex_);
    return in_progress_;
}

std::size_t handshake_gate::waiting() const {
    std::lock_guard lock(mutex_);
    return waiting_.size();
}

}  // namespace strata::broker::core
