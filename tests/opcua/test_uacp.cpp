// UACP: handshake messages as exact bytes, header checks, negotiation,
// chunk sizing, chunk planning and reassembly. The Hello, Acknowledge and
// Error bytes below are also what node-opcua-transport@2.182.0's
// packTcpMessage produces for the same values.
#include "helpers.hpp"

#include "bridges/opcua/uacp.hpp"

#include <numeric>

using namespace strata::bridges::opcua;
using namespace strata::bridges::opcua::test;
using namespace strata::bridges::opcua::uacp;

namespace {

bytes whole(const auto& m) {
    bytes out;
    append_message(out, m);
    return out;
}

// Parses the header of `b` and decodes the body as T; every prefix of the
// body must fail.
template <class T>
T parse_whole(const bytes& b, message_type expected_type) {
    message_header h;
    REQUIRE(parse_header(b, 65535, h).status == frame_status::ok);
    CHECK(h.type == expected_type);
    CHECK(h.chunk == chunk_type::final_chunk);
    CHECK(h.size == b.size());
    const std::span<const std::uint8_t> body(b.data() + header_size, b.size() - header_size);
    T out;
    const frame_result r = decode_body(body, out);
    INFO(r.detail);
    REQUIRE(r.status == frame_status::ok);
    for (std::size_t n = 0; n < body.size(); ++n) {
        T partial;
        CHECK(decode_body(body.first(n), partial).status == frame_status::error);
    }
    for (std::size_t n = 0; n < header_size; ++n) CHECK(parse_header(std::span(b.data(), n), 65535, h).status == frame_status::need_more);
    return out;
}

bytes iota_bytes(std::size_t n) {
    bytes b(n);
    std::iota(b.begin(), b.end(), std::uint8_t{0});
    return b;
}

}  // namespace

TEST_CASE("Hello: exact bytes both ways", "[opcua][uacp]") {
    hello h;
    h.max_message_size = 0x01000000;
    h.max_chunk_count = 5;
    h.endpoint_url = "opc.tcp://127.0.0.1:4840";
    const bytes b = bytes{'H', 'E', 'L', 'F',
                          0x38, 0x00, 0x00, 0x00,   // size 56
                          0x00, 0x00, 0x00, 0x00,   // protocol version 0
                          0xFF, 0xFF, 0x00, 0x00,   // receive buffer 65535
                          0xFF, 0xFF, 0x00, 0x00,   // send buffer 65535
                          0x00, 0x00, 0x00, 0x01,   // max message size 16 MiB
                          0x05, 0x00, 0x00, 0x00} + // max chunk count 5
                    str("opc.tcp://127.0.0.1:4840");
    CHECK(whole(h) == b);
    CHECK(parse_whole<hello>(b, message_type::hello) == h);
}

TEST_CASE("Acknowledge, Error and ReverseHello: exact bytes both ways", "[opcua][uacp]") {
    acknowledge a{0, 8192, 16384, 0x00100000, 0};
    const bytes ab{'A', 'C', 'K', 'F',
                   0x1C, 0x00, 0x00, 0x00,   // size 28
                   0x00, 0x00, 0x00, 0x00,   // protocol version
                   0x00, 0x20, 0x00, 0x00,   // receive buffer 8192
                   0x00, 0x40, 0x00, 0x00,   // send buffer 16384
                   0x00, 0x00, 0x10, 0x00,   // max message size 1 MiB
                   0x00, 0x00, 0x00, 0x00};  // max chunk count: no limit
    CHECK(whole(a) == ab);
    CHECK(parse_whole<acknowledge>(ab, message_type::acknowledge) == a);

    error_message e{status_code{bad::tcp_message_type_invalid}, "bad"};
    const bytes eb = bytes{'E', 'R', 'R', 'F',
                           0x13, 0x00, 0x00, 0x00,   // size 19
                           0x00, 0x00, 0x7E, 0x80} + // BadTcpMessageTypeInvalid
                     str("bad");
    CHECK(whole(e) == eb);
    CHECK(parse_whole<error_message>(eb, message_type::error) == e);
    CHECK(e.error.name() == "BadTcpMessageTypeInvalid");

    reverse_hello rh{"urn:server", "opc.tcp://127.0.0.1:4841"};
    const bytes rb = bytes{'R', 'H', 'E', 'F', 0x32, 0x00, 0x00, 0x00} + str("urn:server") + str("opc.tcp://127.0.0.1:4841");
    CHECK(whole(rh) == rb);
    CHECK(parse_whole<reverse_hello>(rb, message_type::reverse_hello) == rh);
}

