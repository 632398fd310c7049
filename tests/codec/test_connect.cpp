// CONNECT and CONNACK, both versions, both directions, and their errors.
#include "helpers.hpp"

using namespace strata::mqtt;
using namespace strata::mqtt::test;

namespace {

// The CONNECT variable header up to the flags, for error tests.
bytes connect_start(std::uint8_t level, std::uint8_t flags) {
    return str("MQTT") + bytes{level, flags, 0x00, 0x3C};
}

}  // namespace

TEST_CASE("CONNECT 3.1.1 minimal", "[codec][connect]") {
    const bytes b{
        0x10,                     // CONNECT
        0x0E,                     // remaining length 14
        0x00, 0x04, 'M', 'Q', 'T', 'T',  // protocol name
        0x04,                     // protocol level 4 (3.1.1)
        0x02,                     // flags: clean session
        0x00, 0x3C,               // keep alive 60
        0x00, 0x02, 'c', '1',     // client identifier "c1"
    };
    connect c;
    c.version = protocol_version::v311;
    c.clean_start = true;
    c.keep_alive = 60;
    c.client_id = "c1";
    check_both_ways(b, c, v311);
    // A CONNECT carries its own level: decoding with the other version gives the same.
    CHECK(decode_as<connect>(b, v5) == c);
}

TEST_CASE("CONNECT 3.1.1 with will, user name and password", "[codec][connect]") {
    const bytes b{
        0x10,                     // CONNECT
        0x1F,                     // remaining length 31
        0x00, 0x04, 'M', 'Q', 'T', 'T',  // protocol name
        0x04,                     // level 4
        0xEE,                     // flags: user name, password, will retain, will QoS 1, will, clean
        0x00, 0x0A,               // keep alive 10
        0x00, 0x02, 'c', '1',     // client identifier
        0x00, 0x03, 'w', '/', 't',  // will topic
        0x00, 0x03, 'b', 'y', 'e',  // will payload
        0x00, 0x01, 'u',          // user name
        0x00, 0x02, 0xFF, 0x00,   // password (binary, not UTF-8 checked)
    };
    connect c;
    c.version = protocol_version::v311;
    c.keep_alive = 10;
    c.client_id = "c1";
    c.will = will_message{"w/t", "bye", 1, true, {}};
    c.username = "u";
    c.password = std::string("\xFF\x00", 2);
    check_both_ways(b, c, v311);
}

TEST_CASE("CONNECT 5.0 with properties and will properties", "[codec][connect]") {
    const bytes b{
        0x10,                     // CONNECT
        0x2D,                     // remaining length 45
        0x00, 0x04, 'M', 'Q', 'T', 'T',  // protocol name
        0x05,                     // level 5
        0x06,                     // flags: will (QoS 0), clean start
        0x00, 0x0A,               // keep alive 10
        0x0F,                     // property length 15
        0x11, 0x00, 0x00, 0x00, 0x78,  // session expiry interval 120
        0x21, 0x00, 0x14,         // receive maximum 20
        0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',  // user property k=v
        0x00, 0x02, 'c', '5',     // client identifier
        0x07,                     // will property length 7
        0x01, 0x01,               // payload format indicator 1 (UTF-8)
        0x18, 0x00, 0x00, 0x00, 0x05,  // will delay interval 5
        0x00, 0x01, 'w',          // will topic
        0x00, 0x02, 'h', 'i',     // will payload
    };
    connect c;
    c.version = protocol_version::v5;
    c.keep_alive = 10;
    c.client_id = "c5";
    c.props.session_expiry_interval = 120;
    c.props.receive_maximum = 20;
    c.props.user_properties = {{"k", "v"}};
    will_message w;
    w.topic = "w";
    w.payload = "hi";
    w.props.payload_format_indicator = 1;
    w.props.will_delay_interval = 5;
    c.will = w;
    check_both_ways(b, c, v5);
    CHECK(decode_as<connect>(b, v311) == c);
}

