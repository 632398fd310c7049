#include "auth/access.hpp"

#include <catch2/catch.hpp>

using strata::auth::access_policy;
using strata::auth::action;
using strata::auth::filter_covers;
using strata::auth::rule;

TEST_CASE("filter_covers: outer filter covers every topic of the inner one") {
    struct row {
        const char* outer;
        const char* inner;
        bool covers;
    };
    const row rows[] = {
        {"a/b", "a/b", true},
        {"a/b", "a/c", false},
        {"a/#", "a", true},          // '#' includes the parent level
        {"a/#", "a/b/c", true},
        {"a/#", "a/+/c", true},
        {"a/#", "a/#", true},
        {"a/+", "a/b", true},
        {"a/+", "a/+", true},
        {"a/+", "a/#", false},       // inner reaches deeper than outer
        {"a/+", "a/b/c", false},
        {"a/b", "a/+", false},       // inner is wider
        {"#", "x/y", true},
        {"#", "$SYS/x", false},      // '$' topics are outside leading wildcards
        {"+/x", "$SYS/x", false},
        {"$SYS/#", "$SYS/broker/uptime", true},
        {"test/nosubscribe", "test/nosubscribe", true},
        {"test/nosubscribe", "test/#", false},
        {"test/nosubscribe", "#", false},
        {"a/b/c", "a/b", false},
        {"a/b", "a/b/c", false},
    };
    for (const auto& r : rows) {
        INFO(r.outer << " covers " << r.inner);
        CHECK(filter_covers(r.outer, r.inner) == r.covers);
    }
}

TEST_CASE("access_policy: deny subscribe refuses the filter and narrower ones only") {
    const access_policy p({rule{true, action::subscribe, "test/nosubscribe"}});
    CHECK_FALSE(p.may_subscribe("test/nosubscribe"));
    CHECK(p.may_subscribe("test/#"));
    CHECK(p.may_subscribe("#"));
    CHECK(p.may_subscribe("other"));
    CHECK(p.may_publish("test/nosubscribe"));  // subscribe rules do not touch publishing
}

TEST_CASE("access_policy: allow rules restrict an action to what they match; deny wins") {
    const access_policy p({rule{false, action::publish, "sandbox/#"},
                           rule{true, action::publish, "sandbox/locked/#"}});
    CHECK(p.may_publish("sandbox/a"));
    CHECK(p.may_publish("sandbox"));
    CHECK_FALSE(p.may_publish("plant/a"));
    CHECK_FALSE(p.may_publish("sandbox/locked/x"));
    CHECK(p.may_subscribe("#"));  // no subscribe rules: everything allowed
}

TEST_CASE("access_policy: empty policy allows everything") {
    const access_policy p;
    CHECK(p.empty());
    CHECK(p.may_publish("a/b"));
    CHECK(p.may_subscribe("#"));
}
