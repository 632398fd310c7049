// The fast path for payload validation (internal to model_schema.cpp).
//
// Parsing a payload into an nlohmann DOM and walking it with valijson costs
// a couple of microseconds for a 100-byte telemetry sample, mostly in
// allocations; that alone would exceed the enforcement budget. Most UNS
// schemas use a small subset of JSON Schema (types, properties, required,
// additionalProperties, enum, ranges, lengths, pattern, format, items,
// local $ref), and that subset can be checked in one pass over the payload
// bytes, without building anything. So a schema made only of those keywords
// also gets a fast_schema, and:
//   - fast "valid" is final;
//   - fast "invalid" or "unsure" goes to the DOM + valijson path, which
//     decides and explains. The fast path therefore only has to be right
//     when it says valid (tests compare it with valijson, including on the
//     JSON-Schema-Test-Suite), and can give up whenever a case is awkward
//     (duplicate keys, numbers that do not fit a double, ...).
// The JSON syntax accepted is nlohmann's: RFC 8259, strict UTF-8 in strings,
// nothing but whitespace after the value; a leading BOM and an object with
// the same key twice are never "valid" here (the DOM path refuses them).
//
// Thread-safety: immutable after compile(); check() is const and keeps its
// scratch buffer in a thread_local.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "namespace/model_pattern.hpp"

namespace strata::ns::detail {

enum class fast_answer : std::uint8_t { valid, invalid, unsure };

class fast_schema {
public:
    // nullptr when the schema uses keywords outside the fast subset.
    // `remote`: documents fetched for $ref, by URI. Keyword names are those
    // of the compiled document (format/pattern renamed).
    [[nodiscard]] static std::unique_ptr<fast_schema> compile(const nlohmann::json& document,
                                                              const std::map<std::string, nlohmann::json>& remote);

    [[nodiscard]] fast_answer check(std::string_view payload, int max_depth) const noexcept;

    // Type bits.
    static constexpr std::uint8_t t_null = 1, t_bool = 2, t_int = 4, t_float = 8, t_string = 16, t_array = 32,
                                  t_object = 64, t_all = 127;

    struct node {
        bool never = false;  // the `false` schema
        std::uint8_t types = t_all;
        // enum / const over strings, booleans and null
        bool has_enum = false;
        std::vector<std::string> enum_strings;
        std::uint8_t enum_literals = 0;  // t_null / t_bool bits allowed; bool values below
        bool enum_true = false, enum_false = false;
        // numbers
        std::optional<double> minimum, maximum, exclusive_minimum, exclusive_maximum;
        // strings
        std::optional<std::size_t> min_length, max_length;
        std::shared_ptr<const compiled_pattern> pattern;
        std::string format;
        bool needs_text = false;  // decode string values (length, pattern, format, enum)
        // objects
        std::vector<std::pair<std::string, int>> properties;  // name -> node (-1: anything)
        std::vector<std::string> required;                     // <= 64
        int additional = -1;                                   // node, -1 anything, -2 forbidden
        // arrays
        int items = -1;                 // single schema for every item (-1: anything)
        std::vector<int> tuple;         // positional schemas ("items": [...])
        bool has_tuple = false;
        int additional_items = -1;      // after the tuple: node, -1 anything, -2 forbidden
        std::optional<std::size_t> min_items, max_items;
    };

private:
    std::vector<node> nodes_;
    int root_ = -1;

    friend class fast_compiler;
    friend class fast_checker;
};

}  // namespace strata::ns::detail
