// PUBLISH and its acknowledgements; property rules tested on PUBLISH.
#include "helpers.hpp"

using namespace strata::mqtt;
using namespace strata::mqtt::test;

TEST_CASE("PUBLISH 3.1.1 QoS 0", "[codec][publish]") {
    const bytes b{
        0x30,                          // PUBLISH, QoS 0
        0x07,                          // remaining length 7
        0x00, 0x03, 'a', '/', 'b',     // topic "a/b"
        'h', 'i',                      // payload
    };
    publish p;
    p.topic = "a/b";
    p.payload = "hi";
    check_both_ways(b, p, v311);
    check_both_ways(bytes{0x30, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x00, 'h', 'i'}, p, v5);  // 5.0: + property length 0
}

TEST_CASE("PUBLISH 3.1.1 QoS 1, retain, dup", "[codec][publish]") {
    const bytes b{
        0x3B,                          // PUBLISH, DUP, QoS 1, RETAIN
        0x08,                          // remaining length 8
        0x00, 0x03, 'a', '/', 'b',     // topic
        0x00, 0x0A,                    // packet identifier 10
        'x',                           // payload
    };
    publish p;
    p.topic = "a/b";
    p.payload = "x";
    p.qos = 1;
    p.retain = true;
    p.dup = true;
    p.packet_id = 10;
    check_both_ways(b, p, v311);
}

TEST_CASE("PUBLISH 3.1.1 QoS 2, empty payload", "[codec][publish]") {
    const bytes b{
        0x34,                          // PUBLISH, QoS 2
        0x05,                          // remaining length 5
        0x00, 0x01, 't',               // topic "t"
        0xFF, 0xFF,                    // packet identifier 65535
    };
    publish p;
    p.topic = "t";
    p.qos = 2;
    p.packet_id = 65535;
    check_both_ways(b, p, v311);
}

TEST_CASE("PUBLISH 5.0 with properties", "[codec][publish]") {
    const bytes b{
        0x32,                          // PUBLISH, QoS 1
        0x1C,                          // remaining length 28
        0x00, 0x01, 't',               // topic "t"
        0x12, 0x34,                    // packet identifier 0x1234
        0x14,                          // property length 20
        0x01, 0x01,                    // payload format indicator 1
        0x02, 0x00, 0x00, 0x00, 0x3C,  // message expiry interval 60
        0x0B, 0x81, 0x01,              // subscription identifier 129 (varint)
        0x23, 0x00, 0x07,              // topic alias 7
        0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b',  // user property a=b
        'o', 'k',                      // payload
    };
    publish p;
    p.topic = "t";
    p.qos = 1;
    p.packet_id = 0x1234;
    p.payload = "ok";
    p.props.payload_format_indicator = 1;
    p.props.message_expiry_interval = 60;
    p.props.subscription_identifiers = {129};
    p.props.topic_alias = 7;
    p.props.user_properties = {{"a", "b"}};
    check_both_ways(b, p, v5);
    // Encoded for 3.1.1 the properties are dropped.
    const bytes b311{0x32, 0x07, 0x00, 0x01, 't', 0x12, 0x34, 'o', 'k'};
    CHECK(encode_bytes(p, v311) == b311);
}

TEST_CASE("PUBLISH topic rules", "[codec][publish]") {
    SECTION("3.1.1 empty topic is malformed") {
        CHECK(decode_error(pkt(0x30, str("") + bytes{'x'}), v311) == reason_code::malformed_packet);
    }
    SECTION("5.0 empty topic without topic alias is a protocol error") {
        CHECK(decode_error(pkt(0x30, str("") + props({}) + bytes{'x'}), v5) == reason_code::protocol_error);
    }
    SECTION("5.0 empty topic with a topic alias") {
        const bytes b{
            0x30,                // PUBLISH QoS 0
            0x07,                // remaining length 7
            0x00, 0x00,          // empty topic
            0x03,                // property length 3
            0x23, 0x00, 0x02,    // topic alias 2
            'x',                 // payload
        };
        publish p;
        p.payload = "x";
        p.props.topic_alias = 2;
        check_both_ways(b, p, v5);
    }
    SECTION("topic alias 0") {
        CHECK(decode_error(pkt(0x30, str("t") + props({0x23, 0x00, 0x00})), v5) == reason_code::topic_alias_invalid);
    }
    SECTION("topic must be UTF-8") {
        CHECK(decode_error(pkt(0x30, str("a\xC3")), v311) == reason_code::malformed_packet);
        CHECK(decode_error(pkt(0x30, str(std::string_view("a\0", 2))), v311) == reason_code::malformed_packet);
        CHECK(decode_error(pkt(0x30, str("\xF4\x90\x80\x80") + props({})), v5) == reason_code::malformed_packet);
    }
    SECTION("wildcards in a topic name are not the codec's business") {
        CHECK(decode_as<publish>(pkt(0x30, str("a/+/#")), v311).topic == "a/+/#");
    }
    SECTION("topic length beyond the packet") {
        CHECK(decode_error(pkt(0x30, bytes{0x00, 0x09, 'a'}), v311) == reason_code::malformed_packet);
        CHECK(decode_error(pkt(0x30, bytes{0x00}), v311) == reason_code::malformed_packet);
        CHECK(decode_error(pkt(0x30, bytes{}), v311) == reason_code::malformed_packet);
    }
}

