// Routing core micro-benchmarks: subscription_trie match/insert/erase and
// retained_tree walks, over an ISA-95 shaped namespace:
//   enterprise/site/area/line/cell/equipment/metric
//   acme/site3/area2/line7/cell1/press4/temp
// 10 sites x 10 areas x 10 lines x 10 cells x 10 equipment x 10 metrics =
// 1,000,000 distinct topics.
//
// What to look for: match time per publish should stay flat from 1,000 to
// 1,000,000 subscriptions (only cache misses grow with the tree), and the
// mixed runs should cost "exact + a few wildcard branches", not more.
//
//   bench_trie --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <malloc.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "namespace/retained_tree.hpp"
#include "namespace/subscription_trie.hpp"

namespace {

using strata::ns::retained_tree;
using strata::ns::subscription_trie;

// What the broker will store per subscription: a session handle and the
// SUBSCRIBE options (QoS, No Local, Retain As Published, Retain Handling,
// subscription identifier).
struct sub_options {
    std::uint8_t qos = 1;
    bool no_local = false;
    bool retain_as_published = false;
    std::uint8_t retain_handling = 0;
    std::uint32_t identifier = 0;
};
using trie_t = subscription_trie<std::uint64_t, sub_options>;

constexpr std::uint32_t topic_space = 1'000'000;
constexpr std::array<const char*, 10> equipment{"press", "robot", "conveyor", "oven", "cnc",
                                                "pump", "mixer", "filler", "labeler", "scale"};
constexpr std::array<const char*, 10> metrics{"temp", "pressure", "speed", "state", "oee",
                                              "count", "vibration", "current", "power", "humidity"};

std::string topic_of(std::uint32_t index) {
    const std::uint32_t metric = index % 10;
    const std::uint32_t equip = index / 10 % 10;
    const std::uint32_t cell = index / 100 % 10;
    const std::uint32_t line = index / 1000 % 10;
    const std::uint32_t area = index / 10000 % 10;
    const std::uint32_t site = index / 100000 % 10;
    std::string t = "acme/site";
    t += std::to_string(site);
    t += "/area" + std::to_string(area);
    t += "/line" + std::to_string(line);
    t += "/cell" + std::to_string(cell);
    t += '/';
    t += equipment[equip];
    t += std::to_string(equip);
    t += '/';
    t += metrics[metric];
    return t;
}

// i -> a topic index spread over the whole tree (a bijection on [0, 10^6),
// 7919 being coprime with 10^6), so 1,000 subscriptions are not all in site0.
std::uint32_t scatter(std::uint32_t i) {
    return static_cast<std::uint32_t>((std::uint64_t{i} * 7919 + 13) % topic_space);
}

// Wildcard filters a plant's applications would hold: dashboards per area,
// an analytics job per metric, historians per line, and so on.
std::vector<std::string> wildcard_filters(std::size_t count, std::mt19937& rng) {
    auto r = [&](int n) { return std::to_string(std::uniform_int_distribution<int>(0, n - 1)(rng)); };
    auto metric = [&] { return std::string(metrics[std::uniform_int_distribution<int>(0, 9)(rng)]); };
    std::vector<std::string> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        switch (i % 6) {
            case 0: out.push_back("acme/+/area" + r(10) + "/#"); break;
            case 1: out.push_back("+/site" + r(10) + "/+/+/+/+/" + metric()); break;
            case 2: out.push_back("acme/site" + r(10) + "/area" + r(10) + "/line" + r(10) + "/#"); break;
            case 3: out.push_back("acme/site" + r(10) + "/+/+/+/+/" + metric()); break;
            case 4: out.push_back("acme/+/+/+/+/+/oee"); break;
            default:
                out.push_back("acme/site" + r(10) + "/area" + r(10) + "/+/cell" + r(10) + "/+/" + metric());
                break;
        }
    }
    return out;
}

std::size_t heap_in_use() { return mallinfo2().uordblks; }

// One trie alive at a time: 1M subscriptions are ~100+ MB.
struct trie_fixture {
    std::size_t exact = 0;
    std::size_t wildcard = 0;
    std::unique_ptr<trie_t> trie;
    std::vector<std::string> publish_topics;
    double bytes_per_sub = 0;
};

