// Model files that must not load, with file:line: key.path: message, and
// the warnings of models that load but are probably not what was meant.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "namespace/model.hpp"

using namespace strata::ns;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::string& text, const std::string& dir = ".") {
    try {
        (void)model::parse(text, "m.yaml", dir);
    } catch (const model_error& e) {
        return e.what();
    }
    return "(loaded)";
}

std::vector<std::string> warnings_of(const std::string& text, const std::string& dir = ".") {
    return model::parse(text, "m.yaml", dir)->warnings();
}

// A scratch directory for schema files, removed at the end of the test.
class temp_dir {
public:
    temp_dir() {
        static int counter = 0;
        path_ = fs::temp_directory_path() /
                ("strata-model-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        fs::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    void write(const std::string& name, const std::string& text) const {
        fs::create_directories((path_ / name).parent_path());
        std::ofstream(path_ / name) << text;
    }
    [[nodiscard]] std::string str() const { return path_.string(); }

private:
    fs::path path_;
};

// Three levels and one class; tests append or replace sections.
const std::string levels3 = "levels:\n"                                   // 1
                            "  - {name: enterprise, names: [acme]}\n"     // 2
                            "  - {name: site, names: [dd, ll]}\n"         // 3
                            "  - {name: machine, pattern: \"m[0-9]+\"}\n";  // 4

}  // namespace

TEST_CASE("model errors: YAML and document shape", "[model][errors]") {
    CHECK(error_of("") == "m.yaml: the model is empty (it needs 'levels' and 'classes')");
    CHECK(error_of("- a\n") == "m.yaml:1: the document root must be a map, got a list");
    CHECK(error_of("levels: [a\n").starts_with("m.yaml:2: "));
    CHECK(error_of("classes: {x: }\n") == "m.yaml:1: missing required key 'levels'");
    CHECK(error_of(levels3) == "m.yaml:1: missing required key 'classes'");
    CHECK(error_of(levels3 + "classes: {data: }\nlevel: 1\n") ==
          "m.yaml:6: unknown key 'level' (did you mean 'levels'?)");
    CHECK(error_of(levels3 + "classes: {data: }\nversion: 2\n") == "m.yaml:6: version: unsupported version '2' (expected 1)");
    CHECK(error_of(levels3 + "classes: {data: }\n---\nx: 1\n").starts_with("m.yaml:7: expected a single YAML document"));
}