TEST_CASE("CONNECT 3.1.1 bridge flag (protocol level 0x84)", "[codec][connect]") {
    const bytes b{
        0x10,                     // CONNECT
        0x0E,                     // remaining length 14
        0x00, 0x04, 'M', 'Q', 'T', 'T',  // protocol name
        0x84,                     // protocol level 4 with the bridge bit (0x80)
        0x00,                     // flags: clean session 0
        0x00, 0x3C,               // keep alive 60
        0x00, 0x02, 'b', '1',     // client identifier "b1"
    };
    connect c;
    c.version = protocol_version::v311;
    c.bridge = true;
    c.clean_start = false;
    c.keep_alive = 60;
    c.client_id = "b1";
    check_both_ways(b, c, v311);
    CHECK(decode_as<connect>(b, v5) == c);
    // Without the bridge bit the same packet is a plain client.
    bytes plain = b;
    plain[8] = 0x04;
    CHECK_FALSE(decode_as<connect>(plain, v311).bridge);
}

TEST_CASE("CONNECT bridge flag only on 3.1.1", "[codec][connect]") {
    const auto body = [](std::uint8_t level) {
        return pkt(0x10, str("MQTT") + bytes{level, 0x02, 0x00, 0x3C} + (level == 5 ? props({}) : bytes{}) + str("c"));
    };
    // 0x85 is not a bridge marker any implementation sends (Mosquitto's
    // bridges set the bit for 3.1 and 3.1.1 only).
    CHECK(decode_error(body(0x85), v5) == reason_code::unsupported_protocol_version);
    CHECK(decode_error(body(0x83), v311) == reason_code::unsupported_protocol_version);  // 3.1
    CHECK(decode_error(body(0x80), v311) == reason_code::unsupported_protocol_version);
    CHECK(decode_error(body(0xC4), v311) == reason_code::unsupported_protocol_version);
    // The encoder writes the marker for 3.1.1 only: a 5.0 CONNECT stays level 5.
    connect c;
    c.version = protocol_version::v5;
    c.bridge = true;
    c.client_id = "c";
    const bytes out = encode_bytes(packet{c}, v5);
    REQUIRE(out.size() > 8);
    CHECK(out[8] == 0x05);
    CHECK_FALSE(decode_as<connect>(out, v5).bridge);
}

TEST_CASE("CONNECT protocol name and level", "[codec][connect]") {
    const auto body = [](std::string_view name, std::uint8_t level) {
        return pkt(0x10, str(name) + bytes{level, 0x02, 0x00, 0x3C} + str("c"));
    };
    CHECK(decode_as<connect>(body("MQTT", 4), v5).version == protocol_version::v311);
    CHECK(decode_error(body("MQIsdp", 3), v311) == reason_code::unsupported_protocol_version);
    CHECK(decode_error(body("MQTT", 3), v311) == reason_code::unsupported_protocol_version);
    CHECK(decode_error(body("MQTT", 6), v5) == reason_code::unsupported_protocol_version);
    CHECK(decode_error(body("MQTT", 0), v5) == reason_code::unsupported_protocol_version);
    CHECK(decode_error(body("MQTX", 4), v311) == reason_code::malformed_packet);
    CHECK(decode_error(body("mqtt", 4), v311) == reason_code::malformed_packet);
    CHECK(decode_error(body("", 4), v311) == reason_code::malformed_packet);
}

