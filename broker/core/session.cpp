#include "broker/core/session.hpp"

#include "broker/core/broker_core.hpp"
#include "broker/core/stored.hpp"

#include <algorithm>
#include <limits>

namespace strata::broker::core {

session::session(broker_core& core, std::string client_id)
    : core_(core), client_id_(std::move(client_id)) {
    core_.counters().sessions.fetch_add(1, std::memory_order_relaxed);
}

session::~session() { core_.counters().sessions.fetch_sub(1, std::memory_order_relaxed); }

namespace {

std::uint16_t packet_id_of(std::uint64_t seq) noexcept {
    return static_cast<std::uint16_t>((seq - 1) % 65535 + 1);
}

}  // namespace

deliver_result session::deliver(const message_ptr& m, std::uint8_t qos, bool retain,
                                std::span<const std::uint32_t> sub_ids, store_ops* ops, flow_gate* gate) {
    std::lock_guard lock(mutex_);
    auto& slot = core_.counters().local();
    if (!conn_ && qos == 0 && !(outbox_ && limits_.qos0_durable)) {
        // QoS 0 is not kept for an offline client.
        bump(slot.dropped_offline_qos0);
        ++dropped_;
        return deliver_result::dropped;
    }
    const std::size_t w = m->weight();
    if (outbox_ && limits_.latest_only_retained && retain) supersede_locked(m);
    if (qos == 0 && outbox_ && !limits_.qos0_durable && paging_locked()) {
        // QoS 0 is kept in memory only, and the backlog is past its window.
        ++outbox_->dropped;
        bump(slot.dropped_queue_full);
        ++dropped_;
        return deliver_result::dropped;
    }
    if (queue_.size() >= limits_.max_messages || backlog_bytes_locked() + w > limits_.max_bytes) {
        if (limits_.hold_publishers && qos > 0 && conn_) {
            if (pressure_ && pressure_->dropping) {
                // A slow consumer under action `drop`: it alone loses.
                ++pressure_->slow_dropped;
                bump(slot.dropped_slow_consumer);
                ++dropped_;
                return deliver_result::dropped;
            }
            if (gate != nullptr) {
                // Queued over the limit; the publisher waits for room.
                hold_locked(*gate);
                enqueue_locked(m, qos, retain, sub_ids, ops);
                notify_locked();
                return deliver_result::queued;
            }
        }
        if (limits_.policy == when_full::refuse) {
            if (outbox_) ++outbox_->refused;
            bump(slot.refused_queue_full);
            return deliver_result::refused;
        }
        if (limits_.policy != when_full::drop_oldest || !drop_oldest_locked(w)) {
            if (outbox_) ++outbox_->dropped;
            bump(slot.dropped_queue_full);
            ++dropped_;
            return deliver_result::dropped;
        }
    }
    enqueue_locked(m, qos, retain, sub_ids, ops);
    notify_locked();
    return deliver_result::queued;
}

void session::enqueue_locked(const message_ptr& m, std::uint8_t qos, bool retain,
                             std::span<const std::uint32_t> sub_ids, store_ops* ops) {
    if (outbox_ && paging_locked()) {
        page_out_locked(m, qos, retain, sub_ids);
        return;
    }
    auto& d = queue_.emplace_back(delivery{m, qos, retain, false, 0, subscription_ids(sub_ids.begin(), sub_ids.end())});
    queued_bytes_ += m->weight();
    if (qos > 0 || outbox_) d.seq = ++last_seq_;
    if (outbox_) {
        d.queued_at = steady_clock::now();
        if (limits_.latest_only_retained && retain) outbox_->latest.insert_or_assign(m->topic, d.seq);
    }
    // Retained messages sent on subscribe (no `ops`) are in the store already.
    if (stored_qos_locked(qos) && persistent_ && ops != nullptr) ops->push_back(stored(d, 0, /*fresh=*/true));
}

// ---- Paging ------------------------------------------------------------------
//
// A bridge outbox holds the whole backlog of a WAN outage, which may be
// millions of messages: more than an edge box's memory. Past its memory
// window (queue_limits::memory_messages / memory_bytes) a new message is
// written to the store only; from then on every new message joins that
// tail (order is kept: the tail is seqs paged_from..paged_last), until the
// queue has drained it. Whenever the writer collects and the queue in
// memory is down to half its window, the next window is read back from the
// store on its reader thread (read_deliveries waits until what was
// submitted is written) and appended to the queue. What stays in memory per
// paged message: nothing (counts and bytes only). A paged retained message
// superseded under latest-only is erased in the store at once and skipped
// when its window is read. Drop-oldest drops from the queue in memory and
// reads the next window in when it runs low, whether the link is up or
// not; when the queue in memory is empty (a read under way) the new message
// is dropped instead.

bool session::paging_locked() const noexcept {
    if (!outbox_ || limits_.memory_messages == 0 || !persistent_) return false;
    return outbox_->paged > 0 || queue_.size() >= limits_.memory_messages ||
           (limits_.memory_bytes > 0 && queued_bytes_ >= limits_.memory_bytes);
}

std::uint64_t session::backlog_bytes_locked() const noexcept {
    return queued_bytes_ + (outbox_ ? outbox_->paged_bytes : 0);
}

void session::page_out_locked(const message_ptr& m, std::uint8_t qos, bool retain,
                              std::span<const std::uint32_t> sub_ids) {
    auto& o = *outbox_;
    delivery d{m, qos, retain, false, ++last_seq_, subscription_ids(sub_ids.begin(), sub_ids.end())};
    d.queued_at = steady_clock::now();
    if (o.paged == 0) {
        o.paged_from = d.seq;
        o.paged_oldest = d.queued_at;
    }
    o.paged_last = d.seq;
    ++o.paged;
    o.paged_bytes += m->weight();
    if (limits_.latest_only_retained && retain) o.latest.insert_or_assign(m->topic, d.seq);
    // Submitted here, not with the router's operations for this message:
    // a read asked for once the count includes it finds it (read_deliveries
    // reads what was submitted before the request). The publisher's
    // acknowledgement still covers it: its ticket comes later, and tickets
    // become durable in order.
    submit_locked(stored(d, 0, /*fresh=*/true));
}

void session::page_in_locked() {
    auto& o = *outbox_;
    auto* st = core_.store();
    const std::size_t window = std::max<std::size_t>(limits_.memory_messages, 1);
    const std::uint64_t window_bytes = limits_.memory_bytes > 0 ? limits_.memory_bytes : std::numeric_limits<std::uint64_t>::max();
    if (o.reading || st == nullptr || queue_.size() > window / 2 ||
        queued_bytes_ > window_bytes / 2)
        return;
    o.reading = true;
    st->read_deliveries(client_id_, o.paged_from, window - queue_.size(), window_bytes - queued_bytes_,
                        [weak = weak_from_this()](std::vector<persistence::stored_delivery>&& records, bool ok) {
                            if (auto self = weak.lock()) self->paged_in(std::move(records), ok);
                        });
}

void session::paged_in(std::vector<persistence::stored_delivery>&& records, bool ok) {
    std::lock_guard lock(mutex_);
    if (!outbox_) return;
    auto& o = *outbox_;
    o.reading = false;
    const auto now = steady_clock::now();
    if (!ok) {
        // The store retries reads after a pause of its own.
        notify_locked();
        return;
    }
    const std::size_t before = queue_.size();
    for (auto& r : records) {
        if (o.paged == 0 || r.seq < o.paged_from || r.seq > o.paged_last) continue;
        o.paged_from = r.seq + 1;
        if (r.awaiting_comp) continue;  // outboxes forward QoS 0 and 1 only
        message_ptr m;
        try {
            m = from_stored(std::move(r.msg));
        } catch (const std::exception&) {
            // Its properties do not decode: it can never be sent.
            --o.paged;
            ++o.dropped;
            ++dropped_;
            forget_stored_locked(r.seq);
            continue;
        }
        if (limits_.latest_only_retained && r.retain) {
            auto it = o.latest.find(m->topic);
            if (it != o.latest.end() && it->second != r.seq) continue;  // superseded meanwhile (counted then)
        }
        --o.paged;
        o.paged_bytes -= std::min(o.paged_bytes, m->weight());
        delivery d{m, r.qos, r.retain, r.packet_id != 0, r.seq,
                   subscription_ids(r.subscription_ids.begin(), r.subscription_ids.end())};
        d.queued_at = r.queued_at_ms > 0 ? from_epoch_ms(r.queued_at_ms) : now;
        queued_bytes_ += m->weight();
        queue_.push_back(std::move(d));
    }
    // Nothing found where the tail should be, three times in a row: what
    // was counted is not in the store (records that do not decode are
    // skipped by the read), so the count starts over.
    o.empty_reads = records.empty() && o.paged > 0 ? o.empty_reads + 1 : 0;
    if (o.empty_reads >= 3) {
        o.paged = 0;
        o.empty_reads = 0;
    }
    if (o.paged == 0) {
        o.paged_bytes = 0;
        o.paged_oldest.reset();
    } else if (queue_.size() != before) {
        o.paged_oldest.reset();  // the queue's front is older now
    }
    notify_locked();
}

void session::replay_retained(const std::string& filter, const subscription_entry& e, bool skip_dollar) {
    std::unique_lock lock(mutex_);
    if (!replay_) replay_ = std::make_unique<replay_state>();
    auto& jobs = replay_->jobs;
    // Subscribed again: the replay starts over with the new options (one
    // being matched right now is discarded when the match returns).
    jobs.erase(std::remove_if(jobs.begin(), jobs.end(), [&](const replay_job& j) { return j.filter == filter; }),
               jobs.end());
    replay_job j;
    j.id = ++replay_->last_id;
    j.filter = filter;
    j.qos = e.options.qos;
    j.identifier = e.identifier;
    j.filtered = e.filtered;
    j.skip_dollar = skip_dollar;
    jobs.push_back(std::move(j));
    const std::size_t before = queue_.size();
    feed_replay_locked(lock, steady_clock::now());
    if (queue_.size() != before) notify_locked();
}

std::size_t session::replay_pending() const {
    std::lock_guard lock(mutex_);
    if (!replay_ || replay_->jobs.empty()) return 0;
    const auto& j = replay_->jobs.front();
    return j.slots.size() - j.next;
}

void session::feed_replay_locked(std::unique_lock<std::mutex>& lock, steady_clock::time_point now) {
    // Half the queue at most: live messages keep room while a long replay
    // is paced.
    const std::size_t max_messages = std::max<std::size_t>(1, limits_.max_messages / 2);
    const std::uint64_t max_bytes = std::max<std::uint64_t>(1, limits_.max_bytes / 2);
    auto& counters = core_.counters().local();
    thread_local std::vector<message_ptr> values;
    while (replay_ && conn_ && !replay_->matching && queue_.size() < max_messages && queued_bytes_ < max_bytes) {
        if (replay_->jobs.empty()) {
            replay_.reset();
            return;
        }
        replay_job* job = &replay_->jobs.front();
        if (!job->matched) {
            // Matching a large tree takes a while; deliveries to this
            // session must not wait for it.
            const std::uint64_t id = job->id;
            const std::string filter = job->filter;
            replay_->matching = true;
            lock.unlock();
            std::vector<retained_ref> slots;
            try {
                slots = core_.routes().retained_snapshot(filter);
            } catch (...) {
                lock.lock();
                if (replay_) replay_->matching = false;
                throw;
            }
            lock.lock();
            if (!replay_) continue;  // the session ended meanwhile
            replay_->matching = false;
            if (replay_->jobs.empty() || replay_->jobs.front().id != id) continue;  // unsubscribed meanwhile
            job = &replay_->jobs.front();
            job->slots = std::move(slots);
            job->matched = true;
        }
        if (job->next == job->slots.size()) {
            replay_->jobs.pop_front();
            continue;
        }
        const std::size_t n = std::min<std::size_t>({job->slots.size() - job->next, max_messages - queue_.size(), 64});
        values.clear();
        core_.routes().current(std::span<const retained_ref>(job->slots).subspan(job->next, n), values);
        const std::uint32_t id = job->identifier;
        const std::span<const std::uint32_t> ids(&id, id != 0 ? 1 : 0);
        for (const auto& m : values) {
            if (queued_bytes_ >= max_bytes) break;  // the rest waits for room
            // Sent or skipped: the slot is let go.
            job->slots[job->next++].reset();
            if (m == nullptr || m->expired(now)) {
                bump(counters.retained_replay_skipped);  // cleared or expired since the SUBSCRIBE
                continue;
            }
            if (job->skip_dollar && m->topic.front() == '$') continue;
            if (job->filtered && !(grants_ != nullptr && grants_->may_receive(m->topic))) continue;
            if (m->weight() > limits_.max_bytes) {
                // Would never fit the queue (as a live message, dropped too).
                bump(counters.dropped_queue_full);
                ++dropped_;
                continue;
            }
            if (outbox_ && limits_.latest_only_retained) supersede_locked(m);
            enqueue_locked(m, std::min(m->qos, job->qos), true, ids, nullptr);
        }
        values.clear();
    }
}

void session::pop_front_locked() {
    const delivery& d = queue_.front();
    if (d.msg) queued_bytes_ -= d.msg->weight();
    if (!d.msg && outbox_) --outbox_->tombstones;
    if (outbox_ && d.retain && d.msg) {
        auto it = outbox_->latest.find(d.msg->topic);
        if (it != outbox_->latest.end() && it->second == d.seq) outbox_->latest.erase(it);
    }
    queue_.pop_front();
}

bool session::drop_oldest_locked(std::size_t w) {
    if (w > limits_.max_bytes) return false;
    auto& slot = core_.counters().local();
    while (!queue_.empty() && (queue_.size() >= limits_.max_messages || backlog_bytes_locked() + w > limits_.max_bytes)) {
        const delivery& d = queue_.front();
        if (d.msg) {
            ++outbox_->dropped;
            ++dropped_;
            bump(slot.dropped_queue_full);
        }
        if (stored_qos_locked(d.qos)) forget_stored_locked(d.seq);
        pop_front_locked();
    }
    // The oldest of a paged backlog are in the store: bring the next window
    // into memory to be dropped from there (online or not).
    if (outbox_->paged > 0) page_in_locked();
    return queue_.size() < limits_.max_messages && backlog_bytes_locked() + w <= limits_.max_bytes;
}

void session::supersede_locked(const message_ptr& m, bool compact) {
    auto it = outbox_->latest.find(m->topic);
    if (it == outbox_->latest.end()) return;
    const std::uint64_t seq = it->second;
    outbox_->latest.erase(it);
    if (auto& o = *outbox_; o.paged > 0 && seq >= o.paged_from) {
        // In the store only: erased there, skipped when read back.
        --o.paged;
        o.paged_bytes -= std::min<std::uint64_t>(o.paged_bytes, m->weight());
        ++o.superseded;
        forget_stored_locked(seq);
        return;
    }
    // Queued deliveries are in seq order: find the older value by its seq.
    auto pos = std::lower_bound(queue_.begin(), queue_.end(), seq,
                                [](const delivery& d, std::uint64_t s) { return d.seq < s; });
    if (pos == queue_.end() || pos->seq != seq || !pos->msg) return;  // already sent
    // It stays in place, emptied, and is skipped when its turn comes.
    queued_bytes_ -= pos->msg->weight();
    pos->msg.reset();
    ++outbox_->superseded;
    ++outbox_->tombstones;
    if (stored_qos_locked(pos->qos)) forget_stored_locked(seq);
    // A state topic updated often while the link is down leaves one emptied
    // entry per update: compact once they are most of the queue, so the
    // queue stays bounded by its live messages (order and seqs are kept).
    if (compact && outbox_->tombstones > 64 && outbox_->tombstones * 2 > queue_.size()) compact_locked();
}

void session::compact_locked() {
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(), [](const delivery& d) { return !d.msg; }),
                 queue_.end());
    outbox_->tombstones = 0;
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

