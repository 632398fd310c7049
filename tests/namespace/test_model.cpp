// The namespace model on the example plant (deploy/namespace/acme.yaml):
// topics at every level, the optional cell, payloads per class, retain
// rules, enforcement modes and their inheritance, free subtrees, the
// per-level walk, quarantine helpers, explain and the statistics.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "namespace/model.hpp"
#include "namespace/model_impl.hpp"  // compiled_filter
#include "namespace/model_stats.hpp"
#include "namespace/topic.hpp"
#include "namespace/topic.hpp"
#include "model_cases.hpp"

using namespace strata::ns;

namespace {

std::string acme_path() { return std::string(STRATA_SOURCE_DIR) + "/deploy/namespace/acme.yaml"; }

std::shared_ptr<const model> acme() {
    static const std::shared_ptr<const model> m = model::load(acme_path());
    return m;
}

const std::string telemetry_ok = R"({"value": 21.5, "unit": "degC", "ts": "2024-05-01T12:00:00.120Z", "quality": "good"})";
const std::string state_ok = R"({"state": "running", "since": "2024-05-01T06:00:00Z", "ts": "2024-05-01T12:00:00Z"})";
const std::string oee_ok =
    R"({"availability": 0.92, "performance": 0.81, "quality": 0.995, "oee": 0.741, "shift": "early", "ts": "2024-05-01T12:00:00Z"})";
const std::string alarm_ok =
    R"({"id": "HYD-1042", "severity": "critical", "active": true, "text": "Hydraulic pressure low", "ts": "2024-05-01T12:00:00Z"})";
const std::string cmd_ok = R"({"command": "start", "request_id": "req-000123", "ts": "2024-05-01T12:00:00Z"})";

const std::string press = "acme/dresden/press-shop/line-2/cell-1/press-7/";
const std::string press_nocell = "acme/dresden/press-shop/line-2/press-7/";

// A topic checked with a payload that fits its class and the retain flag the
// class wants, so that only the topic can fail.
verdict topic_only(const model& m, const std::string& topic) {
    std::string cls = topic.substr(topic.rfind('/') + 1);
    for (const data_class& c : m.classes())
        if (topic.find("/" + c.name) != std::string::npos) cls = c.name;
    const std::string& p = cls == "state" ? state_ok : cls == "oee" ? oee_ok : cls == "alarm" ? alarm_ok
                           : cls == "cmd" ? cmd_ok : telemetry_ok;
    const data_class* c = m.find_class(cls);
    const bool retain = c != nullptr && c->retain == retain_rule::required;
    return m.evaluate(topic, p, retain);
}

}  // namespace

TEST_CASE("the example model loads without warnings", "[model]") {
    const auto m = acme();
    CHECK(m->warnings().empty());
    for (const std::string& w : m->warnings()) INFO(w);
    REQUIRE(m->levels().size() == 6);
    CHECK(m->levels()[4].name == "cell");
    CHECK(m->levels()[4].optional);
    REQUIRE(m->classes().size() == 6);
    CHECK(m->find_class("cmd")->command);
    CHECK(m->find_class("cmd")->retain == retain_rule::forbidden);
    CHECK_FALSE(m->find_class("reply")->command);
    CHECK(m->find_class("reply")->retain == retain_rule::forbidden);
    CHECK(m->find_class("state")->retain == retain_rule::required);
    CHECK(m->find_class("telemetry")->expected_period == std::chrono::seconds(10));
    CHECK(m->find_class("oee")->expected_period == std::chrono::minutes(1));
    CHECK(m->find_class("oee")->schema_source == "inline");
    CHECK(m->find_class("telemetry")->schema_source == "schemas/telemetry.json");
    CHECK(m->find_class("nope") == nullptr);
    CHECK(m->default_mode() == enforcement::reject);
    CHECK(m->dead_letter_prefix() == "uns/quarantine");
    CHECK(m->metrics_level() == 1);
    CHECK(m->free_filters() == std::vector<std::string>{"$SYS/#", "sandbox/#", "spBv1.0/#", "uns/quarantine/#"});
}

TEST_CASE("valid topics: every class, with and without the optional cell", "[model]") {
    const auto m = acme();
    for (const std::string& t : acme_valid_topics()) {
        INFO(t);
        const verdict v = topic_only(*m, t);
        INFO(v.reason);
        CHECK(v.result == outcome::pass);
        CHECK(v.code == reason_code::none);
        CHECK(v.reason.empty());
        CHECK(v.klass != nullptr);
    }
}

TEST_CASE("class filters cover every topic of a class, with or without the optional cell", "[model]") {
    const auto m = acme();
    CHECK(m->class_filters("cmd") == std::vector<std::string>{"acme/+/+/+/+/+/cmd/#", "acme/+/+/+/+/cmd/#"});
    CHECK(m->class_filters("oee") ==
          std::vector<std::string>{"acme/+/+/+/+/+/oee/#", "acme/+/+/+/+/oee/#", "acme/+/+/+/oee/#"});
    CHECK(m->class_filters("kpi").empty());
    for (const std::string& t : acme_valid_topics()) {
        INFO(t);
        const verdict v = m->read(t);
        REQUIRE(v.klass != nullptr);
        const auto fs = m->class_filters(v.klass->name);
        CHECK(std::any_of(fs.begin(), fs.end(), [&](const std::string& f) { return topic_matches(f, t); }));
    }
}

