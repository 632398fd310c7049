// Text forms and conversions of the built-in value types: DateTime <-> Unix
// time and ISO 8601, Guid text, NodeId text ("ns=2;s=..."), StatusCode names.
#include "bridges/opcua/generated/status_codes.hpp"
#include "bridges/opcua/types.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>

namespace strata::bridges::opcua {

std::string_view to_string(builtin_type t) noexcept {
    static constexpr std::string_view names[] = {
        "Null", "Boolean", "SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64",
        "UInt64", "Float", "Double", "String", "DateTime", "Guid", "ByteString", "XmlElement",
        "NodeId", "ExpandedNodeId", "StatusCode", "QualifiedName", "LocalizedText",
        "ExtensionObject", "DataValue", "Variant", "DiagnosticInfo",
    };
    const auto i = static_cast<std::size_t>(t);
    return i < std::size(names) ? names[i] : std::string_view{"?"};
}

// ---- DateTime ----

date_time date_time::from_unix_us(std::int64_t us) noexcept {
    constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
    if (us > (max - unix_epoch_ticks) / 10) return {max};
    if (us < -unix_epoch_ticks / 10) return {0};
    return {us * 10 + unix_epoch_ticks};
}

date_time date_time::now() noexcept {
    return from_unix(std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()));
}

std::string date_time::to_iso8601() const {
    using namespace std::chrono;
    // Days and the time of day counted from 1601-01-01 (a sys_days value).
    constexpr std::int64_t ticks_per_day = 864'000'000'000;
    const std::int64_t t = std::max<std::int64_t>(ticks, 0);
    const sys_days epoch1601 = sys_days{year{1601} / January / 1};
    const year_month_day ymd{epoch1601 + days{t / ticks_per_day}};
    std::int64_t rest = t % ticks_per_day;
    const int h = static_cast<int>(rest / 36'000'000'000);
    rest %= 36'000'000'000;
    const int m = static_cast<int>(rest / 600'000'000);
    rest %= 600'000'000;
    const int s = static_cast<int>(rest / 10'000'000);
    int frac = static_cast<int>(rest % 10'000'000);
    char buf[48];
    int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(ymd.year()),
                          static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), h, m, s);
    if (frac != 0) {
        int digits = 7;
        while (frac % 10 == 0) {
            frac /= 10;
            --digits;
        }
        n += std::snprintf(buf + n, sizeof buf - n, ".%0*d", digits, frac);
    }
    buf[n++] = 'Z';
    return std::string(buf, static_cast<std::size_t>(n));
}

// ---- Guid ----

namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// `digits` hex digits from `s` at `pos` into `out`; false if any is not hex.
bool parse_hex(std::string_view s, std::size_t pos, int digits, std::uint64_t& out) {
    out = 0;
    for (int i = 0; i < digits; ++i) {
        const int v = hex_value(s[pos + static_cast<std::size_t>(i)]);
        if (v < 0) return false;
        out = out << 4 | static_cast<std::uint64_t>(v);
    }
    return true;
}

}  // namespace

std::optional<guid> guid::parse(std::string_view s) {
    if (s.size() != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return std::nullopt;
    guid g;
    std::uint64_t v = 0;
    if (!parse_hex(s, 0, 8, v)) return std::nullopt;
    g.data1 = static_cast<std::uint32_t>(v);
    if (!parse_hex(s, 9, 4, v)) return std::nullopt;
    g.data2 = static_cast<std::uint16_t>(v);
    if (!parse_hex(s, 14, 4, v)) return std::nullopt;
    g.data3 = static_cast<std::uint16_t>(v);
    static constexpr std::size_t at[8] = {19, 21, 24, 26, 28, 30, 32, 34};
    for (std::size_t i = 0; i < 8; ++i) {
        if (!parse_hex(s, at[i], 2, v)) return std::nullopt;
        g.data4[i] = static_cast<std::uint8_t>(v);
    }
    return g;
}

std::string guid::to_string() const {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", data1, data2, data3,
                  data4[0], data4[1], data4[2], data4[3], data4[4], data4[5], data4[6], data4[7]);
    return buf;
}

// ---- NodeId text form ----

