// Topic rules: validity of names and filters, matching (MQTT 4.7 examples),
// shared subscription parsing.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "namespace/topic.hpp"

using namespace strata::ns;
using namespace std::string_view_literals;

TEST_CASE("valid topic names", "[topic]") {
    const char* valid[] = {
        "a", "/", "//", "a/b", "/a", "a/", "a//b", " ", "$SYS/broker/uptime", "$", "sport/tennis/player1",
        "acme/dresden/press-shop/line-2/cell-1/press-7/temperature", "caf\xc3\xa9/\xe2\x82\xac",
        "a b/c-d/e.f", "$share",
    };
    for (const char* t : valid) {
        INFO(t);
        CHECK(valid_topic_name(t));
    }
    const char* invalid[] = {"", "+", "#", "a/+", "a/#", "a+b", "a#", "sport/tennis/#", "+/a", "a/+/b"};
    for (const char* t : invalid) {
        INFO(t);
        CHECK_FALSE(valid_topic_name(t));
    }
    CHECK_FALSE(valid_topic_name("a\0b"sv));
    CHECK_FALSE(valid_topic_name("\0"sv));
    CHECK(valid_topic_name(std::string(65535, 'x')));
    CHECK_FALSE(valid_topic_name(std::string(65536, 'x')));
}

TEST_CASE("valid topic filters", "[topic]") {
    const char* valid[] = {
        "#", "+", "+/+", "/+", "+/", "/", "//", "a//b", "sport/#", "sport/tennis/#", "sport/+/player1",
        "+/tennis/#", "$SYS/#", "$SYS/+/clients", "a/+/b/+/#", "+/+/+", "+/#", "/#", "a/b/c", "$share",
        "acme/+/area2/#", "+/site1/+/+/+/+/temp",
    };
    for (const char* f : valid) {
        INFO(f);
        CHECK(valid_topic_filter(f));
    }
    const char* invalid[] = {
        "", "sport/tennis#", "sport/tennis/#/ranking", "sport+", "+a", "a+", "a+/b", "a/b+", "##", "#/",
        "a/#/", "a/++", "++", "#+", "+#", "a/#/#", "#/a", "sp#rt",
    };
    for (const char* f : invalid) {
        INFO(f);
        CHECK_FALSE(valid_topic_filter(f));
    }
    CHECK_FALSE(valid_topic_filter("a/\0/b"sv));
    CHECK(valid_topic_filter(std::string(65535, 'x')));
    CHECK_FALSE(valid_topic_filter(std::string(65536, 'x')));
    CHECK(valid_topic_filter(std::string(65533, 'x') + "/#"));
}

TEST_CASE("has_wildcard", "[topic]") {
    CHECK(has_wildcard("#"));
    CHECK(has_wildcard("a/+/b"));
    CHECK(has_wildcard("a/#"));
    CHECK_FALSE(has_wildcard("a/b"));
    CHECK_FALSE(has_wildcard("/"));
    CHECK_FALSE(has_wildcard("$SYS/x"));
}

