// The admission pipeline (broker/core/admission.hpp): one ordered list of checks
// for everything that enters the tree from outside the broker, and what each
// verdict carries. Uses deploy/namespace/acme.yaml, where acme/dresden/# is
// in reject mode, acme/dresden/assembly/# in quarantine mode and
// acme/leipzig/# in warn mode.
#include <catch2/catch.hpp>

#include "auth/limits.hpp"
#include "broker/core/admission.hpp"
#include "broker/core/broker_core.hpp"
#include "namespace/model_stats.hpp"
#include "test_support.hpp"

#include <memory>
#include <string>

using namespace strata::broker;
using namespace strata::broker::core;
using outcome = admission::outcome;
using strata::mqtt::reason_code;
using test::make_message;
using test::retained;

namespace {

const std::string press = "acme/dresden/press-shop/line-2/cell-1/press-7";  // reject
const std::string leipzig = "acme/leipzig/press-shop/line-1/press-3";       // warn
const std::string assembly = "acme/dresden/assembly/line-2/robot-3";        // quarantine
const std::string telemetry = R"({"value":21.5,"unit":"degC","ts":"2026-12-06T10:00:00Z"})";
const std::string bad_telemetry = R"({"value":"hot","ts":"2026-12-06T10:00:00Z"})";

config plain() {
    config c;
    c.persistence.enabled = false;
    return c;
}

void use_acme(broker_core& core) {
    core.set_model(strata::ns::model::load(STRATA_SOURCE_DIR "/deploy/namespace/acme.yaml"));
}

}  // namespace

TEST_CASE("admission: where nobody but the broker may publish", "[admission]") {
    config cfg = plain();
    cfg.access = {{true, access_rule::action::publish, "sandbox/locked/#"}};
    broker_core core(cfg);
    use_acme(core);
    for (const std::string topic : {"$SYS/broker/uptime", "sandbox/locked/valve", "uns/quarantine/forged", "a/+/b"}) {
        INFO(topic);
        const auto a = admit(core, publisher{}, make_message(topic, "x"));
        CHECK(a.what == outcome::denied);
        CHECK(a.code == reason_code::not_authorized);
        CHECK_FALSE(a.passed());
    }
    CHECK(admit(core, publisher{}, make_message("sandbox/open/valve", "x")).what == outcome::published);
    CHECK(core.routes().retained_totals().messages == 0);
}

TEST_CASE("admission: the grants come before the rate and the model", "[admission]") {
    config cfg = plain();
    cfg.policy.roles["line2"] = {{.deny = false, .what = strata::auth::verb::publish, .filter = press + "/#"}};
    cfg.policy.users["olga"] = {"line2"};
    broker_core core(cfg);
    use_acme(core);
    const auto grants = core.security().policy()->compile("olga", "olga-1");
    REQUIRE(grants);
    strata::auth::identity_limits limits;
    limits.publish_rate = 1;  // one message, then the bucket is empty
    strata::auth::identity_registry registry(limits);
    const auto state = registry.acquire("olga");
    REQUIRE(state);
    grant_memo memo;
    const std::string olga_id = "olga";
    publisher olga{.grants = grants.get(), .identity = &olga_id, .limits = state.get(), .memo = &memo};

    // Not granted: denied before the rate is charged and before the model
    // reads the payload (which it would refuse).
    using strata::ns::model_stats;
    const auto warned = core.model()->stats().total(model_stats::counter::warned_payload);
    CHECK(admit(core, olga, make_message(leipzig + "/telemetry/t", bad_telemetry)).what == outcome::denied);
    CHECK(core.model()->stats().total(model_stats::counter::warned_payload) == warned);
    // Granted: the model refuses the payload (reject mode), which costs the rate's one message.
    const auto rejected = admit(core, olga, make_message(press + "/telemetry/t", bad_telemetry));
    CHECK(rejected.what == outcome::rejected);
    CHECK(rejected.code == reason_code::payload_format_invalid);
    CHECK_FALSE(rejected.reason.empty());
    const auto limited = admit(core, olga, make_message(press + "/telemetry/t", telemetry));
    CHECK(limited.what == outcome::rate_limited);
    CHECK(limited.code == reason_code::quota_exceeded);
    CHECK(limited.reason == "over this identity's publish rate");
}

TEST_CASE("admission: the model's modes", "[admission]") {
    broker_core core(plain());
    use_acme(core);
    const auto ok = admit(core, publisher{}, make_message(press + "/telemetry/t", telemetry));
    CHECK(ok.what == outcome::published);
    CHECK(ok.reason.empty());
    const auto warned = admit(core, publisher{}, make_message(leipzig + "/telemetry/t", bad_telemetry));
    CHECK(warned.what == outcome::published);
    CHECK_FALSE(warned.reason.empty());
    const auto q = admit(core, publisher{}, make_message(assembly + "/telemetry/t", bad_telemetry));
    CHECK(q.what == outcome::quarantined);
    CHECK(q.code == reason_code::success);
    CHECK(q.copy->topic == "uns/quarantine/" + assembly + "/telemetry/t");
    CHECK(q.copy->payload.find(q.reason) != std::string::npos);  // the envelope says why
    CHECK_FALSE(q.reason.empty());
    CHECK(q.passed());
}

TEST_CASE("admission: a will is checked without being routed", "[admission]") {
    broker_core core(plain());
    use_acme(core);
    message_ptr will = make_message(assembly + "/telemetry/t", bad_telemetry);
    const auto a = admit_will(core, publisher{}, will);
    CHECK(a.what == outcome::quarantined);
    CHECK(will->topic == "uns/quarantine/" + assembly + "/telemetry/t");  // what the will will publish
    message_ptr rejected = make_message(press + "/telemetry/t", bad_telemetry);
    CHECK(admit_will(core, publisher{}, rejected).what == outcome::rejected);
    message_ptr forged = make_message("uns/quarantine/x", "{}");
    const auto denied = admit_will(core, publisher{}, forged);
    CHECK(denied.what == outcome::denied);
    CHECK(denied.reason == "not authorized to publish the will message");
}

TEST_CASE("admission: a retained message over the broker-wide limits is refused with 0x97", "[admission]") {
    config cfg = plain();
    cfg.limits.max_retained_messages = 2;
    cfg.auth.limits.retained = 1;  // a client identity's share; not applied to the broker's own publishers
    broker_core core(cfg);
    CHECK(admit(core, publisher{}, retained("plc/1", "a")).what == outcome::published);
    CHECK(admit(core, publisher{}, retained("plc/2", "b")).what == outcome::published);
    const auto r = admit(core, publisher{}, retained("plc/3", "c"));
    CHECK(r.what == outcome::over_limit);
    CHECK(r.code == reason_code::quota_exceeded);
    CHECK(r.reason.find("limits.max_retained_messages") != std::string::npos);
    CHECK(core.counters().sum().retained_refused[0] == 1);
    // A value that replaces one, or clears one, still goes through.
    CHECK(admit(core, publisher{}, retained("plc/1", "A")).what == outcome::published);
    CHECK(admit(core, publisher{}, retained("plc/2", "")).what == outcome::published);
    CHECK(admit(core, publisher{}, retained("plc/3", "c")).what == outcome::published);
    CHECK(core.routes().retained_totals().messages == 2);
}

TEST_CASE("broker_core::publish: a client identity's share, refusals counted by limit", "[admission]") {
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