TEST_CASE("the reading of a topic: levels, class, subtopic, subtree", "[model]") {
    const auto m = acme();
    // A verdict refers into the topic: keep the topic alive while using it.
    SECTION("with the cell") {
        const std::string topic = press + "telemetry/hydraulics/pressure";
        const verdict v = m->evaluate(topic, telemetry_ok, false);
        REQUIRE(v.result == outcome::pass);
        CHECK(v.level(0) == "acme");
        CHECK(v.level(1) == "dresden");
        CHECK(v.level(2) == "press-shop");
        CHECK(v.level(3) == "line-2");
        CHECK(v.level(4) == "cell-1");
        CHECK(v.level(5) == "press-7");
        CHECK(v.klass->name == "telemetry");
        CHECK(v.subpath == "hydraulics/pressure");
        CHECK(v.subtree == "acme/dresden");
        CHECK_FALSE(v.command);
    }
    SECTION("without the cell") {
        const std::string topic = press_nocell + "state";
        const verdict v = m->evaluate(topic, state_ok, true);
        REQUIRE(v.result == outcome::pass);
        CHECK(v.level(3) == "line-2");
        CHECK(v.level(4).empty());
        CHECK(v.level(5) == "press-7");
        CHECK(v.klass->name == "state");
        CHECK(v.subpath.empty());
    }
    SECTION("a class after the line (oee under: [line, equipment])") {
        const verdict v = m->evaluate("acme/leipzig/assembly/line-1/oee", oee_ok, true);
        REQUIRE(v.result == outcome::pass);
        CHECK(v.level(3) == "line-1");
        CHECK(v.level(4).empty());
        CHECK(v.level(5).empty());
        CHECK(v.klass->name == "oee");
        CHECK(v.subtree == "acme/leipzig");
    }
    SECTION("a command class") {
        const verdict v = m->evaluate(press + "cmd", cmd_ok, false);
        REQUIRE(v.result == outcome::pass);
        CHECK(v.command);
    }
}

TEST_CASE("invalid topics at every level, with the reason", "[model]") {
    const auto m = acme();
    for (const acme_bad_topic& b : acme_invalid_topics()) {
        INFO(b.topic);
        const verdict v = topic_only(*m, b.topic);
        CHECK(v.result == outcome::violation);
        CHECK(v.code == reason_code::topic_invalid);
        CHECK(v.mqtt_reason() == 0x90);
        CHECK(v.reason == b.reason);
    }
}

TEST_CASE("a violation keeps the levels read before the problem", "[model]") {
    const auto m = acme();
    const verdict v = m->evaluate("acme/dresden/press-shop/line-2/press-7/temprature", "", false);
    REQUIRE(v.violation());
    CHECK(v.level(0) == "acme");
    CHECK(v.level(3) == "line-2");
    CHECK(v.level(4).empty());
    CHECK(v.level(5) == "press-7");
    CHECK(v.klass == nullptr);
    CHECK(v.subtree == "acme/dresden");
    const verdict early = m->evaluate("acme/dresdn/x", "", false);
    CHECK(early.level(0) == "acme");
    CHECK(early.subtree.empty());  // counted as "(outside model)"
}

TEST_CASE("payloads per class", "[model]") {
    const auto m = acme();
    SECTION("valid payloads") {
        CHECK(m->evaluate(press + "telemetry/temperature", telemetry_ok, false).result == outcome::pass);
        CHECK(m->evaluate(press + "telemetry/door", R"({"value": true, "ts": "2024-05-01T12:00:00+02:00"})", false).result ==
              outcome::pass);
        CHECK(m->evaluate(press + "state", state_ok, true).result == outcome::pass);
        CHECK(m->evaluate(press + "oee", oee_ok, true).result == outcome::pass);
        CHECK(m->evaluate(press + "alarm", alarm_ok, false).result == outcome::pass);
        CHECK(m->evaluate(press + "cmd", cmd_ok, false).result == outcome::pass);
        CHECK(m->evaluate(press + "cmd",
                          R"({"command": "set", "request_id": "req-000124", "parameters": {"stroke_mm": 120}, "ts": "2024-05-01T12:00:00Z"})",
                          false)
                  .result == outcome::pass);
    }
    struct bad {
        std::string topic;
        std::string payload;
        bool retain;
        std::string reason;
    };
    const std::vector<bad> cases = {
        {press + "telemetry/temperature", R"({"value": "hot", "ts": "2024-05-01T12:00:00Z"})", false,
         "payload: /value: expected number or boolean, got string"},
        {press + "telemetry/temperature", R"({"value": 21.5})", false, "payload: missing required property 'ts'"},
        {press + "telemetry/temperature", R"({"value": 21.5, "ts": "2024-05-01T12:00:00Z", "colour": "red"})", false,
         "payload: property 'colour' is not allowed"},
        {press + "telemetry/temperature", R"({"value": 21.5, "ts": "yesterday"})", false,
         "payload: /ts: \"yesterday\" is not a valid date-time"},
        {press + "telemetry/temperature", R"({"value": 21.5, "ts": "2024-02-30T12:00:00Z"})", false,
         "payload: /ts: \"2024-02-30T12:00:00Z\" is not a valid date-time"},
        {press + "telemetry/temperature", R"({"value": 21.5, "ts": "2024-05-01T12:00:00Z", "unit": "degrees Celsius, really"})",
         false, "payload: /unit: string longer than 16 characters"},
        {press + "telemetry/temperature", "21.5", false, "payload: expected object, got number"},
        {press + "telemetry/temperature", "", false, "payload: empty (expected a JSON document)"},
        {press + "telemetry/temperature", "{\"value\": 1,}", false,
         "payload: not JSON: at line 1, column 13: syntax error while parsing object key - unexpected '}'; expected string "
         "literal"},
        {press + "state", R"({"state": "exploded", "ts": "2024-05-01T12:00:00Z"})", true,
         "payload: /state: \"exploded\" is not one of [\"running\", \"idle\", \"setup\", \"stopped\", \"fault\", \"maintenance\"]"},
        {press + "oee", R"({"availability": 0.9, "performance": 0.8, "quality": 1.0, "oee": 1.5, "ts": "2024-05-01T12:00:00Z"})",
         true, "payload: /oee: 1.5 is greater than the maximum 1"},
        {press + "oee", R"({"availability": -0.1, "performance": 0.8, "quality": 1.0, "oee": 0.5, "ts": "2024-05-01T12:00:00Z"})",
         true, "payload: /availability: -0.1 is less than the minimum 0"},
        {press + "alarm", R"({"id": "hyd-1", "severity": "critical", "active": true, "ts": "2024-05-01T12:00:00Z"})", false,
         "payload: /id: \"hyd-1\" does not match pattern '^[A-Z]{2,4}-[0-9]{3,5}$'"},
        {press + "cmd", R"({"command": "set", "request_id": "req-000124", "ts": "2024-05-01T12:00:00Z"})", false,
         "payload: missing required property 'parameters'"},
        {press + "cmd", R"({"command": "start", "request_id": "r1", "ts": "2024-05-01T12:00:00Z"})", false,
         "payload: /request_id: string shorter than 8 characters"},
        {press + "telemetry/x", std::string(100, '[') + std::string(100, ']'), false, "payload: nested deeper than 64 levels"},
    };
    for (const bad& b : cases) {
        INFO(b.topic << " " << b.payload);
        const verdict v = m->evaluate(b.topic, b.payload, b.retain);
        CHECK(v.result == outcome::violation);
        CHECK(v.code == reason_code::payload_invalid);
        CHECK(v.mqtt_reason() == 0x99);
        CHECK(v.reason == b.reason);
        CHECK(v.klass != nullptr);
    }
}

