// Strict reading of hand-edited YAML: the broker's config file and the
// namespace model files.
//
// Both are edited by hand, often under time pressure, and a typo that
// silently becomes a default (a misspelt key, a quoted number, a second
// section of the same name) is worse than a file that does not load. So
// every map is checked for unknown and duplicate keys (yaml-cpp keeps both
// copies of a duplicated key and lookups would see only the first), every
// scalar for its type and every number for its range, and the first problem
// is thrown as one yaml::error, "file:line: key.path: message".
//
// Lines come from YAML::Mark (0-based, hence +1). An empty value (`threads:`)
// carries the mark of the next token, which can be on a later line, so a
// value_ref of an empty value carries its key's mark instead.
//
// A document's size is bounded by what it names, not by its bytes: YAML
// aliases nested a few deep name billions of values ("billion laughs").
// A reader walks at most max_values map entries and list elements (an
// alias counted every time it is read) and fails beyond that.
//
// Thread-safety: one reader per document, on one thread (it counts what it
// walks).
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace strata::ns::yaml {

// A document that does not read: "file:line: key.path: message". Callers
// turn it into their own error type where their interface promises one.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A value in the document with what is needed to blame it.
struct value_ref {
    YAML::Node node;
    YAML::Mark mark;   // the value's position, or its key's when the value is empty
    std::string path;  // "limits.receive_maximum", "levels[1].names[0]"
};

// "limits" + "receive_maximum" -> "limits.receive_maximum"; "" + "a" -> "a".
[[nodiscard]] std::string join_path(const std::string& parent, std::string_view key);

// For messages: "an empty value", "a list", "a map" or the scalar in quotes.
[[nodiscard]] std::string describe(const YAML::Node& node);

// A plain scalar the application resolves (or one tagged !!int or !!bool):
// `4` is, `"4"` is not. A quoted number or boolean is a string.
[[nodiscard]] bool is_plain(const YAML::Node& node);

// "a, b or c".
[[nodiscard]] std::string one_of(std::span<const std::string_view> names);

// The text of a hand-edited file (a config, a model, a schema), at most
// `max_bytes`: a path that names /dev/zero or a huge log by mistake must
// not fill memory. `error` is empty on success, else why it was not read.
inline constexpr std::size_t max_file_bytes = 16 * 1024 * 1024;
[[nodiscard]] std::string read_file(const std::string& path, std::string& error,
                                    std::size_t max_bytes = max_file_bytes);

class reader {
public:
    static constexpr std::size_t max_values = 1'000'000;

    explicit reader(std::string file) : file_(std::move(file)) {}

    [[nodiscard]] const std::string& file() const noexcept { return file_; }

    // "file:line: path: ", or without the line when the mark is null, without
    // the path when it is empty.
    [[nodiscard]] std::string where(const YAML::Mark& mark, std::string_view path) const;

    [[noreturn]] void fail(const YAML::Mark& mark, std::string_view path, std::string_view msg) const;
    [[noreturn]] void fail(const value_ref& v, std::string_view msg) const { fail(v.mark, v.path, msg); }

    // `text` as a single YAML document: its root map, or nullopt when the
    // document is empty. Syntax errors, a second document and a root that is
    // not a map fail.
    [[nodiscard]] std::optional<value_ref> load(const std::string& text) const;

    // Runs `read`; anything else a library throws under it (yaml-cpp, JSON,
    // regex, memory) fails as this reader's error, so that a caller sees one
    // error type whatever the input.
    void guard(const std::function<void()>& read) const;

    struct key {
        std::string_view name;
        std::function<void(const value_ref&)> read;
        bool required = false;
    };

    // Walks a map, calling each key's reader; unknown keys (with "did you
    // mean"), duplicate keys and missing required keys fail. An empty value
    // means "all defaults" (a section written as `limits:` with nothing
    // under it).
    void read_map(const value_ref& v, std::initializer_list<key> keys) const {
        read_map(v, std::span<const key>(keys.begin(), keys.size()));
    }
    void read_map(const value_ref& v, std::span<const key> keys) const;

    // A map whose keys are data (class names, filters, role names): each
    // entry with its key and the key's mark. Duplicate keys fail; an empty
    // value has no entries.
    void read_entries(const value_ref& v,
                      const std::function<void(const std::string&, const YAML::Mark&, const value_ref&)>& each) const;

    // The elements of a list with their index; an empty value is an empty list.
    void read_list(const value_ref& v, const std::function<void(const value_ref&, std::size_t)>& each) const;

    [[nodiscard]] std::string read_string(const value_ref& v) const;
    [[nodiscard]] std::string read_nonempty_string(const value_ref& v) const;
    // One of `choices`, spelt exactly.
    [[nodiscard]] std::string read_choice(const value_ref& v, std::span<const std::string_view> choices) const;
    // YAML 1.2 core schema booleans only: `yes` and `on` are YAML 1.1, and a
    // quoted "true" is a string.
    [[nodiscard]] bool read_bool(const value_ref& v) const;

    // An unsigned integer in [min, max], never above what T holds. A quoted
    // number is a string, not an integer: rejected rather than guessed.
    template <typename T>
    [[nodiscard]] T read_uint(const value_ref& v, std::uint64_t min,
                              std::uint64_t max = std::numeric_limits<T>::max()) const {
        static_assert(std::is_unsigned_v<T>);
        return static_cast<T>(read_u64(v, min, std::min<std::uint64_t>(max, std::numeric_limits<T>::max())));
    }

    // A byte count in [min, max]: an integer, or a number with a unit (B,
    // KiB, MiB, GiB, KB, MB, GB; quoted or not).
    template <typename T>
    [[nodiscard]] T read_size(const value_ref& v, std::uint64_t min,
                              std::uint64_t max = std::numeric_limits<T>::max()) const {
        static_assert(std::is_unsigned_v<T>);
        return static_cast<T>(read_bytes(v, min, std::min<std::uint64_t>(max, std::numeric_limits<T>::max())));
    }

    // A decimal number in [min, max].
    [[nodiscard]] double read_number(const value_ref& v, double min, double max) const;

    // "10s", "500ms", "5m" (or "5min"), "1h": a positive integer with a unit,
    // at most 2^40 ms (about 35 years).
    [[nodiscard]] std::chrono::milliseconds read_duration(const value_ref& v) const;

private:
    std::uint64_t read_u64(const value_ref& v, std::uint64_t min, std::uint64_t max) const;
    std::uint64_t read_bytes(const value_ref& v, std::uint64_t min, std::uint64_t max) const;
    [[noreturn]] void fail_range(const value_ref& v, std::uint64_t min, std::uint64_t max, const std::string& got) const;

    // Counts one more value walked; fails beyond max_values.
    void count(const value_ref& v) const;

    std::string file_;
    mutable std::size_t values_ = 0;
};

}  // namespace strata::ns::yaml
