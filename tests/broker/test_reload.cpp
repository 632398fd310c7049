// What a reload finds between two configs (config_diff.hpp), and the
// per-thread view of a value a reload replaces (core/live.hpp).
#include "broker/config_diff.hpp"
#include "broker/core/live.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <thread>

using namespace strata::broker;

namespace {

config parse(const std::string& text) { return parse_config(text, "t.yaml"); }

const std::string base = R"(listeners:
  - {name: default, protocol: mqtt, bind: "127.0.0.1:1883"}
  - {name: secure, protocol: mqtt+tls, bind: "127.0.0.1:8883", tls: {cert: a.crt, key: a.key}}
bridges:
  - {name: up, remote: "mqtt://10.0.0.1:1883", forward: [{local: "a/#", remote: "a/#"}]}
  - {name: gone, remote: "mqtt://10.0.0.2:1883", forward: [{local: "b/#", remote: "b/#"}]}
)";

}  // namespace

TEST_CASE("reconcile: an unchanged file changes nothing") {
    config next = parse(base);
    const auto c = reconcile(parse(base), next);
    CHECK(c.live.empty());
    CHECK(c.needs_restart.empty());
}

TEST_CASE("reconcile: live sections say what changed, key by key") {
    const config running = parse(base);
    config next = parse(base + R"(limits: {max_queued_messages: 10, max_inflight: 8}
auth: {limits: {publish_rate: 5}}
access: [{deny: publish, on: "x/#"}]
alerts: {levels: 3}
log: {level: debug}
)");
    const auto c = reconcile(running, next);
    REQUIRE(c.needs_restart.empty());
    const std::vector<std::pair<std::string, std::string>> want{
        {"limits", "max_queued_messages 1000 -> 10, max_inflight 64 -> 8"},
        {"log", "level info -> debug"},
        {"auth.limits", "publish_rate 0 -> 5"},
        {"access", "0 rules -> 1 rules"},
        {"alerts", "levels 2 -> 3"},
    };
    CHECK(c.live == want);
}

TEST_CASE("reconcile: bridges by name; where a rule stands in the file is no change") {
    const config running = parse(base);
    // `up` moves down a line (its rules' file:line change) and gets another remote.
    config next = parse(R"(listeners:
  - {name: default, protocol: mqtt, bind: "127.0.0.1:1883"}
  - {name: secure, protocol: mqtt+tls, bind: "127.0.0.1:8883", tls: {cert: a.crt, key: a.key}}
bridges:
  - {name: new, remote: "mqtt://10.0.0.3:1883", forward: [{local: "c/#", remote: "c/#"}]}
  - {name: up, remote: "mqtt://10.0.0.9:1883", forward: [{local: "a/#", remote: "a/#"}]}
)");
    auto c = reconcile(running, next);
    REQUIRE(c.live.size() == 1);
    CHECK(c.live[0].first == "bridges");
    CHECK(c.live[0].second == "added new; removed gone; changed up");

    config moved = parse("\n\n" + base);
    CHECK(reconcile(running, moved).live.empty());
}

TEST_CASE("reconcile: what needs a restart is named and set back to what runs") {
    const config running = parse(base);
    std::string text = base;
    text.replace(text.find("1883\""), 5, "1884\"");
    text.replace(text.find("key: a.key}"), 11, "key: b.key, min_version: \"1.3\"}");
    text.replace(text.find("cert: a.crt"), 11, "cert: b.crt");
    config next = parse(text + R"(persistence: {path: ./other, durability: always}
threads: 4
broker_id: plant-9
auth: {password_checks: {threads: 1}, command_subtrees: ["cmd/#"]}
limits: {max_connections: 10}
)");
    const auto c = reconcile(running, next);
    const std::vector<std::string> want{"listeners[0].bind", "listeners[1].tls.min_version", "persistence.path",
                                        "persistence.durability", "threads", "broker_id", "auth.password_checks",
                                        "auth.command_subtrees"};
    CHECK(c.needs_restart == want);
    CHECK(next.listeners[0].bind == "127.0.0.1:1883");
    CHECK(next.listeners[1].tls->min_version == "1.2");
    // The certificate files are the reload's to read.
    CHECK(next.listeners[1].tls->cert == "b.crt");
    CHECK(next.persistence == running.persistence);
    CHECK(next.threads == running.threads);
    CHECK(next.broker_id.empty());
    CHECK(next.policy.command_subtrees.empty());
    // The live part goes through.
    CHECK(next.limits.max_connections == 10);
    REQUIRE(c.live.size() == 1);
    CHECK(c.live[0].first + ": " + c.live[0].second == "limits: max_connections 100000 -> 10");

    config fewer = parse("listeners: [{name: default, protocol: mqtt, bind: \"127.0.0.1:1883\"}]\n");
    CHECK(reconcile(running, fewer).needs_restart == std::vector<std::string>{"listeners"});
    CHECK(fewer.listeners.size() == 2);
}

TEST_CASE("live: each thread sees a new value from its next get(); the old one lives while held") {
    strata::broker::core::live<std::string> v(std::make_shared<const std::string>("one"));
    const std::string* first = v.get();
    CHECK(*first == "one");
    const auto g = v.generation();
    auto old = v.install(std::make_shared<const std::string>("two"));
    CHECK(v.generation() != g);
    // Not yet refreshed on this thread: the old value, still alive.
    CHECK(*first == "one");
    CHECK(*v.get() == "two");
    CHECK(*old == "one");
    std::string seen;
    std::thread([&] { seen = *v.get(); }).join();
    CHECK(seen == "two");
    // Two values of one type keep their own generations.
    strata::broker::core::live<std::string> w(std::make_shared<const std::string>("w"));
    CHECK(*w.get() == "w");
    CHECK(*v.get() == "two");
    CHECK(*w.get() == "w");
}