trie_fixture& fixture(std::size_t exact, std::size_t wildcard) {
    static trie_fixture f;
    if (f.trie && f.exact == exact && f.wildcard == wildcard) return f;
    f.trie.reset();
    f.publish_topics.clear();
    f.exact = exact;
    f.wildcard = wildcard;
    std::mt19937 rng(12345);
    std::vector<std::string> topics;
    topics.reserve(exact);
    for (std::uint32_t i = 0; i < exact; ++i) topics.push_back(topic_of(scatter(i)));
    const std::vector<std::string> wild = wildcard_filters(wildcard, rng);

    const std::size_t before = heap_in_use();
    f.trie = std::make_unique<trie_t>();
    std::uint64_t id = 1;
    for (const std::string& t : topics) f.trie->insert(t, id++, sub_options{});
    for (const std::string& w : wild) f.trie->insert(w, id++, sub_options{});
    f.bytes_per_sub = double(heap_in_use() - before) / double(exact + wildcard);

    // Publish to topics that have an exact subscriber, so every run delivers
    // at least one message and sizes are compared like for like.
    std::uniform_int_distribution<std::size_t> pick(0, topics.size() - 1);
    for (int i = 0; i < 4096; ++i) f.publish_topics.push_back(topics[pick(rng)]);
    return f;
}

// `hot` publishes cycle over 16 topics whose paths stay in cache: that is
// the algorithmic cost alone. Otherwise they cycle over 4096 random topics,
// and at 1M subscriptions (a tree much larger than the CPU caches) every
// level is a cache miss: what grows there is memory latency, not work.
void run_match(benchmark::State& state, std::size_t exact, std::size_t wildcard, bool hot = false) {
    trie_fixture& f = fixture(exact, wildcard);
    const std::size_t mask = hot ? 15 : 4095;
    std::size_t i = 0;
    std::uint64_t delivered = 0;
    std::uint64_t groups = 0;
    for (auto _ : state) {
        const std::string& topic = f.publish_topics[i++ & mask];
        f.trie->match(
            topic, [&](std::uint64_t s, const sub_options&) { delivered += s != 0; },
            [&](const trie_t::shared_group&) { ++groups; });
    }
    benchmark::DoNotOptimize(delivered);
    state.counters["subs"] = double(f.trie->size());
    state.counters["nodes"] = double(f.trie->node_count());
    state.counters["deliveries/match"] = double(delivered) / double(state.iterations());
    state.counters["heap B/sub"] = f.bytes_per_sub;
}

void BM_match_exact(benchmark::State& state) { run_match(state, std::size_t(state.range(0)), 0); }
BENCHMARK(BM_match_exact)->Arg(1'000)->Arg(100'000)->Arg(1'000'000);

void BM_match_exact_hot(benchmark::State& state) { run_match(state, std::size_t(state.range(0)), 0, true); }
BENCHMARK(BM_match_exact_hot)->Arg(1'000)->Arg(100'000)->Arg(1'000'000);

