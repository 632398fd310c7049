// Micro-benchmarks of the OPC UA codec at the scale of the ingestion target
// (10,000 monitored items at 1 Hz): decoding a PublishResponse whose
// DataChangeNotification carries N values (Double, source and server
// timestamps), and encoding a ReadRequest for N nodes. The "allocs" counter
// is heap allocations per decoded message, counted by replacing operator new
// in this executable: it must not grow with N beyond the arrays themselves.
#include "bridges/opcua/message.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

namespace {
std::atomic<std::size_t> allocations{0};
}  // namespace

// The replacement pair below is malloc/free on both sides; GCC cannot see
// that operator new here is ours and warns about the free().
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace strata::bridges::opcua;

namespace {

std::vector<std::uint8_t> publish_response_bytes(int items) {
    data_change_notification dcn;
    dcn.monitored_items.resize(static_cast<std::size_t>(items));
    for (int i = 0; i < items; ++i) {
        auto& m = dcn.monitored_items[static_cast<std::size_t>(i)];
        m.client_handle = static_cast<std::uint32_t>(i);
        m.value.value = variant{20.0 + i * 0.001};
        m.value.source_timestamp = date_time::from_unix_us(1'714'564'800'000'000 + i);
        m.value.server_timestamp = date_time::from_unix_us(1'714'564'800'000'100 + i);
    }
    publish_response r;
    r.subscription_id = 1;
    r.available_sequence_numbers = {41, 42};
    r.notification_message.sequence_number = 42;
    r.notification_message.notification_data.push_back(make_extension_object(std::move(dcn)));
    std::vector<std::uint8_t> out;
    encode_message(r, out);
    return out;
}

void BM_decode_publish_response(benchmark::State& state) {
    const int items = static_cast<int>(state.range(0));
    const std::vector<std::uint8_t> in = publish_response_bytes(items);
    std::size_t allocs = 0;
    for (auto _ : state) {
        const std::size_t before = allocations.load(std::memory_order_relaxed);
        decoded_message m = decode_message(in);
        allocs = allocations.load(std::memory_order_relaxed) - before;
        if (!m.outcome.ok) state.SkipWithError(m.outcome.error);
        benchmark::DoNotOptimize(m.body.get());
    }
    state.SetItemsProcessed(state.iterations() * items);
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(in.size()));
    state.counters["allocs"] = static_cast<double>(allocs);
    state.counters["bytes"] = static_cast<double>(in.size());
}
BENCHMARK(BM_decode_publish_response)->Arg(1)->Arg(1000)->Arg(10000);

void BM_encode_read_request(benchmark::State& state) {
    const int nodes = static_cast<int>(state.range(0));
    read_request req;
    req.timestamps_to_return = timestamps_to_return::both;
    for (int i = 0; i < nodes; ++i) {
        read_value_id v;
        v.node_id = node_id{2, "PLC1.Line1.Value" + std::to_string(i)};
        v.attribute_id = 13;
        req.nodes_to_read.push_back(std::move(v));
    }
    std::vector<std::uint8_t> out;
    for (auto _ : state) {
        out.clear();  // capacity reused, as a channel's send buffer would be
        encode_message(req, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations() * nodes);
    state.counters["bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_encode_read_request)->Arg(1000)->Arg(10000);

}  // namespace

BENCHMARK_MAIN();