namespace {

constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::vector<std::uint8_t>& in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < in.size(); i += 3) {
        const std::size_t n = std::min<std::size_t>(3, in.size() - i);
        std::uint32_t v = std::uint32_t{in[i]} << 16;
        if (n > 1) v |= std::uint32_t{in[i + 1]} << 8;
        if (n > 2) v |= in[i + 2];
        for (std::size_t k = 0; k < 4; ++k)
            out.push_back(k <= n ? b64_alphabet[(v >> (18 - 6 * k)) & 0x3F] : '=');
    }
    return out;
}

std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view s) {
    if (s.size() % 4 != 0) return std::nullopt;
    std::vector<std::uint8_t> out;
    out.reserve(s.size() / 4 * 3);
    for (std::size_t i = 0; i < s.size(); i += 4) {
        std::uint32_t v = 0;
        int pad = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const char c = s[i + k];
            int d = 0;
            if (c == '=' && i + 4 == s.size() && k >= 2) {
                ++pad;
            } else {
                if (pad) return std::nullopt;  // data after padding
                const char* p = std::find(b64_alphabet, b64_alphabet + 64, c);
                if (p == b64_alphabet + 64) return std::nullopt;
                d = static_cast<int>(p - b64_alphabet);
            }
            v = v << 6 | static_cast<std::uint32_t>(d);
        }
        out.push_back(static_cast<std::uint8_t>(v >> 16));
        if (pad < 2) out.push_back(static_cast<std::uint8_t>(v >> 8));
        if (pad < 1) out.push_back(static_cast<std::uint8_t>(v));
    }
    return out;
}

template <class T>
bool parse_number(std::string_view s, T& out) {
    if (s.empty()) return false;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size();
}

}  // namespace

bool node_id::is_null() const noexcept {
    const std::uint32_t* n = numeric();
    return namespace_index == 0 && n && *n == 0;
}

std::optional<node_id> node_id::parse(std::string_view text) {
    node_id out;
    if (text.starts_with("ns=")) {
        const std::size_t semi = text.find(';');
        if (semi == std::string_view::npos || !parse_number(text.substr(3, semi - 3), out.namespace_index))
            return std::nullopt;
        text.remove_prefix(semi + 1);
    }
    if (text.size() < 2 || text[1] != '=') return std::nullopt;
    const std::string_view id = text.substr(2);
    switch (text[0]) {
        case 'i': {
            std::uint32_t n = 0;
            if (!parse_number(id, n)) return std::nullopt;
            out.identifier = n;
            return out;
        }
        case 's': out.identifier = std::string(id); return out;
        case 'g': {
            const auto g = guid::parse(id);
            if (!g) return std::nullopt;
            out.identifier = *g;
            return out;
        }
        case 'b': {
            auto b = base64_decode(id);
            if (!b) return std::nullopt;
            out.identifier = std::move(*b);
            return out;
        }
        default: return std::nullopt;
    }
}

std::string node_id::to_string() const {
    std::string out;
    if (namespace_index != 0) out = "ns=" + std::to_string(namespace_index) + ";";
    switch (identifier.index()) {
        case 0: return out + "i=" + std::to_string(std::get<0>(identifier));
        case 1: return out + "s=" + std::get<1>(identifier);
        case 2: return out + "g=" + std::get<2>(identifier).to_string();
        default: return out + "b=" + base64_encode(std::get<3>(identifier));
    }
}

// ---- StatusCode names ----

std::string_view status_name(std::uint32_t code) noexcept {
    code &= 0xFFFF0000u;
    const auto table = generated::status_codes();
    const auto it = std::lower_bound(table.begin(), table.end(), code,
                                     [](const generated::status_entry& e, std::uint32_t c) { return e.code < c; });
    return it != table.end() && it->code == code ? it->name : std::string_view{};
}

std::optional<std::uint32_t> status_from_name(std::string_view name) noexcept {
    for (const auto& e : generated::status_codes())
        if (e.name == name) return e.code;
    return std::nullopt;
}

std::string status_code::name() const {
    const std::string_view n = status_name(value);
    if (!n.empty()) return std::string(n);
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08X", code());
    return buf;
}

}  // namespace strata::bridges::opcua
