// Grants that name model levels and classes (`where:`, `class:`), on the
// shipped example model: an optional cell level, OEE per line and per
// machine, commands as a class.
#include "auth/policy.hpp"
#include "namespace/model.hpp"

#include <catch2/catch.hpp>

using namespace strata::auth;
namespace ns = strata::ns;

namespace {

// The shipped example model: the grants are checked against its readings.
std::shared_ptr<const ns::model> acme() {
    static const auto m = ns::model::load(std::string(STRATA_SOURCE_DIR) + "/deploy/namespace/acme.yaml");
    return m;
}

grant where(bool deny, verb v, std::vector<level_condition> w, std::vector<std::string> classes = {},
            std::string filter = {}) {
    return grant{.deny = deny, .what = v, .filter = std::move(filter), .where = std::move(w),
                 .classes = std::move(classes), .at = "strata.yaml:1: roles.x[0]"};
}

grant of_class(verb v, std::vector<std::string> classes) { return where(false, v, {}, std::move(classes)); }

grant by_filter(bool deny, verb v, std::string f) { return grant{.deny = deny, .what = v, .filter = std::move(f)}; }

// The seed's story: an analyst sees OEE everywhere and commands nothing;
// an operator commands line 2 only; an engineer the site except the
// safety gates, under a cell or not.
policy_config story() {
    policy_config c;
    c.roles["analyst"] = {of_class(verb::subscribe, {"oee"})};
    c.roles["operator"] = {
        where(false, verb::subscribe, {{"site", {"dresden"}}, {"line", {"line-2"}}}),
        where(false, verb::command, {{"site", {"dresden"}}, {"area", {"press-shop"}}, {"line", {"line-2"}}}),
    };
    c.roles["engineer"] = {
        by_filter(false, verb::subscribe, "acme/dresden/#"),
        where(false, verb::command, {{"site", {"dresden"}}}),
        where(true, verb::command, {{"equipment", {"safety-gate-*"}}}),
    };
    c.roles["device"] = {where(false, verb::publish, {{"equipment", {"{client_id}"}}}, {"telemetry", "state"})};
    c.users["ana"] = {"analyst"};
    c.users["olga"] = {"operator"};
    c.users["erik"] = {"engineer"};
    c.users["plc"] = {"device"};
    return c;
}

}  // namespace

TEST_CASE("a class grant reaches its class at every level it may follow") {
    const policy p(story(), acme());
    const auto ana = p.compile("ana", "ana-1");
    CHECK(ana->may_receive("acme/dresden/press-shop/line-2/oee"));
    CHECK(ana->may_receive("acme/dresden/press-shop/line-2/press-7/oee"));
    CHECK(ana->may_receive("acme/leipzig/assembly/line-1/cell-3/robot-12/oee"));
    CHECK_FALSE(ana->may_receive("acme/dresden/press-shop/line-2/press-7/telemetry/temp"));
    CHECK_FALSE(ana->may_receive("acme/dresden/press-shop/line-2/press-7/cmd/setpoint"));
    // Outside the model: not OEE, whatever the last level says.
    CHECK_FALSE(ana->may_receive("acme/berlin/press-shop/line-2/oee"));
    CHECK_FALSE(ana->may_receive("sandbox/oee"));
    CHECK_FALSE(ana->may_publish("acme/dresden/press-shop/line-2/press-7/cmd/setpoint", true));
}

TEST_CASE("a delivery check takes the routing walk's reading of the topic") {
    const policy p(story(), acme());
    const auto ana = p.compile("ana", "ana-1");
    const auto m = acme();
    const auto same = [&](const std::string& topic, std::string_view payload) {
        const ns::verdict v = m->evaluate(topic, payload, true);
        INFO(topic << " " << v.reason);
        CHECK(ana->may_receive(topic, m.get(), &v) == ana->may_receive(topic));
        return ana->may_receive(topic, m.get(), &v);
    };
    const std::string oee = R"({"availability": 0.9, "performance": 0.9, "quality": 0.9, "oee": 0.73, "ts": "2026-12-07T10:00:00Z"})";
    CHECK(same("acme/dresden/press-shop/line-2/oee", oee));
    // A payload the model refuses (delivered in warn mode) leaves the reading of its topic whole.
    CHECK(same("acme/leipzig/assembly/line-1/oee", "not json"));
    CHECK_FALSE(same("acme/dresden/press-shop/line-2/press-7/telemetry/temp", "{}"));
    CHECK_FALSE(same("acme/berlin/press-shop/line-2/oee", oee));
    CHECK_FALSE(same("sandbox/oee", oee));
    // A reading by another model (a reload in between) is not taken: the topic is read again.
    const auto other = ns::model::parse("levels: [{name: a, any: true}]\nclasses: {oee: {}}\n", "other.yaml", ".");
    const ns::verdict foreign = other->evaluate("x/oee", "", false);
    CHECK_FALSE(ana->may_receive("sandbox/oee", other.get(), &foreign));
}