TEST_CASE("payload messages that are not JSON say where", "[model]") {
    const auto m = acme();
    const verdict v = m->evaluate(press + "state", "{\"state\": \"running\",\n \"ts\": }", true);
    REQUIRE(v.code == reason_code::payload_invalid);
    CHECK(v.reason.starts_with("payload: not JSON: "));
    CHECK(v.reason.find("line 2") != std::string::npos);
    // Invalid UTF-8 in a JSON string is not JSON either.
    const verdict u = m->evaluate(press + "telemetry/x", "{\"value\": 1, \"ts\": \"\xff\"}", false);
    CHECK(u.code == reason_code::payload_invalid);
}

TEST_CASE("retain rules", "[model]") {
    const auto m = acme();
    SECTION("required (state, oee)") {
        CHECK(m->evaluate(press + "state", state_ok, true).result == outcome::pass);
        const verdict v = m->evaluate(press + "state", state_ok, false);
        CHECK(v.result == outcome::violation);
        CHECK(v.code == reason_code::retain_violation);
        CHECK(v.mqtt_reason() == 0x83);
        CHECK(v.reason == "retain: class 'state' requires retained messages (publish with retain=1)");
        CHECK(m->evaluate("acme/leipzig/assembly/line-1/oee", oee_ok, false).code == reason_code::retain_violation);
    }
    SECTION("forbidden (cmd)") {
        CHECK(m->evaluate(press + "cmd", cmd_ok, false).result == outcome::pass);
        const verdict v = m->evaluate(press + "cmd", cmd_ok, true);
        CHECK(v.code == reason_code::retain_violation);
        CHECK(v.reason == "retain: class 'cmd' forbids retained messages (publish with retain=0)");
    }
    SECTION("any (telemetry, alarm)") {
        CHECK(m->evaluate(press + "telemetry/t", telemetry_ok, true).result == outcome::pass);
        CHECK(m->evaluate(press + "telemetry/t", telemetry_ok, false).result == outcome::pass);
        CHECK(m->evaluate(press + "alarm", alarm_ok, true).result == outcome::pass);
    }
    SECTION("an empty retained payload deletes: allowed in every class, payload not checked") {
        CHECK(m->evaluate(press + "cmd", "", true).result == outcome::pass);
        CHECK(m->evaluate(press + "state", "", true).result == outcome::pass);
        CHECK(m->evaluate(press + "telemetry/t", "", true).result == outcome::pass);
        // ... but the topic still is.
        CHECK(m->evaluate("acme/dresdn/press-shop/line-2/press-7/state", "", true).code == reason_code::topic_invalid);
        // An empty payload without retain is just an invalid payload.
        CHECK(m->evaluate(press + "telemetry/t", "", false).code == reason_code::payload_invalid);
    }
    SECTION("the retain rule is checked before the payload") {
        const verdict v = m->evaluate(press + "state", "not json", false);
        CHECK(v.code == reason_code::retain_violation);
    }
}

