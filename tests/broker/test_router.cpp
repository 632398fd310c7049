// The router's retained store as the namespace model's reload uses it:
// a retained message is removed only while it is still the one that was
// checked (a client may replace it meanwhile); and publish() with a model:
// the verdict of the routing walk decides whether a message is retained.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "broker/router.hpp"
#include "namespace/model.hpp"

using namespace strata::broker;

namespace {

message_ptr retained(const std::string& topic, const std::string& payload) {
    auto m = std::make_shared<message>();
    m->topic = topic;
    m->payload = payload;
    m->retain = true;
    return m;
}

std::vector<std::string> payloads(const router& r, const std::string& filter) {
    std::vector<std::string> out;
    r.for_each_retained(filter, [&](const message_ptr& m) { out.push_back(m->payload); });
    return out;
}

}  // namespace

TEST_CASE("erase_retained_if_same removes only the message it was given", "[router]") {
    router r;
    const auto first = retained("acme/dresden/press-7/state", "first");
    r.retain(first);
    const auto other = retained("acme/dresden/press-8/state", "other");
    r.retain(other);

    const auto replacement = retained("acme/dresden/press-7/state", "second");
    r.retain(replacement);
    CHECK_FALSE(r.erase_retained_if_same(first));  // replaced meanwhile: kept
    CHECK(payloads(r, "acme/dresden/press-7/state") == std::vector<std::string>{"second"});

    CHECK(r.erase_retained_if_same(replacement));
    CHECK(payloads(r, "acme/#") == std::vector<std::string>{"other"});
    CHECK_FALSE(r.erase_retained_if_same(replacement));  // already gone
    CHECK(r.retained_count() == 1);
}

TEST_CASE("publish with a model: checked in the routing walk, retained only when admitted", "[router]") {
    const auto model = strata::ns::model::parse(R"(
levels:
  - {name: enterprise, names: [acme]}
  - {name: site, names: [dresden, leipzig]}
  - {name: machine, pattern: "press-[0-9]+"}
classes:
  state: {retain: required}
enforcement:
  mode: reject
  subtrees: {"acme/leipzig/#": warn}
)",
                                                "t.yaml", ".");
    router r;
    const auto publish = [&](const message_ptr& m, strata::ns::verdict& v) { return r.publish(m, nullptr, model.get(), &v); };

    strata::ns::verdict pass;
    const auto ok = retained("acme/dresden/press-7/state", "on");
    CHECK(publish(ok, pass).admitted);
    CHECK(pass.result == strata::ns::outcome::pass);
    CHECK(pass.level(2) == "press-7");
    CHECK(pass.topic.data() == ok->topic.data());

    strata::ns::verdict refused;
    const auto bad = retained("acme/dresden/press-x/state", "bad");
    CHECK_FALSE(publish(bad, refused).admitted);
    CHECK(refused.code == strata::ns::reason_code::topic_invalid);
    CHECK(refused.reason == "level 'machine': 'press-x' does not match 'press-[0-9]+'");

    strata::ns::verdict warned;
    const auto odd = retained("acme/leipzig/drill/state", "odd");
    CHECK(publish(odd, warned).admitted);  // warn: passed on
    CHECK(warned.violation());
    CHECK(warned.mode == strata::ns::enforcement::warn);

    CHECK(payloads(r, "acme/#").size() == 2);
    CHECK(payloads(r, "acme/dresden/press-x/state").empty());
    CHECK(payloads(r, "acme/leipzig/drill/state") == std::vector<std::string>{"odd"});

    // Without a model nothing is checked.
    CHECK(r.publish(bad).admitted);
    CHECK(payloads(r, "acme/dresden/press-x/state") == std::vector<std::string>{"bad"});
}
