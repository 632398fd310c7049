// JSON Schema validation (valijson + our format and pattern constraints),
// proven on the official JSON-Schema-Test-Suite, draft 7, including the
// optional tests. Every case runs through json_schema::compile() and
// json_schema::valid(), the path the model uses for payloads.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "namespace/model.hpp"
#include "namespace/model_schema.hpp"

using namespace strata::ns;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// True when some object of the JSON text names a key twice.
bool has_duplicate_key(const std::string& text) {
    std::vector<std::vector<std::string>> open;
    bool dup = false;
    [[maybe_unused]] const json whole = json::parse(text, [&](int, json::parse_event_t e, json& parsed) {
        if (e == json::parse_event_t::object_start) open.emplace_back();
        if (e == json::parse_event_t::object_end && !open.empty()) open.pop_back();
        if (e == json::parse_event_t::key && !open.empty()) {
            const auto k = parsed.get<std::string>();
            if (std::find(open.back().begin(), open.back().end(), k) != open.back().end()) dup = true;
            open.back().push_back(k);
        }
        return true;
    }, false);
    return dup;
}

// Cases we do not pass, and why. `test` "*" means every test of the group
// (the schema itself cannot be compiled). Each entry is checked to still
// fail, so the list cannot silently go stale.
struct skip {
    const char* file;
    const char* group;
    const char* test;
    const char* reason;
};

constexpr const char* rebase =
    "valijson 1.0 does not resolve a relative $ref against the base URI set by \"$id\" (it asks for "
    "'folderInteger.json', not 'http://localhost:1234/folder/folderInteger.json')";
constexpr const char* metaschema =
    "refers to the draft 7 meta-schema at http://json-schema.org/draft-07/schema: no network access, and the "
    "meta-schema is not in the test suite's remotes";

const skip skips[] = {
    {"refRemote.json", "base URI change", "*", rebase},
    {"refRemote.json", "base URI change - change folder", "*", rebase},
    {"refRemote.json", "base URI change - change folder in subschema", "*", rebase},
    {"refRemote.json", "root ref in remote ref", "*", rebase},
    {"ref.json", "Recursive references between schemas", "*", rebase},
    {"ref.json", "remote ref, containing refs itself", "*", metaschema},
    {"definitions.json", "valid definition", "*", metaschema},
    {"definitions.json", "invalid definition", "*", metaschema},
    {"optional/bignum.json", "integer", "a bignum is an integer",
     "nlohmann/json stores integers beyond 64 bits as double, which valijson's strict typing does not count as integer"},
    {"optional/bignum.json", "integer", "a negative bignum is an integer",
     "nlohmann/json stores integers beyond 64 bits as double, which valijson's strict typing does not count as integer"},
    {"optional/zeroTerminatedFloats.json", "some languages do not distinguish between different types of numeric value",
     "a float without fractional part is an integer",
     "valijson's strict typing keeps 1.0 a number, not an integer (a PLC publishing 5.0 for a count is refused)"},
    {"optional/content.json", "validation of string-encoded content based on media type", "an invalid JSON document",
     "contentMediaType/contentEncoding are annotations in draft 7; not asserted"},
    {"optional/content.json", "validation of binary string-encoding", "an invalid base64 string (% is not a valid character)",
     "contentMediaType/contentEncoding are annotations in draft 7; not asserted"},
    {"optional/content.json", "validation of binary-encoded media type documents", "a validly-encoded invalid JSON document",
     "contentMediaType/contentEncoding are annotations in draft 7; not asserted"},
    {"optional/content.json", "validation of binary-encoded media type documents",
     "an invalid base64 string that is valid JSON", "contentMediaType/contentEncoding are annotations in draft 7; not asserted"},
    {"optional/format/idn-hostname.json", "validation of internationalized host names",
     "illegal first char U+302E Hangul single dot tone mark",
     "idn-hostname is checked for syntax only (labels, lengths), not for the IDNA2008 code point rules"},
    {"optional/format/idn-hostname.json", "validation of internationalized host names",
     "contains illegal char U+302E Hangul single dot tone mark",
     "idn-hostname is checked for syntax only (labels, lengths), not for the IDNA2008 code point rules"},
};

const skip* find_skip(const std::string& file, const std::string& group, const std::string& test) {
    for (const skip& s : skips)
        if (file == s.file && group == s.group && (std::string(s.test) == "*" || test == s.test)) return &s;
    return nullptr;
}