bool session::may_receive(std::string_view topic, const ns::model* model, const ns::verdict* reading) const {
    std::lock_guard lock(mutex_);
    return grants_ != nullptr && grants_->may_receive(topic, model, reading);
}

void session::notify_locked() {
    if (conn_) conn_->notify();
}

void session::hold_locked(flow_gate& gate) {
    if (!pressure_) pressure_ = std::make_unique<pressure_state>();
    auto& p = *pressure_;
    for (const auto& g : p.gates)
        if (g.get() == &gate) return;
    if (p.gates.empty() && !p.slow) {
        p.since = steady_clock::now();
        core_.watch_slow_consumer(weak_from_this());
    }
    gate.hold();
    p.gates.push_back(gate.shared_from_this());
    bump(core_.counters().local().publisher_holds);
}

void session::release_gates_locked(bool drained) {
    auto& p = *pressure_;
    // Each release may post the publisher's wake-up; nothing calls back here.
    for (const auto& g : p.gates) g->release();
    p.gates.clear();
    if (drained) {
        p.slow = false;
        p.dropping = false;
    }
}

bool session::at_resume_mark_locked() const noexcept {
    return queue_.size() <= limits_.max_messages - limits_.max_messages / 4 &&
           queued_bytes_ <= limits_.max_bytes - limits_.max_bytes / 4;
}