TEST_CASE("a where grant holds whether or not an optional level is present") {
    const policy p(story(), acme());
    const auto olga = p.compile("olga", "olga-1");
    CHECK(olga->may_publish("acme/dresden/press-shop/line-2/press-7/cmd/setpoint", true));
    CHECK(olga->may_publish("acme/dresden/press-shop/line-2/cell-1/press-7/cmd/setpoint", true));
    CHECK_FALSE(olga->may_publish("acme/dresden/press-shop/line-3/press-7/cmd/setpoint", true));
    CHECK_FALSE(olga->may_publish("acme/dresden/assembly/line-2/robot-1/cmd/start", true));
    // A command grant is not a publish grant.
    CHECK_FALSE(olga->may_publish("acme/dresden/press-shop/line-2/press-7/telemetry/x", false));
    CHECK(olga->may_receive("acme/dresden/assembly/line-2/robot-1/state"));
}

TEST_CASE("a where deny cannot be skipped around with or without a cell") {
    const policy p(story(), acme());
    const auto erik = p.compile("erik", "erik-1");
    CHECK(erik->may_publish("acme/dresden/press-shop/line-2/press-7/cmd/setpoint", true));
    CHECK_FALSE(erik->may_publish("acme/dresden/press-shop/line-2/safety-gate-1/cmd/open", true));
    CHECK_FALSE(erik->may_publish("acme/dresden/press-shop/line-2/cell-4/safety-gate-12/cmd/open", true));
    // A topic the model cannot read to the end: the deny still holds where
    // the gate was read, and where the levels it names were never reached.
    CHECK_FALSE(erik->may_publish("acme/dresden/press-shop/line-2/safety-gate-1/bogus/open", true));
    CHECK_FALSE(erik->may_publish("acme/dresden/nowhere/line-2/safety-gate-1/cmd/open", true));
    CHECK_FALSE(erik->may_publish("acme/leipzig/press-shop/line-2/press-7/cmd/setpoint", true));
}

TEST_CASE("placeholders in where names, and values that would widen them") {
    const policy p(story(), acme());
    CHECK(p.compile("plc", "press-7")->may_publish("acme/dresden/press-shop/line-2/press-7/telemetry/t", false));
    CHECK_FALSE(p.compile("plc", "press-8")->may_publish("acme/dresden/press-shop/line-2/press-7/telemetry/t", false));
    CHECK_FALSE(p.compile("plc", "press-7")->may_publish("acme/dresden/press-shop/line-2/press-7/cmd/x", true));
    // A client id that is a pattern must not become one.
    CHECK_FALSE(p.compile("plc", "press-*")->may_publish("acme/dresden/press-shop/line-2/press-7/telemetry/t", false));
    CHECK_FALSE(p.compile("plc", "")->may_publish("acme/dresden/press-shop/line-2/press-7/telemetry/t", false));
}

TEST_CASE("subscriptions against level and class grants") {
    const policy p(story(), acme());
    const auto ana = p.compile("ana", "ana-1");
    // Every reading of these filters ends in the oee class.
    CHECK(ana->may_subscribe("acme/+/+/+/oee") == subscribe_verdict::checked);
    CHECK(ana->may_subscribe("acme/+/+/+/+/oee") == subscribe_verdict::checked);
    CHECK(ana->may_subscribe("acme/dresden/press-shop/line-2/cell-1/press-7/oee") == subscribe_verdict::checked);
    // Wider than OEE: partial (auth.wide_subscriptions decides).
    CHECK(ana->may_subscribe("acme/#") == subscribe_verdict::partial);
    CHECK(ana->may_subscribe("acme/+/+/+/+/+") == subscribe_verdict::partial);
    // Never OEE.
    CHECK(ana->may_subscribe("acme/+/+/+/press-7/telemetry/#") == subscribe_verdict::refused);
    // The fifth level may be the line's oee class, and all below it is OEE.
    CHECK(ana->may_subscribe("acme/+/+/+/+/telemetry/#") == subscribe_verdict::partial);
    CHECK(ana->may_subscribe("sandbox/#") == subscribe_verdict::refused);

    const auto olga = p.compile("olga", "olga-1");
    CHECK(olga->may_subscribe("acme/dresden/press-shop/line-2/#") == subscribe_verdict::checked);
    CHECK(olga->may_subscribe("acme/dresden/+/line-2/+/state") == subscribe_verdict::checked);
    CHECK(olga->may_subscribe("acme/dresden/+/+/#") == subscribe_verdict::partial);
    CHECK(olga->may_subscribe("acme/leipzig/#") == subscribe_verdict::refused);
}

TEST_CASE("grants are compiled against the model") {
    auto bad_level = story();
    bad_level.roles["operator"].push_back(where(false, verb::command, {{"plant", {"dresden"}}}));
    CHECK_THROWS_WITH(policy(bad_level, acme()),
                      "strata.yaml:1: roles.x[0]: where: the model has no level 'plant' (its levels: enterprise, "
                      "site, area, line, cell, equipment)");
    auto bad_class = story();
    bad_class.roles["analyst"].push_back(of_class(verb::subscribe, {"kpi"}));
    CHECK_THROWS_WITH(policy(bad_class, acme()),
                      "strata.yaml:1: roles.x[0]: class: the model has no class 'kpi' (its classes: telemetry, "
                      "state, oee, alarm, cmd, reply)");
    CHECK_THROWS_AS(policy(story(), nullptr), policy_error);
    CHECK(policy(story(), acme()).uses_model());
}