TEST_CASE("enforcement modes and their inheritance", "[model]") {
    const auto m = acme();
    // Default: reject.
    CHECK(m->mode_for("acme/dresden/press-shop/line-2/press-7/state") == enforcement::reject);
    // acme/leipzig/# : warn, inherited by everything below.
    CHECK(m->mode_for("acme/leipzig") == enforcement::warn);
    CHECK(m->mode_for("acme/leipzig/assembly/line-1/robot-12/cmd") == enforcement::warn);
    // acme/dresden/assembly/# : quarantine; its sibling press-shop keeps the default.
    CHECK(m->mode_for("acme/dresden/assembly/line-3/robot-1/telemetry/x") == enforcement::quarantine);
    CHECK(m->mode_for("acme/dresden/press-shop/line-3/robot-1/telemetry/x") == enforcement::reject);

    const verdict r = m->evaluate("acme/dresden/press-shop/line-2/press-7/temprature", "", false);
    CHECK(r.mode == enforcement::reject);
    const verdict w = m->evaluate("acme/leipzig/assembly/line-1/robot-12/temprature", "", false);
    CHECK(w.violation());
    CHECK(w.mode == enforcement::warn);
    const verdict q = m->evaluate("acme/dresden/assembly/line-1/robot-12/state", R"({"state": 1})", true);
    CHECK(q.code == reason_code::payload_invalid);
    CHECK(q.mode == enforcement::quarantine);
    // The mode is known for passing messages too.
    CHECK(m->evaluate("acme/leipzig/assembly/line-1/oee", oee_ok, true).mode == enforcement::warn);
    // A wrong site under a mode override: the override still applies (by filter, not by model).
    CHECK(m->evaluate("acme/leipzig/x", "", false).mode == enforcement::warn);
}

TEST_CASE("the most specific override wins, whatever the order in the file", "[model]") {
    const std::string text = R"(
levels:
  - {name: enterprise, names: [acme]}
  - {name: site, names: [dresden, leipzig]}
  - {name: area, any: true}
  - {name: machine, any: true}
classes:
  telemetry:
enforcement:
  mode: warn
  subtrees:
    "acme/+/assembly/#": reject
    "acme/dresden/#": quarantine
    "acme/dresden/assembly/m1/#": warn
)";
    const auto m = model::parse(text, "t.yaml", ".");
    CHECK(m->mode_for("acme/leipzig/paint/m1/telemetry") == enforcement::warn);           // default
    CHECK(m->mode_for("acme/leipzig/assembly/m1/telemetry") == enforcement::reject);      // acme/+/assembly/#
    CHECK(m->mode_for("acme/dresden/paint/m1/telemetry") == enforcement::quarantine);     // acme/dresden/#
    CHECK(m->mode_for("acme/dresden/assembly/m2/telemetry") == enforcement::quarantine);  // literal 'dresden' beats '+'
    CHECK(m->mode_for("acme/dresden/assembly/m1/telemetry") == enforcement::warn);        // deepest
}

TEST_CASE("free subtrees pass unchecked", "[model]") {
    const auto m = acme();
    for (const char* t : {"$SYS/broker/uptime", "$SYS", "sandbox", "sandbox/anything/at/all//", "uns/quarantine/acme/x"}) {
        INFO(t);
        const verdict v = m->evaluate(t, "\xff not json", true);
        CHECK(v.result == outcome::free);
        CHECK(v.reason.empty());
        CHECK(m->is_free(t));
    }
    CHECK(m->evaluate("$SYS/broker/uptime", "", false).subtree == "$SYS/#");
    CHECK(m->evaluate("sandbox/x", "", false).subtree == "sandbox/#");
    CHECK_FALSE(m->is_free("acme/dresden/press-shop/line-2/press-7/state"));
    CHECK_FALSE(m->is_free("sandboxes/x"));
    CHECK_FALSE(m->is_free("uns/other"));
}

TEST_CASE("free filters with wildcards", "[model]") {
    const std::string text = R"(
levels:
  - {name: enterprise, names: [acme]}
  - {name: site, any: true}
  - {name: machine, any: true}
classes:
  data:
free:
  - "+/lab/#"
  - "acme/test/+/data/raw"
enforcement:
  dead_letter: "$quarantine"
)";
    const auto m = model::parse(text, "t.yaml", ".");
    CHECK(m->is_free("acme/lab/x/y"));
    CHECK(m->is_free("other/lab"));
    CHECK(m->is_free("acme/test/m1/data/raw"));
    CHECK_FALSE(m->is_free("acme/test/m1/data/raw/x"));
    CHECK(m->evaluate("acme/test/m1/data/raw/x", "", false).result == outcome::pass);
    CHECK(m->is_free("$quarantine/acme/x"));  // the dead-letter tree
    CHECK(m->quarantine_topic("acme/x/y/data") == "$quarantine/acme/x/y/data");
}

TEST_CASE("optional levels: present first, then skipped; class names first", "[model]") {
    // Equipment accepts any name, so "cell-1" could be an equipment and
    // "state" an equipment too: the documented preference decides.
    const std::string& text = optional_cell_model;
    const auto m = model::parse(text, "t.yaml", ".");
    CHECK(m->warnings().empty());  // `any` overlaps are by design, not warned
    SECTION("cell present") {
        const verdict v = m->evaluate("acme/line-1/cell-1/press-7/state", "", false);
        REQUIRE(v.result == outcome::pass);
        CHECK(v.level(2) == "cell-1");
        CHECK(v.level(3) == "press-7");
        CHECK(v.klass->name == "state");
    }
    SECTION("cell skipped: 'cell-1' is the equipment") {
        const verdict v = m->evaluate("acme/line-1/cell-1/state", "", false);
        REQUIRE(v.result == outcome::pass);
        CHECK(v.level(2).empty());
        CHECK(v.level(3) == "cell-1");
        CHECK(v.klass->name == "state");
    }
    SECTION("a class name where a class may follow is the class") {
        // Two readings: equipment 'x', class telemetry, subtopic 'state'; or
        // cell... no: 'x' is no cell. Equipment 'x' then 'telemetry' is the class.
        const verdict v = m->evaluate("acme/line-1/x/telemetry/state", "", false);
        REQUIRE(v.result == outcome::pass);
        CHECK(v.level(3) == "x");
        CHECK(v.klass->name == "telemetry");
        CHECK(v.subpath == "state");
    }
    SECTION("present first even when both readings complete") {
        // cell 'cell-2', equipment 'telemetry', class 'state'  (preferred)
        // vs cell skipped, equipment 'cell-2', class 'telemetry', subtopic 'state'
        const verdict v = m->evaluate("acme/line-1/cell-2/telemetry/state", "", false);
        REQUIRE(v.result == outcome::pass);
        CHECK(v.level(2) == "cell-2");
        CHECK(v.level(3) == "telemetry");
        CHECK(v.klass->name == "state");
        CHECK(v.subpath.empty());
    }
    SECTION("the preferred reading fails, the other one completes") {
        // cell 'cell-2', equipment 'telemetry', then 'temperature' is no class:
        // dead; cell skipped, equipment 'cell-2', class telemetry: pass.
        const verdict v = m->evaluate("acme/line-1/cell-2/telemetry/temperature", "", false);
        REQUIRE(v.result == outcome::pass);
        CHECK(v.level(2).empty());
        CHECK(v.level(3) == "cell-2");
        CHECK(v.klass->name == "telemetry");
        CHECK(v.subpath == "temperature");
    }
    SECTION("a topic that ends where only the lower reading is complete") {
        const verdict v = m->evaluate("acme/line-1/cell-2/telemetry", "", false);
        REQUIRE(v.result == outcome::pass);
        CHECK(v.level(3) == "cell-2");
        CHECK(v.klass->name == "telemetry");
    }
}

