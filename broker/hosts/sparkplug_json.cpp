#include "broker/hosts/sparkplug_json.hpp"

#include "bridges/opcua/types.hpp"

#include <cmath>

namespace strata::broker::hosts {
namespace {

namespace sp = bridges::sparkplug;
using nlohmann::json;

// Integers a double holds exactly (JSON readers parse numbers as doubles).
constexpr std::int64_t max_exact = std::int64_t{1} << 53;

}  // namespace

std::string iso8601_ms(std::int64_t unix_ms) {
    // The metrics of one payload share its time: the text of the last
    // time asked for on this thread is kept.
    thread_local std::int64_t last_ms = -1;
    thread_local std::string last;
    if (unix_ms != last_ms) {
        last = bridges::opcua::date_time::from_unix_us(unix_ms * 1000).to_iso8601();
        last_ms = unix_ms;
    }
    return last;
}

std::optional<json> sparkplug_to_json(const sp::value& v) {
    return std::visit(
        [](const auto& x) -> std::optional<json> {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
                return json(nullptr);
            } else if constexpr (std::is_same_v<T, std::int64_t>) {
                return x >= -max_exact && x <= max_exact ? json(x) : json(std::to_string(x));
            } else if constexpr (std::is_same_v<T, std::uint64_t>) {
                return x <= static_cast<std::uint64_t>(max_exact) ? json(x) : json(std::to_string(x));
            } else if constexpr (std::is_same_v<T, double>) {
                if (std::isnan(x)) return json("NaN");
                if (std::isinf(x)) return json(x > 0 ? "Infinity" : "-Infinity");
                return json(x);
            } else if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::string>) {
                return json(x);
            } else {
                return std::nullopt;
            }
        },
        v);
}

std::string sparkplug_payload(const json& v, sparkplug_quality q, std::uint64_t source_ms, std::int64_t received_ms,
                              const opcua_template* t, std::string_view unit) {
    static constexpr const char* quality_names[] = {"good", "uncertain", "bad"};
    static constexpr const char* status_names[] = {"Good", "UncertainLastUsableValue", "Bad"};
    static constexpr std::uint32_t status_codes[] = {0, 0x40900000u, 0x80000000u};
    const auto qi = static_cast<std::size_t>(q);
    using field = opcua_template::field;
    const std::int64_t src = source_ms != 0 && source_ms < (std::uint64_t{1} << 52) ? static_cast<std::int64_t>(source_ms)
                                                                                   : received_ms;
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    if (!t) {
        j["value"] = nlohmann::ordered_json(v);
        j["ts"] = iso8601_ms(src);
        j["quality"] = quality_names[qi];
        if (!unit.empty()) j["unit"] = unit;
        return j.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    for (const auto& k : t->keys) {
        switch (k.what) {
        case field::value: j[k.name] = nlohmann::ordered_json(v); break;
        case field::source_ts: j[k.name] = iso8601_ms(src); break;
        case field::server_ts: j[k.name] = iso8601_ms(received_ms); break;
        case field::status: j[k.name] = k.names[qi]; break;
        case field::status_name: j[k.name] = status_names[qi]; break;
        case field::status_code: j[k.name] = status_codes[qi]; break;
        case field::unit:
            if (!unit.empty()) j[k.name] = unit;
            break;
        }
    }
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<sp::value> sparkplug_from_json(const json& j) {
    if (j.is_boolean()) return j.get<bool>();
    if (j.is_number_unsigned()) return j.get<std::uint64_t>();
    if (j.is_number_integer()) return j.get<std::int64_t>();
    if (j.is_number_float()) return j.get<double>();
    if (j.is_string()) return j.get<std::string>();
    return std::nullopt;
}

}  // namespace strata::broker::hosts
