// Namespace model micro-benchmarks: what enforcement adds to one publish.
//
// The broker calls model::check() once per PUBLISH. The issue's budget is
// "enforcement on costs <= 10% of fan-in throughput", so what matters is the
// passing path: a modelled telemetry topic (six levels, the optional cell,
// patterns on three of them) with and without a payload schema, plus the
// free path ($SYS), the refusal path (message built), the per-level walk a
// routing trie would use, and level-pattern matching against std::regex.
// check() keeps what a topic reads as in a per-thread cache, so the passing
// benchmarks measure a topic seen before; BM_evaluate_topic_uncached
// measures a new one.
//
//   bench_model --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <regex>
#include <string>
#include <vector>

#include "namespace/model.hpp"
#include "namespace/model_pattern.hpp"
#include "namespace/subscription_trie.hpp"

// Every heap allocation in this process is counted, so that each benchmark
// can report allocations per operation ("allocs/op"): the passing path is
// meant to have none.
namespace {
std::atomic<std::uint64_t> allocations{0};
}
void* operator new(std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
// GCC cannot see that the operator new above is malloc-based.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace {

// Call after the timing loop: allocations per iteration since `before`.
void report_allocations(benchmark::State& state, std::uint64_t before) {
    const std::uint64_t n = allocations.load(std::memory_order_relaxed) - before;
    state.counters["allocs/op"] =
        benchmark::Counter(static_cast<double>(n) / static_cast<double>(std::max<std::int64_t>(state.iterations(), 1)));
}

using namespace strata::ns;

const std::string deploy = std::string(STRATA_SOURCE_DIR) + "/deploy/namespace";

// The example plant (every class has a schema).
const std::shared_ptr<const model>& acme() {
    static const auto m = model::load(deploy + "/acme.yaml");
    return m;
}

// The same levels with classes that have no schema: topic-only checks.
const std::shared_ptr<const model>& acme_no_schema() {
    static const auto m = model::parse(R"(
levels:
  - {name: enterprise, names: [acme]}
  - {name: site, names: [dresden, leipzig]}
  - {name: area, names: [press-shop, assembly]}
  - {name: line, pattern: "line-[0-9]{1,2}"}
  - {name: cell, pattern: "cell-[0-9]{1,2}", optional: true}
  - {name: equipment, pattern: "[a-z]+(-[a-z]+)*-[0-9]{1,3}"}
classes:
  telemetry: {retain: any}
  state: {retain: required}
  oee: {under: [line, equipment]}
  alarm:
  cmd: {retain: forbidden, command: true}
free: ["$SYS/#", "sandbox/#"]
enforcement:
  mode: reject
  subtrees: {"acme/leipzig/#": warn, "acme/dresden/assembly/#": quarantine}
)",
                                       "bench.yaml", deploy);
    return m;
}

// 64 distinct passing topics, so that branch prediction and caches see a
// realistic mix rather than one topic.
std::vector<std::string> telemetry_topics() {
    std::vector<std::string> out;
    const char* sites[] = {"dresden", "leipzig"};
    const char* areas[] = {"press-shop", "assembly"};
    const char* equipment[] = {"press-7", "robot-12", "spot-welder-3", "conveyor-21"};
    for (int i = 0; i < 64; ++i) {
        std::string t = "acme/";
        t += sites[i % 2];
        t += "/";
        t += areas[(i / 2) % 2];
        t += "/line-" + std::to_string(1 + (i / 4) % 4);
        if (i % 3 != 0) t += "/cell-" + std::to_string(1 + i % 5);
        t += "/";
        t += equipment[(i / 16) % 4];
        t += "/telemetry/temperature";
        out.push_back(std::move(t));
    }
    return out;
}

const std::string telemetry_payload =
    R"({"value": 21.5, "unit": "degC", "ts": "2024-05-01T12:00:00.120Z", "quality": "good"})";

void BM_evaluate_topic_only(benchmark::State& state) {
    const auto& m = acme_no_schema();
    const auto topics = telemetry_topics();
    std::size_t i = 0;
    const std::uint64_t before = allocations.load();
    for (auto _ : state) {
        const verdict v = m->evaluate(topics[i++ & 63], telemetry_payload, false);
        benchmark::DoNotOptimize(v.result);
    }
    report_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_evaluate_topic_only);

