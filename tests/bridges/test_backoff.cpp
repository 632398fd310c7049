// The reconnect backoff and the remote URL parser.
#include "bridges/mqtt/backoff.hpp"
#include "bridges/mqtt/link.hpp"

#include <catch2/catch.hpp>

using namespace strata::bridges::mqtt;
using ms = std::chrono::milliseconds;

TEST_CASE("backoff ceiling doubles from the minimum up to the maximum", "[bridges][backoff]") {
    backoff b(ms{500}, ms{30000}, 42);
    const ms expected[] = {ms{500}, ms{1000}, ms{2000}, ms{4000}, ms{8000}, ms{16000}, ms{30000}, ms{30000}};
    for (const ms c : expected) {
        CHECK(b.ceiling() == c);
        const ms d = b.next();
        CHECK(d >= ms{500});
        CHECK(d <= c);
    }
    for (int i = 0; i < 100; ++i) (void)b.next();  // no overflow however long it fails
    CHECK(b.ceiling() == ms{30000});
    b.reset();
    CHECK(b.ceiling() == ms{500});
    CHECK(b.next() == ms{500});
}

TEST_CASE("backoff jitter spreads over the whole range", "[bridges][backoff]") {
    backoff b(ms{100}, ms{1600}, 7);
    for (int i = 0; i < 4; ++i) (void)b.next();
    ms lo{1600}, hi{0};
    for (int i = 0; i < 200; ++i) {
        const ms d = b.next();
        REQUIRE(d >= ms{100});
        REQUIRE(d <= ms{1600});
        lo = std::min(lo, d);
        hi = std::max(hi, d);
    }
    CHECK(lo < ms{400});
    CHECK(hi > ms{1300});
    // Two links with different seeds do not retry in lockstep.
    backoff x(ms{100}, ms{1600}, 1), y(ms{100}, ms{1600}, 2);
    int same = 0;
    for (int i = 0; i < 20; ++i) same += x.next() == y.next();
    CHECK(same < 10);
}

TEST_CASE("backoff with a zero minimum still grows", "[bridges][backoff]") {
    backoff b(ms{0}, ms{100}, 3);
    for (int i = 0; i < 20; ++i) (void)b.next();
    CHECK(b.ceiling() == ms{100});
}

TEST_CASE("parse_remote: mqtt:// and mqtts:// URLs", "[bridges][url]") {
    link_options o;
    parse_remote("mqtt://broker.example", o);
    CHECK(o.host == "broker.example");
    CHECK(o.port == 1883);
    CHECK_FALSE(o.tls);
    parse_remote("mqtts://enterprise.example:8884", o);
    CHECK(o.host == "enterprise.example");
    CHECK(o.port == 8884);
    CHECK(o.tls);
    parse_remote("mqtts://10.1.2.3", o);
    CHECK(o.host == "10.1.2.3");
    CHECK(o.port == 8883);
    parse_remote("mqtt://[::1]:1884/", o);
    CHECK(o.host == "::1");
    CHECK(o.port == 1884);
    parse_remote("mqtt://[fe80::1]", o);
    CHECK(o.host == "fe80::1");
    CHECK(o.port == 1883);
}

TEST_CASE("parse_remote: malformed URLs are refused with a message", "[bridges][url]") {
    link_options o;
    for (const char* bad : {"tcp://host:1883", "host:1883", "mqtt://", "mqtt://:1883", "mqtt://host:0",
                            "mqtt://host:65536", "mqtt://host:12ab", "mqtt://host:", "mqtt://[::1",
                            "mqtt://[::1]x", "mqtt://user@host", "mqtt://host/path"}) {
        INFO(bad);
        CHECK_THROWS_AS(parse_remote(bad, o), std::invalid_argument);
    }
}

TEST_CASE("link states have names", "[bridges]") {
    CHECK(std::string(to_string(link_state::idle)) == "idle");
    CHECK(std::string(to_string(link_state::connecting)) == "connecting");
    CHECK(std::string(to_string(link_state::up)) == "up");
    CHECK(std::string(to_string(link_state::waiting)) == "waiting");
    CHECK(std::string(to_string(link_state::stopped)) == "stopped");
}