TEST_CASE("message header checks", "[opcua][uacp]") {
    message_header h;
    auto code = [&](bytes b, std::uint32_t max = 65535) {
        const frame_result r = parse_header(b, max, h);
        REQUIRE(r.status == frame_status::error);
        return r.code.value;
    };
    CHECK(code({'X', 'Y', 'Z', 'F', 0x20, 0, 0, 0}) == bad::tcp_message_type_invalid);
    CHECK(code({'H', 'E', 'L', 'C', 0x20, 0, 0, 0}) == bad::tcp_message_type_invalid);  // only MSG is chunked
    CHECK(code({'O', 'P', 'N', 'A', 0x20, 0, 0, 0}) == bad::tcp_message_type_invalid);
    CHECK(code({'M', 'S', 'G', 'X', 0x20, 0, 0, 0}) == bad::tcp_message_type_invalid);
    CHECK(code({'H', 'E', 'L', 'F', 0x1F, 0, 0, 0}) == bad::tcp_message_type_invalid);  // below 32
    CHECK(code({'M', 'S', 'G', 'F', 0x0B, 0, 0, 0}) == bad::tcp_message_type_invalid);  // no channel id
    CHECK(code({'M', 'S', 'G', 'F', 0x01, 0x20, 0, 0}, 8192) == bad::tcp_message_too_large);
    REQUIRE(parse_header(bytes{'M', 'S', 'G', 'F', 0x00, 0x20, 0, 0}, 8192, h).status == frame_status::ok);
    CHECK(h == message_header{message_type::message, chunk_type::final_chunk, 8192});
    REQUIRE(parse_header(bytes{'M', 'S', 'G', 'C', 0x0C, 0, 0, 0}, 8192, h).status == frame_status::ok);
    CHECK(h.chunk == chunk_type::intermediate);
    REQUIRE(parse_header(bytes{'M', 'S', 'G', 'A', 0x0C, 0, 0, 0}, 8192, h).status == frame_status::ok);
    CHECK(h.chunk == chunk_type::abort);
    for (const message_type t : {message_type::open, message_type::close})
        CHECK(to_string(t).size() == 3);

    // Handshake strings are bounded at 4096 bytes; a body with extra bytes fails.
    hello big;
    big.endpoint_url = std::string(4097, 'a');
    const bytes hb = whole(big);
    hello out;
    CHECK(decode_body(std::span(hb).subspan(header_size), out).status == frame_status::error);
    bytes ab = whole(acknowledge{});
    ab.push_back(0);
    acknowledge aout;
    CHECK(std::string(decode_body(std::span(ab).subspan(header_size), aout).detail) == "trailing bytes");
}

TEST_CASE("negotiation of buffer sizes and limits", "[opcua][uacp]") {
    hello h;
    h.receive_buffer_size = 65535;
    h.send_buffer_size = 65535;
    h.max_message_size = 1 << 20;
    h.max_chunk_count = 10;
    acknowledge a{0, 8192, 131072, 2 << 20, 0};
    connection_limits l;
    REQUIRE(negotiate(h, a, l).status == frame_status::ok);
    CHECK(l == connection_limits{8192, 65535, 2u << 20, 1u << 20, 0, 10});

    a.receive_buffer_size = 4096;
    const frame_result r = negotiate(h, a, l);
    CHECK(r.status == frame_status::error);
    CHECK(r.code.value == bad::connection_rejected);

    // Server side: never larger than the client's counterpart.
    hello client;
    client.receive_buffer_size = 8192;
    client.send_buffer_size = 16384;
    const acknowledge ack = answer_hello(client, acknowledge{0, 65536, 65536, 0, 0});
    CHECK(ack.receive_buffer_size == 16384);
    CHECK(ack.send_buffer_size == 8192);
    REQUIRE(negotiate(client, ack, l).status == frame_status::ok);
    CHECK(l.send_buffer_size == 16384);
    CHECK(l.receive_buffer_size == 8192);
}

