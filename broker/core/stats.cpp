#include "broker/core/stats.hpp"

namespace strata::broker::core {

namespace {
thread_local std::size_t slot_index = stats::max_slots - 1;
}

counter_slot& stats::local() noexcept { return slots_[slot_index]; }

void stats::bind_thread(std::size_t index) noexcept {
    slot_index = index < max_slots - 1 ? index : max_slots - 1;
}

stats::totals stats::sum() const noexcept {
    totals t;
    for (const auto& s : slots_) {
        t.messages_received += s.messages_received.load(std::memory_order_relaxed);
        t.messages_sent += s.messages_sent.load(std::memory_order_relaxed);
        t.bytes_received += s.bytes_received.load(std::memory_order_relaxed);
        t.bytes_sent += s.bytes_sent.load(std::memory_order_relaxed);
        for (std::size_t q = 0; q < 3; ++q) {
            t.publish_received_qos[q] += s.publish_received[q].load(std::memory_order_relaxed);
            t.payload_received_qos[q] += s.payload_received[q].load(std::memory_order_relaxed);
            t.publish_sent_qos[q] += s.publish_sent[q].load(std::memory_order_relaxed);
            t.payload_sent_qos[q] += s.payload_sent[q].load(std::memory_order_relaxed);
        }
        for (std::size_t r = 0; r < t.connections_refused.size(); ++r)
            t.connections_refused[r] += s.connections_refused[r].load(std::memory_order_relaxed);
        t.dropped_queue_full += s.dropped_queue_full.load(std::memory_order_relaxed);
        t.dropped_expired += s.dropped_expired.load(std::memory_order_relaxed);
        t.dropped_too_large += s.dropped_too_large.load(std::memory_order_relaxed);
        t.dropped_offline_qos0 += s.dropped_offline_qos0.load(std::memory_order_relaxed);
        t.connections_accepted += s.connections_accepted.load(std::memory_order_relaxed);
        t.refused_unstorable += s.refused_unstorable.load(std::memory_order_relaxed);
        t.refused_queue_full += s.refused_queue_full.load(std::memory_order_relaxed);
        t.publish_refused += s.publish_refused.load(std::memory_order_relaxed);
        t.publish_rate_limited += s.publish_rate_limited.load(std::memory_order_relaxed);
        t.internal_errors += s.internal_errors.load(std::memory_order_relaxed);
        for (std::size_t r = 0; r < t.retained_refused.size(); ++r)
            t.retained_refused[r] += s.retained_refused[r].load(std::memory_order_relaxed);
        t.retained_replay_skipped += s.retained_replay_skipped.load(std::memory_order_relaxed);
        t.publisher_holds += s.publisher_holds.load(std::memory_order_relaxed);
        t.slow_consumer_disconnects += s.slow_consumer_disconnects.load(std::memory_order_relaxed);
        t.slow_consumer_drops += s.slow_consumer_drops.load(std::memory_order_relaxed);
        t.dropped_slow_consumer += s.dropped_slow_consumer.load(std::memory_order_relaxed);
    }
    for (std::size_t q = 0; q < 3; ++q) {
        t.publish_received += t.publish_received_qos[q];
        t.publish_sent += t.publish_sent_qos[q];
    }
    return t;
}

}  // namespace strata::broker::core
