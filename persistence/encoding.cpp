#include "persistence/encoding.hpp"

#include <cstring>
#include <limits>

namespace strata::persistence::encoding {
namespace {

// ---- primitive writers -----------------------------------------------------

void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

void put_bytes(std::string& out, std::string_view s) {
    put_varint(out, s.size());
    out.append(s);
}

void put_big_endian(std::string& out, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// ---- primitive reader ------------------------------------------------------
// Every read checks what is left; the first failure sticks and later reads
// return zero values, so a decoder can read a whole record and look at
// error_ once (no out-of-bounds access on any input).
class reader {
public:
    explicit reader(std::string_view in) : in_(in) {}

    std::uint8_t u8() {
        if (!need(1, "truncated value")) return 0;
        auto v = static_cast<std::uint8_t>(in_[0]);
        in_.remove_prefix(1);
        return v;
    }

    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (!need(1, "truncated varint")) return 0;
            auto b = static_cast<std::uint8_t>(in_[0]);
            in_.remove_prefix(1);
            // The tenth byte may only carry the top bit of a 64-bit value.
            if (shift == 63 && b > 1) return fail("varint overflows 64 bits"), 0;
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return v;
        }
        return fail("varint too long"), 0;
    }

    std::uint32_t varint32() {
        auto v = varint();
        if (v > 0xffffffffu) return fail("number out of range (32 bits)"), 0;
        return static_cast<std::uint32_t>(v);
    }

    std::uint16_t varint16() {
        auto v = varint();
        if (v > 0xffffu) return fail("number out of range (16 bits)"), 0;
        return static_cast<std::uint16_t>(v);
    }

    std::string_view bytes() {
        auto n = varint();
        if (error_) return {};
        if (n > in_.size()) return fail("length exceeds value"), std::string_view{};
        auto s = in_.substr(0, static_cast<std::size_t>(n));
        in_.remove_prefix(static_cast<std::size_t>(n));
        return s;
    }

    // Reads the version byte; only versions this build writes are known.
    void version() {
        auto v = u8();
        if (!error_ && v != value_version) fail("unknown value version");
    }

    const char* finish() {
        if (!error_ && !in_.empty()) fail("trailing bytes after value");
        return error_;
    }

    const char* fail(const char* why) {
        if (!error_) error_ = why;
        in_ = {};
        return error_;
    }
    [[nodiscard]] const char* error() const { return error_; }

private:
    bool need(std::size_t n, const char* why) {
        if (error_) return false;
        if (in_.size() < n) {
            fail(why);
            return false;
        }
        return true;
    }

    std::string_view in_;
    const char* error_ = nullptr;
};

// Message flag bits.
constexpr std::uint8_t msg_retain = 0x01;
constexpr std::uint8_t msg_known = msg_retain;

// Message body shared by retained, delivery and will values.
void put_message(std::string& out, const stored_message& m, bool with_topic) {
    put_u8(out, m.retain ? msg_retain : 0);
    put_u8(out, m.qos);
    put_varint(out, static_cast<std::uint64_t>(m.expires_at_ms));
    if (with_topic) put_bytes(out, m.topic);
    put_bytes(out, m.payload);
    put_bytes(out, m.properties);
}

void get_message(reader& r, stored_message& m, bool with_topic) {
    auto flags = r.u8();
    if (flags & ~msg_known) r.fail("unknown message flags");
    m.retain = (flags & msg_retain) != 0;
    m.qos = r.u8();
    if (m.qos > 2) r.fail("message QoS out of range");
    m.expires_at_ms = static_cast<std::int64_t>(r.varint());
    if (with_topic) m.topic = r.bytes();
    m.payload = r.bytes();
    m.properties = r.bytes();
}

}  // namespace

// ---- keys ------------------------------------------------------------------

void append_client_prefix(std::string& out, std::string_view client_id) {
    for (char c : client_id) {
        if (c == '\x00') {
            out += "\x01\x01";
        } else if (c == '\x01') {
            out += "\x01\x02";
        } else {
            out.push_back(c);
        }
    }
    out.push_back('\x00');
}

std::string client_range_begin(std::string_view client_id) {
    std::string k;
    append_client_prefix(k, client_id);
    return k;
}

