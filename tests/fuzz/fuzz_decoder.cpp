// libFuzzer target for the MQTT codec.
//
// Oracle: the input is decoded as a stream of 3.1.1 packets, as a stream of
// 5.0 packets, and as 5.0 with a 64-byte packet size limit. For every packet
// that decodes:
//   - consumed is within the input and within the limit;
//   - decoding into a fresh packet gives the same as decoding into the reused one;
//   - every strict prefix of its bytes is need_more (small packets);
//   - encode() appends exactly encoded_size() bytes, which decode to an equal
//     packet, and encoding that again gives the same bytes;
//   - for a PUBLISH, encode_publish(view) gives the same bytes as encode().
// Decode errors must carry one of the reason codes the contract lists.
// A broken oracle aborts (a crash for libFuzzer).
#include "broker/codec/codec.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

namespace {

using namespace strata::mqtt;

[[noreturn]] void oracle_failed(const char* what, const char* detail = "") {
    std::fprintf(stderr, "codec oracle failed: %s %s\n", what, detail);
    std::abort();
}

bool listed_error(reason_code c) {
    switch (c) {
        case reason_code::malformed_packet:
        case reason_code::protocol_error:
        case reason_code::packet_too_large:
        case reason_code::unsupported_protocol_version:
        case reason_code::payload_format_invalid:
        case reason_code::topic_alias_invalid:
            return true;
        default:
            return false;
    }
}

void check_prefixes(std::span<const std::uint8_t> b, protocol_version v, const decode_limits& lim) {
    for (std::size_t n = 0; n < b.size(); ++n) {
        packet p;
        const decode_result r = decode(b.first(n), v, lim, p);
        if (r.status != decode_status::need_more) oracle_failed("strict prefix of a packet is not need_more", r.detail);
    }
}

void check_round_trip(const packet& p, protocol_version v) {
    std::vector<std::uint8_t> out;
    encode(p, v, out);
    if (out.size() != encoded_size(p, v)) oracle_failed("encoded_size differs from what encode appends");
    packet q;
    const decode_result r = decode(out, v, {}, q);
    if (r.status != decode_status::ok) oracle_failed("re-encoded packet does not decode", r.detail);
    if (r.consumed != out.size()) oracle_failed("re-encoded packet: consumed != size");
    if (!(q == p)) oracle_failed("re-encoded packet decodes to a different packet");
    std::vector<std::uint8_t> again;
    encode(q, v, again);
    if (again != out) oracle_failed("encoding is not stable");
    if (const auto* pub = std::get_if<publish>(&p)) {
        publish_view view{pub->topic, pub->payload, pub->qos, pub->retain, pub->dup, pub->packet_id, &pub->props};
        if (encoded_size(view, v) != out.size()) oracle_failed("encoded_size(publish_view) differs");
        std::vector<std::uint8_t> viewed{0x55};  // encode_publish appends
        encode_publish(view, v, viewed);
        if (viewed.size() != out.size() + 1 || viewed[0] != 0x55 ||
            !std::equal(out.begin(), out.end(), viewed.begin() + 1))
            oracle_failed("encode_publish differs from encode");
    }
    if (out.size() <= 512) check_prefixes(out, v, {});
}

void run(std::span<const std::uint8_t> data, protocol_version v, const decode_limits& lim) {
    packet reused;  // like a session's packet, decoded into again and again
    std::size_t off = 0;
    while (off < data.size()) {
        const std::span<const std::uint8_t> in = data.subspan(off);
        const decode_result r = decode(in, v, lim, reused);
        if (r.status == decode_status::need_more) return;
        if (r.status == decode_status::error) {
            if (!listed_error(r.code)) oracle_failed("decode error with an unexpected reason code", r.detail);
            return;
        }
        if (r.consumed < 2 || r.consumed > in.size()) oracle_failed("consumed out of range");
        if (r.consumed > lim.max_packet_size) oracle_failed("packet larger than the limit decoded");
        packet fresh;
        const decode_result r2 = decode(in, v, lim, fresh);
        if (r2.status != decode_status::ok || r2.consumed != r.consumed || !(fresh == reused))
            oracle_failed("decoding into a reused packet differs from a fresh one");
        if (r.consumed <= 256) check_prefixes(in.first(r.consumed), v, lim);
        check_round_trip(reused, v);
        off += r.consumed;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    run(in, protocol_version::v311, {});
    run(in, protocol_version::v5, {});
    decode_limits small;
    small.max_packet_size = 64;
    run(in, protocol_version::v5, small);
    return 0;
}
