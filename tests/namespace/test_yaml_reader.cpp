// The strict YAML reader of config and model files: messages with
// file:line: key.path, and hostile values that must fail as yaml::error
// (never as another exception, never by wrapping around).
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

#include "namespace/yaml_reader.hpp"

using namespace strata::ns;
using yaml::value_ref;

namespace {

const yaml::reader r("f.yaml");

// The value of `v: TEXT` (TEXT is YAML, quoted or not as written).
value_ref value_of(const std::string& text) {
    const YAML::Node root = YAML::Load("v: " + text);
    const YAML::Node v = root["v"];
    return value_ref{v, v.Mark(), "v"};
}

// The message `read` fails with, or "(no error)".
template <typename Read>
std::string error_of(Read&& read) {
    try {
        (void)read();
    } catch (const yaml::error& e) {
        return e.what();
    }
    return "(no error)";
}

// read(v) fails for each row's text as v's value with the row's message.
template <typename Read>
void check_errors(Read&& read, std::initializer_list<std::pair<const char*, const char*>> rows) {
    for (const auto& [text, message] : rows) {
        INFO(text);
        CHECK(error_of([&] { return read(value_of(text)); }) == std::string("f.yaml:1: v: ") + message);
    }
}

// Every text of `bad` as v's value fails read(v) with a message that starts
// with `prefix`.
template <typename Read>
void check_refused(std::initializer_list<const char*> bad, Read&& read, const std::string& prefix) {
    for (const char* text : bad) {
        INFO(text);
        CHECK_THAT(error_of([&] { return read(value_of(text)); }), Catch::Matchers::StartsWith(prefix));
    }
}

}  // namespace

