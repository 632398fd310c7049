// Back-pressure (broker/core/flow_gate.hpp): a client session whose queue is
// full holds the flow gates of the publishers that feed it instead of
// dropping their QoS 1/2 messages, lets them go once it drained to three
// quarters of its limits, and the slow-consumer check deals with one that
// stays full. A real session of a real broker core (no store).
#include <catch2/catch.hpp>

#include "broker/core/broker_core.hpp"
#include "broker/core/flow_gate.hpp"
#include "broker/core/session.hpp"
#include "test_support.hpp"

#include <memory>
#include <string>
#include <vector>

using namespace strata::broker;
using namespace strata::broker::core;

namespace {

using test::owner;

struct publisher_gate {
    int opened = 0;
    std::shared_ptr<flow_gate> gate = std::make_shared<flow_gate>([this] { ++opened; });
};

struct fixture {
    broker_core core{config{}};
    std::shared_ptr<owner> o = std::make_shared<owner>();
    std::shared_ptr<session> s = std::make_shared<session>(core, "dashboard");
    fixture() {
        queue_limits l;
        l.max_messages = 8;
        l.hold_publishers = true;
        s->set_queue_limits(l);
        s->attach(o, false);
    }
    deliver_result put(int i, flow_gate* g, std::uint8_t qos = 1) {
        return s->deliver(test::make_message("acme/t", std::to_string(i), false, qos), qos, false, {}, nullptr, g);
    }
    // Sends up to `n` and acknowledges them.
    std::vector<std::string> take(std::size_t n) {
        std::vector<outgoing> out;
        s->collect(o.get(), out, 1000, steady_clock::now(), n);
        std::vector<std::string> got;
        for (auto& x : out) {
            got.push_back(x.d.msg->payload);
            if (x.d.qos == 1) s->on_puback(x.packet_id);
        }
        return got;
    }
};

}  // namespace

TEST_CASE("a full queue holds the publisher instead of dropping, and releases it at three quarters", "[backpressure]") {
    fixture f;
    publisher_gate a, b;
    for (int i = 0; i < 8; ++i) CHECK(f.put(i, a.gate.get()) == deliver_result::queued);
    CHECK_FALSE(a.gate->held());
    // The ninth is queued over the limit; each publisher is held once.
    CHECK(f.put(8, a.gate.get()) == deliver_result::queued);
    CHECK(f.put(9, b.gate.get()) == deliver_result::queued);
    CHECK(f.put(10, a.gate.get()) == deliver_result::queued);
    CHECK(a.gate->held());
    CHECK(b.gate->held());
    CHECK(f.s->pressure().publishers_held == 2);
    CHECK(f.s->queued_messages() == 11);
    CHECK(f.s->dropped() == 0);
    // 11 -> 7: above 6 (three quarters of 8), still held.
    CHECK(f.take(4).size() == 4);
    CHECK(a.opened == 0);
    CHECK(f.take(1).size() == 1);
    CHECK(a.opened == 1);
    CHECK(b.opened == 1);
    CHECK_FALSE(a.gate->held());
    CHECK(f.s->pressure().publishers_held == 0);
    // Nothing was lost, in order.
    const auto rest = f.take(100);
    CHECK(rest == std::vector<std::string>{"5", "6", "7", "8", "9", "10"});
}

TEST_CASE("QoS 0, offline sessions and the broker's own messages are still dropped when full", "[backpressure]") {
    fixture f;
    publisher_gate a;
    for (int i = 0; i < 8; ++i) CHECK(f.put(i, a.gate.get()) == deliver_result::queued);
    CHECK(f.put(8, a.gate.get(), 0) == deliver_result::dropped);  // QoS 0
    CHECK(f.put(9, nullptr) == deliver_result::dropped);          // no gate: the broker's own
    CHECK_FALSE(a.gate->held());
    f.s->detach(f.o.get());
    CHECK(f.put(10, a.gate.get()) == deliver_result::dropped);    // offline
    CHECK_FALSE(a.gate->held());
    CHECK(f.s->dropped() == 3);
}

TEST_CASE("a subscriber going offline releases the publishers it held", "[backpressure]") {
    fixture f;
    publisher_gate a;
    for (int i = 0; i < 9; ++i) f.put(i, a.gate.get());
    CHECK(a.gate->held());
    CHECK(f.s->detach(f.o.get()));
    CHECK(a.opened == 1);
    CHECK_FALSE(a.gate->held());
}

TEST_CASE("the slow-consumer check disconnects with 0x97 or drops, and releases the publishers", "[backpressure]") {
    const auto after = std::chrono::milliseconds(100);
    SECTION("disconnect") {
        fixture f;
        publisher_gate a;
        for (int i = 0; i < 9; ++i) f.put(i, a.gate.get());
        const auto t0 = steady_clock::now();
        CHECK(f.s->check_slow(t0, after, true) == slow_action::none);  // not yet
        CHECK(f.s->check_slow(t0 + after, after, true) == slow_action::disconnected);
        CHECK(f.o->kicked == 1);
        CHECK(f.o->kicked_with == strata::mqtt::reason_code::quota_exceeded);
        CHECK(a.opened == 1);
        // Until it is gone, what does not fit is dropped (no new hold).
        CHECK(f.put(9, a.gate.get()) == deliver_result::dropped);
        CHECK_FALSE(a.gate->held());
        CHECK(f.s->check_slow(t0 + 2 * after, after, true) == slow_action::none);  // acted once
    }
    SECTION("drop until it drained") {
        fixture f;
        publisher_gate a;
        for (int i = 0; i < 9; ++i) f.put(i, a.gate.get());
        CHECK(f.s->check_slow(steady_clock::now() + after, after, false) == slow_action::dropping);
        CHECK(f.o->kicked == 0);
        CHECK(a.opened == 1);
        CHECK(f.put(9, a.gate.get()) == deliver_result::dropped);
        CHECK(f.s->pressure().slow);
        CHECK(f.s->pressure().slow_dropped == 1);
        // Drained to three quarters: back to holding.
        f.take(3);
        CHECK_FALSE(f.s->pressure().slow);
        for (int i = 10; i < 12; ++i) CHECK(f.put(i, a.gate.get()) == deliver_result::queued);
        CHECK(f.put(12, a.gate.get()) == deliver_result::queued);
        CHECK(a.gate->held());
    }
}
