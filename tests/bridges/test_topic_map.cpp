// A bridge rule's topic mapping: the literal levels before the first
// wildcard are swapped, the wildcard tail must be the same on both sides.
#include <catch2/catch.hpp>

#include "bridges/mqtt/topic_map.hpp"

#include <stdexcept>

using strata::bridges::mqtt::topic_map;

TEST_CASE("topic_map: identical filters map a topic to itself", "[topic_map]") {
    const topic_map m("acme/dresden/#", "acme/dresden/#");
    CHECK(m.matches("acme/dresden/press-7/temp"));
    CHECK_FALSE(m.matches("acme/berlin/press-7/temp"));
    CHECK(m.map("acme/dresden/press-7/temp") == "acme/dresden/press-7/temp");
    CHECK(m.map("acme/dresden") == "acme/dresden");  // '#' matches the parent level too
}

TEST_CASE("topic_map: the literal prefix is swapped", "[topic_map]") {
    const topic_map up("acme/dresden/#", "plants/dresden/acme/dresden/#");
    CHECK(up.map("acme/dresden/line-2/oee") == "plants/dresden/acme/dresden/line-2/oee");
    CHECK(up.map("acme/dresden") == "plants/dresden/acme/dresden");
    const topic_map down("plants/dresden/cmd/+/#", "acme/dresden/cmd/+/#");
    CHECK(down.matches("plants/dresden/cmd/press-7/stop"));
    CHECK(down.map("plants/dresden/cmd/press-7/stop") == "acme/dresden/cmd/press-7/stop");
    const topic_map all("#", "site-a/#");
    CHECK(all.map("x/y") == "site-a/x/y");
}

TEST_CASE("topic_map: topic names without wildcards map one to one", "[topic_map]") {
    const topic_map m("acme/dresden/line-2/oee", "plants/dresden/oee");
    CHECK(m.matches("acme/dresden/line-2/oee"));
    CHECK_FALSE(m.matches("acme/dresden/line-2/oee/x"));
    CHECK(m.map("acme/dresden/line-2/oee") == "plants/dresden/oee");
}

TEST_CASE("topic_map: filters that cannot map are refused with the reason", "[topic_map]") {
    CHECK_THROWS_WITH(topic_map("acme/+/#", "plants/#"), Catch::Contains("same wildcard levels"));
    CHECK_THROWS_WITH(topic_map("acme/#", "plants/x"), Catch::Contains("same wildcard levels"));
    CHECK_THROWS_WITH(topic_map("acme/x", "plants/#"), Catch::Contains("no wildcard"));
    CHECK_THROWS_WITH(topic_map("acme/#/x", "acme/#/x"), Catch::Contains("not a valid topic filter"));
    CHECK_THROWS_WITH(topic_map("$share/g/acme/#", "acme/#"), Catch::Contains("shared subscription"));
}
