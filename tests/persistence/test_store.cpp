// The store against real RocksDB in temporary directories: round trips,
// ordering, erase_session, expiry at load, durability modes, group commit.
#include "helpers.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>

using namespace strata::persistence;
using namespace strata::persistence::test;
using Catch::Matchers::Contains;

namespace {

stored_message full_message(const std::string& topic, const std::string& payload) {
    stored_message m;
    m.topic = topic;
    m.payload = payload;
    m.qos = 2;
    m.retain = true;
    m.properties = std::string("\x03\x00\x10text/plain;utf8\x00", 20);
    m.expires_at_ms = 0;
    return m;
}

stored_delivery delivery(const std::string& client, std::uint64_t seq) {
    stored_delivery d;
    d.client_id = client;
    d.seq = seq;
    d.msg = full_message("acme/site/area/line/cell/eq/t", "payload-" + std::to_string(seq));
    d.qos = 1;
    return d;
}

stored_session session(const std::string& client, std::uint32_t expiry = 3600, std::int64_t disconnected_at = 0) {
    stored_session s;
    s.client_id = client;
    s.expiry_interval = expiry;
    s.disconnected_at_ms = disconnected_at;
    return s;
}

}  // namespace

TEST_CASE("every record type survives submit, close, reopen and load", "[store]") {
    temp_dir dir;
    auto now = now_ms();

    stored_message retained = full_message("acme/dresden/press-shop/line-2/cell-1/press-7/temperature", "21.5");
    retained.expires_at_ms = now + 3'600'000;
    stored_message retained_binary = full_message("acme/x", std::string("\0\x01\xff\0", 4));
    retained_binary.properties.clear();
    retained_binary.qos = 0;

    stored_session with_will = session("press-7", 0xFFFFFFFF, now - 1000);
    with_will.will = full_message("acme/dresden/press-7/state", "offline");
    with_will.will->expires_at_ms = now + 60'000;
    with_will.will_delay = 15;
    stored_session connected = session("hmi-1", 120, 0);

    stored_subscription sub1{"acme/+/press-shop/#", 0x01, 0};
    stored_subscription sub2{"$share/oee/acme/+/+/+/+/+/oee", 0x26, 268435455};

    stored_delivery d = delivery("press-7", 7);
    d.subscription_ids = {3, 268435455};
    d.packet_id = 513;
    d.awaiting_comp = true;
    d.retain = true;
    d.qos = 2;

    {
        auto s = store::open(make_options(dir.data()));
        std::vector<operation> ops;
        ops.push_back(put_retained{retained});
        ops.push_back(put_retained{retained_binary});
        ops.push_back(put_session{with_will});
        ops.push_back(put_session{connected});
        ops.push_back(put_subscription{"press-7", sub1});
        ops.push_back(put_subscription{"press-7", sub2});
        ops.push_back(put_delivery{d});
        ops.push_back(put_inbound_qos2{"press-7", 42});
        ops.push_back(put_inbound_qos2{"hmi-1", 65535});
        REQUIRE(submit_and_wait(*s, std::move(ops)));
        auto st = s->stats();
        CHECK(st.operations == 9);
        CHECK(st.bytes > 0);
        CHECK(st.pending_operations == 0);
        CHECK(st.healthy);
        CHECK_FALSE(st.commit_seconds.empty());
    }

    auto c = reopen_and_load(dir.data(), now);
    std::sort(c.retained.begin(), c.retained.end(), [](auto& a, auto& b) { return a.topic < b.topic; });
    REQUIRE(c.retained.size() == 2);
    CHECK(c.retained[0] == retained);  // "acme/dresden/..." < "acme/x"
    CHECK(c.retained[1] == retained_binary);
    REQUIRE(c.sessions.size() == 2);
    CHECK(c.sessions[0] == connected);  // key order: "hmi-1" < "press-7"
    CHECK(c.sessions[1] == with_will);
    REQUIRE(c.subscriptions.size() == 2);
    std::set<std::string> filters;
    for (auto& [id, sub] : c.subscriptions) {
        CHECK(id == "press-7");
        CHECK((sub == sub1 || sub == sub2));
        filters.insert(sub.filter);
    }
    CHECK(filters.size() == 2);
    REQUIRE(c.deliveries.size() == 1);
    CHECK(c.deliveries[0] == d);
    REQUIRE(c.inbound_qos2.size() == 2);
    CHECK(c.inbound_qos2[0] == std::pair<std::string, std::uint16_t>{"hmi-1", 65535});
    CHECK(c.inbound_qos2[1] == std::pair<std::string, std::uint16_t>{"press-7", 42});
    CHECK(c.result.loaded == store_counts{2, 2, 2, 1, 2});
    CHECK(c.result.purged == store_counts{});

    auto s = store::open(make_options(dir.data()));
    CHECK(s->check() == store_counts{2, 2, 2, 1, 2});
}