TEST_CASE("CONNECT flags", "[codec][connect]") {
    SECTION("reserved bit 0 set") {
        CHECK(decode_error(pkt(0x10, connect_start(4, 0x03) + str("c")), v311) == reason_code::malformed_packet);
        CHECK(decode_error(pkt(0x10, connect_start(5, 0x03) + props({}) + str("c")), v5) ==
              reason_code::malformed_packet);
    }
    SECTION("will QoS 3") {
        // 0x1E: will QoS 3, will, clean
        CHECK(decode_error(pkt(0x10, connect_start(4, 0x1E) + str("c") + str("t") + str("p")), v311) ==
              reason_code::malformed_packet);
    }
    SECTION("will QoS without will flag") {
        // 0x0A: will QoS 1, no will flag
        CHECK(decode_error(pkt(0x10, connect_start(4, 0x0A) + str("c")), v311) == reason_code::malformed_packet);
    }
    SECTION("will retain without will flag") {
        // 0x22: will retain, no will flag
        CHECK(decode_error(pkt(0x10, connect_start(4, 0x22) + str("c")), v311) == reason_code::malformed_packet);
        CHECK(decode_error(pkt(0x10, connect_start(5, 0x22) + props({}) + str("c")), v5) ==
              reason_code::malformed_packet);
    }
    SECTION("password without user name: malformed in 3.1.1, allowed in 5.0") {
        // 0x42: password, clean
        CHECK(decode_error(pkt(0x10, connect_start(4, 0x42) + str("c") + str("pw")), v311) ==
              reason_code::malformed_packet);
        const connect c = decode_as<connect>(pkt(0x10, connect_start(5, 0x42) + props({}) + str("c") + str("pw")), v5);
        CHECK(!c.username);
        CHECK(c.password == "pw");
    }
    SECTION("user name flag but no user name") {
        CHECK(decode_error(pkt(0x10, connect_start(4, 0x82) + str("c")), v311) == reason_code::malformed_packet);
    }
}

TEST_CASE("CONNECT strings must be valid UTF-8", "[codec][connect]") {
    const auto with_client_id = [](std::string_view id) { return pkt(0x10, connect_start(4, 0x02) + str(id)); };
    CHECK(decode_as<connect>(with_client_id("caf\xC3\xA9"), v311).client_id == "caf\xC3\xA9");
    CHECK(decode_error(with_client_id(std::string_view("a\0b", 3)), v311) == reason_code::malformed_packet);  // U+0000
    CHECK(decode_error(with_client_id("\xED\xA0\x80"), v311) == reason_code::malformed_packet);  // surrogate
    CHECK(decode_error(with_client_id("\xC0\xAF"), v311) == reason_code::malformed_packet);      // overlong '/'
    CHECK(decode_error(with_client_id("\xFF"), v311) == reason_code::malformed_packet);
    // user name is UTF-8 checked
    CHECK(decode_error(pkt(0x10, connect_start(4, 0x82) + str("c") + str("\xC3")), v311) ==
          reason_code::malformed_packet);
    // will topic is UTF-8 checked, will payload is not
    CHECK(decode_error(pkt(0x10, connect_start(4, 0x06) + str("c") + str("\xC3") + str("p")), v311) ==
          reason_code::malformed_packet);
    CHECK(decode_as<connect>(pkt(0x10, connect_start(4, 0x06) + str("c") + str("t") + str("\xFF")), v311)
              .will->payload == "\xFF");
    // password is binary
    CHECK(decode_as<connect>(pkt(0x10, connect_start(4, 0xC2) + str("c") + str("u") + str(std::string_view("\0\xFF", 2))), v311)
              .password == std::string("\0\xFF", 2));
}

TEST_CASE("CONNECT will payload format indicator", "[codec][connect]") {
    // will properties: payload format indicator 1
    const bytes will_props = props({0x01, 0x01});
    const auto with_payload = [&](std::string_view payload) {
        return pkt(0x10, connect_start(5, 0x06) + props({}) + str("c") + will_props + str("t") + str(payload));
    };
    CHECK(decode_as<connect>(with_payload("ok \xE2\x82\xAC"), v5).will->payload == "ok \xE2\x82\xAC");
    CHECK(decode_error(with_payload("\xC3\x28"), v5) == reason_code::payload_format_invalid);
    // indicator 0: anything goes
    CHECK(decode_as<connect>(pkt(0x10, connect_start(5, 0x06) + props({}) + str("c") + props({0x01, 0x00}) +
                                           str("t") + str("\xC3\x28")),
                             v5)
              .will->payload == "\xC3\x28");
}