std::string suite_root() { return STRATA_JSON_SCHEMA_TEST_SUITE; }

// The suite's remote references point at http://localhost:1234/; serve them
// from the suite's remotes directory (no network).
schema_resolver suite_resolver() {
    return [](const std::string& uri) -> std::optional<json> {
        const std::string prefix = "http://localhost:1234/";
        if (uri.rfind(prefix, 0) != 0) return std::nullopt;
        std::ifstream in(suite_root() + "/remotes/" + uri.substr(prefix.size()));
        if (!in) return std::nullopt;
        return json::parse(in);
    };
}

}  // namespace

TEST_CASE("JSON-Schema-Test-Suite, draft 7", "[model][schema][suite]") {
    const fs::path root = fs::path(suite_root()) / "tests" / "draft7";
    INFO("suite at " << root.string() << " (Debian package json-schema-test-suite)");
    REQUIRE(fs::is_directory(root));

    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(root))
        if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
    std::sort(files.begin(), files.end());

    std::map<std::string, int> passed, skipped;  // "required" / "optional"
    std::map<const skip*, int> skip_used;
    std::map<std::string, int> fast_decided;
    int fast_false_negatives = 0;  // fast said invalid, valijson said valid (allowed, not wanted)
    int explained = 0;
    for (const fs::path& path : files) {
        const std::string file = path.lexically_relative(root).generic_string();
        const std::string kind = file.starts_with("optional/") ? "optional" : "required";
        std::ifstream in(path);
        const json groups = json::parse(in);
        for (const json& g : groups) {
            const std::string group = g.at("description").get<std::string>();
            std::shared_ptr<const json_schema> schema;
            std::string compile_error;
            try {
                schema = json_schema::compile(g.at("schema"), suite_resolver());
            } catch (const schema_error& e) {
                compile_error = e.what();
            }
            for (const json& t : g.at("tests")) {
                const std::string test = t.at("description").get<std::string>();
                const bool expected = t.at("valid").get<bool>();
                INFO(file << " | " << group << " | " << test);
                const skip* s = find_skip(file, group, test);
                if (s != nullptr) {
                    // A skipped case must still fail; otherwise drop it from the list.
                    const bool fails = schema == nullptr || schema->valid(t.at("data")) != expected;
                    CHECK(fails);
                    ++skip_used[s];
                    ++skipped[kind];
                    continue;
                }
                INFO("compile error: " << compile_error);
                REQUIRE(schema != nullptr);
                const bool got = schema->valid(t.at("data"));
                CHECK(got == expected);
                // The payload path (fast path first, then valijson) agrees,
                // and the fast path is never wrong when it says "valid".
                const std::string text = t.at("data").dump();
                CHECK(schema->valid_payload(text, nullptr) == expected);
                if (const std::optional<bool> fast = schema->fast_check(text)) {
                    ++fast_decided[*fast ? "valid" : "invalid"];
                    if (*fast) CHECK(expected);
                    else if (expected) ++fast_false_negatives;
                }
                if (got == expected) ++passed[kind];
                if (!got) {
                    // Every refusal can be explained in one line.
                    CHECK_FALSE(schema->explain(t.at("data")).empty());
                    ++explained;
                }
            }
        }
    }
    for (const skip& s : skips) {
        INFO("unused skip entry: " << s.file << " | " << s.group << " | " << s.test);
        CHECK(skip_used[&s] > 0);
    }
    // The figures quoted in the closing note of issue 4.
    CHECK(passed["required"] == 408);
    CHECK(skipped["required"] == 15);
    CHECK(passed["optional"] == 134);
    CHECK(skipped["optional"] == 9);
    CHECK(fast_false_negatives == 0);
    std::cout << "JSON-Schema-Test-Suite draft7: required " << passed["required"] << " passed, " << skipped["required"]
              << " skipped; optional " << passed["optional"] << " passed, " << skipped["optional"] << " skipped; "
              << explained << " refusals explained; fast path decided " << fast_decided["valid"] << " valid and "
              << fast_decided["invalid"] << " invalid\n";
}