TEST_CASE("topic matching", "[topic]") {
    struct row {
        const char* filter;
        const char* topic;
        bool matches;
    };
    const row rows[] = {
        // MQTT 4.7.1.2 multi-level wildcard
        {"sport/tennis/player1/#", "sport/tennis/player1", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
        {"sport/tennis/player1/#", "sport/tennis/player2", false},
        {"sport/tennis/player1/#", "sport/tennis", false},
        {"sport/#", "sport", true},
        {"sport/#", "sport/", true},
        {"sport/#", "sports", false},
        {"#", "sport", true},
        {"#", "sport/tennis/player1", true},
        {"#", "/", true},
        {"#", "/finance", true},
        // 4.7.1.3 single-level wildcard
        {"sport/tennis/+", "sport/tennis/player1", true},
        {"sport/tennis/+", "sport/tennis/player2", true},
        {"sport/tennis/+", "sport/tennis/player1/ranking", false},
        {"sport/tennis/+", "sport/tennis", false},
        {"sport/+", "sport", false},
        {"sport/+", "sport/", true},
        {"+", "sport", true},
        {"+/+", "/finance", true},
        {"/+", "/finance", true},
        {"+", "/finance", false},
        {"+/tennis/#", "sport/tennis/player1", true},
        {"+/tennis/#", "sport/tennis", true},
        {"+/tennis/#", "sport/golf", false},
        {"+/#", "a", true},
        // 4.7.2 topics beginning with '$'
        {"#", "$SYS", false},
        {"#", "$SYS/monitor/Clients", false},
        {"+/monitor/Clients", "$SYS/monitor/Clients", false},
        {"+", "$", false},
        {"+/#", "$x", false},
        {"$SYS/#", "$SYS/monitor/Clients", true},
        {"$SYS/#", "$SYS", true},
        {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
        {"$SYS/monitor/Clients", "$SYS/monitor/Clients", true},
        {"a/+", "a/$b", true},  // the rule is about the first level only
        {"a/#", "a/$b/c", true},
        {"/#", "/$x", true},
        // empty levels are ordinary levels
        {"a//b", "a//b", true},
        {"a/+/b", "a//b", true},
        {"a/b", "a//b", false},
        {"+/+/+", "a//b", true},
        {"a/#", "a//b", true},
        {"a/", "a", false},
        {"a/", "a/", true},
        {"a/+", "a", false},
        {"a", "a/", false},
        {"/", "/", true},
        {"+/+", "/", true},
        {"+", "/", false},
        {"//", "//", true},
        {"/+/", "//", true},
        // plain
        {"a/b", "a/b/c", false},
        {"a/b/c", "a/b", false},
        {"A", "a", false},
        {"a/b", "a/b", true},
        {"acme/+/area2/#", "acme/site3/area2/line7/cell1/press4/temp", true},
        {"acme/+/area2/#", "acme/site3/area1/line7/cell1/press4/temp", false},
        {"+/site1/+/+/+/+/temp", "acme/site1/area2/line7/cell1/press4/temp", true},
        {"+/site1/+/+/+/+/temp", "acme/site1/area2/line7/cell1/press4/pressure", false},
        {"+/site1/+/+/+/+/temp", "acme/site1/area2/line7/cell1/temp", false},
    };
    for (const row& r : rows) {
        INFO(r.filter << " vs " << r.topic);
        REQUIRE(valid_topic_filter(r.filter));
        REQUIRE(valid_topic_name(r.topic));
        CHECK(topic_matches(r.filter, r.topic) == r.matches);
    }
}

TEST_CASE("shared subscription parsing", "[topic]") {
    struct row {
        const char* input;
        share_parse result;
        const char* group;
        const char* filter;
    };
    const row rows[] = {
        {"$share/g/a/b", share_parse::shared, "g", "a/b"},
        {"$share/consumers/acme/+/oee", share_parse::shared, "consumers", "acme/+/oee"},
        {"$share/g/#", share_parse::shared, "g", "#"},
        {"$share/g/+", share_parse::shared, "g", "+"},
        {"$share/g//", share_parse::shared, "g", "/"},
        {"$share/g/$SYS/#", share_parse::shared, "g", "$SYS/#"},
        {"$share/g-1.x/a", share_parse::shared, "g-1.x", "a"},
        {"$share", share_parse::not_shared, "", ""},
        {"$shared/g/a", share_parse::not_shared, "", ""},
        {"$SHARE/g/a", share_parse::not_shared, "", ""},
        {"a/$share/g/a", share_parse::not_shared, "", ""},
        {"sport/#", share_parse::not_shared, "", ""},
        {"$SYS/#", share_parse::not_shared, "", ""},
        {"$share/", share_parse::invalid, "", ""},
        {"$share/g", share_parse::invalid, "", ""},
        {"$share/g/", share_parse::invalid, "", ""},
        {"$share//a", share_parse::invalid, "", ""},
        {"$share/g+/a", share_parse::invalid, "", ""},
        {"$share/+/a", share_parse::invalid, "", ""},
        {"$share/#/a", share_parse::invalid, "", ""},
        {"$share/g#/a", share_parse::invalid, "", ""},
        {"$share/g/a#", share_parse::invalid, "", ""},
        {"$share/g/#/a", share_parse::invalid, "", ""},
        {"$share/g/a+", share_parse::invalid, "", ""},
    };
    for (const row& r : rows) {
        INFO(r.input);
        shared_filter out{};
        CHECK(parse_shared(r.input, out) == r.result);
        if (r.result == share_parse::shared) {
            CHECK(out.group == r.group);
            CHECK(out.filter == r.filter);
        }
    }
}

TEST_CASE("filter intersection", "[topic]") {
    const auto both = [](std::string_view a, std::string_view b) {
        const auto x = filter_intersection(a, b);
        // Symmetric.
        CHECK(filter_intersection(b, a) == x);
        return x.value_or("(none)");
    };
    CHECK(both("acme/dresden/#", "+/+/+/+/cmd/#") == "acme/dresden/+/+/cmd/#");
    CHECK(both("acme/+/press-shop/#", "acme/dresden/+/line-2") == "acme/dresden/press-shop/line-2");
    CHECK(both("a/#", "a") == "a");
    CHECK(both("a/#", "a/#") == "a/#");
    CHECK(both("#", "a/+/c") == "a/+/c");
    CHECK(both("a/+", "a/b/c") == "(none)");
    CHECK(both("a/b", "a/c") == "(none)");
    CHECK(both("a/+/#", "a") == "(none)");
    CHECK(both("a//#", "a/+/x") == "a//x");
    // '$' topics are not matched by a leading wildcard.
    CHECK(both("#", "$SYS/#") == "(none)");
    CHECK(both("+/x", "$SYS/x") == "(none)");
    CHECK(both("$SYS/+", "$SYS/broker") == "$SYS/broker");
}
