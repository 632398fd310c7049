// Retained messages sent on SUBSCRIBE are paced by the session: they enter
// its queue only while it is below half its limits, topped up each time the
// writer collects, and each topic's value is read when its turn comes.
// Exercised on a real session of a real broker core (no store).
#include <catch2/catch.hpp>

#include "broker/core/broker_core.hpp"
#include "broker/core/session.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

using namespace strata::broker;
using namespace strata::broker::core;

namespace {

using test::owner;
using test::retained;

struct fixture {
    broker_core core{config{}};
    std::shared_ptr<owner> o = std::make_shared<owner>();
    std::shared_ptr<session> s = std::make_shared<session>(core, "replayer");
    explicit fixture(std::uint32_t max_messages, int topics) {
        queue_limits l;
        l.max_messages = max_messages;
        s->set_queue_limits(l);
        s->attach(o, false);
        for (int i = 0; i < topics; ++i) core.routes().retain(retained("r/" + std::to_string(i), "v" + std::to_string(i)));
    }
    // One writer turn: what the client is sent (QoS 0 subscription).
    std::vector<std::string> collect() {
        std::vector<outgoing> out;
        s->collect(o.get(), out, 1000, steady_clock::now());
        std::vector<std::string> topics;
        for (auto& x : out) topics.push_back(x.d.msg->topic + "=" + x.d.msg->payload);
        return topics;
    }
    std::vector<std::string> drain() {
        std::vector<std::string> all;
        for (int turn = 0; turn < 10'000; ++turn) {
            auto got = collect();
            if (got.empty()) break;
            all.insert(all.end(), got.begin(), got.end());
        }
        std::sort(all.begin(), all.end());
        return all;
    }
    std::uint64_t skipped() const { return const_cast<broker_core&>(core).counters().sum().retained_replay_skipped; }
};

subscription_entry qos0() { return subscription_entry{}; }

std::vector<std::string> expected(int n, int from = 0) {
    std::vector<std::string> v;
    for (int i = from; i < n; ++i) v.push_back("r/" + std::to_string(i) + "=v" + std::to_string(i));
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace

TEST_CASE("a retained replay fills half the queue and is topped up as the client collects", "[replay]") {
    fixture f(10, 100);
    f.s->replay_retained("r/#", qos0());
    CHECK(f.s->queued_messages() == 5);
    CHECK(f.s->replay_pending() == 95);
    CHECK(f.o->notified > 0);
    // Each writer turn takes what is queued; the next one finds it topped up.
    CHECK(f.collect().size() == 5);
    CHECK(f.s->queued_messages() == 0);
    CHECK(f.collect().size() == 5);
    CHECK(f.s->replay_pending() == 90);
    auto rest = f.drain();
    CHECK(rest.size() == 90);
    CHECK(f.s->replay_pending() == 0);
    CHECK(f.skipped() == 0);
}

TEST_CASE("a replayed topic goes out with its newest value; one cleared meanwhile is skipped and counted", "[replay]") {
    fixture f(2, 10);
    f.s->replay_retained("r/#", qos0());
    REQUIRE(f.s->queued_messages() == 1);  // the rest waits in the replay
    auto first = f.collect();
    REQUIRE(first.size() == 1);
    for (int i = 0; i < 10; ++i) f.core.routes().retain(retained("r/" + std::to_string(i), "new"));
    f.core.routes().retain(retained("r/7", ""));
    f.core.routes().retain(retained("r/8", ""));
    // Unless the one already sent was one of them, both cleared topics are
    // still pending.
    const std::size_t cleared = first[0].starts_with("r/7=") || first[0].starts_with("r/8=") ? 1 : 2;
    const auto rest = f.drain();
    CHECK(rest.size() == 9 - cleared);
    CHECK(std::all_of(rest.begin(), rest.end(), [](const std::string& s) { return s.ends_with("=new"); }));
    CHECK(f.skipped() == cleared);
}

TEST_CASE("live messages keep room in the queue while a replay is pending", "[replay]") {
    fixture f(10, 100);
    f.s->replay_retained("r/#", qos0());
    for (int i = 0; i < 5; ++i)
        CHECK(f.s->deliver(retained("live/" + std::to_string(i), "x"), 0, false, {}) == deliver_result::queued);
    CHECK(f.s->dropped() == 0);
    CHECK(f.s->deliver(retained("live/5", "x"), 0, false, {}) == deliver_result::dropped);
    CHECK(f.s->dropped() == 1);
    CHECK(f.drain().size() == 105);
}

TEST_CASE("unsubscribing ends a pending replay; subscribing again starts it over", "[replay]") {
    fixture f(10, 100);
    f.s->replay_retained("r/#", qos0());
    f.s->remember_subscription("r/#", qos0());
    CHECK(f.s->forget_subscription("r/#"));
    CHECK(f.s->replay_pending() == 0);
    CHECK(f.drain().size() == 5);  // what was queued before the UNSUBSCRIBE

    f.s->replay_retained("r/#", qos0());
    f.s->replay_retained("r/#", qos0());
    CHECK(f.drain().size() == 105);  // 5 queued by the first, then all of them again

    // Two different filters: one replay after the other.
    f.s->replay_retained("r/1", qos0());
    f.s->replay_retained("r/+", qos0());
    CHECK(f.drain().size() == 101);
}

TEST_CASE("an offline session's replay waits for its client", "[replay]") {
    fixture f(10, 20);
    f.s->detach(f.o.get());
    f.s->replay_retained("r/#", qos0());
    CHECK(f.s->queued_messages() == 0);
    f.s->attach(f.o, true);
    CHECK(f.drain() == expected(20));
}
