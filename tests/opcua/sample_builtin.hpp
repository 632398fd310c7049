// Non-default sample values of the built-in types, for the round trips of
// the generated structures (generated_samples.hpp).
#pragma once

#include "bridges/opcua/generated/types.hpp"

#include <string>

namespace strata::bridges::opcua::test {

inline void sample(bool& v, int) { v = true; }
inline void sample(std::int8_t& v, int s) { v = static_cast<std::int8_t>(-1 - s % 100); }
inline void sample(std::uint8_t& v, int s) { v = static_cast<std::uint8_t>(1 + s % 200); }
inline void sample(std::int16_t& v, int s) { v = static_cast<std::int16_t>(-1000 - s); }
inline void sample(std::uint16_t& v, int s) { v = static_cast<std::uint16_t>(1000 + s); }
inline void sample(std::int32_t& v, int s) { v = -100000 - s; }
inline void sample(std::uint32_t& v, int s) { v = 100000u + static_cast<std::uint32_t>(s); }
inline void sample(std::int64_t& v, int s) { v = -(std::int64_t{1} << 40) - s; }
inline void sample(std::uint64_t& v, int s) { v = (std::uint64_t{1} << 40) + static_cast<std::uint64_t>(s); }
inline void sample(float& v, int s) { v = 0.5f + static_cast<float>(s); }
inline void sample(double& v, int s) { v = 0.25 + s; }
inline void sample(std::string& v, int s) { v = "s" + std::to_string(s); }
inline void sample(date_time& v, int s) { v = date_time::from_unix_us(1'700'000'000'000'000 + s); }
inline void sample(guid& v, int s) { v = guid{static_cast<std::uint32_t>(s), 2, 3, {4, 5, 6, 7, 8, 9, 10, 11}}; }
inline void sample(status_code& v, int) { v = status_code{0x80340000}; }
inline void sample(xml_element& v, int s) { v.value = "<x n=\"" + std::to_string(s) + "\"/>"; }
inline void sample(node_id& v, int s) { v = node_id{2, "n" + std::to_string(s)}; }
inline void sample(expanded_node_id& v, int s) { v = expanded_node_id{node_id{3, static_cast<std::uint32_t>(s)}, "urn:x", 1}; }
inline void sample(qualified_name& v, int s) { v = qualified_name{1, "q" + std::to_string(s)}; }
inline void sample(localized_text& v, int s) { v = localized_text{"en", "t" + std::to_string(s)}; }
inline void sample(variant& v, int s) { v = variant{std::vector<std::int32_t>{s, -s}}; }
inline void sample(data_value& v, int s) {
    v.value = variant{0.5 + s};
    v.source_timestamp = date_time{1000 + s};
}
inline void sample(diagnostic_info& v, int s) {
    v.symbolic_id = s;
    v.additional_info = "why";
}
inline void sample(extension_object& v, int s) {
    v.type_id = node_id{2, static_cast<std::uint32_t>(5000 + s)};  // not in the registry: stays opaque
    v.body_encoding = extension_object::encoding::byte_string;
    v.body = {1, 2, static_cast<std::uint8_t>(s)};
}

}  // namespace strata::bridges::opcua::test