// Topics seen for the first time (more distinct topics than the per-thread
// cache holds, so nearly every check reads its topic level by level and
// stores the reading): the cost of a new topic.
void BM_evaluate_topic_uncached(benchmark::State& state) {
    const auto& m = acme_no_schema();
    const auto bases = telemetry_topics();
    std::vector<std::string> topics;
    for (int i = 0; i < 1 << 15; ++i) topics.push_back(bases[static_cast<std::size_t>(i & 63)] + "/sensor-" + std::to_string(i));
    std::size_t i = 0;
    for (auto _ : state) {
        const verdict v = m->evaluate(topics[i++ & (topics.size() - 1)], telemetry_payload, false);
        benchmark::DoNotOptimize(v.result);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_evaluate_topic_uncached);

// The same, counted in the statistics (what the broker calls), 1 and 2 threads.
void BM_check_topic_only(benchmark::State& state) {
    const auto& m = acme_no_schema();
    const auto topics = telemetry_topics();
    std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7;
    for (auto _ : state) {
        const verdict v = m->check(topics[i++ & 63], telemetry_payload, false);
        benchmark::DoNotOptimize(v.result);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_check_topic_only)->Threads(1)->Threads(2);

void BM_evaluate_with_schema(benchmark::State& state) {
    const auto& m = acme();
    const auto topics = telemetry_topics();
    std::size_t i = 0;
    const std::uint64_t before = allocations.load();
    for (auto _ : state) {
        const verdict v = m->evaluate(topics[i++ & 63], telemetry_payload, false);
        benchmark::DoNotOptimize(v.result);
    }
    report_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(telemetry_payload.size()));
}
BENCHMARK(BM_evaluate_with_schema);

void BM_evaluate_free(benchmark::State& state) {
    const auto& m = acme_no_schema();
    const std::string topic = "$SYS/broker/clients/connected";
    const std::uint64_t before = allocations.load();
    for (auto _ : state) {
        const verdict v = m->evaluate(topic, "", false);
        benchmark::DoNotOptimize(v.result);
    }
    report_allocations(state, before);
}
BENCHMARK(BM_evaluate_free);

// A refused topic: the reason text is built (allocates).
void BM_evaluate_topic_violation(benchmark::State& state) {
    const auto& m = acme_no_schema();
    const std::string topic = "acme/dresdn/press-shop/line-2/press-7/telemetry/temperature";
    const std::uint64_t before = allocations.load();
    for (auto _ : state) {
        const verdict v = m->evaluate(topic, "", false);
        benchmark::DoNotOptimize(v.reason.data());
    }
    report_allocations(state, before);
}
BENCHMARK(BM_evaluate_topic_violation);

// A refused payload: parse, validate, then explain.
void BM_evaluate_payload_violation(benchmark::State& state) {
    const auto& m = acme();
    const std::string topic = "acme/dresden/press-shop/line-2/press-7/telemetry/temperature";
    const std::string payload = R"({"value": "hot", "ts": "2024-05-01T12:00:00Z"})";
    const std::uint64_t before = allocations.load();
    for (auto _ : state) {
        const verdict v = m->evaluate(topic, payload, false);
        benchmark::DoNotOptimize(v.reason.data());
    }
    report_allocations(state, before);
}
BENCHMARK(BM_evaluate_payload_violation);

// The per-level walk a routing trie would do while matching.
void BM_walk(benchmark::State& state) {
    const auto& m = acme_no_schema();
    const std::vector<std::string> levels = {"acme", "dresden", "press-shop", "line-2", "cell-1", "press-7", "telemetry",
                                             "temperature"};
    const std::uint64_t before = allocations.load();
    for (auto _ : state) {
        const model_node* n = m->root();
        for (const std::string& l : levels) n = m->child(n, l);
        benchmark::DoNotOptimize(m->class_at(n));
    }
    report_allocations(state, before);
}
BENCHMARK(BM_walk);

// What the broker's router does with a model: the subscription trie (one
// subscriber on "acme/#", as in the fan-in scenario, so the trie's descent
// ends after the first level) matches the topic and feeds each level to the
// model's walk; then check() on the walk. Compare with BM_check_topic_only
// (the per-topic cache) plus BM_match_only (the trie alone).
void BM_match_and_check_walked(benchmark::State& state) {
    const auto& m = acme_no_schema();
    const auto topics = telemetry_topics();
    subscription_trie<int, int> trie;
    trie.insert("acme/#", 1, 0);
    std::size_t i = 0;
    const std::uint64_t before = allocations.load();
    for (auto _ : state) {
        const std::string& topic = topics[i++ & 63];
        topic_walk walk(*m, topic);
        int matched = 0;
        trie.match(
            topic, [&](int, int) { ++matched; }, [](const auto&) {},
            [&walk](std::string_view level, std::size_t begin) { return walk.step(level, begin); });
        const verdict v = m->check(walk, telemetry_payload, false);
        benchmark::DoNotOptimize(v.result);
        benchmark::DoNotOptimize(matched);
    }
    report_allocations(state, before);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_match_and_check_walked);

// The broker's fan-in benchmark (benchmarks/model_cost): its model and the
// ten topics strata-bench publishes on, one subscriber on "acme/#".
const std::shared_ptr<const model>& fanin_model() {
    static const auto m = model::load(std::string(STRATA_SOURCE_DIR) + "/benchmarks/models/fanin.yaml");
    return m;
}

std::vector<std::string> fanin_topics() {
    std::vector<std::string> out;
    for (int i = 0; i < 10; ++i)
        out.push_back("acme/plant1/area" + std::to_string(1 + i % 4) + "/line" + std::to_string(1 + i % 8) + "/cell" +
                      std::to_string(1 + i % 16) + "/press" + std::to_string(i) + "/temp");
    return out;
}

const std::string fanin_payload(16, 'x');

void BM_fanin_check_cached(benchmark::State& state) {
    const auto& m = fanin_model();
    const auto topics = fanin_topics();
    std::size_t i = 0;
    for (auto _ : state) {
        const verdict v = m->check(topics[i++ % topics.size()], fanin_payload, false);
        benchmark::DoNotOptimize(v.result);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_fanin_check_cached);

void BM_fanin_match_and_check_walked(benchmark::State& state) {
    const auto& m = fanin_model();
    const auto topics = fanin_topics();
    subscription_trie<int, int> trie;
    trie.insert("acme/#", 1, 0);
    std::size_t i = 0;
    for (auto _ : state) {
        const std::string& topic = topics[i++ % topics.size()];
        topic_walk walk(*m, topic);
        int matched = 0;
        trie.match(
            topic, [&](int, int) { ++matched; }, [](const auto&) {},
            [&walk](std::string_view level, std::size_t begin) { return walk.step(level, begin); });
        const verdict v = m->check(walk, fanin_payload, false);
        benchmark::DoNotOptimize(v.result);
        benchmark::DoNotOptimize(matched);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_fanin_match_and_check_walked);

void BM_match_only(benchmark::State& state) {
    const auto topics = telemetry_topics();
    subscription_trie<int, int> trie;
    trie.insert("acme/#", 1, 0);
    std::size_t i = 0;
    for (auto _ : state) {
        int matched = 0;
        trie.match(topics[i++ & 63], [&](int, int) { ++matched; }, [](const auto&) {});
        benchmark::DoNotOptimize(matched);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_match_only);

void BM_level_pattern_dfa(benchmark::State& state) {
    const compiled_pattern p = compiled_pattern::compile("[a-z]+(-[a-z]+)*-[0-9]{1,3}", compiled_pattern::mode::full);
    const std::string name = "spot-welder-3";
    for (auto _ : state) benchmark::DoNotOptimize(p.match(name));
}
BENCHMARK(BM_level_pattern_dfa);

void BM_level_pattern_std_regex(benchmark::State& state) {
    const std::regex p("[a-z]+(-[a-z]+)*-[0-9]{1,3}", std::regex::ECMAScript | std::regex::optimize);
    const std::string name = "spot-welder-3";
    for (auto _ : state) benchmark::DoNotOptimize(std::regex_match(name, p));
}
BENCHMARK(BM_level_pattern_std_regex);

}  // namespace

BENCHMARK_MAIN();
