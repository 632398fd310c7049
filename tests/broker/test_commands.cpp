// Which topics are commands, decided on the namespace model's classes, and
// the command grant applied whatever the enforcement mode: for a client's
// PUBLISH (handle_publish.cpp) and for what the broker publishes on behalf
// of a bridge or an OPC UA source (admission.hpp), which share
// broker_core::is_command. Uses deploy/namespace/acme.yaml, where
// acme/leipzig/# is in warn mode and acme/dresden/# in reject mode.
#include <catch2/catch.hpp>

#include "broker/core/broker_core.hpp"
#include "broker/core/admission.hpp"

#include <memory>
#include <string>

using namespace strata::broker;
using namespace strata::broker::core;

namespace {

const std::string line1 = "acme/leipzig/assembly/line-1";
const std::string cmd = R"({"command":"stop","request_id":"req-00000001","ts":"2026-11-25T10:00:00Z"})";
const std::string telemetry = R"({"value":21.5,"unit":"degC","ts":"2026-11-25T10:00:00Z"})";

config with_roles() {
    config c;
    c.persistence.enabled = false;
    // may publish in Leipzig, holds no command grant
    c.policy.roles["integrator"] = {{.deny = false, .what = strata::auth::verb::publish, .filter = "acme/leipzig/#"}};
    c.policy.roles["commander"] = {{.deny = false, .what = strata::auth::verb::publish, .filter = "acme/leipzig/#"},
                                   {.deny = false, .what = strata::auth::verb::command, .filter = "acme/leipzig/#"}};
    c.policy.users["bridge-in"] = {"integrator"};
    c.policy.users["opcua-in"] = {"commander"};
    return c;
}

message_ptr msg(const std::string& topic, const std::string& payload) {
    auto m = std::make_shared<message>();
    m->topic = topic;
    m->payload = payload;
    return m;
}

}  // namespace

TEST_CASE("commands: the model's command classes, also where a topic does not fit the model", "[commands]") {
    broker_core core{with_roles()};
    core.set_model(strata::ns::model::load(STRATA_SOURCE_DIR "/deploy/namespace/acme.yaml"));

    // topics the model reads: their class decides
    CHECK(core.is_command(line1 + "/robot-1/cmd"));
    CHECK(core.is_command(line1 + "/cell-1/robot-1/cmd/stop"));
    CHECK_FALSE(core.is_command(line1 + "/robot-1/telemetry"));
    CHECK_FALSE(core.is_command(line1 + "/robot-1/telemetry/cmd"));  // a telemetry value named cmd
    CHECK_FALSE(core.is_command(line1 + "/oee"));
    // topics it cannot read (ROBOT is no equipment name; a level too many or
    // too few): a level named like a command class makes them commands
    CHECK(core.is_command(line1 + "/ROBOT/cmd"));
    CHECK(core.is_command(line1 + "/ROBOT/cmd/stop"));
    CHECK(core.is_command(line1 + "/cell-1/robot-1/extra/cmd"));
    CHECK(core.is_command("acme/leipzig/cmd"));
    CHECK(core.is_command("acme/lyon/assembly/line-1/robot-1/cmd"));
    CHECK_FALSE(core.is_command(line1 + "/ROBOT/telemetry"));
    CHECK_FALSE(core.is_command(line1 + "/ROBOT/cmdx"));
    // free subtrees are outside the model
    CHECK_FALSE(core.is_command("sandbox/devices/plc-1/cmd"));

    core.set_model(nullptr);
    CHECK_FALSE(core.is_command(line1 + "/ROBOT/cmd"));  // no model, no command subtrees
}

TEST_CASE("commands: admission needs the command grant in warn mode too", "[commands]") {
    broker_core core{with_roles()};
    core.set_model(strata::ns::model::load(STRATA_SOURCE_DIR "/deploy/namespace/acme.yaml"));
    const auto bridge = core.security().policy()->compile("bridge-in", "$bridge/up");
    const auto opcua = core.security().policy()->compile("opcua-in", "opcua-in");
    REQUIRE(bridge);
    REQUIRE(opcua);
    using outcome = admission::outcome;

    for (const std::string& topic : {line1 + "/ROBOT/cmd", line1 + "/robot-1/cmd", std::string("acme/leipzig/cmd")}) {
        INFO(topic);
        const auto denied = admit(core, publisher{.grants = bridge.get()}, msg(topic, cmd));
        CHECK(denied.what == outcome::denied);
        CHECK(denied.code == strata::mqtt::reason_code::not_authorized);
        // with the command grant: published, the model only warns where the topic does not fit
        CHECK(admit(core, publisher{.grants = opcua.get()}, msg(topic, cmd)).what == outcome::published);
    }
    // what is not a command passes warn mode with a publish grant alone
    const auto warned = admit(core, publisher{.grants = bridge.get()}, msg(line1 + "/ROBOT/telemetry", telemetry));
    CHECK(warned.what == outcome::published);
    CHECK_FALSE(warned.reason.empty());
}
