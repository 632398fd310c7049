// Keys and values of the store: round trips, key order, and that no
// damaged value decodes or crashes.
#include "persistence/encoding.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

using namespace strata::persistence;
namespace enc = strata::persistence::encoding;

namespace {

stored_message sample_message() {
    stored_message m;
    m.topic = "acme/dresden/press-shop/line-2/cell-1/press-7/temperature";
    m.payload = std::string("{\"v\":21.5}\0\x01\xff", 14);
    m.qos = 2;
    m.retain = true;
    m.properties = std::string("\x01\x01\x02\x00\x00\x00\x3c", 7);
    m.expires_at_ms = 1'700'000'000'123;
    return m;
}

stored_session sample_session() {
    stored_session s;
    s.client_id = "press-7";
    s.expiry_interval = 0xFFFFFFFF;
    s.disconnected_at_ms = 1'700'000'000'000;
    s.will = sample_message();
    s.will_delay = 30;
    s.identity = "olga";
    return s;
}

stored_delivery sample_delivery() {
    stored_delivery d;
    d.client_id = "scada-1";
    d.seq = 0x0102030405060708ull;
    d.msg = sample_message();
    d.qos = 1;
    d.retain = true;
    d.subscription_ids = {1, 268435455, 7};
    d.packet_id = 65535;
    d.awaiting_comp = true;
    return d;
}

// Every proper prefix of a valid value must be rejected.
template <class Decode>
void every_truncation_fails(const std::string& v, Decode decode) {
    for (std::size_t n = 0; n < v.size(); ++n) {
        INFO("prefix length " << n << " of " << v.size());
        CHECK(decode(std::string_view(v).substr(0, n)) != nullptr);
    }
}

}  // namespace

TEST_CASE("retained value round trip; topic lives in the key", "[encoding]") {
    auto m = sample_message();
    std::string v;
    enc::encode_retained(v, m);
    stored_message back;
    REQUIRE(enc::decode_retained(v, back) == nullptr);
    back.topic = m.topic;
    CHECK(back == m);
    CHECK(v.find("press-7") == std::string::npos);

    every_truncation_fails(v, [](std::string_view x) {
        stored_message t;
        return enc::decode_retained(x, t);
    });
    stored_message t;
    CHECK(enc::decode_retained(v + "x", t) != nullptr);  // trailing bytes
    std::string bad_version = v;
    bad_version[0] = 2;
    CHECK(enc::decode_retained(bad_version, t) != nullptr);
    std::string bad_qos = v;
    bad_qos[2] = 3;
    CHECK(enc::decode_retained(bad_qos, t) != nullptr);
    std::string bad_flags = v;
    bad_flags[1] = static_cast<char>(0x80);
    CHECK(enc::decode_retained(bad_flags, t) != nullptr);
}

TEST_CASE("session value round trip, with and without will", "[encoding]") {
    for (bool with_will : {true, false}) {
        auto s = sample_session();
        if (!with_will) s.will.reset();
        std::string v;
        enc::encode_session(v, s);
        stored_session back;
        back.will = sample_message();  // must be reset by decode
        REQUIRE(enc::decode_session(v, back) == nullptr);
        back.client_id = s.client_id;
        CHECK(back == s);
        every_truncation_fails(v, [](std::string_view x) {
            stored_session t;
            return enc::decode_session(x, t);
        });
    }
    // Negative timestamps survive (they are not expected, but not corrupt).
    stored_session s;
    s.disconnected_at_ms = -5;
    std::string v;
    enc::encode_session(v, s);
    stored_session back;
    REQUIRE(enc::decode_session(v, back) == nullptr);
    CHECK(back.disconnected_at_ms == -5);
    CHECK(back.identity.empty());
    // an anonymous session with a will, and an owner without a will
    for (auto [with_will, who] : {std::pair{true, ""}, std::pair{false, "erik"}}) {
        stored_session x = sample_session();
        if (!with_will) x.will.reset();
        x.identity = who;
        std::string xv;
        enc::encode_session(xv, x);
        stored_session y;
        REQUIRE(enc::decode_session(xv, y) == nullptr);
        y.client_id = x.client_id;  // the key's part
        CHECK(y == x);
    }
}

TEST_CASE("subscription, delivery and inbound QoS 2 values round trip", "[encoding]") {
    stored_subscription sub{"$share/g/acme/+/+/+/+/+/oee", 0x2e, 268435455};
    std::string v;
    enc::encode_subscription(v, sub);
    stored_subscription sb;
    REQUIRE(enc::decode_subscription(v, sb) == nullptr);
    sb.filter = sub.filter;
    CHECK(sb == sub);
    every_truncation_fails(v, [](std::string_view x) {
        stored_subscription t;
        return enc::decode_subscription(x, t);
    });

    const auto delivery_round_trip = [](const stored_delivery& d) {
        std::string v;
        enc::encode_delivery(v, d);
        stored_delivery db;
        REQUIRE(enc::decode_delivery(v, db) == nullptr);
        db.client_id = d.client_id;
        db.seq = d.seq;
        CHECK(db == d);
        every_truncation_fails(v, [](std::string_view x) {
            stored_delivery t;
            return enc::decode_delivery(x, t);
        });
    };
    auto d = sample_delivery();
    delivery_round_trip(d);
    // With its queue time (a bridge backlog's age survives a restart).
    d.queued_at_ms = 1'765'000'000'123;
    delivery_round_trip(d);

    v.clear();
    enc::encode_inbound_qos2(v);
    CHECK(enc::decode_inbound_qos2(v) == nullptr);
    CHECK(enc::decode_inbound_qos2("") != nullptr);
    CHECK(enc::decode_inbound_qos2(v + "z") != nullptr);
}