slow_action session::check_slow(steady_clock::time_point now, steady_clock::duration after, bool disconnect) {
    std::lock_guard lock(mutex_);
    if (!pressure_ || pressure_->gates.empty() || pressure_->slow || now - pressure_->since < after)
        return slow_action::none;
    auto& p = *pressure_;
    p.slow = true;
    // No more holds until it drained: the publishers go on at once.
    p.dropping = true;
    release_gates_locked(false);
    if (disconnect && conn_) {
        conn_->kick(mqtt::reason_code::quota_exceeded);
        return slow_action::disconnected;
    }
    return slow_action::dropping;
}

bool session::pressing() const {
    std::lock_guard lock(mutex_);
    return pressure_ && (!pressure_->gates.empty() || pressure_->dropping);
}

session::pressure_info session::pressure() const {
    std::lock_guard lock(mutex_);
    if (!pressure_) return {};
    return {pressure_->gates.size(), pressure_->slow, pressure_->slow_dropped};
}

std::uint64_t session::attach(const std::shared_ptr<session_owner>& c, bool resend_inflight) {
    std::lock_guard lock(mutex_);
    conn_ = c;
    resend_pending_ = resend_inflight && !inflight_.empty();
    if (!resend_inflight) {
        inflight_.clear();
    }
    return ++generation_;
}