TEST_CASE("yaml reader: load", "[yaml]") {
    CHECK_FALSE(r.load("").has_value());
    CHECK_FALSE(r.load("# only a comment\n").has_value());
    CHECK(r.load("a: 1\n")->node["a"].Scalar() == "1");
    CHECK(error_of([] { return r.load("- a\n"); }) == "f.yaml:1: the document root must be a map, got a list");
    CHECK(error_of([] { return r.load("a: 1\n---\nb: 2\n"); }) ==
          "f.yaml:3: expected a single YAML document, found a second one");
    CHECK(error_of([] { return r.load("a: [1\n"); }).starts_with("f.yaml:2: "));
    // Nesting deep enough to exhaust a recursive parser is a syntax error.
    const std::string deep = "a: " + std::string(100'000, '[') + std::string(100'000, ']');
    CHECK(error_of([&] { return r.load(deep); }).starts_with("f.yaml"));
}

TEST_CASE("yaml reader: maps, entries and lists", "[yaml]") {
    const auto read = [](const std::string& text) {
        return [text] {
            int seen = 0;
            r.read_map(*r.load(text), {{"alpha", [&](const value_ref&) { ++seen; }, true},
                                       {"beta", [&](const value_ref&) { ++seen; }}});
            return seen;
        };
    };
    CHECK(read("alpha: 1\nbeta: 2\n")() == 2);
    CHECK(error_of(read("alpha: 1\nalpah: 2\n")) == "f.yaml:2: unknown key 'alpah' (did you mean 'alpha'?)");
    CHECK(error_of(read("alpha: 1\nzzz: 2\n")) == "f.yaml:2: unknown key 'zzz' (expected alpha, beta)");
    CHECK(error_of(read("alpha: 1\nalpha: 2\n")) == "f.yaml:2: duplicate key 'alpha'");
    CHECK(error_of(read("beta: 1\n")) == "f.yaml:1: missing required key 'alpha'");
    CHECK(error_of(read("[a]: 1\n")) == "f.yaml:1: keys must be strings, got a list");

    const auto entries = [](const std::string& text) {
        return [text] {
            std::string keys;
            r.read_entries(value_of(text), [&](const std::string& k, const YAML::Mark&, const value_ref& v) {
                keys += k + "=" + v.path + ";";
            });
            return keys;
        };
    };
    CHECK(entries("{a: 1, b: 2}")() == "a=v.a;b=v.b;");
    CHECK(entries("")().empty());
    CHECK(error_of(entries("{a: 1, a: 2}")) == "f.yaml:1: v: duplicate key 'a' (also on line 1)");
    CHECK(error_of(entries("[a]")) == "f.yaml:1: v: expected a map, got a list");

    std::string paths;
    r.read_list(value_of("[x, y]"), [&](const value_ref& e, std::size_t i) { paths += e.path + std::to_string(i); });
    CHECK(paths == "v[0]0v[1]1");
    CHECK(error_of([] {
              r.read_list(value_of("{a: 1}"), [](const value_ref&, std::size_t) {});
              return 0;
          }) == "f.yaml:1: v: expected a list, got a map");
}

TEST_CASE("yaml reader: strings, choices and booleans", "[yaml]") {
    static constexpr std::array<std::string_view, 3> colours{"red", "green", "blue"};
    CHECK(r.read_string(value_of("'x'")) == "x");
    CHECK(r.read_choice(value_of("green"), colours) == "green");
    CHECK(r.read_bool(value_of("True")));
    CHECK_FALSE(r.read_bool(value_of("false")));
    check_errors([](const value_ref& v) { return r.read_choice(v, colours); },
                 {{"Green", "must be red, green or blue (got 'Green')"}});
    check_errors([](const value_ref& v) { return r.read_nonempty_string(v); }, {{"''", "must not be empty"}});
    check_errors([](const value_ref& v) { return r.read_string(v); }, {{"[a]", "expected a string, got a list"}});
    check_errors([](const value_ref& v) { return r.read_bool(v); },
                 {{"yes", "expected true or false, got 'yes'"}, {"'true'", "expected true or false, got 'true'"}});
}

TEST_CASE("yaml reader: integers are bounded by the range and by the type", "[yaml]") {
    CHECK(r.read_uint<std::uint16_t>(value_of("65535"), 0) == 65535);
    CHECK(r.read_uint<std::uint64_t>(value_of("18446744073709551615"), 0) == 18446744073709551615ull);
    check_errors([](const value_ref& v) { return r.read_uint<std::uint64_t>(v, 1); },
                 {{"18446744073709551616", "must be at least 1 (got 18446744073709551616)"},
                  {"99999999999999999999999999", "must be at least 1 (got 99999999999999999999999999)"},
                  {"-1", "must be at least 1 (got -1)"}});
    // A maximum above what the type holds is the type's maximum.
    check_errors([](const value_ref& v) { return r.read_uint<std::uint8_t>(v, 0, 1000); },
                 {{"256", "must be between 0 and 255 (got 256)"}, {"-1", "must be between 0 and 255 (got -1)"}});
    check_refused({"'4'", "1.0", "0x10", "1e3", "+1", "1_000", "[1]", "{a: 1}", "", "~", "\"\\0\""},
                  [](const value_ref& v) { return r.read_uint<std::uint32_t>(v, 0); },
                  "f.yaml:1: v: expected an integer, got ");
}

TEST_CASE("yaml reader: sizes never wrap around", "[yaml]") {
    CHECK(r.read_size<std::uint64_t>(value_of("16GiB"), 0) == 16ull << 30);
    CHECK(r.read_size<std::uint32_t>(value_of("'4 KiB'"), 0) == 4096);
    check_errors([](const value_ref& v) { return r.read_size<std::uint32_t>(v, 1); },
                 {{"4GiB", "must be at least 1 (got 4GiB = 4294967296 bytes)"}});
    check_errors([](const value_ref& v) { return r.read_size<std::uint64_t>(v, 0); },
                 {{"17179869184GiB", "must be between 0 and 18446744073709551615 (got 17179869184GiB)"},
                  {"99999999999999999999999999B",
                   "must be between 0 and 18446744073709551615 (got 99999999999999999999999999B)"},
                  {"-1KiB", "must be between 0 and 18446744073709551615 (got -1KiB)"}});
    check_refused({"KiB", "1 TiB", "1.5MiB", "'1024'", "[1]", "{a: 1}", "", "'-'"},
                  [](const value_ref& v) { return r.read_size<std::uint64_t>(v, 0); }, "f.yaml:1: v: expected a size: ");
}

TEST_CASE("yaml reader: numbers and durations", "[yaml]") {
    CHECK(r.read_number(value_of("0.5"), 0, 1) == 0.5);
    check_refused({"1e999", "-1e999", "nan", "inf", "2", "x", "''", "[1]"},
                  [](const value_ref& v) { return r.read_number(v, 0, 1); }, "f.yaml:1: v: expected ");
    CHECK(r.read_duration(value_of("10s")) == std::chrono::seconds(10));
    CHECK(r.read_duration(value_of("5min")) == std::chrono::minutes(5));
    check_errors([](const value_ref& v) { return r.read_duration(v); },
                 {{"0s", "must be greater than 0"},
                  {"2000000000h", "too long (got 2000000000h)"},
                  {"99999999999999999999999ms", "too long (got 99999999999999999999999ms)"}});
    check_refused({"10 s", "10", "s", "-1s", "[10s]"}, [](const value_ref& v) { return r.read_duration(v); },
                  "f.yaml:1: v: expected a duration: ");
}

TEST_CASE("yaml reader: guard turns a library's exception into the reader's", "[yaml]") {
    CHECK(error_of([] {
              r.guard([] { throw std::length_error("too big"); });
              return 0;
          }) == "f.yaml: too big");
    CHECK(error_of([] {
              r.guard([] { r.fail(YAML::Mark::null_mark(), "a.b", "kept as it is"); });
              return 0;
          }) == "f.yaml: a.b: kept as it is");
}

TEST_CASE("yaml reader: aliases cannot make a small document walk without bound", "[yaml]") {
    // Nine levels of ten aliases each: 10^9 values named in under 500 bytes.
    std::string doc = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i <= 9; ++i) {
        const std::string prev = "*l" + std::to_string(i - 1);
        doc += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
        for (int j = 0; j < 10; ++j) doc += (j ? ", " : "") + prev;
        doc += "]\n";
    }
    const yaml::reader fresh("laughs.yaml");
    const auto root = fresh.load(doc);
    REQUIRE(root);
    std::size_t leaves = 0;
    std::function<void(const value_ref&)> walk = [&](const value_ref& v) {
        if (v.node.IsSequence()) {
            fresh.read_list(v, [&](const value_ref& e, std::size_t) { walk(e); });
        } else {
            ++leaves;
        }
    };
    const std::string error = error_of([&] {
        fresh.read_entries(*root, [&](const std::string&, const YAML::Mark&, const value_ref& v) { walk(v); });
        return 0;
    });
    CHECK_THAT(error, Catch::Matchers::Contains("more than 1000000 values in one document"));
    CHECK(error.starts_with("laughs.yaml:"));
    CHECK(leaves < yaml::reader::max_values);
}

TEST_CASE("yaml reader: files are read up to a bound", "[yaml]") {
    std::string error;
    // A path that names an endless file by mistake.
    CHECK(yaml::read_file("/dev/zero", error, 1024 * 1024).empty());
    CHECK(error == "larger than 1 MiB");
    CHECK(yaml::read_file("/nonexistent/strata.yaml", error).empty());
    CHECK(error == "No such file or directory");
    CHECK(yaml::read_file("/", error).empty());
    CHECK(error == "Is a directory");
    CHECK(yaml::read_file(STRATA_SOURCE_DIR "/deploy/namespace/acme.yaml", error).size() > 0);
    CHECK(error.empty());
}
