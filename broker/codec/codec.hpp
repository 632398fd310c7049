// Sans-I/O MQTT codec: bytes in, packets (or need_more, or an error) out;
// packets in, bytes out. No sockets, executors or clocks here.
//
// Thread-safety: all functions are pure (no shared state); call from anywhere.
#pragma once

#include "broker/codec/packet.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace strata::mqtt {

// Limits checked while decoding, before anything is allocated.
struct decode_limits {
    // Largest whole packet (fixed header included) accepted, in bytes.
    // Default: the protocol maximum (remaining length 268,435,455 + 5).
    std::uint32_t max_packet_size = 268'435'460;
};

enum class decode_status : std::uint8_t {
    ok,         // one packet decoded; `consumed` bytes belong to it
    need_more,  // the bytes so far are a valid prefix; call again with more
    error,      // malformed or not allowed; `code` says which, `detail` why
};

struct decode_result {
    decode_status status = decode_status::need_more;
    std::size_t consumed = 0;                         // valid when ok
    reason_code code = reason_code::success;          // valid when error:
    // malformed_packet, protocol_error, packet_too_large,
    // unsupported_protocol_version, payload_format_invalid, topic_alias_invalid
    const char* detail = "";                          // static string, for logs
};

// The fixed header of the packet at the front of a buffer.
struct fixed_header {
    packet_type type{};
    std::uint8_t flags = 0;                // low nibble of the first byte
    std::uint32_t remaining_length = 0;
    std::uint8_t header_size = 0;          // 2..5
    [[nodiscard]] std::size_t total_size() const noexcept { return header_size + std::size_t{remaining_length}; }
};

// Parses only the fixed header. need_more until the whole header is present;
// error (malformed_packet) for a bad varint (more than 4 bytes, or not
// minimally encoded) or reserved packet type 0; error (packet_too_large)
// when total_size() exceeds limits.max_packet_size. On ok, `consumed` is
// header_size. Flags are not checked here (decode does).
[[nodiscard]] decode_result parse_fixed_header(std::span<const std::uint8_t> in,
                                               const decode_limits& limits, fixed_header& out);

// Decodes one packet from the front of `in`. A CONNECT is decoded whatever
// `version` says (it carries its own protocol level; out.version tells it);
// every other packet is decoded as `version` defines it. Any packet type can be
// decoded (client- and server-bound), so the same codec serves bridges and
// the benchmark load generator; who may send what is the session's business.
// UTF-8 strings are validated (well-formed, no U+0000); property identifiers
// are checked against the packet type and for illegal duplicates; reserved
// flag bits are checked. On error `out` is unspecified.
// Errors that the fixed header alone shows (flags, packet_too_large, AUTH in
// 3.1.1, a wrong remaining length for PINGREQ/PINGRESP and 3.1.1 PUBACK..
// PUBCOMP/CONNACK/UNSUBACK/DISCONNECT) are reported before the body arrives.
// If `out` already holds a publish, a PUBLISH is decoded into it in place
// (its strings' capacity is reused): a session that keeps one packet
// decodes PUBLISHes without allocating once its buffers are large enough.
[[nodiscard]] decode_result decode(std::span<const std::uint8_t> in, protocol_version version,
                                   const decode_limits& limits, packet& out);

// A PUBLISH to encode without first copying topic and payload into a
// `publish`. The optional overrides replace the corresponding fields of
// `props` (which may be null) so a per-subscriber packet needs no copy of
// the message's properties.
struct publish_view {
    std::string_view topic;        // empty allowed when topic_alias is set (5.0)
    std::string_view payload;
    std::uint8_t qos = 0;
    bool retain = false;
    bool dup = false;
    std::uint16_t packet_id = 0;
    const properties* props = nullptr;
    std::span<const std::uint32_t> subscription_identifiers{};  // replaces props' list when non-empty
    std::optional<std::uint16_t> topic_alias{};                 // replaces props' alias
    std::optional<std::uint32_t> message_expiry_interval{};     // replaces props' expiry
};

// Appends the encoding of `p` to `out`. 3.1.1 encodings omit properties and
// 5.0-only fields; reason codes are mapped to 3.1.1 return codes.
// Exceptions to `version`: a CONNECT is encoded as its own `version` field
// says, an AUTH always the 5.0 way. Only the properties the packet type
// allows are written. Preconditions (not checked): strings and binary data
// at most 65,535 bytes (longer ones are cut there), QoS <= 2, body at most
// 268,435,455 bytes, non-zero packet ids where required, 5.0 reason codes
// valid for the packet; otherwise the bytes are well-framed but may not
// decode.
void encode(const packet& p, protocol_version version, std::vector<std::uint8_t>& out);
void encode_publish(const publish_view& p, protocol_version version, std::vector<std::uint8_t>& out);

// Size in bytes `encode_publish` would append (to honour a peer's Maximum
// Packet Size before encoding).
[[nodiscard]] std::size_t encoded_size(const publish_view& p, protocol_version version);
[[nodiscard]] std::size_t encoded_size(const packet& p, protocol_version version);

// A message's PUBLISH properties on their own (property length, then the
// properties a PUBLISH may carry), for keeping a message outside a packet:
// the store, bridge buffers. decode_message_properties checks what decode()
// checks for a PUBLISH's properties and that nothing follows; it returns
// false on any error.
void encode_message_properties(const properties& p, std::string& out);
[[nodiscard]] bool decode_message_properties(std::string_view in, properties& out);

// UTF-8 well-formedness as MQTT requires (no surrogates, no overlong forms,
// no U+0000).
[[nodiscard]] bool valid_utf8(std::string_view s) noexcept;

[[nodiscard]] packet_type type_of(const packet& p) noexcept;

}  // namespace strata::mqtt