TEST_CASE("two optional levels and classes under several levels", "[model]") {
    const std::string& text = two_optional_levels_model;
    const auto m = model::parse(text, "t.yaml", ".");
    CHECK(m->evaluate("acme/dd/pressing/line-1/m1/data", "", false).result == outcome::pass);
    CHECK(m->evaluate("acme/dd/line-1/m1/data", "", false).result == outcome::pass);
    CHECK(m->evaluate("acme/dd/pressing/m1/data", "", false).result == outcome::pass);
    CHECK(m->evaluate("acme/dd/m1/data", "", false).result == outcome::pass);
    CHECK(m->evaluate("acme/dd/kpi", "", false).result == outcome::pass);
    CHECK(m->evaluate("acme/dd/pressing/kpi", "", false).result == outcome::pass);
    CHECK(m->evaluate("acme/dd/pressing/line-1/kpi", "", false).result == outcome::pass);
    CHECK(m->evaluate("acme/dd/line-1/kpi", "", false).result == outcome::pass);
    CHECK(m->evaluate("acme/dd/line-1/m1/kpi/x", "", false).result == outcome::pass);
    CHECK(m->evaluate("acme/dd/data", "", false).violation());
    CHECK(m->evaluate("acme/dd/pressing/data", "", false).violation());
    CHECK(m->evaluate("acme/dd/line-1/pressing/m1/data", "", false).violation());  // order matters
    const verdict v = m->evaluate("acme/dd/pressing/xx/data", "", false);
    CHECK(v.reason ==
          "level 'line' or 'machine' or data class: 'xx' is not accepted (line: does not match 'line-[0-9]+'; "
          "machine: does not match 'm[0-9]+'; data classes here: kpi)");
}

TEST_CASE("names and a pattern together; any", "[model]") {
    const std::string& text = names_and_pattern_model;
    const auto m = model::parse(text, "t.yaml", ".");
    CHECK(m->evaluate("acme/hq/x/data", "", false).result == outcome::pass);
    CHECK(m->evaluate("acme/plant-dd/x/data", "", false).result == outcome::pass);
    CHECK(m->evaluate("acme/plant-d/x/data", "", false).reason ==
          "level 'site': 'plant-d' is not one of [hq, lab] and does not match 'plant-[a-z]{2}'");
    CHECK(m->evaluate("acme/hq/any thing \xc3\xa9/data", "", false).result == outcome::pass);
}

TEST_CASE("the per-level walk agrees with evaluate()", "[model][walk]") {
    const auto m = acme();
    const std::vector<std::string> pieces = {
        "acme", "dresden", "leipzig", "press-shop", "assembly", "line-2", "line-100", "cell-1", "cell-x",
        "press-7", "robot-12", "press", "telemetry", "state", "oee", "alarm", "cmd", "x", "temperature", "",
        "$SYS", "sandbox"};
    std::mt19937 rng(7);
    int accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        // Mostly well-formed prefixes, with random corruption.
        std::vector<std::string> levels;
        const int len = 1 + static_cast<int>(rng() % 9);
        const char* shape[] = {"acme", "dresden", "press-shop", "line-2", "cell-1", "press-7", "telemetry", "temperature", "x"};
        for (int k = 0; k < len; ++k) levels.push_back(rng() % 4 == 0 ? pieces[rng() % pieces.size()] : shape[k]);
        if (rng() % 3 == 0 && len > 5) levels.erase(levels.begin() + 4);  // drop the cell
        std::string topic;
        for (std::size_t k = 0; k < levels.size(); ++k) topic += (k ? "/" : "") + levels[k];
        if (topic.empty() || m->is_free(topic)) continue;

        const model_node* n = m->root();
        for (const std::string& l : levels) {
            n = m->child(n, l);
            if (n == nullptr) break;
        }
        const verdict v = m->evaluate(topic, "", true);  // empty retained: topic only
        INFO(topic);
        const bool walk_ok = n != nullptr && m->accepting(n);
        CHECK(walk_ok == (v.result == outcome::pass));
        if (walk_ok) {
            ++accepted;
            CHECK(m->class_at(n) == v.klass);
        }
    }
    CHECK(accepted > 1000);
}