// N exact subscriptions plus 1,000 wildcard filters from the templates above.
void BM_match_mixed(benchmark::State& state) { run_match(state, std::size_t(state.range(0)), 1'000); }
BENCHMARK(BM_match_mixed)->Arg(1'000)->Arg(100'000)->Arg(1'000'000);

void BM_match_mixed_hot(benchmark::State& state) { run_match(state, std::size_t(state.range(0)), 1'000, true); }
BENCHMARK(BM_match_mixed_hot)->Arg(1'000)->Arg(100'000)->Arg(1'000'000);

// 10% of all subscriptions are wildcards: deliveries per match grow with N
// (every wildcard filter has more subscribers), so look at ns/delivery.
void BM_match_wildcard_10pct(benchmark::State& state) {
    const auto n = std::size_t(state.range(0));
    run_match(state, n - n / 10, n / 10);
}
BENCHMARK(BM_match_wildcard_10pct)->Arg(1'000)->Arg(100'000)->Arg(1'000'000);

// Fan-out: 100 subscribers on one topic (an HMI wall, a historian cluster).
void BM_match_fanout_100(benchmark::State& state) {
    trie_t t;
    for (std::uint64_t s = 1; s <= 100; ++s) t.insert("acme/site1/area1/line1/cell1/press1/state", s, {});
    std::uint64_t sum = 0;
    for (auto _ : state) {
        t.match(
            "acme/site1/area1/line1/cell1/press1/state",
            [&](std::uint64_t s, const sub_options& o) { sum += s + o.qos; }, [](const trie_t::shared_group&) {});
    }
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_match_fanout_100);

// Subscribe + unsubscribe of a new filter on a trie already holding N: the
// filter creates its own leaf nodes and erase prunes them again.
void BM_insert_erase(benchmark::State& state) {
    trie_fixture& f = fixture(std::size_t(state.range(0)), 0);
    std::vector<std::string> fresh;
    for (std::uint32_t i = 0; i < 4096; ++i)
        fresh.push_back(topic_of(scatter(i)) + "/sub" + std::to_string(i));  // not in the trie yet
    std::size_t i = 0;
    for (auto _ : state) {
        const std::string& topic = fresh[i++ & 4095];
        f.trie->insert(topic, 999'999'999, sub_options{});
        f.trie->erase(topic, 999'999'999);
    }
    state.counters["subs"] = double(f.trie->size());
}
BENCHMARK(BM_insert_erase)->Arg(1'000)->Arg(100'000)->Arg(1'000'000);

// Building a trie of N exact subscriptions from scratch, and tearing it down
// by unsubscribing every one (prunes down to the root).
void BM_build_and_erase_all(benchmark::State& state) {
    const auto n = std::uint32_t(state.range(0));
    std::vector<std::string> topics;
    for (std::uint32_t i = 0; i < n; ++i) topics.push_back(topic_of(scatter(i)));
    for (auto _ : state) {
        trie_t t;
        std::uint64_t id = 1;
        for (const std::string& topic : topics) t.insert(topic, id++, sub_options{});
        id = 1;
        for (const std::string& topic : topics) t.erase(topic, id++);
        if (t.node_count() != 1) state.SkipWithError("not pruned");
    }
    state.SetItemsProcessed(state.iterations() * n * 2);  // inserts + erases
}
BENCHMARK(BM_build_and_erase_all)->Arg(1'000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

// Retained tree, 100k topics: all ten metrics of every machine in site0 (a
// plant publishes its whole state retained). Values are shared payloads as
// in the broker; the heap counter is the tree's own overhead (the payloads
// exist beforehand).
struct retained_fixture {
    retained_tree<std::shared_ptr<const std::string>> tree;
    std::vector<std::shared_ptr<const std::string>> payloads;
    double bytes_per_topic = 0;
};

retained_fixture& retained(std::size_t n) {
    static std::unique_ptr<retained_fixture> f;
    static std::size_t size = 0;
    if (f && size == n) return *f;
    f.reset();
    f = std::make_unique<retained_fixture>();
    size = n;
    std::vector<std::string> topics;
    for (std::uint32_t i = 0; i < n; ++i) {
        topics.push_back(topic_of(i));
        f->payloads.push_back(std::make_shared<const std::string>(R"({"v":21.5,"q":"good"})"));
    }
    const std::size_t before = heap_in_use();
    for (std::uint32_t i = 0; i < n; ++i) f->tree.set(topics[i], f->payloads[i]);
    f->bytes_per_topic = double(heap_in_use() - before) / double(n);
    return *f;
}

void run_retained(benchmark::State& state, const char* filter) {
    retained_fixture& f = retained(std::size_t(state.range(0)));
    std::size_t count = 0;
    for (auto _ : state) {
        count = 0;
        // Count only: the walk itself, not the payloads, is what is measured.
        f.tree.match(filter, [&](const std::shared_ptr<const std::string>& v) { count += v != nullptr; });
    }
    state.counters["topics"] = double(f.tree.size());
    state.counters["matched"] = double(count);
    state.counters["heap B/topic"] = f.bytes_per_topic;
    state.SetItemsProcessed(std::int64_t(state.iterations() * count));
}

void BM_retained_hash_walk(benchmark::State& state) { run_retained(state, "#"); }
BENCHMARK(BM_retained_hash_walk)->Arg(100'000)->Unit(benchmark::kMillisecond);

void BM_retained_area_subtree(benchmark::State& state) { run_retained(state, "acme/site0/area3/#"); }
BENCHMARK(BM_retained_area_subtree)->Arg(100'000)->Unit(benchmark::kMicrosecond);

void BM_retained_plus_metric(benchmark::State& state) { run_retained(state, "acme/+/+/+/+/+/temp"); }
BENCHMARK(BM_retained_plus_metric)->Arg(100'000)->Unit(benchmark::kMicrosecond);

void BM_retained_exact(benchmark::State& state) {
    retained_fixture& f = retained(std::size_t(state.range(0)));
    std::vector<std::string> topics;
    for (std::uint32_t i = 0; i < 4096; ++i) topics.push_back(topic_of(scatter(i) % 100'000));
    std::size_t i = 0;
    std::size_t found = 0;
    for (auto _ : state) found += f.tree.find(topics[i++ & 4095]) != nullptr;
    benchmark::DoNotOptimize(found);
}
BENCHMARK(BM_retained_exact)->Arg(100'000);

}  // namespace

BENCHMARK_MAIN();
