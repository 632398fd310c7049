// Micro-benchmarks of the MQTT codec: decode and encode of a PUBLISH with a
// 16-byte payload (QoS 0 and 1; 3.1.1, and 5.0 with two properties), a
// CONNECT and a SUBSCRIBE. Decoding reuses one packet and encoding one
// output buffer, as a session does.
#include "broker/codec/codec.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

using namespace strata::mqtt;

namespace {

publish sample_publish(std::uint8_t qos, protocol_version v) {
    publish p;
    p.topic = "acme/dresden/press-shop/line-2/cell-1/press-7/temperature";
    p.payload = "{\"v\":21.5,\"q\":1}";  // 16 bytes
    p.qos = qos;
    p.packet_id = qos > 0 ? 4711 : 0;
    if (v == protocol_version::v5) {
        p.props.message_expiry_interval = 3600;
        p.props.user_properties = {{"unit", "C"}};
    }
    return p;
}

connect sample_connect(protocol_version v) {
    connect c;
    c.version = v;
    c.client_id = "press-7-gateway";
    c.keep_alive = 30;
    c.username = "line-operator";
    c.password = "correct horse battery staple";
    c.will = will_message{"acme/dresden/press-shop/line-2/cell-1/press-7/state", "offline", 1, true, {}};
    if (v == protocol_version::v5) {
        c.props.session_expiry_interval = 3600;
        c.props.receive_maximum = 100;
    }
    return c;
}

subscribe sample_subscribe(protocol_version v) {
    subscribe s;
    s.packet_id = 17;
    s.subscriptions = {{"acme/dresden/press-shop/+/+/+/oee", {1}}, {"acme/dresden/+/line-2/#", {0}}};
    if (v == protocol_version::v5) s.props.subscription_identifiers = {5};
    return s;
}

std::vector<std::uint8_t> bytes_of(const packet& p, protocol_version v) {
    std::vector<std::uint8_t> b;
    encode(p, v, b);
    return b;
}

void decode_loop(benchmark::State& state, const packet& p, protocol_version v) {
    const std::vector<std::uint8_t> in = bytes_of(p, v);
    packet out;
    for (auto _ : state) {
        const decode_result r = decode(in, v, {}, out);
        if (r.status != decode_status::ok) {
            state.SkipWithError("decode failed");
            break;
        }
        benchmark::DoNotOptimize(out);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
    state.SetItemsProcessed(state.iterations());
}

void encode_loop(benchmark::State& state, const packet& p, protocol_version v) {
    std::vector<std::uint8_t> out;
    out.reserve(1024);
    for (auto _ : state) {
        out.clear();
        encode(p, v, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
    state.SetItemsProcessed(state.iterations());
}

// The fan-out path: one shared message, per-subscriber packet id and
// subscription identifier through publish_view.
void encode_view_loop(benchmark::State& state, std::uint8_t qos, protocol_version v) {
    const publish msg = sample_publish(qos, v);
    const std::uint32_t subid[] = {7};
    std::vector<std::uint8_t> out;
    out.reserve(1024);
    std::uint16_t id = 1;
    for (auto _ : state) {
        publish_view view;
        view.topic = msg.topic;
        view.payload = msg.payload;
        view.qos = qos;
        view.packet_id = qos > 0 ? id++ : 0;
        if (id == 0) id = 1;
        view.props = &msg.props;
        if (v == protocol_version::v5) view.subscription_identifiers = subid;
        out.clear();
        encode_publish(view, v, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
}

constexpr auto v311 = protocol_version::v311;
constexpr auto v5 = protocol_version::v5;

void BM_decode_publish(benchmark::State& s, std::uint8_t qos, protocol_version v) { decode_loop(s, sample_publish(qos, v), v); }
void BM_encode_publish(benchmark::State& s, std::uint8_t qos, protocol_version v) { encode_loop(s, sample_publish(qos, v), v); }
void BM_encode_publish_view(benchmark::State& s, std::uint8_t qos, protocol_version v) { encode_view_loop(s, qos, v); }
void BM_decode_connect(benchmark::State& s, protocol_version v) { decode_loop(s, sample_connect(v), v); }
void BM_encode_connect(benchmark::State& s, protocol_version v) { encode_loop(s, sample_connect(v), v); }
void BM_decode_subscribe(benchmark::State& s, protocol_version v) { decode_loop(s, sample_subscribe(v), v); }
void BM_encode_subscribe(benchmark::State& s, protocol_version v) { encode_loop(s, sample_subscribe(v), v); }

}  // namespace

BENCHMARK_CAPTURE(BM_decode_publish, qos0_v311, 0, v311);
BENCHMARK_CAPTURE(BM_decode_publish, qos1_v311, 1, v311);
BENCHMARK_CAPTURE(BM_decode_publish, qos0_v5_props, 0, v5);
BENCHMARK_CAPTURE(BM_decode_publish, qos1_v5_props, 1, v5);
BENCHMARK_CAPTURE(BM_encode_publish, qos0_v311, 0, v311);
BENCHMARK_CAPTURE(BM_encode_publish, qos1_v311, 1, v311);
BENCHMARK_CAPTURE(BM_encode_publish, qos0_v5_props, 0, v5);
BENCHMARK_CAPTURE(BM_encode_publish, qos1_v5_props, 1, v5);
BENCHMARK_CAPTURE(BM_encode_publish_view, qos0_v311, 0, v311);
BENCHMARK_CAPTURE(BM_encode_publish_view, qos1_v5_props, 1, v5);
BENCHMARK_CAPTURE(BM_decode_connect, v311, v311);
BENCHMARK_CAPTURE(BM_decode_connect, v5, v5);
BENCHMARK_CAPTURE(BM_encode_connect, v311, v311);
BENCHMARK_CAPTURE(BM_encode_connect, v5, v5);
BENCHMARK_CAPTURE(BM_decode_subscribe, v311, v311);
BENCHMARK_CAPTURE(BM_decode_subscribe, v5, v5);
BENCHMARK_CAPTURE(BM_encode_subscribe, v311, v311);
BENCHMARK_CAPTURE(BM_encode_subscribe, v5, v5);

BENCHMARK_MAIN();