namespace {

void check_same_verdict(const verdict& a, const verdict& b) {
    CHECK(a.result == b.result);
    CHECK(a.mode == b.mode);
    CHECK(a.code == b.code);
    CHECK(a.command == b.command);
    CHECK(a.klass == b.klass);
    CHECK(a.reason == b.reason);
    CHECK(a.subpath == b.subpath);
    CHECK(a.subtree == b.subtree);
    for (std::size_t i = 0; i < max_levels; ++i) CHECK(a.level(i) == b.level(i));
}

}  // namespace

TEST_CASE("the per-thread topic cache gives the verdict of a fresh reading", "[model][cache]") {
    const auto m = acme();
    const std::vector<std::string> pieces = {"acme", "dresden", "leipzig", "press-shop", "assembly", "line-2", "cell-1",
                                             "cell-x", "press-7", "robot-12", "telemetry", "state", "oee", "cmd", "x",
                                             "", "sandbox", "$SYS"};
    std::mt19937 rng(11);
    std::vector<std::string> topics;
    for (int i = 0; i < 3000; ++i) {
        const char* shape[] = {"acme", "dresden", "press-shop", "line-2", "cell-1", "press-7", "telemetry", "t", "u"};
        std::string topic;
        const int len = 1 + static_cast<int>(rng() % 9);
        for (int k = 0; k < len; ++k) topic += std::string(k ? "/" : "") + (rng() % 5 == 0 ? pieces[rng() % pieces.size()] : shape[k]);
        if (!topic.empty()) topics.push_back(topic);
    }
    std::sort(topics.begin(), topics.end());
    topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
    const std::vector<std::string> payloads = {telemetry_ok, state_ok, "{}", "not json"};

    // Reference verdicts from a thread of their own: every topic read once,
    // so every one is a cache miss there.
    std::vector<verdict> fresh(topics.size());
    std::thread([&] {
        for (std::size_t i = 0; i < topics.size(); ++i) fresh[i] = m->evaluate(topics[i], payloads[i % 4], i % 3 == 0);
    }).join();

    int passed = 0;
    for (std::size_t i = 0; i < topics.size(); ++i) {
        INFO(topics[i]);
        const verdict first = m->evaluate(topics[i], payloads[i % 4], i % 3 == 0);
        const verdict again = m->evaluate(topics[i], payloads[i % 4], i % 3 == 0);  // from the cache
        check_same_verdict(first, fresh[i]);
        check_same_verdict(again, fresh[i]);
        CHECK(again.level(0).data() == topics[i].data());  // views into the checked topic, not the cache
        if (again.klass != nullptr) ++passed;  // the topic was in the model
    }
    CHECK(passed > 50);
}

TEST_CASE("cached readings belong to one model", "[model][cache]") {
    const auto a = acme();
    const auto b = model::load(acme_path());  // the same file: its own id
    const auto narrow = model::parse("levels:\n  - {name: enterprise, names: [acme]}\n  - {name: site, names: [leipzig]}\n"
                                     "classes:\n  telemetry:\n",
                                     "narrow.yaml", ".");
    const std::string t = "acme/dresden/telemetry";
    const std::string full = press + "telemetry/t";
    for (int round = 0; round < 3; ++round) {
        CHECK(narrow->evaluate(t, "", false).code == reason_code::topic_invalid);
        CHECK(a->evaluate(full, telemetry_ok, false).result == outcome::pass);
        CHECK(narrow->evaluate(full, telemetry_ok, false).result == outcome::violation);
        CHECK(b->evaluate(full, telemetry_ok, false).result == outcome::pass);
    }
    // Counted on every check, hit or miss, under the model's own counters.
    for (int i = 0; i < 5; ++i) (void)b->check(full, telemetry_ok, false);
    CHECK(b->stats().total(model_stats::counter::pass) == 5);
}

TEST_CASE("long topics: read every time, refused beyond the MQTT limit", "[model][cache]") {
    const auto m = acme();
    const std::string sub(300, 'x');  // longer than the cache keeps
    const std::string topic = press + "telemetry/" + sub;
    for (int i = 0; i < 2; ++i) {
        const verdict v = m->evaluate(topic, telemetry_ok, false);
        CHECK(v.result == outcome::pass);
        CHECK(v.subpath == sub);
        CHECK(v.level(5) == "press-7");
    }
    const std::string huge = press + "telemetry/" + std::string(70000, 'y');
    const verdict v = m->evaluate(huge, telemetry_ok, false);
    CHECK(v.code == reason_code::topic_invalid);
    CHECK(v.reason == "topic longer than 65,535 bytes");
}

TEST_CASE("walk primitives", "[model][walk]") {
    const auto m = acme();
    const model_node* n = m->root();
    REQUIRE(n != nullptr);
    CHECK_FALSE(m->accepting(n));
    CHECK(m->child(n, "$SYS") == nullptr);
    CHECK(m->child(n, "") == nullptr);
    CHECK(m->child(nullptr, "acme") == nullptr);
    for (const char* l : {"acme", "dresden", "press-shop", "line-2"}) {
        n = m->child(n, l);
        REQUIRE(n != nullptr);
        CHECK_FALSE(m->absorbing(n));
    }
    const model_node* line_oee = m->child(n, "oee");
    REQUIRE(line_oee != nullptr);
    CHECK(m->accepting(line_oee));
    CHECK(m->class_at(line_oee)->name == "oee");
    n = m->child(n, "press-7");
    REQUIRE(n != nullptr);
    CHECK_FALSE(m->accepting(n));
    const model_node* t = m->child(n, "telemetry");
    REQUIRE(t != nullptr);
    CHECK(m->accepting(t));
    CHECK(m->absorbing(t));
    CHECK(m->child(t, "temperature") == t);
    CHECK(m->child(t, "") == nullptr);
    CHECK(m->child(n, "temprature") == nullptr);
    CHECK(m->node_count() < 50);
}