TEST_CASE("PUBLISH response topic must not hold wildcards or be empty", "[codec][publish][properties]") {
    // [MQTT-3.3.2-14]: "The Response Topic MUST NOT contain wildcard characters".
    const bytes b{
        0x30,                     // PUBLISH QoS 0
        0x0B,                     // remaining length 11
        0x00, 0x01, 't',          // topic "t"
        0x06,                     // property length 6
        0x08, 0x00, 0x03, 'r', '/', '#',  // response topic "r/#"
        'x',                      // payload
    };
    CHECK(decode_error(b, v5) == reason_code::malformed_packet);
    check_prefixes(b, v5);
    CHECK(decode_error(pkt(0x30, str("t") + props({0x08, 0x00, 0x03, 'a', '+', 'b'})), v5) ==
          reason_code::malformed_packet);
    CHECK(decode_error(pkt(0x30, str("t") + props({0x08, 0x00, 0x01, '+'})), v5) == reason_code::malformed_packet);
    CHECK(decode_error(pkt(0x30, str("t") + props({0x08, 0x00, 0x00})), v5) == reason_code::malformed_packet);
    CHECK(decode_as<publish>(pkt(0x30, str("t") + props({0x08, 0x00, 0x03, 'r', '/', 'x'})), v5).props.response_topic ==
          "r/x");
}

TEST_CASE("PUBLISH packet identifier", "[codec][publish]") {
    CHECK(decode_error(pkt(0x32, str("t") + bytes{0x00, 0x00}), v311) == reason_code::malformed_packet);  // id 0
    CHECK(decode_error(pkt(0x34, str("t") + bytes{0x00, 0x00} + props({})), v5) == reason_code::malformed_packet);
    CHECK(decode_error(pkt(0x32, str("t") + bytes{0x01}), v311) == reason_code::malformed_packet);  // half an id
    // QoS 0: no packet identifier; the two bytes are payload
    const publish p = decode_as<publish>(pkt(0x30, str("t") + bytes{0x00, 0x00}), v311);
    CHECK(p.packet_id == 0);
    CHECK(p.payload == std::string("\0\0", 2));
}

TEST_CASE("PUBLISH payload format indicator", "[codec][publish][properties]") {
    const auto with = [](std::uint8_t indicator, std::string_view payload) {
        bytes b = str("t") + props({0x01, indicator});
        b.insert(b.end(), payload.begin(), payload.end());
        return pkt(0x30, b);
    };
    CHECK(decode_as<publish>(with(1, "\xE2\x82\xAC 5"), v5).payload == "\xE2\x82\xAC 5");
    CHECK(decode_as<publish>(with(1, std::string_view("a\0b", 3)), v5).payload.size() == 3);  // U+0000 is well-formed
    CHECK(decode_error(with(1, "\xE2\x82"), v5) == reason_code::payload_format_invalid);
    CHECK(decode_error(with(1, "\xED\xBF\xBF"), v5) == reason_code::payload_format_invalid);  // surrogate
    CHECK(decode_as<publish>(with(0, "\xE2\x82"), v5).payload == "\xE2\x82");
    CHECK(decode_error(with(2, "x"), v5) == reason_code::protocol_error);
}

