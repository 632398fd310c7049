// Fixed header: packet type, flags, remaining length, size limit.
#include "helpers.hpp"

using namespace strata::mqtt;
using namespace strata::mqtt::test;

namespace {
decode_result header(const bytes& b, fixed_header& h, decode_limits lim = {}) {
    return parse_fixed_header(std::span<const std::uint8_t>(b), lim, h);
}
}  // namespace

TEST_CASE("fixed header: need_more until the remaining length is complete", "[codec][header]") {
    fixed_header h;
    CHECK(header({}, h).status == decode_status::need_more);
    CHECK(header({0x30}, h).status == decode_status::need_more);
    CHECK(header({0x30, 0x80}, h).status == decode_status::need_more);
    CHECK(header({0x30, 0x80, 0x80}, h).status == decode_status::need_more);
    CHECK(header({0x30, 0x80, 0x80, 0x80}, h).status == decode_status::need_more);
}

TEST_CASE("fixed header: remaining length varint of 1 to 4 bytes", "[codec][header]") {
    fixed_header h;
    // 0x32: PUBLISH, QoS 1 | 0x00: remaining length 0
    auto r = header({0x32, 0x00}, h);
    REQUIRE(r.status == decode_status::ok);
    CHECK(h.type == packet_type::publish);
    CHECK(h.flags == 0x02);
    CHECK(h.remaining_length == 0);
    CHECK(h.header_size == 2);

    // 0xC1 0x02: 0x41 + 2*128 = 321
    REQUIRE(header({0x30, 0xC1, 0x02}, h).status == decode_status::ok);
    CHECK(h.remaining_length == 321);
    CHECK(h.header_size == 3);

    // 0x80 0x80 0x01: 16,384 (three bytes)
    REQUIRE(header({0x30, 0x80, 0x80, 0x01}, h).status == decode_status::ok);
    CHECK(h.remaining_length == 16'384);

    // 0xFF 0xFF 0xFF 0x7F: 268,435,455, the largest (four bytes)
    r = header({0x30, 0xFF, 0xFF, 0xFF, 0x7F}, h);
    REQUIRE(r.status == decode_status::ok);
    CHECK(h.remaining_length == 268'435'455);
    CHECK(h.header_size == 5);
    CHECK(h.total_size() == 268'435'460);
    CHECK(r.consumed == 5);
}

TEST_CASE("fixed header: a fifth remaining length byte is malformed", "[codec][header]") {
    fixed_header h;
    // fourth byte still has the continuation bit: malformed without waiting for a fifth
    auto r = header({0x30, 0xFF, 0xFF, 0xFF, 0xFF}, h);
    REQUIRE(r.status == decode_status::error);
    CHECK(r.code == reason_code::malformed_packet);
    r = header({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, h);
    REQUIRE(r.status == decode_status::error);
    CHECK(r.code == reason_code::malformed_packet);
    CHECK(decode_error({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, v5) == reason_code::malformed_packet);
}

TEST_CASE("fixed header: non-minimal remaining length is malformed", "[codec][header]") {
    fixed_header h;
    // 0x80 0x00 encodes 0 in two bytes
    auto r = header({0xC0, 0x80, 0x00}, h);
    REQUIRE(r.status == decode_status::error);
    CHECK(r.code == reason_code::malformed_packet);
}

TEST_CASE("fixed header: packet type 0 is malformed", "[codec][header]") {
    fixed_header h;
    // detected from the first byte alone
    auto r = header({0x00}, h);
    REQUIRE(r.status == decode_status::error);
    CHECK(r.code == reason_code::malformed_packet);
    CHECK(decode_error({0x00, 0x00}, v311) == reason_code::malformed_packet);
    CHECK(decode_error({0x00, 0x00}, v5) == reason_code::malformed_packet);
}

TEST_CASE("fixed header: packet_too_large as soon as the header is complete", "[codec][header]") {
    decode_limits lim;
    lim.max_packet_size = 100;
    fixed_header h;
    // 0x30: PUBLISH | 0x62: remaining length 98 -> total 100: fits (the body is missing)
    CHECK(header({0x30, 0x62}, h, lim).status == decode_status::ok);
    packet p;
    CHECK(decode_bytes({0x30, 0x62}, v5, p, lim).status == decode_status::need_more);
    // 0x63: remaining length 99 -> total 101 > 100: too large, body never needed
    auto r = header({0x30, 0x63}, h, lim);
    REQUIRE(r.status == decode_status::error);
    CHECK(r.code == reason_code::packet_too_large);
    CHECK(decode_error({0x30, 0x63}, v311, lim) == reason_code::packet_too_large);
    // a huge announced length: refused without allocating anything
    CHECK(decode_error({0x30, 0xFF, 0xFF, 0xFF, 0x7F}, v5, lim) == reason_code::packet_too_large);
}

TEST_CASE("fixed header: PUBLISH flags", "[codec][header]") {
    // 0x36: QoS 3
    CHECK(decode_error({0x36, 0x00}, v311) == reason_code::malformed_packet);
    CHECK(decode_error({0x36, 0x00}, v5) == reason_code::malformed_packet);
    // 0x38: DUP with QoS 0
    CHECK(decode_error({0x38, 0x00}, v311) == reason_code::malformed_packet);
    CHECK(decode_error({0x38, 0x00}, v5) == reason_code::malformed_packet);
    // checked before the body arrives: 0x36 with remaining length 10, no body
    CHECK(decode_error({0x36, 0x0A}, v5) == reason_code::malformed_packet);
}

TEST_CASE("fixed header: PUBREL, SUBSCRIBE, UNSUBSCRIBE need flags 0010", "[codec][header]") {
    for (std::uint8_t type : {6, 8, 10}) {
        for (std::uint8_t flags = 0; flags < 16; ++flags) {
            if (flags == 2) continue;
            INFO("type " << int(type) << " flags " << int(flags));
            const std::uint8_t b0 = static_cast<std::uint8_t>(type << 4 | flags);
            CHECK(decode_error({b0, 0x02, 0x00, 0x01}, v311) == reason_code::malformed_packet);
            CHECK(decode_error({b0, 0x02, 0x00, 0x01}, v5) == reason_code::malformed_packet);
        }
    }
}

TEST_CASE("fixed header: other packet types need flags 0000", "[codec][header]") {
    for (std::uint8_t type : {1, 2, 4, 5, 7, 9, 11, 12, 13, 14, 15}) {
        for (std::uint8_t flags = 1; flags < 16; ++flags) {
            INFO("type " << int(type) << " flags " << int(flags));
            const std::uint8_t b0 = static_cast<std::uint8_t>(type << 4 | flags);
            CHECK(decode_error({b0, 0x00}, v5) == reason_code::malformed_packet);
        }
    }
}

TEST_CASE("fixed header: fixed-size packets with a wrong length fail before the body", "[codec][header]") {
    // PINGREQ / PINGRESP with remaining length 1 (body byte not even sent)
    CHECK(decode_error({0xC0, 0x01}, v311) == reason_code::malformed_packet);
    CHECK(decode_error({0xD0, 0x01}, v5) == reason_code::malformed_packet);
    // 3.1.1 PUBACK with remaining length 3
    CHECK(decode_error({0x40, 0x03}, v311) == reason_code::malformed_packet);
    // 3.1.1 DISCONNECT with remaining length 1
    CHECK(decode_error({0xE0, 0x01}, v311) == reason_code::malformed_packet);
    // AUTH does not exist in 3.1.1
    CHECK(decode_error({0xF0, 0x00}, v311) == reason_code::malformed_packet);
}

TEST_CASE("fixed header: decode never reads beyond the span it is given", "[codec][header]") {
    // A PUBLISH whose remaining length covers 3 bytes, followed by garbage
    // in the same buffer: decode sees only its own 5 bytes.
    const bytes b{0x30, 0x03, 0x00, 0x01, 't', 0xFF, 0xFF};
    packet p;
    const auto r = decode_bytes(b, v311, p);
    REQUIRE(r.status == decode_status::ok);
    CHECK(r.consumed == 5);
    CHECK(std::get<publish>(p).topic == "t");
    CHECK(std::get<publish>(p).payload.empty());
}
