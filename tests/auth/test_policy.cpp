#include "auth/policy.hpp"

#include <catch2/catch.hpp>

using namespace strata::auth;

namespace {

grant allow(verb v, std::string f) { return grant{.deny = false, .what = v, .filter = std::move(f)}; }
grant deny(verb v, std::string f) { return grant{.deny = true, .what = v, .filter = std::move(f)}; }

policy_config example() {
    policy_config c;
    c.roles["analyst"] = {allow(verb::subscribe, "acme/+/+/+/+/oee/#")};
    c.roles["operator"] = {allow(verb::subscribe, "acme/dresden/press-shop/line-2/#"),
                           allow(verb::publish, "acme/dresden/press-shop/line-2/#"),
                           allow(verb::command, "acme/dresden/press-shop/line-2/#")};
    c.roles["engineer"] = {allow(verb::subscribe, "acme/dresden/#"), allow(verb::publish, "acme/dresden/#"),
                           allow(verb::command, "acme/dresden/#"), deny(verb::command, "acme/dresden/+/+/safety/#"),
                           allow(verb::subscribe, "$SYS/#")};
    c.roles["device"] = {allow(verb::publish, "devices/{client_id}/#"), allow(verb::subscribe, "users/{user}/#"),
                         deny(verb::subscribe, "private/{user}/#")};
    c.users["ana"] = {"analyst"};
    c.users["olga"] = {"operator"};
    c.users["erik"] = {"engineer"};
    c.users["dev"] = {"device"};
    c.users["anonymous"] = {"analyst"};
    return c;
}

}  // namespace

TEST_CASE("filters_intersect") {
    struct row {
        const char* a;
        const char* b;
        bool yes;
    };
    const row rows[] = {
        {"a/b", "a/b", true},   {"a/b", "a/c", false}, {"a/+", "a/b", true},   {"a/#", "a", true},
        {"a", "a/#", true},     {"a", "a/+", false},   {"+/b", "a/+", true},   {"a/b/c", "a/#", true},
        {"#", "$SYS/x", false}, {"+/x", "$SYS/x", false}, {"$SYS/#", "$SYS/+", true}, {"a/b", "a/b/c", false},
        {"acme/#", "acme/dresden/#", true}, {"acme/+/x", "acme/y/#", true},
    };
    for (const auto& r : rows) {
        INFO(r.a << " vs " << r.b);
        CHECK(filters_intersect(r.a, r.b) == r.yes);
        CHECK(filters_intersect(r.b, r.a) == r.yes);
    }
}

TEST_CASE("policy: the analyst views OEE and cannot command") {
    const policy p(example());
    const auto g = p.compile("ana", "dash-1");
    REQUIRE(g);
    CHECK(g->roles() == std::vector<std::string>{"analyst"});
    CHECK(g->may_subscribe("acme/+/+/+/+/oee/#") == subscribe_verdict::full);
    CHECK(g->may_subscribe("acme/dresden/press-shop/line-2/press-7/oee") == subscribe_verdict::full);
    CHECK(g->may_subscribe("acme/#") == subscribe_verdict::partial);  // wider than the grant
    CHECK(g->may_subscribe("acme/dresden/press-shop/line-2/press-7/cmd/#") == subscribe_verdict::refused);
    CHECK(g->may_receive("acme/dresden/press-shop/line-2/press-7/oee"));
    CHECK_FALSE(g->may_receive("acme/dresden/press-shop/line-2/press-7/telemetry"));
    CHECK_FALSE(g->may_publish("acme/dresden/press-shop/line-2/press-7/cmd/stop", true));
    CHECK_FALSE(g->may_publish("acme/dresden/press-shop/line-2/press-7/oee", false));
}

TEST_CASE("policy: operator commands only their line; engineer more, with a deny") {
    const policy p(example());
    const auto olga = p.compile("olga", "hmi");
    CHECK(olga->may_publish("acme/dresden/press-shop/line-2/press-7/cmd/stop", true));
    CHECK_FALSE(olga->may_publish("acme/dresden/press-shop/line-1/press-3/cmd/stop", true));
    CHECK(olga->may_subscribe("acme/dresden/press-shop/line-2/#") == subscribe_verdict::full);
    CHECK(olga->may_subscribe("$SYS/#") == subscribe_verdict::refused);

    const auto erik = p.compile("erik", "laptop");
    CHECK(erik->may_publish("acme/dresden/press-shop/line-1/press-3/cmd/stop", true));
    CHECK_FALSE(erik->may_publish("acme/dresden/press-shop/line-1/safety/cmd/reset", true));  // deny wins
    CHECK(erik->may_publish("acme/dresden/press-shop/line-1/safety/state", false));  // not a command
    CHECK(erik->may_subscribe("$SYS/#") == subscribe_verdict::full);
    CHECK(erik->may_subscribe("#") == subscribe_verdict::partial);
}