bool session::detach(const session_owner* c) {
    std::lock_guard lock(mutex_);
    if (conn_.get() != c) return false;
    conn_.reset();
    // Offline, it holds nobody: its queue keeps its limits and policy.
    if (pressure_) release_gates_locked(true);
    // Messages that were in flight are resent on the next connection.
    return true;
}

std::shared_ptr<session_owner> session::owner() const {
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

bool session::packet_id_free_locked(std::uint64_t seq) const {
    // In-flight deliveries are in seq order: only one 65,535 or more
    // behind can share the identifier.
    if (inflight_.empty() || seq - inflight_.front().d.seq < 65535) return true;
    const auto id = packet_id_of(seq);
    return std::none_of(inflight_.begin(), inflight_.end(),
                        [id](const inflight& f) { return f.packet_id == id; });
}

persistence::put_delivery session::stored(const delivery& d, std::uint16_t packet_id, bool fresh) const {
    persistence::put_delivery p;
    p.d.client_id = client_id_;
    p.d.seq = d.seq;
    p.d.packet_id = packet_id;
    p.d.qos = d.qos;
    p.d.retain = d.retain;
    p.d.subscription_ids.assign(d.sub_ids.begin(), d.sub_ids.end());
    p.msg = d.msg;
    p.fresh = fresh;
    if (outbox_ && d.queued_at != steady_clock::time_point{}) p.d.queued_at_ms = to_epoch_ms(d.queued_at);
    return p;
}

void session::submit_locked(persistence::operation op) {
    if (auto* st = core_.store()) last_ticket_ = st->submit(std::move(op));
}

persistence::ticket session::last_ticket() const {
    std::lock_guard lock(mutex_);
    return last_ticket_;
}

void session::forget_stored_locked(std::uint64_t seq) {
    if (persistent_ && seq != 0) submit_locked(persistence::erase_delivery{client_id_, seq});
}

void session::set_persistent(bool on, bool store_existing) {
    std::lock_guard lock(mutex_);
    on = on && core_.store() != nullptr;
    if (on && !persistent_ && store_existing) {
        // A session that becomes persistent (taken over by a connection
        // with a session expiry) stores what it already holds.
        for (const auto& [filter, e] : subscriptions_) {
            submit_locked(persistence::put_subscription{
                client_id_, persistence::stored_subscription{filter, stored_options(e), e.identifier}});
        }
        const auto store_delivery = [&](const delivery& d, std::uint16_t sent_as) {
            if (d.qos == 0 || !d.msg) return;
            submit_locked(stored(d, sent_as));
        };
        for (auto& f : inflight_) {
            store_delivery(f.d, f.packet_id);
            f.d.maybe_sent = true;
        }
        for (const auto& d : queue_) store_delivery(d, d.maybe_sent ? packet_id_of(d.seq) : 0);
    }
    persistent_ = on;
}

bool session::persistent() const {
    std::lock_guard lock(mutex_);
    return persistent_;
}

void session::restore_delivery(message_ptr m, const persistence::stored_delivery& d, bool maybe_sent) {
    std::lock_guard lock(mutex_);
    last_seq_ = std::max(last_seq_, d.seq);
    delivery dl{std::move(m), d.qos, d.retain, maybe_sent, d.seq,
                subscription_ids(d.subscription_ids.begin(), d.subscription_ids.end())};
    if (d.queued_at_ms > 0) dl.queued_at = from_epoch_ms(d.queued_at_ms);
    if (d.awaiting_comp) {
        // PUBREC was received: only PUBREL/PUBCOMP are left.
        dl.msg.reset();
        inflight_.push_back(inflight{packet_id_of(d.seq), true, std::move(dl)});
        return;
    }
    if (dl.msg) queued_bytes_ += dl.msg->weight();
    queue_.push_back(std::move(dl));
}

void session::restore_paged(const persistence::delivery_range& r) {
    std::lock_guard lock(mutex_);
    if (r.count == 0) return;
    if (!outbox_) outbox_ = std::make_unique<outbox_state>();
    auto& o = *outbox_;
    o.paged = r.count;
    o.paged_bytes = r.bytes;
    o.paged_from = r.first_seq;
    o.paged_last = r.last_seq;
    last_seq_ = std::max(last_seq_, r.last_seq);
}

void session::store_sent_marks(bool restored) {
    std::lock_guard lock(mutex_);
    if (!persistent_) return;
    // A delivery with maybe_sent has a stored copy that says so already.
    for (auto& f : inflight_) {
        if (f.awaiting_comp || !f.d.msg || f.d.maybe_sent) continue;
        submit_locked(stored(f.d, f.packet_id));
        f.d.maybe_sent = true;
    }
    if (!restored) return;
    for (const auto& d : queue_) {
        if (d.msg && d.qos > 0 && d.maybe_sent) submit_locked(stored(d, packet_id_of(d.seq)));
    }
}

void session::set_disconnected_at(std::int64_t ms) {
    std::lock_guard lock(mutex_);
    disconnected_at_ms_ = ms;
}

persistence::stored_session session::record() const {
    std::lock_guard lock(mutex_);
    persistence::stored_session r;
    r.client_id = client_id_;
    r.disconnected_at_ms = disconnected_at_ms_;
    r.identity = identity_;
    r.expiry_interval = expiry_interval_;
    if (will_) r.will = to_stored(*will_);
    r.will_delay = will_delay_;
    return r;
}

void session::collect(const session_owner* c, std::vector<outgoing>& out, std::size_t window,
                      steady_clock::time_point now, std::size_t max_out) {
    std::unique_lock lock(mutex_);
    if (conn_.get() != c) return;
    // Retained replays top up the queue each time the writer comes for
    // more, i.e. as fast as the client reads.
    if (replay_) {
        feed_replay_locked(lock, now);
        if (conn_.get() != c) return;  // taken over while the lock was released
    }
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
    while (!queue_.empty() && out.size() < max_out) {
        auto& front = queue_.front();
        // Keeps order: wait for acks.
        if (front.msg && front.qos > 0 && (inflight_.size() >= window || !packet_id_free_locked(front.seq))) break;
        delivery d = std::move(front);
        if (d.msg) queued_bytes_ -= d.msg->weight();
        queue_.pop_front();
        if (!d.msg) {  // superseded by a newer value of its topic
            --outbox_->tombstones;
            continue;
        }
        if (outbox_ && d.retain) {
            auto it = outbox_->latest.find(d.msg->topic);
            if (it != outbox_->latest.end() && it->second == d.seq) outbox_->latest.erase(it);
        }
        if (d.msg->expired(now)) {
            bump(slot.dropped_expired);
            ++dropped_;
            if (stored_qos_locked(d.qos)) forget_stored_locked(d.seq);
            continue;
        }
        if (d.qos == 0) {
            // Sent is done for QoS 0 (buffer.qos0: durable keeps it until here).
            if (outbox_ && limits_.qos0_durable) forget_stored_locked(d.seq);
            out.push_back(outgoing{outgoing::kind::publish, 0, false, std::move(d)});
            continue;
        }
        const auto id = packet_id_of(d.seq);
        const bool dup = d.maybe_sent;
        inflight_.push_back(inflight{id, false, d});
        out.push_back(outgoing{outgoing::kind::publish, id, dup, std::move(d)});
    }
    if (pressure_ && (!pressure_->gates.empty() || pressure_->dropping) && at_resume_mark_locked())
        release_gates_locked(true);
    if (outbox_ && outbox_->paged > 0) page_in_locked();
}

bool session::on_puback(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(inflight_.begin(), inflight_.end(),
                           [id](const inflight& f) { return f.packet_id == id; });
    if (it == inflight_.end() || it->d.qos != 1) return false;
    forget_stored_locked(it->d.seq);
    inflight_.erase(it);
    if (!queue_.empty() || replay_) notify_locked();
    return true;
}

bool session::on_pubrec(std::uint16_t id, bool accepted) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(inflight_.begin(), inflight_.end(),
                           [id](const inflight& f) { return f.packet_id == id; });
    if (it == inflight_.end() || it->d.qos != 2) return false;
    if (!accepted) {
        // The receiver refused the message: the exchange ends here.
        forget_stored_locked(it->d.seq);
        inflight_.erase(it);
        if (!queue_.empty() || replay_) notify_locked();
        return true;
    }
    it->awaiting_comp = true;
    it->d.msg.reset();  // only the packet id matters from here on
    if (persistent_) {
        persistence::stored_delivery sd;
        sd.client_id = client_id_;
        sd.seq = it->d.seq;
        sd.qos = 2;
        sd.packet_id = id;
        sd.awaiting_comp = true;
        submit_locked(persistence::put_delivery{std::move(sd)});
    }
    return true;
}

