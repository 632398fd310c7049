// OPC UA values as JSON, both ways (docs/opcua.md).
//
// Out: a DataValue becomes {"value", "source_ts", "server_ts", "status"}:
// arrays stay arrays, matrices become nested arrays, DateTime is ISO 8601,
// ByteString base64, Int64/UInt64 are numbers when a double holds them
// exactly and strings otherwise, StatusCode its name. Strings that are not
// valid UTF-8 have the bad bytes replaced (U+FFFD) when serialised.
// With a payload template (config `template:`, opcua_template in
// broker/config.hpp) the payload has the template's keys and nothing else.
// In: a JSON value converted to a given built-in type (a Write's value),
// read from a command as its `writes:` entry says; the reply to it.
//
// Thread-safety: pure functions.
#pragma once

#include "bridges/opcua/types.hpp"
#include "broker/config.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace strata::broker::hosts {

// The payload published for one value change: the template's keys, or
// without one {"value", "source_ts", "server_ts", "status"[, "status_code"]}.
// `unit` is the mapping's; `received` when the change arrived (the last
// fallback of a templated timestamp).
[[nodiscard]] std::string opcua_payload(const bridges::opcua::data_value& dv, const opcua_template* t = nullptr,
                                        std::string_view unit = {},
                                        bridges::opcua::date_time received = bridges::opcua::date_time::now());
[[nodiscard]] nlohmann::json opcua_to_json(const bridges::opcua::variant& v);

// A Write command's payload read as its `writes:` entry says (config.hpp,
// opcua_write): the value to write, or why there is none; the request id
// of a command in the model's shape (when it is a string).
struct opcua_command {
    std::optional<nlohmann::json> value;
    std::optional<std::string> request_id;
    std::string error;  // set when value is empty
};
[[nodiscard]] opcua_command opcua_read_command(std::string_view payload, const opcua_write& w);

// What became of a command: written (ok), not written because of the
// command (refused: not readable, a value that does not fit the node), or
// not written because of the server or the connection (failed).
enum class write_result : std::uint8_t { ok, refused, failed };
[[nodiscard]] std::string_view to_string(write_result r) noexcept;

// The reply to a command. In the model's shape (w.command_shape()):
// {"request_id"?, "status": ok|refused|failed, "opcua_status"?, "detail"?,
// "ts"}; else {"status": "<OPC UA status>", "error"?}. `opcua_status`
// empty: no OPC UA status applies (the command was not readable).
[[nodiscard]] std::string opcua_reply(const opcua_write& w, const std::optional<std::string>& request_id,
                                      write_result r, std::string_view opcua_status, std::string_view detail,
                                      bridges::opcua::date_time now = bridges::opcua::date_time::now());

// `j` as a Variant of built-in type `type` (a scalar, or a one-dimensional
// array when `array`); nullopt with `error` set when it does not fit.
[[nodiscard]] std::optional<bridges::opcua::variant> opcua_from_json(const nlohmann::json& j, bridges::opcua::builtin_type type,
                                                            bool array, std::string& error);

}  // namespace strata::broker::hosts
