// Settling deliveries (store.hpp, submit()): an erase_delivery settles the
// puts of its record submitted before it; puts the writer has not taken are
// dropped, with the erase too when the first put was fresh; the durable
// ticket moves on at once when nothing before it waits; shared messages are
// read only for records that are written.
#include "helpers.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

// A writer that only commits when told to (close, max_batch_bytes): what is
// submitted stays pending.
options held(const std::string& path) {
    auto o = make_options(path, durability::batch);
    o.batch_interval = std::chrono::minutes(10);
    return o;
}

stored_delivery delivery(const std::string& client, std::uint64_t seq, std::uint16_t packet_id = 0) {
    stored_delivery d;
    d.client_id = client;
    d.seq = seq;
    d.msg = message("acme/dresden/press-shop/line-2/cell-1/press-7/temperature", "v" + std::to_string(seq));
    d.qos = 1;
    d.packet_id = packet_id;
    return d;
}

put_delivery fresh_put(const std::string& client, std::uint64_t seq) {
    return put_delivery{delivery(client, seq), nullptr, true};
}

// Records the callback's thread and result.
struct waiter {
    std::atomic<int> ok{-1};
    std::thread::id thread;
    void arm(store& s, ticket t) {
        s.when_durable(t, [this](bool r) {
            thread = std::this_thread::get_id();
            ok = r ? 1 : 0;
        });
    }
};

// A caller's message, counting how often the store reads it.
class counted_message final : public shared_message {
public:
    explicit counted_message(stored_message m) : m_(std::move(m)) {}
    void read(stored_message& out) const override {
        ++reads;
        out = m_;
    }
    [[nodiscard]] std::size_t stored_size() const noexcept override { return m_.topic.size() + m_.payload.size(); }
    mutable std::atomic<int> reads{0};

private:
    stored_message m_;
};

}  // namespace

TEST_CASE("a fresh put and its erase that meet while pending: neither is written, the put's ticket is durable at once",
          "[store][settle]") {
    temp_dir dir;
    {
        auto s = store::open(held(dir.data()));
        const ticket t1 = s->submit(fresh_put("sub", 1));
        CHECK(s->durable_ticket() < t1);
        waiter w;
        w.arm(*s, t1);
        CHECK(w.ok == -1);
        const ticket t2 = s->submit(erase_delivery{"sub", 1});
        // Settled by the erase, without a commit: the callback ran inside
        // submit(), on this thread.
        CHECK(s->durable_ticket() >= t2);
        CHECK(w.ok == 1);
        CHECK(w.thread == std::this_thread::get_id());
        const auto st = s->stats();
        CHECK(st.cancelled == 2);
        CHECK(st.pending_operations == 0);
        CHECK(st.pending_bytes == 0);
        s->close();
        CHECK(s->stats().operations == 0);
        CHECK(s->stats().commits == 0);
    }
    auto c = reopen_and_load(dir.data());
    CHECK(c.deliveries.empty());
}

TEST_CASE("an erase after a put that is not fresh drops the put and is written itself", "[store][settle]") {
    temp_dir dir;
    {
        auto s = store::open(make_options(dir.data()));
        REQUIRE(submit_and_wait(*s, {put_session{stored_session{"sub", 60, 0, {}, 0, {}}}, put_delivery{delivery("sub", 1)}}));
    }
    {
        auto s = store::open(held(dir.data()));
        REQUIRE(load_all(*s).deliveries.size() == 1);
        // A sent mark of the stored record, then its acknowledgement.
        const ticket t1 = s->submit(put_delivery{delivery("sub", 1, 1)});
        const ticket t2 = s->submit(erase_delivery{"sub", 1});
        CHECK(s->durable_ticket() >= t1);  // the erase waits for nobody
        CHECK(s->durable_ticket() >= t2);
        const auto st = s->stats();
        CHECK(st.cancelled == 1);           // the mark
        CHECK(st.pending_operations == 1);  // the erase
        s->close();
        CHECK(s->stats().operations == 1);
    }
    auto c = reopen_and_load(dir.data());
    CHECK(c.sessions.size() == 1);
    CHECK(c.deliveries.empty());
}