TEST_CASE("properties: identifiers, duplicates, repetition, lengths", "[codec][properties]") {
    const auto with = [](const bytes& p) { return pkt(0x30, str("t") + props(p) + bytes{'x'}); };
    SECTION("unknown identifier is malformed") {
        CHECK(decode_error(with({0x05, 0x00}), v5) == reason_code::malformed_packet);
        CHECK(decode_error(with({0x00}), v5) == reason_code::malformed_packet);
        CHECK(decode_error(with({0x2B, 0x00}), v5) == reason_code::malformed_packet);
        CHECK(decode_error(with({0x80, 0x01}), v5) == reason_code::malformed_packet);
    }
    SECTION("known property on the wrong packet is a protocol error") {
        CHECK(decode_error(with({0x11, 0, 0, 0, 1}), v5) == reason_code::protocol_error);  // session expiry
        CHECK(decode_error(with({0x1F, 0x00, 0x00}), v5) == reason_code::protocol_error);  // reason string
        CHECK(decode_error(with({0x18, 0, 0, 0, 1}), v5) == reason_code::protocol_error);  // will delay
    }
    SECTION("a single-valued property twice is a protocol error") {
        CHECK(decode_error(with({0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1}), v5) == reason_code::protocol_error);
        CHECK(decode_error(with({0x03, 0x00, 0x00, 0x03, 0x00, 0x00}), v5) == reason_code::protocol_error);
        CHECK(decode_error(with({0x23, 0x00, 0x01, 0x23, 0x00, 0x01}), v5) == reason_code::protocol_error);
        CHECK(decode_error(with({0x09, 0x00, 0x00, 0x09, 0x00, 0x00}), v5) == reason_code::protocol_error);
    }
    SECTION("user properties repeat and keep their order") {
        const publish p = decode_as<publish>(
            with({0x26, 0x00, 0x01, 'b', 0x00, 0x00,        // b=""
                  0x26, 0x00, 0x01, 'a', 0x00, 0x01, '1',   // a=1
                  0x26, 0x00, 0x01, 'b', 0x00, 0x01, '2'}), // b=2
            v5);
        const std::vector<user_property> expected{{"b", ""}, {"a", "1"}, {"b", "2"}};
        CHECK(p.props.user_properties == expected);
        CHECK(decode_as<publish>(encode_bytes(p, v5), v5) == p);
    }
    SECTION("user property strings are UTF-8 checked") {
        CHECK(decode_error(with({0x26, 0x00, 0x01, 0xC0, 0x00, 0x00}), v5) == reason_code::malformed_packet);
        CHECK(decode_error(with({0x26, 0x00, 0x00, 0x00, 0x01, 0xFF}), v5) == reason_code::malformed_packet);
    }
    SECTION("subscription identifiers repeat in PUBLISH") {
        const publish p = decode_as<publish>(with({0x0B, 0x01, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F, 0x0B, 0x02}), v5);
        CHECK(p.props.subscription_identifiers == std::vector<std::uint32_t>{1, 268'435'455, 2});
    }
    SECTION("subscription identifier 0 is a protocol error") {
        CHECK(decode_error(with({0x0B, 0x00}), v5) == reason_code::protocol_error);
    }
    SECTION("subscription identifier varint too long or not minimal") {
        CHECK(decode_error(with({0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}), v5) == reason_code::malformed_packet);
        CHECK(decode_error(with({0x0B, 0x81, 0x00}), v5) == reason_code::malformed_packet);
    }
    SECTION("property length larger than the rest of the packet") {
        CHECK(decode_error(pkt(0x30, str("t") + bytes{0x05, 0x01, 0x01}), v5) == reason_code::malformed_packet);
        CHECK(decode_error(pkt(0x30, str("t") + bytes{0xFF, 0xFF, 0xFF, 0x7F}), v5) == reason_code::malformed_packet);
    }
    SECTION("a property value running past the property length") {
        // property length 3 but message expiry needs 5: the payload is not read as property
        CHECK(decode_error(pkt(0x30, str("t") + bytes{0x03, 0x02, 0x00, 0x00, 0x00, 0x01}), v5) ==
              reason_code::malformed_packet);
        // a string property whose length runs past the property length
        CHECK(decode_error(pkt(0x30, str("t") + bytes{0x03, 0x03, 0x00, 0x02, 'a', 'b'}), v5) ==
              reason_code::malformed_packet);
    }
    SECTION("missing property length in 5.0") {
        CHECK(decode_error(pkt(0x30, str("t")), v5) == reason_code::malformed_packet);
    }
}

TEST_CASE("PUBLISH decoded into a packet that already holds a PUBLISH", "[codec][publish]") {
    packet out;
    publish first;
    first.topic = "first/topic/with/a/long/name";
    first.payload = std::string(100, 'p');
    first.props.user_properties = {{"k", "v"}};
    first.props.topic_alias = 4;
    const bytes b1 = encode_bytes(first, v5);
    REQUIRE(decode_bytes(b1, v5, out).status == decode_status::ok);
    CHECK(std::get<publish>(out) == first);
    publish second;
    second.topic = "s";
    second.qos = 1;
    second.packet_id = 9;
    const bytes b2 = encode_bytes(second, v5);
    REQUIRE(decode_bytes(b2, v5, out).status == decode_status::ok);
    CHECK(std::get<publish>(out) == second);
}

