// Key and value encodings of the store (internal to persistence/).
//
// Keys are laid out for the access patterns: everything a client owns
// (subscriptions, deliveries, inbound QoS 2 ids) is keyed
//     escaped(client_id) 0x00 <rest>
// so one client's records are one contiguous range, which erase_session
// deletes with DeleteRange and load() reads in order. The client id is
// escaped (0x00 -> 0x01 0x01, 0x01 -> 0x01 0x02) so that the 0x00
// terminator is unambiguous even for ids MQTT would never allow; escaping
// keeps byte order, so [escaped 0x00, escaped 0x01) holds exactly that
// client's keys. Delivery sequence numbers are big-endian so that byte
// order is numeric order.
//
// Values are a compact binary encoding of our own: a version byte, then
// fixed bytes and LEB128 varints; strings are varint length + bytes. What
// the key already holds (topic of a retained message, client id, filter,
// seq, packet id) is not repeated in the value. Decoders check every
// length against what is left and reject trailing bytes, unknown flag bits
// and out-of-range numbers: a corrupt value is an error, never a crash.
//
// Thread-safety: free functions without shared state.
#pragma once

#include "persistence/store.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace strata::persistence::encoding {

// Version byte that starts every value written by this build.
inline constexpr std::uint8_t value_version = 1;

// ---- keys ------------------------------------------------------------------

// Appends escaped(client_id) and the 0x00 terminator.
void append_client_prefix(std::string& out, std::string_view client_id);
// The half-open range [begin, end) of every key owned by client_id.
[[nodiscard]] std::string client_range_begin(std::string_view client_id);
[[nodiscard]] std::string client_range_end(std::string_view client_id);

void subscription_key(std::string& out, std::string_view client_id, std::string_view filter);
void delivery_key(std::string& out, std::string_view client_id, std::uint64_t seq);
void inbound_qos2_key(std::string& out, std::string_view client_id, std::uint16_t packet_id);

// Key parsers: return nullptr on success, else a static description.
// parse_client_prefix consumes escaped(client_id) 0x00 from the front of key.
[[nodiscard]] const char* parse_client_prefix(std::string_view& key, std::string& client_id);
[[nodiscard]] const char* parse_subscription_key(std::string_view key, std::string& client_id,
                                                 std::string& filter);
[[nodiscard]] const char* parse_delivery_key(std::string_view key, std::string& client_id,
                                             std::uint64_t& seq);
[[nodiscard]] const char* parse_inbound_qos2_key(std::string_view key, std::string& client_id,
                                                 std::uint16_t& packet_id);

// ---- values ----------------------------------------------------------------
// Encoders append to out. Decoders fill the fields the value holds and
// return nullptr, or a static description of what is wrong.

void encode_retained(std::string& out, const stored_message& m);  // topic: key
[[nodiscard]] const char* decode_retained(std::string_view v, stored_message& m);

void encode_session(std::string& out, const stored_session& s);  // client id: key
[[nodiscard]] const char* decode_session(std::string_view v, stored_session& s);

void encode_subscription(std::string& out, const stored_subscription& s);  // filter: key
[[nodiscard]] const char* decode_subscription(std::string_view v, stored_subscription& s);

void encode_delivery(std::string& out, const stored_delivery& d);  // client id, seq: key
// The same with `msg` in place of d.msg (a message read from a shared_message).
void encode_delivery(std::string& out, const stored_delivery& d, const stored_message& msg);
[[nodiscard]] const char* decode_delivery(std::string_view v, stored_delivery& d);

void encode_inbound_qos2(std::string& out);
[[nodiscard]] const char* decode_inbound_qos2(std::string_view v);

// The meta column family's format version value (4 bytes, big-endian).
void encode_format_version(std::string& out, std::uint32_t version);
[[nodiscard]] const char* decode_format_version(std::string_view v, std::uint32_t& version);

// Printable form of a key for error messages (non-printable bytes as \xNN,
// long keys cut).
[[nodiscard]] std::string printable(std::string_view key);

}  // namespace strata::persistence::encoding
