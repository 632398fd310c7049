// The authorization checks on the publish and delivery paths: a session's
// compiled grants (placeholders substituted at CONNECT) against a topic.
//   build-release/benchmarks/bench_grants
// bm_story_*: the seed's engineer on the shipped model, written as topic
// filters (as before grants could name levels: two filters per rule for the
// optional cell) and as `where:` grants, checking the same commands.
#include "auth/policy.hpp"
#include "namespace/model.hpp"

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

namespace {

using namespace strata::auth;

policy make_policy(std::size_t extra_grants) {
    policy_config c;
    auto& g = c.roles["operator"];
    const auto add = [&g](bool deny, verb v, std::string f) {
        g.push_back({.deny = deny, .what = v, .filter = std::move(f)});
    };
    add(false, verb::publish, "acme/dresden/press-shop/line-2/#");
    add(false, verb::command, "acme/dresden/press-shop/line-2/#");
    add(false, verb::subscribe, "acme/+/+/+/+/oee");
    add(true, verb::publish, "acme/+/+/+/safety-gate-1/#");
    add(false, verb::publish, "sandbox/devices/{client_id}/#");
    for (std::size_t i = 0; i < extra_grants; ++i) add(false, verb::publish, "acme/site-" + std::to_string(i) + "/#");
    c.users["olga"] = {"operator"};
    return policy(c);
}

const std::vector<std::string> topics = {
    "acme/dresden/press-shop/line-2/cell-1/press-7/telemetry/temperature",
    "acme/dresden/press-shop/line-1/press-3/telemetry/pressure",
    "sandbox/devices/hmi-2/status",
    "acme/dresden/press-shop/line-2/safety-gate-1/state",
};

void bm_may_publish(benchmark::State& state) {
    const auto p = make_policy(static_cast<std::size_t>(state.range(0)));
    const auto g = p.compile("olga", "hmi-2");
    std::size_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(g->may_publish(topics[i++ % topics.size()], false));
    }
    state.counters["grants"] = static_cast<double>(5 + state.range(0));
}
BENCHMARK(bm_may_publish)->Arg(0)->Arg(20)->Arg(100);

void bm_may_receive(benchmark::State& state) {
    const auto p = make_policy(0);
    const auto g = p.compile("olga", "hmi-2");
    std::size_t i = 0;
    for (auto _ : state) benchmark::DoNotOptimize(g->may_receive(topics[i++ % topics.size()]));
}
BENCHMARK(bm_may_receive);

void bm_compile_at_connect(benchmark::State& state) {
    const auto p = make_policy(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(p.compile("olga", "hmi-2"));
}
BENCHMARK(bm_compile_at_connect)->Arg(0)->Arg(100);

std::shared_ptr<const strata::ns::model> acme() {
    static const auto m = strata::ns::model::load(STRATA_SOURCE_DIR "/deploy/namespace/acme.yaml");
    return m;
}

policy story(bool by_levels) {
    policy_config c;
    auto& g = c.roles["engineer"];
    if (by_levels) {
        g.push_back({.deny = false, .what = verb::command, .where = {{"site", {"dresden"}}}});
        g.push_back({.deny = true, .what = verb::command, .where = {{"equipment", {"safety-gate-*"}}}});
        g.push_back({.deny = false, .what = verb::subscribe, .classes = {"oee"}});
    } else {
        g.push_back({.deny = false, .what = verb::command, .filter = "acme/dresden/#"});
        g.push_back({.deny = true, .what = verb::command, .filter = "acme/dresden/+/+/safety-gate-1/#"});
        g.push_back({.deny = true, .what = verb::command, .filter = "acme/dresden/+/+/+/safety-gate-1/#"});
        g.push_back({.deny = false, .what = verb::subscribe, .filter = "acme/+/+/+/oee"});
        g.push_back({.deny = false, .what = verb::subscribe, .filter = "acme/+/+/+/+/oee"});
        g.push_back({.deny = false, .what = verb::subscribe, .filter = "acme/+/+/+/+/+/oee"});
    }
    c.users["erik"] = {"engineer"};
    return policy(c, acme());
}

const std::vector<std::string> commands = {
    "acme/dresden/press-shop/line-2/cell-1/press-7/cmd/setpoint",
    "acme/dresden/press-shop/line-1/press-3/cmd/start",
    "acme/dresden/press-shop/line-2/safety-gate-1/cmd/open",
    "acme/dresden/assembly/line-4/cell-2/robot-12/cmd/reset",
};

const std::vector<std::string> deliveries = {
    "acme/dresden/press-shop/line-2/oee",
    "acme/dresden/press-shop/line-2/cell-1/press-7/oee",
    "acme/dresden/press-shop/line-2/press-7/telemetry/temperature",
    "acme/leipzig/assembly/line-1/robot-3/oee",
};

// Arg 0: filters, 1: levels and classes.
void bm_story_command(benchmark::State& state) {
    const auto p = story(state.range(0) == 1);
    const auto g = p.compile("erik", "erik-1");
    std::size_t i = 0;
    for (auto _ : state) benchmark::DoNotOptimize(g->may_publish(commands[i++ % commands.size()], true));
    state.SetLabel(state.range(0) == 1 ? "where/class" : "filters");
}
BENCHMARK(bm_story_command)->Arg(0)->Arg(1);

void bm_story_receive(benchmark::State& state) {
    const auto p = story(state.range(0) == 1);
    const auto g = p.compile("erik", "erik-1");
    std::size_t i = 0;
    for (auto _ : state) benchmark::DoNotOptimize(g->may_receive(deliveries[i++ % deliveries.size()]));
    state.SetLabel(state.range(0) == 1 ? "where/class" : "filters");
}
BENCHMARK(bm_story_receive)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