bool session::on_pubcomp(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(inflight_.begin(), inflight_.end(),
                           [id](const inflight& f) { return f.packet_id == id && f.awaiting_comp; });
    if (it == inflight_.end()) return false;
    forget_stored_locked(it->d.seq);
    inflight_.erase(it);
    if (!queue_.empty() || replay_) notify_locked();
    return true;
}

void session::abandon(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(inflight_.begin(), inflight_.end(),
                           [id](const inflight& f) { return f.packet_id == id; });
    if (it != inflight_.end()) {
        forget_stored_locked(it->d.seq);
        inflight_.erase(it);
    }
}

bool session::begin_inbound_qos2(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    if (!inbound_qos2_.insert(id).second) return false;
    if (persistent_) submit_locked(persistence::put_inbound_qos2{client_id_, id});
    return true;
}

bool session::end_inbound_qos2(std::uint16_t id) {
    std::lock_guard lock(mutex_);
    if (inbound_qos2_.erase(id) == 0) return false;
    if (persistent_) submit_locked(persistence::erase_inbound_qos2{client_id_, id});
    return true;
}

std::size_t session::inbound_qos2_count() const {
    std::lock_guard lock(mutex_);
    return inbound_qos2_.size();
}

bool session::remember_subscription(const std::string& filter, const subscription_entry& e) {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = subscriptions_.insert_or_assign(filter, e);
    if (persistent_) {
        submit_locked(persistence::put_subscription{
            client_id_, persistence::stored_subscription{filter, stored_options(e), e.identifier}});
    }
    return inserted;
}