TEST_CASE("policy: publish grant is not a command grant; deny publish also refuses commands") {
    policy_config c;
    c.roles["r"] = {allow(verb::publish, "a/#"), allow(verb::command, "a/#"), deny(verb::publish, "a/locked/#")};
    c.users["u"] = {"r"};
    c.roles["p"] = {allow(verb::publish, "a/#")};
    c.users["v"] = {"p"};
    const policy p(c);
    const auto u = p.compile("u", "c");
    CHECK(u->may_publish("a/x/cmd", true));
    CHECK_FALSE(u->may_publish("a/locked/cmd", true));
    const auto v = p.compile("v", "c");
    CHECK(v->may_publish("a/x", false));
    CHECK_FALSE(v->may_publish("a/x", true));
}

TEST_CASE("policy: placeholders, and values that would widen a filter") {
    const policy p(example());
    const auto d = p.compile("dev", "plc-7");
    CHECK(d->may_publish("devices/plc-7/temp", false));
    CHECK_FALSE(d->may_publish("devices/plc-8/temp", false));
    CHECK(d->may_subscribe("users/dev/#") == subscribe_verdict::full);
    CHECK(d->may_subscribe("users/other/#") == subscribe_verdict::refused);

    // A client id with wildcards or '/' does not widen the allow grant.
    for (const char* id : {"#", "+", "a/b", ""}) {
        INFO(id);
        const auto w = p.compile("dev", id);
        CHECK_FALSE(w->may_publish("devices/x/temp", false));
        CHECK_FALSE(w->may_publish("devices/a/b/temp", false));
    }
    // A deny grant with a widening value denies from that level down.
    policy_config c = example();
    c.roles["device"].push_back(allow(verb::subscribe, "private/#"));
    c.users["a/b"] = {"device"};
    const policy q(c);
    const auto w = q.compile("a/b", "x");
    CHECK_FALSE(w->may_receive("private/a/b/x"));
    CHECK_FALSE(w->may_receive("private/zzz"));
}

TEST_CASE("policy: anonymous, unknown users, no roles") {
    const policy p(example());
    const auto anon = p.compile("", "x");
    CHECK(anon->roles() == std::vector<std::string>{"analyst"});
    CHECK(anon->may_subscribe("acme/a/b/c/d/oee/#") == subscribe_verdict::full);
    const auto stranger = p.compile("mallory", "x");
    CHECK(stranger->roles().empty());
    CHECK(stranger->may_subscribe("#") == subscribe_verdict::refused);
    CHECK_FALSE(stranger->may_publish("a", false));

    const policy none;
    CHECK_FALSE(none.active());
    CHECK(none.compile("anyone", "x") == nullptr);

    policy_config bad = example();
    bad.users["zed"] = {"nosuchrole"};
    CHECK_THROWS_WITH(policy(bad), "users.zed: unknown role 'nosuchrole'");
}

TEST_CASE("policy: command subtrees") {
    policy_config c;
    c.command_subtrees = {"+/+/+/+/+/cmd/#", "plc/write/#"};
    const policy p(c);
    CHECK(p.is_command_subtree("acme/dresden/press-shop/line-2/press-7/cmd/stop"));
    CHECK(p.is_command_subtree("plc/write/x"));
    CHECK_FALSE(p.is_command_subtree("acme/dresden/press-shop/line-2/press-7/telemetry"));
}

TEST_CASE("decision cache: remembers the last few topics") {
    decision_cache c;
    CHECK_FALSE(c.contains("a"));
    c.put("a");
    CHECK(c.contains("a"));
    for (const char* t : {"b", "c", "d"}) c.put(t);
    CHECK(c.contains("a"));
    c.put("e");  // replaces the oldest
    CHECK_FALSE(c.contains("a"));
    CHECK(c.contains("e"));
    c.clear();
    CHECK_FALSE(c.contains("e"));
}
