#include "namespace/yaml_reader.hpp"

#include "namespace/suggest.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

namespace strata::ns::yaml {
namespace {

enum class digits { ok, invalid, out_of_range };

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

digits parse_digits(std::string_view text, std::uint64_t& out) {
    if (text.starts_with('-')) {
        // A negative number is an integer, just not one in range.
        return all_digits(text.substr(1)) ? digits::out_of_range : digits::invalid;
    }
    if (!all_digits(text)) return digits::invalid;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec == std::errc::result_out_of_range) return digits::out_of_range;
    if (ec != std::errc{} || ptr != text.data() + text.size()) return digits::invalid;
    return digits::ok;
}

std::string size_syntax() {
    return "expected a size: an integer, optionally followed by B, KiB, MiB, GiB, KB, MB or GB";
}

std::string unknown_key_message(const std::string& name, std::span<const reader::key> keys) {
    std::string out = "unknown key '" + name + "'";
    std::vector<std::string_view> names;
    for (const reader::key& k : keys) names.push_back(k.name);
    if (const std::string hint = did_you_mean(name, names); !hint.empty()) return out + hint;
    out += " (expected ";
    for (auto it = keys.begin(); it != keys.end(); ++it) {
        if (it != keys.begin()) out += ", ";
        out += it->name;
    }
    return out + ")";
}

}  // namespace

std::string join_path(const std::string& parent, std::string_view key) {
    if (parent.empty()) return std::string(key);
    std::string out = parent;
    out += '.';
    out += key;
    return out;
}

std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
        return "an empty value";
    case YAML::NodeType::Sequence:
        return "a list";
    case YAML::NodeType::Map:
        return "a map";
    case YAML::NodeType::Scalar:
        break;
    }
    return "'" + node.Scalar() + "'";
}

bool is_plain(const YAML::Node& node) {
    // "?" is the tag of a plain scalar, left to the application to resolve.
    const std::string& tag = node.Tag();
    return tag == "?" || tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:bool";
}

std::string one_of(std::span<const std::string_view> names) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i != 0) out += (i + 1 == names.size()) ? " or " : ", ";
        out += names[i];
    }
    return out;
}

std::string reader::where(const YAML::Mark& mark, std::string_view path) const {
    std::string out = file_;
    if (!mark.is_null() && mark.line >= 0) {
        out += ':';
        out += std::to_string(mark.line + 1);
    }
    out += ": ";
    if (!path.empty()) {
        out += path;
        out += ": ";
    }
    return out;
}

void reader::fail(const YAML::Mark& mark, std::string_view path, std::string_view msg) const {
    throw error(where(mark, path) + std::string(msg));
}

std::optional<value_ref> reader::load(const std::string& text) const {
    std::vector<YAML::Node> docs;
    try {
        docs = YAML::LoadAll(text);
    } catch (const YAML::Exception& e) {
        fail(e.mark, "", e.msg);
    }
    if (docs.size() > 1) fail(docs[1].Mark(), "", "expected a single YAML document, found a second one");
    if (docs.empty() || docs[0].IsNull()) return std::nullopt;
    const YAML::Node& root = docs[0];
    if (!root.IsMap()) fail(root.Mark(), "", "the document root must be a map, got " + describe(root));
    return value_ref{root, root.Mark(), ""};
}

void reader::guard(const std::function<void()>& read) const {
    try {
        read();
    } catch (const error&) {
        throw;
    } catch (const YAML::Exception& e) {
        fail(e.mark, "", e.msg);
    } catch (const std::exception& e) {
        fail(YAML::Mark::null_mark(), "", e.what());
    }
}

std::string read_file(const std::string& path, std::string& error, std::size_t max_bytes) {
    error.clear();
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        error = std::strerror(errno);
        return {};
    }
    std::string text;
    char buf[8192];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        if (text.size() + n > max_bytes) {
            std::fclose(f);
            error = "larger than " + std::to_string(max_bytes / (1024 * 1024)) + " MiB";
            return {};
        }
        text.append(buf, n);
    }
    const bool failed = std::ferror(f) != 0;
    const int err = errno;  // e.g. EISDIR: fopen() succeeds on a directory, reading fails
    std::fclose(f);
    if (failed) {
        error = std::strerror(err);
        return {};
    }
    return text;
}

void reader::count(const value_ref& v) const {
    if (++values_ > max_values)
        fail(v, "more than " + std::to_string(max_values) +
                    " values in one document (YAML aliases that repeat a large part of it?)");
}