TEST_CASE("puts replace, erases remove, single record kinds", "[store]") {
    temp_dir dir;
    {
        auto s = store::open(make_options(dir.data()));
        REQUIRE(submit_and_wait(*s, {put_retained{message("a/b", "1")}, put_retained{message("a/c", "x")}}));
        REQUIRE(submit_and_wait(*s, {put_retained{message("a/b", "2")}, erase_retained{"a/c"}}));
        REQUIRE(submit_and_wait(*s, {put_session{session("c1")},
                                     put_subscription{"c1", {"f/1", 1, 0}},
                                     put_subscription{"c1", {"f/2", 1, 0}},
                                     put_delivery{delivery("c1", 1)},
                                     put_delivery{delivery("c1", 2)},
                                     put_inbound_qos2{"c1", 1},
                                     put_inbound_qos2{"c1", 2}}));
        REQUIRE(submit_and_wait(*s, {put_subscription{"c1", {"f/1", 2, 9}},
                                     erase_subscription{"c1", "f/2"},
                                     erase_delivery{"c1", 1},
                                     erase_inbound_qos2{"c1", 2}}));
    }
    auto c = reopen_and_load(dir.data());
    REQUIRE(c.retained.size() == 1);
    CHECK(c.retained[0].payload == "2");
    REQUIRE(c.subscriptions.size() == 1);
    CHECK(c.subscriptions[0].second == stored_subscription{"f/1", 2, 9});
    REQUIRE(c.deliveries.size() == 1);
    CHECK(c.deliveries[0].seq == 2);
    REQUIRE(c.inbound_qos2.size() == 1);
    CHECK(c.inbound_qos2[0].second == 1);
}

TEST_CASE("deliveries come back per session in seq order", "[store]") {
    temp_dir dir;
    std::vector<std::uint64_t> seqs;
    for (std::uint64_t i = 0; i < 300; ++i) seqs.push_back(i * 977);  // crosses byte boundaries
    seqs.push_back(1ull << 40);
    std::mt19937 rng(7);
    std::shuffle(seqs.begin(), seqs.end(), rng);
    std::vector<std::string> clients = {"b-client", "a-client", "a-client-2", "a"};
    {
        auto s = store::open(make_options(dir.data()));
        for (const auto& c : clients) {
            std::vector<operation> ops;
            ops.push_back(put_session{session(c)});
            for (auto q : seqs) ops.push_back(put_delivery{delivery(c, q)});
            REQUIRE(submit_and_wait(*s, std::move(ops)));
        }
    }
    auto c = reopen_and_load(dir.data());
    REQUIRE(c.deliveries.size() == clients.size() * seqs.size());
    std::map<std::string, std::vector<std::uint64_t>> per_client;
    std::vector<std::string> client_order;
    for (auto& d : c.deliveries) {
        if (client_order.empty() || client_order.back() != d.client_id) client_order.push_back(d.client_id);
        per_client[d.client_id].push_back(d.seq);
        CHECK(d.msg.payload == "payload-" + std::to_string(d.seq));
    }
    CHECK(client_order.size() == clients.size());  // each client's deliveries are contiguous
    auto sorted = seqs;
    std::sort(sorted.begin(), sorted.end());
    for (auto& [client, got] : per_client) {
        INFO(client);
        CHECK(got == sorted);
    }
}

