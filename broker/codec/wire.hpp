// Private to broker/codec: wire-level helpers shared by the decoder and the
// encoder (variable byte integers, the property table, reason code tables).
// Not installed, not included by anything outside broker/codec.
#pragma once

#include "broker/codec/packet.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace strata::mqtt::wire {

// Largest value a Variable Byte Integer can carry (4 bytes).
inline constexpr std::uint32_t max_varint = 268'435'455;

[[nodiscard]] constexpr std::size_t varint_size(std::uint32_t v) noexcept {
    return v < 128u ? 1 : v < 16'384u ? 2 : v < 2'097'152u ? 3 : 4;
}

// Property contexts: one bit per packet type (bit = packet type value) plus
// bit 0 for the will properties inside CONNECT.
using prop_ctx = std::uint16_t;
inline constexpr prop_ctx ctx_will = 1u << 0;
[[nodiscard]] constexpr prop_ctx ctx_of(packet_type t) noexcept {
    return static_cast<prop_ctx>(1u << static_cast<unsigned>(t));
}

// Property identifiers (MQTT 5.0 section 2.2.2.2).
enum prop_id : std::uint8_t {
    pid_payload_format_indicator = 0x01,
    pid_message_expiry_interval = 0x02,
    pid_content_type = 0x03,
    pid_response_topic = 0x08,
    pid_correlation_data = 0x09,
    pid_subscription_identifier = 0x0B,
    pid_session_expiry_interval = 0x11,
    pid_assigned_client_identifier = 0x12,
    pid_server_keep_alive = 0x13,
    pid_authentication_method = 0x15,
    pid_authentication_data = 0x16,
    pid_request_problem_information = 0x17,
    pid_will_delay_interval = 0x18,
    pid_request_response_information = 0x19,
    pid_response_information = 0x1A,
    pid_server_reference = 0x1C,
    pid_reason_string = 0x1F,
    pid_receive_maximum = 0x21,
    pid_topic_alias_maximum = 0x22,
    pid_topic_alias = 0x23,
    pid_maximum_qos = 0x24,
    pid_retain_available = 0x25,
    pid_user_property = 0x26,
    pid_maximum_packet_size = 0x27,
    pid_wildcard_subscription_available = 0x28,
    pid_subscription_identifier_available = 0x29,
    pid_shared_subscription_available = 0x2A,
};
inline constexpr std::uint8_t max_prop_id = 0x2A;

// Where each property may appear (spec table 2-4); 0 = unknown identifier.
// Inline: the encoder asks for every property it writes.
namespace detail {
constexpr prop_ctx c(packet_type t) noexcept { return ctx_of(t); }
inline constexpr prop_ctx publish_will = c(packet_type::publish) | ctx_will;
inline constexpr prop_ctx acks = c(packet_type::puback) | c(packet_type::pubrec) |
                                 c(packet_type::pubrel) | c(packet_type::pubcomp);
struct prop_table {
    prop_ctx by_id[max_prop_id + 1]{};
    constexpr prop_table() {
        using pt = packet_type;
        by_id[pid_payload_format_indicator] = publish_will;
        by_id[pid_message_expiry_interval] = publish_will;
        by_id[pid_content_type] = publish_will;
        by_id[pid_response_topic] = publish_will;
        by_id[pid_correlation_data] = publish_will;
        by_id[pid_subscription_identifier] = c(pt::publish) | c(pt::subscribe);
        by_id[pid_session_expiry_interval] = c(pt::connect) | c(pt::connack) | c(pt::disconnect);
        by_id[pid_assigned_client_identifier] = c(pt::connack);
        by_id[pid_server_keep_alive] = c(pt::connack);
        by_id[pid_authentication_method] = c(pt::connect) | c(pt::connack) | c(pt::auth);
        by_id[pid_authentication_data] = c(pt::connect) | c(pt::connack) | c(pt::auth);
        by_id[pid_request_problem_information] = c(pt::connect);
        by_id[pid_will_delay_interval] = ctx_will;
        by_id[pid_request_response_information] = c(pt::connect);
        by_id[pid_response_information] = c(pt::connack);
        by_id[pid_server_reference] = c(pt::connack) | c(pt::disconnect);
        by_id[pid_reason_string] = c(pt::connack) | acks | c(pt::suback) | c(pt::unsuback) |
                                   c(pt::disconnect) | c(pt::auth);
        by_id[pid_receive_maximum] = c(pt::connect) | c(pt::connack);
        by_id[pid_topic_alias_maximum] = c(pt::connect) | c(pt::connack);
        by_id[pid_topic_alias] = c(pt::publish);
        by_id[pid_maximum_qos] = c(pt::connack);
        by_id[pid_retain_available] = c(pt::connack);
        by_id[pid_user_property] = c(pt::connect) | c(pt::connack) | publish_will | acks |
                                   c(pt::subscribe) | c(pt::suback) | c(pt::unsubscribe) |
                                   c(pt::unsuback) | c(pt::disconnect) | c(pt::auth);
        by_id[pid_maximum_packet_size] = c(pt::connect) | c(pt::connack);
        by_id[pid_wildcard_subscription_available] = c(pt::connack);
        by_id[pid_subscription_identifier_available] = c(pt::connack);
        by_id[pid_shared_subscription_available] = c(pt::connack);
    }
};
inline constexpr prop_table props_where{};
}  // namespace detail

[[nodiscard]] constexpr prop_ctx allowed_contexts(std::uint8_t id) noexcept {
    return id <= max_prop_id ? detail::props_where.by_id[id] : prop_ctx{0};
}
[[nodiscard]] constexpr bool prop_allowed(std::uint8_t id, prop_ctx ctx) noexcept {
    return (allowed_contexts(id) & ctx) != 0;
}

// Whether `rc` is a reason code the 5.0 spec defines for packet type `t`
// (CONNACK, PUBACK..PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH).
[[nodiscard]] bool valid_v5_reason(packet_type t, std::uint8_t rc) noexcept;

// 3.1.1 CONNACK return code <-> reason code.
[[nodiscard]] std::uint8_t to_v311_connack(reason_code rc) noexcept;
[[nodiscard]] bool from_v311_connack(std::uint8_t b, reason_code& out) noexcept;

// Well-formed UTF-8 (RFC 3629: no surrogates, no overlong forms, nothing
// above U+10FFFF); U+0000 allowed only when `allow_nul` (payloads with
// Payload Format Indicator 1 may contain it; UTF-8 Encoded Strings may not).
[[nodiscard]] bool utf8_well_formed(std::string_view s, bool allow_nul) noexcept;

}  // namespace strata::mqtt::wire
