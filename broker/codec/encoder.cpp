// MQTT 3.1.1 / 5.0 encoder.
//
// Every packet body is written by one template run twice: once with a
// counter (the remaining length, and encoded_size) and once with a raw
// pointer writer into space resized in the output vector, so the size
// computed and the bytes written cannot disagree.
//
// Only properties allowed on the packet being encoded (spec table 2-4) are
// written, in identifier order, user properties in their order; 3.1.1
// encodings write none. Preconditions the caller keeps (not checked on the
// data path): strings and binary data up to 65,535 bytes (longer ones are
// cut there, so the packet stays well-formed), QoS <= 2, a body up to
// 268,435,455 bytes, subscription identifiers 1..268,435,455.
#include "broker/codec/codec.hpp"
#include "broker/codec/wire.hpp"

#include <cassert>
#include <cstring>
#include <type_traits>

namespace strata::mqtt {
namespace {

using namespace wire;

std::string_view clamp16(std::string_view s) noexcept { return s.substr(0, 0xFFFF); }

// Properties to write: a properties struct (may be null) plus the overrides
// a publish_view carries.
struct prop_source {
    const properties* p = nullptr;
    std::span<const std::uint32_t> subscription_identifiers{};
    std::optional<std::uint16_t> topic_alias{};
    std::optional<std::uint32_t> message_expiry_interval{};
};

// Property list lengths found by the counting pass, handed to the writing
// pass so each list is walked twice (count, write), not three times. A
// packet has at most two property lists (CONNECT: its own and the will's).
struct prop_lengths {
    std::uint32_t len[2]{};
    unsigned count = 0;
};

template <prop_ctx Ctx>
std::uint32_t props_length(const prop_source& src);

struct counter {
    static constexpr bool counting = true;
    std::size_t n = 0;
    prop_lengths lens;
    template <prop_ctx Ctx>
    std::uint32_t props_len(const prop_source& src) {
        const std::uint32_t len = props_length<Ctx>(src);
        if (lens.count < 2) lens.len[lens.count++] = len;
        return len;
    }
    void u8(std::uint8_t) noexcept { ++n; }
    void u16(std::uint16_t) noexcept { n += 2; }
    void u32(std::uint32_t) noexcept { n += 4; }
    void varint(std::uint32_t v) noexcept { n += varint_size(v); }
    void raw(std::string_view s) noexcept { n += s.size(); }
    void str(std::string_view s) noexcept { n += 2 + clamp16(s).size(); }
};

struct writer {
    static constexpr bool counting = false;
    std::uint8_t* p;
    prop_lengths lens{};
    unsigned next = 0;
    template <prop_ctx Ctx>
    std::uint32_t props_len(const prop_source& src) {
        if (next < lens.count) return lens.len[next++];
        return props_length<Ctx>(src);  // not counted first (not expected)
    }
    void u8(std::uint8_t v) noexcept { *p++ = v; }
    void u16(std::uint16_t v) noexcept {
        p[0] = static_cast<std::uint8_t>(v >> 8);
        p[1] = static_cast<std::uint8_t>(v);
        p += 2;
    }
    void u32(std::uint32_t v) noexcept {
        p[0] = static_cast<std::uint8_t>(v >> 24);
        p[1] = static_cast<std::uint8_t>(v >> 16);
        p[2] = static_cast<std::uint8_t>(v >> 8);
        p[3] = static_cast<std::uint8_t>(v);
        p += 4;
    }
    // Exactly varint_size(v) bytes, whatever v is, so a broken precondition
    // gives a wrong value but never a write past the space counted.
    void varint(std::uint32_t v) noexcept {
        assert(v <= max_varint);
        const std::size_t n = varint_size(v);
        for (std::size_t i = 1; i < n; ++i) {
            *p++ = static_cast<std::uint8_t>((v & 0x7F) | 0x80);
            v >>= 7;
        }
        *p++ = static_cast<std::uint8_t>(v & 0x7F);
    }
    void raw(std::string_view s) noexcept {
        if (!s.empty()) std::memcpy(p, s.data(), s.size());
        p += s.size();
    }
    void str(std::string_view s) noexcept {
        s = clamp16(s);
        u16(static_cast<std::uint16_t>(s.size()));
        raw(s);
    }
};

const properties no_properties{};

// Writes (or counts) the properties allowed in context Ctx, in identifier
// order. Ctx is a template parameter so the properties a packet cannot carry
// are not even looked at.
template <prop_ctx Ctx, class W>
void put_prop_list(W& w, const prop_source& src) {
    const properties& p = src.p ? *src.p : no_properties;
    const auto u8 = [&]<std::uint8_t Id>(const std::optional<std::uint8_t>& v) {
        if constexpr (prop_allowed(Id, Ctx)) {
            if (v) { w.u8(Id); w.u8(*v); }
        }
    };
    const auto u16 = [&]<std::uint8_t Id>(const std::optional<std::uint16_t>& v) {
        if constexpr (prop_allowed(Id, Ctx)) {
            if (v) { w.u8(Id); w.u16(*v); }
        }
    };
    const auto u32 = [&]<std::uint8_t Id>(const std::optional<std::uint32_t>& v) {
        if constexpr (prop_allowed(Id, Ctx)) {
            if (v) { w.u8(Id); w.u32(*v); }
        }
    };
    const auto str = [&]<std::uint8_t Id>(const std::optional<std::string>& v) {
        if constexpr (prop_allowed(Id, Ctx)) {
            if (v) { w.u8(Id); w.str(*v); }
        }
    };

    u8.template operator()<pid_payload_format_indicator>(p.payload_format_indicator);
    if constexpr (prop_allowed(pid_message_expiry_interval, Ctx)) {
        u32.template operator()<pid_message_expiry_interval>(
            src.message_expiry_interval ? src.message_expiry_interval : p.message_expiry_interval);
    }
    str.template operator()<pid_content_type>(p.content_type);
    str.template operator()<pid_response_topic>(p.response_topic);
    str.template operator()<pid_correlation_data>(p.correlation_data);
    if constexpr (prop_allowed(pid_subscription_identifier, Ctx)) {
        std::span<const std::uint32_t> ids = src.subscription_identifiers.empty()
                                                 ? std::span<const std::uint32_t>(p.subscription_identifiers)
                                                 : src.subscription_identifiers;
        if (Ctx == ctx_of(packet_type::subscribe) && ids.size() > 1) ids = ids.first(1);  // at most one
        for (const std::uint32_t id : ids) {
            w.u8(pid_subscription_identifier);
            w.varint(id);
        }
    }
    u32.template operator()<pid_session_expiry_interval>(p.session_expiry_interval);
    str.template operator()<pid_assigned_client_identifier>(p.assigned_client_identifier);
    u16.template operator()<pid_server_keep_alive>(p.server_keep_alive);
    str.template operator()<pid_authentication_method>(p.authentication_method);
    str.template operator()<pid_authentication_data>(p.authentication_data);
    u8.template operator()<pid_request_problem_information>(p.request_problem_information);
    u32.template operator()<pid_will_delay_interval>(p.will_delay_interval);
    u8.template operator()<pid_request_response_information>(p.request_response_information);
    str.template operator()<pid_response_information>(p.response_information);
    str.template operator()<pid_server_reference>(p.server_reference);
    str.template operator()<pid_reason_string>(p.reason_string);
    u16.template operator()<pid_receive_maximum>(p.receive_maximum);
    u16.template operator()<pid_topic_alias_maximum>(p.topic_alias_maximum);
    if constexpr (prop_allowed(pid_topic_alias, Ctx)) {
        u16.template operator()<pid_topic_alias>(src.topic_alias ? src.topic_alias : p.topic_alias);
    }
    u8.template operator()<pid_maximum_qos>(p.maximum_qos);
    u8.template operator()<pid_retain_available>(p.retain_available);
    if constexpr (prop_allowed(pid_user_property, Ctx)) {
        for (const auto& [k, v] : p.user_properties) {
            w.u8(pid_user_property);
            w.str(k);
            w.str(v);
        }
    }
    u32.template operator()<pid_maximum_packet_size>(p.maximum_packet_size);
    u8.template operator()<pid_wildcard_subscription_available>(p.wildcard_subscription_available);
    u8.template operator()<pid_subscription_identifier_available>(p.subscription_identifier_available);
    u8.template operator()<pid_shared_subscription_available>(p.shared_subscription_available);
}

template <prop_ctx Ctx>
std::uint32_t props_length(const prop_source& src) {
    counter c;
    put_prop_list<Ctx>(c, src);
    return static_cast<std::uint32_t>(c.n);
}

// Property length followed by the properties (whose length is `len`).
template <prop_ctx Ctx, class W>
void put_props(W& w, const prop_source& src, std::uint32_t len) {
    w.varint(len);
    if constexpr (W::counting) {
        w.n += len;
    } else {
        put_prop_list<Ctx>(w, src);
    }
}
template <prop_ctx Ctx, class W>
void put_props(W& w, const prop_source& src) {
    put_props<Ctx>(w, src, w.template props_len<Ctx>(src));
}
template <prop_ctx Ctx, class W>
void put_props(W& w, const properties& p) {
    put_props<Ctx>(w, prop_source{&p});
}

constexpr prop_ctx ctx(packet_type t) noexcept { return ctx_of(t); }

// --- packet bodies (variable header + payload) ------------------------------

template <class W>
void body(W& w, const connect& p, bool) {
    const bool v5 = p.version != protocol_version::v311;  // a CONNECT says its own version
    w.str("MQTT");
    w.u8(v5 ? 5 : p.bridge ? 0x84 : 4);
    std::uint8_t flags = p.clean_start ? 0x02 : 0x00;
    if (p.will) {
        flags |= 0x04 | static_cast<std::uint8_t>((p.will->qos & 3) << 3);
        if (p.will->retain) flags |= 0x20;
    }
    if (p.password) flags |= 0x40;
    if (p.username) flags |= 0x80;
    w.u8(flags);
    w.u16(p.keep_alive);
    if (v5) put_props<ctx(packet_type::connect)>(w, p.props);
    w.str(p.client_id);
    if (p.will) {
        if (v5) put_props<ctx_will>(w, p.will->props);
        w.str(p.will->topic);
        w.str(p.will->payload);
    }
    if (p.username) w.str(*p.username);
    if (p.password) w.str(*p.password);
}

template <class W>
void body(W& w, const connack& p, bool v5) {
    w.u8(p.session_present ? 1 : 0);
    w.u8(v5 ? static_cast<std::uint8_t>(p.code) : to_v311_connack(p.code));
    if (v5) put_props<ctx(packet_type::connack)>(w, p.props);
}

template <class W>
void body(W& w, const publish_view& p, bool v5) {
    w.str(p.topic);
    if ((p.qos & 3) != 0) w.u16(p.packet_id);
    if (v5) {
        put_props<ctx(packet_type::publish)>(
            w, prop_source{p.props, p.subscription_identifiers, p.topic_alias, p.message_expiry_interval});
    }
    w.raw(p.payload);
}

publish_view view_of(const publish& p) noexcept {
    publish_view v;
    v.topic = p.topic;
    v.payload = p.payload;
    v.qos = p.qos;
    v.retain = p.retain;
    v.dup = p.dup;
    v.packet_id = p.packet_id;
    v.props = &p.props;
    return v;
}

template <class W>
void body(W& w, const publish& p, bool v5) {
    body(w, view_of(p), v5);
}

// PUBACK, PUBREC, PUBREL, PUBCOMP. 5.0: the shortest form that says it all
// (no reason code for success without properties, no property length
// without properties).
template <packet_type T, class W>
void ack_body(W& w, std::uint16_t id, reason_code code, const properties& props, bool v5) {
    w.u16(id);
    if (!v5) return;
    const prop_source src{&props};
    const std::uint32_t len = w.template props_len<ctx(T)>(src);
    if (code == reason_code::success && len == 0) return;
    w.u8(static_cast<std::uint8_t>(code));
    if (len != 0) put_props<ctx(T)>(w, src, len);
}
template <class W> void body(W& w, const puback& p, bool v5) { ack_body<packet_type::puback>(w, p.packet_id, p.code, p.props, v5); }
template <class W> void body(W& w, const pubrec& p, bool v5) { ack_body<packet_type::pubrec>(w, p.packet_id, p.code, p.props, v5); }
template <class W> void body(W& w, const pubrel& p, bool v5) { ack_body<packet_type::pubrel>(w, p.packet_id, p.code, p.props, v5); }
template <class W> void body(W& w, const pubcomp& p, bool v5) { ack_body<packet_type::pubcomp>(w, p.packet_id, p.code, p.props, v5); }

template <class W>
void body(W& w, const subscribe& p, bool v5) {
    w.u16(p.packet_id);
    if (v5) put_props<ctx(packet_type::subscribe)>(w, p.props);
    for (const auto& s : p.subscriptions) {
        w.str(s.filter);
        std::uint8_t o = s.options.qos & 3;
        if (v5) {
            if (s.options.no_local) o |= 0x04;
            if (s.options.retain_as_published) o |= 0x08;
            o |= static_cast<std::uint8_t>((s.options.retain_handling & 3) << 4);
        }
        w.u8(o);
    }
}

template <class W>
void body(W& w, const suback& p, bool v5) {
    w.u16(p.packet_id);
    if (v5) put_props<ctx(packet_type::suback)>(w, p.props);
    for (const reason_code c : p.codes) {
        const auto b = static_cast<std::uint8_t>(c);
        w.u8(v5 || b <= 2 ? b : 0x80);  // 3.1.1: every failure is 0x80
    }
}

template <class W>
void body(W& w, const unsubscribe& p, bool v5) {
    w.u16(p.packet_id);
    if (v5) put_props<ctx(packet_type::unsubscribe)>(w, p.props);
    for (const auto& f : p.filters) w.str(f);
}

template <class W>
void body(W& w, const unsuback& p, bool v5) {
    w.u16(p.packet_id);
    if (!v5) return;  // 3.1.1: packet identifier only
    put_props<ctx(packet_type::unsuback)>(w, p.props);
    for (const reason_code c : p.codes) w.u8(static_cast<std::uint8_t>(c));
}

template <class W> void body(W&, const pingreq&, bool) {}
template <class W> void body(W&, const pingresp&, bool) {}

// 5.0: remaining length 0 for a normal disconnection without properties,
// 1 for a reason code alone. 3.1.1: always empty.
template <class W>
void body(W& w, const disconnect& p, bool v5) {
    if (!v5) return;
    constexpr prop_ctx c = ctx(packet_type::disconnect);
    const prop_source src{&p.props};
    const std::uint32_t len = w.template props_len<c>(src);
    if (p.code == reason_code::success && len == 0) return;
    w.u8(static_cast<std::uint8_t>(p.code));
    if (len != 0) put_props<c>(w, src, len);
}

// AUTH exists only in 5.0; it is written the 5.0 way whatever the version.
// A reason code is always followed by a property length (the spec allows
// omitting both only for success without properties).
template <class W>
void body(W& w, const auth& p, bool) {
    constexpr prop_ctx c = ctx(packet_type::auth);
    const prop_source src{&p.props};
    const std::uint32_t len = w.template props_len<c>(src);
    if (p.code == reason_code::success && len == 0) return;
    w.u8(static_cast<std::uint8_t>(p.code));
    put_props<c>(w, src, len);
}

// --- fixed header -----------------------------------------------------------

std::uint8_t first_byte(const publish_view& p) noexcept {
    return static_cast<std::uint8_t>(0x30 | (p.dup ? 0x08 : 0) | ((p.qos & 3) << 1) | (p.retain ? 0x01 : 0));
}
std::uint8_t first_byte(const publish& p) noexcept { return first_byte(view_of(p)); }
template <class T> constexpr packet_type type_v = packet_type::connect;
template <> constexpr packet_type type_v<connack> = packet_type::connack;
template <> constexpr packet_type type_v<puback> = packet_type::puback;
template <> constexpr packet_type type_v<pubrec> = packet_type::pubrec;
template <> constexpr packet_type type_v<pubrel> = packet_type::pubrel;
template <> constexpr packet_type type_v<pubcomp> = packet_type::pubcomp;
template <> constexpr packet_type type_v<subscribe> = packet_type::subscribe;
template <> constexpr packet_type type_v<suback> = packet_type::suback;
template <> constexpr packet_type type_v<unsubscribe> = packet_type::unsubscribe;
template <> constexpr packet_type type_v<unsuback> = packet_type::unsuback;
template <> constexpr packet_type type_v<pingreq> = packet_type::pingreq;
template <> constexpr packet_type type_v<pingresp> = packet_type::pingresp;
template <> constexpr packet_type type_v<disconnect> = packet_type::disconnect;
template <> constexpr packet_type type_v<auth> = packet_type::auth;

template <class T>
std::uint8_t header_byte(const T& p) noexcept {
    if constexpr (std::is_same_v<T, publish> || std::is_same_v<T, publish_view>) {
        return first_byte(p);
    } else {
        constexpr packet_type t = type_v<T>;
        constexpr bool flagged = t == packet_type::pubrel || t == packet_type::subscribe ||
                                 t == packet_type::unsubscribe;
        return static_cast<std::uint8_t>(static_cast<unsigned>(t) << 4 | (flagged ? 0x02 : 0x00));
    }
}

template <class T>
std::size_t size_of(const T& p, bool v5) {
    counter c;
    body(c, p, v5);
    return 1 + varint_size(static_cast<std::uint32_t>(c.n)) + c.n;
}

template <class T>
void encode_one(const T& p, bool v5, std::vector<std::uint8_t>& out) {
    counter c;
    body(c, p, v5);
    const auto rl = static_cast<std::uint32_t>(c.n);
    const std::size_t total = 1 + varint_size(rl) + c.n;
    const std::size_t old = out.size();
    out.resize(old + total);
    writer w{out.data() + old, c.lens};
    w.u8(header_byte(p));
    w.varint(rl);
    body(w, p, v5);
    assert(w.p == out.data() + out.size());
}

}  // namespace

void encode(const packet& p, protocol_version version, std::vector<std::uint8_t>& out) {
    const bool v5 = version != protocol_version::v311;
    std::visit([&](const auto& x) { encode_one(x, v5, out); }, p);
}

void encode_publish(const publish_view& p, protocol_version version, std::vector<std::uint8_t>& out) {
    encode_one(p, version != protocol_version::v311, out);
}

std::size_t encoded_size(const publish_view& p, protocol_version version) {
    return size_of(p, version != protocol_version::v311);
}

std::size_t encoded_size(const packet& p, protocol_version version) {
    const bool v5 = version != protocol_version::v311;
    return std::visit([&](const auto& x) { return size_of(x, v5); }, p);
}

void encode_message_properties(const properties& p, std::string& out) {
    constexpr prop_ctx pub = ctx(packet_type::publish);
    counter c;
    put_props<pub>(c, p);
    const std::size_t old = out.size();
    out.resize(old + c.n);
    writer w{reinterpret_cast<std::uint8_t*>(out.data() + old), c.lens};
    put_props<pub>(w, p);
    assert(w.p == reinterpret_cast<std::uint8_t*>(out.data() + out.size()));
}

packet_type type_of(const packet& p) noexcept {
    // The variant's alternatives are in packet type order, CONNECT = 1.
    return static_cast<packet_type>(p.index() + 1);
}

}  // namespace strata::mqtt
