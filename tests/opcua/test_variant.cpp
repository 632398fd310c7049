// Variant: every built-in type as scalar and array, matrices, malformed
// encodings, nesting bounded.
#include "helpers.hpp"

using namespace strata::bridges::opcua;
using namespace strata::bridges::opcua::test;

TEST_CASE("Variant scalars: encoding byte then the value", "[opcua][variant]") {
    check_both_ways<variant>({0x00}, variant{});
    check_both_ways<variant>({0x01, 0x01}, variant{true});
    check_both_ways<variant>({0x02, 0xFE}, variant{std::int8_t{-2}});
    check_both_ways<variant>({0x03, 0xFE}, variant{std::uint8_t{254}});
    check_both_ways<variant>({0x04, 0xFE, 0xFF}, variant{std::int16_t{-2}});
    check_both_ways<variant>({0x05, 0x34, 0x12}, variant{std::uint16_t{0x1234}});
    check_both_ways<variant>({0x06, 0x05, 0x00, 0x00, 0x00}, variant{std::int32_t{5}});
    check_both_ways<variant>({0x07, 0x04, 0x03, 0x02, 0x01}, variant{std::uint32_t{0x01020304}});
    check_both_ways<variant>({0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, variant{std::int64_t{-1}});
    check_both_ways<variant>({0x09, 0x01, 0, 0, 0, 0, 0, 0, 0}, variant{std::uint64_t{1}});
    check_both_ways<variant>({0x0A, 0x00, 0x00, 0x80, 0x3F}, variant{1.0f});
    check_both_ways<variant>({0x0B, 0, 0, 0, 0, 0, 0, 0x04, 0xC0}, variant{-2.5});
    check_both_ways<variant>(bytes{0x0C} + str("hi"), variant{ua_string{"hi"}});
    check_both_ways<variant>({0x0C, 0xFF, 0xFF, 0xFF, 0xFF}, variant{ua_string{}});
    check_both_ways<variant>({0x0D, 0x00, 0x80, 0x3E, 0xD5, 0xDE, 0xB1, 0x9D, 0x01}, variant{date_time::from_unix_us(0)});
    const guid g = *guid::parse("72962B91-FA75-4AE6-8D28-B404DC7DAF63");
    check_both_ways<variant>(bytes{0x0E} + encode_to_bytes(g), variant{g});
    check_both_ways<variant>({0x0F, 0x01, 0x00, 0x00, 0x00, 0xAA}, variant{byte_string{{0xAA}}});
    check_both_ways<variant>(bytes{0x10} + str("<a/>"), variant{xml_element{"<a/>"}});
    check_both_ways<variant>({0x11, 0x00, 0x55}, variant{node_id{0, 85u}});
    check_both_ways<variant>({0x12, 0x40, 0x55, 0x01, 0x00, 0x00, 0x00}, variant{expanded_node_id{node_id{0, 85u}, {}, 1}});
    check_both_ways<variant>({0x13, 0x00, 0x00, 0x34, 0x80}, variant{status_code{0x80340000}});
    check_both_ways<variant>(bytes{0x14, 0x01, 0x00} + str("q"), variant{qualified_name{1, "q"}});
    check_both_ways<variant>(bytes{0x15, 0x02} + str("t"), variant{localized_text{std::nullopt, "t"}});
    check_both_ways<variant>({0x16, 0x00, 0x00, 0x00}, variant{extension_object{}});
    check_both_ways<variant>({0x17, 0x00}, variant{box<data_value>{}});
    check_both_ways<variant>({0x18, 0x06, 0x05, 0x00, 0x00, 0x00}, variant{box<variant>{variant{std::int32_t{5}}}});
    check_both_ways<variant>({0x19, 0x00}, variant{box<diagnostic_info>{}});

    const variant v{std::int32_t{5}};
    CHECK(v.type() == builtin_type::int32);
    CHECK_FALSE(v.is_array());
    CHECK(*v.get_if<std::int32_t>() == 5);
    CHECK(to_string(v.type()) == "Int32");
}

TEST_CASE("Variant arrays: flag 0x80, Int32 length, elements", "[opcua][variant]") {
    const bytes ints{0x86,                    // Int32 array
                     0x02, 0x00, 0x00, 0x00,  // 2 elements
                     0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00};
    const variant v{std::vector<std::int32_t>{1, 2}};
    check_both_ways<variant>(ints, v);
    CHECK(v.is_array());
    CHECK(v.type() == builtin_type::int32);
    check_both_ways<variant>({0x86, 0x00, 0x00, 0x00, 0x00}, variant{std::vector<std::int32_t>{}});
    CHECK(decode_exact<variant>({0x86, 0xFF, 0xFF, 0xFF, 0xFF}) == variant{std::vector<std::int32_t>{}});  // null array
    check_both_ways<variant>({0x81, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00}, variant{std::vector<bool>{true, false}});
    check_both_ways<variant>(bytes{0x8C, 0x02, 0x00, 0x00, 0x00} + str("a") + bytes{0xFF, 0xFF, 0xFF, 0xFF},
                             variant{std::vector<ua_string>{"a", std::nullopt}});
    // Array of Variants, each with its own type.
    check_both_ways<variant>(bytes{0x98, 0x02, 0x00, 0x00, 0x00, 0x06, 0x07, 0x00, 0x00, 0x00, 0x0C} + str("x"),
                             variant{std::vector<variant>{variant{std::int32_t{7}}, variant{ua_string{"x"}}}});
}

TEST_CASE("Variant matrix: dimensions after the elements", "[opcua][variant]") {
    variant m{std::vector<std::int32_t>{1, 2, 3, 4, 5, 6}};
    m.dimensions = {2, 3};
    const bytes b = bytes{0xC6,                    // Int32 array with dimensions
                          0x06, 0x00, 0x00, 0x00}  // 6 elements
                    + le32(1) + le32(2) + le32(3) + le32(4) + le32(5) + le32(6) +
                    bytes{0x02, 0x00, 0x00, 0x00,  // 2 dimensions
                          0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00};
    check_both_ways<variant>(b, m);
    CHECK(decode_error<variant>(bytes{0xC6} + le32(2) + le32(1) + le32(2) + le32(2) + le32(1) + le32(3)) ==
          std::string("array dimensions do not match length"));
    CHECK(decode_error<variant>(bytes{0xC6} + le32(0) + le32(2) + le32(0xFFFFFFFF) + le32(0)) ==
          std::string("negative array dimension"));
    CHECK(decode_error<variant>(bytes{0xC6} + le32(0) + le32(0)) == std::string("array dimensions do not match length"));
    variant scalar{std::int32_t{1}};
    scalar.dimensions = {1};
    CHECK(encode_to_bytes(scalar) == bytes{0x06, 0x01, 0x00, 0x00, 0x00});  // dimensions ignored
}

TEST_CASE("Variant malformed encodings", "[opcua][variant]") {
    CHECK(decode_error<variant>({0x1A}) == std::string("unknown built-in type in Variant"));
    CHECK(decode_error<variant>({0x3F}) == std::string("unknown built-in type in Variant"));
    CHECK(decode_error<variant>({0x46, 0x00, 0x00, 0x00, 0x00}) == std::string("Variant dimensions without array"));
    CHECK(decode_error<variant>({0x80}) == std::string("null Variant with array flags"));
    CHECK(decode_error<variant>(bytes{0x86} + le32(0x7FFFFFFF)) == std::string("array too long"));
    CHECK(decode_error<variant>(bytes{0x86} + le32(1000) + le32(1)) == std::string("truncated"));
}

TEST_CASE("Variant nesting is bounded", "[opcua][variant][limits]") {
    bytes deep(150, 0x18);  // Variant in Variant ... 150 times
    deep.push_back(0x00);
    CHECK(decode_error<variant>(deep) == std::string("nesting too deep"));
    decode_limits lim;
    lim.max_depth = 151;
    CHECK(decode_exact<variant>(deep, nullptr, lim).type() == builtin_type::variant);
    // DataValue inside Variant inside DataValue counts every level.
    bytes dv;
    for (int i = 0; i < 60; ++i) dv.insert(dv.end(), {0x01, 0x17});  // DataValue{value: Variant{DataValue...}}
    dv.push_back(0x00);
    CHECK(decode_error<data_value>(dv) == std::string("nesting too deep"));
}

TEST_CASE("Variant round trips for every type, scalar and array", "[opcua][variant]") {
    extension_object eo;
    eo.type_id = node_id{3, std::string("T")};
    eo.body_encoding = extension_object::encoding::byte_string;
    eo.body = {9, 8};
    data_value dv;
    dv.value = variant{2.0};
    dv.status = status_code{0x40000000};
    diagnostic_info di;
    di.additional_info = "why";
    const std::vector<variant> values{
        variant{false}, variant{std::int8_t{-7}}, variant{std::uint8_t{7}}, variant{std::int16_t{-300}},
        variant{std::uint16_t{300}}, variant{std::int32_t{-70000}}, variant{std::uint32_t{70000}},
        variant{std::int64_t{-1} << 40}, variant{std::uint64_t{1} << 40}, variant{0.5f}, variant{0.25},
        variant{ua_string{"s"}}, variant{date_time{123}}, variant{guid{1, 2, 3, {4, 5, 6, 7, 8, 9, 10, 11}}},
        variant{byte_string{{1}}}, variant{xml_element{"<x/>"}}, variant{node_id{7, std::string("n")}},
        variant{expanded_node_id{node_id{1, 2u}, "urn:a", 3}}, variant{status_code{0x80AB0000}},
        variant{qualified_name{4, "qn"}}, variant{localized_text{"de", "Hallo"}}, variant{eo},
        variant{box<data_value>{dv}}, variant{box<variant>{variant{1.5}}}, variant{box<diagnostic_info>{di}},
        variant{std::vector<std::int8_t>{-1, 1}}, variant{std::vector<std::uint8_t>{1, 2}},
        variant{std::vector<std::int16_t>{-1}}, variant{std::vector<std::uint16_t>{1}},
        variant{std::vector<std::uint32_t>{1}}, variant{std::vector<std::int64_t>{-1}},
        variant{std::vector<std::uint64_t>{1}}, variant{std::vector<float>{1.0f}}, variant{std::vector<double>{2.0}},
        variant{std::vector<date_time>{date_time{5}}}, variant{std::vector<guid>{guid{}}},
        variant{std::vector<byte_string>{byte_string{}, byte_string{{1}}}},
        variant{std::vector<xml_element>{xml_element{"<y/>"}}}, variant{std::vector<node_id>{node_id{0, 1u}}},
        variant{std::vector<expanded_node_id>{expanded_node_id{}}},
        variant{std::vector<status_code>{status_code{1}}}, variant{std::vector<qualified_name>{qualified_name{}}},
        variant{std::vector<localized_text>{localized_text{}}}, variant{std::vector<extension_object>{eo}},
        variant{std::vector<data_value>{dv, data_value{}}}, variant{std::vector<diagnostic_info>{di}},
    };
    for (const variant& v : values) {
        INFO("type " << to_string(v.type()) << (v.is_array() ? "[]" : ""));
        check_round_trip(v);
        check_prefixes<variant>(encode_to_bytes(v));
    }
}
