// PINGREQ, PINGRESP, DISCONNECT, AUTH, UTF-8 validation, reason names and
// the reason code error category.
#include "helpers.hpp"

#include <cstring>
#include <string_view>
#include <system_error>

using namespace strata::mqtt;
using namespace strata::mqtt::test;

TEST_CASE("PINGREQ and PINGRESP", "[codec][ping]") {
    for (auto v : {v311, v5}) {
        check_both_ways(bytes{0xC0, 0x00}, pingreq{}, v);   // PINGREQ, remaining length 0
        check_both_ways(bytes{0xD0, 0x00}, pingresp{}, v);  // PINGRESP, remaining length 0
        CHECK(decode_error({0xC0, 0x01, 0x00}, v) == reason_code::malformed_packet);
        CHECK(decode_error({0xD0, 0x01, 0x00}, v) == reason_code::malformed_packet);
    }
}

TEST_CASE("DISCONNECT 3.1.1", "[codec][disconnect]") {
    check_both_ways(bytes{0xE0, 0x00}, disconnect{}, v311);  // DISCONNECT, remaining length 0
    CHECK(decode_error({0xE0, 0x01, 0x00}, v311) == reason_code::malformed_packet);
    CHECK(decode_error({0xE0, 0x02, 0x00, 0x00}, v311) == reason_code::malformed_packet);
    disconnect d;
    d.code = reason_code::server_shutting_down;
    CHECK(encode_bytes(d, v311) == bytes{0xE0, 0x00});
}

TEST_CASE("DISCONNECT 5.0", "[codec][disconnect]") {
    SECTION("remaining length 0: normal disconnection") {
        check_both_ways(bytes{0xE0, 0x00}, disconnect{}, v5);
    }
    SECTION("remaining length 1: reason code only") {
        disconnect d;
        d.code = reason_code::disconnect_with_will;
        check_both_ways(bytes{0xE0, 0x01, 0x04}, d, v5);  // DISCONNECT, length 1, 0x04 with will
    }
    SECTION("reason code and properties") {
        const bytes b{
            0xE0,                          // DISCONNECT
            0x0B,                          // remaining length 11
            0x8E,                          // session taken over
            0x09,                          // property length 9
            0x11, 0x00, 0x00, 0x00, 0x00,  // session expiry interval 0
            0x1C, 0x00, 0x01, 'x',         // server reference "x"
        };
        disconnect d;
        d.code = reason_code::session_taken_over;
        d.props.session_expiry_interval = 0;
        d.props.server_reference = "x";
        check_both_ways(b, d, v5);
    }
    SECTION("errors") {
        CHECK(decode_error({0xE0, 0x01, 0x01}, v5) == reason_code::malformed_packet);        // 0x01: not a DISCONNECT code
        CHECK(decode_error({0xE0, 0x02, 0x00, 0x01}, v5) == reason_code::malformed_packet);  // property length past end
        CHECK(decode_error({0xE0, 0x03, 0x00, 0x00, 0x00}, v5) == reason_code::malformed_packet);  // trailing byte
        CHECK(decode_error({0xE0, 0x04, 0x00, 0x02, 0x21, 0x00}, v5) == reason_code::protocol_error);  // receive max here
    }
}

TEST_CASE("AUTH", "[codec][auth]") {
    SECTION("3.1.1 has no AUTH") {
        CHECK(decode_error({0xF0, 0x00}, v311) == reason_code::malformed_packet);
        CHECK(decode_error({0xF0, 0x02, 0x18, 0x00}, v311) == reason_code::malformed_packet);
    }
    SECTION("remaining length 0: success") {
        check_both_ways(bytes{0xF0, 0x00}, auth{}, v5);
    }
    SECTION("reason code and properties") {
        const bytes b{
            0xF0,                                         // AUTH
            0x0F,                                         // remaining length 15
            0x18,                                         // continue authentication
            0x0D,                                         // property length 13
            0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M',    // authentication method
            0x16, 0x00, 0x02, 0x01, 0x02,                 // authentication data
        };
        auth a;
        a.code = reason_code::continue_authentication;
        a.props.authentication_method = "SCRAM";
        a.props.authentication_data = std::string("\x01\x02", 2);
        check_both_ways(b, a, v5);
    }
    SECTION("reason code without properties") {
        auth a;
        a.code = reason_code::reauthenticate;
        check_both_ways(bytes{0xF0, 0x02, 0x19, 0x00}, a, v5);  // the property length is always written
        CHECK(decode_as<auth>({0xF0, 0x01, 0x19}, v5) == a);     // but not required when reading
    }
    SECTION("errors") {
        CHECK(decode_error({0xF0, 0x02, 0x87, 0x00}, v5) == reason_code::malformed_packet);  // not an AUTH code
        CHECK(decode_error({0xF0, 0x04, 0x18, 0x02, 0x24, 0x01}, v5) == reason_code::protocol_error);  // maximum QoS
        CHECK(decode_error({0xF0, 0x06, 0x18, 0x04, 0x16, 0x00, 0x05, 0x01}, v5) == reason_code::malformed_packet);
    }
}

