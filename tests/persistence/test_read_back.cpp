// A queue kept mostly on disk (a bridge's backlog): load() hands over the
// first deliveries of a client up to its window and describes the rest;
// read_deliveries() reads them back a window at a time, after what was
// submitted before it is written. The queue time of a delivery survives.
#include "helpers.hpp"

#include <catch2/catch.hpp>

#include <future>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

const std::string outbox = "$bridge/up";

stored_delivery delivery(const std::string& client, std::uint64_t seq) {
    stored_delivery d;
    d.client_id = client;
    d.seq = seq;
    d.msg = message("acme/dresden/press-shop/line-2/cell-1/press-7/temperature", "v" + std::to_string(seq));
    d.qos = 1;
    d.queued_at_ms = 1'700'000'000'000 + static_cast<std::int64_t>(seq);
    return d;
}

std::vector<operation> session_with(const std::string& client, std::uint64_t from, std::uint64_t to) {
    std::vector<operation> ops;
    stored_session s;
    s.client_id = client;
    s.expiry_interval = 0xFFFFFFFF;
    ops.push_back(put_session{s});
    for (std::uint64_t seq = from; seq <= to; ++seq) ops.push_back(put_delivery{delivery(client, seq)});
    return ops;
}

struct read_result {
    std::vector<stored_delivery> records;
    bool ok = false;
};

read_result read(store& s, const std::string& client, std::uint64_t from, std::size_t count,
                 std::uint64_t bytes = UINT64_MAX) {
    auto done = std::make_shared<std::promise<read_result>>();
    auto f = done->get_future();
    s.read_deliveries(client, from, count, bytes, [done](std::vector<stored_delivery>&& r, bool ok) {
        done->set_value(read_result{std::move(r), ok});
    });
    if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) throw std::runtime_error("read timed out");
    return f.get();
}

std::vector<std::uint64_t> seqs(const std::vector<stored_delivery>& ds) {
    std::vector<std::uint64_t> out;
    for (const auto& d : ds) out.push_back(d.seq);
    return out;
}

}  // namespace

TEST_CASE("load() hands over a client's first deliveries up to its window and describes the rest", "[store][paging]") {
    temp_dir dir;
    {
        auto s = store::open(make_options(dir.data()));
        REQUIRE(submit_and_wait(*s, session_with(outbox, 1, 100)));
        REQUIRE(submit_and_wait(*s, session_with("plc-1", 1, 5)));
    }
    auto s = store::open(make_options(dir.data()));
    std::vector<stored_delivery> got;
    std::vector<std::pair<std::string, delivery_range>> left;
    recovery_visitor v;
    v.delivery = [&](stored_delivery&& d) { got.push_back(std::move(d)); };
    v.delivery_window = [](const std::string& client) -> std::uint64_t { return client == outbox ? 10 : UINT64_MAX; };
    v.deliveries_left = [&](const std::string& client, const delivery_range& r) { left.emplace_back(client, r); };
    const auto r = s->load(v, now_ms());
    CHECK(r.loaded.deliveries == 105);
    REQUIRE(got.size() == 15);
    CHECK(got[0] == delivery(outbox, 1));  // queue time and all
    CHECK(got[9].seq == 10);
    CHECK(got[10].client_id == "plc-1");  // every one of a client without a window
    REQUIRE(left.size() == 1);
    CHECK(left[0].first == outbox);
    CHECK(left[0].second.first_seq == 11);
    CHECK(left[0].second.last_seq == 100);
    CHECK(left[0].second.count == 90);
    CHECK(left[0].second.bytes > 90 * 60);
}

TEST_CASE("read_deliveries reads a client's records from a seq, bounded by count and bytes", "[store][paging]") {
    temp_dir dir;
    auto s = store::open(make_options(dir.data()));
    REQUIRE(submit_and_wait(*s, session_with(outbox, 1, 50)));
    REQUIRE(submit_and_wait(*s, session_with("$bridge/upa", 1, 3)));  // the next client in key order

    auto r = read(*s, outbox, 11, 5);
    REQUIRE(r.ok);
    CHECK(seqs(r.records) == std::vector<std::uint64_t>{11, 12, 13, 14, 15});
    CHECK(r.records[0] == delivery(outbox, 11));
    // Past the end: only this client's records.
    r = read(*s, outbox, 48, 10);
    CHECK(seqs(r.records) == std::vector<std::uint64_t>{48, 49, 50});
    CHECK(read(*s, outbox, 51, 10).records.empty());
    // About max_bytes, but always one.
    CHECK(read(*s, outbox, 1, 50, 1).records.size() == 1);
    CHECK(read(*s, outbox, 1, 50, 300).records.size() < 10);
}

TEST_CASE("read_deliveries sees what was submitted before it, written or not", "[store][paging]") {
    temp_dir dir;
    auto o = make_options(dir.data(), durability::batch);
    o.batch_interval = std::chrono::milliseconds(200);  // the writer takes its time
    auto s = store::open(o);
    s->submit(session_with(outbox, 1, 20));
    s->submit(erase_delivery{outbox, 3});
    const auto r = read(*s, outbox, 1, 100);
    REQUIRE(r.ok);
    CHECK(r.records.size() == 19);
    CHECK(r.records[2].seq == 4);
}

TEST_CASE("read_deliveries after close: the callback is not left waiting", "[store][paging]") {
    temp_dir dir;
    auto s = store::open(make_options(dir.data()));
    auto done = std::make_shared<std::promise<bool>>();
    auto f = done->get_future();
    // Asked while the writer still has a batch to write, answered at close.
    s->submit(session_with(outbox, 1, 2));
    s->read_deliveries(outbox, 1, 10, UINT64_MAX, [done](std::vector<stored_delivery>&&, bool ok) { done->set_value(ok); });
    s->close();
    REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    (void)f.get();  // read before the close, or refused by it: either way answered
}

TEST_CASE("a read waiting for a put that an erase settles before it is written is answered at once", "[store][paging]") {
    temp_dir dir;
    auto o = make_options(dir.data(), durability::batch);
    o.batch_interval = std::chrono::minutes(10);  // the writer would not come on its own
    auto s = store::open(o);
    // Many rounds: in some the reader is already waiting when the erase
    // comes, which is the case that needs telling.
    for (std::uint64_t seq = 1; seq <= 300; ++seq) {
        s->submit(put_delivery{delivery(outbox, seq), nullptr, /*fresh=*/true});
        auto done = std::make_shared<std::promise<std::size_t>>();
        auto f = done->get_future();
        s->read_deliveries(outbox, seq, 10, UINT64_MAX, [done](std::vector<stored_delivery>&& r, bool) {
            done->set_value(r.size());
        });
        s->submit(erase_delivery{outbox, seq});  // both dropped: nothing is left to write
        REQUIRE(f.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
        CHECK(f.get() == 0);
    }
}