TEST_CASE("format checks", "[model][schema]") {
    struct fc {
        const char* format;
        const char* value;
        bool valid;
    };
    const fc cases[] = {
        {"date-time", "2024-05-01T12:00:00Z", true},
        {"date-time", "2024-05-01t12:00:00.123456z", true},
        {"date-time", "2024-05-01T12:00:00+05:30", true},
        {"date-time", "2024-02-29T00:00:00Z", true},
        {"date-time", "2023-02-29T00:00:00Z", false},
        {"date-time", "2024-05-01 12:00:00Z", false},
        {"date-time", "2024-05-01T24:00:00Z", false},
        {"date-time", "2024-05-01T12:00:00", false},
        {"date-time", "2016-12-31T23:59:60Z", true},   // leap second
        {"date-time", "2016-12-31T22:59:60Z", false},
        {"date-time", "2016-12-31T15:59:60-08:00", true},
        {"date", "2024-12-31", true},
        {"date", "2024-13-01", false},
        {"time", "08:30:06Z", true},
        {"time", "08:30:06", false},
        {"ipv4", "192.168.0.1", true},
        {"ipv4", "192.168.0.256", false},
        {"ipv4", "192.168.00.1", false},
        {"ipv6", "::1", true},
        {"ipv6", "fe80::1:2:3:4", true},
        {"ipv6", "::ffff:192.168.0.1", true},
        {"ipv6", "1:2:3:4:5:6:7:8:9", false},
        {"ipv6", "1::2::3", false},
        {"hostname", "plc-7.press-shop.acme.example", true},
        {"hostname", "-plc", false},
        {"email", "ops@acme.example", true},
        {"email", "ops@", false},
        {"uri", "opc.tcp://10.0.0.7:4840/path?q=1#f", true},
        {"uri", "mqtts://[::1]:8883", true},
        {"uri", "/relative", false},
        {"uri-reference", "/relative", true},
        {"uri-reference", "a:b:c", true},
        {"json-pointer", "/a~1b/0", true},
        {"json-pointer", "a", false},
        {"relative-json-pointer", "1/a", true},
        {"regex", "^[a-z]+$", true},
        {"regex", "^[a-z", false},
        {"uri-template", "http://x/{id}", true},
        {"uri-template", "http://x/{id", false},
    };
    for (const fc& c : cases) {
        INFO(c.format << " " << c.value);
        CHECK(check_format(c.format, c.value) == c.valid);
    }
    CHECK(check_format("color", "red") == std::nullopt);  // unknown formats are annotations
}

