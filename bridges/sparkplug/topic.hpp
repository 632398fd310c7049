// Sparkplug B topic names (Sparkplug 3.0, chapter 4):
//   spBv1.0/GROUP/NBIRTH|NDATA|NDEATH|NCMD/EDGE_NODE
//   spBv1.0/GROUP/DBIRTH|DDATA|DDEATH|DCMD/EDGE_NODE/DEVICE
//   spBv1.0/STATE/HOST_ID                          (host applications)
// and where a Sparkplug Aware broker keeps the births:
//   $sparkplug/certificates/spBv1.0/GROUP/NBIRTH/EDGE_NODE
//   $sparkplug/certificates/spBv1.0/GROUP/DBIRTH/EDGE_NODE/DEVICE
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::bridges::sparkplug {

inline constexpr std::string_view namespace_v1 = "spBv1.0";
inline constexpr std::string_view certificates_prefix = "$sparkplug/certificates/";

enum class message_type : std::uint8_t { nbirth, ndeath, ndata, ncmd, dbirth, ddeath, ddata, dcmd, state };
[[nodiscard]] std::string_view to_string(message_type t) noexcept;
// Whether a message of type `t` names a device (DBIRTH, DDEATH, DDATA, DCMD).
[[nodiscard]] bool is_device(message_type t) noexcept;

struct topic {
    message_type type = message_type::ndata;
    std::string_view group;      // empty for STATE
    std::string_view edge_node;  // the host id for STATE
    std::string_view device;     // empty unless is_device(type)
};

// The parts of a Sparkplug B topic name (views into `name`), or none when
// it is not one: another namespace, an unknown message type, a missing or
// empty id, a device on a node message or none on a device message.
[[nodiscard]] std::optional<topic> parse_topic(std::string_view name) noexcept;

// spBv1.0/GROUP/TYPE/EDGE_NODE[/DEVICE] (not for STATE).
[[nodiscard]] std::string topic_name(message_type t, std::string_view group, std::string_view edge_node,
                                     std::string_view device = {});
// Where a Sparkplug Aware broker keeps the birth on topic name `birth`
// ("$sparkplug/certificates/" + birth).
[[nodiscard]] std::string certificate_topic(std::string_view birth);

}  // namespace strata::bridges::sparkplug