TEST_CASE("largest body per chunk for each security mode", "[opcua][uacp]") {
    CHECK(max_body_size(8192, chunk_layout{}) == 8192 - 16 - 8);                      // None
    CHECK(max_body_size(8192, chunk_layout{16, 8, 32, 1, 1, 0}) == 8192 - 16 - 8 - 32);  // Sign, HMAC-SHA256
    // SignAndEncrypt with AES: 511 blocks of 16 after the header; sequence
    // header, signature and the padding size byte come out of them.
    CHECK(max_body_size(8192, chunk_layout{16, 8, 32, 16, 16, 1}) == 511 * 16 - 8 - 32 - 1);
    // Asymmetric RSA-2048 OAEP: 256-byte cipher blocks carry 214 plain bytes.
    const chunk_layout rsa{1200, 8, 256, 214, 256, 1};
    const std::uint32_t body = max_body_size(8192, rsa);
    CHECK(body == 27 * 214 - 8 - 256 - 1);
    const std::uint32_t blocks = (8 + body + 1 + 256 + 213) / 214;  // with minimal padding
    CHECK(1200 + blocks * 256 <= 8192);
    CHECK(max_body_size(24, chunk_layout{}) == 0);
    CHECK(max_body_size(10, chunk_layout{}) == 0);
}

TEST_CASE("chunk plans within the peer's limits", "[opcua][uacp]") {
    const bytes body = iota_bytes(20000);
    connection_limits l;
    l.send_buffer_size = 8192;
    chunk_plan p = plan_chunks(body, l, chunk_layout{});
    REQUIRE(p.result.status == frame_status::ok);
    REQUIRE(p.count == 3);
    CHECK(p.piece(0).size() == 8168);
    CHECK(p.piece(1).size() == 8168);
    CHECK(p.piece(2).size() == 20000 - 2 * 8168);
    CHECK(p.piece(1).data() == body.data() + 8168);
    CHECK(p.type(0) == chunk_type::intermediate);
    CHECK(p.type(1) == chunk_type::intermediate);
    CHECK(p.type(2) == chunk_type::final_chunk);

    p = plan_chunks(std::span(body).first(8168), l, chunk_layout{});
    CHECK(p.count == 1);
    p = plan_chunks(std::span(body).first(8169), l, chunk_layout{});
    CHECK(p.count == 2);
    p = plan_chunks({}, l, chunk_layout{});
    REQUIRE(p.count == 1);
    CHECK(p.piece(0).empty());
    CHECK(p.type(0) == chunk_type::final_chunk);

    l.max_send_message_size = 19999;
    CHECK(plan_chunks(body, l, chunk_layout{}).result.code.value == bad::request_too_large);
    l.max_send_message_size = 20000;
    l.max_send_chunk_count = 2;
    CHECK(plan_chunks(body, l, chunk_layout{}).result.code.value == bad::request_too_large);
    l.max_send_chunk_count = 3;
    CHECK(plan_chunks(body, l, chunk_layout{}).result.status == frame_status::ok);
    l.send_buffer_size = 20;
    CHECK(plan_chunks(body, l, chunk_layout{}).result.code.value == bad::tcp_internal_error);
}

TEST_CASE("reassembly: single chunk without a copy, several chunks joined", "[opcua][uacp]") {
    reassembler re;
    const bytes one{1, 2, 3};
    auto r = re.add(chunk_type::final_chunk, 7, one);
    REQUIRE(r.state == reassembler::status::complete);
    CHECK(r.request_id == 7);
    CHECK(r.message.data() == one.data());

    CHECK(re.add(chunk_type::intermediate, 8, bytes{1, 2}).state == reassembler::status::need_more);
    CHECK(re.add(chunk_type::intermediate, 8, bytes{3}).state == reassembler::status::need_more);
    CHECK(re.pending() == 1);
    r = re.add(chunk_type::final_chunk, 8, bytes{4, 5});
    REQUIRE(r.state == reassembler::status::complete);
    CHECK(bytes(r.message.begin(), r.message.end()) == bytes{1, 2, 3, 4, 5});
    CHECK(re.pending() == 0);
}