std::string client_range_end(std::string_view client_id) {
    std::string k = client_range_begin(client_id);
    k.back() = '\x01';  // the first key after every "escaped 0x00 ..." key
    return k;
}

void subscription_key(std::string& out, std::string_view client_id, std::string_view filter) {
    append_client_prefix(out, client_id);
    out.append(filter);
}

void delivery_key(std::string& out, std::string_view client_id, std::uint64_t seq) {
    append_client_prefix(out, client_id);
    put_big_endian(out, seq, 8);
}

void inbound_qos2_key(std::string& out, std::string_view client_id, std::uint16_t packet_id) {
    append_client_prefix(out, client_id);
    put_big_endian(out, packet_id, 2);
}

const char* parse_client_prefix(std::string_view& key, std::string& client_id) {
    client_id.clear();
    std::size_t i = 0;
    while (i < key.size()) {
        char c = key[i];
        if (c == '\x00') {
            key.remove_prefix(i + 1);
            return nullptr;
        }
        if (c == '\x01') {
            if (i + 1 >= key.size()) return "key: truncated escape in client id";
            char e = key[i + 1];
            if (e == '\x01') {
                client_id.push_back('\x00');
            } else if (e == '\x02') {
                client_id.push_back('\x01');
            } else {
                return "key: bad escape in client id";
            }
            i += 2;
            continue;
        }
        client_id.push_back(c);
        ++i;
    }
    return "key: client id not terminated";
}

const char* parse_subscription_key(std::string_view key, std::string& client_id, std::string& filter) {
    if (auto e = parse_client_prefix(key, client_id)) return e;
    if (key.empty()) return "key: empty subscription filter";
    filter.assign(key);
    return nullptr;
}

const char* parse_delivery_key(std::string_view key, std::string& client_id, std::uint64_t& seq) {
    if (auto e = parse_client_prefix(key, client_id)) return e;
    if (key.size() != 8) return "key: delivery sequence is not 8 bytes";
    seq = 0;
    for (char c : key) seq = (seq << 8) | static_cast<std::uint8_t>(c);
    return nullptr;
}

const char* parse_inbound_qos2_key(std::string_view key, std::string& client_id,
                                   std::uint16_t& packet_id) {
    if (auto e = parse_client_prefix(key, client_id)) return e;
    if (key.size() != 2) return "key: packet identifier is not 2 bytes";
    packet_id = static_cast<std::uint16_t>((static_cast<std::uint8_t>(key[0]) << 8) |
                                           static_cast<std::uint8_t>(key[1]));
    return nullptr;
}

// ---- values ----------------------------------------------------------------

void encode_retained(std::string& out, const stored_message& m) {
    put_u8(out, value_version);
    put_message(out, m, /*with_topic=*/false);
}

const char* decode_retained(std::string_view v, stored_message& m) {
    reader r(v);
    r.version();
    get_message(r, m, /*with_topic=*/false);
    return r.finish();
}

namespace {
constexpr std::uint8_t session_has_will = 0x01;
constexpr std::uint8_t session_has_identity = 0x02;
}

void encode_session(std::string& out, const stored_session& s) {
    put_u8(out, value_version);
    put_u8(out, static_cast<std::uint8_t>((s.will ? session_has_will : 0) |
                                          (s.identity.empty() ? 0 : session_has_identity)));
    put_varint(out, s.expiry_interval);
    put_varint(out, static_cast<std::uint64_t>(s.disconnected_at_ms));
    put_varint(out, s.will_delay);
    if (s.will) put_message(out, *s.will, /*with_topic=*/true);
    if (!s.identity.empty()) put_bytes(out, s.identity);
}

const char* decode_session(std::string_view v, stored_session& s) {
    reader r(v);
    r.version();
    auto flags = r.u8();
    if (flags & ~(session_has_will | session_has_identity)) r.fail("unknown session flags");
    s.expiry_interval = r.varint32();
    s.disconnected_at_ms = static_cast<std::int64_t>(r.varint());
    s.will_delay = r.varint32();
    s.will.reset();
    if ((flags & session_has_will) && !r.error()) {
        stored_message w;
        get_message(r, w, /*with_topic=*/true);
        s.will = std::move(w);
    }
    s.identity.clear();
    if ((flags & session_has_identity) && !r.error()) s.identity = r.bytes();
    return r.finish();
}