TEST_CASE("valid_utf8", "[codec][utf8]") {
    CHECK(valid_utf8(""));
    CHECK(valid_utf8("plain ascii that is longer than eight bytes"));
    CHECK(valid_utf8("\xC2\x80"));                  // U+0080
    CHECK(valid_utf8("\xDF\xBF"));                  // U+07FF
    CHECK(valid_utf8("\xE0\xA0\x80"));              // U+0800
    CHECK(valid_utf8("\xED\x9F\xBF"));              // U+D7FF
    CHECK(valid_utf8("\xEE\x80\x80"));              // U+E000
    CHECK(valid_utf8("\xEF\xBF\xBF"));              // U+FFFF (non-character, allowed)
    CHECK(valid_utf8("\xF0\x90\x80\x80"));          // U+10000
    CHECK(valid_utf8("\xF4\x8F\xBF\xBF"));          // U+10FFFF
    CHECK(valid_utf8("\x01\x1F\x7F"));              // control characters: allowed
    CHECK(valid_utf8("acme/dresden/pre\xC3\x9F" "e/line-2/\xE2\x82\xAC/temperature"));

    CHECK_FALSE(valid_utf8(std::string_view("\0", 1)));               // U+0000
    CHECK_FALSE(valid_utf8(std::string_view("abcdefgh\0ijklmnop", 17)));  // U+0000 inside an ASCII block
    CHECK_FALSE(valid_utf8("\x80"));                // lone continuation
    CHECK_FALSE(valid_utf8("\xC0\x80"));            // overlong U+0000
    CHECK_FALSE(valid_utf8("\xC1\xBF"));            // overlong
    CHECK_FALSE(valid_utf8("\xE0\x9F\xBF"));        // overlong
    CHECK_FALSE(valid_utf8("\xF0\x8F\xBF\xBF"));    // overlong
    CHECK_FALSE(valid_utf8("\xED\xA0\x80"));        // U+D800 surrogate
    CHECK_FALSE(valid_utf8("\xED\xBF\xBF"));        // U+DFFF surrogate
    CHECK_FALSE(valid_utf8("\xF4\x90\x80\x80"));    // U+110000
    CHECK_FALSE(valid_utf8("\xF5\x80\x80\x80"));
    CHECK_FALSE(valid_utf8("\xFF"));
    CHECK_FALSE(valid_utf8("\xC3"));                // truncated
    CHECK_FALSE(valid_utf8("\xE2\x82"));            // truncated
    CHECK_FALSE(valid_utf8("abcdefghijk\xE2\x82"));  // truncated after an ASCII block
    CHECK_FALSE(valid_utf8("\xE2\x28\xA1"));        // bad continuation
    CHECK_FALSE(valid_utf8("\xF0\x90\x28\xBC"));
}

TEST_CASE("valid_utf8 agrees with a simple decoder on all 1-3 byte sequences", "[codec][utf8]") {
    // Reference: decode by the book, then check range, overlong and surrogates.
    const auto reference = [](const unsigned char* s, std::size_t n) {
        std::size_t i = 0;
        while (i < n) {
            const unsigned c = s[i];
            std::size_t len;
            std::uint32_t cp;
            if (c < 0x80) { len = 1; cp = c; }
            else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
            else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
            else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
            else return false;
            if (i + len > n) return false;
            for (std::size_t k = 1; k < len; ++k) {
                if ((s[i + k] & 0xC0) != 0x80) return false;
                cp = cp << 6 | (s[i + k] & 0x3F);
            }
            static constexpr std::uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
            if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0) return false;
            i += len;
        }
        return true;
    };
    unsigned char buf[3];
    std::size_t mismatches = 0;
    for (unsigned a = 0; a < 256; ++a) {
        buf[0] = static_cast<unsigned char>(a);
        if (valid_utf8({reinterpret_cast<char*>(buf), 1}) != reference(buf, 1)) ++mismatches;
        for (unsigned b = 0; b < 256; ++b) {
            buf[1] = static_cast<unsigned char>(b);
            if (valid_utf8({reinterpret_cast<char*>(buf), 2}) != reference(buf, 2)) ++mismatches;
            for (unsigned c = 0; c < 256; ++c) {
                buf[2] = static_cast<unsigned char>(c);
                if (valid_utf8({reinterpret_cast<char*>(buf), 3}) != reference(buf, 3)) ++mismatches;
            }
        }
    }
    CHECK(mismatches == 0);
    // Four-byte sequences: every lead byte with a few continuation patterns.
    for (unsigned a = 0xF0; a < 0x100; ++a) {
        for (unsigned b : {0x80u, 0x8Fu, 0x90u, 0xBFu, 0xC0u}) {
            const unsigned char s[4] = {static_cast<unsigned char>(a), static_cast<unsigned char>(b), 0x80, 0xBF};
            CHECK(valid_utf8({reinterpret_cast<const char*>(s), 4}) == reference(s, 4));
        }
    }
}

