// UTF-8 validation as MQTT requires it (3.1.1 section 1.5.3, 5.0 section
// 1.5.4): well-formed per RFC 3629 / Unicode table 3-7, so no surrogate code
// points (U+D800..U+DFFF), no overlong forms, nothing above U+10FFFF; and, for
// UTF-8 Encoded Strings, no U+0000. Other control characters and
// non-characters are allowed (the spec lets a receiver refuse them, we don't).
//
// Topic names and payloads are mostly ASCII, so eight bytes are checked at a
// time until a non-ASCII (or NUL) byte shows up.
#include "broker/codec/codec.hpp"
#include "broker/codec/wire.hpp"

#include <cstring>

namespace strata::mqtt {
namespace wire {

bool utf8_well_formed(std::string_view sv, bool allow_nul) noexcept {
    const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
    const std::size_t n = sv.size();
    constexpr std::uint64_t high = 0x8080808080808080ull;
    constexpr std::uint64_t ones = 0x0101010101010101ull;
    std::size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            std::uint64_t w;
            std::memcpy(&w, s + i, 8);
            // No byte >= 0x80, and (unless allowed) no zero byte.
            if ((w & high) == 0 && (allow_nul || ((w - ones) & ~w & high) == 0)) {
                i += 8;
                continue;
            }
        }
        const unsigned char c = s[i];
        if (c < 0x80) {
            if (c == 0 && !allow_nul) return false;
            ++i;
            continue;
        }
        // Lead byte: how many continuation bytes follow and the range the
        // first of them must lie in (narrower for E0, ED, F0, F4).
        std::size_t len;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 2;
            if (c == 0xE0) lo = 0xA0;       // overlong
            else if (c == 0xED) hi = 0x9F;  // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 3;
            if (c == 0xF0) lo = 0x90;       // overlong
            else if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
        } else {
            return false;  // 80..C1 (continuation or overlong lead), F5..FF
        }
        if (n - i - 1 < len) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (std::size_t k = 2; k <= len; ++k) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
        }
        i += len + 1;
    }
    return true;
}

}  // namespace wire

bool valid_utf8(std::string_view s) noexcept { return wire::utf8_well_formed(s, false); }

}  // namespace strata::mqtt
