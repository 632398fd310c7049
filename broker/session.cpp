#include "broker/session.hpp"

#include "broker/broker_core.hpp"
#include "broker/connection.hpp"

#include <algorithm>

namespace strata::broker {

session::session(broker_core& core, std::string client_id)
    : core_(core), client_id_(std::move(client_id)) {
    core_.counters().sessions.fetch_add(1, std::memory_order_relaxed);
}

session::~session() { core_.counters().sessions.fetch_sub(1, std::memory_order_relaxed); }

bool session::deliver(const message_ptr& m, std::uint8_t qos, bool retain,
                      std::span<const std::uint32_t> sub_ids, bool retained_replay) {
    std::lock_guard lock(mutex_);
    auto& slot = core_.counters().local();
    if (!conn_ && qos == 0) {
        // QoS 0 is not kept for an offline client.
        bump(slot.dropped_offline_qos0);
        return false;
    }
    const std::size_t w = m->weight();
    if (!retained_replay &&
        (queue_.size() >= limits_.max_messages || queued_bytes_ + w > limits_.max_bytes)) {
        bump(slot.dropped_queue_full);
        return false;
    }
    queue_.push_back(delivery{m, qos, retain, subscription_ids(sub_ids.begin(), sub_ids.end())});
    queued_bytes_ += w;
    notify_locked();
    return true;
}

void session::set_identity(std::string identity, std::shared_ptr<const auth::grants> g) {
    std::lock_guard lock(mutex_);
    identity_ = std::move(identity);
    grants_ = std::move(g);
}

std::string session::identity() const {
    std::lock_guard lock(mutex_);
    return identity_;
}

bool session::may_receive(std::string_view topic) const {
    std::lock_guard lock(mutex_);
    return grants_ != nullptr && grants_->may_receive(topic);
}

void session::notify_locked() {
    if (conn_) conn_->notify();
}

std::uint64_t session::attach(const std::shared_ptr<connection>& c, bool resend_inflight) {
    std::lock_guard lock(mutex_);
    conn_ = c;
    resend_pending_ = resend_inflight && !inflight_.empty();
    if (!resend_inflight) {
        inflight_.clear();
    }
    return ++generation_;
}

bool session::detach(const connection* c) {
    std::lock_guard lock(mutex_);
    if (conn_.get() != c) return false;
    conn_.reset();
    // Messages that were in flight are resent on the next connection.
    return true;
}

std::shared_ptr<connection> session::owner() const {
    std::lock_guard lock(mutex_);
    return conn_;
}

bool session::connected() const {
    std::lock_guard lock(mutex_);
    return conn_ != nullptr;
}

std::uint64_t session::generation() const {
    std::lock_guard lock(mutex_);
    return generation_;
}

std::uint16_t session::next_packet_id_locked() {
    // Packet identifiers in use are those in flight; the window is far
    // smaller than 65535, so a free one is always near.
    for (;;) {
        if (++last_packet_id_ == 0) last_packet_id_ = 1;
        const auto id = last_packet_id_;
        const bool used = std::any_of(inflight_.begin(), inflight_.end(),
                                      [id](const inflight& f) { return f.packet_id == id; });
        if (!used) return id;
    }
}

void session::collect(const connection* c, std::vector<outgoing>& out, std::size_t window,
                      steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (conn_.get() != c) return;
    if (resend_pending_) {
        resend_pending_ = false;
        for (auto& f : inflight_) {
            if (f.awaiting_comp) {
                out.push_back(outgoing{outgoing::kind::pubrel, f.packet_id, false, {}});
            } else {
                out.push_back(outgoing{outgoing::kind::publish, f.packet_id, true, f.d});
            }
        }
    }
    auto& slot = core_.counters().local();
    while (!queue_.empty()) {
        auto& front = queue_.front();
        if (front.qos > 0 && inflight_.size() >= window) break;  // keeps order: wait for acks
        delivery d = std::move(front);
        queue_.pop_front();
        queued_bytes_ -= d.msg->weight();
        if (d.msg->expired(now)) {
            bump(slot.dropped_expired);
            continue;
        }
        if (d.qos == 0) {
            out.push_back(outgoing{outgoing::kind::publish, 0, false, std::move(d)});
            continue;
        }
        const auto id = next_packet_id_locked();
        inflight_.push_back(inflight{id, false, d});
        out.push_back(outgoing{outgoing::kind::publish, id, false, std::move(d)});
    }
}

bool session::on_puback(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(inflight_.begin(), inflight_.end(),
                           [id](const inflight& f) { return f.packet_id == id; });
    if (it == inflight_.end() || it->d.qos != 1) return false;
    inflight_.erase(it);
    if (!queue_.empty()) notify_locked();
    return true;
}

bool session::on_pubrec(std::uint16_t id, bool accepted) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(inflight_.begin(), inflight_.end(),
                           [id](const inflight& f) { return f.packet_id == id; });
    if (it == inflight_.end() || it->d.qos != 2) return false;
    if (!accepted) {
        // The receiver refused the message: the exchange ends here.
        inflight_.erase(it);
        if (!queue_.empty()) notify_locked();
        return true;
    }
    it->awaiting_comp = true;
    it->d.msg.reset();  // only the packet id matters from here on
    return true;
}

