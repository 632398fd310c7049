// Sparkplug B payloads as plain values (Sparkplug 3.0, chapter 6), decoded
// from and encoded to the protobuf wire format of sparkplug_b.proto.
//
// Every payload comes from the network and is hostile: decode() never
// throws and never trusts a length; what protobuf refuses (truncated,
// wrong wire types, nesting beyond its limit) is a `malformed` result.
// Values the namespace mapping cannot use (DataSet, Template, arrays,
// extensions) decode as `complex` with their type, and are counted rather
// than published.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace strata::bridges::sparkplug {

// The Sparkplug data types (sparkplug_b.proto DataType).
enum class data_type : std::uint32_t {
    unknown = 0,
    int8 = 1, int16 = 2, int32 = 3, int64 = 4,
    uint8 = 5, uint16 = 6, uint32 = 7, uint64 = 8,
    float_ = 9, double_ = 10, boolean = 11, string = 12,
    date_time = 13, text = 14, uuid = 15, data_set = 16,
    bytes = 17, file = 18, template_ = 19,
    property_set = 20, property_set_list = 21,
    // 22..34: arrays
};
[[nodiscard]] std::string_view to_string(data_type t) noexcept;
// A data type by its name in the specification ("Int32", "Double"); unknown when none.
[[nodiscard]] data_type data_type_named(std::string_view name) noexcept;

// A value that is not a scalar the namespace can take (DataSet, Template,
// bytes, arrays, an extension): kept as its kind only.
struct complex_value {
    bool operator==(const complex_value&) const = default;
};

// A metric's value: none (no value field, or is_null), a signed or
// unsigned integer (the data type says which, two's complement per the
// specification), a floating-point number, a boolean, text, or complex.
using value = std::variant<std::monostate, std::int64_t, std::uint64_t, double, bool, std::string, complex_value>;

// A decoded metric keeps its value as it was on the wire: int_value and
// long_value as unsigned (int_field: it was the 32-bit int_value), float
// as double. typed() reads it as its data type says.
struct metric {
    std::optional<std::string> name;   // absent in data that uses aliases
    std::optional<std::uint64_t> alias;
    std::optional<std::uint64_t> timestamp;  // ms since the Unix epoch
    std::optional<data_type> datatype;       // required in births, optional in data
    bool is_historical = false;
    bool is_transient = false;
    bool is_null = false;
    bool int_field = false;  // the value came in int_value (32 bits)
    value v;
};

// The value of `m` read as type `t` (its own datatype, or the one its
// birth declared): Int8..Int64 signed (two's complement of the field),
// UInt8..UInt64 and DateTime unsigned, Float/Double a number, Boolean,
// String/Text/UUID text; none when is_null or the field does not go with
// the type; complex for every other type.
[[nodiscard]] value typed(const metric& m, data_type t);

struct payload {
    std::optional<std::uint64_t> timestamp;  // ms since the Unix epoch
    std::vector<metric> metrics;
    std::optional<std::uint64_t> seq;
    std::optional<std::string> uuid;
};

enum class decode_error : std::uint8_t {
    none,
    malformed,     // protobuf refused the bytes
    too_large,     // more bytes than max_bytes
    too_many,      // more metrics than max_metrics
};

struct decode_limits {
    std::size_t max_bytes = 16u << 20;       // the payload's size
    std::size_t max_metrics = 100'000;       // metrics in one payload
};

struct decoded {
    decode_error error = decode_error::none;
    payload p;
};
[[nodiscard]] decoded decode(std::string_view bytes, const decode_limits& limits = {}) noexcept;

// The wire form of `p`. Each metric's value is written into the field its
// data type calls for (a signed integer as two's complement); the caller
// checked that the value fits the type (fits()).
[[nodiscard]] std::string encode(const payload& p);

// Whether `v` can be written as a metric of type `t` (a range check for
// integers, a number for Float/Double, a bool for Boolean, text for
// String/Text/UUID); `v` converted to what encode() writes for `t`.
[[nodiscard]] std::optional<value> fits(const value& v, data_type t);

}  // namespace strata::bridges::sparkplug