TEST_CASE("an erase settles a put the writer has taken; both are written", "[store][settle]") {
    temp_dir dir;
    {
        auto s = store::open(make_options(dir.data(), durability::always));
        REQUIRE(submit_and_wait(*s, {put_session{stored_session{"sub", 60, 0, {}, 0, {}}}}));
        // The disk refuses: the put is taken, fails, and is kept for a retry.
        s->inject_write_failures(1000);
        const ticket t1 = s->submit(fresh_put("sub", 1));
        REQUIRE(eventually([&] { return s->stats().write_errors >= 1; }));
        CHECK(s->durable_ticket() < t1);
        waiter w;
        w.arm(*s, t1);
        // Acknowledged by its receiver: the publisher no longer waits for the disk.
        const ticket t2 = s->submit(erase_delivery{"sub", 1});
        CHECK(s->durable_ticket() >= t2);
        CHECK(w.ok == 1);
        CHECK(s->stats().cancelled == 0);  // the writer had the put: the erase must follow it
        s->inject_write_failures(0);
        REQUIRE(eventually([&] { return s->stats().pending_operations == 0; }));
        CHECK(s->stats().operations == 3);  // the session, the put, the erase
    }
    auto c = reopen_and_load(dir.data());
    CHECK(c.sessions.size() == 1);
    CHECK(c.deliveries.empty());
}

TEST_CASE("a ticket with other records still waits for their commit", "[store][settle]") {
    temp_dir dir;
    auto o = make_options(dir.data(), durability::batch);
    o.batch_interval = std::chrono::milliseconds(300);
    auto s = store::open(o);
    // A retained QoS 1 message delivered to a persistent session.
    const ticket t1 = s->submit({put_retained{message("state/a", "1")}, fresh_put("sub", 1)});
    waiter w;
    w.arm(*s, t1);
    s->submit(erase_delivery{"sub", 1});
    CHECK(s->durable_ticket() < t1);  // the retained value is not written yet
    CHECK(w.ok == -1);
    REQUIRE(eventually([&] { return w.ok.load() != -1; }));
    CHECK(w.ok == 1);
    const auto st = s->stats();
    CHECK(st.cancelled == 2);
    CHECK(st.operations == 1);
}

TEST_CASE("the durable ticket stops at the first ticket still waiting", "[store][settle]") {
    temp_dir dir;
    auto s = store::open(held(dir.data()));
    const ticket t1 = s->submit(fresh_put("sub", 1));
    const ticket t2 = s->submit(fresh_put("sub", 2));
    waiter w1, w2;
    w1.arm(*s, t1);
    w2.arm(*s, t2);
    // Acknowledged out of order: the second is settled, the first still
    // waits, and so does every ticket after it.
    const ticket t3 = s->submit(erase_delivery{"sub", 2});
    CHECK(s->durable_ticket() == t1 - 1);
    CHECK(w1.ok == -1);
    CHECK(w2.ok == -1);
    const ticket t4 = s->submit(erase_delivery{"sub", 1});
    CHECK(s->durable_ticket() == t4);
    CHECK(t3 < t4);
    CHECK(w1.ok == 1);
    CHECK(w2.ok == 1);
    CHECK(s->stats().cancelled == 4);
}

TEST_CASE("a record put several times (sent mark, PUBREC mark) is dropped whole", "[store][settle]") {
    temp_dir dir;
    {
        auto s = store::open(held(dir.data()));
        s->submit(put_session{stored_session{"sub", 60, 0, {}, 0, {}}});
        const ticket t1 = s->submit(fresh_put("sub", 7));
        s->submit(put_delivery{delivery("sub", 7, 7)});  // in flight at a disconnect
        auto comp = delivery("sub", 7, 7);
        comp.qos = 2;
        comp.msg = {};
        comp.awaiting_comp = true;
        const ticket t3 = s->submit(put_delivery{comp});  // PUBREC received
        CHECK(s->durable_ticket() < t1);
        s->submit(erase_delivery{"sub", 7});  // PUBCOMP
        CHECK(s->durable_ticket() < t1);      // the session record still waits for the writer
        CHECK(s->stats().cancelled == 4);
        CHECK(s->stats().pending_operations == 1);
        s->close();
        CHECK(s->durable_ticket() >= t3);
    }
    auto c = reopen_and_load(dir.data());
    CHECK(c.sessions.size() == 1);
    CHECK(c.deliveries.empty());
}

