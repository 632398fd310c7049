#include "broker/hosts/opcua_json.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <cmath>
#include <limits>
#include <type_traits>

namespace strata::broker::hosts {
namespace {

using nlohmann::json;
namespace ua = bridges::opcua;

// Integers a double holds exactly (JSON readers parse numbers as doubles).
constexpr std::int64_t max_exact = std::int64_t{1} << 53;

std::string base64(const std::vector<std::uint8_t>& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3), '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                  static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(std::max(n, 0)));
    return out;
}

std::optional<std::vector<std::uint8_t>> unbase64(const std::string& text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::vector<std::uint8_t> out(text.size() / 4 * 3);
    const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
    if (n < 0) return std::nullopt;
    std::size_t size = static_cast<std::size_t>(n);
    // EVP_DecodeBlock counts the padding as zero bytes.
    if (!text.empty() && text.back() == '=') --size;
    if (text.size() > 1 && text[text.size() - 2] == '=') --size;
    out.resize(size);
    return out;
}

json scalar(bool v) { return v; }
json scalar(std::int64_t v) { return v >= -max_exact && v <= max_exact ? json(v) : json(std::to_string(v)); }
json scalar(std::uint64_t v) {
    return v <= static_cast<std::uint64_t>(max_exact) ? json(v) : json(std::to_string(v));
}
template <class T>
    requires(std::is_integral_v<T> && sizeof(T) <= 4)
json scalar(T v) {
    return v;
}
template <class T>
    requires std::is_floating_point_v<T>
json scalar(T v) {
    // JSON has no NaN or infinities: their names, as strings.
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
    return static_cast<double>(v);
}
json scalar(const ua::ua_string& v) { return v ? json(*v) : json(nullptr); }
json scalar(const ua::date_time& v) { return v.ticks == 0 ? json(nullptr) : json(v.to_iso8601()); }
json scalar(const ua::guid& v) { return v.to_string(); }
json scalar(const ua::byte_string& v) { return v ? json(base64(*v)) : json(nullptr); }
json scalar(const ua::xml_element& v) { return scalar(v.value); }
json scalar(const ua::node_id& v) { return v.to_string(); }
json scalar(const ua::expanded_node_id& v) {
    return v.namespace_uri ? "nsu=" + *v.namespace_uri + ";" + v.id.to_string() : v.id.to_string();
}
json scalar(const ua::status_code& v) { return v.name(); }
json scalar(const ua::qualified_name& v) { return scalar(v.name); }
json scalar(const ua::localized_text& v) { return scalar(v.text); }
json scalar(const ua::extension_object& v) {
    json j{{"type_id", v.type_id.to_string()}};
    if (v.decoded) j["type"] = std::string(v.decoded->type_name());
    else if (v.body_encoding != ua::extension_object::encoding::none) j["body"] = base64(v.body);
    return j;
}
json scalar(const ua::diagnostic_info&) { return nullptr; }
json scalar(const ua::variant& v) { return opcua_to_json(v); }
json scalar(const ua::data_value& v) {
    return {{"value", v.value ? opcua_to_json(*v.value) : json(nullptr)},
            {"status", (v.status ? *v.status : ua::status_code{}).name()}};
}
template <class T>
json scalar(const ua::box<T>& v) {
    return scalar(*v);
}

// A flat array in row-major order as nested arrays of `dims`.
json nest(const json& flat, const std::vector<std::int32_t>& dims, std::size_t level, std::size_t& at) {
    json out = json::array();
    for (std::int32_t i = 0; i < dims[level]; ++i) {
        if (level + 1 == dims.size()) out.push_back(at < flat.size() ? flat[at++] : json(nullptr));
        else out.push_back(nest(flat, dims, level + 1, at));
    }
    return out;
}

json time_or_null(const std::optional<ua::date_time>& t) { return t ? scalar(*t) : json(nullptr); }

template <class T>
std::optional<T> integer(const json& j, std::string& error) {
    if (j.is_number_integer()) {
        if constexpr (std::is_signed_v<T>) {
            if (j.is_number_unsigned() && j.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
                return error = "out of range", std::nullopt;
            if (!j.is_number_unsigned()) {
                const auto v = j.get<std::int64_t>();
                if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
                    return error = "out of range", std::nullopt;
                return static_cast<T>(v);
            }
            return static_cast<T>(j.get<std::uint64_t>());
        } else {
            if (!j.is_number_unsigned() || j.get<std::uint64_t>() > std::numeric_limits<T>::max())
                return error = "out of range", std::nullopt;
            return static_cast<T>(j.get<std::uint64_t>());
        }
    }
    if (j.is_string()) {
        // Int64/UInt64 beyond 2^53 arrive as strings, as they are published.
        try {
            return integer<T>(json::parse(j.get<std::string>()), error);
        } catch (const json::exception&) {
        }
    }
    error = "expected an integer";
    return std::nullopt;
}

template <class T>
std::optional<T> element(const json& j, std::string& error) {
    if constexpr (std::is_same_v<T, bool>) {
        if (j.is_boolean()) return j.get<bool>();
        error = "expected true or false";
    } else if constexpr (std::is_integral_v<T>) {
        return integer<T>(j, error);
    } else if constexpr (std::is_floating_point_v<T>) {
        if (j.is_number()) return static_cast<T>(j.get<double>());
        error = "expected a number";
    } else if constexpr (std::is_same_v<T, ua::ua_string>) {
        if (j.is_string()) return ua::ua_string{j.get<std::string>()};
        error = "expected a string";
    } else if constexpr (std::is_same_v<T, ua::byte_string>) {
        if (j.is_string()) {
            if (auto b = unbase64(j.get<std::string>())) return ua::byte_string{std::move(*b)};
        }
        error = "expected base64 text";
    }
    return std::nullopt;
}

template <class T>
std::optional<ua::variant> convert(const json& j, bool array, std::string& error) {
    if (!array) {
        auto v = element<T>(j, error);
        if (!v) return std::nullopt;
        return ua::variant{std::move(*v)};
    }
    if (!j.is_array()) {
        error = "expected an array";
        return std::nullopt;
    }
    std::vector<T> out;
    out.reserve(j.size());
    for (const auto& e : j) {
        auto v = element<T>(e, error);
        if (!v) return std::nullopt;
        out.push_back(std::move(*v));
    }
    return ua::variant{std::move(out)};
}

}  // namespace

json opcua_to_json(const ua::variant& v) {
    json out = std::visit(
        [](const auto& x) -> json {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
                return nullptr;
            } else if constexpr (std::is_same_v<T, std::vector<bool>>) {
                json a = json::array();
                for (bool b : x) a.push_back(b);
                return a;
            } else if constexpr (requires { typename T::value_type; x.begin(); } &&
                                 !std::is_same_v<T, ua::ua_string> && !std::is_same_v<T, ua::byte_string>) {
                json a = json::array();
                for (const auto& e : x) a.push_back(scalar(e));
                return a;
            } else {
                return scalar(x);
            }
        },
        v.value);
    if (v.is_array() && v.dimensions.size() > 1) {
        std::size_t at = 0;
        return nest(out, v.dimensions, 0, at);
    }
    return out;
}

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The template's keys in its order (an ordered_json object).
nlohmann::ordered_json templated(const ua::data_value& dv, const opcua_template& t, std::string_view unit,
                                 ua::date_time received) {
    using field = opcua_template::field;
    const ua::status_code status = dv.status.value_or(ua::status_code{});
    const auto time = [&](std::initializer_list<const std::optional<ua::date_time>*> order) {
        for (const auto* o : order) {
            if (*o && o->value().ticks != 0) return o->value().to_iso8601();
        }
        return received.to_iso8601();
    };
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& k : t.keys) {
        switch (k.what) {
        case field::value: j[k.name] = nlohmann::ordered_json(dv.value ? opcua_to_json(*dv.value) : json(nullptr)); break;
        case field::source_ts: j[k.name] = time({&dv.source_timestamp, &dv.server_timestamp}); break;
        case field::server_ts: j[k.name] = time({&dv.server_timestamp}); break;
        case field::status: j[k.name] = k.names[status.bad() ? 2 : status.uncertain() ? 1 : 0]; break;
        case field::status_name: j[k.name] = status.name(); break;
        case field::status_code: j[k.name] = status.value; break;
        case field::unit:
            if (!unit.empty()) j[k.name] = unit;
            break;
        }
    }
    return j;
}

}  // namespace

