// The router's retained store as the namespace model's reload uses it:
// a retained message is removed only while it is still the one that was
// checked (a client may replace it meanwhile).
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "broker/router.hpp"

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
