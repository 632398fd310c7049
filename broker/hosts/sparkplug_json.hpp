// Sparkplug metrics as the namespace's JSON, and command values back
// (docs/sparkplug.md).
//
// Out: a metric's value in its class's payload template (config
// `sparkplug.templates`, the same keys as an OPC UA template): value (a
// number, boolean or string; Int64/UInt64 beyond 2^53 as strings; NaN and
// infinities as their names), source_ts (the metric's timestamp, else the
// payload's, else when it was received, RFC 3339 UTC with ms), server_ts
// (when it was received), status (sparkplug_quality) and its name and
// code, unit (the rule's). Without a template: {"value", "ts",
// "quality"} and "unit" when the rule has one. Text that is not UTF-8 has
// the bad bytes replaced.
// In: a JSON value as a Sparkplug value to be fitted to a metric's type.
//
// Thread-safety: pure functions.
#pragma once

#include "bridges/sparkplug/payload.hpp"
#include "broker/config.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::broker::hosts {

// The JSON of a metric value; none for a value the namespace cannot take
// (complex).
[[nodiscard]] std::optional<nlohmann::json> sparkplug_to_json(const bridges::sparkplug::value& v);

// A value's quality: good; uncertain, the last value of a node or device
// that died (OPC UA's UncertainLastUsableValue); bad, a null value.
enum class sparkplug_quality : std::uint8_t { good, uncertain, bad };

// The payload of one metric: `v` its value (typed), `source_ms` its time
// (0: none), `received_ms` when the broker took it.
[[nodiscard]] std::string sparkplug_payload(const nlohmann::json& v, sparkplug_quality q, std::uint64_t source_ms,
                                            std::int64_t received_ms, const opcua_template* t, std::string_view unit);

// A JSON scalar as a Sparkplug value (integers signed or unsigned,
// numbers, booleans, strings); none for null, objects and arrays.
[[nodiscard]] std::optional<bridges::sparkplug::value> sparkplug_from_json(const nlohmann::json& j);

// RFC 3339 UTC (as OPC UA times are written); `unix_ms` below 2^52.
[[nodiscard]] std::string iso8601_ms(std::int64_t unix_ms);

}  // namespace strata::broker::hosts
