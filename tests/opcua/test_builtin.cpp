// Built-in types other than Variant: exact bytes both ways, every prefix
// fails, limits enforced before allocating, text forms.
#include "helpers.hpp"

using namespace strata::bridges::opcua;
using namespace strata::bridges::opcua::test;

TEST_CASE("integer and floating point scalars", "[opcua][builtin]") {
    check_both_ways<bool>({0x01}, true);
    check_both_ways<bool>({0x00}, false);
    CHECK(decode_exact<bool>({0x02}) == true);  // any non-zero byte is true
    check_both_ways<std::int8_t>({0xFE}, std::int8_t{-2});
    check_both_ways<std::uint8_t>({0xFE}, std::uint8_t{254});
    check_both_ways<std::int16_t>({0xFE, 0xFF}, std::int16_t{-2});
    check_both_ways<std::uint16_t>({0x34, 0x12}, std::uint16_t{0x1234});
    check_both_ways<std::int32_t>({0xFF, 0xFF, 0xFF, 0x7F}, std::int32_t{0x7FFFFFFF});
    check_both_ways<std::uint32_t>({0x04, 0x03, 0x02, 0x01}, std::uint32_t{0x01020304});
    check_both_ways<std::int64_t>({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, std::int64_t{-1});
    check_both_ways<std::uint64_t>({0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}, std::uint64_t{0x0102030405060708});
    check_both_ways<float>({0x00, 0x00, 0x80, 0x3F}, 1.0f);
    check_both_ways<double>({0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xC0}, -2.5);
}

TEST_CASE("String: null, empty and UTF-8 kept apart", "[opcua][builtin]") {
    check_both_ways<ua_string>({0xFF, 0xFF, 0xFF, 0xFF}, ua_string{});
    check_both_ways<ua_string>({0x00, 0x00, 0x00, 0x00}, ua_string{""});
    check_both_ways<ua_string>({0x06, 0x00, 0x00, 0x00, 'H', 'o', 't', 0xE6, 0xB0, 0xB4}, ua_string{"Hot\xE6\xB0\xB4"});
    CHECK(decode_error<ua_string>({0xFE, 0xFF, 0xFF, 0xFF}) == std::string("negative length"));
}

TEST_CASE("ByteString: null and empty kept apart", "[opcua][builtin]") {
    check_both_ways<byte_string>({0xFF, 0xFF, 0xFF, 0xFF}, byte_string{});
    check_both_ways<byte_string>({0x00, 0x00, 0x00, 0x00}, byte_string{std::vector<std::uint8_t>{}});
    check_both_ways<byte_string>({0x03, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03}, byte_string{{1, 2, 3}});
    check_both_ways<xml_element>(str("<a/>"), xml_element{"<a/>"});
}

TEST_CASE("String and ByteString limits are checked before allocating", "[opcua][builtin][limits]") {
    decode_limits lim;
    lim.max_string_length = 4;
    lim.max_byte_string_length = 2;
    CHECK(decode_error<ua_string>(str("abcde"), lim) == std::string("string too long"));
    CHECK(decode_exact<ua_string>(str("abcd"), nullptr, lim) == ua_string{"abcd"});
    CHECK(decode_error<byte_string>({0x03, 0x00, 0x00, 0x00, 1, 2, 3}, lim) == std::string("byte string too long"));
    // A length of 2^31-1 with no data: refused by the limit, nothing allocated.
    CHECK(decode_error<ua_string>({0xFF, 0xFF, 0xFF, 0x7F}) == std::string("string too long"));
    // Within the limit but beyond the input: truncated, still nothing allocated.
    lim.max_string_length = 0x7FFFFFFF;
    CHECK(decode_error<ua_string>({0xF0, 0xFF, 0xFF, 0x7F, 'a', 'b'}, lim) == std::string("truncated"));
}

TEST_CASE("arrays: length prefix, null array, limits", "[opcua][builtin][limits]") {
    using v32 = std::vector<std::int32_t>;
    check_both_ways<v32>({0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00}, v32{1, 2});
    check_both_ways<v32>({0x00, 0x00, 0x00, 0x00}, v32{});
    CHECK(decode_exact<v32>({0xFF, 0xFF, 0xFF, 0xFF}).empty());  // null array
    decode_limits lim;
    lim.max_array_length = 1;
    CHECK(decode_error<v32>({0x02, 0x00, 0x00, 0x00, 1, 0, 0, 0, 2, 0, 0, 0}, lim) == std::string("array too long"));
    // 1,000,000 Int32 announced, 8 bytes present: refused before resizing.
    CHECK(decode_error<v32>(le32(1'000'000) + bytes{1, 0, 0, 0, 2, 0, 0, 0}) == std::string("truncated"));
    CHECK(decode_error<std::vector<ua_string>>(le32(3) + str("a") + str("b")) == std::string("truncated"));
    check_both_ways<std::vector<bool>>({0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01}, std::vector<bool>{true, false, true});
}

TEST_CASE("decoded memory is bounded, not just the input length", "[opcua][builtin][limits]") {
    // 1,000 null Variants: 1,005 bytes on the wire, far more in memory.
    const bytes b = bytes{0x98} + le32(1000) + bytes(1000, 0x00);
    decode_limits lim;
    lim.max_decoded_size = 1000 * sizeof(variant) - 1;
    CHECK(decode_error<variant>(b, lim) == std::string("decoded size over limit"));
    lim.max_decoded_size = 1000 * sizeof(variant);
    CHECK(decode_exact<variant>(b, nullptr, lim).is_array());
    lim.max_decoded_size = 3;
    CHECK(decode_error<ua_string>(str("abcd"), lim) == std::string("decoded size over limit"));
    CHECK(decode_exact<ua_string>(str("abc"), nullptr, lim) == ua_string{"abc"});
}

TEST_CASE("DateTime bytes and Unix conversions", "[opcua][builtin]") {
    const date_time epoch = date_time::from_unix_us(0);
    CHECK(epoch.ticks == 116'444'736'000'000'000);
    check_both_ways<date_time>({0x00, 0x80, 0x3E, 0xD5, 0xDE, 0xB1, 0x9D, 0x01}, epoch);
    const date_time t = date_time::from_unix_us(1'714'564'800'123'456);
    check_both_ways<date_time>({0x80, 0x36, 0xCD, 0x17, 0xBF, 0x9B, 0xDA, 0x01}, t);
    CHECK(t.unix_us() == 1'714'564'800'123'456);
    CHECK(t.to_iso8601() == "2024-05-01T12:00:00.123456Z");
    CHECK(epoch.to_iso8601() == "1970-01-01T00:00:00Z");
    CHECK(date_time{0}.to_iso8601() == "1601-01-01T00:00:00Z");
    CHECK(date_time{1}.to_iso8601() == "1601-01-01T00:00:00.0000001Z");
    CHECK(date_time::from_unix_us(-20'000'000'000'000'000).ticks == 0);  // before 1601: saturates
    CHECK(date_time::from_unix_us(INT64_MAX).ticks == INT64_MAX);
    CHECK(date_time::from_unix(t.to_unix()) == t);
}

TEST_CASE("Guid bytes and text", "[opcua][builtin]") {
    const guid g = *guid::parse("72962B91-FA75-4AE6-8D28-B404DC7DAF63");
    check_both_ways<guid>({0x91, 0x2B, 0x96, 0x72, 0x75, 0xFA, 0xE6, 0x4A, 0x8D, 0x28, 0xB4, 0x04, 0xDC, 0x7D, 0xAF, 0x63}, g);
    CHECK(g.to_string() == "72962B91-FA75-4AE6-8D28-B404DC7DAF63");
    CHECK(guid::parse("72962b91-fa75-4ae6-8d28-b404dc7daf63") == g);
    CHECK_FALSE(guid::parse("72962B91-FA75-4AE6-8D28-B404DC7DAF6"));
    CHECK_FALSE(guid::parse("72962B91-FA75-4AE6-8D28+B404DC7DAF63"));
    CHECK_FALSE(guid::parse("X2962B91-FA75-4AE6-8D28-B404DC7DAF63"));
}

TEST_CASE("StatusCode bytes, severity and names", "[opcua][builtin]") {
    check_both_ways<status_code>({0x00, 0x00, 0x34, 0x80}, status_code{0x80340000});
    CHECK(status_code{0}.name() == "Good");
    CHECK(status_code{0}.good());
    CHECK(status_code{0x80340000}.name() == "BadNodeIdUnknown");
    CHECK(status_code{0x80340000}.bad());
    CHECK(status_code{0x40000000}.name() == "Uncertain");
    CHECK(status_code{0x408F0000}.name() == "UncertainNoCommunicationLastUsableValue");
    CHECK(status_code{0x408F0000}.uncertain());
    CHECK(status_code{0x800A0000}.name() == "BadTimeout");
    CHECK(status_code{0x00000400}.name() == "Good");  // info bits ignored
    CHECK(status_code{0x83FF0000}.name() == "0x83FF0000");
    CHECK(status_from_name("BadTimeout") == 0x800A0000u);
    CHECK_FALSE(status_from_name("BadNoSuchThing"));
}

TEST_CASE("NodeId: every encoding", "[opcua][builtin][nodeid]") {
    check_both_ways<node_id>({0x00, 0x48}, node_id{0, 72u});                          // two-byte
    check_both_ways<node_id>({0x01, 0x05, 0x01, 0x04}, node_id{5, 1025u});           // four-byte
    check_both_ways<node_id>({0x02, 0x00, 0x00, 0x70, 0x11, 0x01, 0x00}, node_id{0, 70000u});  // numeric
    check_both_ways<node_id>({0x02, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00}, node_id{256, 1u});    // ns > 255
    check_both_ways<node_id>(bytes{0x03, 0x01, 0x00} + str("Hot\xE6\xB0\xB4"), node_id{1, std::string("Hot\xE6\xB0\xB4")});
    const guid g = *guid::parse("72962B91-FA75-4AE6-8D28-B404DC7DAF63");
    check_both_ways<node_id>(bytes{0x04, 0x01, 0x00} + encode_to_bytes(g), node_id{1, g});
    check_both_ways<node_id>({0x05, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03},
                             node_id{1, std::vector<std::uint8_t>{1, 2, 3}});
    // The longer numeric forms are accepted for small values too.
    CHECK(decode_exact<node_id>({0x02, 0x00, 0x00, 0x48, 0x00, 0x00, 0x00}) == node_id{0, 72u});
    CHECK(decode_error<node_id>({0x06, 0x00}) == std::string("unknown NodeId encoding"));
    CHECK(decode_error<node_id>({0x80, 0x48}) == std::string("NodeId with ExpandedNodeId flags"));
}

TEST_CASE("ExpandedNodeId: namespace URI and server index flags", "[opcua][builtin][nodeid]") {
    expanded_node_id e;
    e.id = node_id{0, 72u};
    check_both_ways<expanded_node_id>({0x00, 0x48}, e);
    e.namespace_uri = "urn:x";
    check_both_ways<expanded_node_id>(bytes{0x80, 0x48} + str("urn:x"), e);
    e.namespace_uri.reset();
    e.id = node_id{2, 10u};
    e.server_index = 7;
    check_both_ways<expanded_node_id>({0x41, 0x02, 0x0A, 0x00, 0x07, 0x00, 0x00, 0x00}, e);
    e.namespace_uri = "urn:y";
    e.id = node_id{0, std::string("a")};
    check_both_ways<expanded_node_id>(bytes{0xC3, 0x00, 0x00} + str("a") + str("urn:y") + le32(7), e);
}

TEST_CASE("NodeId text form", "[opcua][builtin][nodeid]") {
    const std::pair<const char*, node_id> cases[] = {
        {"i=85", node_id{0, 85u}},
        {"ns=2;s=PLC1.Line1.Counter", node_id{2, std::string("PLC1.Line1.Counter")}},
        {"ns=1;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", node_id{1, *guid::parse("72962B91-FA75-4AE6-8D28-B404DC7DAF63")}},
        {"ns=1;b=AQID", node_id{1, std::vector<std::uint8_t>{1, 2, 3}}},
        {"ns=1;b=AQIDBA==", node_id{1, std::vector<std::uint8_t>{1, 2, 3, 4}}},
        {"ns=1;b=AQIDBAU=", node_id{1, std::vector<std::uint8_t>{1, 2, 3, 4, 5}}},
        {"ns=65535;i=4294967295", node_id{65535, 4294967295u}},
        {"s=a;b=c", node_id{0, std::string("a;b=c")}},
    };
    for (const auto& [text, id] : cases) {
        INFO(text);
        CHECK(node_id::parse(text) == id);
        CHECK(id.to_string() == text);
    }
    CHECK(node_id::parse("ns=0;i=85") == node_id{0, 85u});
    for (const char* bad : {"", "i=", "i=abc", "i=-1", "i=4294967296", "ns=;i=1", "ns=65536;i=1", "ns=1",
                            "x=1", "ns=1;b=A", "ns=1;b=A=BC", "ns=1;b=AB!=", "g=zz", "85"}) {
        INFO(bad);
        CHECK_FALSE(node_id::parse(bad));
    }
}

TEST_CASE("QualifiedName and LocalizedText", "[opcua][builtin]") {
    check_both_ways<qualified_name>(bytes{0x02, 0x00} + str("Name"), qualified_name{2, "Name"});
    check_both_ways<qualified_name>({0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}, qualified_name{});
    check_both_ways<localized_text>(bytes{0x03} + str("en") + str("Hi"), localized_text{"en", "Hi"});
    check_both_ways<localized_text>(bytes{0x02} + str("Hi"), localized_text{std::nullopt, "Hi"});
    check_both_ways<localized_text>(bytes{0x01} + str(""), localized_text{"", std::nullopt});
    check_both_ways<localized_text>({0x00}, localized_text{});
    CHECK(decode_error<localized_text>({0x04}) == std::string("LocalizedText reserved bits set"));
}

TEST_CASE("ExtensionObject: unknown bodies stay opaque and re-encode unchanged", "[opcua][builtin]") {
    extension_object e;
    check_both_ways<extension_object>({0x00, 0x00, 0x00}, e);  // i=0, no body
    e.type_id = node_id{2, 5001u};
    e.body_encoding = extension_object::encoding::byte_string;
    e.body = {1, 2, 3};
    const bytes b{0x01, 0x02, 0x89, 0x13,   // four-byte NodeId ns=2;i=5001
                  0x01,                     // ByteString body
                  0x03, 0x00, 0x00, 0x00,   // body length 3
                  0x01, 0x02, 0x03};
    check_both_ways<extension_object>(b, e);
    e.body_encoding = extension_object::encoding::xml;
    e.body = {'<', 'a', '/', '>'};
    check_both_ways<extension_object>(bytes{0x01, 0x02, 0x89, 0x13, 0x02} + str("<a/>"), e);
    CHECK(decode_error<extension_object>({0x00, 0x00, 0x03}) == std::string("unknown ExtensionObject encoding"));
    // A null ByteString body is no body (so it re-encodes as such).
    const extension_object null_body = decode_exact<extension_object>({0x01, 0x02, 0x89, 0x13, 0x01, 0xFF, 0xFF, 0xFF, 0xFF});
    CHECK(null_body.body_encoding == extension_object::encoding::none);
    CHECK(encode_to_bytes(null_body) == bytes{0x01, 0x02, 0x89, 0x13, 0x00});
    decode_limits lim;
    lim.max_byte_string_length = 2;
    CHECK(decode_error<extension_object>(b, lim) == std::string("byte string too long"));
}

TEST_CASE("DataValue: every mask bit, wire order", "[opcua][builtin]") {
    check_both_ways<data_value>({0x00}, data_value{});
    data_value v;
    v.value = variant{std::int32_t{5}};
    v.status = status_code{0x80340000};
    v.source_timestamp = date_time{0x0102030405060708};
    v.source_picoseconds = 10;
    v.server_timestamp = date_time{0x1112131415161718};
    v.server_picoseconds = 20;
    const bytes b{
        0x3F,                                            // all six fields
        0x06, 0x05, 0x00, 0x00, 0x00,                    // Variant Int32 5
        0x00, 0x00, 0x34, 0x80,                          // BadNodeIdUnknown
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // source timestamp
        0x0A, 0x00,                                      // source picoseconds
        0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,  // server timestamp
        0x14, 0x00,                                      // server picoseconds
    };
    check_both_ways<data_value>(b, v);
    data_value only_server;
    only_server.server_timestamp = date_time{1};
    check_both_ways<data_value>({0x08, 0x01, 0, 0, 0, 0, 0, 0, 0}, only_server);
    CHECK(decode_error<data_value>({0x40}) == std::string("DataValue reserved bits set"));
}

TEST_CASE("DiagnosticInfo: every field, nested, depth bounded", "[opcua][builtin]") {
    diagnostic_info inner;
    inner.symbolic_id = 9;
    diagnostic_info d;
    d.symbolic_id = 1;
    d.namespace_uri = 2;
    d.locale = 3;
    d.localized_text = 4;
    d.additional_info = "x";
    d.inner_status_code = status_code{0x80010000};
    d.inner_diagnostic_info = inner;
    const bytes b = bytes{0x7F,                                      // all seven fields
                          0x01, 0x00, 0x00, 0x00,                    // symbolic id 1
                          0x02, 0x00, 0x00, 0x00,                    // namespace uri 2
                          0x03, 0x00, 0x00, 0x00,                    // locale 3 (before localized text)
                          0x04, 0x00, 0x00, 0x00} +                  // localized text 4
                    str("x") +                                       // additional info
                    bytes{0x00, 0x00, 0x01, 0x80,                    // inner status BadUnexpectedError
                          0x01, 0x09, 0x00, 0x00, 0x00};             // inner: symbolic id 9
    check_both_ways<diagnostic_info>(b, d);
    CHECK(decode_error<diagnostic_info>({0x80}) == std::string("DiagnosticInfo reserved bit set"));
    // 200 nested inner DiagnosticInfos: refused at the depth limit.
    bytes deep(200, 0x40);
    deep.push_back(0x00);
    CHECK(decode_error<diagnostic_info>(deep) == std::string("nesting too deep"));
    decode_limits lim;
    lim.max_depth = 201;
    CHECK(decode_exact<diagnostic_info>(deep, nullptr, lim).inner_diagnostic_info.has_value());
}
