// A bridge's outbox is a session with the drop-oldest or refuse policy and
// optionally latest-only retained values; these are the queue rules it
// relies on, exercised on a real session of a real broker core (no store).
#include <catch2/catch.hpp>

#include "broker/core/broker_core.hpp"
#include "broker/core/session.hpp"
#include "test_support.hpp"

#include <memory>
#include <string>
#include <vector>

using namespace strata::broker;
using namespace strata::broker::core;

namespace {

using test::owner;
message_ptr msg(const std::string& topic, const std::string& payload, bool retain = false) {
    return test::make_message(topic, payload, retain);
}

std::vector<std::string> drain(session& s, const owner& o) {
    std::vector<outgoing> out;
    s.collect(&o, out, 1000, steady_clock::now());
    std::vector<std::string> payloads;
    for (auto& x : out) {
        payloads.push_back(x.d.msg->payload);
        s.on_puback(x.packet_id);
    }
    return payloads;
}

struct fixture {
    broker_core core{config{}};
    std::shared_ptr<owner> o = std::make_shared<owner>();
    std::shared_ptr<session> s = std::make_shared<session>(core, "$bridge/test");
    explicit fixture(queue_limits l) {
        s->set_queue_limits(l);
        s->attach(o, false);
    }
    deliver_result put(const message_ptr& m) { return s->deliver(m, 1, m->retain, {}); }
};

queue_limits limits(when_full p, std::uint64_t bytes, bool latest = false) {
    queue_limits l;
    l.max_messages = 1'000'000;
    l.max_bytes = bytes;
    l.policy = p;
    l.latest_only_retained = latest;
    return l;
}

}  // namespace

TEST_CASE("drop_oldest makes room by dropping the oldest queued messages, counted", "[outbox]") {
    fixture f(limits(when_full::drop_oldest, 30));  // three messages of 10 bytes
    for (int i = 0; i < 5; ++i) CHECK(f.put(msg("t/", "payload" + std::to_string(i))) == deliver_result::queued);
    const auto b = f.s->backlog();
    CHECK(b.messages == 3);
    CHECK(b.bytes == 30);
    CHECK(b.dropped == 2);
    CHECK(drain(*f.s, *f.o) == std::vector<std::string>{"payload2", "payload3", "payload4"});
    // Larger than the whole buffer: dropped itself.
    CHECK(f.put(msg("t/", std::string(40, 'x'))) == deliver_result::dropped);
}

TEST_CASE("refuse keeps what is queued and refuses the new message", "[outbox]") {
    fixture f(limits(when_full::refuse, 20));
    CHECK(f.put(msg("t/", "payload0")) == deliver_result::queued);
    CHECK(f.put(msg("t/", "payload1")) == deliver_result::queued);
    CHECK(f.put(msg("t/", "payload2")) == deliver_result::refused);
    CHECK(f.s->backlog().refused == 1);
    CHECK(drain(*f.s, *f.o) == std::vector<std::string>{"payload0", "payload1"});
    CHECK(f.put(msg("t/", "payload3")) == deliver_result::queued);
}

TEST_CASE("latest-only keeps the newest retained value per topic in place of the older", "[outbox]") {
    fixture f(limits(when_full::drop_oldest, 1 << 20, true));
    f.put(msg("t/state", "s1", true));
    f.put(msg("t/count", "c1"));
    f.put(msg("t/state", "s2", true));
    f.put(msg("t/other", "o1", true));
    f.put(msg("t/state", "s3", true));
    f.put(msg("t/count", "c2"));  // not retained: every value kept
    const auto b = f.s->backlog();
    CHECK(b.messages == 4);
    CHECK(b.superseded == 2);
    CHECK(b.bytes == 4 * 9);
    CHECK(drain(*f.s, *f.o) == std::vector<std::string>{"c1", "o1", "s3", "c2"});
    CHECK(f.s->backlog().messages == 0);
    // Once sent, a value is not superseded any more: the next one queues.
    f.put(msg("t/state", "s4", true));
    CHECK(drain(*f.s, *f.o) == std::vector<std::string>{"s4"});
}

TEST_CASE("latest-only: many updates of one topic do not grow the queue", "[outbox]") {
    fixture f(limits(when_full::drop_oldest, 1 << 20, true));
    f.put(msg("t/count", "c1"));
    for (int i = 0; i < 10'000; ++i) f.put(msg("t/state", "s" + std::to_string(i), true));
    f.put(msg("t/count", "c2"));
    CHECK(f.s->backlog().messages == 3);
    CHECK(f.s->queued_messages() < 200);  // emptied entries are compacted away
    CHECK(drain(*f.s, *f.o) == std::vector<std::string>{"c1", "s9999", "c2"});
}

TEST_CASE("an in-flight retained value is not superseded", "[outbox]") {
    fixture f(limits(when_full::drop_oldest, 1 << 20, true));
    f.put(msg("t/state", "s1", true));
    std::vector<outgoing> out;
    f.s->collect(f.o.get(), out, 10, steady_clock::now());
    REQUIRE(out.size() == 1);  // s1 in flight, unacknowledged
    f.put(msg("t/state", "s2", true));
    CHECK(f.s->backlog().messages == 2);
    CHECK(f.s->backlog().superseded == 0);
    f.s->on_puback(out[0].packet_id);
    CHECK(drain(*f.s, *f.o) == std::vector<std::string>{"s2"});
}

TEST_CASE("client sessions keep dropping the new message when full", "[outbox]") {
    queue_limits l;
    l.max_messages = 2;
    fixture f(l);
    CHECK(f.put(msg("t/a", "1")) == deliver_result::queued);
    CHECK(f.put(msg("t/a", "2")) == deliver_result::queued);
    CHECK(f.put(msg("t/a", "3")) == deliver_result::dropped);
    CHECK(drain(*f.s, *f.o) == std::vector<std::string>{"1", "2"});
}