TEST_CASE("payload validation on the data path", "[model][schema]") {
    const auto s = json_schema::compile(json::parse(R"({
        "type": "object",
        "required": ["value", "ts"],
        "properties": {
            "value": {"type": "number"},
            "ts": {"type": "string", "format": "date-time"},
            "tag": {"type": "string", "pattern": "^[a-z]+$"},
            "items": {"type": "array", "items": {"type": "integer"}, "maxItems": 3}
        }
    })"));
    std::string why;
    CHECK(s->valid_payload(R"({"value": 1.5, "ts": "2024-05-01T12:00:00Z"})", &why));
    CHECK(why.empty());
    CHECK_FALSE(s->valid_payload(R"({"value": 1.5, "ts": "2024-05-01T12:00:00Z", "items": [1, "2"]})", &why));
    CHECK(why == "/items/1: expected integer, got string");
    CHECK_FALSE(s->valid_payload(R"({"value": 1.5, "ts": "2024-05-01T12:00:00Z", "items": [1, 2, 3, 4]})", &why));
    CHECK(why == "/items: more than 3 items");
    CHECK_FALSE(s->valid_payload(R"({"value": 1.5, "ts": "2024-05-01T12:00:00Z", "tag": "A"})", &why));
    CHECK(why == "/tag: \"A\" does not match pattern '^[a-z]+$'");
    CHECK_FALSE(s->valid_payload("{\"value\": 1", &why));
    CHECK(why.starts_with("not JSON: "));
    // A pattern over a huge string: linear, no stack overflow.
    const std::string big = R"({"value": 1, "ts": "2024-05-01T12:00:00Z", "tag": ")" + std::string(1 << 20, 'a') + "\"}";
    CHECK(s->valid_payload(big, nullptr));
    // Hostile nesting is refused before parsing.
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    CHECK_FALSE(s->valid_payload(deep, &why));
    CHECK(why == "nested deeper than 64 levels");
    CHECK(json_nesting_depth(R"({"a": "[[[[", "b": [[1]]})", 64) == 3);
    CHECK(json_nesting_depth(R"(["\"[[["])", 64) == 1);
    // Nothing is nested more than 64 deep in this one.
    const std::string ok64 = std::string(63, '[') + "1" + std::string(63, ']');
    CHECK(json_nesting_depth(ok64, 64) == 63);
}

TEST_CASE("schema compile errors point at the keyword", "[model][schema]") {
    const auto err = [](const char* text) {
        try {
            (void)json_schema::compile(json::parse(text));
        } catch (const schema_error& e) {
            return std::string(e.what());
        }
        return std::string("(compiled)");
    };
    CHECK(err(R"({"type": "numbr"})") ==
          "/type: unknown type 'numbr' (expected array, boolean, integer, null, number, object or string)");
    CHECK(err(R"({"properties": {"a": {"items": 5}}})") == "/properties/a/items: a schema must be an object or a boolean, got integer");
    CHECK(err(R"({"allOf": []})") == "/allOf: expected a non-empty array of schemas");
    CHECK(err(R"({"required": ["a", "a"]})") == "/required/1: duplicate \"a\"");
    CHECK(err(R"({"patternProperties": {"[": {}}})") == "/patternProperties/[: invalid regular expression '[' at offset 0: missing ']'");
    CHECK(err(R"({"multipleOf": 0})") == "/multipleOf: expected a number greater than 0");
    CHECK(err(R"({"$ref": "other.json"})") == "$ref 'other.json': references to other documents are not enabled");
    CHECK(err(R"({"$ref": "#/definitions/missing"})") != "(compiled)");
    CHECK(err("5") == "a schema must be an object or a boolean, got integer");
    std::vector<std::string> warnings;
    (void)json_schema::compile(json::parse(R"({"properties": {"a": {"maxlength": 3}}, "x-vendor": 1})"), {}, &warnings);
    REQUIRE(warnings.size() == 2);
    CHECK(warnings[0] == "/properties/a/maxlength: unknown keyword 'maxlength' (ignored by JSON Schema draft 7)");
    CHECK(warnings[1] == "/x-vendor: unknown keyword 'x-vendor' (ignored by JSON Schema draft 7)");
}

TEST_CASE("compiled schemas are shared by threads", "[model][schema][threads]") {
    const auto s = json_schema::compile(json::parse(
        R"({"type": "object", "properties": {"id": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]+$"}, "ts": {"format": "date-time"}}})"));
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 2000; ++i) {
                const bool good = i % 2 == 0;
                const std::string p = good ? R"({"id": "AB-12", "ts": "2024-05-01T12:00:00Z"})"
                                           : R"({"id": "ab-12", "ts": "2024-05-01T12:00:00Z"})";
                if (s->valid_payload(p, nullptr) != good) ++wrong;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(wrong == 0);
}

TEST_CASE("the fast path never accepts what valijson refuses (example schemas, mutated payloads)",
          "[model][schema][fast]") {
    const auto m = model::load(std::string(STRATA_SOURCE_DIR) + "/deploy/namespace/acme.yaml");
    CHECK(m->find_class("telemetry")->schema->has_fast_path());
    CHECK(m->find_class("state")->schema->has_fast_path());
    CHECK(m->find_class("oee")->schema->has_fast_path());
    CHECK(m->find_class("alarm")->schema->has_fast_path());
    CHECK_FALSE(m->find_class("cmd")->schema->has_fast_path());  // if/then: valijson only

    const std::vector<std::pair<std::string, std::string>> seeds = {
        {"telemetry", R"({"value": 21.5, "unit": "degC", "ts": "2024-05-01T12:00:00.120Z", "quality": "good"})"},
        {"telemetry", R"({"value": true, "ts": "2024-05-01T12:00:00+02:00"})"},
        {"state", R"({"state": "running", "since": "2024-05-01T06:00:00Z", "reason": "shift start", "ts": "2024-05-01T12:00:00Z"})"},
        {"oee", R"({"availability": 0.92, "performance": 0.81, "quality": 0.995, "oee": 0.741, "shift": "early", "ts": "2024-05-01T12:00:00Z"})"},
        {"alarm", R"({"id": "HYD-1042", "severity": "critical", "active": true, "text": "Hydraulic \u00fcberdruck \"high\"", "ts": "2024-05-01T12:00:00Z"})"},
    };
    // Fragments spliced into payloads: values of every type, awkward numbers
    // and strings, broken syntax.
    const std::vector<std::string> fragments = {
        "1", "-0", "1.0", "1e2", "-1e400", "1e400", "18446744073709551616", "-9223372036854775809", "0.5", "2",
        "\"\"", "\"x\"", "\"good\"", "\"running\"", "\"2024-05-01T12:00:00Z\"", "\"2024-02-30T12:00:00Z\"",
        "\"\\u00e9\"", "\"\\ud83d\\ude00\"", "\"\\ud83d\"", "\"\xc3\xa9\"", "\"\xff\"", "\"\xed\xa0\x80\"", "\"a\tb\"",
        "\"HYD-1042\"", "\"hyd-1\"", "true", "false", "null", "[]", "[1,2]", "{}", "{\"a\":1}", "tru", "nul", "",
        ",", "}", "]", "{", "[", ":", "\"", "01", "-", "1.", ".5", "+1", "\"a\\qb\"", "\"degC degC degC de\"",
    };
    std::mt19937 rng(99);
    int fast_valid = 0, fast_invalid = 0, fast_unsure = 0, disagreements = 0;
    for (int i = 0; i < 60000; ++i) {
        const auto& [cls, seed] = seeds[rng() % seeds.size()];
        const json_schema& schema = *m->find_class(cls)->schema;
        std::string p = seed;
        const int edits = 1 + static_cast<int>(rng() % 3);
        for (int e = 0; e < edits; ++e) {
            const std::size_t at = rng() % (p.size() + 1);
            switch (rng() % 6) {
            case 0: {  // replace a value: from after a ':' to the next ',' or '}'
                const std::size_t colon = p.find(':', at);
                if (colon == std::string::npos) break;
                std::size_t end = colon + 1;
                int nest = 0;
                bool in_str = false;
                for (; end < p.size(); ++end) {
                    const char c = p[end];
                    if (in_str) { if (c == '\\') ++end; else if (c == '"') in_str = false; continue; }
                    if (c == '"') in_str = true;
                    else if (c == '[' || c == '{') ++nest;
                    else if ((c == ']' || c == '}') && nest > 0) --nest;
                    else if ((c == ',' || c == '}') && nest == 0) break;
                }
                p = p.substr(0, colon + 1) + " " + fragments[rng() % fragments.size()] + p.substr(end);
                break;
            }
            case 1: p.insert(at, fragments[rng() % fragments.size()]); break;
            case 2: if (at < p.size()) p.erase(at, 1 + rng() % 8); break;
            case 3: p.insert(1, "\"extra\": " + fragments[rng() % fragments.size()] + ", "); break;
            case 4: {  // duplicate the first member
                const std::size_t comma = p.find(',');
                if (comma != std::string::npos) p.insert(comma + 1, " " + p.substr(1, comma - 1) + ",");
                break;
            }
            case 5: p = (rng() % 2 ? "\xEF\xBB\xBF " : " ") + p + (rng() % 2 ? " \n" : " x"); break;
            }
        }
        // The reference: nlohmann's DOM judged by valijson, except that a
        // byte order mark and a key named twice in one object are refused.
        bool slow = false;
        const json doc = json::parse(p, nullptr, false);
        if (!doc.is_discarded() && json_nesting_depth(p, json_schema::max_depth) <= json_schema::max_depth &&
            !p.starts_with("\xEF\xBB\xBF") && !has_duplicate_key(p))
            slow = schema.valid(doc);
        const std::optional<bool> fast = schema.fast_check(p);
        if (!fast.has_value()) {
            ++fast_unsure;
        } else if (*fast) {
            ++fast_valid;
            INFO(cls << ": " << p);
            CHECK(slow);  // the property the fast path must have
        } else {
            ++fast_invalid;
            if (slow) ++disagreements;
        }
        CHECK(schema.valid_payload(p, nullptr) == slow);
    }
    INFO("fast valid " << fast_valid << ", invalid " << fast_invalid << ", unsure " << fast_unsure);
    CHECK(fast_valid > 1000);
    CHECK(fast_invalid > 10000);
    // Cases where the fast path is stricter than needed: correct in the
    // end because valijson decides, but they should be rare.
    CHECK(disagreements < fast_invalid / 20);
}

TEST_CASE("numbers a double cannot hold are invalid payloads, never exceptions", "[model][schema]") {
    const auto m = model::load(std::string(STRATA_SOURCE_DIR) + "/deploy/namespace/acme.yaml");
    // telemetry has a fast path; cmd is valijson only; a schema of `true`
    // takes any JSON document.
    const auto any = json_schema::compile(json(true));
    for (const json_schema* s : {m->find_class("telemetry")->schema.get(), m->find_class("cmd")->schema.get(),
                                 m->find_class("state")->schema.get(), any.get()}) {
        for (const char* p : {R"({"value":1e999,"ts":"2026-12-06T10:00:00Z"})",
                              R"({"state":"running","ts":"2026-12-06T10:00:00Z","x":1e999})",
                              R"({"value":-1e400,"ts":"2026-12-06T10:00:00Z"})", "1e999", "[1e999]",
                              R"({"command":"set","request_id":"r1","ts":"2026-12-06T10:00:00Z","value":1e999})"}) {
            INFO(p);
            std::string why;
            bool ok = true;
            REQUIRE_NOTHROW(ok = s->valid_payload(p, &why));
            CHECK_FALSE(ok);
            CHECK(why.starts_with("not JSON: number overflow"));
            REQUIRE_NOTHROW(ok = s->valid_payload(p, nullptr));
            CHECK_FALSE(ok);
        }
    }
    // And through the model, as the broker and `strata namespace explain` ask.
    verdict v;
    REQUIRE_NOTHROW(v = m->check("acme/dresden/press-shop/line-2/press-7/telemetry/temperature",
                                 R"({"value":1e999,"ts":"2026-12-06T10:00:00Z"})", false));
    CHECK(v.code == reason_code::payload_invalid);
    CHECK(v.mqtt_reason() == 0x99);
    std::string text;
    REQUIRE_NOTHROW(text = m->explain("acme/dresden/press-shop/line-2/press-7/telemetry/temperature",
                                      std::string_view(R"({"value":1e999,"ts":"2026-12-06T10:00:00Z"})"), false));
    CHECK(text.find("number overflow") != std::string::npos);
}

TEST_CASE("a key named twice and a byte order mark are refused", "[model][schema]") {
    const auto m = model::load(std::string(STRATA_SOURCE_DIR) + "/deploy/namespace/acme.yaml");
    const auto loose = json_schema::compile(json::parse(R"({"type": "object"})"));
    struct sample {
        const json_schema* schema;
        std::string good, twice;
    };
    const std::string ts = R"("ts": "2026-12-06T10:00:00Z")";
    const std::vector<sample> samples = {
        {m->find_class("telemetry")->schema.get(), "{\"value\": 1.5, " + ts + "}",
         "{\"value\": 1.5, " + ts + ", \"value\": \"off\"}"},
        {m->find_class("cmd")->schema.get(), R"({"command": "stop", "request_id": "req-0001", )" + ts + "}",
         R"({"command": "stop", "request_id": "req-0001", )" + ts + R"(, "command": "start"})"},
        {loose.get(), R"({"value": 1})", R"({"value": 1, "value": 2})"},
    };
    for (const auto& [s, good, twice] : samples) {
        INFO(good);
        std::string why;
        CHECK(s->valid_payload(good, &why));
        CHECK_FALSE(s->valid_payload(twice, &why));
        CHECK(why.ends_with("' appears twice in one object"));
        CHECK_FALSE(s->valid_payload(twice, nullptr));
        CHECK_FALSE(s->valid_payload("\xEF\xBB\xBF" + good, &why));
        CHECK(why == "not JSON: starts with a UTF-8 byte order mark");
    }
    // Nested objects each have their own keys; the same key in two objects
    // is fine, twice in a nested one is not.
    std::string why;
    CHECK(loose->valid_payload(R"({"a": {"x": 1}, "b": {"x": 2}, "x": 3})", &why));
    CHECK_FALSE(loose->valid_payload(R"({"a": {"x": 1, "y": {}, "x": 2}})", &why));
    CHECK(why == "the key 'x' appears twice in one object");
    // A big object is checked in linear time, a repeat at its end found.
    std::string big = "{";
    for (int i = 0; i < 100000; ++i) big += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ",";
    CHECK(loose->valid_payload(big.substr(0, big.size() - 1) + "}", &why));
    CHECK_FALSE(loose->valid_payload(big + "\"k77\": 0}", &why));
    CHECK(why == "the key 'k77' appears twice in one object");
}