std::string opcua_payload(const ua::data_value& dv, const opcua_template* t, std::string_view unit,
                          ua::date_time received) {
    if (t) return templated(dv, *t, unit, received).dump(-1, ' ', false, json::error_handler_t::replace);
    const ua::status_code status = dv.status.value_or(ua::status_code{});
    json j{{"value", dv.value ? opcua_to_json(*dv.value) : json(nullptr)},
           {"source_ts", time_or_null(dv.source_timestamp)},
           {"server_ts", time_or_null(dv.server_timestamp)},
           {"status", status.name()}};
    if (status.value != 0) j["status_code"] = status.value;
    return dump(j);
}

namespace {

std::string joined(const std::vector<std::string>& path) {
    std::string out;
    for (const auto& p : path) out += (out.empty() ? "" : ".") + p;
    return out;
}

// The value at `path` in `j`, or null when a step is missing or not an object.
const json* at_path(const json& j, const std::vector<std::string>& path) {
    const json* at = &j;
    for (const auto& key : path) {
        if (!at->is_object()) return nullptr;
        const auto it = at->find(key);
        if (it == at->end()) return nullptr;
        at = &*it;
    }
    return at;
}

}  // namespace

opcua_command opcua_read_command(std::string_view payload, const opcua_write& w) {
    opcua_command c;
    json j = json::parse(payload, nullptr, false);
    if (j.is_discarded()) {
        c.error = "the payload is not JSON";
        return c;
    }
    if (!w.command_shape()) {
        // A bare value, or {"value": ...}.
        if (j.is_object() && j.contains("value")) j = j["value"];
        c.value = std::move(j);
        return c;
    }
    if (!j.is_object()) {
        c.error = "expected a command object with the value at " + joined(w.value_path);
        return c;
    }
    if (const json* id = at_path(j, w.request_id_path); id && id->is_string()) c.request_id = id->get<std::string>();
    const json* v = at_path(j, w.value_path);
    if (!v) c.error = "the command has no " + joined(w.value_path);
    else c.value = *v;
    return c;
}