bool session::on_pubcomp(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(inflight_.begin(), inflight_.end(),
                           [id](const inflight& f) { return f.packet_id == id && f.awaiting_comp; });
    if (it == inflight_.end()) return false;
    inflight_.erase(it);
    if (!queue_.empty()) notify_locked();
    return true;
}

void session::abandon(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(inflight_.begin(), inflight_.end(),
                           [id](const inflight& f) { return f.packet_id == id; });
    if (it != inflight_.end()) inflight_.erase(it);
}

bool session::begin_inbound_qos2(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    return inbound_qos2_.insert(id).second;
}

bool session::end_inbound_qos2(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    return inbound_qos2_.erase(id) > 0;
}

std::size_t session::inbound_qos2_count() const {
    std::lock_guard lock(mutex_);
    return inbound_qos2_.size();
}

bool session::remember_subscription(const std::string& filter, const subscription_entry& e) {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = subscriptions_.insert_or_assign(filter, e);
    return inserted;
}

bool session::forget_subscription(const std::string& filter) {
    std::lock_guard lock(mutex_);
    return subscriptions_.erase(filter) > 0;
}

std::vector<std::string> session::subscription_filters() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    out.reserve(subscriptions_.size());
    for (const auto& [f, e] : subscriptions_) out.push_back(f);
    return out;
}

std::size_t session::subscription_count() const {
    std::lock_guard lock(mutex_);
    return subscriptions_.size();
}

void session::set_expiry_interval(std::uint32_t s) {
    std::lock_guard lock(mutex_);
    expiry_interval_ = s;
}

std::uint32_t session::expiry_interval() const {
    std::lock_guard lock(mutex_);
    return expiry_interval_;
}

void session::set_will(std::optional<message_ptr> will, std::uint32_t delay_s) {
    std::lock_guard lock(mutex_);
    will_ = std::move(will);
    will_delay_ = delay_s;
}

std::optional<message_ptr> session::take_will() {
    std::lock_guard lock(mutex_);
    auto w = std::move(will_);
    will_.reset();
    return w;
}

std::uint32_t session::will_delay() const {
    std::lock_guard lock(mutex_);
    return will_delay_;
}

void session::set_queue_limits(queue_limits l) {
    std::lock_guard lock(mutex_);
    limits_ = l;
}

std::size_t session::queued_messages() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

std::size_t session::inflight_messages() const {
    std::lock_guard lock(mutex_);
    return inflight_.size();
}

void session::clear() {
    std::lock_guard lock(mutex_);
    queue_.clear();
    queued_bytes_ = 0;
    inflight_.clear();
    inbound_qos2_.clear();
    subscriptions_.clear();
    will_.reset();
    ++generation_;  // disarms pending timers
}

}  // namespace strata::broker
