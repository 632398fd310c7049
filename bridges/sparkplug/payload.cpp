#include "bridges/sparkplug/payload.hpp"

#include "sparkplug_b.pb.h"

#include <google/protobuf/stubs/logging.h>

#include <array>
#include <cmath>
#include <limits>
#include <mutex>

namespace strata::bridges::sparkplug {
namespace {

namespace pb = org::eclipse::tahu::protobuf;

constexpr std::array<std::string_view, 35> type_names{
    "Unknown", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float", "Double",
    "Boolean", "String", "DateTime", "Text", "UUID", "DataSet", "Bytes", "File", "Template", "PropertySet",
    "PropertySetList", "Int8Array", "Int16Array", "Int32Array", "Int64Array", "UInt8Array", "UInt16Array",
    "UInt32Array", "UInt64Array", "FloatArray", "DoubleArray", "BooleanArray", "StringArray", "DateTimeArray"};

// protobuf logs what it finds odd in hostile input (strings that are not
// UTF-8) to stderr: the decoder counts malformed payloads itself.
void quiet_protobuf() {
    static std::once_flag once;
    std::call_once(once, [] { google::protobuf::SetLogHandler(nullptr); });
}

value raw_value(const pb::Payload::Metric& m, bool& int_field) {
    using M = pb::Payload::Metric;
    switch (m.value_case()) {
    case M::kIntValue: int_field = true; return std::uint64_t{m.int_value()};
    case M::kLongValue: return std::uint64_t{m.long_value()};
    case M::kFloatValue: return static_cast<double>(m.float_value());
    case M::kDoubleValue: return m.double_value();
    case M::kBooleanValue: return m.boolean_value();
    case M::kStringValue: return m.string_value();
    case M::VALUE_NOT_SET: return std::monostate{};
    default: return complex_value{};
    }
}

bool is_signed(data_type t) noexcept {
    return t == data_type::int8 || t == data_type::int16 || t == data_type::int32 || t == data_type::int64;
}
bool is_unsigned(data_type t) noexcept {
    return t == data_type::uint8 || t == data_type::uint16 || t == data_type::uint32 || t == data_type::uint64 ||
           t == data_type::date_time;
}
bool is_text(data_type t) noexcept { return t == data_type::string || t == data_type::text || t == data_type::uuid; }

template <class T>
bool in_range(std::int64_t v) noexcept {
    return v >= std::numeric_limits<T>::min() && v <= std::numeric_limits<T>::max();
}
template <class T>
bool in_range(std::uint64_t v) noexcept {
    return v <= static_cast<std::uint64_t>(std::numeric_limits<T>::max());
}

bool fits_signed(std::int64_t v, data_type t) noexcept {
    switch (t) {
    case data_type::int8: return in_range<std::int8_t>(v);
    case data_type::int16: return in_range<std::int16_t>(v);
    case data_type::int32: return in_range<std::int32_t>(v);
    default: return true;
    }
}
bool fits_unsigned(std::uint64_t v, data_type t) noexcept {
    switch (t) {
    case data_type::uint8: return in_range<std::uint8_t>(v);
    case data_type::uint16: return in_range<std::uint16_t>(v);
    case data_type::uint32: return in_range<std::uint32_t>(v);
    default: return true;
    }
}

}  // namespace

std::string_view to_string(data_type t) noexcept {
    const auto i = static_cast<std::size_t>(t);
    return i < type_names.size() ? type_names[i] : "Unknown";
}

data_type data_type_named(std::string_view name) noexcept {
    for (std::size_t i = 0; i < type_names.size(); ++i)
        if (type_names[i] == name) return static_cast<data_type>(i);
    return data_type::unknown;
}

value typed(const metric& m, data_type t) {
    if (m.is_null) return std::monostate{};
    if (is_signed(t)) {
        const auto* u = std::get_if<std::uint64_t>(&m.v);
        if (!u) return std::monostate{};
        // Two's complement of the field: 32 bits in int_value, 64 in long_value.
        const std::int64_t s = m.int_field ? std::int64_t{static_cast<std::int32_t>(static_cast<std::uint32_t>(*u))}
                                           : static_cast<std::int64_t>(*u);
        if (!fits_signed(s, t)) return std::monostate{};
        return s;
    }
    if (is_unsigned(t)) {
        const auto* u = std::get_if<std::uint64_t>(&m.v);
        if (!u || !fits_unsigned(*u, t)) return std::monostate{};
        return *u;
    }
    if (t == data_type::float_ || t == data_type::double_) {
        if (const auto* d = std::get_if<double>(&m.v)) return *d;
        return std::monostate{};
    }
    if (t == data_type::boolean) {
        if (const auto* b = std::get_if<bool>(&m.v)) return *b;
        return std::monostate{};
    }
    if (is_text(t)) {
        if (const auto* s = std::get_if<std::string>(&m.v)) return *s;
        return std::monostate{};
    }
    return complex_value{};
}

decoded decode(std::string_view bytes, const decode_limits& limits) noexcept {
    decoded out;
    if (bytes.size() > limits.max_bytes || bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        out.error = decode_error::too_large;
        return out;
    }
    try {
        quiet_protobuf();
        pb::Payload p;
        if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
            out.error = decode_error::malformed;
            return out;
        }
        if (static_cast<std::size_t>(p.metrics_size()) > limits.max_metrics) {
            out.error = decode_error::too_many;
            return out;
        }
        if (p.has_timestamp()) out.p.timestamp = p.timestamp();
        if (p.has_seq()) out.p.seq = p.seq();
        if (p.has_uuid()) out.p.uuid = p.uuid();
        out.p.metrics.reserve(static_cast<std::size_t>(p.metrics_size()));
        for (const auto& pm : p.metrics()) {
            metric m;
            if (pm.has_name()) m.name = pm.name();
            if (pm.has_alias()) m.alias = pm.alias();
            if (pm.has_timestamp()) m.timestamp = pm.timestamp();
            if (pm.has_datatype()) m.datatype = static_cast<data_type>(pm.datatype());
            m.is_historical = pm.is_historical();
            m.is_transient = pm.is_transient();
            m.is_null = pm.is_null();
            m.v = raw_value(pm, m.int_field);
            out.p.metrics.push_back(std::move(m));
        }
    } catch (...) {
        // Out of memory on a hostile length: the payload is dropped like a
        // malformed one.
        out = decoded{};
        out.error = decode_error::malformed;
    }
    return out;
}

