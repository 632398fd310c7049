// SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK.
#include "helpers.hpp"

using namespace strata::mqtt;
using namespace strata::mqtt::test;

TEST_CASE("SUBSCRIBE 3.1.1", "[codec][subscribe]") {
    const bytes b{
        0x82,                        // SUBSCRIBE (flags 0010)
        0x0C,                        // remaining length 12
        0x00, 0x01,                  // packet identifier 1
        0x00, 0x03, 'a', '/', '#',   // filter "a/#"
        0x01,                        // options: QoS 1
        0x00, 0x01, 'b',             // filter "b"
        0x02,                        // options: QoS 2
    };
    subscribe s;
    s.packet_id = 1;
    s.subscriptions = {{"a/#", {1}}, {"b", {2}}};
    check_both_ways(b, s, v311);
}

TEST_CASE("SUBSCRIBE 5.0", "[codec][subscribe]") {
    const bytes b{
        0x82,                        // SUBSCRIBE
        0x12,                        // remaining length 18
        0x00, 0x02,                  // packet identifier 2
        0x09,                        // property length 9
        0x0B, 0x05,                  // subscription identifier 5
        0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',  // user property k=v
        0x00, 0x03, 's', '/', '+',   // filter "s/+"
        0x2D,                        // options: retain handling 2, retain as published, no local, QoS 1
    };
    subscribe s;
    s.packet_id = 2;
    s.props.subscription_identifiers = {5};
    s.props.user_properties = {{"k", "v"}};
    s.subscriptions = {{"s/+", {1, true, true, 2}}};
    check_both_ways(b, s, v5);
    // 3.1.1 drops the 5.0 options and properties
    CHECK(encode_bytes(s, v311) == bytes{0x82, 0x08, 0x00, 0x02, 0x00, 0x03, 's', '/', '+', 0x01});
}

TEST_CASE("SUBSCRIBE errors", "[codec][subscribe]") {
    SECTION("no topic filter is a protocol error") {
        CHECK(decode_error({0x82, 0x02, 0x00, 0x01}, v311) == reason_code::protocol_error);
        CHECK(decode_error({0x82, 0x03, 0x00, 0x01, 0x00}, v5) == reason_code::protocol_error);
    }
    SECTION("packet identifier 0") {
        CHECK(decode_error(pkt(0x82, bytes{0x00, 0x00} + str("a") + bytes{0x00}), v311) == reason_code::malformed_packet);
    }
    SECTION("3.1.1 options: upper six bits reserved") {
        for (std::uint8_t bit = 2; bit < 8; ++bit) {
            const std::uint8_t opts = static_cast<std::uint8_t>(1u << bit);
            INFO("options " << int(opts));
            CHECK(decode_error(pkt(0x82, bytes{0x00, 0x01} + str("a") + bytes{opts}), v311) ==
                  reason_code::malformed_packet);
        }
    }
    SECTION("QoS 3") {
        CHECK(decode_error(pkt(0x82, bytes{0x00, 0x01} + str("a") + bytes{0x03}), v311) == reason_code::malformed_packet);
        CHECK(decode_error(pkt(0x82, bytes{0x00, 0x01} + props({}) + str("a") + bytes{0x03}), v5) ==
              reason_code::malformed_packet);
    }
    SECTION("5.0 options: bits 6 and 7 reserved, retain handling 3") {
        const auto with = [](std::uint8_t opts) { return pkt(0x82, bytes{0x00, 0x01} + props({}) + str("a") + bytes{opts}); };
        CHECK(decode_error(with(0x40), v5) == reason_code::malformed_packet);
        CHECK(decode_error(with(0x80), v5) == reason_code::malformed_packet);
        CHECK(decode_error(with(0x30), v5) == reason_code::malformed_packet);  // retain handling 3
        CHECK(decode_as<subscribe>(with(0x2E), v5).subscriptions[0].options == subscribe_options{2, true, true, 2});
    }
    SECTION("filter without options byte") {
        CHECK(decode_error(pkt(0x82, bytes{0x00, 0x01} + str("a")), v311) == reason_code::malformed_packet);
    }
    SECTION("empty or non-UTF-8 filter") {
        CHECK(decode_error(pkt(0x82, bytes{0x00, 0x01} + str("") + bytes{0x00}), v311) == reason_code::malformed_packet);
        CHECK(decode_error(pkt(0x82, bytes{0x00, 0x01} + str("\xC3") + bytes{0x00}), v311) == reason_code::malformed_packet);
    }
    SECTION("subscription identifier: at most one, not 0") {
        const auto with = [](const bytes& p) { return pkt(0x82, bytes{0x00, 0x01} + props(p) + str("a") + bytes{0x00}); };
        CHECK(decode_error(with({0x0B, 0x01, 0x0B, 0x02}), v5) == reason_code::protocol_error);
        CHECK(decode_error(with({0x0B, 0x00}), v5) == reason_code::protocol_error);
        CHECK(decode_error(with({0x23, 0x00, 0x01}), v5) == reason_code::protocol_error);  // topic alias not allowed
        // the encoder writes only the first
        subscribe s;
        s.packet_id = 1;
        s.props.subscription_identifiers = {3, 4};
        s.subscriptions = {{"a", {}}};
        CHECK(decode_as<subscribe>(encode_bytes(s, v5), v5).props.subscription_identifiers ==
              std::vector<std::uint32_t>{3});
    }
}