TEST_CASE("encode_publish with a view and overrides", "[codec][publish]") {
    properties shared;
    shared.message_expiry_interval = 100;
    shared.topic_alias = 1;
    shared.subscription_identifiers = {5};
    shared.user_properties = {{"a", "b"}};
    shared.content_type = "text/plain";

    publish_view v;
    v.topic = "x/y";
    v.payload = "data";
    v.qos = 1;
    v.packet_id = 77;
    v.props = &shared;

    SECTION("no overrides: same as encode(publish)") {
        publish p{"x/y", "data", 1, false, false, 77, shared};
        for (auto ver : {v311, v5}) {
            bytes out;
            encode_publish(v, ver, out);
            CHECK(out == encode_bytes(p, ver));
            CHECK(out.size() == encoded_size(v, ver));
        }
    }
    SECTION("overrides replace the properties' values") {
        const std::uint32_t ids[] = {8, 9};
        v.subscription_identifiers = ids;
        v.topic_alias = 2;
        v.message_expiry_interval = 40;
        v.retain = true;
        bytes out;
        encode_publish(v, v5, out);
        CHECK(out.size() == encoded_size(v, v5));
        const publish got = decode_as<publish>(out, v5);
        CHECK(got.topic == "x/y");
        CHECK(got.payload == "data");
        CHECK(got.retain);
        CHECK(got.packet_id == 77);
        CHECK(got.props.subscription_identifiers == std::vector<std::uint32_t>{8, 9});
        CHECK(got.props.topic_alias == 2);
        CHECK(got.props.message_expiry_interval == 40);
        CHECK(got.props.user_properties == shared.user_properties);
        CHECK(got.props.content_type == "text/plain");
    }
    SECTION("null properties with overrides") {
        v.props = nullptr;
        v.topic = "";
        v.topic_alias = 12;
        bytes out;
        encode_publish(v, v5, out);
        CHECK(out.size() == encoded_size(v, v5));
        const publish got = decode_as<publish>(out, v5);
        CHECK(got.topic.empty());
        CHECK(got.props.topic_alias == 12);
        CHECK(got.props.user_properties.empty());
    }
    SECTION("appends to what is already in the buffer") {
        bytes out{0xAA, 0xBB};
        encode_publish(v, v311, out);
        REQUIRE(out.size() == 2 + encoded_size(v, v311));
        CHECK(out[0] == 0xAA);
        CHECK(out[1] == 0xBB);
        CHECK(out[2] == 0x32);
    }
}

TEST_CASE("encoder writes only the properties a packet allows", "[codec][properties]") {
    publish p;
    p.topic = "t";
    p.props.session_expiry_interval = 5;  // not a PUBLISH property
    p.props.reason_string = "no";         // not a PUBLISH property
    const bytes b = encode_bytes(p, v5);
    CHECK(b == bytes{0x30, 0x04, 0x00, 0x01, 't', 0x00});
}

// --- acknowledgements -------------------------------------------------------

TEST_CASE("PUBACK, PUBREC, PUBREL, PUBCOMP 3.1.1", "[codec][ack]") {
    puback a;
    a.packet_id = 5;
    check_both_ways(bytes{0x40, 0x02, 0x00, 0x05}, a, v311);  // PUBACK, length 2, id 5
    pubrec b;
    b.packet_id = 0x0102;
    check_both_ways(bytes{0x50, 0x02, 0x01, 0x02}, b, v311);  // PUBREC, length 2, id 258
    pubrel c;
    c.packet_id = 7;
    check_both_ways(bytes{0x62, 0x02, 0x00, 0x07}, c, v311);  // PUBREL (flags 0010), length 2, id 7
    pubcomp d;
    d.packet_id = 65535;
    check_both_ways(bytes{0x70, 0x02, 0xFF, 0xFF}, d, v311);  // PUBCOMP, length 2, id 65535

    // exactly 2 bytes in 3.1.1
    CHECK(decode_error({0x40, 0x03, 0x00, 0x05, 0x00}, v311) == reason_code::malformed_packet);
    CHECK(decode_error({0x50, 0x01, 0x00}, v311) == reason_code::malformed_packet);
    CHECK(decode_error({0x70, 0x00}, v311) == reason_code::malformed_packet);
    // packet identifier 0
    CHECK(decode_error({0x40, 0x02, 0x00, 0x00}, v311) == reason_code::malformed_packet);
    // 5.0-only fields are not written for 3.1.1
    puback e;
    e.packet_id = 5;
    e.code = reason_code::quota_exceeded;
    e.props.reason_string = "x";
    CHECK(encode_bytes(e, v311) == bytes{0x40, 0x02, 0x00, 0x05});
}

