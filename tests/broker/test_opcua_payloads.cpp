// OPC UA values and commands as the namespace model sees them: payload
// templates, the status and timestamp rules, commands read at a value path,
// replies, their config errors, and the check of all of it against the
// example model (deploy/namespace/acme.yaml).
#include "broker/config.hpp"
#include "broker/hosts/opcua_check.hpp"
#include "broker/hosts/opcua_json.hpp"
#include "namespace/model.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>

#ifndef STRATA_SOURCE_DIR
#error "STRATA_SOURCE_DIR must point at the repository root (for deploy/namespace/acme.yaml)"
#endif

using namespace strata::broker;
using namespace strata::broker::hosts;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;
using nlohmann::json;
namespace ua = strata::bridges::opcua;

namespace {

constexpr const char* press = "acme/dresden/press-shop/line-2/cell-1/press-7";

ua::date_time at(std::int64_t unix_s) { return ua::date_time::from_unix_us(unix_s * 1'000'000); }

ua::data_value value_of(ua::variant v, std::uint32_t status = 0) {
    ua::data_value dv;
    dv.value = std::move(v);
    if (status != 0) dv.status = ua::status_code{status};
    dv.source_timestamp = at(1'700'000'000);
    dv.server_timestamp = at(1'700'000'001);
    return dv;
}

// The first source of a config text (errors name "t.yaml").
opcua_config source_of(const std::string& yaml) { return parse_config(yaml, "t.yaml").opcua.at(0); }

std::string error_of(const std::string& yaml) {
    try {
        (void)parse_config(yaml, "t.yaml");
    } catch (const config_error& e) {
        return e.what();
    }
    return "(no error)";
}

const std::string head = "opcua:\n"
                         "  - name: plc\n"
                         "    endpoint: \"opc.tcp://h:4840\"\n";

std::shared_ptr<const strata::ns::model> acme() {
    static const auto m = strata::ns::model::load(std::string(STRATA_SOURCE_DIR) + "/deploy/namespace/acme.yaml");
    return m;
}

std::string fit_error(const std::string& yaml) {
    try {
        check_opcua_fits_model(parse_config(yaml, "t.yaml"), *acme());
    } catch (const config_error& e) {
        return e.what();
    }
    return "(fits)";
}

}  // namespace

TEST_CASE("opcua template: the keys it names, in its order, and nothing else", "[opcua][template]") {
    const opcua_config o = source_of(head + "    template: {value: value, ts: source_ts, unit: unit, quality: status}\n"
                                            "    mappings:\n"
                                            "      - {node: \"ns=2;i=1\", topic: a/t, unit: degC}\n"
                                            "      - {node: \"ns=2;i=2\", topic: a/c}\n");
    REQUIRE(o.mappings[0].payload);
    CHECK(o.mappings[0].payload->at == "t.yaml:4: opcua[0].template");
    const opcua_mapping& t = o.mappings[0];
    CHECK(opcua_payload(value_of(ua::variant{71.5}), &*t.payload, t.unit) ==
          R"({"value":71.5,"ts":"2023-11-14T22:13:20Z","unit":"degC","quality":"good"})");
    // A mapping without a unit leaves the key out; the source's template applies to it too.
    const opcua_mapping& c = o.mappings[1];
    REQUIRE(c.payload);
    CHECK(opcua_payload(value_of(ua::variant{std::uint32_t{7}}), &*c.payload, c.unit) ==
          R"({"value":7,"ts":"2023-11-14T22:13:20Z","quality":"good"})");
    // Without a template: the payload as before.
    const json plain = json::parse(opcua_payload(value_of(ua::variant{true})));
    CHECK(plain == json{{"value", true}, {"source_ts", "2023-11-14T22:13:20Z"}, {"server_ts", "2023-11-14T22:13:21Z"},
                        {"status", "Good"}});
}

TEST_CASE("opcua template: status severities and their names", "[opcua][template]") {
    const opcua_config o = source_of(head + "    template:\n"
                                            "      value: value\n"
                                            "      quality: status\n"
                                            "      state: {status: {good: OK, bad: FAULT}}\n"
                                            "      why: status_name\n"
                                            "      code: status_code\n"
                                            "    mappings: [{node: \"ns=2;i=1\", topic: a/b}]\n");
    const opcua_template& t = *o.mappings[0].payload;
    const auto payload = [&](std::uint32_t status) {
        return json::parse(opcua_payload(value_of(ua::variant{1.0}, status), &t));
    };
    const json good = payload(0);
    CHECK(good["quality"] == "good");
    CHECK(good["state"] == "OK");
    CHECK(good["why"] == "Good");
    CHECK(good["code"] == 0);
    const json uncertain = payload(0x40000000);  // UncertainInitialValue... any Uncertain severity
    CHECK(uncertain["quality"] == "uncertain");
    CHECK(uncertain["state"] == "uncertain");  // not renamed: the default stays
    const json bad = payload(0x808C0000);       // BadSensorFailure
    CHECK(bad["quality"] == "bad");
    CHECK(bad["state"] == "FAULT");
    CHECK(bad["why"] == "BadSensorFailure");
    CHECK(bad["code"] == 0x808C0000u);
}

TEST_CASE("opcua template: timestamps fall back so that they are always there", "[opcua][template]") {
    const opcua_config o = source_of(head + "    template: {value: value, ts: source_ts, server: server_ts}\n"
                                            "    mappings: [{node: \"ns=2;i=1\", topic: a/b}]\n");
    const opcua_template& t = *o.mappings[0].payload;
    ua::data_value dv = value_of(ua::variant{1.0});
    dv.source_timestamp.reset();
    json j = json::parse(opcua_payload(dv, &t, "", at(1'800'000'000)));
    CHECK(j["ts"] == "2023-11-14T22:13:21Z");  // the server's
    CHECK(j["server"] == "2023-11-14T22:13:21Z");
    dv.server_timestamp = ua::date_time{};  // a zero DateTime is no time
    j = json::parse(opcua_payload(dv, &t, "", at(1'800'000'000)));
    CHECK(j["ts"] == "2027-01-15T08:00:00Z");  // when it was received
    CHECK(j["server"] == "2027-01-15T08:00:00Z");
}

TEST_CASE("opcua template: config errors name the file and line", "[opcua][template][config]") {
    const std::string maps = "    mappings: [{node: \"ns=2;i=1\", topic: a/b}]\n";
    CHECK_THAT(error_of(head + "    template: value\n" + maps),
               StartsWith("t.yaml:4: opcua[0].template: expected a map of JSON keys to what each holds"));
    CHECK_THAT(error_of(head + "    template: {value: value, ts: timestamp}\n" + maps),
               StartsWith("t.yaml:4: opcua[0].template.ts:") && Contains("source_ts"));
    CHECK_THAT(error_of(head + "    template: {ts: source_ts}\n" + maps),
               Equals("t.yaml:4: opcua[0].template: a template needs a key that holds the value (such as `value: value`)"));
    CHECK_THAT(error_of(head + "    template: {value: value, q: {status: {fine: x}}}\n" + maps),
               StartsWith("t.yaml:4: opcua[0].template.q.status: unknown key 'fine'"));
    CHECK_THAT(error_of(head + "    template: {value: value}\n"
                               "    mappings:\n"
                               "      - {node: \"ns=2;i=1\", topic: a/b,\n"
                               "         unit: degC}\n"),
               Equals("t.yaml:7: opcua[0].mappings[0].unit: the payload template (t.yaml:4: opcua[0].template) has no "
                      "key for the unit (add one such as `unit: unit`)"));
    CHECK_THAT(error_of(head + "    mappings: [{node: \"ns=2;i=1\", topic: a/b, unit: degC}]\n"),
               StartsWith("t.yaml:4: opcua[0].mappings[0].unit: a unit is published by a payload template"));
    // A mapping's own template replaces the source's.
    const opcua_config o = source_of(head + "    template: {value: value}\n"
                                            "    mappings:\n"
                                            "      - {node: \"ns=2;i=1\", topic: a/b, unit: bar, template: {v: value, u: unit}}\n");
    CHECK(o.mappings[0].payload->at == "t.yaml:6: opcua[0].mappings[0].template");
    CHECK(opcua_payload(value_of(ua::variant{2.0}), &*o.mappings[0].payload, o.mappings[0].unit) ==
          R"({"v":2.0,"u":"bar"})");
}

TEST_CASE("opcua writes: the value at a path of a command, and its request id", "[opcua][writes]") {
    const opcua_config o = source_of(head + "    writes:\n"
                                            "      - {topic: a/cmd/set, node: \"ns=2;i=7\"}\n"
                                            "      - {topic: a/cmd/sp, node: \"ns=2;i=8\", value: parameters.value,\n"
                                            "         reply_topic: a/reply/sp}\n"
                                            "      - {topic: a/cmd/x, node: \"ns=2;i=9\", value: p.v, request_id: meta.id}\n");
    const opcua_write& bare = o.writes[0];
    const opcua_write& cmd = o.writes[1];
    CHECK_FALSE(bare.command_shape());
    CHECK(bare.reply_topic == "a/cmd/set/reply");
    CHECK(cmd.reply_topic == "a/reply/sp");
    CHECK(cmd.value_path == std::vector<std::string>{"parameters", "value"});
    CHECK(cmd.at == "t.yaml:6: opcua[0].writes[1]");

    // Bare values, as before.
    CHECK(opcua_read_command("55.5", bare).value == json(55.5));
    CHECK(opcua_read_command(R"({"value": [1, 2]})", bare).value == json{1, 2});
    CHECK(opcua_read_command("nope", bare).error == "the payload is not JSON");

    // The model's command shape.
    auto c = opcua_read_command(
        R"({"command":"set","request_id":"req-00000001","ts":"2026-01-01T00:00:00Z","parameters":{"value":55.5}})", cmd);
    CHECK(c.value == json(55.5));
    CHECK(c.request_id == "req-00000001");
    c = opcua_read_command(R"({"command":"set","request_id":"req-00000002","parameters":{}})", cmd);
    CHECK_FALSE(c.value);
    CHECK(c.error == "the command has no parameters.value");
    CHECK(c.request_id == "req-00000002");  // a refusal still answers the request
    c = opcua_read_command(R"({"request_id":"r","parameters":7})", cmd);
    CHECK(c.error == "the command has no parameters.value");
    c = opcua_read_command("55.5", cmd);
    CHECK(c.error == "expected a command object with the value at parameters.value");
    CHECK_FALSE(c.request_id);
    c = opcua_read_command(R"({"request_id": 12, "parameters": {"value": null}})", cmd);
    CHECK(c.value == json(nullptr));  // there: whether null fits the node is the conversion's to say
    CHECK_FALSE(c.request_id);        // not a string: not echoed
    c = opcua_read_command(R"({"meta": {"id": "abc"}, "p": {"v": true}})", o.writes[2]);
    CHECK(c.value == json(true));
    CHECK(c.request_id == "abc");
}

TEST_CASE("opcua writes: replies in the model's shape and as before", "[opcua][writes]") {
    const opcua_config o = source_of(head + "    writes:\n"
                                            "      - {topic: a/cmd/set, node: \"ns=2;i=7\"}\n"
                                            "      - {topic: a/cmd/sp, node: \"ns=2;i=8\", value: parameters.value}\n");
    const auto t = at(1'767'225'600);
    CHECK(opcua_reply(o.writes[0], std::nullopt, write_result::ok, "Good", "", t) == R"({"status":"Good"})");
    CHECK(json::parse(opcua_reply(o.writes[0], std::nullopt, write_result::refused, "BadTypeMismatch", "Double: expected a number", t)) ==
          json{{"status", "BadTypeMismatch"}, {"error", "Double: expected a number"}});
    CHECK(json::parse(opcua_reply(o.writes[1], std::string("req-00000001"), write_result::ok, "Good", "", t)) ==
          json{{"request_id", "req-00000001"}, {"status", "ok"}, {"opcua_status", "Good"}, {"ts", "2026-01-01T00:00:00Z"}});
    CHECK(json::parse(opcua_reply(o.writes[1], std::nullopt, write_result::refused, "", "the payload is not JSON", t)) ==
          json{{"status", "refused"}, {"detail", "the payload is not JSON"}, {"ts", "2026-01-01T00:00:00Z"}});
    CHECK(json::parse(opcua_reply(o.writes[1], std::string("r"), write_result::failed, "BadNotConnected", "down", t))["status"] ==
          "failed");
}

TEST_CASE("opcua writes: config errors", "[opcua][writes][config]") {
    CHECK_THAT(error_of(head + "    writes: [{topic: a/cmd, node: \"ns=2;i=7\", value: \"parameters..value\"}]\n"),
               Equals("t.yaml:4: opcua[0].writes[0].value: expected keys joined by '.', such as parameters.value "
                      "(got 'parameters..value')"));
    CHECK_THAT(error_of(head + "    writes: [{topic: a/cmd, node: \"ns=2;i=7\", request_id: id}]\n"),
               StartsWith("t.yaml:4: opcua[0].writes[0]: request_id is read from commands in the model's shape"));
    CHECK_THAT(error_of(head + "    writes: [{topic: a/cmd, node: \"ns=2;i=7\", reply_topic: a/cmd}]\n"),
               StartsWith("t.yaml:4: opcua[0].writes[0]: reply_topic must differ from topic"));
    CHECK_THAT(error_of(head + "    writes: [{topic: a/cmd, node: \"ns=2;i=7\", reply_topic: a/+}]\n"),
               StartsWith("t.yaml:4: opcua[0].writes[0].reply_topic: expected a topic name without wildcards"));
}

TEST_CASE("opcua and the model: what can never pass stops the config", "[opcua][model]") {
    const std::string src = head + "    template: {value: value, ts: source_ts, unit: unit, quality: status}\n";
    const std::string good_write = "    writes:\n"
                                   "      - {topic: " + std::string(press) + "/cmd/sp, node: \"ns=2;i=8\",\n"
                                   "         value: parameters.value, reply_topic: " + press + "/reply/sp}\n";
    // The shipped shape fits: a node and a browse prefix, a command with its reply.
    CHECK(fit_error(src + "    mappings:\n"
                          "      - {node: \"ns=2;i=1\", topic: " + press + "/telemetry/temp, unit: degC}\n"
                          "      - {browse: Objects/PLC1, topic_prefix: " + press + "/telemetry/plc}\n" + good_write) ==
          "(fits)");
    // Without a template the payload has keys the telemetry schema forbids.
    CHECK_THAT(fit_error(head + "    mappings:\n"
                                "      - {node: \"ns=2;i=1\", topic: " + press + "/telemetry/temp}\n"),
               StartsWith("t.yaml:5: opcua[0].mappings[0]: the namespace model (") &&
                   Contains("refuses every value published on '" + std::string(press) + "/telemetry/temp'") &&
                   Contains("without a template the payload is {value, source_ts, server_ts, status}"));
    // A template without the required ts: the schema's complaint and the template's place.
    CHECK_THAT(fit_error(head + "    template: {value: value, quality: status}\n"
                                "    mappings:\n"
                                "      - {node: \"ns=2;i=1\", topic: " + press + "/telemetry/temp}\n"),
               StartsWith("t.yaml:6: opcua[0].mappings[0]:") && Contains("ts") &&
                   Contains("the payload template is at t.yaml:4: opcua[0].template"));
    // Status names outside the model's quality enum.
    CHECK_THAT(fit_error(head + "    template: {value: value, ts: source_ts, quality: {status: {good: fine}}}\n"
                                "    mappings: [{node: \"ns=2;i=1\", topic: " + press + "/telemetry/temp}]\n"),
               Contains("fine"));
    // A topic the model does not read; a free topic is not checked.
    CHECK_THAT(fit_error(src + "    mappings: [{node: \"ns=2;i=1\", topic: acme/dresden/press-shop/line-2/press-7/temp}]\n"),
               Contains("'temp' is not a data class"));
    CHECK(fit_error(head + "    mappings: [{node: \"ns=2;i=1\", topic: sandbox/anything}]\n") == "(fits)");
    // A retained value on a class that forbids retaining.
    CHECK_THAT(fit_error(src + "    mappings: [{node: \"ns=2;i=1\", topic: " + press + "/reply/x}]\n"),
               Contains("retain"));
    // Writes: bare values on the cmd class, replies inside it, a command topic outside the model.
    CHECK_THAT(fit_error(src + "    writes: [{topic: " + press + "/cmd/sp, node: \"ns=2;i=8\", reply_topic: " + press +
                         "/reply/sp}]\n"),
               StartsWith("t.yaml:5: opcua[0].writes[0]: the namespace model (") &&
                   Contains("refuses a bare value") && Contains("set `value:`"));
    CHECK_THAT(fit_error(src + "    writes: [{topic: " + press + "/cmd/sp, node: \"ns=2;i=8\", value: parameters.value}]\n"),
               Contains("refuses the replies published on '" + std::string(press) + "/cmd/sp/reply'") &&
                   Contains("set reply_topic"));
    CHECK_THAT(fit_error(src + "    writes: [{topic: acme/cmd, node: \"ns=2;i=8\", value: v}]\n"),
               Contains("does not read the command topic 'acme/cmd'"));
}

TEST_CASE("opcua and the model: the shipped examples fit the shipped model", "[opcua][model]") {
    for (const char* name : {"edge.yaml", "demo.yaml"}) {
        INFO(name);
        const config c = load_config(std::string(STRATA_SOURCE_DIR) + "/deploy/opcua/" + name);
        REQUIRE(c.namespace_model == std::string(STRATA_SOURCE_DIR) + "/deploy/namespace/acme.yaml");
        CHECK_NOTHROW(check_opcua_fits_model(c, *strata::ns::model::load(c.namespace_model)));
        for (const auto& o : c.opcua) {
            for (const auto& m : o.mappings) CHECK(m.payload);
            for (const auto& w : o.writes) CHECK(w.command_shape());
        }
    }
}