std::string_view to_string(write_result r) noexcept {
    switch (r) {
    case write_result::ok: return "ok";
    case write_result::refused: return "refused";
    case write_result::failed: return "failed";
    }
    return "failed";
}

std::string opcua_reply(const opcua_write& w, const std::optional<std::string>& request_id, write_result r,
                        std::string_view opcua_status, std::string_view detail, ua::date_time now) {
    json j = json::object();
    if (!w.command_shape()) {
        j["status"] = opcua_status.empty() ? std::string_view("BadTypeMismatch") : opcua_status;
        if (!detail.empty()) j["error"] = detail;
        return dump(j);
    }
    if (request_id) j["request_id"] = *request_id;
    j["status"] = to_string(r);
    if (!opcua_status.empty()) j["opcua_status"] = opcua_status;
    if (!detail.empty()) j["detail"] = detail;
    j["ts"] = now.to_iso8601();
    return dump(j);
}

std::optional<ua::variant> opcua_from_json(const json& j, ua::builtin_type type, bool array, std::string& error) {
    using bt = ua::builtin_type;
    switch (type) {
    case bt::boolean: return convert<bool>(j, array, error);
    case bt::sbyte: return convert<std::int8_t>(j, array, error);
    case bt::byte: return convert<std::uint8_t>(j, array, error);
    case bt::int16: return convert<std::int16_t>(j, array, error);
    case bt::uint16: return convert<std::uint16_t>(j, array, error);
    case bt::int32: return convert<std::int32_t>(j, array, error);
    case bt::uint32: return convert<std::uint32_t>(j, array, error);
    case bt::int64: return convert<std::int64_t>(j, array, error);
    case bt::uint64: return convert<std::uint64_t>(j, array, error);
    case bt::float_: return convert<float>(j, array, error);
    case bt::double_: return convert<double>(j, array, error);
    case bt::string: return convert<ua::ua_string>(j, array, error);
    case bt::byte_string: return convert<ua::byte_string>(j, array, error);
    default:
        error = "writing " + std::string(ua::to_string(type)) + " values is not supported";
        return std::nullopt;
    }
}

}  // namespace strata::broker::hosts
