// UACP framing (OPC 10000-6 7.1): headers, handshake bodies, negotiation,
// chunk reassembly and chunk planning.
#include "bridges/opcua/uacp.hpp"

#include <algorithm>
#include <array>

namespace strata::bridges::opcua::uacp {

namespace {

struct type_info {
    message_type type;
    char code[4];
    std::uint32_t min_size;  // header and fixed part of the body
};
constexpr std::array<type_info, 7> types{{
    {message_type::hello, "HEL", header_size + 24},         // 5 UInt32 + EndpointUrl length
    {message_type::acknowledge, "ACK", header_size + 20},   // 5 UInt32
    {message_type::error, "ERR", header_size + 8},          // Error + Reason length
    {message_type::reverse_hello, "RHE", header_size + 8},  // two String lengths
    {message_type::open, "OPN", header_size + 4},           // secure channel id
    {message_type::message, "MSG", header_size + 4},
    {message_type::close, "CLO", header_size + 4},
}};

const type_info& info(message_type t) { return types[static_cast<std::size_t>(t)]; }

frame_result failure(std::uint32_t code, const char* detail) {
    return {frame_status::error, status_code{code}, detail};
}
constexpr frame_result success{frame_status::ok, {}, ""};

// Decodes exactly one body with `fn`; a String longer than `max_string` fails.
template <class Fn>
frame_result decode_exactly(std::span<const std::uint8_t> body, std::uint32_t max_string, Fn fn) {
    decode_limits limits;
    limits.max_string_length = max_string;
    reader r(body, limits);
    fn(r);
    if (r.ok() && r.remaining() != 0) r.fail("trailing bytes");
    if (!r.ok()) return failure(bad::decoding_error, r.error());
    return success;
}

// Writes the header with a placeholder size, then the body, then the size.
template <class Fn>
void append_with_header(std::vector<std::uint8_t>& out, message_type t, Fn body) {
    writer w(out);
    const std::size_t start = w.size();
    write_header(w, {t, chunk_type::final_chunk, 0});
    body(w);
    w.patch_u32(start + 4, static_cast<std::uint32_t>(w.size() - start));
}

// The five UInt32 that Hello and Acknowledge share.
template <class T>
void write_sizes(writer& w, const T& m) {
    w.u32(m.protocol_version);
    w.u32(m.receive_buffer_size);
    w.u32(m.send_buffer_size);
    w.u32(m.max_message_size);
    w.u32(m.max_chunk_count);
}
template <class T>
void read_sizes(reader& r, T& m) {
    m.protocol_version = r.u32();
    m.receive_buffer_size = r.u32();
    m.send_buffer_size = r.u32();
    m.max_message_size = r.u32();
    m.max_chunk_count = r.u32();
}

}  // namespace

std::string_view to_string(message_type t) noexcept { return info(t).code; }

frame_result parse_header(std::span<const std::uint8_t> in, std::uint32_t max_chunk_size, message_header& out) {
    if (in.size() < header_size) return {};
    const auto it = std::find_if(types.begin(), types.end(), [&](const type_info& t) {
        return in[0] == t.code[0] && in[1] == t.code[1] && in[2] == t.code[2];
    });
    if (it == types.end()) return failure(bad::tcp_message_type_invalid, "unknown message type");
    const auto chunk = static_cast<chunk_type>(in[3]);
    if (chunk != chunk_type::final_chunk &&
        !(it->type == message_type::message && (chunk == chunk_type::intermediate || chunk == chunk_type::abort)))
        return failure(bad::tcp_message_type_invalid, "chunk type not allowed for this message type");
    const std::uint32_t size = std::uint32_t{in[4]} | std::uint32_t{in[5]} << 8 | std::uint32_t{in[6]} << 16 |
                               std::uint32_t{in[7]} << 24;
    if (size < it->min_size) return failure(bad::tcp_message_type_invalid, "message size below its fixed part");
    if (size > max_chunk_size) return failure(bad::tcp_message_too_large, "chunk larger than the receive buffer");
    out = {it->type, chunk, size};
    return success;
}

void write_header(writer& w, const message_header& h) {
    const char* code = info(h.type).code;
    w.u8(static_cast<std::uint8_t>(code[0]));
    w.u8(static_cast<std::uint8_t>(code[1]));
    w.u8(static_cast<std::uint8_t>(code[2]));
    w.u8(static_cast<std::uint8_t>(h.chunk));
    w.u32(h.size);
}

// ---- handshake bodies ----

void append_message(std::vector<std::uint8_t>& out, const hello& m) {
    append_with_header(out, message_type::hello, [&](writer& w) {
        write_sizes(w, m);
        encode(w, m.endpoint_url);
    });
}

void append_message(std::vector<std::uint8_t>& out, const acknowledge& m) {
    append_with_header(out, message_type::acknowledge, [&](writer& w) { write_sizes(w, m); });
}

void append_message(std::vector<std::uint8_t>& out, const error_message& m) {
    append_with_header(out, message_type::error, [&](writer& w) {
        encode(w, m.error);
        encode(w, m.reason);
    });
}

void append_message(std::vector<std::uint8_t>& out, const reverse_hello& m) {
    append_with_header(out, message_type::reverse_hello, [&](writer& w) {
        encode(w, m.server_uri);
        encode(w, m.endpoint_url);
    });
}

frame_result decode_body(std::span<const std::uint8_t> body, hello& out) {
    return decode_exactly(body, max_url_length, [&](reader& r) {
        read_sizes(r, out);
        decode(r, out.endpoint_url);
    });
}

frame_result decode_body(std::span<const std::uint8_t> body, acknowledge& out) {
    return decode_exactly(body, 0, [&](reader& r) { read_sizes(r, out); });
}

frame_result decode_body(std::span<const std::uint8_t> body, error_message& out) {
    return decode_exactly(body, max_reason_length, [&](reader& r) {
        decode(r, out.error);
        decode(r, out.reason);
    });
}

frame_result decode_body(std::span<const std::uint8_t> body, reverse_hello& out) {
    return decode_exactly(body, max_url_length, [&](reader& r) {
        decode(r, out.server_uri);
        decode(r, out.endpoint_url);
    });
}

// ---- negotiation ----

frame_result negotiate(const hello& sent, const acknowledge& received, connection_limits& out) {
    if (received.receive_buffer_size < min_buffer_size || received.send_buffer_size < min_buffer_size)
        return failure(bad::connection_rejected, "server buffer size below 8192");
    out.send_buffer_size = std::min(received.receive_buffer_size, sent.send_buffer_size);
    out.receive_buffer_size = std::min(received.send_buffer_size, sent.receive_buffer_size);
    out.max_send_message_size = received.max_message_size;
    out.max_receive_message_size = sent.max_message_size;
    out.max_send_chunk_count = received.max_chunk_count;
    out.max_receive_chunk_count = sent.max_chunk_count;
    return success;
}

acknowledge answer_hello(const hello& h, const acknowledge& server) {
    acknowledge a = server;
    a.receive_buffer_size = std::min(server.receive_buffer_size, h.send_buffer_size);
    a.send_buffer_size = std::min(server.send_buffer_size, h.receive_buffer_size);
    return a;
}

// ---- chunking ----

std::uint32_t max_body_size(std::uint32_t chunk_size, const chunk_layout& l) noexcept {
    if (chunk_size <= l.header_size || l.cipher_block_size == 0) return 0;
    const std::uint64_t blocks = (chunk_size - l.header_size) / l.cipher_block_size;
    const std::uint64_t plain = blocks * l.plain_block_size;
    const std::uint64_t overhead = std::uint64_t{l.sequence_header_size} + l.signature_size + l.padding_size_bytes;
    return plain > overhead ? static_cast<std::uint32_t>(plain - overhead) : 0;
}

chunk_plan plan_chunks(std::span<const std::uint8_t> body, const connection_limits& limits, const chunk_layout& layout) {
    chunk_plan p;
    p.body = body;
    p.max_body = max_body_size(limits.send_buffer_size, layout);
    if (p.max_body == 0) {
        p.result = failure(bad::tcp_internal_error, "chunk size too small for the security overhead");
        return p;
    }
    if (limits.max_send_message_size != 0 && body.size() > limits.max_send_message_size) {
        p.result = failure(bad::request_too_large, "message larger than the peer's MaxMessageSize");
        return p;
    }
    p.count = body.empty() ? 1 : (body.size() + p.max_body - 1) / p.max_body;
    if (limits.max_send_chunk_count != 0 && p.count > limits.max_send_chunk_count) {
        p.result = failure(bad::request_too_large, "message needs more chunks than the peer's MaxChunkCount");
        p.count = 0;
        return p;
    }
    p.result = success;
    return p;
}

// ---- reassembly ----

reassembler::reassembler(std::uint32_t max_message_size, std::uint32_t max_chunk_count, std::size_t max_pending)
    : max_message_size_(max_message_size), max_chunk_count_(max_chunk_count), max_pending_(max_pending) {}

void reassembler::drop(std::uint32_t request_id) {
    std::erase_if(pending_, [&](const partial& p) { return p.request_id == request_id; });
}

reassembler::result reassembler::fail(std::uint32_t request_id, std::uint32_t code, const char* detail) {
    drop(request_id);
    result r;
    r.state = status::error;
    r.request_id = request_id;
    r.code = status_code{code};
    r.detail = detail;
    return r;
}

reassembler::result reassembler::add(chunk_type type, std::uint32_t request_id, std::span<const std::uint8_t> body) {
    result r;
    r.request_id = request_id;
    auto it = std::find_if(pending_.begin(), pending_.end(), [&](const partial& p) { return p.request_id == request_id; });

    if (type == chunk_type::abort) {
        if (it != pending_.end()) pending_.erase(it);
        error_message e;
        if (decode_body(body, e).status != frame_status::ok)
            return fail(request_id, bad::decoding_error, "malformed abort chunk");
        r.state = status::aborted;
        r.abort_code = e.error;
        r.abort_reason = std::move(e.reason);
        return r;
    }

    const std::uint64_t so_far = it == pending_.end() ? 0 : it->data.size();
    const std::uint32_t chunks = (it == pending_.end() ? 0 : it->chunks) + 1;
    if (max_message_size_ != 0 && so_far + body.size() > max_message_size_)
        return fail(request_id, bad::tcp_message_too_large, "message larger than MaxMessageSize");
    if (max_chunk_count_ != 0 && chunks > max_chunk_count_)
        return fail(request_id, bad::tcp_message_too_large, "message has more chunks than MaxChunkCount");

    if (type == chunk_type::final_chunk) {
        r.state = status::complete;
        if (it == pending_.end()) {
            r.message = body;  // single chunk: no copy
            return r;
        }
        it->data.insert(it->data.end(), body.begin(), body.end());
        completed_.swap(it->data);
        pending_.erase(it);
        r.message = completed_;
        return r;
    }

    if (it == pending_.end()) {
        if (pending_.size() >= max_pending_)
            return fail(request_id, bad::tcp_not_enough_resources, "too many messages in progress");
        it = pending_.insert(pending_.end(), partial{request_id, 0, {}});
    }
    it->chunks = chunks;
    it->data.insert(it->data.end(), body.begin(), body.end());
    return r;
}

}  // namespace strata::bridges::opcua::uacp
