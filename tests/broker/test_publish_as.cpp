// What the broker publishes itself (bridges, OPC UA sources) is held to the
// broker-wide retained limits too, and every refusal is counted.
#include <catch2/catch.hpp>

#include "broker/broker_core.hpp"
#include "broker/publish_as.hpp"
#include "tests/broker/test_support.hpp"

#include <memory>
#include <string>

using namespace strata::broker;

using test::retained;

TEST_CASE("publish_as: a retained message over the broker-wide limits is refused with 0x97", "[publish_as]") {
    config cfg;
    cfg.limits.max_retained_messages = 2;
    cfg.auth.limits.retained = 1;  // a client identity's share; not applied here
    broker_core core(cfg);
    CHECK(publish_as(core, nullptr, retained("plc/1", "a")).what == publish_as_result::outcome::published);
    CHECK(publish_as(core, nullptr, retained("plc/2", "b")).what == publish_as_result::outcome::published);
    const auto r = publish_as(core, nullptr, retained("plc/3", "c"));
    CHECK(r.what == publish_as_result::outcome::over_limit);
    CHECK(r.code == strata::mqtt::reason_code::quota_exceeded);
    CHECK(r.reason.find("limits.max_retained_messages") != std::string::npos);
    CHECK(core.counters().sum().retained_refused[0] == 1);
    // A value that replaces one, or clears one, still goes through.
    CHECK(publish_as(core, nullptr, retained("plc/1", "A")).what == publish_as_result::outcome::published);
    CHECK(publish_as(core, nullptr, retained("plc/2", "")).what == publish_as_result::outcome::published);
    CHECK(publish_as(core, nullptr, retained("plc/3", "c")).what == publish_as_result::outcome::published);
    CHECK(core.routes().retained_totals().messages == 2);
}

TEST_CASE("broker_core::publish: a client identity's share, refusals counted by limit", "[publish_as]") {
    config cfg;
    cfg.auth.limits.retained = 1;
    broker_core core(cfg);
    const std::string anonymous;
    CHECK(core.publish(retained("a/1", "x"), nullptr, nullptr, &anonymous).retained == retain_verdict::stored);
    CHECK(core.publish(retained("a/2", "x"), nullptr, nullptr, &anonymous).retained ==
          retain_verdict::over_identity_messages);
    CHECK(core.counters().sum().retained_refused[2] == 1);
    CHECK(core.publish(retained("a/2", "x")).retained == retain_verdict::stored);  // the broker's own
}
