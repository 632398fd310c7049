// Broker-wide counters. Each network thread owns one slot and is its only
// writer (plain relaxed load+store, no read-modify-write on a shared cache
// line); readers ($SYS, the /metrics scrape) sum the slots. Gauges that
// several threads change are atomics in `stats`.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace strata::broker::core {

struct alignas(64) counter_slot {
    std::atomic<std::uint64_t> messages_received{0};
    std::atomic<std::uint64_t> messages_sent{0};
    std::atomic<std::uint64_t> bytes_received{0};
    std::atomic<std::uint64_t> bytes_sent{0};
    // PUBLISH packets and their payload bytes, by QoS.
    std::array<std::atomic<std::uint64_t>, 3> publish_received{};
    std::array<std::atomic<std::uint64_t>, 3> payload_received{};
    std::array<std::atomic<std::uint64_t>, 3> publish_sent{};
    std::array<std::atomic<std::uint64_t>, 3> payload_sent{};
    std::atomic<std::uint64_t> dropped_queue_full{0};
    std::atomic<std::uint64_t> dropped_expired{0};
    std::atomic<std::uint64_t> dropped_too_large{0};
    std::atomic<std::uint64_t> dropped_offline_qos0{0};
    std::atomic<std::uint64_t> connections_accepted{0};
    std::atomic<std::uint64_t> refused_unstorable{0};  // QoS 1/2 publishes refused: the store cannot write
    std::atomic<std::uint64_t> refused_queue_full{0};  // deliveries refused by a full queue (policy refuse)
    // Connections refused or failed before CONNACK success, by reason.
    std::array<std::atomic<std::uint64_t>, 6> connections_refused{};
    std::atomic<std::uint64_t> publish_refused{0};       // no grant (auth) or access rule
    std::atomic<std::uint64_t> publish_rate_limited{0};  // over an identity's publish rate
    // Exceptions caught at a network thread's boundary (a connection closed
    // after one, or a handler's caught by the thread's run loop): each is a
    // bug worth a report, never a reason for the broker to stop.
    std::atomic<std::uint64_t> internal_errors{0};
    // Retained messages refused by the retained store's limits, by limit
    // (retain_refusal_labels: messages, bytes, identity_messages, identity_bytes).
    std::array<std::atomic<std::uint64_t>, 4> retained_refused{};
    // Retained messages a replay on SUBSCRIBE skipped: cleared or expired
    // before the subscriber's turn came.
    std::atomic<std::uint64_t> retained_replay_skipped{0};
    // Back-pressure (flow_gate.hpp): a publisher held by a full subscriber
    // queue; slow consumers disconnected or dropping, and what they dropped.
    std::atomic<std::uint64_t> publisher_holds{0};
    std::atomic<std::uint64_t> slow_consumer_disconnects{0};
    std::atomic<std::uint64_t> slow_consumer_drops{0};
    std::atomic<std::uint64_t> dropped_slow_consumer{0};
};

// Labels of counter_slot::connections_refused (Prometheus `reason`).
enum class refusal : std::uint8_t { limit, auth, protocol, redirect, tls_handshake, websocket_upgrade };
inline constexpr std::array<const char*, 6> refusal_labels{
    "limit", "auth", "protocol", "redirect", "tls_handshake", "websocket_upgrade"};

inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

class stats {
public:
    static constexpr std::size_t max_slots = 257;  // network threads + one shared slot

    // The slot of the calling thread. Counting happens only on network
    // threads (each bound to its own slot); the last slot belongs to the
    // main thread.
    counter_slot& local() noexcept;
    // Called once by each network thread before it runs.
    void bind_thread(std::size_t index) noexcept;

    struct totals {
        std::uint64_t messages_received = 0, messages_sent = 0, bytes_received = 0, bytes_sent = 0;
        std::uint64_t publish_received = 0, publish_sent = 0;  // all QoS
        std::array<std::uint64_t, 3> publish_received_qos{}, payload_received_qos{}, publish_sent_qos{},
            payload_sent_qos{};
        std::array<std::uint64_t, 6> connections_refused{};
        std::uint64_t dropped_queue_full = 0, dropped_expired = 0, dropped_too_large = 0,
                      dropped_offline_qos0 = 0;
        std::uint64_t connections_accepted = 0;
        std::uint64_t refused_unstorable = 0, refused_queue_full = 0;
        std::uint64_t publish_refused = 0, publish_rate_limited = 0;
        std::uint64_t internal_errors = 0;
        std::array<std::uint64_t, 4> retained_refused{};
        std::uint64_t retained_replay_skipped = 0;
        std::uint64_t publisher_holds = 0, slow_consumer_disconnects = 0, slow_consumer_drops = 0,
                      dropped_slow_consumer = 0;
        [[nodiscard]] std::uint64_t retained_refused_total() const noexcept {
            return retained_refused[0] + retained_refused[1] + retained_refused[2] + retained_refused[3];
        }
        [[nodiscard]] std::uint64_t dropped() const noexcept {
            return dropped_queue_full + dropped_expired + dropped_too_large + dropped_offline_qos0 +
                   dropped_slow_consumer;
        }
    };
    [[nodiscard]] totals sum() const noexcept;

    std::atomic<std::int64_t> clients_connected{0};
    std::atomic<std::int64_t> sessions{0};
    // Publishers whose input is not read now: a subscriber's queue is full.
    std::atomic<std::int64_t> publishers_waiting{0};

private:
    std::array<counter_slot, max_slots> slots_{};
};

}  // namespace strata::broker::core