TEST_CASE("quarantine topic and envelope", "[model]") {
    const auto m = acme();
    const std::string topic = "acme/dresden/assembly/line-1/robot-12/state";
    const verdict v = m->evaluate(topic, R"({"state": 1})", true);
    REQUIRE(v.mode == enforcement::quarantine);
    CHECK(m->quarantine_topic(topic) == "uns/quarantine/" + topic);
    // The re-published message is free (not checked, not quarantined again).
    CHECK(m->evaluate(m->quarantine_topic(topic), "x", false).result == outcome::free);

    const std::string env = model::quarantine_envelope(topic, R"({"state": 1})", true, v);
    CHECK(env ==
          R"({"topic":"acme/dresden/assembly/line-1/robot-12/state","reason":"payload: /state: 1 is not one of [\"running\", \"idle\", \"setup\", \"stopped\", \"fault\", \"maintenance\"]","code":"payload_invalid","class":"state","retain":true,"payload":"{\"state\": 1}"})");
    const verdict b = m->evaluate("acme/dresden/assembly/line-1/robot-12/telemetry/x", std::string("\x00\xff\x01", 3), false);
    const std::string benv = model::quarantine_envelope("acme/dresden/assembly/line-1/robot-12/telemetry/x",
                                                        std::string("\x00\xff\x01", 3), false, b);
    CHECK(benv.find(R"("payload_base64":"AP8B")") != std::string::npos);
    CHECK(benv.find(R"("payload":)") == std::string::npos);
    // A payload that is not UTF-8: the parser's "last read" text is escaped,
    // so that the reason fits an MQTT Reason String and the envelope.
    const std::string junk("\xff\xfe", 2);
    const verdict j = m->evaluate("acme/dresden/assembly/line-1/robot-12/telemetry/x", junk, false);
    CHECK(j.reason.find("\\xFF") != std::string::npos);
    std::string jenv;
    CHECK_NOTHROW(jenv = model::quarantine_envelope("acme/dresden/assembly/line-1/robot-12/telemetry/x", junk, false, j));
    CHECK(jenv.find(R"("payload_base64":"//4=")") != std::string::npos);
    // A topic violation has no class.
    const verdict t = m->evaluate("acme/x", "", false);
    CHECK(model::quarantine_envelope("acme/x", "", false, t).find("\"class\"") == std::string::npos);
}

TEST_CASE("explain", "[model][explain]") {
    const auto m = acme();
    SECTION("a passing topic with the optional cell skipped") {
        const std::string e = m->explain("acme/leipzig/assembly/line-1/robot-12/cmd", std::string_view(cmd_ok));
        INFO(e);
        CHECK(e.find("topic       acme/leipzig/assembly/line-1/robot-12/cmd\n") != std::string::npos);
        CHECK(e.find("free        no\n") != std::string::npos);
        CHECK(e.find("site        'leipzig'        one of [dresden, leipzig]\n") != std::string::npos);
        CHECK(e.find("cell        -                skipped (optional, pattern 'cell-[0-9]{1,2}')\n") != std::string::npos);
        CHECK(e.find("equipment   'robot-12'       pattern '[a-z]+(-[a-z]+)*-[0-9]{1,3}'\n") != std::string::npos);
        CHECK(e.find("class       'cmd'") != std::string::npos);
        CHECK(e.find("schema      schemas/cmd.json\n") != std::string::npos);
        CHECK(e.find("retain      forbidden (this publish: retain=0)\n") != std::string::npos);
        CHECK(e.find("command     yes") != std::string::npos);
        CHECK(e.find("mode        warn (override 'acme/leipzig/#', line ") != std::string::npos);
        CHECK(e.find("payload     valid\n") != std::string::npos);
        CHECK(e.find("verdict     pass\n") != std::string::npos);
    }
    SECTION("a payload violation") {
        const std::string e =
            m->explain(press + "telemetry/temperature", std::string_view(R"({"value": "hot", "ts": "2024-05-01T12:00:00Z"})"));
        INFO(e);
        CHECK(e.find("subtopic    'temperature'\n") != std::string::npos);
        CHECK(e.find("period      10s\n") != std::string::npos);
        CHECK(e.find("payload     invalid: /value: expected number or boolean, got string\n") != std::string::npos);
        CHECK(e.find("verdict     violation: payload_invalid (MQTT 5 reason 0x99)\n") != std::string::npos);
        CHECK(e.find("action      reject: refused") != std::string::npos);
    }
    SECTION("no payload given") {
        const std::string e = m->explain(press + "state");
        CHECK(e.find("payload     not given (schema not checked)\n") != std::string::npos);
        CHECK(e.find("reason      retain: class 'state' requires retained messages") != std::string::npos);
    }
    SECTION("a topic violation shows the levels read so far") {
        const std::string e = m->explain("acme/dresden/assembly/line-2/robot-3/temprature");
        INFO(e);
        CHECK(e.find("equipment   'robot-3'") != std::string::npos);
        CHECK(e.find("mode        quarantine (override 'acme/dresden/assembly/#', line ") != std::string::npos);
        CHECK(e.find("verdict     violation: topic_invalid (MQTT 5 reason 0x90)\n") != std::string::npos);
        CHECK(e.find("reason      after equipment 'robot-3': 'temprature' is not a data class") != std::string::npos);
        CHECK(e.find("action      quarantine: re-published to 'uns/quarantine/acme/dresden/assembly/line-2/robot-3/temprature'") !=
              std::string::npos);
    }
    SECTION("a free topic") {
        const std::string e = m->explain("$SYS/broker/clients");
        CHECK(e.find("free        yes: matches '$SYS/#' (line ") != std::string::npos);
        CHECK(e.find("verdict     free\n") != std::string::npos);
    }
}

TEST_CASE("statistics per subtree and outcome", "[model][stats]") {
    const auto m = model::load(acme_path());  // fresh counters
    (void)m->check(press + "telemetry/t", telemetry_ok, false);
    (void)m->check(press + "telemetry/t", telemetry_ok, false);
    (void)m->check("acme/leipzig/assembly/line-1/oee", oee_ok, false);             // warn, retain
    (void)m->check("acme/dresden/assembly/line-1/robot-1/state", "{}", true);       // quarantine, payload
    (void)m->check("acme/dresden/press-shop/line-1/robot-1/nope", "", false);       // reject, topic
    (void)m->check("acme/hamburg/x", "", false);                                     // outside the model
    (void)m->check("$SYS/broker/uptime", "", false);                                 // free
    (void)m->evaluate(press + "telemetry/t", telemetry_ok, false);                   // not counted

    using c = model_stats::counter;
    const auto rows = m->stats().snapshot();
    REQUIRE(rows.size() == 4);
    CHECK(rows[0].subtree == "$SYS/#");
    CHECK(rows[0][c::free] == 1);
    CHECK(rows[1].subtree == "(outside model)");
    CHECK(rows[1][c::rejected_topic] == 1);
    CHECK(rows[2].subtree == "acme/dresden");
    CHECK(rows[2][c::pass] == 2);
    CHECK(rows[2][c::quarantined_payload] == 1);
    CHECK(rows[2][c::rejected_topic] == 1);
    CHECK(rows[3].subtree == "acme/leipzig");
    CHECK(rows[3][c::warned_retain] == 1);
    CHECK(m->stats().total(c::pass) == 2);
    CHECK(model_stats::outcome_label(c::quarantined_payload) == "quarantined");
    CHECK(model_stats::reason_label(c::quarantined_payload) == "payload_invalid");
    CHECK(model_stats::reason_label(c::pass).empty());

    // Counters survive a reload when the stats object is handed over.
    const auto reloaded = model::load(acme_path(), m->shared_stats());
    (void)reloaded->check(press + "telemetry/t", telemetry_ok, false);
    CHECK(reloaded->stats().total(c::pass) == 3);
}

TEST_CASE("statistics cap the number of subtrees", "[model][stats]") {
    model_stats s(4);
    for (int i = 0; i < 10; ++i) s.add("site-" + std::to_string(i), model_stats::counter::pass);
    const auto rows = s.snapshot();
    REQUIRE(rows.size() == 5);
    CHECK(rows.back().subtree == "site-3");
    CHECK(rows.front().subtree == "(other)");
    CHECK(rows.front()[model_stats::counter::pass] == 6);
    CHECK(s.total(model_stats::counter::pass) == 10);
}

TEST_CASE("concurrent checks on one model", "[model][threads]") {
    const auto m = model::load(acme_path());
    const std::vector<std::pair<std::string, outcome>> work = {
        {press + "telemetry/t", outcome::pass},
        {"acme/dresdn/press-shop/line-2/press-7/state", outcome::violation},
        {"$SYS/x", outcome::free},
        {"acme/leipzig/assembly/line-1/robot-12/alarm", outcome::pass},
    };
    const std::vector<std::string> payloads = {telemetry_ok, state_ok, "", alarm_ok};
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    constexpr int per_thread = 2000;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                const std::size_t k = static_cast<std::size_t>(i + t) % work.size();
                const verdict v = m->check(work[k].first, payloads[k], false);
                if (v.result != work[k].second) ++mismatches;
            }
        });
    }
    for (std::thread& th : threads) th.join();
    CHECK(mismatches == 0);
    std::uint64_t total = 0;
    for (const auto& row : m->stats().snapshot())
        for (std::uint64_t x : row.values) total += x;
    CHECK(total == 4 * per_thread);
}

