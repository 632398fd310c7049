// MQTT 3.1.1 / 5.0 decoder.
//
// decode() first parses the fixed header (so packet_too_large and bad flags
// are reported before the body has arrived), waits until the whole packet is
// in the buffer, then walks the body with a bounds-checked reader. Nothing
// is allocated for a length before the bytes it announces are known to be
// inside the packet, and every read stops at the packet's end; bytes left
// over after what the packet type defines make it malformed.
//
// Errors are values: the reader records the first failure (reason code and a
// static detail string) and every parse step returns false from then on.
#include "broker/codec/codec.hpp"
#include "broker/codec/wire.hpp"

namespace strata::mqtt {
namespace {

using namespace wire;

constexpr decode_result need_more() noexcept { return {}; }
constexpr decode_result error(reason_code c, const char* detail) noexcept {
    return {decode_status::error, 0, c, detail};
}

class reader {
public:
    reader(const std::uint8_t* begin, const std::uint8_t* end) noexcept : p_(begin), end_(end) {}

    [[nodiscard]] std::size_t left() const noexcept { return static_cast<std::size_t>(end_ - p_); }
    [[nodiscard]] bool at_end() const noexcept { return p_ == end_; }

    bool fail(reason_code c, const char* d) noexcept {
        code = c;
        detail = d;
        return false;
    }
    bool malformed(const char* d) noexcept { return fail(reason_code::malformed_packet, d); }
    bool protocol_error(const char* d) noexcept { return fail(reason_code::protocol_error, d); }
    bool truncated() noexcept { return malformed("packet shorter than its contents"); }

    bool u8(std::uint8_t& v) noexcept {
        if (p_ == end_) return truncated();
        v = *p_++;
        return true;
    }
    bool u16(std::uint16_t& v) noexcept {
        if (left() < 2) return truncated();
        v = static_cast<std::uint16_t>(p_[0] << 8 | p_[1]);
        p_ += 2;
        return true;
    }
    bool u32(std::uint32_t& v) noexcept {
        if (left() < 4) return truncated();
        v = std::uint32_t{p_[0]} << 24 | std::uint32_t{p_[1]} << 16 | std::uint32_t{p_[2]} << 8 | p_[3];
        p_ += 4;
        return true;
    }
    // Variable Byte Integer: at most 4 bytes, minimally encoded (5.0 MQTT-1.5.5-1).
    bool varint(std::uint32_t& v) noexcept {
        std::uint32_t value = 0;
        for (unsigned i = 0; i < 4; ++i) {
            if (p_ == end_) return truncated();
            const std::uint8_t b = *p_++;
            value |= std::uint32_t{b & 0x7Fu} << (7 * i);
            if ((b & 0x80) == 0) {
                if (b == 0 && i > 0) return malformed("variable byte integer not minimally encoded");
                v = value;
                return true;
            }
        }
        return malformed("variable byte integer longer than 4 bytes");
    }
    bool packet_id(std::uint16_t& id) noexcept {
        if (!u16(id)) return false;
        return id != 0 || malformed("packet identifier 0");
    }
    // Two-byte length, then that many bytes (Binary Data; no UTF-8 check).
    bool binary(std::string_view& s) noexcept {
        std::uint16_t n;
        if (!u16(n)) return false;
        if (left() < n) return truncated();
        s = {reinterpret_cast<const char*>(p_), n};
        p_ += n;
        return true;
    }
    // UTF-8 Encoded String; `what` is the detail reported when invalid.
    bool utf8(std::string_view& s, const char* what) noexcept {
        if (!binary(s)) return false;
        return utf8_well_formed(s, false) || malformed(what);
    }
    bool utf8(std::string& out, const char* what) {
        std::string_view s;
        if (!utf8(s, what)) return false;
        out.assign(s);
        return true;
    }
    bool binary(std::string& out) {
        std::string_view s;
        if (!binary(s)) return false;
        out.assign(s);
        return true;
    }
    std::string_view rest() noexcept {
        std::string_view s{reinterpret_cast<const char*>(p_), left()};
        p_ = end_;
        return s;
    }

    bool props(properties& out, prop_ctx ctx);

    reason_code code = reason_code::success;
    const char* detail = "";

private:
    bool property(properties& pr, std::uint8_t id, prop_ctx ctx);
    bool duplicate() noexcept { return protocol_error("duplicate property"); }