TEST_CASE("to_string(reason_code)", "[codec][reason]") {
    CHECK(std::strcmp(to_string(reason_code::success), "success") == 0);
    CHECK(std::strcmp(to_string(reason_code::malformed_packet), "malformed_packet") == 0);
    CHECK(std::strcmp(to_string(reason_code::wildcard_subscriptions_not_supported),
                      "wildcard_subscriptions_not_supported") == 0);
    CHECK(std::strcmp(to_string(static_cast<reason_code>(0x05)), "unknown_reason_code") == 0);
}

TEST_CASE("reason codes as std::error_code", "[codec][reason]") {
    const std::error_code ec = reason_code::malformed_packet;  // implicit: is_error_code_enum
    CHECK(&ec.category() == &reason_category());
    CHECK(std::string_view(ec.category().name()) == "mqtt");
    CHECK(ec.message() == "malformed_packet");
    CHECK(make_error_code(reason_code::not_authorized).message() == "not_authorized");
    CHECK(make_error_code(reason_code::wildcard_subscriptions_not_supported).message() ==
          "wildcard_subscriptions_not_supported");
    CHECK(reason_category().message(0x05) == "unknown_reason_code");
    CHECK(reason_category().message(0x180) == "unknown_reason_code");  // not read as 0x80
    CHECK(reason_category().message(-1) == "unknown_reason_code");

    SECTION("the value round-trips") {
        for (auto rc : {reason_code::success, reason_code::granted_qos_2, reason_code::unspecified_error,
                        reason_code::packet_too_large, reason_code::wildcard_subscriptions_not_supported}) {
            const std::error_code e = rc;
            CHECK(e.value() == static_cast<int>(rc));
            CHECK(static_cast<reason_code>(e.value()) == rc);
        }
    }
    SECTION("comparison") {
        CHECK(ec == reason_code::malformed_packet);
        CHECK(ec != reason_code::protocol_error);
        CHECK(ec == make_error_code(reason_code::malformed_packet));
        // Same number, other category: not the same error.
        CHECK(ec != std::error_code(0x81, std::generic_category()));
        CHECK(std::error_code(0x81, std::generic_category()) != reason_code::malformed_packet);
    }
    SECTION("only success is a false error_code") {
        CHECK_FALSE(make_error_code(reason_code::success));
        CHECK(make_error_code(reason_code::granted_qos_1));  // not a failure, still true
        CHECK(ec);
    }
}

TEST_CASE("reason_allowed: each packet type's own list", "[codec][reason]") {
    CHECK(reason_allowed(packet_type::connack, reason_code::unsupported_protocol_version));
    CHECK_FALSE(reason_allowed(packet_type::disconnect, reason_code::unsupported_protocol_version));
    CHECK(reason_allowed(packet_type::disconnect, reason_code::protocol_error));
    CHECK(reason_allowed(packet_type::puback, reason_code::quota_exceeded));
    CHECK_FALSE(reason_allowed(packet_type::puback, reason_code::message_rate_too_high));
    CHECK_FALSE(reason_allowed(packet_type::connack, reason_code::session_taken_over));
}

TEST_CASE("type_of", "[codec]") {
    CHECK(type_of(connect{}) == packet_type::connect);
    CHECK(type_of(publish{}) == packet_type::publish);
    CHECK(type_of(pubrel{}) == packet_type::pubrel);
    CHECK(type_of(unsuback{}) == packet_type::unsuback);
    CHECK(type_of(auth{}) == packet_type::auth);
}