TEST_CASE("CONNECT empty will topic is malformed", "[codec][connect]") {
    CHECK(decode_error(pkt(0x10, connect_start(4, 0x06) + str("c") + str("") + str("p")), v311) ==
          reason_code::malformed_packet);
}

TEST_CASE("CONNECT property rules", "[codec][connect][properties]") {
    const auto with = [](const bytes& p) { return pkt(0x10, connect_start(5, 0x02) + props(p) + str("c")); };
    CHECK(decode_error(with({0x21, 0x00, 0x00}), v5) == reason_code::protocol_error);  // receive maximum 0
    CHECK(decode_error(with({0x27, 0x00, 0x00, 0x00, 0x00}), v5) == reason_code::protocol_error);  // max packet size 0
    CHECK(decode_error(with({0x17, 0x02}), v5) == reason_code::protocol_error);  // request problem information 2
    CHECK(decode_error(with({0x19, 0x02}), v5) == reason_code::protocol_error);  // request response information 2
    CHECK(decode_error(with({0x23, 0x00, 0x01}), v5) == reason_code::protocol_error);  // topic alias: PUBLISH only
    CHECK(decode_error(with({0x18, 0x00, 0x00, 0x00, 0x01}), v5) == reason_code::protocol_error);  // will delay outside will
    CHECK(decode_error(with({0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2}), v5) == reason_code::protocol_error);  // duplicate
    CHECK(decode_error(with({0x15, 0x00, 0x01, 'a', 0x15, 0x00, 0x01, 'b'}), v5) == reason_code::protocol_error);
    // will properties: session expiry is not a will property
    CHECK(decode_error(pkt(0x10, connect_start(5, 0x06) + props({}) + str("c") + props({0x11, 0, 0, 0, 1}) + str("t") +
                                     str("p")),
                       v5) == reason_code::protocol_error);
    // authentication data is binary, method UTF-8
    CHECK(decode_as<connect>(with({0x15, 0x00, 0x01, 'm', 0x16, 0x00, 0x01, 0xFF}), v5).props.authentication_data ==
          "\xFF");
    CHECK(decode_error(with({0x15, 0x00, 0x01, 0xFF}), v5) == reason_code::malformed_packet);
}

TEST_CASE("CONNECT authentication data needs an authentication method", "[codec][connect][properties]") {
    // [MQTT-3.1.2-?] 3.1.2.11.10: "It is a Protocol Error to include
    // Authentication Data if there is no Authentication Method".
    const bytes b{
        0x10,                     // CONNECT
        0x12,                     // remaining length 18
        0x00, 0x04, 'M', 'Q', 'T', 'T',  // protocol name
        0x05,                     // level 5
        0x02,                     // flags: clean start
        0x00, 0x3C,               // keep alive 60
        0x04,                     // property length 4
        0x16, 0x00, 0x01, 0xFF,   // authentication data, no authentication method
        0x00, 0x01, 'c',          // client identifier
    };
    CHECK(decode_error(b, v5) == reason_code::protocol_error);
    check_prefixes(b, v5);
    // the method alone is fine (SCRAM's first step may carry data or not)
    const auto c = decode_as<connect>(
        pkt(0x10, connect_start(5, 0x02) + props({0x15, 0x00, 0x01, 'm'}) + str("c")), v5);
    CHECK(c.props.authentication_method == "m");
    CHECK_FALSE(c.props.authentication_data);
    // the order of the two properties does not matter
    CHECK(decode_as<connect>(pkt(0x10, connect_start(5, 0x02) +
                                           props({0x16, 0x00, 0x01, 0xFF, 0x15, 0x00, 0x01, 'm'}) + str("c")),
                             v5)
              .props.authentication_method == "m");
    // nor in CONNACK and AUTH
    CHECK(decode_error(pkt(0x20, bytes{0x00, 0x00} + props({0x16, 0x00, 0x01, 'x'})), v5) ==
          reason_code::protocol_error);
    CHECK(decode_error(pkt(0xF0, bytes{0x18} + props({0x16, 0x00, 0x01, 'x'})), v5) == reason_code::protocol_error);
}

