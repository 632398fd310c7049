// An application message as the router moves it: immutable once published,
// shared by every session it is delivered to, and by the store's records of
// those deliveries (persistence::shared_message: written without a copy,
// read by the store's writer thread).
#pragma once

#include "broker/codec/packet.hpp"
#include "persistence/store.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace strata::broker::core {

using steady_clock = std::chrono::steady_clock;

// A message's PUBLISH properties, allocated only when it has any: most
// messages have none, and a message is kept once per retained topic (an
// mqtt::properties is 488 bytes; this is 8). Reads go through -> and see
// an empty set when there is none; edit() allocates.
class message_properties {
public:
    message_properties() = default;
    message_properties(const message_properties& o) : p_(o.p_ ? std::make_unique<mqtt::properties>(*o.p_) : nullptr) {}
    message_properties& operator=(const message_properties& o) {
        if (this != &o) p_ = o.p_ ? std::make_unique<mqtt::properties>(*o.p_) : nullptr;
        return *this;
    }
    message_properties(message_properties&&) noexcept = default;
    message_properties& operator=(message_properties&&) noexcept = default;
    // Takes `p` (allocates only when it holds a property).
    message_properties& operator=(mqtt::properties&& p) {
        p_ = p == empty() ? nullptr : std::make_unique<mqtt::properties>(std::move(p));
        return *this;
    }
    message_properties& operator=(const mqtt::properties& p) {
        p_ = p == empty() ? nullptr : std::make_unique<mqtt::properties>(p);
        return *this;
    }

    [[nodiscard]] const mqtt::properties* operator->() const noexcept { return p_ ? p_.get() : &empty(); }
    [[nodiscard]] const mqtt::properties& operator*() const noexcept { return p_ ? *p_ : empty(); }
    // The properties to change (allocated on first use).
    [[nodiscard]] mqtt::properties& edit() {
        if (!p_) p_ = std::make_unique<mqtt::properties>();
        return *p_;
    }
    // Whether the message carries any property.
    [[nodiscard]] bool any() const noexcept { return p_ != nullptr; }

private:
    [[nodiscard]] static const mqtt::properties& empty() noexcept {
        static const mqtt::properties none{};
        return none;
    }
    std::unique_ptr<mqtt::properties> p_;
};

struct message final : persistence::shared_message {
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    bool retain = false;
    // PUBLISH properties as received, without Topic Alias and Subscription
    // Identifiers (those are per connection / per subscriber).
    message_properties props;
    // Absolute deadline from Message Expiry Interval; absent: never expires.
    std::optional<steady_clock::time_point> expires_at;
    // The session that published it (for No Local); never dereferenced.
    const void* origin = nullptr;
    // When the broker received a retained message (Unix ms, wall clock),
    // for the admin API's state. Messages read back from the store carry the recovery time (the
    // store does not keep it); 0: not recorded (the broker's own messages).
    std::int64_t received_ms = 0;

    [[nodiscard]] bool expired(steady_clock::time_point now) const noexcept {
        return expires_at && now >= *expires_at;
    }
    // Bytes this message accounts for in a session's queue limit.
    [[nodiscard]] std::size_t weight() const noexcept { return topic.size() + payload.size(); }

    // As stored (stored.cpp; any thread: it only reads).
    void read(persistence::stored_message& out) const override;
    [[nodiscard]] std::size_t stored_size() const noexcept override { return weight(); }
};

using message_ptr = std::shared_ptr<const message>;

// Who sent a command (MQTT 5 user properties, docs/federation.md): the
// broker a client published it to stamps the client's identity and its own
// broker id on it, and they travel with it over bridges, so the broker
// that carries it out can audit both the bridge's identity and the
// sender's. Only a broker sets them: a client's own are removed.
inline constexpr std::string_view origin_identity_property = "strata-origin-identity";
inline constexpr std::string_view origin_broker_property = "strata-origin-broker";

struct command_origin {
    std::string_view identity;  // empty: none given
    std::string_view broker;
};
[[nodiscard]] command_origin origin_of(const mqtt::properties& props) noexcept;
// Removes origin properties (a client's); then, with `identity` (empty:
// anonymous), adds the broker's.
void strip_origin(mqtt::properties& props);
void stamp_origin(mqtt::properties& props, std::string_view identity, std::string_view broker_id);

}  // namespace strata::broker::core