TEST_CASE("a fresh put after erase_session: the dropped erase leaves the range delete to do its work",
          "[store][settle]") {
    temp_dir dir;
    {
        auto s = store::open(make_options(dir.data()));
        REQUIRE(submit_and_wait(*s, {put_session{stored_session{"sub", 60, 0, {}, 0, {}}}, put_delivery{delivery("sub", 1)},
                                     put_delivery{delivery("sub", 2)}}));
    }
    {
        auto s = store::open(held(dir.data()));
        REQUIRE(load_all(*s).deliveries.size() == 2);
        // The session ends and starts again: its seqs start over.
        s->submit(erase_session{"sub"});
        s->submit(put_session{stored_session{"sub", 60, 0, {}, 0, {}}});
        s->submit(fresh_put("sub", 1));
        s->submit(erase_delivery{"sub", 1});
        CHECK(s->stats().cancelled == 2);
    }
    auto c = reopen_and_load(dir.data());
    CHECK(c.sessions.size() == 1);
    CHECK(c.deliveries.empty());
}

TEST_CASE("a shared message is read only when its record is written, and then let go", "[store][settle]") {
    temp_dir dir;
    const auto m = message("acme/dresden/press-shop/line-2/cell-1/press-7/temperature", "21.5");
    {
        auto s = store::open(held(dir.data()));
        s->submit(put_session{stored_session{"sub", 60, 0, {}, 0, {}}});

        auto acked = std::make_shared<counted_message>(m);
        stored_delivery d1 = delivery("sub", 1);
        d1.msg = {};
        s->submit(put_delivery{d1, acked, true});
        CHECK(acked.use_count() == 2);
        s->submit(erase_delivery{"sub", 1});
        CHECK(acked.use_count() == 1);  // dropped at once: the store holds nothing of it
        CHECK(acked->reads == 0);

        auto kept = std::make_shared<counted_message>(m);
        stored_delivery d2 = delivery("sub", 2);
        d2.msg = {};
        s->submit(put_delivery{d2, kept, true});
        s->close();  // the one commit
        CHECK(kept->reads == 1);
        CHECK(kept.use_count() == 1);
        CHECK(acked->reads == 0);
    }
    auto c = reopen_and_load(dir.data());
    REQUIRE(c.deliveries.size() == 1);
    CHECK(c.deliveries[0].seq == 2);
    CHECK(c.deliveries[0].msg == m);
}

TEST_CASE("settling under load: every ticket becomes durable, only unacknowledged records stay", "[store][settle]") {
    temp_dir dir;
    constexpr std::uint64_t n = 20000;
    std::atomic<std::uint64_t> acked{0};
    {
        auto o = make_options(dir.data(), durability::batch);
        o.batch_interval = std::chrono::milliseconds(2);
        auto s = store::open(o);
        REQUIRE(submit_and_wait(*s, {put_session{stored_session{"sub", 60, 0, {}, 0, {}}}}));
        // A publisher thread puts, a receiver thread acknowledges all but
        // every 100th a little later, racing the writer.
        std::atomic<std::uint64_t> put{0};
        std::thread receiver([&] {
            for (std::uint64_t seq = 1; seq <= n; ++seq) {
                while (put.load() < seq) std::this_thread::yield();
                if (seq % 100 != 0) s->submit(erase_delivery{"sub", seq});
            }
        });
        for (std::uint64_t seq = 1; seq <= n; ++seq) {
            const ticket t = s->submit(fresh_put("sub", seq));
            put = seq;
            s->when_durable(t, [&](bool ok) {
                if (ok) ++acked;
            });
        }
        receiver.join();
        REQUIRE(eventually([&] { return acked.load() == n; }));
        INFO("cancelled " << s->stats().cancelled << ", written " << s->stats().operations);
        CHECK(s->stats().cancelled > 0);
    }
    auto c = reopen_and_load(dir.data());
    REQUIRE(c.deliveries.size() == n / 100);
    for (std::size_t i = 0; i < c.deliveries.size(); ++i) CHECK(c.deliveries[i].seq == (i + 1) * 100);
}