bool session::forget_subscription(const std::string& filter) {
    std::lock_guard lock(mutex_);
    if (replay_) {
        // Nothing more for an unsubscribed filter (one being matched right
        // now is discarded when the match returns).
        auto& jobs = replay_->jobs;
        jobs.erase(std::remove_if(jobs.begin(), jobs.end(), [&](const replay_job& j) { return j.filter == filter; }),
                   jobs.end());
    }
    if (subscriptions_.erase(filter) == 0) return false;
    if (persistent_) submit_locked(persistence::erase_subscription{client_id_, filter});
    return true;
}

std::vector<std::string> session::subscription_filters() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    out.reserve(subscriptions_.size());
    for (const auto& [f, e] : subscriptions_) out.push_back(f);
    return out;
}

std::vector<std::pair<std::string, subscription_entry>> session::subscriptions() const {
    std::lock_guard lock(mutex_);
    return {subscriptions_.begin(), subscriptions_.end()};
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
    will_ = will ? std::move(*will) : nullptr;
    will_delay_ = delay_s;
}

std::optional<message_ptr> session::take_will() {
    std::lock_guard lock(mutex_);
    if (!will_) return std::nullopt;
    return std::exchange(will_, nullptr);
}

std::uint32_t session::will_delay() const {
    std::lock_guard lock(mutex_);
    return will_delay_;
}