TEST_CASE("reason codes and names", "[model]") {
    CHECK(mqtt_reason_code(reason_code::none) == 0x00);
    CHECK(mqtt_reason_code(reason_code::topic_invalid) == 0x90);
    CHECK(mqtt_reason_code(reason_code::payload_invalid) == 0x99);
    CHECK(mqtt_reason_code(reason_code::retain_violation) == 0x83);
    CHECK(to_string(outcome::free) == "free");
    CHECK(to_string(enforcement::quarantine) == "quarantine");
    CHECK(to_string(reason_code::retain_violation) == "retain_violation");
    CHECK(to_string(retain_rule::forbidden) == "forbidden");
}

TEST_CASE("prepared filters match exactly like topic_matches", "[model][filters]") {
    const std::vector<std::string> filters = {"#", "+", "a", "a/#", "a/b/#", "a/+", "a/+/c", "+/b/#", "a/b", "$SYS/#",
                                              "a//#", "a/b/c/#", "+/#", "/#", "a/+/#"};
    const std::vector<std::string> levels = {"a", "b", "c", "", "$SYS", "ab"};
    std::mt19937 rng(5);
    for (int i = 0; i < 20000; ++i) {
        std::string topic;
        const int n = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < n; ++k) topic += (k ? "/" : "") + levels[rng() % levels.size()];
        const std::string& f = filters[rng() % filters.size()];
        INFO(f << " vs " << topic);
        CHECK(compiled_filter::make(f).matches(topic) == topic_matches(f, topic));
    }
}
