// OPC UA values as JSON, both ways (README "OPC UA").
//
// Out: a DataValue becomes {"value", "source_ts", "server_ts", "status"}:
// arrays stay arrays, matrices become nested arrays, DateTime is ISO 8601,
// ByteString base64, Int64/UInt64 are numbers when a double holds them
// exactly and strings otherwise, StatusCode its name. Strings that are not
// valid UTF-8 have the bad bytes replaced (U+FFFD) when serialised.
// In: a JSON value converted to a given built-in type (a Write's value).
//
// Thread-safety: pure functions.
#pragma once

#include "bridges/opcua/types.hpp"

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>

namespace strata::broker::hosts {

// The payload published for one value change.
[[nodiscard]] std::string opcua_payload(const bridges::opcua::data_value& dv);
[[nodiscard]] nlohmann::json opcua_to_json(const bridges::opcua::variant& v);

// `j` as a Variant of built-in type `type` (a scalar, or a one-dimensional
// array when `array`); nullopt with `error` set when it does not fit.
[[nodiscard]] std::optional<bridges::opcua::variant> opcua_from_json(const nlohmann::json& j, bridges::opcua::builtin_type type,
                                                            bool array, std::string& error);

}  // namespace strata::broker::hosts