TEST_CASE("model errors: levels", "[model][errors]") {
    CHECK(error_of("levels:\nclasses: {x: }\n") == "m.yaml:1: levels: at least one level is required");
    CHECK(error_of("levels: {a: 1}\nclasses: {x: }\n") == "m.yaml:1: levels: expected a list of levels, got a map");
    CHECK(error_of("levels:\n  - {name: a, names: [x], optinal: true}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0]: unknown key 'optinal' (did you mean 'optional'?)");
    CHECK(error_of("levels:\n  - {name: a}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0]: level 'a' needs 'names', 'pattern' or 'any: true'");
    CHECK(error_of("levels:\n  - {names: [x]}\nclasses: {x: }\n") == "m.yaml:2: levels[0]: missing required key 'name'");
    CHECK(error_of("levels:\n  - {name: a, any: true, names: [x]}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0]: 'any: true' accepts every name; remove 'names' and 'pattern' or set 'any: false'");
    CHECK(error_of("levels:\n  - {name: a, any: yes}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0].any: expected true or false, got 'yes'");
    CHECK(error_of("levels:\n  - {name: a b, any: true}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0].name: level names use letters, digits, '-' and '_' (got 'a b')");
    CHECK(error_of("levels:\n  - {name: a, any: true}\n  - {name: a, any: true}\nclasses: {x: }\n") ==
          "m.yaml:3: levels[1].name: duplicate level name 'a' (also on line 2)");
    CHECK(error_of("levels:\n  - {name: a, names: [x, y, x]}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0].names[2]: duplicate name 'x' (also levels[0].names[0])");
    CHECK(error_of("levels:\n  - {name: a, names: []}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0].names: expected a non-empty list of names, got a list");
    CHECK(error_of("levels:\n  - name: a\n    names:\n      - x\n      - \"y/z\"\nclasses: {x: }\n") ==
          "m.yaml:5: levels[0].names[1]: name 'y/z' must not contain '/' (one topic level only)");
    CHECK(error_of("levels:\n  - {name: a, names: [\"a+\"]}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0].names[0]: name 'a+' must not contain the wildcards '+' or '#'");
    CHECK(error_of("levels:\n  - {name: a, names: [\"\"]}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0].names[0]: name '' must not be empty");
    CHECK(error_of("levels:\n  - {name: a, names: [$SYS]}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0].names[0]: name '$SYS': topics starting with '$' are reserved for the broker");
    CHECK(error_of("levels:\n  - name: line\n    pattern: \"line-[0-9\"\nclasses: {x: }\n") ==
          "m.yaml:3: levels[0].pattern: invalid pattern 'line-[0-9' at offset 5: missing ']'");
    CHECK(error_of("levels:\n  - {name: line, pattern: \"line\\\\Z\"}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0].pattern: invalid pattern 'line\\Z' at offset 4: unknown escape '\\Z'");
    CHECK(error_of("levels:\n  - {name: line, pattern: \"a/b\"}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0].pattern: pattern 'a/b' can never match a topic level (a level is non-empty and has no "
          "'/', '+' or '#')");
    CHECK(error_of("levels:\n  - {name: line, pattern: \"\"}\nclasses: {x: }\n") ==
          "m.yaml:2: levels[0].pattern: the pattern must not be empty");
    std::string many = "levels:\n";
    for (int i = 0; i < 17; ++i) many += "  - {name: l" + std::to_string(i) + ", any: true}\n";
    CHECK(error_of(many + "classes: {x: }\n") == "m.yaml:2: levels: at most 16 levels are supported (got 17)");
}

TEST_CASE("model errors: classes", "[model][errors]") {
    CHECK(error_of(levels3 + "classes:\n") == "m.yaml:5: classes: at least one data class is required");
    CHECK(error_of(levels3 + "classes:\n  data:\n    retian: any\n") ==
          "m.yaml:7: classes.data: unknown key 'retian' (did you mean 'retain'?)");
    CHECK(error_of(levels3 + "classes:\n  data:\n    retain: always\n") ==
          "m.yaml:7: classes.data.retain: must be required, forbidden or any (got 'always')");
    CHECK(error_of(levels3 + "classes:\n  data:\n    expected_period: 10\n") ==
          "m.yaml:7: classes.data.expected_period: expected a duration: a positive integer with a unit ms, s, m or h "
          "(e.g. 10s), got '10'");
    CHECK(error_of(levels3 + "classes:\n  data:\n    expected_period: 0s\n") ==
          "m.yaml:7: classes.data.expected_period: must be greater than 0");
    CHECK(error_of(levels3 + "classes:\n  data:\n    command: 1\n") ==
          "m.yaml:7: classes.data.command: expected true or false, got '1'");
    CHECK(error_of(levels3 + "classes:\n  data:\n    under: [line]\n") ==
          "m.yaml:7: classes.data.under[0]: unknown level 'line' (levels: enterprise, site, machine)");
    CHECK(error_of(levels3 + "classes:\n  data:\n    under: [site, site]\n") ==
          "m.yaml:7: classes.data.under[1]: level 'site' listed twice");
    CHECK(error_of(levels3 + "classes:\n  \"a/b\":\n") == "m.yaml:6: classes.a/b: class name 'a/b' must not contain '/' (one topic level only)");
    CHECK(error_of(levels3 + "classes:\n  data:\n  state:\n  data:\n") ==
          "m.yaml:8: classes: duplicate key 'data' (also on line 6)");
    CHECK(error_of("levels:\n  - {name: e, names: [acme]}\n  - {name: m, any: true, optional: true}\nclasses: {data: }\n") ==
          "m.yaml:3: levels[1]: the last level ('m') cannot be optional; to let data classes follow 'e' as well, list "
          "it in their 'under'");
    // A level no class can follow is a rule that never applies.
    CHECK(error_of(levels3 + "classes:\n  kpi:\n    under: site\n") ==
          "m.yaml:4: levels[2]: level 'machine' can never be part of a topic: no data class may follow it or a later "
          "level (see the classes' 'under')");
}

TEST_CASE("model errors: free subtrees, enforcement, metrics", "[model][errors]") {
    const std::string base = levels3 + "classes: {data: }\n";  // line 5
    CHECK(error_of(base + "free: [\"a/#/b\"]\n") ==
          "m.yaml:6: free[0]: not a valid MQTT topic filter: 'a/#/b' ('+' and '#' must be whole levels, '#' only last)");
    CHECK(error_of(base + "free: [\"#\"]\n") ==
          "m.yaml:6: free[0]: '#' would make the whole namespace free; remove the model instead");
    CHECK(error_of(base + "free:\n  - sandbox/#\n  - sandbox/x/#\n") ==
          "m.yaml:8: free[1]: 'sandbox/x/#' is already covered by free filter 'sandbox/#' (line 7)");
    CHECK(error_of(base + "free:\n  - sandbox/x\n  - sandbox/+\n") ==
          "m.yaml:8: free[1]: 'sandbox/+' covers the earlier free filter 'sandbox/x' (line 7); keep one");
    CHECK(error_of(base + "enforcement:\n  mode: drop\n") ==
          "m.yaml:7: enforcement.mode: unknown enforcement mode 'drop' (expected reject, warn or quarantine)");
    CHECK(error_of(base + "enforcement:\n  subtrees:\n    \"acme/dd/#\": ignore\n") ==
          "m.yaml:8: enforcement.subtrees.acme/dd/#: unknown enforcement mode 'ignore' (expected reject, warn or quarantine)");
    CHECK(error_of(base + "enforcement:\n  subtrees:\n    \"acme/hamburg/#\": warn\n") ==
          "m.yaml:8: enforcement.subtrees: 'acme/hamburg/#' matches no topic the model accepts");
    CHECK(error_of(base + "enforcement:\n  subtrees:\n    \"acme/dd/m1\": warn\n") ==
          "m.yaml:8: enforcement.subtrees: 'acme/dd/m1' matches no topic the model accepts");
    CHECK(error_of(base + "enforcement:\n  subtrees:\n    \"acme/dd/+\": warn\n") ==
          "m.yaml:8: enforcement.subtrees: 'acme/dd/+' matches no topic the model accepts");
    CHECK(error_of(base + "enforcement:\n  subtrees:\n    \"acme/+/x/#\": warn\n") ==
          "m.yaml:8: enforcement.subtrees: 'acme/+/x/#' matches no topic the model accepts");
    CHECK(error_of(base + "enforcement:\n  subtrees:\n    \"acme/dd/+/#\": warn\n") == "(loaded)");
    CHECK(error_of(base + "enforcement:\n  subtrees:\n    \"acme/dd/m1/data\": warn\n") == "(loaded)");
    CHECK(error_of(base + "free: [sandbox/#]\nenforcement:\n  subtrees:\n    \"sandbox/x/#\": warn\n") ==
          "m.yaml:9: enforcement.subtrees: 'sandbox/x/#' is inside the free subtree 'sandbox/#', where nothing is enforced");
    CHECK(error_of(base + "enforcement:\n  subtrees:\n    \"acme/#/x\": warn\n") ==
          "m.yaml:8: enforcement.subtrees: not a valid MQTT topic filter: 'acme/#/x' ('+' and '#' must be whole levels, "
          "'#' only last)");
    CHECK(error_of(base + "enforcement:\n  dead_letter: \"q/+/x\"\n") ==
          "m.yaml:7: enforcement.dead_letter: expected a topic prefix without wildcards or empty levels (got 'q/+/x')");
    CHECK(error_of(base + "enforcement:\n  dead_letter: \"q/\"\n") ==
          "m.yaml:7: enforcement.dead_letter: expected a topic prefix without wildcards or empty levels (got 'q/')");
    CHECK(error_of(base + "enforcement:\n  dead_letter: acme/dd\n") ==
          "m.yaml:7: enforcement.dead_letter: the dead-letter prefix 'acme/dd' is inside the model; quarantined "
          "messages would mix with real ones (choose a prefix the first level does not accept)");
    // The default prefix collides with a model whose first level accepts 'uns'.
    const std::string any2 = "levels:\n  - {name: e, any: true}\n  - {name: s, any: true}\nclasses: {data: }\n";
    CHECK(error_of(any2) ==
          "m.yaml: enforcement.dead_letter: the dead-letter prefix 'uns/quarantine' is inside the model; quarantined "
          "messages would mix with real ones (choose a prefix the first level does not accept)");
    CHECK(error_of(any2 + "enforcement: {dead_letter: $dead}\n") == "(loaded)");
    // uns/quarantine/<x> could only be read as enterprise 'uns', class 'quarantine': no such class, no conflict.
    CHECK(error_of("levels:\n  - {name: e, any: true}\nclasses: {data: }\n") == "(loaded)");
    CHECK(error_of(base + "metrics:\n  subtree_level: area\n") ==
          "m.yaml:7: metrics.subtree_level: unknown level 'area' (levels: enterprise, site, machine)");
    CHECK(error_of(base + "metrics:\n  depth: 2\n") == "m.yaml:7: metrics: unknown key 'depth' (expected subtree_level)");
}

TEST_CASE("model errors: schemas", "[model][errors]") {
    temp_dir dir;
    const std::string base = levels3 + "classes:\n  data:\n";  // class body from line 7
    SECTION("missing schema file") {
        const std::string e = error_of(base + "    schema: schemas/none.json\n", dir.str());
        CHECK(e == "m.yaml:7: classes.data.schema: cannot read schema file '" + dir.str() +
                       "/schemas/none.json': No such file or directory");
    }
    SECTION("a schema file that is not JSON: file:line:column") {
        dir.write("bad.json", "{\n  \"type\": \"object\",\n  \"properties\": {,}\n}\n");
        const std::string e = error_of(base + "    schema: bad.json\n", dir.str());
        CHECK(e.starts_with("m.yaml:7: classes.data.schema: bad.json:3:18: syntax error while parsing object key"));
    }
    SECTION("an invalid JSON Schema in a file: JSON pointer") {
        dir.write("s.json", R"({"type": "object", "properties": {"v": {"type": "numbr"}}})");
        CHECK(error_of(base + "    schema: s.json\n", dir.str()) ==
              "m.yaml:7: classes.data.schema: s.json: /properties/v/type: unknown type 'numbr' (expected array, boolean, "
              "integer, null, number, object or string)");
        dir.write("r.json", R"({"properties": {"id": {"type": "string", "pattern": "^[A-Z"}}})");
        CHECK(error_of(base + "    schema: r.json\n", dir.str()) ==
              "m.yaml:7: classes.data.schema: r.json: /properties/id/pattern: invalid regular expression '^[A-Z' at "
              "offset 1: missing ']'");
        dir.write("d.json", R"({"$schema": "http://json-schema.org/draft-04/schema#"})");
        CHECK(error_of(base + "    schema: d.json\n", dir.str()) ==
              "m.yaml:7: classes.data.schema: d.json: /$schema: only JSON Schema draft 7 is supported (\"$schema\": "
              "\"http://json-schema.org/draft-07/schema#\"), got 'http://json-schema.org/draft-04/schema#'");
        dir.write("m.json", R"({"minLength": -1})");
        CHECK(error_of(base + "    schema: m.json\n", dir.str()) ==
              "m.yaml:7: classes.data.schema: m.json: /minLength: expected a non-negative integer, got -1");
    }
    SECTION("references: files next to the schema, never the network") {
        dir.write("s/common.json", R"({"definitions": {"ts": {"type": "string"}}})");
        dir.write("s/a.json", R"({"properties": {"ts": {"$ref": "common.json#/definitions/ts"}}})");
        const auto m = model::parse(base + "    schema: s/a.json\n", "m.yaml", dir.str());
        CHECK(m->evaluate("acme/dd/m1/data", R"({"ts": 1})", false).reason == "payload: /ts: expected string, got integer");
        dir.write("s/b.json", R"({"properties": {"ts": {"$ref": "missing.json#/definitions/ts"}}})");
        CHECK(error_of(base + "    schema: s/b.json\n", dir.str()) ==
              "m.yaml:7: classes.data.schema: s/b.json: $ref 'missing.json': cannot read '" + dir.str() +
                  "/s/missing.json': No such file or directory");
        dir.write("s/c.json", R"({"$ref": "https://example.com/schema.json"})");
        CHECK(error_of(base + "    schema: s/c.json\n", dir.str()) ==
              "m.yaml:7: classes.data.schema: s/c.json: $ref 'https://example.com/schema.json': remote references are "
              "not fetched; copy the document next to the schema and refer to it by file name");
    }
    SECTION("inline schemas: the line of the offending keyword") {
        const std::string text = base +
                                 "    schema:\n"                      // 7
                                 "      type: object\n"               // 8
                                 "      properties:\n"                // 9
                                 "        v:\n"                       // 10
                                 "          type: number\n"           // 11
                                 "          maximum: high\n";         // 12
        CHECK(error_of(text) == "m.yaml:12: classes.data.schema: /properties/v/maximum: expected a number, got string");
        // Any other scalar is a file name.
        CHECK(error_of(base + "    schema: 42\n").starts_with("m.yaml:7: classes.data.schema: cannot read schema file './42'"));
    }
    SECTION("a schema that is neither a file, a map nor a boolean") {
        CHECK(error_of(base + "    schema: [a]\n") ==
              "m.yaml:7: classes.data.schema: expected a file name, an inline schema (a map) or true/false, got a list");
        CHECK(error_of(base + "    schema:\n") ==
              "m.yaml:7: classes.data.schema: expected a file name, an inline schema (a map) or true/false, got an empty "
              "value");
    }
    SECTION("schema: true requires JSON, false refuses everything") {
        const auto m = model::parse(levels3 + "classes:\n  json:\n    schema: true\n  never:\n    schema: false\n", "m.yaml", ".");
        CHECK(m->evaluate("acme/dd/m1/json", "[1, 2]", false).result == outcome::pass);
        CHECK(m->evaluate("acme/dd/m1/json", "not json", false).code == reason_code::payload_invalid);
        CHECK(m->evaluate("acme/dd/m1/never", "{}", false).reason == "payload: no value is allowed here");
    }
}

TEST_CASE("model errors: files", "[model][errors]") {
    CHECK_THROWS_WITH(model::load("/nonexistent/model.yaml"),
                      "cannot read model file '/nonexistent/model.yaml': No such file or directory");
    CHECK_THROWS_WITH(model::load("/tmp"), "cannot read model file '/tmp': is a directory");
    temp_dir dir;
    dir.write("m.yaml", levels3 + "classes:\n  data:\n    retain: sometimes\n");
    const lint_report bad = model::lint(dir.str() + "/m.yaml");
    CHECK_FALSE(bad.ok());
    CHECK(bad.error == dir.str() + "/m.yaml:7: classes.data.retain: must be required, forbidden or any (got 'sometimes')");
    const lint_report good = model::lint(std::string(STRATA_SOURCE_DIR) + "/deploy/namespace/acme.yaml");
    CHECK(good.ok());
    CHECK(good.warnings.empty());
}

TEST_CASE("model warnings", "[model][errors]") {
    SECTION("a listed name the pattern accepts anyway") {
        const auto w = warnings_of("levels:\n  - {name: e, names: [acme]}\n  - name: s\n    names: [hq, plant-dd]\n"
                                   "    pattern: \"plant-[a-z]+\"\nclasses: {data: }\n");
        REQUIRE(w.size() == 1);
        CHECK(w[0] == "m.yaml:4: levels[1].names[1]: name 'plant-dd' is also matched by the pattern 'plant-[a-z]+' (redundant)");
    }
    SECTION("a class name a level also accepts") {
        const auto w = warnings_of("levels:\n  - {name: e, names: [acme]}\n  - {name: machine, pattern: \"m[0-9]+\"}\n"
                                   "  - {name: part, pattern: \"[a-z]+\", optional: true}\n  - {name: sensor, pattern: \"s[0-9]+\"}\n"
                                   "classes:\n  state:\n    under: [machine, sensor]\n");
        REQUIRE(w.size() == 1);
        CHECK(w[0] == "m.yaml:7: classes.state: class name 'state' is also accepted by level 'part' (pattern '[a-z]+'); "
                      "where both are possible the topic level is read as the class");
    }
    SECTION("unknown JSON Schema keywords, inline and in files") {
        temp_dir dir;
        dir.write("s.json", R"({"type": "object", "propertise": {}})");
        const auto w = warnings_of(levels3 + "classes:\n  a:\n    schema: s.json\n  b:\n    schema:\n      type: object\n"
                                             "      requird: [x]\n",
                                   dir.str());
        REQUIRE(w.size() == 2);
        CHECK(w[0] == "m.yaml:7: classes.a.schema: s.json: /propertise: unknown keyword 'propertise' (ignored by JSON "
                      "Schema draft 7)");
        CHECK(w[1] == "m.yaml:11: classes.b.schema: /requird: unknown keyword 'requird' (ignored by JSON Schema draft 7)");
    }
    SECTION("an override that changes nothing") {
        const auto w = warnings_of(levels3 + "classes: {data: }\nenforcement:\n  mode: warn\n  subtrees:\n"
                                             "    \"acme/dd/#\": quarantine\n    \"acme/dd/m1/#\": quarantine\n"
                                             "    \"acme/ll/#\": warn\n");
        REQUIRE(w.size() == 2);
        CHECK(w[0] == "m.yaml:10: enforcement.subtrees: 'acme/dd/m1/#': quarantine is already inherited from "
                      "'acme/dd/#' (redundant)");
        CHECK(w[1] == "m.yaml:11: enforcement.subtrees: 'acme/ll/#': warn is already inherited from the default (redundant)");
    }
    SECTION("a first-level pattern that accepts $SYS") {
        const auto w = warnings_of("levels:\n  - {name: e, pattern: \".+\"}\nclasses: {data: }\nenforcement: {dead_letter: $q}\n");
        REQUIRE(w.size() == 1);
        CHECK(w[0] == "m.yaml:2: levels[0].pattern: pattern '.+' accepts '$SYS'; topics starting with '$' are broker topics");
    }
}
