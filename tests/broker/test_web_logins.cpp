// The explorer's logins (broker/ops/explorer.hpp): tokens are random and
// URL-safe, end when unused for the idle time, on logout, or when their
// identity opens too many; the total is bounded.
#include <catch2/catch.hpp>

#include "broker/ops/explorer.hpp"

#include <set>
#include <string>

using namespace strata::broker;
using namespace std::chrono_literals;

TEST_CASE("web logins: a token finds its identity until it is closed", "[explorer]") {
    ops::web_logins logins(10, 60s);
    const auto t0 = ops::web_logins::clock::time_point{} + 1h;
    const auto a = logins.open("olga", t0);
    const auto b = logins.open("ana", t0);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(*a != *b);
    CHECK(a->size() == 22);  // 128 bits, base64url without padding
    CHECK(a->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos);
    CHECK(logins.find(*a, t0) == "olga");
    CHECK(logins.find(*b, t0) == "ana");
    CHECK_FALSE(logins.find("", t0));
    CHECK_FALSE(logins.find(a->substr(1), t0));
    logins.close(*a);
    CHECK_FALSE(logins.find(*a, t0));
    CHECK(logins.find(*b, t0) == "ana");
    logins.close("not a token");  // nothing happens
    CHECK(logins.size() == 1);
}

TEST_CASE("web logins: unused for the idle time they end; use renews them", "[explorer]") {
    ops::web_logins logins(10, 60s);
    const auto t0 = ops::web_logins::clock::time_point{} + 1h;
    const auto kept = logins.open("olga", t0);
    const auto idle = logins.open("olga", t0);
    REQUIRE(kept);
    REQUIRE(idle);
    CHECK(logins.find(*kept, t0 + 50s));
    CHECK(logins.find(*kept, t0 + 100s));  // renewed at 50 s
    CHECK_FALSE(logins.find(*idle, t0 + 60s));
    CHECK_FALSE(logins.find(*kept, t0 + 160s));
    CHECK(logins.size() == 0);
}

TEST_CASE("web logins: bounded per identity and in total", "[explorer]") {
    ops::web_logins logins(ops::web_logins::max_per_identity + 2, 60s);
    const auto t0 = ops::web_logins::clock::time_point{} + 1h;
    std::set<std::string> tokens;
    std::string first;
    for (std::size_t i = 0; i < ops::web_logins::max_per_identity; ++i) {
        const auto t = logins.open("olga", t0 + std::chrono::seconds(i));
        REQUIRE(t);
        if (i == 0) first = *t;
        tokens.insert(*t);
    }
    CHECK(tokens.size() == ops::web_logins::max_per_identity);
    // One more for olga: her least recently used login ends, no one else's.
    CHECK(logins.find(first, t0 + 20s));  // now the most recent
    const auto more = logins.open("olga", t0 + 21s);
    REQUIRE(more);
    CHECK(logins.find(first, t0 + 21s));
    CHECK(logins.size() == ops::web_logins::max_per_identity);
    // The total: two more identities fit, a third does not until one ends.
    CHECK(logins.open("ana", t0 + 22s));
    const auto erik = logins.open("erik", t0 + 22s);
    CHECK(erik);
    CHECK_FALSE(logins.open("vic", t0 + 22s));
    logins.close(*erik);
    CHECK(logins.open("vic", t0 + 22s));
    // Logins past their idle time make room.
    CHECK(logins.open("zoe", t0 + 200s));
}

TEST_CASE("web logins: a full table is swept at most once a second", "[explorer]") {
    ops::web_logins logins(2, 60s);
    const auto t0 = ops::web_logins::clock::time_point{} + 1h;
    REQUIRE(logins.open("olga", t0));
    REQUIRE(logins.open("ana", t0 + 30s));
    CHECK_FALSE(logins.open("erik", t0 + 59s + 500ms));   // swept: nothing ended yet
    CHECK_FALSE(logins.open("erik", t0 + 60s + 200ms));   // olga's ended at 60 s, but no sweep within the second
    CHECK(logins.open("erik", t0 + 60s + 500ms));         // swept again: olga's made room
    CHECK(logins.size() == 2);
}
