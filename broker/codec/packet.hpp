// MQTT control packets as plain value types (MQTT 3.1.1 = protocol level 4,
// MQTT 5.0 = protocol level 5).
//
// One set of types serves both versions: fields that exist only in 5.0
// (properties, reason codes on acknowledgements) are simply left at their
// defaults for 3.1.1 and are neither encoded nor expected by the codec.
// The codec (decoder.hpp / encoder.hpp) never sees a socket, clock or executor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace strata::mqtt {

enum class protocol_version : std::uint8_t { v311 = 4, v5 = 5 };

enum class packet_type : std::uint8_t {
    connect = 1, connack = 2, publish = 3, puback = 4, pubrec = 5, pubrel = 6,
    pubcomp = 7, subscribe = 8, suback = 9, unsubscribe = 10, unsuback = 11,
    pingreq = 12, pingresp = 13, disconnect = 14, auth = 15,
};

// MQTT 5.0 reason codes (section 2.4). 3.1.1 CONNACK return codes and the
// SUBACK failure code 0x80 are mapped onto these at the codec edge.
enum class reason_code : std::uint8_t {
    success = 0x00,                 // also: normal disconnection, granted QoS 0
    granted_qos_1 = 0x01,
    granted_qos_2 = 0x02,
    disconnect_with_will = 0x04,
    no_matching_subscribers = 0x10,
    no_subscription_existed = 0x11,
    continue_authentication = 0x18,
    reauthenticate = 0x19,
    unspecified_error = 0x80,
    malformed_packet = 0x81,
    protocol_error = 0x82,
    implementation_specific_error = 0x83,
    unsupported_protocol_version = 0x84,
    client_identifier_not_valid = 0x85,
    bad_user_name_or_password = 0x86,
    not_authorized = 0x87,
    server_unavailable = 0x88,
    server_busy = 0x89,
    banned = 0x8A,
    server_shutting_down = 0x8B,
    bad_authentication_method = 0x8C,
    keep_alive_timeout = 0x8D,
    session_taken_over = 0x8E,
    topic_filter_invalid = 0x8F,
    topic_name_invalid = 0x90,
    packet_identifier_in_use = 0x91,
    packet_identifier_not_found = 0x92,
    receive_maximum_exceeded = 0x93,
    topic_alias_invalid = 0x94,
    packet_too_large = 0x95,
    message_rate_too_high = 0x96,
    quota_exceeded = 0x97,
    administrative_action = 0x98,
    payload_format_invalid = 0x99,
    retain_not_supported = 0x9A,
    qos_not_supported = 0x9B,
    use_another_server = 0x9C,
    server_moved = 0x9D,
    shared_subscriptions_not_supported = 0x9E,
    connection_rate_exceeded = 0x9F,
    maximum_connect_time = 0xA0,
    subscription_identifiers_not_supported = 0xA1,
    wildcard_subscriptions_not_supported = 0xA2,
};

[[nodiscard]] const char* to_string(reason_code rc) noexcept;

// Reason codes as std::error_code values, category "mqtt", message() the
// to_string() name, so that code outside the codec can carry one where
// errors travel as std::error_code. Only success (0x00) is a false
// error_code; the other codes below 0x80 (granted QoS 1, no matching
// subscribers, ...) are not failures in MQTT's terms (section 2.4) but are
// true: test value() >= 0x80 where that matters.
[[nodiscard]] const std::error_category& reason_category() noexcept;
[[nodiscard]] inline std::error_code make_error_code(reason_code rc) noexcept {
    return {static_cast<int>(rc), reason_category()};
}

// Whether 5.0 lets a packet of type `t` carry `rc` (each packet type has its
// own list: e.g. 0x84 Unsupported Protocol Version is a CONNACK code only).
[[nodiscard]] bool reason_allowed(packet_type t, reason_code rc) noexcept;

using user_property = std::pair<std::string, std::string>;

// MQTT 5.0 properties (section 2.2.2). One struct for every packet type; the
// decoder rejects a property that is not allowed on the packet it arrived in
// and any property other than User Property / Subscription Identifier that
// appears twice. Binary data is carried in std::string.
struct properties {
    std::optional<std::uint8_t> payload_format_indicator;      // 0x01
    std::optional<std::uint32_t> message_expiry_interval;      // 0x02
    std::optional<std::string> content_type;                   // 0x03
    std::optional<std::string> response_topic;                 // 0x08
    std::optional<std::string> correlation_data;               // 0x09
    std::vector<std::uint32_t> subscription_identifiers;       // 0x0B (varint, 1..268435455)
    std::optional<std::uint32_t> session_expiry_interval;      // 0x11
    std::optional<std::string> assigned_client_identifier;     // 0x12
    std::optional<std::uint16_t> server_keep_alive;            // 0x13
    std::optional<std::string> authentication_method;          // 0x15
    std::optional<std::string> authentication_data;            // 0x16
    std::optional<std::uint8_t> request_problem_information;   // 0x17
    std::optional<std::uint32_t> will_delay_interval;          // 0x18
    std::optional<std::uint8_t> request_response_information;  // 0x19
    std::optional<std::string> response_information;           // 0x1A
    std::optional<std::string> server_reference;               // 0x1C
    std::optional<std::string> reason_string;                  // 0x1F
    std::optional<std::uint16_t> receive_maximum;              // 0x21
    std::optional<std::uint16_t> topic_alias_maximum;          // 0x22
    std::optional<std::uint16_t> topic_alias;                  // 0x23
    std::optional<std::uint8_t> maximum_qos;                   // 0x24
    std::optional<std::uint8_t> retain_available;              // 0x25
    std::vector<user_property> user_properties;                // 0x26 (order kept)
    std::optional<std::uint32_t> maximum_packet_size;          // 0x27
    std::optional<std::uint8_t> wildcard_subscription_available;        // 0x28
    std::optional<std::uint8_t> subscription_identifier_available;      // 0x29
    std::optional<std::uint8_t> shared_subscription_available;          // 0x2A

