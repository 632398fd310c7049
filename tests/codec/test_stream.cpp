// Streams of packets: round trips of the whole sample catalogue, prefixes,
// byte-at-a-time delivery, back-to-back packets, encoded_size.
#include "helpers.hpp"
#include "samples.hpp"

using namespace strata::mqtt;
using namespace strata::mqtt::test;

namespace {

struct encoded_stream {
    bytes data;
    std::vector<std::size_t> ends;  // offset after each packet
    std::vector<packet> packets;
};

encoded_stream encode_all(protocol_version v) {
    encoded_stream s;
    for (auto& [name, p] : samples::named(v)) {
        encode(p, v, s.data);
        s.ends.push_back(s.data.size());
        s.packets.push_back(p);
    }
    return s;
}

const char* name_of(protocol_version v) { return v == protocol_version::v5 ? "5.0" : "3.1.1"; }

}  // namespace

TEST_CASE("every sample packet round-trips, and encoded_size is exact", "[codec][stream]") {
    for (auto v : {v311, v5}) {
        for (const auto& [name, p] : samples::named(v)) {
            INFO(name_of(v) << " " << name);
            const bytes b = encode_bytes(p, v);
            CHECK(b.size() == encoded_size(p, v));
            packet got;
            const decode_result r = decode_bytes(b, v, got);
            INFO("detail: " << r.detail);
            REQUIRE(r.status == decode_status::ok);
            CHECK(r.consumed == b.size());
            CHECK(got == p);
            CHECK(type_of(got) == type_of(p));
            // Encoding the decoded packet again gives the same bytes.
            CHECK(encode_bytes(got, v) == b);
            if (const auto* pub = std::get_if<publish>(&p)) {
                publish_view view{pub->topic, pub->payload, pub->qos, pub->retain, pub->dup, pub->packet_id, &pub->props};
                CHECK(encoded_size(view, v) == b.size());
                bytes out;
                encode_publish(view, v, out);
                CHECK(out == b);
            }
        }
    }
}

TEST_CASE("every strict prefix of every sample packet is need_more", "[codec][stream]") {
    for (auto v : {v311, v5}) {
        for (const auto& [name, p] : samples::named(v)) {
            INFO(name_of(v) << " " << name);
            check_prefixes(encode_bytes(p, v), v);
        }
    }
}

TEST_CASE("back-to-back packets in one buffer", "[codec][stream]") {
    for (auto v : {v311, v5}) {
        INFO(name_of(v));
        const encoded_stream s = encode_all(v);
        std::size_t off = 0;
        for (std::size_t i = 0; i < s.packets.size(); ++i) {
            packet got;
            const decode_result r =
                decode(std::span<const std::uint8_t>(s.data).subspan(off), v, {}, got);
            INFO("packet " << i << " detail: " << r.detail);
            REQUIRE(r.status == decode_status::ok);
            off += r.consumed;
            CHECK(off == s.ends[i]);
            CHECK(got == s.packets[i]);
        }
        CHECK(off == s.data.size());
        packet none;
        CHECK(decode(std::span<const std::uint8_t>(s.data).subspan(off), v, {}, none).status ==
              decode_status::need_more);
    }
}

TEST_CASE("one byte at a time decodes the same packets at the same points", "[codec][stream]") {
    for (auto v : {v311, v5}) {
        INFO(name_of(v));
        const encoded_stream s = encode_all(v);
        bytes acc;          // what has arrived and is not yet consumed
        std::size_t consumed_total = 0;
        std::size_t next = 0;
        for (std::size_t i = 0; i < s.data.size(); ++i) {
            acc.push_back(s.data[i]);
            packet got;
            const decode_result r = decode_bytes(acc, v, got);
            INFO("after byte " << i << " detail: " << r.detail);
            REQUIRE(r.status != decode_status::error);
            if (r.status == decode_status::ok) {
                REQUIRE(next < s.packets.size());
                CHECK(r.consumed == acc.size());  // only at the exact end of a packet
                consumed_total += r.consumed;
                CHECK(consumed_total == s.ends[next]);
                CHECK(got == s.packets[next]);
                acc.erase(acc.begin(), acc.begin() + static_cast<std::ptrdiff_t>(r.consumed));
                ++next;
            }
        }
        CHECK(next == s.packets.size());
        CHECK(acc.empty());
    }
}

TEST_CASE("arbitrary split points decode the same", "[codec][stream]") {
    // Delivery in chunks of 1..13 bytes: a reader that decodes as many
    // packets as the buffer holds after each chunk.
    for (auto v : {v311, v5}) {
        const encoded_stream s = encode_all(v);
        for (std::size_t chunk = 1; chunk <= 13; ++chunk) {
            INFO(name_of(v) << " chunk " << chunk);
            bytes acc;
            std::size_t next = 0;
            for (std::size_t i = 0; i < s.data.size(); i += chunk) {
                const std::size_t n = std::min(chunk, s.data.size() - i);
                acc.insert(acc.end(), s.data.begin() + static_cast<std::ptrdiff_t>(i),
                           s.data.begin() + static_cast<std::ptrdiff_t>(i + n));
                for (;;) {
                    packet got;
                    const decode_result r = decode_bytes(acc, v, got);
                    REQUIRE(r.status != decode_status::error);
                    if (r.status == decode_status::need_more) break;
                    REQUIRE(next < s.packets.size());
                    CHECK(got == s.packets[next++]);
                    acc.erase(acc.begin(), acc.begin() + static_cast<std::ptrdiff_t>(r.consumed));
                }
            }
            CHECK(next == s.packets.size());
            CHECK(acc.empty());
        }
    }
}

TEST_CASE("encode appends to the output buffer", "[codec][stream]") {
    bytes out{0x01, 0x02, 0x03};
    encode(pingreq{}, v5, out);
    CHECK(out == bytes{0x01, 0x02, 0x03, 0xC0, 0x00});
}

TEST_CASE("multi-byte remaining lengths", "[codec][stream]") {
    for (std::size_t n : {120u, 121u, 122u, 16'380u, 16'384u, 2'097'200u}) {
        publish p;
        p.topic = "t";
        p.payload.assign(n, 'x');
        for (auto v : {v311, v5}) {
            const bytes b = encode_bytes(p, v);
            CHECK(decode_as<publish>(b, v) == p);
        }
    }
}

TEST_CASE("long strings: 65535 bytes is the maximum", "[codec][stream]") {
    publish p;
    p.topic.assign(65'535, 'a');
    p.payload = "x";
    const bytes b = encode_bytes(p, v311);
    CHECK(decode_as<publish>(b, v311) == p);
    // Longer strings break the caller's precondition; the encoder cuts them so
    // the packet is still well-formed and encoded_size still exact.
    p.topic.assign(70'000, 'a');
    const bytes c = encode_bytes(p, v311);
    CHECK(decode_as<publish>(c, v311).topic.size() == 65'535);
}