    bool once_u8_01(std::optional<std::uint8_t>& o) {
        if (o) return duplicate();
        std::uint8_t v;
        if (!u8(v)) return false;
        if (v > 1) return protocol_error("property value must be 0 or 1");
        o = v;
        return true;
    }
    bool once_u16(std::optional<std::uint16_t>& o, bool nonzero) {
        if (o) return duplicate();
        std::uint16_t v;
        if (!u16(v)) return false;
        if (nonzero && v == 0) return protocol_error("property value must not be 0");
        o = v;
        return true;
    }
    bool once_u32(std::optional<std::uint32_t>& o, bool nonzero) {
        if (o) return duplicate();
        std::uint32_t v;
        if (!u32(v)) return false;
        if (nonzero && v == 0) return protocol_error("property value must not be 0");
        o = v;
        return true;
    }
    bool once_utf8(std::optional<std::string>& o) {
        if (o) return duplicate();
        std::string_view s;
        if (!utf8(s, "property string is not valid UTF-8")) return false;
        o.emplace(s);
        return true;
    }
    bool once_binary(std::optional<std::string>& o) {
        if (o) return duplicate();
        std::string_view s;
        if (!binary(s)) return false;
        o.emplace(s);
        return true;
    }

    const std::uint8_t* p_;
    const std::uint8_t* end_;
};

bool reader::props(properties& out, prop_ctx ctx) {
    std::uint32_t len;
    if (!varint(len)) return false;
    if (len > left()) return malformed("property length exceeds the packet");
    // Reads inside the properties stop at their end: a value that runs over
    // the property length is malformed, not a read into the payload.
    const std::uint8_t* const packet_end = end_;
    end_ = p_ + len;
    while (p_ != end_) {
        // Identifiers are varints, but all defined ones are < 0x80: a
        // continuation bit means an unknown identifier.
        const std::uint8_t id = *p_++;
        const prop_ctx where = allowed_contexts(id);
        if (where == 0) return malformed("unknown property identifier");
        if ((where & ctx) == 0) return protocol_error("property not allowed in this packet");
        if (!property(out, id, ctx)) return false;
    }
    end_ = packet_end;
    // Rules that span properties or look into a value.
    if (out.authentication_data && !out.authentication_method)
        return protocol_error("authentication data without an authentication method");
    // The Response Topic is a Topic Name: at least one character [MQTT-4.7.3-1],
    // no wildcard [MQTT-3.3.2-14].
    if (out.response_topic && out.response_topic->empty()) return malformed("empty response topic");
    if (out.response_topic && out.response_topic->find_first_of("+#") != std::string::npos)
        return malformed("response topic with a wildcard");
    return true;
}

bool reader::property(properties& pr, std::uint8_t id, prop_ctx ctx) {
    switch (id) {
        case pid_payload_format_indicator: return once_u8_01(pr.payload_format_indicator);
        case pid_message_expiry_interval: return once_u32(pr.message_expiry_interval, false);
        case pid_content_type: return once_utf8(pr.content_type);
        case pid_response_topic: return once_utf8(pr.response_topic);
        case pid_correlation_data: return once_binary(pr.correlation_data);
        case pid_subscription_identifier: {
            if (ctx == ctx_of(packet_type::subscribe) && !pr.subscription_identifiers.empty())
                return duplicate();
            std::uint32_t v;
            if (!varint(v)) return false;
            if (v == 0) return protocol_error("subscription identifier 0");
            pr.subscription_identifiers.push_back(v);
            return true;
        }
        case pid_session_expiry_interval: return once_u32(pr.session_expiry_interval, false);
        case pid_assigned_client_identifier: return once_utf8(pr.assigned_client_identifier);
        case pid_server_keep_alive: return once_u16(pr.server_keep_alive, false);
        case pid_authentication_method: return once_utf8(pr.authentication_method);
        case pid_authentication_data: return once_binary(pr.authentication_data);
        case pid_request_problem_information: return once_u8_01(pr.request_problem_information);
        case pid_will_delay_interval: return once_u32(pr.will_delay_interval, false);
        case pid_request_response_information: return once_u8_01(pr.request_response_information);
        case pid_response_information: return once_utf8(pr.response_information);
        case pid_server_reference: return once_utf8(pr.server_reference);
        case pid_reason_string: return once_utf8(pr.reason_string);
        case pid_receive_maximum: return once_u16(pr.receive_maximum, true);
        case pid_topic_alias_maximum: return once_u16(pr.topic_alias_maximum, false);
        case pid_topic_alias: {
            if (pr.topic_alias) return duplicate();
            std::uint16_t v;
            if (!u16(v)) return false;
            if (v == 0) return fail(reason_code::topic_alias_invalid, "topic alias 0");
            pr.topic_alias = v;
            return true;
        }
        case pid_maximum_qos: return once_u8_01(pr.maximum_qos);
        case pid_retain_available: return once_u8_01(pr.retain_available);
        case pid_user_property: {
            std::string_view k, v;
            if (!utf8(k, "user property name is not valid UTF-8")) return false;
            if (!utf8(v, "user property value is not valid UTF-8")) return false;
            pr.user_properties.emplace_back(k, v);
            return true;
        }
        case pid_maximum_packet_size: return once_u32(pr.maximum_packet_size, true);
        case pid_wildcard_subscription_available: return once_u8_01(pr.wildcard_subscription_available);
        case pid_subscription_identifier_available: return once_u8_01(pr.subscription_identifier_available);
        case pid_shared_subscription_available: return once_u8_01(pr.shared_subscription_available);
        default: return malformed("unknown property identifier");
    }
}

// Resets a properties struct for reuse: cheap when (as usual) little is set,
// and the vectors keep their capacity.
void clear(properties& p) noexcept {
    p.payload_format_indicator.reset();
    p.message_expiry_interval.reset();
    p.content_type.reset();
    p.response_topic.reset();
    p.correlation_data.reset();
    p.subscription_identifiers.clear();
    p.session_expiry_interval.reset();
    p.assigned_client_identifier.reset();
    p.server_keep_alive.reset();
    p.authentication_method.reset();
    p.authentication_data.reset();
    p.request_problem_information.reset();
    p.will_delay_interval.reset();
    p.request_response_information.reset();
    p.response_information.reset();
    p.server_reference.reset();
    p.reason_string.reset();
    p.receive_maximum.reset();
    p.topic_alias_maximum.reset();
    p.topic_alias.reset();
    p.maximum_qos.reset();
    p.retain_available.reset();
    p.user_properties.clear();
    p.maximum_packet_size.reset();
    p.wildcard_subscription_available.reset();
    p.subscription_identifier_available.reset();
    p.shared_subscription_available.reset();
}

// Checks that need only the fixed header, so a bad packet is refused before
// its body has arrived. Returns the detail of a malformed packet, or null.
const char* check_header(const fixed_header& h, bool v5) noexcept {
    switch (h.type) {
        case packet_type::publish: {
            const unsigned qos = (h.flags >> 1) & 3u;
            if (qos == 3) return "PUBLISH with QoS 3";
            if ((h.flags & 0x08) != 0 && qos == 0) return "PUBLISH with DUP set and QoS 0";
            return nullptr;
        }
        case packet_type::pubrel:
        case packet_type::subscribe:
        case packet_type::unsubscribe:
            if (h.flags != 0x02) return "fixed header flags must be 0010";
            break;
        default:
            if (h.flags != 0) return "fixed header flags must be 0000";
            break;
    }
    switch (h.type) {
        case packet_type::pingreq:
        case packet_type::pingresp:
            if (h.remaining_length != 0) return "PINGREQ/PINGRESP with a body";
            break;
        case packet_type::puback:
        case packet_type::pubrec:
        case packet_type::pubrel:
        case packet_type::pubcomp:
            if (v5 ? h.remaining_length < 2 : h.remaining_length != 2)
                return "acknowledgement with a wrong remaining length";
            break;
        case packet_type::connack:
            if (v5 ? h.remaining_length < 3 : h.remaining_length != 2)
                return "CONNACK with a wrong remaining length";
            break;
        case packet_type::unsuback:
            if (!v5 && h.remaining_length != 2) return "UNSUBACK with a wrong remaining length";
            break;
        case packet_type::disconnect:
            if (!v5 && h.remaining_length != 0) return "3.1.1 DISCONNECT with a body";
            break;
        case packet_type::auth:
            if (!v5) return "AUTH does not exist in MQTT 3.1.1";
            break;
        default:
            break;
    }
    return nullptr;
}

// --- packets ---------------------------------------------------------------

bool decode_connect(reader& r, connect& out) {
    std::string_view name;
    std::uint8_t level;
    if (!r.binary(name) || !r.u8(level)) return false;
    // Mosquitto's bridges announce themselves with the top bit of the level
    // set, and only for 3.1 and 3.1.1 (0x83, 0x84): its broker reads the
    // level as level & 0x7F and marks 0x83/0x84 as a bridge, and its bridge
    // never sends 0x85. We take 0x84 and refuse 0x85 like any other level.
    out.bridge = level == 0x84;
    if (out.bridge) level = 4;
    if (name == "MQTT") {
        if (level != 4 && level != 5)
            return r.fail(reason_code::unsupported_protocol_version, "unsupported protocol level");
    } else if (name == "MQIsdp") {
        return r.fail(reason_code::unsupported_protocol_version, "MQIsdp (MQTT 3.1) is not supported");
    } else {
        return r.malformed("unknown protocol name");
    }
    const bool v5 = level == 5;
    out.version = v5 ? protocol_version::v5 : protocol_version::v311;
    out.protocol_name = "MQTT";

    std::uint8_t flags;
    if (!r.u8(flags)) return false;
    if (flags & 0x01) return r.malformed("CONNECT reserved flag set");
    const bool will = flags & 0x04;
    const std::uint8_t will_qos = (flags >> 3) & 3;
    const bool will_retain = flags & 0x20;
    const bool has_password = flags & 0x40;
    const bool has_username = flags & 0x80;
    if (will_qos == 3) return r.malformed("will QoS 3");
    if (!will && (will_qos != 0 || will_retain)) return r.malformed("will QoS or retain without will flag");
    if (!v5 && has_password && !has_username) return r.malformed("password without user name");
    out.clean_start = flags & 0x02;

    if (!r.u16(out.keep_alive)) return false;
    if (v5 && !r.props(out.props, ctx_of(packet_type::connect))) return false;
    if (!r.utf8(out.client_id, "client identifier is not valid UTF-8")) return false;
    if (will) {
        will_message& w = out.will.emplace();
        w.qos = will_qos;
        w.retain = will_retain;
        if (v5 && !r.props(w.props, ctx_will)) return false;
        if (!r.utf8(w.topic, "will topic is not valid UTF-8")) return false;
        if (w.topic.empty()) return r.malformed("empty will topic");
        std::string_view payload;
        if (!r.binary(payload)) return false;
        if (w.props.payload_format_indicator == 1 && !utf8_well_formed(payload, true))
            return r.fail(reason_code::payload_format_invalid, "will payload is not valid UTF-8");
        w.payload.assign(payload);
    }
    if (has_username && !r.utf8(out.username.emplace(), "user name is not valid UTF-8")) return false;
    if (has_password && !r.binary(out.password.emplace())) return false;
    return true;
}

bool decode_connack(reader& r, bool v5, connack& out) {
    std::uint8_t flags, code;
    if (!r.u8(flags) || !r.u8(code)) return false;
    if (flags & 0xFE) return r.malformed("CONNACK reserved flags set");
    out.session_present = flags & 0x01;
    if (!v5) {
        return wire::from_v311_connack(code, out.code) || r.malformed("unknown CONNACK return code");
    }
    if (!valid_v5_reason(packet_type::connack, code)) return r.malformed("invalid CONNACK reason code");
    out.code = static_cast<reason_code>(code);
    return r.props(out.props, ctx_of(packet_type::connack));
}

bool decode_publish(reader& r, const fixed_header& h, bool v5, publish& out) {
    out.qos = (h.flags >> 1) & 3;
    out.dup = h.flags & 0x08;
    out.retain = h.flags & 0x01;
    std::string_view topic;
    if (!r.utf8(topic, "topic name is not valid UTF-8")) return false;
    if (out.qos > 0) {
        if (!r.packet_id(out.packet_id)) return false;
    } else {
        out.packet_id = 0;
    }
    if (v5) {
        if (!r.props(out.props, ctx_of(packet_type::publish))) return false;
        if (topic.empty() && !out.props.topic_alias)
            return r.protocol_error("empty topic name without topic alias");
    } else if (topic.empty()) {
        return r.malformed("empty topic name");
    }
    const std::string_view payload = r.rest();
    if (out.props.payload_format_indicator == 1 && !utf8_well_formed(payload, true))
        return r.fail(reason_code::payload_format_invalid, "payload is not valid UTF-8");
    out.topic.assign(topic);
    out.payload.assign(payload);
    return true;
}

// PUBACK, PUBREC, PUBREL, PUBCOMP.
template <class Ack>
bool decode_ack(reader& r, packet_type t, bool v5, Ack& out) {
    if (!r.packet_id(out.packet_id)) return false;
    if (!v5 || r.at_end()) return true;  // remaining length 2: success, no properties
    std::uint8_t code;
    if (!r.u8(code)) return false;
    if (!valid_v5_reason(t, code)) return r.malformed("invalid reason code for this packet");
    out.code = static_cast<reason_code>(code);
    if (r.at_end()) return true;  // remaining length 3: no properties
    return r.props(out.props, ctx_of(t));
}

bool decode_subscribe(reader& r, bool v5, subscribe& out) {
    if (!r.packet_id(out.packet_id)) return false;
    if (v5 && !r.props(out.props, ctx_of(packet_type::subscribe))) return false;
    if (r.at_end()) return r.protocol_error("SUBSCRIBE without topic filters");
    while (!r.at_end()) {
        std::string_view filter;
        std::uint8_t opts;
        if (!r.utf8(filter, "topic filter is not valid UTF-8") || !r.u8(opts)) return false;
        if (filter.empty()) return r.malformed("empty topic filter");
        subscribe_options o;
        o.qos = opts & 3;
        if (o.qos == 3) return r.malformed("subscription QoS 3");
        if (v5) {
            if (opts & 0xC0) return r.malformed("subscription options reserved bits set");
            o.no_local = opts & 0x04;
            o.retain_as_published = opts & 0x08;
            o.retain_handling = (opts >> 4) & 3;
            if (o.retain_handling == 3) return r.malformed("retain handling 3");
        } else if (opts & 0xFC) {
            return r.malformed("subscription options reserved bits set");
        }
        out.subscriptions.push_back({std::string(filter), o});
    }
    return true;
}

bool decode_suback(reader& r, bool v5, suback& out) {
    if (!r.packet_id(out.packet_id)) return false;
    if (v5 && !r.props(out.props, ctx_of(packet_type::suback))) return false;
    if (r.at_end()) return r.malformed("SUBACK without reason codes");
    const std::string_view codes = r.rest();
    out.codes.reserve(codes.size());
    for (const char ch : codes) {
        const auto c = static_cast<std::uint8_t>(ch);
        if (v5 ? !valid_v5_reason(packet_type::suback, c) : (c > 2 && c != 0x80))
            return r.malformed("invalid SUBACK reason code");
        out.codes.push_back(static_cast<reason_code>(c));
    }
    return true;
}

bool decode_unsubscribe(reader& r, bool v5, unsubscribe& out) {
    if (!r.packet_id(out.packet_id)) return false;
    if (v5 && !r.props(out.props, ctx_of(packet_type::unsubscribe))) return false;
    if (r.at_end()) return r.protocol_error("UNSUBSCRIBE without topic filters");
    while (!r.at_end()) {
        std::string_view filter;
        if (!r.utf8(filter, "topic filter is not valid UTF-8")) return false;
        if (filter.empty()) return r.malformed("empty topic filter");
        out.filters.emplace_back(filter);
    }
    return true;
}

bool decode_unsuback(reader& r, bool v5, unsuback& out) {
    if (!r.packet_id(out.packet_id)) return false;
    if (!v5) return true;
    if (!r.props(out.props, ctx_of(packet_type::unsuback))) return false;
    if (r.at_end()) return r.malformed("UNSUBACK without reason codes");
    const std::string_view codes = r.rest();
    out.codes.reserve(codes.size());
    for (const char ch : codes) {
        const auto c = static_cast<std::uint8_t>(ch);
        if (!valid_v5_reason(packet_type::unsuback, c)) return r.malformed("invalid UNSUBACK reason code");
        out.codes.push_back(static_cast<reason_code>(c));
    }
    return true;
}

// DISCONNECT and AUTH (5.0): remaining length 0 means success without
// properties, 1 a reason code without properties.
template <class P>
bool decode_reason_only(reader& r, packet_type t, P& out) {
    if (r.at_end()) return true;
    std::uint8_t code;
    if (!r.u8(code)) return false;
    if (!valid_v5_reason(t, code)) return r.malformed("invalid reason code for this packet");
    out.code = static_cast<reason_code>(code);
    if (r.at_end()) return true;
    return r.props(out.props, ctx_of(t));
}

}  // namespace

decode_result parse_fixed_header(std::span<const std::uint8_t> in, const decode_limits& limits,
                                 fixed_header& out) {
    if (in.empty()) return need_more();
    const std::uint8_t b0 = in[0];
    if ((b0 >> 4) == 0) return error(reason_code::malformed_packet, "packet type 0 is reserved");
    std::uint32_t rl = 0;
    std::size_t i = 1;
    for (;; ++i) {
        if (i >= in.size()) return need_more();
        const std::uint8_t b = in[i];
        rl |= std::uint32_t{b & 0x7Fu} << (7 * (i - 1));
        if ((b & 0x80) == 0) {
            if (b == 0 && i > 1)
                return error(reason_code::malformed_packet, "remaining length not minimally encoded");
            break;
        }
        if (i == 4) return error(reason_code::malformed_packet, "remaining length longer than 4 bytes");
    }
    out.type = static_cast<packet_type>(b0 >> 4);
    out.flags = b0 & 0x0F;
    out.remaining_length = rl;
    out.header_size = static_cast<std::uint8_t>(i + 1);
    if (out.total_size() > limits.max_packet_size)
        return error(reason_code::packet_too_large, "packet larger than the maximum packet size");
    return {decode_status::ok, out.header_size};
}

decode_result decode(std::span<const std::uint8_t> in, protocol_version version,
                     const decode_limits& limits, packet& out) {
    fixed_header h;
    if (const decode_result r = parse_fixed_header(in, limits, h); r.status != decode_status::ok) return r;
    const bool v5 = version != protocol_version::v311;
    if (const char* d = check_header(h, v5)) return error(reason_code::malformed_packet, d);
    if (in.size() < h.total_size()) return need_more();

    reader r(in.data() + h.header_size, in.data() + h.total_size());
    bool ok = false;
    switch (h.type) {
        case packet_type::connect: ok = decode_connect(r, out.emplace<connect>()); break;
        case packet_type::connack: ok = decode_connack(r, v5, out.emplace<connack>()); break;
        case packet_type::publish: {
            // The hot path: reuse a publish already in `out` (its strings'
            // capacity) instead of constructing a new one.
            publish* p = std::get_if<publish>(&out);
            if (p) {
                clear(p->props);
            } else {
                p = &out.emplace<publish>();
            }
            ok = decode_publish(r, h, v5, *p);
            break;
        }
        case packet_type::puback: ok = decode_ack(r, h.type, v5, out.emplace<puback>()); break;
        case packet_type::pubrec: ok = decode_ack(r, h.type, v5, out.emplace<pubrec>()); break;
        case packet_type::pubrel: ok = decode_ack(r, h.type, v5, out.emplace<pubrel>()); break;
        case packet_type::pubcomp: ok = decode_ack(r, h.type, v5, out.emplace<pubcomp>()); break;
        case packet_type::subscribe: ok = decode_subscribe(r, v5, out.emplace<subscribe>()); break;
        case packet_type::suback: ok = decode_suback(r, v5, out.emplace<suback>()); break;
        case packet_type::unsubscribe: ok = decode_unsubscribe(r, v5, out.emplace<unsubscribe>()); break;
        case packet_type::unsuback: ok = decode_unsuback(r, v5, out.emplace<unsuback>()); break;
        case packet_type::pingreq: out.emplace<pingreq>(); ok = true; break;
        case packet_type::pingresp: out.emplace<pingresp>(); ok = true; break;
        case packet_type::disconnect: {
            disconnect& d = out.emplace<disconnect>();
            ok = !v5 || decode_reason_only(r, h.type, d);  // 3.1.1: empty (checked above)
            break;
        }
        case packet_type::auth: ok = decode_reason_only(r, h.type, out.emplace<auth>()); break;
    }
    if (!ok) return error(r.code, r.detail);
    if (!r.at_end()) return error(reason_code::malformed_packet, "bytes after the end of the packet");
    return {decode_status::ok, h.total_size()};
}

bool decode_message_properties(std::string_view in, properties& out) {
    const auto* b = reinterpret_cast<const std::uint8_t*>(in.data());
    reader r(b, b + in.size());
    out = properties{};
    return r.props(out, ctx_of(packet_type::publish)) && r.left() == 0;
}

}  // namespace strata::mqtt