TEST_CASE("SUBACK 3.1.1", "[codec][suback]") {
    const bytes b{
        0x90,          // SUBACK
        0x06,          // remaining length 6
        0x00, 0x01,    // packet identifier 1
        0x00,          // granted QoS 0
        0x01,          // granted QoS 1
        0x02,          // granted QoS 2
        0x80,          // failure
    };
    suback a;
    a.packet_id = 1;
    a.codes = {reason_code::success, reason_code::granted_qos_1, reason_code::granted_qos_2,
               reason_code::unspecified_error};
    check_both_ways(b, a, v311);
    CHECK(decode_error({0x90, 0x03, 0x00, 0x01, 0x03}, v311) == reason_code::malformed_packet);  // 3: no such code
    CHECK(decode_error({0x90, 0x03, 0x00, 0x01, 0x87}, v311) == reason_code::malformed_packet);  // 5.0 only
    CHECK(decode_error({0x90, 0x02, 0x00, 0x01}, v311) == reason_code::malformed_packet);        // no codes
    // any failure reason is 0x80 in 3.1.1
    suback f;
    f.packet_id = 2;
    f.codes = {reason_code::not_authorized, reason_code::topic_filter_invalid, reason_code::granted_qos_1};
    CHECK(encode_bytes(f, v311) == bytes{0x90, 0x05, 0x00, 0x02, 0x80, 0x80, 0x01});
}

TEST_CASE("SUBACK 5.0", "[codec][suback]") {
    const bytes b{
        0x90,          // SUBACK
        0x0B,          // remaining length 11
        0x00, 0x02,    // packet identifier 2
        0x06,          // property length 6
        0x1F, 0x00, 0x03, 'n', 'o', '!',  // reason string "no!"
        0x01,          // granted QoS 1
        0xA2,          // wildcard subscriptions not supported
    };
    suback a;
    a.packet_id = 2;
    a.props.reason_string = "no!";
    a.codes = {reason_code::granted_qos_1, reason_code::wildcard_subscriptions_not_supported};
    check_both_ways(b, a, v5);
    CHECK(decode_error({0x90, 0x04, 0x00, 0x02, 0x00, 0x11}, v5) == reason_code::malformed_packet);  // not a SUBACK code
    CHECK(decode_error({0x90, 0x03, 0x00, 0x02, 0x00}, v5) == reason_code::malformed_packet);        // no codes
}

TEST_CASE("UNSUBSCRIBE", "[codec][unsubscribe]") {
    const bytes b311{
        0xA2,                        // UNSUBSCRIBE (flags 0010)
        0x0A,                        // remaining length 10
        0x00, 0x03,                  // packet identifier 3
        0x00, 0x03, 'a', '/', '#',   // filter "a/#"
        0x00, 0x01, 'b',             // filter "b"
    };
    unsubscribe u;
    u.packet_id = 3;
    u.filters = {"a/#", "b"};
    check_both_ways(b311, u, v311);

    const bytes b5{
        0xA2,                        // UNSUBSCRIBE
        0x06,                        // remaining length 6
        0x00, 0x03,                  // packet identifier 3
        0x00,                        // property length 0
        0x00, 0x01, 'a',             // filter "a"
    };
    unsubscribe v;
    v.packet_id = 3;
    v.filters = {"a"};
    check_both_ways(b5, v, v5);

    CHECK(decode_error({0xA2, 0x02, 0x00, 0x03}, v311) == reason_code::protocol_error);         // no filter
    CHECK(decode_error({0xA2, 0x03, 0x00, 0x03, 0x00}, v5) == reason_code::protocol_error);     // no filter
    CHECK(decode_error(pkt(0xA2, bytes{0x00, 0x00} + str("a")), v311) == reason_code::malformed_packet);  // id 0
    CHECK(decode_error(pkt(0xA2, bytes{0x00, 0x03} + str("")), v311) == reason_code::malformed_packet);   // empty filter
    CHECK(decode_error(pkt(0xA2, bytes{0x00, 0x03} + str("a") + bytes{0x00}), v311) == reason_code::malformed_packet);
    CHECK(decode_error(pkt(0xA2, bytes{0x00, 0x03} + props({0x0B, 0x01}) + str("a")), v5) ==
          reason_code::protocol_error);  // subscription identifier not allowed
}

TEST_CASE("UNSUBACK", "[codec][unsuback]") {
    unsuback a;
    a.packet_id = 3;
    check_both_ways(bytes{0xB0, 0x02, 0x00, 0x03}, a, v311);  // UNSUBACK, length 2, id 3: nothing else in 3.1.1
    CHECK(decode_error({0xB0, 0x03, 0x00, 0x03, 0x00}, v311) == reason_code::malformed_packet);

    const bytes b5{
        0xB0,          // UNSUBACK
        0x05,          // remaining length 5
        0x00, 0x03,    // packet identifier 3
        0x00,          // property length 0
        0x00,          // success
        0x11,          // no subscription existed
    };
    unsuback b;
    b.packet_id = 3;
    b.codes = {reason_code::success, reason_code::no_subscription_existed};
    check_both_ways(b5, b, v5);
    CHECK(encode_bytes(b, v311) == bytes{0xB0, 0x02, 0x00, 0x03});
    CHECK(decode_error({0xB0, 0x04, 0x00, 0x03, 0x00, 0x01}, v5) == reason_code::malformed_packet);  // not an UNSUBACK code
    CHECK(decode_error({0xB0, 0x03, 0x00, 0x03, 0x00}, v5) == reason_code::malformed_packet);        // no codes
    CHECK(decode_error({0xB0, 0x02, 0x00, 0x03}, v5) == reason_code::malformed_packet);              // no property length
}
