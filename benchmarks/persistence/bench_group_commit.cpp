// Group-commit throughput: QoS 1 fan-in as the store sees it. Producer
// threads (network threads) each keep a window of unacknowledged publishes
// (like Receive Maximum), submit one put_delivery per message and count it
// acknowledged when when_durable says ok. One line per durability mode,
// plus a baseline where the acknowledgement is immediate and nothing is
// stored (the harness's own ceiling).
//
//   bench_group_commit [--seconds S] [--producers P] [--window W] [--payload BYTES]
#include "persistence/store.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
namespace sp = strata::persistence;
using clock_type = std::chrono::steady_clock;

namespace {

struct config {
    double seconds = 3;
    int producers = 4;
    int window = 100;
    std::size_t payload = 100;
};

struct result {
    double acked_per_s = 0;
    std::uint64_t commits = 0;
    double ops_per_commit = 0;
    double p50_ms = 0, p99_ms = 0;
};

sp::stored_delivery make_delivery(int producer, std::uint64_t seq, const std::string& payload) {
    sp::stored_delivery d;
    d.client_id = "historian-" + std::to_string(producer);
    d.seq = seq;
    d.msg.topic = "acme/dresden/press-shop/line-2/cell-1/press-" + std::to_string(producer) + "/temperature";
    d.msg.payload = payload;
    d.msg.qos = 1;
    d.qos = 1;
    return d;
}

// mode == nullptr: baseline without a store.
result run(const config& c, const sp::durability* mode, const std::string& dir) {
    std::unique_ptr<sp::store> s;
    if (mode) {
        std::error_code ec;
        fs::remove_all(dir, ec);
        sp::options o;
        o.path = dir;
        o.mode = *mode;
        s = sp::store::open(o);
    }
    std::string payload(c.payload, 'x');
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> acked{0};
    std::vector<std::thread> threads;
    auto started = clock_type::now();
    for (int p = 0; p < c.producers; ++p) {
        threads.emplace_back([&, p] {
            std::counting_semaphore<> window(c.window);
            std::uint64_t seq = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                if (!window.try_acquire_for(std::chrono::milliseconds(50))) continue;
                auto on_durable = [&](bool ok) {
                    if (ok) acked.fetch_add(1, std::memory_order_relaxed);
                    window.release();
                };
                if (!s) {
                    on_durable(true);
                    continue;
                }
                auto t = s->submit(sp::put_delivery{make_delivery(p, ++seq, payload)});
                s->when_durable(t, on_durable);
            }
            // Drain this producer's window before its semaphore goes away.
            for (int i = 0; i < c.window; ++i) window.acquire();
        });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(c.seconds));
    auto n = acked.load();
    auto elapsed = std::chrono::duration<double>(clock_type::now() - started).count();
    stop = true;
    for (auto& t : threads) t.join();

    result r;
    r.acked_per_s = static_cast<double>(n) / elapsed;
    if (s) {
        auto st = s->stats();
        r.commits = st.commits;
        r.ops_per_commit = st.commits ? static_cast<double>(st.operations) / static_cast<double>(st.commits) : 0;
        auto l = st.commit_seconds;
        std::sort(l.begin(), l.end());
        if (!l.empty()) {
            r.p50_ms = l[l.size() / 2] * 1000;
            r.p99_ms = l[std::min(l.size() - 1, l.size() * 99 / 100)] * 1000;
        }
        s->close();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    config c;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--seconds") {
            c.seconds = std::atof(argv[i + 1]);
        } else if (a == "--producers") {
            c.producers = std::atoi(argv[i + 1]);
        } else if (a == "--window") {
            c.window = std::atoi(argv[i + 1]);
        } else if (a == "--payload") {
            c.payload = static_cast<std::size_t>(std::atoll(argv[i + 1]));
        } else {
            std::fprintf(stderr, "usage: bench_group_commit [--seconds S] [--producers P] [--window W] [--payload BYTES]\n");
            return 64;
        }
    }
    auto dir = (fs::temp_directory_path() / "strata-bench-group-commit").string();
    std::printf("bench_group_commit: %d producers x window %d, %zu-byte payloads, %.0f s per mode\n", c.producers,
                c.window, c.payload, c.seconds);
    auto base = run(c, nullptr, dir);
    std::printf("  %-8s %10.0f msgs/s acknowledged (no store: harness ceiling)\n", "baseline", base.acked_per_s);
    for (auto [name, mode] : {std::pair{"always", sp::durability::always}, std::pair{"batch", sp::durability::batch},
                              std::pair{"none", sp::durability::none}}) {
        auto r = run(c, &mode, dir);
        std::printf("  %-8s %10.0f msgs/s acknowledged (%5.1f%% of baseline), %llu commits, %.1f msgs/commit, "
                    "commit p50 %.2f ms p99 %.2f ms\n",
                    name, r.acked_per_s, 100 * r.acked_per_s / base.acked_per_s,
                    static_cast<unsigned long long>(r.commits), r.ops_per_commit, r.p50_ms, r.p99_ms);
    }
    return 0;
}