std::optional<value> fits(const value& v, data_type t) {
    const auto* i = std::get_if<std::int64_t>(&v);
    const auto* u = std::get_if<std::uint64_t>(&v);
    const auto* d = std::get_if<double>(&v);
    if (is_signed(t)) {
        if (i && fits_signed(*i, t)) return *i;
        if (u && *u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) &&
            fits_signed(static_cast<std::int64_t>(*u), t))
            return static_cast<std::int64_t>(*u);
        return std::nullopt;
    }
    if (is_unsigned(t)) {
        if (u && fits_unsigned(*u, t)) return *u;
        if (i && *i >= 0 && fits_unsigned(static_cast<std::uint64_t>(*i), t)) return static_cast<std::uint64_t>(*i);
        return std::nullopt;
    }
    if (t == data_type::float_ || t == data_type::double_) {
        if (d) return *d;
        if (i) return static_cast<double>(*i);
        if (u) return static_cast<double>(*u);
        return std::nullopt;
    }
    if (t == data_type::boolean) {
        if (const auto* b = std::get_if<bool>(&v)) return *b;
        return std::nullopt;
    }
    if (is_text(t)) {
        if (const auto* s = std::get_if<std::string>(&v)) return *s;
        return std::nullopt;
    }
    return std::nullopt;
}

std::string encode(const payload& p) {
    pb::Payload out;
    if (p.timestamp) out.set_timestamp(*p.timestamp);
    if (p.seq) out.set_seq(*p.seq);
    if (p.uuid) out.set_uuid(*p.uuid);
    for (const auto& m : p.metrics) {
        auto& pm = *out.add_metrics();
        if (m.name) pm.set_name(*m.name);
        if (m.alias) pm.set_alias(*m.alias);
        if (m.timestamp) pm.set_timestamp(*m.timestamp);
        const data_type t = m.datatype.value_or(data_type::unknown);
        if (m.datatype) pm.set_datatype(static_cast<std::uint32_t>(t));
        if (m.is_historical) pm.set_is_historical(true);
        if (m.is_transient) pm.set_is_transient(true);
        if (m.is_null || std::holds_alternative<std::monostate>(m.v)) {
            pm.set_is_null(true);
            continue;
        }
        const bool narrow = t == data_type::int8 || t == data_type::int16 || t == data_type::int32 ||
                            t == data_type::uint8 || t == data_type::uint16 || t == data_type::uint32;
        std::visit(
            [&](const auto& x) {
                using T = std::decay_t<decltype(x)>;
                if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t>) {
                    if (narrow) pm.set_int_value(static_cast<std::uint32_t>(x));
                    else pm.set_long_value(static_cast<std::uint64_t>(x));
                } else if constexpr (std::is_same_v<T, double>) {
                    if (t == data_type::float_) pm.set_float_value(static_cast<float>(x));
                    else pm.set_double_value(x);
                } else if constexpr (std::is_same_v<T, bool>) {
                    pm.set_boolean_value(x);
                } else if constexpr (std::is_same_v<T, std::string>) {
                    pm.set_string_value(x);
                }
            },
            m.v);
    }
    return out.SerializeAsString();
}

}  // namespace strata::bridges::sparkplug
