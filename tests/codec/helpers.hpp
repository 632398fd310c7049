// Shared helpers for the codec tests.
#pragma once

#include "broker/codec/codec.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace Catch {
template <>
struct StringMaker<strata::mqtt::reason_code> {
    static std::string convert(strata::mqtt::reason_code rc) { return strata::mqtt::to_string(rc); }
};
template <>
struct StringMaker<strata::mqtt::decode_status> {
    static std::string convert(strata::mqtt::decode_status s) {
        switch (s) {
            case strata::mqtt::decode_status::ok: return "ok";
            case strata::mqtt::decode_status::need_more: return "need_more";
            case strata::mqtt::decode_status::error: return "error";
        }
        return "?";
    }
};
}  // namespace Catch

namespace strata::mqtt::test {

using bytes = std::vector<std::uint8_t>;
constexpr auto v311 = protocol_version::v311;
constexpr auto v5 = protocol_version::v5;

inline bytes operator+(bytes a, const bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// A two-byte length prefixed string.
inline bytes str(std::string_view s) {
    bytes b(2 + s.size());
    b[0] = static_cast<std::uint8_t>(s.size() >> 8);
    b[1] = static_cast<std::uint8_t>(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) b[2 + i] = static_cast<std::uint8_t>(s[i]);
    return b;
}

inline bytes varint(std::uint32_t v) {
    bytes b;
    do {
        std::uint8_t x = v & 0x7F;
        v >>= 7;
        if (v) x |= 0x80;
        b.push_back(x);
    } while (v);
    return b;
}

// Fixed header (first byte + remaining length) followed by `body`.
inline bytes pkt(std::uint8_t first, const bytes& body) {
    return bytes{first} + varint(static_cast<std::uint32_t>(body.size())) + body;
}

// Property length followed by the properties.
inline bytes props(const bytes& p) { return varint(static_cast<std::uint32_t>(p.size())) + p; }

inline decode_result decode_bytes(const bytes& b, protocol_version v, packet& out, decode_limits lim = {}) {
    return decode(std::span<const std::uint8_t>(b), v, lim, out);
}

// Decodes `b`, which must be exactly one valid packet of type T.
template <class T>
T decode_as(const bytes& b, protocol_version v) {
    packet p;
    const decode_result r = decode_bytes(b, v, p);
    INFO("detail: " << r.detail);
    REQUIRE(r.status == decode_status::ok);
    REQUIRE(r.consumed == b.size());
    REQUIRE(std::holds_alternative<T>(p));
    return std::get<T>(p);
}

// The reason code decoding `b` fails with.
inline reason_code decode_error(const bytes& b, protocol_version v, decode_limits lim = {}) {
    packet p;
    const decode_result r = decode_bytes(b, v, p, lim);
    INFO("detail: " << r.detail);
    REQUIRE(r.status == decode_status::error);
    return r.code;
}

inline bytes encode_bytes(const packet& p, protocol_version v) {
    bytes out;
    encode(p, v, out);
    CHECK(out.size() == encoded_size(p, v));
    return out;
}

// Every strict prefix of a complete packet is need_more.
inline void check_prefixes(const bytes& b, protocol_version v) {
    for (std::size_t n = 0; n < b.size(); ++n) {
        packet p;
        const decode_result r = decode(std::span<const std::uint8_t>(b.data(), n), v, {}, p);
        INFO("prefix length " << n << ", detail: " << r.detail);
        REQUIRE(r.status == decode_status::need_more);
    }
}

// Both directions: `b` decodes to `expected` (and every prefix of it to
// need_more), `expected` encodes to exactly `b`.
template <class T>
void check_both_ways(const bytes& b, const T& expected, protocol_version v) {
    const T got = decode_as<T>(b, v);
    CHECK(got == expected);
    CHECK(encode_bytes(packet{expected}, v) == b);
    check_prefixes(b, v);
}

}  // namespace strata::mqtt::test
