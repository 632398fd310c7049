// The authorization checks on the publish and delivery paths: a session's
// compiled grants (placeholders substituted at CONNECT) against a topic.
//   build-release/benchmarks/bench_grants
#include "auth/policy.hpp"

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

namespace {

using namespace strata::auth;

policy make_policy(std::size_t extra_grants) {
    policy_config c;
    auto& g = c.roles["operator"];
    g.push_back({false, verb::publish, "acme/dresden/press-shop/line-2/#"});
    g.push_back({false, verb::command, "acme/dresden/press-shop/line-2/#"});
    g.push_back({false, verb::subscribe, "acme/+/+/+/+/oee"});
    g.push_back({true, verb::publish, "acme/+/+/+/safety-gate-1/#"});
    g.push_back({false, verb::publish, "sandbox/devices/{client_id}/#"});
    for (std::size_t i = 0; i < extra_grants; ++i)
        g.push_back({false, verb::publish, "acme/site-" + std::to_string(i) + "/#"});
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

}  // namespace

BENCHMARK_MAIN();