void reader::read_map(const value_ref& v, std::span<const key> keys) const {
    if (v.node.IsNull()) {
        for (const key& k : keys)
            if (k.required) fail(v, "missing required key '" + std::string(k.name) + "'");
        return;
    }
    if (!v.node.IsMap()) fail(v, "expected a map, got " + describe(v.node));

    std::vector<std::string> seen;
    for (auto it = v.node.begin(); it != v.node.end(); ++it) {
        const YAML::Node k = it->first;  // copies: it-> yields a temporary pair
        if (!k.IsScalar()) fail(k.Mark(), v.path, "keys must be strings, got " + describe(k));
        const std::string& name = k.Scalar();
        if (std::find(seen.begin(), seen.end(), name) != seen.end())
            fail(k.Mark(), v.path, "duplicate key '" + name + "'");
        seen.push_back(name);

        const auto found = std::find_if(keys.begin(), keys.end(), [&](const key& c) { return c.name == name; });
        if (found == keys.end()) fail(k.Mark(), v.path, unknown_key_message(name, keys));

        const YAML::Node value = it->second;
        count(v);
        found->read(value_ref{value, value.IsNull() ? k.Mark() : value.Mark(), join_path(v.path, name)});
    }
    for (const key& k : keys)
        if (k.required && std::find(seen.begin(), seen.end(), k.name) == seen.end())
            fail(v, "missing required key '" + std::string(k.name) + "'");
}

void reader::read_entries(
    const value_ref& v, const std::function<void(const std::string&, const YAML::Mark&, const value_ref&)>& each) const {
    if (v.node.IsNull()) return;
    if (!v.node.IsMap()) fail(v, "expected a map, got " + describe(v.node));
    std::map<std::string, int> seen;  // name -> its line
    for (auto it = v.node.begin(); it != v.node.end(); ++it) {
        const YAML::Node k = it->first;
        if (!k.IsScalar()) fail(k.Mark(), v.path, "keys must be strings, got " + describe(k));
        const std::string& name = k.Scalar();
        const auto [pos, fresh] = seen.emplace(name, k.Mark().line + 1);
        if (!fresh)
            fail(k.Mark(), v.path, "duplicate key '" + name + "' (also on line " + std::to_string(pos->second) + ")");
        const YAML::Node value = it->second;
        count(v);
        each(name, k.Mark(), value_ref{value, value.IsNull() ? k.Mark() : value.Mark(), join_path(v.path, name)});
    }
}

void reader::read_list(const value_ref& v, const std::function<void(const value_ref&, std::size_t)>& each) const {
    if (v.node.IsNull()) return;
    if (!v.node.IsSequence()) fail(v, "expected a list, got " + describe(v.node));
    // An empty element (a bare "-") carries the mark of the next token;
    // point at the previous element (or the list) instead, never past it.
    YAML::Mark previous = v.node.Mark().is_null() ? v.mark : v.node.Mark();
    std::size_t i = 0;
    for (const YAML::Node& element : v.node) {
        const YAML::Mark mark = element.IsNull() || element.Mark().is_null() ? previous : element.Mark();
        count(v);
        each(value_ref{element, mark, v.path + "[" + std::to_string(i) + "]"}, i);
        previous = mark;
        ++i;
    }
}

std::string reader::read_string(const value_ref& v) const {
    if (!v.node.IsScalar()) fail(v, "expected a string, got " + describe(v.node));
    return v.node.Scalar();
}

std::string reader::read_nonempty_string(const value_ref& v) const {
    std::string s = read_string(v);
    if (s.empty()) fail(v, "must not be empty");
    return s;
}

std::string reader::read_choice(const value_ref& v, std::span<const std::string_view> choices) const {
    std::string s = read_string(v);
    if (std::find(choices.begin(), choices.end(), s) == choices.end())
        fail(v, "must be " + one_of(choices) + " (got '" + s + "')");
    return s;
}

