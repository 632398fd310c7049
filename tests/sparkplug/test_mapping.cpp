#include "bridges/sparkplug/mapping.hpp"

#include <catch2/catch.hpp>

using namespace strata::bridges::sparkplug;

namespace {

metric_rule rule(std::string name, std::string cls, std::string subtopic = {}, std::string unit = {}) {
    metric_rule r;
    r.name = std::move(name);
    r.data_class = std::move(cls);
    r.subtopic = std::move(subtopic);
    r.unit = std::move(unit);
    r.at_class = false;
    return r;
}

}  // namespace

TEST_CASE("device rules and metric rules", "[sparkplug][mapping]") {
    std::vector<device_rule> rules(3);
    rules[0].group = "dresden";
    rules[0].edge_node = "+";
    rules[0].device = "press-7";
    rules[0].topic = "acme/dresden/press-shop/{edge_node}/{device}";
    rules[0].metrics = {rule("Temperature", "telemetry", "temperature", "degC"), rule("Motor/*", "telemetry"),
                        rule("*", "telemetry")};
    rules[1].group = "dresden";
    rules[1].device = "+";
    rules[1].topic = "acme/dresden/assembly/line-1/{device}";
    rules[2].group = "dresden";
    rules[2].topic = "acme/dresden/press-shop/{edge_node}";

    CHECK(find_rule(rules, "dresden", "line-2", "press-7") == &rules[0]);
    CHECK(find_rule(rules, "dresden", "line-2", "robot-1") == &rules[1]);
    CHECK(find_rule(rules, "dresden", "line-2", "") == &rules[2]);
    CHECK(find_rule(rules, "leipzig", "line-2", "press-7") == nullptr);

    CHECK(find_metric(rules[0], "Temperature") == &rules[0].metrics[0]);
    CHECK(find_metric(rules[0], "Motor/Speed") == &rules[0].metrics[1]);
    CHECK(find_metric(rules[0], "Other") == &rules[0].metrics[2]);
    CHECK(subtopic_of(rules[0].metrics[0], "Temperature") == "temperature");
    CHECK(subtopic_of(rules[0].metrics[1], "Motor/Speed") == "Speed");
    CHECK(subtopic_of(rules[0].metrics[2], "Motor/Speed") == "Motor/Speed");
    CHECK(metric_topic("acme/x/press-7", rules[0].metrics[0], "Temperature") == "acme/x/press-7/telemetry/temperature");
    metric_rule state = rule("State", "state");
    state.at_class = true;
    CHECK(metric_topic("acme/x/press-7", state, "State") == "acme/x/press-7/state");
    CHECK_FALSE(subtopic_of(rules[0].metrics[2], "a/+/b"));
    CHECK_FALSE(subtopic_of(rules[0].metrics[2], "a//b"));
    CHECK_FALSE(subtopic_of(rules[0].metrics[2], "bad\xff"));
    CHECK_FALSE(subtopic_of(rules[0].metrics[2], std::string("nul\0x", 5)));
}

TEST_CASE("topic templates", "[sparkplug][mapping]") {
    const std::string t = "acme/dresden/press-shop/{edge_node}/{device}";
    CHECK(check_template(t).empty());
    CHECK_FALSE(check_template("acme/line-{edge_node}").empty());
    CHECK_FALSE(check_template("acme/+/x").empty());
    CHECK_FALSE(check_template("$SYS/{group}").empty());
    CHECK_FALSE(check_template("acme//x").empty());
    CHECK(expand(t, "g", "line-2", "press-7") == "acme/dresden/press-shop/line-2/press-7");
    CHECK_FALSE(expand(t, "g", "line+2", "press-7"));
    CHECK_FALSE(expand(t, "g", "line-2", ""));
    CHECK(template_filter(t) == "acme/dresden/press-shop/+/+");
    const auto ids = match_template(t, "acme/dresden/press-shop/line-2/press-7");
    REQUIRE(ids);
    CHECK(ids->edge_node == "line-2");
    CHECK(ids->device == "press-7");
    CHECK_FALSE(match_template(t, "acme/dresden/assembly/line-2/press-7"));
    CHECK_FALSE(match_template(t, "acme/dresden/press-shop/line-2"));
}