TEST_CASE("erase_session removes everything of that client only", "[store]") {
    temp_dir dir;
    // Client ids that are prefixes of each other, and ids MQTT would never
    // allow, must not leak into each other's ranges.
    std::vector<std::string> clients = {"a", "ab", "a/b", std::string("a\0", 2), std::string("a\x01", 2), "b"};
    auto fill = [&](const std::string& c) {
        std::vector<operation> ops;
        ops.push_back(put_session{session(c)});
        ops.push_back(put_subscription{c, {"x/#", 1, 0}});
        ops.push_back(put_subscription{c, {"y/+", 0, 2}});
        for (std::uint64_t q = 1; q <= 5; ++q) ops.push_back(put_delivery{delivery(c, q)});
        ops.push_back(put_inbound_qos2{c, 7});
        return ops;
    };
    {
        auto s = store::open(make_options(dir.data()));
        for (auto& c : clients) REQUIRE(submit_and_wait(*s, fill(c)));
        REQUIRE(submit_and_wait(*s, {erase_session{"a"}}));
        // In one batch: records put before the erase go, records after stay.
        auto ops = fill("b");
        ops.push_back(erase_session{"b"});
        ops.push_back(put_session{session("b")});
        ops.push_back(put_delivery{delivery("b", 99)});
        REQUIRE(submit_and_wait(*s, std::move(ops)));
    }
    auto c = reopen_and_load(dir.data());
    std::set<std::string> with_sessions;
    for (auto& s : c.sessions) with_sessions.insert(s.client_id);
    CHECK(with_sessions == std::set<std::string>{"ab", "a/b", std::string("a\0", 2), std::string("a\x01", 2), "b"});
    for (auto& [id, sub] : c.subscriptions) CHECK(id != "a");
    CHECK(c.subscriptions.size() == 2 * 4);
    std::map<std::string, int> deliveries;
    for (auto& d : c.deliveries) ++deliveries[d.client_id];
    CHECK(deliveries.count("a") == 0);
    CHECK(deliveries["ab"] == 5);
    CHECK(deliveries[std::string("a\0", 2)] == 5);
    CHECK(deliveries[std::string("a\x01", 2)] == 5);
    CHECK(deliveries["b"] == 1);
    CHECK(c.inbound_qos2.size() == 4);
    CHECK(c.result.purged == store_counts{});
}