bool reader::read_bool(const value_ref& v) const {
    if (v.node.IsScalar() && is_plain(v.node)) {
        const std::string& s = v.node.Scalar();
        if (s == "true" || s == "True" || s == "TRUE") return true;
        if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    fail(v, "expected true or false, got " + describe(v.node));
}

std::uint64_t reader::read_u64(const value_ref& v, std::uint64_t min, std::uint64_t max) const {
    if (!v.node.IsScalar() || !is_plain(v.node)) fail(v, "expected an integer, got " + describe(v.node));
    const std::string& text = v.node.Scalar();
    std::uint64_t value = 0;
    switch (parse_digits(text, value)) {
    case digits::ok:
        break;
    case digits::out_of_range:
        fail_range(v, min, max, text);
    case digits::invalid:
        fail(v, "expected an integer, got " + describe(v.node));
    }
    if (value < min || value > max) fail_range(v, min, max, text);
    return value;
}

std::uint64_t reader::read_bytes(const value_ref& v, std::uint64_t min, std::uint64_t max) const {
    if (!v.node.IsScalar()) fail(v, size_syntax() + ", got " + describe(v.node));
    const std::string& text = v.node.Scalar();

    std::string_view rest(text);
    const bool negative = rest.starts_with('-');
    if (negative) rest.remove_prefix(1);
    std::size_t end = 0;
    while (end < rest.size() && rest[end] >= '0' && rest[end] <= '9') ++end;
    const std::string_view number = rest.substr(0, end);
    std::string_view unit = rest.substr(end);
    while (!unit.empty() && (unit.front() == ' ' || unit.front() == '\t')) unit.remove_prefix(1);

    // A bare number must be a plain scalar ("1024" in quotes is a string, as
    // for integers); with a unit it is a string anyway.
    if (number.empty() || (unit.empty() && !is_plain(v.node))) fail(v, size_syntax() + ", got " + describe(v.node));
    std::uint64_t multiplier = 1;
    if (!unit.empty()) {
        static constexpr std::pair<std::string_view, std::uint64_t> units[] = {
            {"B", 1},
            {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
            {"KB", 1'000}, {"kB", 1'000}, {"MB", 1'000'000}, {"GB", 1'000'000'000},
        };
        const auto* u =
            std::find_if(std::begin(units), std::end(units), [&](const auto& p) { return p.first == unit; });
        if (u == std::end(units)) fail(v, size_syntax() + ", got " + describe(v.node));
        multiplier = u->second;
    }
    if (negative) fail_range(v, min, max, text);

    std::uint64_t value = 0;
    if (parse_digits(number, value) != digits::ok) fail_range(v, min, max, text);
    if (value > std::numeric_limits<std::uint64_t>::max() / multiplier) fail_range(v, min, max, text);
    value *= multiplier;
    if (value < min || value > max)
        fail_range(v, min, max, multiplier == 1 ? text : text + " = " + std::to_string(value) + " bytes");
    return value;
}

void reader::fail_range(const value_ref& v, std::uint64_t min, std::uint64_t max, const std::string& got) const {
    // A bound that is only the type's width is not worth naming.
    if (max == std::numeric_limits<std::uint64_t>::max() || max == std::numeric_limits<std::uint32_t>::max()) {
        if (min > 0) fail(v, "must be at least " + std::to_string(min) + " (got " + got + ")");
        fail(v, "must be between 0 and " + std::to_string(max) + " (got " + got + ")");
    }
    fail(v, "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (got " + got + ")");
}

double reader::read_number(const value_ref& v, double min, double max) const {
    const std::string text = read_string(v);
    char* end = nullptr;
    const double d = std::strtod(text.c_str(), &end);
    // NaN fails the range test too.
    if (text.empty() || end != text.c_str() + text.size() || !(d >= min && d <= max))
        fail(v, "expected a number between " + std::to_string(min) + " and " + std::to_string(max) + " (got '" +
                    text + "')");
    return d;
}

std::chrono::milliseconds reader::read_duration(const value_ref& v) const {
    const std::string syntax = "expected a duration: a positive integer with a unit ms, s, m or h (e.g. 10s)";
    if (!v.node.IsScalar()) fail(v, syntax + ", got " + describe(v.node));
    const std::string& text = v.node.Scalar();
    std::size_t end = 0;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    if (end == 0) fail(v, syntax + ", got " + describe(v.node));
    const std::string_view unit = std::string_view(text).substr(end);
    std::uint64_t ms = 0;
    if (unit == "ms") ms = 1;
    else if (unit == "s") ms = 1000;
    else if (unit == "m" || unit == "min") ms = 60'000;
    else if (unit == "h") ms = 3'600'000;
    else fail(v, syntax + ", got " + describe(v.node));

    constexpr std::uint64_t longest_ms = std::uint64_t{1} << 40;
    std::uint64_t value = 0;
    if (parse_digits(std::string_view(text).substr(0, end), value) != digits::ok) fail(v, "too long (got " + text + ")");
    if (value == 0) fail(v, "must be greater than 0");
    if (value > longest_ms / ms) fail(v, "too long (got " + text + ")");
    return std::chrono::milliseconds(static_cast<std::int64_t>(value * ms));
}

}  // namespace strata::ns::yaml
