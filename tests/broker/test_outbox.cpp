// A bridge's outbox is a session with the drop-oldest or refuse policy and
// optionally latest-only retained values; these are the queue rules it
// relies on, exercised on a real session of a real broker core (without a
// store, and with one for a backlog past the memory window).
#include <catch2/catch.hpp>

#include "broker/core/broker_core.hpp"
#include "broker/core/session.hpp"
#include "test_support.hpp"

#include "persistence/store.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
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

// ---- Paging: a backlog larger than the memory window ----------------------

namespace {

// A real store in a temporary directory.
struct stored_fixture {
    std::filesystem::path dir;
    std::unique_ptr<strata::persistence::store> store;
    broker_core core{config{}};
    std::shared_ptr<owner> o = std::make_shared<owner>();
    std::shared_ptr<session> s = std::make_shared<session>(core, "$bridge/test");

    explicit stored_fixture(queue_limits l, bool online = true) {
        std::string tmpl = (std::filesystem::temp_directory_path() / "strata-outbox-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        dir = tmpl;
        strata::persistence::options opts;
        opts.path = (dir / "data").string();
        opts.mode = strata::persistence::durability::batch;
        store = strata::persistence::store::open(opts);
        core.use_store(store.get());
        s->set_queue_limits(l);
        s->set_persistent(true);
        if (online) s->attach(o, false);
    }
    ~stored_fixture() {
        s->clear();
        store->close();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    deliver_result put(const message_ptr& m, std::uint8_t qos = 1) { return s->deliver(m, qos, m->retain, {}); }

    // Collects and acknowledges until `n` payloads came or nothing arrives
    // for 10 s (the store reads the paged tail back on its own thread).
    std::vector<std::string> drain(std::size_t n) {
        std::vector<std::string> got;
        auto idle_since = std::chrono::steady_clock::now();
        while (got.size() < n && std::chrono::steady_clock::now() - idle_since < std::chrono::seconds(10)) {
            std::vector<outgoing> out;
            s->collect(o.get(), out, 50, steady_clock::now());
            if (out.empty()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                continue;
            }
            idle_since = std::chrono::steady_clock::now();
            for (auto& x : out) {
                got.push_back(x.d.msg->payload);
                if (x.d.qos > 0) s->on_puback(x.packet_id);
            }
        }
        return got;
    }
};

queue_limits paged(std::uint32_t window, std::uint64_t bytes = 1ull << 30) {
    auto l = limits(when_full::drop_oldest, bytes);
    l.memory_messages = window;
    return l;
}

std::vector<std::string> numbered(int from, int to) {
    std::vector<std::string> v;
    for (int i = from; i < to; ++i) v.push_back("m" + std::to_string(i));
    return v;
}

}  // namespace

TEST_CASE("past its memory window an outbox keeps the backlog in the store and drains it in order", "[outbox][paging]") {
    stored_fixture f(paged(100));
    for (int i = 0; i < 2000; ++i) REQUIRE(f.put(msg("t/a", "m" + std::to_string(i))) == deliver_result::queued);
    CHECK(f.s->queued_messages() == 100);  // in memory
    const auto b = f.s->backlog();
    CHECK(b.messages == 2000);
    CHECK(b.bytes >= 2000 * 5);
    CHECK(b.oldest.has_value());
    CHECK(f.drain(2000) == numbered(0, 2000));
    CHECK(f.s->backlog().messages == 0);
    // Drained: new messages are kept in memory again.
    f.put(msg("t/a", "later"));
    CHECK(f.s->queued_messages() == 1);
    CHECK(f.drain(1) == std::vector<std::string>{"later"});
}

TEST_CASE("paging: messages arriving while the tail is read back keep their order", "[outbox][paging]") {
    stored_fixture f(paged(100));
    int next = 0;
    std::vector<std::string> got;
    for (int round = 0; round < 20; ++round) {
        for (int i = 0; i < 150; ++i) f.put(msg("t/a", "m" + std::to_string(next++)));
        auto part = f.drain(100);
        got.insert(got.end(), part.begin(), part.end());
    }
    auto rest = f.drain(static_cast<std::size_t>(next) - got.size());
    got.insert(got.end(), rest.begin(), rest.end());
    CHECK(got == numbered(0, next));
}

TEST_CASE("paging under latest-only: a superseded value in the store is not sent", "[outbox][paging]") {
    auto l = paged(100);
    l.latest_only_retained = true;
    stored_fixture f(l);
    for (int i = 0; i < 300; ++i) f.put(msg("t/count", "c" + std::to_string(i)));
    for (int i = 0; i < 50; ++i) f.put(msg("t/state", "s" + std::to_string(i), true));
    CHECK(f.s->backlog().messages == 301);
    CHECK(f.s->backlog().superseded == 49);
    auto expected = numbered(0, 300);
    for (auto& e : expected) e[0] = 'c';
    expected.push_back("s49");
    CHECK(f.drain(301) == expected);
}

TEST_CASE("paging: QoS 0 stays in memory unless durable", "[outbox][paging]") {
    SECTION("memory: dropped past the window") {
        stored_fixture f(paged(100));
        for (int i = 0; i < 150; ++i) f.put(msg("t/a", "m" + std::to_string(i)), 0);
        CHECK(f.s->backlog().messages == 100);
        CHECK(f.s->backlog().dropped == 50);
        CHECK(f.drain(100) == numbered(0, 100));
    }
    SECTION("durable: kept while offline and past the window, in order with QoS 1") {
        auto l = paged(100);
        l.qos0_durable = true;
        stored_fixture f(l, /*online=*/false);
        for (int i = 0; i < 300; ++i) {
            CHECK(f.put(msg("t/a", "m" + std::to_string(i)), static_cast<std::uint8_t>(i % 2)) == deliver_result::queued);
        }
        CHECK(f.s->backlog().messages == 300);
        f.s->attach(f.o, false);
        CHECK(f.drain(300) == numbered(0, 300));
    }
}

TEST_CASE("paging with drop-oldest: the oldest make room, read into memory to be dropped there", "[outbox][paging]") {
    stored_fixture f(paged(100, 2000));  // 250 messages of 8 bytes ("t/a" + "m1000")
    for (int i = 1000; i < 1500; ++i) {
        REQUIRE(f.put(msg("t/a", "m" + std::to_string(i))) == deliver_result::queued);
        // Room in memory again once the next window is read in.
        const auto read_in = [&] { return f.s->queued_messages() > 50 || f.s->backlog().messages == f.s->queued_messages(); };
        for (int n = 0; n < 10'000 && !read_in(); ++n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        REQUIRE(read_in());
    }
    const auto b = f.s->backlog();
    CHECK(b.messages == 250);
    CHECK(b.bytes == 2000);
    CHECK(b.dropped == 250);
    CHECK(f.drain(250) == numbered(1250, 1500));
}