void session::set_queue_limits(queue_limits l) {
    std::lock_guard lock(mutex_);
    const bool was_latest_only = outbox_ && limits_.latest_only_retained;
    limits_ = l;
    if (!outbox_ && (l.policy != when_full::drop_new || l.latest_only_retained || l.memory_messages > 0)) {
        outbox_ = std::make_unique<outbox_state>();
    }
    if (!outbox_) return;
    // What was restored from the store without its queue time (written
    // by an older version): queued from now on.
    const auto now = steady_clock::now();
    for (auto& d : queue_) {
        if (d.queued_at == steady_clock::time_point{}) d.queued_at = now;
    }
    for (auto& f : inflight_) {
        if (f.d.queued_at == steady_clock::time_point{}) f.d.queued_at = now;
    }
    if (l.latest_only_retained && !was_latest_only) {
        // The newest value per topic supersedes older ones (in memory).
        for (const auto& d : queue_) {
            if (d.retain && d.msg) supersede_locked(d.msg, false);  // no compaction while iterating
            if (d.retain && d.msg) outbox_->latest.insert_or_assign(d.msg->topic, d.seq);
        }
        compact_locked();
    }
}

std::uint64_t session::queued_bytes() const {
    std::lock_guard lock(mutex_);
    return queued_bytes_;
}

