// Shared helpers for the OPC UA codec tests.
#pragma once

#include "bridges/opcua/binary.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace strata::bridges::opcua::test {

using bytes = std::vector<std::uint8_t>;

inline bytes operator+(bytes a, const bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// Little-endian Int32 length followed by the characters.
inline bytes str(std::string_view s) {
    const auto n = static_cast<std::uint32_t>(s.size());
    bytes b(4 + s.size());
    for (std::size_t i = 0; i < 4; ++i) b[i] = static_cast<std::uint8_t>(n >> (8 * i));
    std::copy(s.begin(), s.end(), b.begin() + 4);
    return b;
}

inline bytes le32(std::uint32_t v) {
    return {static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v >> 16),
            static_cast<std::uint8_t>(v >> 24)};
}

// Decodes `b`, which must be exactly one T.
template <class T>
T decode_exact(const bytes& b, const type_registry* types = nullptr, decode_limits limits = {}) {
    T out{};
    const decode_outcome r = decode_from(std::span<const std::uint8_t>(b), out, limits, types);
    INFO("error: " << r.error << " at " << r.offset);
    REQUIRE(r.ok);
    REQUIRE(r.consumed == b.size());
    return out;
}

// The reason decoding `b` as a T fails with.
template <class T>
std::string decode_error(const bytes& b, decode_limits limits = {}, const type_registry* types = nullptr) {
    T out{};
    const decode_outcome r = decode_from(std::span<const std::uint8_t>(b), out, limits, types);
    REQUIRE_FALSE(r.ok);
    return r.error;
}

// Every strict prefix of an encoding fails cleanly.
template <class T>
void check_prefixes(const bytes& b, const type_registry* types = nullptr) {
    for (std::size_t n = 0; n < b.size(); ++n) {
        T out{};
        const decode_outcome r = decode_from(std::span<const std::uint8_t>(b.data(), n), out, {}, types);
        INFO("prefix length " << n);
        REQUIRE_FALSE(r.ok);
    }
}

// Both directions: `b` decodes to `expected` (every prefix fails), and
// `expected` encodes to exactly `b`.
template <class T>
void check_both_ways(const bytes& b, const T& expected, const type_registry* types = nullptr) {
    CHECK(decode_exact<T>(b, types) == expected);
    CHECK(encode_to_bytes(expected) == b);
    check_prefixes<T>(b, types);
}

// Encode then decode gives the value back.
template <class T>
void check_round_trip(const T& v, const type_registry* types = nullptr) {
    const bytes b = encode_to_bytes(v);
    CHECK(decode_exact<T>(b, types) == v);
}

}  // namespace strata::bridges::opcua::test
