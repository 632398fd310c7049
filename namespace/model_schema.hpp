// JSON Schema (draft 7) for payloads: compile once, validate many times.
//
// Validation is valijson over nlohmann/json, with three things done here
// rather than by valijson, for speed and safety on the data path:
//   - "format": valijson 1.0 compiles a std::regex on every validation of a
//     date-time (hundreds of microseconds) and knows only date, time and
//     date-time; we check date, time, date-time, ipv4, ipv6, hostname,
//     email, json-pointer, relative-json-pointer, regex, uri, uri-reference,
//     iri, iri-reference, uri-template, idn-email and idn-hostname (the idn
//     ones by syntax only) with hand-written, allocation-light parsers.
//     Unknown formats are annotations and always pass.
//   - "pattern": compiled once per keyword with compiled_pattern (a DFA,
//     linear time, no recursion) instead of std::regex per validator.
//   - the payload's nesting depth is bounded before parsing (max_depth), so
//     that a hostile "[[[[..." cannot exhaust the stack in the recursive
//     validator;
//   - a one-pass validator over the payload bytes for schemas made of the
//     common keywords (model_schema_fast.hpp): no DOM, no allocation; its
//     "valid" is final, anything else is re-checked by valijson.
// Keywords are renamed in a private copy of the schema ("x-strata-format",
// "x-strata-pattern") and served by custom valijson constraints.
//
// The schema document is also checked against the draft 7 meta-schema rules
// by hand at compile time (keyword value types, regex syntax, $schema), so
// that a broken schema is a load error with a JSON pointer, not a surprise
// on the first message. Unknown keywords are warnings (a misspelt
// "propertes" would otherwise silently validate nothing).
//
// $ref: local pointers ("#/definitions/x") work as valijson does; any other
// document is asked of the resolver (the model resolves file names relative
// to the schema file; no network access ever). valijson 1.0 does not
// re-base relative references on "$id", see the schema suite test's skips.
//
// Thread-safety: a json_schema is immutable after compile(); validate() and
// friends are const and may run on any number of threads at once (each
// thread keeps its own valijson::Validator, whose regex cache is not
// thread-safe).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace strata::ns {

// A schema that cannot be compiled. pointer() is a JSON pointer into the
// schema document (or the referenced document named in the message), empty
// when the problem is not tied to one place.
class schema_error : public std::runtime_error {
public:
    schema_error(const std::string& pointer, const std::string& message)
        : std::runtime_error(pointer.empty() ? message : pointer + ": " + message), pointer_(pointer),
          message_(message) {}
    [[nodiscard]] const std::string& pointer() const noexcept { return pointer_; }
    [[nodiscard]] const std::string& message() const noexcept { return message_; }

private:
    std::string pointer_;
    std::string message_;
};

// Returns the document for a $ref URI (the part before '#'), or nullopt when
// there is none. May throw schema_error to explain why not.
using schema_resolver = std::function<std::optional<nlohmann::json>(const std::string& uri)>;

class json_schema {
public:
    static constexpr int max_depth = 64;  // payload nesting ([ and {) accepted

    // Compiles a draft 7 schema (object or boolean). Throws schema_error.
    // Non-fatal findings (unknown keywords) are appended to `warnings` as
    // "pointer: message".
    [[nodiscard]] static std::shared_ptr<const json_schema> compile(const nlohmann::json& schema,
                                                                    const schema_resolver& resolve = {},
                                                                    std::vector<std::string>* warnings = nullptr);

    ~json_schema();
    json_schema(const json_schema&) = delete;
    json_schema& operator=(const json_schema&) = delete;

    // True when `instance` is valid. Never throws (an internal validator
    // error counts as invalid).
    [[nodiscard]] bool valid(const nlohmann::json& instance) const noexcept;

    // Empty when valid, otherwise one human-readable line:
    // "/temperature: expected number, got string". Slow path: call it
    // after valid() said no.
    [[nodiscard]] std::string explain(const nlohmann::json& instance) const;

    // Parses `payload` as JSON (depth-limited) and validates it. Returns true
    // when valid; otherwise false, and when `why` is not null it receives
    // the reason ("not JSON: ...", "/value: expected number, got string").
    [[nodiscard]] bool valid_payload(std::string_view payload, std::string* why) const;

    // The schema as compiled (after keyword renaming), for explain output.
    [[nodiscard]] const nlohmann::json& document() const noexcept;

    // The one-pass validator (model_schema_fast.hpp) covers this schema's
    // keywords. valid_payload() uses it when it can; these are for tests
    // and explain output. fast_check(): nullopt when there is no fast path
    // or it was unsure; its "false" is only a hint (valijson decides).
    [[nodiscard]] bool has_fast_path() const noexcept;
    [[nodiscard]] std::optional<bool> fast_check(std::string_view payload) const noexcept;

    struct impl;

private:
    explicit json_schema(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

// Format checks used by the validator, exposed for tests and reuse.
// Returns nullopt for formats we do not check (annotations).
[[nodiscard]] std::optional<bool> check_format(std::string_view format, std::string_view value);

// Maximum [ / { nesting of a JSON text, ignoring brackets inside strings;
// stops counting at `limit` + 1.
[[nodiscard]] int json_nesting_depth(std::string_view text, int limit) noexcept;

}  // namespace strata::ns