session::backlog_info session::backlog() const {
    std::lock_guard lock(mutex_);
    backlog_info b;
    b.bytes = queued_bytes_;
    for (const auto& f : inflight_) {
        if (f.d.msg) b.bytes += f.d.msg->weight();
        if (!b.oldest || f.d.queued_at < *b.oldest) b.oldest = f.d.queued_at;
    }
    b.messages = inflight_.size();
    for (const auto& d : queue_) {
        if (!d.msg) continue;
        ++b.messages;
        if (!b.oldest || d.queued_at < *b.oldest) b.oldest = d.queued_at;
        break;  // queued in order: the first live one is the oldest
    }
    b.messages = inflight_.size() + queue_.size();
    if (outbox_) {
        b.messages += outbox_->paged;
        b.in_store_only = outbox_->paged;
        b.bytes += outbox_->paged_bytes;
        if (!b.oldest && outbox_->paged > 0) b.oldest = outbox_->paged_oldest;
        b.messages -= outbox_->tombstones;
        b.dropped = outbox_->dropped;
        b.refused = outbox_->refused;
        b.superseded = outbox_->superseded;
    }
    return b;
}

std::size_t session::queued_messages() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

std::size_t session::inflight_messages() const {
    std::lock_guard lock(mutex_);
    return inflight_.size();
}

std::uint64_t session::dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
}

void session::count_dropped() {
    std::lock_guard lock(mutex_);
    ++dropped_;
}

void session::clear() {
    std::lock_guard lock(mutex_);
    queue_.clear();
    queued_bytes_ = 0;
    inflight_.clear();
    inbound_qos2_.clear();
    subscriptions_.clear();
    replay_.reset();
    if (outbox_) {
        // The core erased the stored session, the backlog's tail with it.
        outbox_->paged = outbox_->paged_bytes = 0;
        outbox_->paged_oldest.reset();
    }
    if (pressure_) release_gates_locked(true);
    will_.reset();
    persistent_ = false;  // the core erased the stored session
    ++generation_;  // disarms pending timers
}

}  // namespace strata::broker::core