TEST_CASE("CONNECT will response topic must not hold wildcards or be empty", "[codec][connect][properties]") {
    // 3.1.3.2.5: the Response Topic is a topic name: no '+' or '#' [MQTT-3.3.2-14].
    const auto with_will_props = [](const bytes& p) {
        return pkt(0x10, connect_start(5, 0x06) + props({}) + str("c") + props(p) + str("w") + str("x"));
    };
    CHECK(decode_as<connect>(with_will_props({0x08, 0x00, 0x03, 'r', '/', 'x'}), v5).will->props.response_topic ==
          "r/x");
    CHECK(decode_error(with_will_props({0x08, 0x00, 0x03, 'r', '/', '+'}), v5) == reason_code::malformed_packet);
    CHECK(decode_error(with_will_props({0x08, 0x00, 0x03, 'r', '/', '#'}), v5) == reason_code::malformed_packet);
    // nor empty: a topic name has at least one character [MQTT-4.7.3-1]
    CHECK(decode_error(with_will_props({0x08, 0x00, 0x00}), v5) == reason_code::malformed_packet);
}

TEST_CASE("CONNECT trailing or missing bytes", "[codec][connect]") {
    CHECK(decode_error(pkt(0x10, connect_start(4, 0x02) + str("c") + bytes{0x00}), v311) == reason_code::malformed_packet);
    CHECK(decode_error(pkt(0x10, connect_start(4, 0x02)), v311) == reason_code::malformed_packet);
    // client id length runs past the packet
    CHECK(decode_error(pkt(0x10, connect_start(4, 0x02) + bytes{0x00, 0x05, 'a'}), v311) == reason_code::malformed_packet);
    // 5.0 without the property length
    CHECK(decode_error(pkt(0x10, connect_start(5, 0x02)), v5) == reason_code::malformed_packet);
}

TEST_CASE("CONNACK 3.1.1", "[codec][connack]") {
    const bytes b{
        0x20,        // CONNACK
        0x02,        // remaining length 2
        0x01,        // acknowledge flags: session present
        0x00,        // return code 0: accepted
    };
    connack a;
    a.session_present = true;
    check_both_ways(b, a, v311);

    const std::pair<std::uint8_t, reason_code> codes[] = {
        {0, reason_code::success},
        {1, reason_code::unsupported_protocol_version},
        {2, reason_code::client_identifier_not_valid},
        {3, reason_code::server_unavailable},
        {4, reason_code::bad_user_name_or_password},
        {5, reason_code::not_authorized},
    };
    for (const auto& [byte, code] : codes) {
        connack c;
        c.code = code;
        check_both_ways(bytes{0x20, 0x02, 0x00, byte}, c, v311);
    }
    CHECK(decode_error({0x20, 0x02, 0x00, 0x06}, v311) == reason_code::malformed_packet);  // return code 6
    CHECK(decode_error({0x20, 0x02, 0x02, 0x00}, v311) == reason_code::malformed_packet);  // reserved flag bit 1
    CHECK(decode_error({0x20, 0x02, 0x80, 0x00}, v311) == reason_code::malformed_packet);  // reserved flag bit 7
    CHECK(decode_error({0x20, 0x03, 0x00, 0x00, 0x00}, v311) == reason_code::malformed_packet);  // too long
}