    bool operator==(const properties&) const = default;
};

struct will_message {
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    bool retain = false;
    properties props;  // will properties (5.0)
    bool operator==(const will_message&) const = default;
};

struct connect {
    protocol_version version = protocol_version::v5;
    std::string protocol_name = "MQTT";  // "MQTT" (4, 5); "MQIsdp" is refused
    // 3.1.1 only: protocol level 0x84 instead of 4, Mosquitto's marker of a
    // bridge connection (the peer is a broker forwarding messages, to be
    // given No Local semantics). 5.0 has no such marker: level 0x85 is
    // refused, and the encoder ignores this field for 5.0.
    bool bridge = false;
    bool clean_start = true;             // 3.1.1: clean session
    std::uint16_t keep_alive = 0;        // seconds
    std::string client_id;
    std::optional<will_message> will;
    std::optional<std::string> username;
    std::optional<std::string> password;  // binary
    properties props;
    bool operator==(const connect&) const = default;
};

struct connack {
    bool session_present = false;
    reason_code code = reason_code::success;  // 3.1.1: mapped to return codes 0..5
    properties props;
    bool operator==(const connack&) const = default;
};

struct publish {
    std::string topic;       // may be empty in 5.0 when a topic alias is used
    std::string payload;
    std::uint8_t qos = 0;
    bool retain = false;
    bool dup = false;
    std::uint16_t packet_id = 0;  // only for qos > 0
    properties props;
    bool operator==(const publish&) const = default;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP share one shape.
struct puback  { std::uint16_t packet_id = 0; reason_code code = reason_code::success; properties props; bool operator==(const puback&) const = default; };
struct pubrec  { std::uint16_t packet_id = 0; reason_code code = reason_code::success; properties props; bool operator==(const pubrec&) const = default; };
struct pubrel  { std::uint16_t packet_id = 0; reason_code code = reason_code::success; properties props; bool operator==(const pubrel&) const = default; };
struct pubcomp { std::uint16_t packet_id = 0; reason_code code = reason_code::success; properties props; bool operator==(const pubcomp&) const = default; };

struct subscribe_options {
    std::uint8_t qos = 0;
    bool no_local = false;            // 5.0
    bool retain_as_published = false; // 5.0
    std::uint8_t retain_handling = 0; // 5.0: 0 send, 1 send if new, 2 don't send
    bool operator==(const subscribe_options&) const = default;
};

struct subscription_request {
    std::string filter;
    subscribe_options options;
    bool operator==(const subscription_request&) const = default;
};

struct subscribe {
    std::uint16_t packet_id = 0;
    std::vector<subscription_request> subscriptions;  // at least one
    properties props;  // subscription identifier, user properties
    bool operator==(const subscribe&) const = default;
};

struct suback {
    std::uint16_t packet_id = 0;
    std::vector<reason_code> codes;  // 3.1.1: 0,1,2 or 0x80
    properties props;
    bool operator==(const suback&) const = default;
};

struct unsubscribe {
    std::uint16_t packet_id = 0;
    std::vector<std::string> filters;
    properties props;
    bool operator==(const unsubscribe&) const = default;
};

struct unsuback {
    std::uint16_t packet_id = 0;
    std::vector<reason_code> codes;  // 5.0 only; empty for 3.1.1
    properties props;
    bool operator==(const unsuback&) const = default;
};

struct pingreq { bool operator==(const pingreq&) const = default; };
struct pingresp { bool operator==(const pingresp&) const = default; };

struct disconnect {
    reason_code code = reason_code::success;
    properties props;
    bool operator==(const disconnect&) const = default;
};

struct auth {
    reason_code code = reason_code::success;
    properties props;
    bool operator==(const auth&) const = default;
};

using packet = std::variant<connect, connack, publish, puback, pubrec, pubrel, pubcomp,
                            subscribe, suback, unsubscribe, unsuback, pingreq, pingresp,
                            disconnect, auth>;

}  // namespace strata::mqtt

// A reason_code converts to std::error_code implicitly (through
// make_error_code above).
template <>
struct std::is_error_code_enum<strata::mqtt::reason_code> : std::true_type {};