TEST_CASE("load deletes expired retained messages and sessions, with what they own", "[store]") {
    // The same whether the retained messages load on the caller's thread or
    // on their own, concurrently with the sessions.
    const bool concurrently = GENERATE(false, true);
    INFO("retained_concurrently " << concurrently);
    temp_dir dir;
    const std::int64_t now = 1'700'000'000'000;
    stored_message gone = message("t/expired", "x");
    gone.expires_at_ms = now - 1;
    stored_message edge = message("t/edge", "x");
    edge.expires_at_ms = now;  // expires_at <= now: expired
    stored_message later = message("t/later", "x");
    later.expires_at_ms = now + 1;
    stored_message never = message("t/never", "x");

    auto expired = session("expired", 60, now - 60'000);  // + 60 s == now: expired
    expired.will = message("wills/expired", "bye");
    auto alive = session("alive", 60, now - 59'999);
    auto connected = session("connected", 1, 0);             // counts from now: kept
    auto forever = session("forever", 0xFFFFFFFF, 1);        // never expires
    auto zero = session("zero", 0, now - 1);                 // expiry 0: ends at disconnect

    {
        auto s = store::open(make_options(dir.data()));
        std::vector<operation> ops = {put_retained{gone}, put_retained{edge}, put_retained{later},
                                      put_retained{never}};
        for (auto& x : {expired, alive, connected, forever, zero}) {
            ops.push_back(put_session{x});
            ops.push_back(put_subscription{x.client_id, {"f", 1, 0}});
            ops.push_back(put_delivery{delivery(x.client_id, 1)});
            ops.push_back(put_delivery{delivery(x.client_id, 2)});
            ops.push_back(put_inbound_qos2{x.client_id, 3});
        }
        // Orphans: records of a client without a session record.
        ops.push_back(put_subscription{"orphan", {"f", 1, 0}});
        ops.push_back(put_delivery{delivery("orphan", 1)});
        REQUIRE(submit_and_wait(*s, std::move(ops)));
    }

    {
        auto c = reopen_and_load(dir.data(), now, concurrently);
        std::set<std::string> topics;
        for (auto& m : c.retained) topics.insert(m.topic);
        CHECK(topics == std::set<std::string>{"t/later", "t/never"});
        std::set<std::string> ids;
        for (auto& x : c.sessions) ids.insert(x.client_id);
        CHECK(ids == std::set<std::string>{"alive", "connected", "forever"});
        std::set<std::string> expired_ids;
        for (auto& x : c.expired_sessions) expired_ids.insert(x.client_id);
        CHECK(expired_ids == std::set<std::string>{"expired", "zero"});
        for (auto& x : c.expired_sessions) {
            if (x.client_id == "expired") CHECK(x == expired);  // the will comes along
        }
        for (auto& [id, sub] : c.subscriptions) CHECK(ids.count(id) == 1);
        for (auto& d : c.deliveries) CHECK(ids.count(d.client_id) == 1);
        CHECK(c.result.loaded == store_counts{2, 3, 3, 6, 3});
        CHECK(c.result.purged == store_counts{2, 2, 3, 5, 2});
    }
    // Gone from disk, not just skipped.
    auto s = store::open(make_options(dir.data()));
    CHECK(s->check() == store_counts{2, 3, 3, 6, 3});
    auto c = load_all(*s, now);
    CHECK(c.result.purged == store_counts{});
}

TEST_CASE("durability always: the callback runs only after the commit", "[store][durability]") {
    temp_dir dir;
    auto s = store::open(make_options(dir.data(), durability::always));
    std::atomic<bool> ok_after_commit{false};
    std::atomic<bool> called{false};
    auto t = s->submit(put_retained{message("a", "1")});
    s->when_durable(t, [&, t](bool ok) {
        ok_after_commit = ok && s->durable_ticket() >= t && s->stats().commits >= 1;
        called = true;
    });
    REQUIRE(eventually([&] { return called.load(); }));
    CHECK(ok_after_commit);
    // Already durable: runs at once, on this thread.
    auto me = std::this_thread::get_id();
    std::thread::id ran_on;
    s->when_durable(t, [&](bool ok) { ran_on = std::this_thread::get_id(); });
    CHECK(ran_on == me);
}

TEST_CASE("durability batch: acknowledged only after the interval's commit", "[store][durability]") {
    temp_dir dir;
    auto o = make_options(dir.data(), durability::batch);
    o.batch_interval = std::chrono::milliseconds(300);
    auto s = store::open(o);
    auto start = std::chrono::steady_clock::now();
    auto t1 = s->submit(put_retained{message("a", "1")});
    auto t2 = s->submit(put_retained{message("b", "1")});
    CHECK(s->durable_ticket() < t1);
    std::atomic<int> called{0};
    std::atomic<bool> all_ok{true};
    std::chrono::steady_clock::duration waited{};
    for (auto t : {t1, t2}) {
        s->when_durable(t, [&](bool ok) {
            waited = std::chrono::steady_clock::now() - start;
            all_ok = all_ok && ok;
            ++called;
        });
    }
    CHECK(called == 0);
    REQUIRE(eventually([&] { return called.load() == 2; }));
    CHECK(all_ok);
    CHECK(waited >= std::chrono::milliseconds(250));
    CHECK(s->stats().commits == 1);  // both in one group commit
}

TEST_CASE("durability batch: max_batch_bytes closes a batch early", "[store][durability]") {
    temp_dir dir;
    auto o = make_options(dir.data(), durability::batch);
    o.batch_interval = std::chrono::minutes(10);  // only the size can trigger the commit
    o.max_batch_bytes = 1 << 20;
    auto s = store::open(o);
    std::vector<operation> big;
    big.push_back(put_retained{message("big", std::string(o.max_batch_bytes + 1, 'x'))});
    REQUIRE(submit_and_wait(*s, std::move(big)));
}

TEST_CASE("durability none: acknowledged at submit, written behind", "[store][durability]") {
    temp_dir dir;
    {
        auto s = store::open(make_options(dir.data(), durability::none));
        auto t = s->submit(put_retained{message("a", "1")});
        CHECK(s->durable_ticket() >= t);
        auto me = std::this_thread::get_id();
        std::thread::id ran_on;
        bool result = false;
        s->when_durable(t, [&](bool ok) {
            ran_on = std::this_thread::get_id();
            result = ok;
        });
        CHECK(ran_on == me);
        CHECK(result);
        REQUIRE(eventually([&] { return s->stats().operations == 1; }));
    }
    auto c = reopen_and_load(dir.data());
    CHECK(c.retained.size() == 1);
}

TEST_CASE("durability none: past max_pending_bytes, acknowledged when written", "[store][durability]") {
    temp_dir dir;
    auto o = make_options(dir.data(), durability::none);
    o.max_pending_bytes = 1;  // every submit is over the limit
    auto s = store::open(o);
    std::atomic<int> acked{0};
    std::vector<ticket> tickets;
    for (int i = 0; i < 100; ++i) tickets.push_back(s->submit(put_retained{message("t/" + std::to_string(i), "v")}));
    for (auto t : tickets) {
        s->when_durable(t, [&](bool ok) {
            if (ok) ++acked;
        });
    }
    REQUIRE(eventually([&] { return acked.load() == 100; }));
    CHECK(s->stats().operations == 100);  // acknowledged only once written
    CHECK(s->pending_bytes() == 0);
}

TEST_CASE("group commit: many submits, few commits", "[store][durability]") {
    temp_dir dir;
    auto s = store::open(make_options(dir.data(), durability::always));
    constexpr int n = 5000;
    std::atomic<int> acked{0};
    std::atomic<int> failed{0};
    std::atomic<ticket> last_acked{0};
    std::atomic<bool> in_order{true};
    for (int i = 0; i < n; ++i) {
        auto t = s->submit(put_delivery{delivery("c", static_cast<std::uint64_t>(i))});
        s->when_durable(t, [&, t](bool ok) {
            if (!ok) ++failed;
            if (t < last_acked.load()) in_order = false;
            last_acked = t;
            ++acked;
        });
    }
    REQUIRE(eventually([&] { return acked.load() == n; }));
    CHECK(failed == 0);
    CHECK(in_order);
    auto st = s->stats();
    CHECK(st.operations == n);
    INFO("commits: " << st.commits);
    CHECK(st.commits < n / 10);
}

TEST_CASE("submits from many threads all become durable", "[store][durability]") {
    temp_dir dir;
    constexpr int threads = 4, per_thread = 500;
    {
        auto s = store::open(make_options(dir.data(), durability::batch));
        std::atomic<int> acked{0};
        std::vector<std::thread> ts;
        for (int k = 0; k < threads; ++k) {
            ts.emplace_back([&, k] {
                for (int i = 0; i < per_thread; ++i) {
                    auto t = s->submit(put_retained{message("t/" + std::to_string(k) + "/" + std::to_string(i), "v")});
                    s->when_durable(t, [&](bool ok) {
                        if (ok) ++acked;
                    });
                }
            });
        }
        for (auto& t : ts) t.join();
        REQUIRE(eventually([&] { return acked.load() == threads * per_thread; }));
    }
    auto c = reopen_and_load(dir.data());
    CHECK(c.retained.size() == threads * per_thread);
}

TEST_CASE("close flushes pending work, is idempotent, and later tickets fail", "[store]") {
    temp_dir dir;
    {
        auto o = make_options(dir.data(), durability::batch);
        o.batch_interval = std::chrono::seconds(30);  // only close() will commit
        auto s = store::open(o);
        std::atomic<int> result{-1};
        auto t = s->submit(put_retained{message("a", "1")});
        s->when_durable(t, [&](bool ok) { result = ok; });
        s->close();
        CHECK(result == 1);
        s->close();
        auto late = s->submit(put_retained{message("b", "1")});
        bool late_ok = true;
        s->when_durable(late, [&](bool ok) { late_ok = ok; });
        CHECK_FALSE(late_ok);
    }
    auto c = reopen_and_load(dir.data());
    REQUIRE(c.retained.size() == 1);
    CHECK(c.retained[0].topic == "a");
}

TEST_CASE("an empty submit still gets a ticket that becomes durable", "[store]") {
    temp_dir dir;
    auto s = store::open(make_options(dir.data()));
    CHECK(submit_and_wait(*s, {}));
}

TEST_CASE("restarts do not pile up files (WALs, table files)", "[store]") {
    temp_dir dir;
    { auto s = store::open(make_options(dir.data())); }
    for (int i = 0; i < 12; ++i) {
        auto s = store::open(make_options(dir.data()));
        (void)load_all(*s);
        if (i % 3 == 0) REQUIRE(submit_and_wait(*s, {put_retained{message("t", std::to_string(i))}}));
    }
    int wals = 0, tables = 0;
    for (auto& e : fs::directory_iterator(dir.data())) {
        if (e.path().extension() == ".log") ++wals;
        if (e.path().extension() == ".sst") ++tables;
    }
    CHECK(wals <= 1);
    CHECK(tables <= 12);  // L0 files are compacted away from 4 on
    auto s = store::open(make_options(dir.data()));
    auto c = load_all(*s);
    REQUIRE(c.retained.size() == 1);
    CHECK(c.retained[0].payload == "9");
    (void)s->check();
}