TEST_CASE("CONNACK 5.0-only reasons map to the closest 3.1.1 return code", "[codec][connack]") {
    const std::pair<reason_code, std::uint8_t> map[] = {
        {reason_code::success, 0},
        {reason_code::unsupported_protocol_version, 1},
        {reason_code::client_identifier_not_valid, 2},
        {reason_code::server_unavailable, 3},
        {reason_code::server_busy, 3},
        {reason_code::use_another_server, 3},
        {reason_code::server_moved, 3},
        {reason_code::quota_exceeded, 3},
        {reason_code::connection_rate_exceeded, 3},
        {reason_code::unspecified_error, 3},
        {reason_code::bad_user_name_or_password, 4},
        {reason_code::bad_authentication_method, 4},
        {reason_code::not_authorized, 5},
        {reason_code::banned, 5},
    };
    for (const auto& [code, byte] : map) {
        INFO(to_string(code));
        connack c;
        c.code = code;
        CHECK(encode_bytes(c, v311) == bytes{0x20, 0x02, 0x00, byte});
    }
}

TEST_CASE("CONNACK 5.0 with properties", "[codec][connack]") {
    const bytes b{
        0x20,        // CONNACK
        0x11,        // remaining length 17
        0x00,        // acknowledge flags
        0x00,        // reason code success
        0x0E,        // property length 14
        0x12, 0x00, 0x03, 'a', 'b', 'c',  // assigned client identifier "abc"
        0x21, 0x00, 0x0A,                 // receive maximum 10
        0x22, 0x00, 0x05,                 // topic alias maximum 5
        0x24, 0x01,                       // maximum QoS 1
    };
    connack a;
    a.props.assigned_client_identifier = "abc";
    a.props.receive_maximum = 10;
    a.props.topic_alias_maximum = 5;
    a.props.maximum_qos = 1;
    check_both_ways(b, a, v5);

    // 0x20 0x03 0x00 0x86 0x00: bad user name or password, no properties
    connack r;
    r.code = reason_code::bad_user_name_or_password;
    check_both_ways({0x20, 0x03, 0x00, 0x86, 0x00}, r, v5);

    CHECK(decode_error({0x20, 0x02, 0x00, 0x00}, v5) == reason_code::malformed_packet);  // no property length
    CHECK(decode_error({0x20, 0x03, 0x00, 0x10, 0x00}, v5) == reason_code::malformed_packet);  // 0x10 not a CONNACK code
    CHECK(decode_error({0x20, 0x03, 0x04, 0x00, 0x00}, v5) == reason_code::malformed_packet);  // reserved flag
}

TEST_CASE("CONNACK property rules", "[codec][connack][properties]") {
    const auto with = [](const bytes& p) { return pkt(0x20, bytes{0x00, 0x00} + props(p)); };
    CHECK(decode_error(with({0x24, 0x02}), v5) == reason_code::protocol_error);  // maximum QoS 2
    CHECK(decode_error(with({0x25, 0x02}), v5) == reason_code::protocol_error);  // retain available 2
    CHECK(decode_error(with({0x28, 0x02}), v5) == reason_code::protocol_error);  // wildcard subscription available 2
    CHECK(decode_error(with({0x29, 0x02}), v5) == reason_code::protocol_error);  // subscription ids available 2
    CHECK(decode_error(with({0x2A, 0x02}), v5) == reason_code::protocol_error);  // shared subscription available 2
    CHECK(decode_error(with({0x21, 0x00, 0x00}), v5) == reason_code::protocol_error);  // receive maximum 0
    CHECK(decode_error(with({0x27, 0, 0, 0, 0}), v5) == reason_code::protocol_error);  // maximum packet size 0
    CHECK(decode_error(with({0x17, 0x01}), v5) == reason_code::protocol_error);  // request problem info: CONNECT only
    CHECK(decode_error(with({0x01, 0x01}), v5) == reason_code::protocol_error);  // payload format: PUBLISH/will only
    CHECK(decode_error(with({0x24, 0x00, 0x24, 0x00}), v5) == reason_code::protocol_error);  // duplicate
    CHECK(decode_as<connack>(with({0x24, 0x00, 0x25, 0x01, 0x28, 0x00, 0x29, 0x01, 0x2A, 0x00}), v5).props.maximum_qos == 0);
}
