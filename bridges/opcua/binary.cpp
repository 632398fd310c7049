// OPC UA Binary encoding of the built-in types (OPC 10000-6 5.2.2).
//
// Every decode function leaves the reader failed (sticky, see binary.hpp) on
// bad input; loops stop at the first failure so a hostile length never costs
// more than the bytes actually present.
#include "bridges/opcua/binary.hpp"

#include <bit>
#include <cstring>
#include <utility>

namespace strata::bridges::opcua {

std::int64_t reader::length(std::uint32_t max, std::size_t min_element_size, const char* too_long) noexcept {
    const std::int32_t n = i32();
    if (!ok()) return 0;
    if (n == -1) return -1;
    if (n < 0) {
        fail("negative length");
        return 0;
    }
    if (static_cast<std::uint32_t>(n) > max) {
        fail(too_long);
        return 0;
    }
    if (min_element_size != 0 && static_cast<std::size_t>(n) > remaining() / min_element_size) {
        fail("truncated");
        return 0;
    }
    return n;
}

// ---- scalars ----

void encode(writer& w, bool v) { w.u8(v ? 1 : 0); }
void encode(writer& w, std::int8_t v) { w.u8(static_cast<std::uint8_t>(v)); }
void encode(writer& w, std::uint8_t v) { w.u8(v); }
void encode(writer& w, std::int16_t v) { w.u16(static_cast<std::uint16_t>(v)); }
void encode(writer& w, std::uint16_t v) { w.u16(v); }
void encode(writer& w, std::int32_t v) { w.i32(v); }
void encode(writer& w, std::uint32_t v) { w.u32(v); }
void encode(writer& w, std::int64_t v) { w.u64(static_cast<std::uint64_t>(v)); }
void encode(writer& w, std::uint64_t v) { w.u64(v); }
void encode(writer& w, float v) { w.u32(std::bit_cast<std::uint32_t>(v)); }
void encode(writer& w, double v) { w.u64(std::bit_cast<std::uint64_t>(v)); }

void decode(reader& r, bool& v) { v = r.u8() != 0; }  // any non-zero byte is true
void decode(reader& r, std::int8_t& v) { v = static_cast<std::int8_t>(r.u8()); }
void decode(reader& r, std::uint8_t& v) { v = r.u8(); }
void decode(reader& r, std::int16_t& v) { v = static_cast<std::int16_t>(r.u16()); }
void decode(reader& r, std::uint16_t& v) { v = r.u16(); }
void decode(reader& r, std::int32_t& v) { v = r.i32(); }
void decode(reader& r, std::uint32_t& v) { v = r.u32(); }
void decode(reader& r, std::int64_t& v) { v = static_cast<std::int64_t>(r.u64()); }
void decode(reader& r, std::uint64_t& v) { v = r.u64(); }
void decode(reader& r, float& v) { v = std::bit_cast<float>(r.u32()); }
void decode(reader& r, double& v) { v = std::bit_cast<double>(r.u64()); }

// ---- strings ----

namespace {

void write_length_prefixed(writer& w, const void* p, std::size_t n) {
    w.i32(static_cast<std::int32_t>(n));
    w.bytes(p, n);
}

// Reads an Int32 length and that many bytes; nullptr for null (-1) or failure.
const std::uint8_t* read_length_prefixed(reader& r, std::uint32_t max, const char* too_long, std::size_t& n) {
    const std::int64_t len = r.length(max, 1, too_long);
    n = 0;
    if (len < 0 || !r.ok()) return nullptr;
    n = static_cast<std::size_t>(len);
    if (!r.charge(n)) return nullptr;
    const std::uint8_t* p = r.take(n);
    // A zero-length take returns a valid pointer, so empty stays distinct from null.
    return p;
}

}  // namespace

void encode(writer& w, const ua_string& v) {
    if (!v) return w.i32(-1);
    write_length_prefixed(w, v->data(), v->size());
}

void decode(reader& r, ua_string& v) {
    std::size_t n = 0;
    const std::uint8_t* p = read_length_prefixed(r, r.limits().max_string_length, "string too long", n);
    if (!p) return v.reset();
    if (v) v->assign(reinterpret_cast<const char*>(p), n);
    else v.emplace(reinterpret_cast<const char*>(p), n);
}

void encode(writer& w, const byte_string& v) {
    if (!v) return w.i32(-1);
    write_length_prefixed(w, v->data(), v->size());
}

void decode(reader& r, byte_string& v) {
    std::size_t n = 0;
    const std::uint8_t* p = read_length_prefixed(r, r.limits().max_byte_string_length, "byte string too long", n);
    if (!p) return v.reset();
    if (v) v->assign(p, p + n);
    else v.emplace(p, p + n);
}

void encode(writer& w, const xml_element& v) { encode(w, v.value); }
void decode(reader& r, xml_element& v) { decode(r, v.value); }

// ---- fixed-size structures ----

void encode(writer& w, date_time v) { w.u64(static_cast<std::uint64_t>(v.ticks)); }
void decode(reader& r, date_time& v) { v.ticks = static_cast<std::int64_t>(r.u64()); }

void encode(writer& w, status_code v) { w.u32(v.value); }
void decode(reader& r, status_code& v) { v.value = r.u32(); }

void encode(writer& w, const guid& v) {
    w.u32(v.data1);
    w.u16(v.data2);
    w.u16(v.data3);
    w.bytes(v.data4.data(), v.data4.size());
}

void decode(reader& r, guid& v) {
    v.data1 = r.u32();
    v.data2 = r.u16();
    v.data3 = r.u16();
    if (const std::uint8_t* p = r.take(8)) std::memcpy(v.data4.data(), p, 8);
}

// ---- NodeId / ExpandedNodeId (OPC 10000-6 5.2.2.9, 5.2.2.10) ----

namespace {

enum node_id_encoding : std::uint8_t {
    two_byte = 0, four_byte = 1, numeric = 2, string_id = 3, guid_id = 4, opaque_id = 5,
};
constexpr std::uint8_t flag_namespace_uri = 0x80;
constexpr std::uint8_t flag_server_index = 0x40;

// The encoding byte's low six bits for `v` (flags are the caller's).
std::uint8_t node_id_encoding_of(const node_id& v) {
    switch (v.identifier.index()) {
        case 0: {
            const std::uint32_t id = std::get<0>(v.identifier);
            if (v.namespace_index == 0 && id <= 0xFF) return two_byte;
            if (v.namespace_index <= 0xFF && id <= 0xFFFF) return four_byte;
            return numeric;
        }
        case 1: return string_id;
        case 2: return guid_id;
        default: return opaque_id;
    }
}

void encode_node_id(writer& w, const node_id& v, std::uint8_t flags) {
    const std::uint8_t enc = node_id_encoding_of(v);
    w.u8(enc | flags);
    switch (enc) {
        case two_byte: w.u8(static_cast<std::uint8_t>(std::get<0>(v.identifier))); return;
        case four_byte:
            w.u8(static_cast<std::uint8_t>(v.namespace_index));
            w.u16(static_cast<std::uint16_t>(std::get<0>(v.identifier)));
            return;
        default: break;
    }
    w.u16(v.namespace_index);
    switch (enc) {
        case numeric: w.u32(std::get<0>(v.identifier)); break;
        case string_id: {
            const std::string& s = std::get<1>(v.identifier);
            write_length_prefixed(w, s.data(), s.size());
            break;
        }
        case guid_id: encode(w, std::get<2>(v.identifier)); break;
        default: {
            const auto& b = std::get<3>(v.identifier);
            write_length_prefixed(w, b.data(), b.size());
            break;
        }
    }
}

// The NodeId after its encoding byte `enc` (flags already removed).
void decode_node_id_body(reader& r, std::uint8_t enc, node_id& v) {
    switch (enc) {
        case two_byte:
            v.namespace_index = 0;
            v.identifier = std::uint32_t{r.u8()};
            return;
        case four_byte:
            v.namespace_index = r.u8();
            v.identifier = std::uint32_t{r.u16()};
            return;
        case numeric:
            v.namespace_index = r.u16();
            v.identifier = r.u32();
            return;
        case string_id: {
            v.namespace_index = r.u16();
            std::size_t n = 0;
            const std::uint8_t* p = read_length_prefixed(r, r.limits().max_string_length, "string too long", n);
            v.identifier.emplace<std::string>(p ? reinterpret_cast<const char*>(p) : "", p ? n : 0);
            return;
        }
        case guid_id: {
            v.namespace_index = r.u16();
            decode(r, v.identifier.emplace<guid>());
            return;
        }
        case opaque_id: {
            v.namespace_index = r.u16();
            std::size_t n = 0;
            const std::uint8_t* p = read_length_prefixed(r, r.limits().max_byte_string_length, "byte string too long", n);
            auto& b = v.identifier.emplace<std::vector<std::uint8_t>>();
            if (p) b.assign(p, p + n);
            return;
        }
        default: r.fail("unknown NodeId encoding"); return;
    }
}

}  // namespace

void encode(writer& w, const node_id& v) { encode_node_id(w, v, 0); }

void decode(reader& r, node_id& v) {
    const std::uint8_t enc = r.u8();
    if (!r.ok()) return;
    if (enc & (flag_namespace_uri | flag_server_index)) return r.fail("NodeId with ExpandedNodeId flags");
    decode_node_id_body(r, enc, v);
}

void encode(writer& w, const expanded_node_id& v) {
    const std::uint8_t flags = (v.namespace_uri ? flag_namespace_uri : 0) | (v.server_index ? flag_server_index : 0);
    encode_node_id(w, v.id, flags);
    if (v.namespace_uri) encode(w, v.namespace_uri);
    if (v.server_index) w.u32(v.server_index);
}

void decode(reader& r, expanded_node_id& v) {
    const std::uint8_t enc = r.u8();
    if (!r.ok()) return;
    decode_node_id_body(r, enc & 0x3F, v.id);
    if (enc & flag_namespace_uri) decode(r, v.namespace_uri);
    else v.namespace_uri.reset();
    v.server_index = (enc & flag_server_index) ? r.u32() : 0;
}

// ---- QualifiedName, LocalizedText ----

void encode(writer& w, const qualified_name& v) {
    w.u16(v.namespace_index);
    encode(w, v.name);
}

void decode(reader& r, qualified_name& v) {
    v.namespace_index = r.u16();
    decode(r, v.name);
}

void encode(writer& w, const localized_text& v) {
    w.u8((v.locale ? 0x01 : 0) | (v.text ? 0x02 : 0));
    if (v.locale) encode(w, v.locale);
    if (v.text) encode(w, v.text);
}

void decode(reader& r, localized_text& v) {
    const std::uint8_t mask = r.u8();
    if (mask & ~0x03) return r.fail("LocalizedText reserved bits set");
    if (mask & 0x01) decode(r, v.locale);
    else v.locale.reset();
    if (mask & 0x02) decode(r, v.text);
    else v.text.reset();
}

// ---- ExtensionObject (OPC 10000-6 5.2.2.15) ----

extension_object::extension_object(const extension_object& o)
    : type_id(o.type_id), body_encoding(o.body_encoding), body(o.body),
      decoded(o.decoded ? o.decoded->clone() : nullptr) {}

extension_object& extension_object::operator=(const extension_object& o) {
    if (this != &o) *this = extension_object(o);
    return *this;
}

bool operator==(const extension_object& a, const extension_object& b) {
    if (a.decoded || b.decoded) return a.decoded && b.decoded && a.decoded->equals(*b.decoded);
    return a.type_id == b.type_id && a.body_encoding == b.body_encoding && a.body == b.body;
}

void encode(writer& w, const extension_object& v) {
    if (v.decoded) {
        encode(w, node_id{0, v.decoded->binary_encoding_id()});
        w.u8(static_cast<std::uint8_t>(extension_object::encoding::byte_string));
        const std::size_t at = w.size();
        w.u32(0);
        v.decoded->encode(w);
        w.patch_u32(at, static_cast<std::uint32_t>(w.size() - at - 4));
        return;
    }
    encode(w, v.type_id);
    w.u8(static_cast<std::uint8_t>(v.body_encoding));
    if (v.body_encoding != extension_object::encoding::none) write_length_prefixed(w, v.body.data(), v.body.size());
}

void decode(reader& r, extension_object& v) {
    decode(r, v.type_id);
    const std::uint8_t enc = r.u8();
    v.decoded.reset();
    v.body.clear();
    if (!r.ok()) return;
    if (enc > 2) return r.fail("unknown ExtensionObject encoding");
    v.body_encoding = static_cast<extension_object::encoding>(enc);
    if (enc == 0) return;
    std::size_t n = 0;
    const std::uint8_t* p = read_length_prefixed(r, r.limits().max_byte_string_length, "byte string too long", n);
    if (!p) {  // a null body is no body
        v.body_encoding = extension_object::encoding::none;
        return;
    }
    const std::uint32_t* id = v.type_id.numeric();
    type_registry::decode_fn fn = nullptr;
    if (enc == 1 && v.type_id.namespace_index == 0 && id && r.types()) fn = r.types()->find(*id);
    if (!fn) {
        v.body.assign(p, p + n);
        return;
    }
    if (!r.enter()) return;
    reader body = r.nested(std::span<const std::uint8_t>(p, n));
    v.decoded = fn(body);
    r.leave();
    // Trailing bytes inside a known body are tolerated (a newer peer's extra fields).
    if (!body.ok()) {
        v.decoded.reset();
        r.fail_at(body.error(), r.offset() - n + body.error_offset());
    }
}

// ---- Variant (OPC 10000-6 5.2.2.16) ----

namespace {

constexpr std::uint8_t variant_array = 0x80;
constexpr std::uint8_t variant_dimensions = 0x40;

using decode_alternative = void (*)(reader&, variant::storage&);

template <std::size_t I>
void decode_as(reader& r, variant::storage& s) {
    decode(r, s.template emplace<I>());
}

template <std::size_t... I>
constexpr auto make_decoders(std::index_sequence<I...>) {
    return std::array<decode_alternative, sizeof...(I)>{&decode_as<I + 1>...};
}
// decoders[i - 1] decodes storage alternative i (1..50).
constexpr auto decoders = make_decoders(std::make_index_sequence<2 * max_builtin_type>{});

}  // namespace

void encode(writer& w, const variant& v) {
    const std::size_t i = v.value.index();
    if (i == 0) return w.u8(0);
    std::uint8_t enc = static_cast<std::uint8_t>(v.type());
    if (v.is_array()) enc |= variant_array | (v.dimensions.empty() ? 0 : variant_dimensions);
    w.u8(enc);
    std::visit(
        [&w](const auto& x) {
            if constexpr (!std::is_same_v<std::decay_t<decltype(x)>, std::monostate>) encode(w, x);
        },
        v.value);
    if (v.is_array() && !v.dimensions.empty()) encode(w, v.dimensions);
}

void decode(reader& r, variant& v) {
    v.dimensions.clear();
    const std::uint8_t enc = r.u8();
    if (!r.ok()) return;
    const std::uint8_t type = enc & 0x3F;
    if (type == 0) {
        if (enc != 0) return r.fail("null Variant with array flags");
        v.value.emplace<0>();
        return;
    }
    if (type > max_builtin_type) return r.fail("unknown built-in type in Variant");
    if ((enc & variant_dimensions) && !(enc & variant_array)) return r.fail("Variant dimensions without array");
    if (!r.enter()) return;
    const std::size_t index = type + ((enc & variant_array) ? variant::array_offset : 0);
    decoders[index - 1](r, v.value);
    r.leave();
    if (!(enc & variant_dimensions) || !r.ok()) return;
    decode(r, v.dimensions);
    if (!r.ok()) return;
    std::uint64_t product = 1;
    for (const std::int32_t d : v.dimensions) {
        if (d < 0) return r.fail("negative array dimension");
        product *= static_cast<std::uint64_t>(d);
        if (product > r.limits().max_array_length) return r.fail("array dimensions do not match length");
    }
    const std::size_t length = std::visit(
        [](const auto& x) -> std::size_t {
            if constexpr (requires { x.size(); }) return x.size();
            else return 0;
        },
        v.value);
    if (v.dimensions.empty() || product != length) r.fail("array dimensions do not match length");
}

// ---- DataValue (OPC 10000-6 5.2.2.17) ----

namespace {
enum data_value_bits : std::uint8_t {
    dv_value = 0x01, dv_status = 0x02, dv_source_ts = 0x04, dv_server_ts = 0x08,
    dv_source_ps = 0x10, dv_server_ps = 0x20,
};

template <class T>
void decode_if(reader& r, bool present, std::optional<T>& field) {
    if (present) decode(r, field.emplace());
    else field.reset();
}
template <class T>
void encode_if(writer& w, const std::optional<T>& field) {
    if (field) encode(w, *field);
}
}  // namespace

void encode(writer& w, const data_value& v) {
    w.u8((v.value ? dv_value : 0) | (v.status ? dv_status : 0) | (v.source_timestamp ? dv_source_ts : 0) |
         (v.server_timestamp ? dv_server_ts : 0) | (v.source_picoseconds ? dv_source_ps : 0) |
         (v.server_picoseconds ? dv_server_ps : 0));
    encode_if(w, v.value);
    encode_if(w, v.status);
    encode_if(w, v.source_timestamp);
    encode_if(w, v.source_picoseconds);
    encode_if(w, v.server_timestamp);
    encode_if(w, v.server_picoseconds);
}

void decode(reader& r, data_value& v) {
    const std::uint8_t mask = r.u8();
    if (!r.ok()) return;
    if (mask & 0xC0) return r.fail("DataValue reserved bits set");
    if (!r.enter()) return;
    decode_if(r, mask & dv_value, v.value);
    decode_if(r, mask & dv_status, v.status);
    decode_if(r, mask & dv_source_ts, v.source_timestamp);
    decode_if(r, mask & dv_source_ps, v.source_picoseconds);
    decode_if(r, mask & dv_server_ts, v.server_timestamp);
    decode_if(r, mask & dv_server_ps, v.server_picoseconds);
    r.leave();
}

// ---- DiagnosticInfo (OPC 10000-6 5.2.2.12) ----

namespace {
enum diagnostic_bits : std::uint8_t {
    di_symbolic_id = 0x01, di_namespace_uri = 0x02, di_localized_text = 0x04, di_locale = 0x08,
    di_additional_info = 0x10, di_inner_status = 0x20, di_inner_info = 0x40,
};
}  // namespace

void encode(writer& w, const diagnostic_info& v) {
    w.u8((v.symbolic_id ? di_symbolic_id : 0) | (v.namespace_uri ? di_namespace_uri : 0) |
         (v.localized_text ? di_localized_text : 0) | (v.locale ? di_locale : 0) |
         (v.additional_info ? di_additional_info : 0) | (v.inner_status_code ? di_inner_status : 0) |
         (v.inner_diagnostic_info ? di_inner_info : 0));
    // Wire order differs from bit order: Locale before LocalizedText.
    encode_if(w, v.symbolic_id);
    encode_if(w, v.namespace_uri);
    encode_if(w, v.locale);
    encode_if(w, v.localized_text);
    if (v.additional_info) encode(w, v.additional_info);
    encode_if(w, v.inner_status_code);
    if (v.inner_diagnostic_info) encode(w, **v.inner_diagnostic_info);
}

void decode(reader& r, diagnostic_info& v) {
    const std::uint8_t mask = r.u8();
    if (!r.ok()) return;
    if (mask & 0x80) return r.fail("DiagnosticInfo reserved bit set");
    if (!r.enter()) return;
    decode_if(r, mask & di_symbolic_id, v.symbolic_id);
    decode_if(r, mask & di_namespace_uri, v.namespace_uri);
    decode_if(r, mask & di_locale, v.locale);
    decode_if(r, mask & di_localized_text, v.localized_text);
    if (mask & di_additional_info) decode(r, v.additional_info);
    else v.additional_info.reset();
    decode_if(r, mask & di_inner_status, v.inner_status_code);
    if (mask & di_inner_info) decode(r, *v.inner_diagnostic_info.emplace());
    else v.inner_diagnostic_info.reset();
    r.leave();
}

}  // namespace strata::bridges::opcua
