// Reason code names, which reason codes each 5.0 packet may carry (spec
// sections 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3,
// 3.14.2.1, 3.15.2.1), the 3.1.1 CONNACK return code mapping and the
// "mqtt" std::error_category.
#include "broker/codec/packet.hpp"
#include "broker/codec/wire.hpp"

namespace strata::mqtt {

const char* to_string(reason_code rc) noexcept {
    switch (rc) {
        case reason_code::success: return "success";
        case reason_code::granted_qos_1: return "granted_qos_1";
        case reason_code::granted_qos_2: return "granted_qos_2";
        case reason_code::disconnect_with_will: return "disconnect_with_will";
        case reason_code::no_matching_subscribers: return "no_matching_subscribers";
        case reason_code::no_subscription_existed: return "no_subscription_existed";
        case reason_code::continue_authentication: return "continue_authentication";
        case reason_code::reauthenticate: return "reauthenticate";
        case reason_code::unspecified_error: return "unspecified_error";
        case reason_code::malformed_packet: return "malformed_packet";
        case reason_code::protocol_error: return "protocol_error";
        case reason_code::implementation_specific_error: return "implementation_specific_error";
        case reason_code::unsupported_protocol_version: return "unsupported_protocol_version";
        case reason_code::client_identifier_not_valid: return "client_identifier_not_valid";
        case reason_code::bad_user_name_or_password: return "bad_user_name_or_password";
        case reason_code::not_authorized: return "not_authorized";
        case reason_code::server_unavailable: return "server_unavailable";
        case reason_code::server_busy: return "server_busy";
        case reason_code::banned: return "banned";
        case reason_code::server_shutting_down: return "server_shutting_down";
        case reason_code::bad_authentication_method: return "bad_authentication_method";
        case reason_code::keep_alive_timeout: return "keep_alive_timeout";
        case reason_code::session_taken_over: return "session_taken_over";
        case reason_code::topic_filter_invalid: return "topic_filter_invalid";
        case reason_code::topic_name_invalid: return "topic_name_invalid";
        case reason_code::packet_identifier_in_use: return "packet_identifier_in_use";
        case reason_code::packet_identifier_not_found: return "packet_identifier_not_found";
        case reason_code::receive_maximum_exceeded: return "receive_maximum_exceeded";
        case reason_code::topic_alias_invalid: return "topic_alias_invalid";
        case reason_code::packet_too_large: return "packet_too_large";
        case reason_code::message_rate_too_high: return "message_rate_too_high";
        case reason_code::quota_exceeded: return "quota_exceeded";
        case reason_code::administrative_action: return "administrative_action";
        case reason_code::payload_format_invalid: return "payload_format_invalid";
        case reason_code::retain_not_supported: return "retain_not_supported";
        case reason_code::qos_not_supported: return "qos_not_supported";
        case reason_code::use_another_server: return "use_another_server";
        case reason_code::server_moved: return "server_moved";
        case reason_code::shared_subscriptions_not_supported: return "shared_subscriptions_not_supported";
        case reason_code::connection_rate_exceeded: return "connection_rate_exceeded";
        case reason_code::maximum_connect_time: return "maximum_connect_time";
        case reason_code::subscription_identifiers_not_supported: return "subscription_identifiers_not_supported";
        case reason_code::wildcard_subscriptions_not_supported: return "wildcard_subscriptions_not_supported";
    }
    return "unknown_reason_code";
}

namespace {

class reason_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "mqtt"; }
    std::string message(int ev) const override {
        // Converting a wider value to reason_code would keep its low byte
        // (0x180 would read as 0x80): reject it here.
        if (ev < 0 || ev > 0xFF) return "unknown_reason_code";
        return to_string(static_cast<reason_code>(ev));
    }
};

}  // namespace

const std::error_category& reason_category() noexcept {
    static const reason_category_impl category;
    return category;
}

bool reason_allowed(packet_type t, reason_code rc) noexcept {
    return wire::valid_v5_reason(t, static_cast<std::uint8_t>(rc));
}

namespace wire {

bool valid_v5_reason(packet_type t, std::uint8_t rc) noexcept {
    switch (t) {
        case packet_type::connack:
            switch (rc) {
                case 0x00: case 0x80: case 0x81: case 0x82: case 0x83: case 0x84: case 0x85:
                case 0x86: case 0x87: case 0x88: case 0x89: case 0x8A: case 0x8C: case 0x90:
                case 0x95: case 0x97: case 0x99: case 0x9A: case 0x9B: case 0x9C: case 0x9D:
                case 0x9F:
                    return true;
                default: return false;
            }
        case packet_type::puback:
        case packet_type::pubrec:
            switch (rc) {
                case 0x00: case 0x10: case 0x80: case 0x83: case 0x87: case 0x90: case 0x91:
                case 0x97: case 0x99:
                    return true;
                default: return false;
            }
        case packet_type::pubrel:
        case packet_type::pubcomp:
            return rc == 0x00 || rc == 0x92;
        case packet_type::suback:
            switch (rc) {
                case 0x00: case 0x01: case 0x02: case 0x80: case 0x83: case 0x87: case 0x8F:
                case 0x91: case 0x97: case 0x9E: case 0xA1: case 0xA2:
                    return true;
                default: return false;
            }
        case packet_type::unsuback:
            switch (rc) {
                case 0x00: case 0x11: case 0x80: case 0x83: case 0x87: case 0x8F: case 0x91:
                    return true;
                default: return false;
            }
        case packet_type::disconnect:
            switch (rc) {
                case 0x00: case 0x04: case 0x80: case 0x81: case 0x82: case 0x83: case 0x87:
                case 0x89: case 0x8B: case 0x8D: case 0x8E: case 0x8F: case 0x90: case 0x93:
                case 0x94: case 0x95: case 0x96: case 0x97: case 0x98: case 0x99: case 0x9A:
                case 0x9B: case 0x9C: case 0x9D: case 0x9E: case 0x9F: case 0xA0: case 0xA1:
                case 0xA2:
                    return true;
                default: return false;
            }
        case packet_type::auth:
            return rc == 0x00 || rc == 0x18 || rc == 0x19;
        default:
            return false;
    }
}

// 3.1.1 has six CONNACK return codes; every 5.0 reason is sent as the
// closest of them. Codes with no real counterpart (malformed, protocol
// error, ...) become 3 "server unavailable", the only generic refusal.
std::uint8_t to_v311_connack(reason_code rc) noexcept {
    switch (rc) {
        case reason_code::success: return 0;
        case reason_code::unsupported_protocol_version: return 1;
        case reason_code::client_identifier_not_valid: return 2;
        case reason_code::bad_user_name_or_password:
        case reason_code::bad_authentication_method: return 4;
        case reason_code::not_authorized:
        case reason_code::banned: return 5;
        default: return 3;  // server_unavailable, server_busy, use_another_server,
                            // server_moved, quota_exceeded, connection_rate_exceeded, ...
    }
}

bool from_v311_connack(std::uint8_t b, reason_code& out) noexcept {
    switch (b) {
        case 0: out = reason_code::success; return true;
        case 1: out = reason_code::unsupported_protocol_version; return true;
        case 2: out = reason_code::client_identifier_not_valid; return true;
        case 3: out = reason_code::server_unavailable; return true;
        case 4: out = reason_code::bad_user_name_or_password; return true;
        case 5: out = reason_code::not_authorized; return true;
        default: return false;
    }
}

}  // namespace wire
}  // namespace strata::mqtt