void encode_subscription(std::string& out, const stored_subscription& s) {
    put_u8(out, value_version);
    put_u8(out, s.options);
    put_varint(out, s.identifier);
}

const char* decode_subscription(std::string_view v, stored_subscription& s) {
    reader r(v);
    r.version();
    s.options = r.u8();
    s.identifier = r.varint32();
    return r.finish();
}

namespace {
constexpr std::uint8_t delivery_retain = 0x01;
constexpr std::uint8_t delivery_awaiting_comp = 0x02;
constexpr std::uint8_t delivery_queued_at = 0x04;  // followed by queued_at_ms
constexpr std::uint8_t delivery_known = delivery_retain | delivery_awaiting_comp | delivery_queued_at;
// A delivery carries at most this many subscription identifiers (one per
// matching subscription of one client); guards the vector's reservation
// against a corrupt count.
constexpr std::uint64_t max_subscription_ids = 65536;
}  // namespace

void encode_delivery(std::string& out, const stored_delivery& d) { encode_delivery(out, d, d.msg); }

void encode_delivery(std::string& out, const stored_delivery& d, const stored_message& msg) {
    put_u8(out, value_version);
    std::uint8_t flags = (d.retain ? delivery_retain : 0) | (d.awaiting_comp ? delivery_awaiting_comp : 0) |
                         (d.queued_at_ms > 0 ? delivery_queued_at : 0);
    put_u8(out, flags);
    put_u8(out, d.qos);
    if (d.queued_at_ms > 0) put_varint(out, static_cast<std::uint64_t>(d.queued_at_ms));
    put_varint(out, d.packet_id);
    put_varint(out, d.subscription_ids.size());
    for (auto id : d.subscription_ids) put_varint(out, id);
    put_message(out, msg, /*with_topic=*/true);
}

const char* decode_delivery(std::string_view v, stored_delivery& d) {
    reader r(v);
    r.version();
    auto flags = r.u8();
    if (flags & ~delivery_known) r.fail("unknown delivery flags");
    d.retain = (flags & delivery_retain) != 0;
    d.awaiting_comp = (flags & delivery_awaiting_comp) != 0;
    d.qos = r.u8();
    if (d.qos > 2) r.fail("delivery QoS out of range");
    d.queued_at_ms = 0;
    if (flags & delivery_queued_at) {
        const auto ms = r.varint();
        if (ms == 0 || ms > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) r.fail("delivery queue time out of range");
        d.queued_at_ms = static_cast<std::int64_t>(ms);
    }
    d.packet_id = r.varint16();
    auto n = r.varint();
    if (n > max_subscription_ids) r.fail("too many subscription identifiers");
    d.subscription_ids.clear();
    if (!r.error()) {
        d.subscription_ids.reserve(static_cast<std::size_t>(n));
        for (std::uint64_t i = 0; i < n && !r.error(); ++i) d.subscription_ids.push_back(r.varint32());
    }
    get_message(r, d.msg, /*with_topic=*/true);
    return r.finish();
}

void encode_inbound_qos2(std::string& out) { put_u8(out, value_version); }

const char* decode_inbound_qos2(std::string_view v) {
    reader r(v);
    r.version();
    return r.finish();
}

void encode_format_version(std::string& out, std::uint32_t version) { put_big_endian(out, version, 4); }

const char* decode_format_version(std::string_view v, std::uint32_t& version) {
    if (v.size() != 4) return "format version is not 4 bytes";
    version = 0;
    for (char c : v) version = (version << 8) | static_cast<std::uint8_t>(c);
    return nullptr;
}

std::string printable(std::string_view key) {
    constexpr std::size_t limit = 200;
    std::string out;
    for (std::size_t i = 0; i < key.size() && i < limit; ++i) {
        auto c = static_cast<unsigned char>(key[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out.push_back(static_cast<char>(c));
        } else {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xf]);
        }
    }
    if (key.size() > limit) out += "...";
    return out;
}

}  // namespace strata::persistence::encoding