TEST_CASE("PUBACK family 5.0 short and long forms", "[codec][ack]") {
    SECTION("remaining length 2: success without properties") {
        puback a;
        a.packet_id = 5;
        check_both_ways(bytes{0x40, 0x02, 0x00, 0x05}, a, v5);
    }
    SECTION("remaining length 3: reason code without properties") {
        pubrec b;
        b.packet_id = 5;
        b.code = reason_code::no_matching_subscribers;
        check_both_ways(bytes{0x50, 0x03, 0x00, 0x05, 0x10}, b, v5);  // PUBREC, id 5, reason 0x10
        // success written long is still decoded (and re-encoded short)
        CHECK(decode_as<puback>({0x40, 0x03, 0x00, 0x05, 0x00}, v5) == puback{5, reason_code::success, {}});
        CHECK(decode_as<puback>({0x40, 0x04, 0x00, 0x05, 0x00, 0x00}, v5) == puback{5, reason_code::success, {}});
    }
    SECTION("reason code, property length, properties") {
        const bytes b{
            0x62,                                   // PUBREL
            0x0B,                                   // remaining length 11
            0x00, 0x05,                             // packet identifier 5
            0x92,                                   // packet identifier not found
            0x07,                                   // property length 7
            0x1F, 0x00, 0x04, 'g', 'o', 'n', 'e',   // reason string "gone"
        };
        pubrel c;
        c.packet_id = 5;
        c.code = reason_code::packet_identifier_not_found;
        c.props.reason_string = "gone";
        check_both_ways(b, c, v5);
        // success with properties keeps the reason code byte
        pubcomp d;
        d.packet_id = 1;
        d.props.user_properties = {{"k", ""}};
        check_both_ways(bytes{0x70, 0x0A, 0x00, 0x01, 0x00, 0x06, 0x26, 0x00, 0x01, 'k', 0x00, 0x00}, d, v5);
    }
    SECTION("errors") {
        CHECK(decode_error({0x40, 0x01, 0x00}, v5) == reason_code::malformed_packet);               // too short
        CHECK(decode_error({0x40, 0x03, 0x00, 0x05, 0x92}, v5) == reason_code::malformed_packet);   // 0x92 not for PUBACK
        CHECK(decode_error({0x62, 0x03, 0x00, 0x05, 0x10}, v5) == reason_code::malformed_packet);   // 0x10 not for PUBREL
        CHECK(decode_error({0x40, 0x04, 0x00, 0x05, 0x00, 0x01}, v5) == reason_code::malformed_packet);  // props past end
        CHECK(decode_error({0x40, 0x05, 0x00, 0x05, 0x00, 0x00, 0x00}, v5) == reason_code::malformed_packet);  // trailing
        CHECK(decode_error({0x40, 0x06, 0x00, 0x05, 0x00, 0x02, 0x1F, 0x00}, v5) == reason_code::malformed_packet);  // half a string
        CHECK(decode_error({0x40, 0x07, 0x00, 0x05, 0x00, 0x03, 0x23, 0x00, 0x01}, v5) == reason_code::protocol_error);
        CHECK(decode_error({0x40, 0x02, 0x00, 0x00}, v5) == reason_code::malformed_packet);  // id 0
    }
}

TEST_CASE("a message's properties on their own round-trip and are checked", "[codec][properties]") {
    properties p;
    p.payload_format_indicator = 1;
    p.message_expiry_interval = 3600;
    p.content_type = "application/json";
    p.response_topic = "reply/here";
    p.correlation_data = std::string("\x00\x01\x02", 3);
    p.user_properties = {{"site", "dresden"}, {"site", "twice"}, {"k", ""}};
    std::string enc;
    encode_message_properties(p, enc);
    properties back;
    REQUIRE(decode_message_properties(enc, back));
    CHECK(back == p);

    std::string empty;
    encode_message_properties(properties{}, empty);
    CHECK(empty == std::string(1, '\0'));  // property length 0
    REQUIRE(decode_message_properties(empty, back));
    CHECK(back == properties{});

    SECTION("errors") {
        CHECK_FALSE(decode_message_properties("", back));                         // no length
        CHECK_FALSE(decode_message_properties(enc + "x", back));                  // trailing bytes
        CHECK_FALSE(decode_message_properties(enc.substr(0, enc.size() - 1), back));  // cut short
        CHECK_FALSE(decode_message_properties(std::string("\x02\x11\x00", 3), back));  // session expiry: not a PUBLISH property
        CHECK_FALSE(decode_message_properties(std::string("\x02\x01\x02", 3), back));  // format indicator 2
    }
}
