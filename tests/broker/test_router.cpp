// The router's retained store: as the namespace model's reload uses it (a
// retained message is removed only while it is still the one that was
// checked; a client may replace it meanwhile); publish() with a model (the
// verdict of the routing walk decides whether a message is retained); the
// retained limits (broker-wide and per identity) and the slots a retained
// replay reads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "broker/core/router.hpp"
#include "namespace/model.hpp"
#include "test_support.hpp"

using namespace strata::broker;
using namespace strata::broker::core;

namespace {

using test::retained;

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

namespace {

retained_limits small_limits(std::uint64_t messages, std::uint64_t bytes, std::uint64_t identity_messages = 0,
                             std::uint64_t identity_bytes = 0) {
    retained_limits l;
    l.max_messages = messages;
    l.max_bytes = bytes;
    l.identity_messages = identity_messages;
    l.identity_bytes = identity_bytes;
    return l;
}

}  // namespace

TEST_CASE("the retained limits refuse new topics, never a clear or a replacement that is no larger", "[router]") {
    router r;
    r.set_retained_limits(small_limits(3, 1000));
    // weight = topic (3) + payload
    CHECK(r.retain(retained("t/1", "aaaa")) == retain_verdict::stored);
    CHECK(r.retain(retained("t/2", "bbbb")) == retain_verdict::stored);
    CHECK(r.retain(retained("t/3", "cccc")) == retain_verdict::stored);
    CHECK(r.retain(retained("t/4", "dddd")) == retain_verdict::over_messages);
    CHECK(payloads(r, "t/4").empty());
    CHECK(r.retain(retained("t/1", "AAAA")) == retain_verdict::stored);  // replaced: no new topic
    CHECK(r.retain(retained("t/2", "")) == retain_verdict::stored);      // cleared
    CHECK(r.retain(retained("t/4", "dddd")) == retain_verdict::stored);  // room again
    CHECK(r.retained_totals().messages == 3);
    CHECK(r.retained_totals().bytes == 3 * 7);
    // '$' topics are the broker's own: never counted, never refused.
    CHECK(r.retain(retained("$SYS/x", "1")) == retain_verdict::stored);
    CHECK(r.retained_totals().messages == 3);
    CHECK(r.retained_count() == 4);
}

TEST_CASE("the retained bytes limit: growth is refused, shrinking always works", "[router]") {
    router r;
    r.set_retained_limits(small_limits(100, 100));
    CHECK(r.retain(retained("t/1", std::string(47, 'a'))) == retain_verdict::stored);  // 50 bytes
    CHECK(r.retain(retained("t/2", std::string(37, 'b'))) == retain_verdict::stored);  // 40 bytes
    CHECK(r.retain(retained("t/3", std::string(17, 'c'))) == retain_verdict::over_bytes);
    CHECK(r.retain(retained("t/1", std::string(58, 'a'))) == retain_verdict::over_bytes);  // +11
    CHECK(r.retain(retained("t/1", std::string(57, 'a'))) == retain_verdict::stored);     // +10: exactly full
    CHECK(r.retained_totals().bytes == 100);
    CHECK(r.retain(retained("t/1", "x")) == retain_verdict::stored);
    CHECK(r.retained_totals().bytes == 44);
    CHECK(r.retain(retained("t/3", std::string(17, 'c'))) == retain_verdict::stored);
}

TEST_CASE("each identity's share counts the topics it set last", "[router]") {
    router r;
    r.set_retained_limits(small_limits(100, 1 << 20, 2, 30));
    const std::string alice = "alice", bob = "bob", anonymous;
    const auto put = [&](const std::string& topic, const std::string& payload, const std::string* who) {
        auto m = retained(topic, payload);
        return r.publish(m, nullptr, nullptr, nullptr, who).retained;
    };
    CHECK(put("a/1", "x", &alice) == retain_verdict::stored);
    CHECK(put("a/2", "x", &alice) == retain_verdict::stored);
    CHECK(put("a/3", "x", &alice) == retain_verdict::over_identity_messages);
    CHECK(put("a/1", "y", &alice) == retain_verdict::stored);  // its own topic again
    CHECK(put("b/1", "x", &bob) == retain_verdict::stored);
    CHECK(put("n/1", "x", &anonymous) == retain_verdict::stored);
    CHECK(put("n/2", "x", &anonymous) == retain_verdict::stored);
    CHECK(put("n/3", "x", &anonymous) == retain_verdict::over_identity_messages);
    // Bob takes over one of Alice's topics: it counts for him now.
    CHECK(put("a/2", "z", &bob) == retain_verdict::stored);
    CHECK(put("a/3", "x", &alice) == retain_verdict::stored);
    CHECK(put("b/2", "x", &bob) == retain_verdict::over_identity_messages);
    // Bytes: 30 per identity (bob holds b/1 and a/2, 4 bytes each).
    CHECK(put("b/1", std::string(24, 'q'), &bob) == retain_verdict::over_identity_bytes);
    CHECK(put("b/1", std::string(23, 'q'), &bob) == retain_verdict::stored);
    // The broker's own (null identity): broker-wide limits only.
    CHECK(put("s/1", "x", nullptr) == retain_verdict::stored);
    CHECK(r.retained_totals().messages == 7);  // a/1-3, b/1, n/1-2, s/1
    // A cleared topic leaves its identity's share.
    CHECK(put("a/2", "", &alice) == retain_verdict::stored);
    CHECK(put("b/2", "x", &bob) == retain_verdict::stored);
}

TEST_CASE("a message over a retained limit is neither retained nor delivered", "[router]") {
    router r;
    r.set_retained_limits(small_limits(1, 1 << 20));
    CHECK(r.publish(retained("t/1", "a")).retained == retain_verdict::stored);
    const auto refused = r.publish(retained("t/2", "b"));
    CHECK(refused.retained == retain_verdict::over_messages);
    CHECK(refused.delivered == 0);
    CHECK(payloads(r, "t/#") == std::vector<std::string>{"a"});
}

TEST_CASE("recovery takes every stored message whatever the limits; then they apply", "[router]") {
    router r;
    r.set_retained_limits(small_limits(2, 1 << 20));
    for (int i = 0; i < 4; ++i) CHECK(r.retain(retained("t/" + std::to_string(i), "v"), nullptr, false) == retain_verdict::stored);
    CHECK(r.retained_totals().messages == 4);
    CHECK(r.retain(retained("t/9", "v")) == retain_verdict::over_messages);
    CHECK(r.retain(retained("t/0", "w")) == retain_verdict::stored);  // replacing still works
    for (int i = 0; i < 3; ++i) r.retain(retained("t/" + std::to_string(i), ""));
    CHECK(r.retain(retained("t/9", "v")) == retain_verdict::stored);
}

TEST_CASE("a retained snapshot reads each topic's value when asked: newest, or null once cleared", "[router]") {
    router r;
    r.retain(retained("s/1", "one"));
    r.retain(retained("s/2", "two"));
    r.retain(retained("s/3", "three"));
    auto slots = r.retained_snapshot("s/#");
    REQUIRE(slots.size() == 3);
    r.retain(retained("s/2", "TWO"));
    r.retain(retained("s/3", ""));
    r.retain(retained("s/3", "new"));  // a new value after the clear is a new slot
    std::vector<message_ptr> values;
    r.current(slots, values);
    std::vector<std::string> seen;
    for (const auto& m : values) seen.push_back(m ? m->payload : "(cleared)");
    std::sort(seen.begin(), seen.end());
    CHECK(seen == std::vector<std::string>{"(cleared)", "TWO", "one"});
}