TEST_CASE("reassembly: interleaved requests are kept apart", "[opcua][uacp]") {
    reassembler re;
    CHECK(re.add(chunk_type::intermediate, 1, bytes{'a'}).state == reassembler::status::need_more);
    CHECK(re.add(chunk_type::intermediate, 2, bytes{'x'}).state == reassembler::status::need_more);
    auto r = re.add(chunk_type::final_chunk, 2, bytes{'y'});
    REQUIRE(r.state == reassembler::status::complete);
    CHECK(bytes(r.message.begin(), r.message.end()) == bytes{'x', 'y'});
    r = re.add(chunk_type::final_chunk, 1, bytes{'b'});
    REQUIRE(r.state == reassembler::status::complete);
    CHECK(bytes(r.message.begin(), r.message.end()) == bytes{'a', 'b'});
}

TEST_CASE("reassembly: abort chunks drop the partial message", "[opcua][uacp]") {
    reassembler re;
    CHECK(re.add(chunk_type::intermediate, 3, bytes{1, 2}).state == reassembler::status::need_more);
    const bytes abort_body = bytes{0x00, 0x00, 0xB9, 0x80} + str("too big");  // BadResponseTooLarge
    auto r = re.add(chunk_type::abort, 3, abort_body);
    REQUIRE(r.state == reassembler::status::aborted);
    CHECK(r.abort_code.name() == "BadResponseTooLarge");
    CHECK(r.abort_reason == ua_string{"too big"});
    CHECK(re.pending() == 0);
    r = re.add(chunk_type::abort, 4, bytes{0x00, 0x00});
    CHECK(r.state == reassembler::status::error);
    CHECK(r.code.value == bad::decoding_error);
}

TEST_CASE("reassembly: MaxMessageSize, MaxChunkCount and pending bounds", "[opcua][uacp]") {
    reassembler re(5, 3, 1);
    CHECK(re.add(chunk_type::intermediate, 1, bytes{1, 2, 3}).state == reassembler::status::need_more);
    auto r = re.add(chunk_type::final_chunk, 1, bytes{4, 5, 6});
    CHECK(r.state == reassembler::status::error);
    CHECK(r.code.value == bad::tcp_message_too_large);
    CHECK(re.pending() == 0);
    CHECK(re.add(chunk_type::final_chunk, 1, bytes{1, 2, 3, 4, 5, 6}).state == reassembler::status::error);

    CHECK(re.add(chunk_type::intermediate, 2, bytes{1}).state == reassembler::status::need_more);
    CHECK(re.add(chunk_type::intermediate, 2, bytes{2}).state == reassembler::status::need_more);
    r = re.add(chunk_type::intermediate, 2, bytes{3});
    CHECK(r.state == reassembler::status::need_more);
    r = re.add(chunk_type::final_chunk, 2, bytes{4});  // fourth chunk
    CHECK(r.state == reassembler::status::error);
    CHECK(std::string(r.detail) == "message has more chunks than MaxChunkCount");

    CHECK(re.add(chunk_type::intermediate, 3, bytes{1}).state == reassembler::status::need_more);
    r = re.add(chunk_type::intermediate, 4, bytes{1});
    CHECK(r.state == reassembler::status::error);
    CHECK(r.code.value == bad::tcp_not_enough_resources);
    CHECK(re.add(chunk_type::final_chunk, 3, bytes{2}).state == reassembler::status::complete);
}

TEST_CASE("a planned message reassembles to the original", "[opcua][uacp]") {
    const bytes body = iota_bytes(100000);
    connection_limits l;
    l.send_buffer_size = 8192;
    l.max_send_message_size = 100000;
    l.max_send_chunk_count = 13;
    const chunk_plan p = plan_chunks(body, l, chunk_layout{16, 8, 32, 16, 16, 1});
    REQUIRE(p.result.status == frame_status::ok);
    REQUIRE(p.count == 13);
    reassembler re(100000, 13);
    reassembler::result r;
    for (std::size_t i = 0; i < p.count; ++i) {
        r = re.add(p.type(i), 42, p.piece(i));
        CHECK(r.state == (i + 1 == p.count ? reassembler::status::complete : reassembler::status::need_more));
    }
    CHECK(bytes(r.message.begin(), r.message.end()) == body);
}