TEST_CASE("a huge declared length or id count is rejected, not allocated", "[encoding]") {
    // version, flags, qos, packet id, count = 2^63 (varint), nothing else
    std::string v("\x01\x00\x01\x00\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 14);
    stored_delivery d;
    CHECK(enc::decode_delivery(v, d) != nullptr);
    // retained: version, flags, qos, expiry 0, payload length 2^40
    std::string r("\x01\x00\x00\x00\x80\x80\x80\x80\x80\x20", 10);
    stored_message m;
    CHECK(enc::decode_retained(r, m) != nullptr);
    // an 11-byte varint
    std::string long_varint("\x01\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 14);
    CHECK(enc::decode_retained(long_varint, m) != nullptr);
}

TEST_CASE("random bytes never crash a decoder", "[encoding]") {
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> byte(0, 255), len(0, 40);
    for (int i = 0; i < 20000; ++i) {
        std::string v(static_cast<std::size_t>(len(rng)), '\0');
        for (auto& c : v) c = static_cast<char>(byte(rng));
        if (!v.empty() && i % 2) v[0] = 1;  // half of them past the version check
        stored_message m;
        stored_session s;
        stored_subscription sub;
        stored_delivery d;
        (void)enc::decode_retained(v, m);
        (void)enc::decode_session(v, s);
        (void)enc::decode_subscription(v, sub);
        (void)enc::decode_delivery(v, d);
        (void)enc::decode_inbound_qos2(v);
        std::string client, filter;
        std::uint64_t seq = 0;
        std::uint16_t pid = 0;
        (void)enc::parse_subscription_key(v, client, filter);
        (void)enc::parse_delivery_key(v, client, seq);
        (void)enc::parse_inbound_qos2_key(v, client, pid);
    }
    SUCCEED();
}

TEST_CASE("client-owned keys: escaping round trips and ranges hold one client only", "[encoding]") {
    std::vector<std::string> clients = {"",   "a",  "ab",          std::string("a\0", 2),
                                        std::string("a\x01", 2), std::string("a\x01\x02", 3), "a\x02",
                                        "b",  "\xff", std::string("\0\0", 2)};
    for (const auto& c : clients) {
        std::string k;
        enc::delivery_key(k, c, 42);
        std::string client;
        std::uint64_t seq = 0;
        REQUIRE(enc::parse_delivery_key(k, client, seq) == nullptr);
        CHECK(client == c);
        CHECK(seq == 42);

        k.clear();
        enc::subscription_key(k, c, "x/#");
        std::string filter;
        REQUIRE(enc::parse_subscription_key(k, client, filter) == nullptr);
        CHECK(client == c);
        CHECK(filter == "x/#");

        k.clear();
        enc::inbound_qos2_key(k, c, 0xbeef);
        std::uint16_t pid = 0;
        REQUIRE(enc::parse_inbound_qos2_key(k, client, pid) == nullptr);
        CHECK(client == c);
        CHECK(pid == 0xbeef);
    }
    // Every key of client x falls in x's range and in no other client's.
    for (const auto& x : clients) {
        for (const auto& y : clients) {
            auto begin = enc::client_range_begin(y);
            auto end = enc::client_range_end(y);
            for (std::uint64_t seq : {0ull, 1ull, 0xffffffffffffffffull}) {
                std::string k;
                enc::delivery_key(k, x, seq);
                bool inside = k >= begin && k < end;
                INFO("x=" << enc::printable(x) << " y=" << enc::printable(y));
                CHECK(inside == (x == y));
            }
            std::string k;
            enc::subscription_key(k, x, std::string("\xff\xff\xff", 3));
            CHECK((k >= begin && k < end) == (x == y));
        }
    }
}

TEST_CASE("delivery keys sort by client, then numerically by seq", "[encoding]") {
    std::vector<std::uint64_t> seqs = {0, 1, 255, 256, 65535, 65536, 1ull << 32, (1ull << 63) + 5, ~0ull};
    std::vector<std::string> keys;
    for (auto s : seqs) {
        std::string k;
        enc::delivery_key(k, "c", s);
        keys.push_back(k);
    }
    CHECK(std::is_sorted(keys.begin(), keys.end()));
}

TEST_CASE("malformed keys are errors", "[encoding]") {
    std::string client, filter;
    std::uint64_t seq = 0;
    std::uint16_t pid = 0;
    CHECK(enc::parse_delivery_key("abc", client, seq) != nullptr);                          // no terminator
    CHECK(enc::parse_delivery_key(std::string("abc\0\1\2", 6), client, seq) != nullptr);    // short seq
    CHECK(enc::parse_delivery_key(std::string("a\x01\x03\0", 4), client, seq) != nullptr);  // bad escape
    CHECK(enc::parse_subscription_key(std::string("abc\0", 4), client, filter) != nullptr); // empty filter
    CHECK(enc::parse_inbound_qos2_key(std::string("abc\0\1", 5), client, pid) != nullptr);
    CHECK(enc::printable(std::string("a\0b\\", 4)) == "a\\x00b\\x5c");
}

TEST_CASE("format version value", "[encoding]") {
    std::string v;
    enc::encode_format_version(v, 7);
    std::uint32_t back = 0;
    REQUIRE(enc::decode_format_version(v, back) == nullptr);
    CHECK(back == 7);
    CHECK(enc::decode_format_version("abc", back) != nullptr);
}
