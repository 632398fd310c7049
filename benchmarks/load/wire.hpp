// strata-bench: the little MQTT the load generator needs, hand-rolled.
//
// Only the client side of CONNECT, SUBSCRIBE, PUBLISH, the QoS 1/2
// acknowledgements, PINGREQ and DISCONNECT is encoded, and only the fixed
// header plus the few fields the tool reads are decoded (CONNACK, SUBACK,
// PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP). Publish packets
// are built once per publisher; the hot path patches the packet id and the
// payload header in place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace strata::bench {

using bytes = std::vector<std::uint8_t>;

// Protocol levels as they appear in CONNECT.
inline constexpr std::uint8_t mqtt_311 = 4;
inline constexpr std::uint8_t mqtt_5 = 5;

// The payload header every measured message starts with (16 bytes, little
// endian): publisher id, sequence number, send timestamp (ns, steady clock
// of the tool's process). Larger payloads are zero-padded after it.
inline constexpr std::size_t payload_header_size = 16;

struct payload_header {
    std::uint32_t publisher = 0;
    std::uint32_t seq = 0;
    std::uint64_t sent_ns = 0;
};

inline void put_payload_header(std::uint8_t* p, const payload_header& h) noexcept {
    std::memcpy(p, &h.publisher, 4);
    std::memcpy(p + 4, &h.seq, 4);
    std::memcpy(p + 8, &h.sent_ns, 8);
}

inline payload_header get_payload_header(const std::uint8_t* p) noexcept {
    payload_header h;
    std::memcpy(&h.publisher, p, 4);
    std::memcpy(&h.seq, p + 4, 4);
    std::memcpy(&h.sent_ns, p + 8, 8);
    return h;
}

inline void put_u16(bytes& out, std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v & 0xff));
}

inline void put_varint(bytes& out, std::uint32_t v) {
    do {
        std::uint8_t b = v & 0x7f;
        v >>= 7;
        if (v) b |= 0x80;
        out.push_back(b);
    } while (v);
}

inline void put_string(bytes& out, std::string_view s) {
    put_u16(out, static_cast<std::uint16_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
}

// Prepends the fixed header (first byte + remaining length) to a body.
inline bytes with_fixed_header(std::uint8_t first, const bytes& body) {
    bytes out;
    out.reserve(body.size() + 5);
    out.push_back(first);
    put_varint(out, static_cast<std::uint32_t>(body.size()));
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

// persistent: a session the broker keeps (and stores) after the connection,
// 3.1.1 clean session 0; 5.0 clean start with a Session Expiry Interval of
// one hour.
inline bytes encode_connect(std::uint8_t level, std::string_view client_id, std::uint16_t keepalive,
                            bool persistent = false) {
    bytes b;
    put_string(b, "MQTT");
    b.push_back(level);
    // no will, no credentials
    b.push_back(persistent && level != mqtt_5 ? 0x00 : 0x02);
    put_u16(b, keepalive);
    if (level == mqtt_5) {
        // Receive Maximum 65535, no aliases; a persistent session's expiry
        if (persistent) {
            const std::uint8_t props[] = {5, 0x11, 0x00, 0x00, 0x0E, 0x10};  // Session Expiry 3600 s
            b.insert(b.end(), props, props + sizeof props);
        } else {
            b.push_back(0);
        }
    }
    put_string(b, client_id);
    return with_fixed_header(0x10, b);
}

inline bytes encode_subscribe(std::uint8_t level, std::uint16_t packet_id, std::string_view filter,
                              std::uint8_t qos) {
    bytes b;
    put_u16(b, packet_id);
    if (level == mqtt_5) b.push_back(0);
    put_string(b, filter);
    b.push_back(qos & 3);
    return with_fixed_header(0x82, b);
}

// A PUBLISH with a payload of `payload_size` zero bytes; the caller patches
// the payload header (at payload_offset) and, for QoS > 0, the packet id (at
// packet_id_offset) before each send.
struct publish_template {
    bytes packet;
    std::size_t packet_id_offset = 0;  // 0 when QoS 0
    std::size_t payload_offset = 0;
};

inline publish_template make_publish(std::uint8_t level, std::string_view topic, std::size_t payload_size,
                                     std::uint8_t qos, bool retain) {
    bytes b;
    put_string(b, topic);
    std::size_t pid_at = 0;
    if (qos > 0) {
        pid_at = b.size();
        put_u16(b, 1);
    }
    if (level == mqtt_5) b.push_back(0);
    const std::size_t payload_at = b.size();
    b.resize(b.size() + payload_size, 0);
    const std::uint8_t first = static_cast<std::uint8_t>(0x30 | (qos << 1) | (retain ? 1 : 0));
    publish_template t;
    t.packet = with_fixed_header(first, b);
    const std::size_t header = t.packet.size() - b.size();
    t.packet_id_offset = qos > 0 ? header + pid_at : 0;
    t.payload_offset = header + payload_at;
    return t;
}

// First bytes of the acknowledgement packets (PUBREL has the flags 0010).
inline constexpr std::uint8_t puback_byte = 0x40;
inline constexpr std::uint8_t pubrec_byte = 0x50;
inline constexpr std::uint8_t pubrel_byte = 0x62;
inline constexpr std::uint8_t pubcomp_byte = 0x70;

// PUBACK, PUBREC, PUBREL or PUBCOMP with success: the same four bytes in
// 3.1.1 and 5.0 (5.0 omits the reason code when it is 0 and there are no
// properties).
inline void append_ack(bytes& out, std::uint8_t first, std::uint16_t packet_id) {
    const std::uint8_t p[4] = {first, 0x02, static_cast<std::uint8_t>(packet_id >> 8),
                               static_cast<std::uint8_t>(packet_id & 0xff)};
    out.insert(out.end(), p, p + 4);
}

// The reason code of a received PUBACK, PUBREC, PUBREL or PUBCOMP body of
// `len` bytes: absent (3.1.1, or 5.0's short form) means success.
inline std::uint8_t ack_reason(const std::uint8_t* p, std::uint32_t len) noexcept {
    return len >= 3 ? p[2] : 0;
}

inline void append_pingreq(bytes& out) {
    out.push_back(0xc0);
    out.push_back(0x00);
}

inline void append_disconnect(bytes& out) {
    out.push_back(0xe0);
    out.push_back(0x00);
}

// Parses the fixed header at p[0..n). Returns the header size (2..5) and sets
// `remaining`; 0 when more bytes are needed; -1 when malformed.
inline int parse_fixed_header(const std::uint8_t* p, std::size_t n, std::uint32_t& remaining) noexcept {
    if (n < 2) return 0;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        if (static_cast<std::size_t>(i) + 1 >= n) return 0;
        const std::uint8_t b = p[1 + i];
        v |= static_cast<std::uint32_t>(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            remaining = v;
            return i + 2;
        }
    }
    return -1;
}

// Reads an MQTT variable byte integer at p[0..n); returns its size or 0.
inline int read_varint(const std::uint8_t* p, std::size_t n, std::uint32_t& v) noexcept {
    v = 0;
    for (int i = 0; i < 4 && static_cast<std::size_t>(i) < n; ++i) {
        v |= static_cast<std::uint32_t>(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) return i + 1;
    }
    return 0;
}

inline std::uint16_t read_u16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

}  // namespace strata::bench
