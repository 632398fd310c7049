// UACP, the OPC UA Connection Protocol over TCP (OPC 10000-6 7.1), sans-I/O:
// the 8-byte message header, the Hello / Acknowledge / Error / ReverseHello
// bodies, the negotiation of buffer sizes, the reassembly of MSG chunks and
// the splitting of a message body into chunks.
//
// Nothing here sees a socket or a clock. Security (the secure channel
// headers, signatures, encryption) is the secure channel layer's: the
// reassembler takes chunk bodies that layer has already verified, and the
// chunker takes that layer's per-chunk overhead as a chunk_layout.
//
// Thread-safety: the free functions are pure; a reassembler belongs to one
// connection and is used by one thread at a time.
#pragma once

#include "bridges/opcua/binary.hpp"
#include "bridges/opcua/types.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace strata::bridges::opcua::uacp {

enum class message_type : std::uint8_t { hello, acknowledge, error, reverse_hello, open, message, close };
[[nodiscard]] std::string_view to_string(message_type t) noexcept;  // "HEL", "ACK", ...

enum class chunk_type : std::uint8_t { final_chunk = 'F', intermediate = 'C', abort = 'A' };

inline constexpr std::size_t header_size = 8;
inline constexpr std::uint32_t min_buffer_size = 8192;      // smallest buffer either side may offer
inline constexpr std::uint32_t max_url_length = 4096;       // EndpointUrl, ServerUri
inline constexpr std::uint32_t max_reason_length = 4096;    // Error reason

// Status codes UACP reports (OPC 10000-6 7.1.5).
namespace bad {
inline constexpr std::uint32_t tcp_message_type_invalid = 0x807E0000;
inline constexpr std::uint32_t tcp_message_too_large = 0x80800000;
inline constexpr std::uint32_t tcp_not_enough_resources = 0x80810000;
inline constexpr std::uint32_t tcp_internal_error = 0x80820000;
inline constexpr std::uint32_t tcp_endpoint_url_invalid = 0x80830000;
inline constexpr std::uint32_t connection_rejected = 0x80AC0000;
inline constexpr std::uint32_t request_too_large = 0x80B80000;
inline constexpr std::uint32_t decoding_error = 0x80070000;
}  // namespace bad

struct message_header {
    message_type type = message_type::hello;
    chunk_type chunk = chunk_type::final_chunk;
    std::uint32_t size = 0;  // whole chunk, header included
    friend bool operator==(const message_header&, const message_header&) = default;
};

enum class frame_status : std::uint8_t {
    ok,         // done; see the call for what was produced
    need_more,  // fewer bytes than needed so far
    error,      // `code` says which UACP error, `detail` why (static string)
};

struct frame_result {
    frame_status status = frame_status::need_more;
    status_code code{};
    const char* detail = "";
};

// Parses the header at the front of `in`. Errors: an unknown message type,
// a chunk type the message type does not allow (only MSG may be 'C' or 'A'),
// a size smaller than the message type's fixed part, or a size above
// `max_chunk_size` (the negotiated ReceiveBufferSize; BadTcpMessageTooLarge).
[[nodiscard]] frame_result parse_header(std::span<const std::uint8_t> in, std::uint32_t max_chunk_size,
                                        message_header& out);
void write_header(writer& w, const message_header& h);

struct hello {
    std::uint32_t protocol_version = 0;
    std::uint32_t receive_buffer_size = 65535;  // largest chunk we accept
    std::uint32_t send_buffer_size = 65535;     // largest chunk we would send
    std::uint32_t max_message_size = 0;         // largest response body we accept; 0 = no limit
    std::uint32_t max_chunk_count = 0;          // most chunks per response; 0 = no limit
    ua_string endpoint_url;
    friend bool operator==(const hello&, const hello&) = default;
};

struct acknowledge {
    std::uint32_t protocol_version = 0;
    std::uint32_t receive_buffer_size = 65535;
    std::uint32_t send_buffer_size = 65535;
    std::uint32_t max_message_size = 0;
    std::uint32_t max_chunk_count = 0;
    friend bool operator==(const acknowledge&, const acknowledge&) = default;
};

struct error_message {
    status_code error{};
    ua_string reason;
    friend bool operator==(const error_message&, const error_message&) = default;
};

struct reverse_hello {
    ua_string server_uri;
    ua_string endpoint_url;
    friend bool operator==(const reverse_hello&, const reverse_hello&) = default;
};

// Appends a whole message (header and body) to `out`.
void append_message(std::vector<std::uint8_t>& out, const hello& m);
void append_message(std::vector<std::uint8_t>& out, const acknowledge& m);
void append_message(std::vector<std::uint8_t>& out, const error_message& m);
void append_message(std::vector<std::uint8_t>& out, const reverse_hello& m);

// Decodes the body of a message (the bytes after the 8-byte header), which
// must be exactly one body. URLs and reasons longer than 4096 bytes fail.
[[nodiscard]] frame_result decode_body(std::span<const std::uint8_t> body, hello& out);
[[nodiscard]] frame_result decode_body(std::span<const std::uint8_t> body, acknowledge& out);
[[nodiscard]] frame_result decode_body(std::span<const std::uint8_t> body, error_message& out);
[[nodiscard]] frame_result decode_body(std::span<const std::uint8_t> body, reverse_hello& out);

// What a connection may send and accept once Hello/Acknowledge are exchanged.
struct connection_limits {
    std::uint32_t send_buffer_size = min_buffer_size;     // largest chunk we send
    std::uint32_t receive_buffer_size = min_buffer_size;  // largest chunk we accept
    std::uint32_t max_send_message_size = 0;              // peer's MaxMessageSize; 0 = no limit
    std::uint32_t max_receive_message_size = 0;           // ours; 0 = no limit
    std::uint32_t max_send_chunk_count = 0;               // peer's MaxChunkCount; 0 = no limit
    std::uint32_t max_receive_chunk_count = 0;            // ours; 0 = no limit
    friend bool operator==(const connection_limits&, const connection_limits&) = default;
};

// Client side (OPC 10000-6 7.1.2.3/4): the limits that follow from the Hello
// we sent and the server's Acknowledge. Buffer sizes below 8192 are refused
// (BadConnectionRejected); sizes above what we offered are clamped to it.
[[nodiscard]] frame_result negotiate(const hello& sent, const acknowledge& received, connection_limits& out);

// Server side: the Acknowledge a server whose own sizes are `server` sends in
// answer to `h` (its buffers never larger than the client's counterparts).
[[nodiscard]] acknowledge answer_hello(const hello& h, const acknowledge& server);

// Per-chunk overhead of the secure channel, for sizing chunk bodies
// (OPC 10000-6 6.7.2). With encryption, everything after `header_size` is
// encrypted in blocks: cipher_block_size bytes on the wire carry
// plain_block_size bytes of sequence header, body, padding and signature.
struct chunk_layout {
    // Bytes before the sequence header: message header (8), secure channel id
    // (4) and security header (4 for a symmetric token id). Default 16.
    std::uint32_t header_size = 16;
    std::uint32_t sequence_header_size = 8;
    std::uint32_t signature_size = 0;      // 0 without signing
    std::uint32_t plain_block_size = 1;    // 1 without encryption
    std::uint32_t cipher_block_size = 1;   // 1 without encryption
    std::uint32_t padding_size_bytes = 0;  // 0 without encryption; 1, or 2 for keys over 2048 bits
};

// The largest body one chunk of `chunk_size` bytes carries (0 if none fits).
[[nodiscard]] std::uint32_t max_body_size(std::uint32_t chunk_size, const chunk_layout& layout) noexcept;

// How a message body is split into chunks: pieces of at most `max_body`
// bytes, every chunk 'C' but the last 'F'. Nothing is copied.
struct chunk_plan {
    frame_result result;  // error: BadRequestTooLarge (message size or chunk count), BadTcpInternalError
    std::span<const std::uint8_t> body;
    std::size_t max_body = 0;
    std::size_t count = 0;
    [[nodiscard]] std::span<const std::uint8_t> piece(std::size_t i) const noexcept {
        const std::size_t at = i * max_body;
        return body.subspan(at, std::min(max_body, body.size() - at));
    }
    [[nodiscard]] chunk_type type(std::size_t i) const noexcept {
        return i + 1 == count ? chunk_type::final_chunk : chunk_type::intermediate;
    }
};

// Plans the chunks for `body` under the negotiated limits (send_buffer_size,
// max_send_message_size, max_send_chunk_count). An empty body is one chunk.
[[nodiscard]] chunk_plan plan_chunks(std::span<const std::uint8_t> body, const connection_limits& limits,
                                     const chunk_layout& layout);

// Reassembles MSG chunk bodies (already stripped of their secure channel
// headers) into messages, per request id, within the receive limits.
class reassembler {
public:
    // max_pending: most messages in progress at once (requests answered
    // with interleaved chunks). Default 16.
    explicit reassembler(std::uint32_t max_message_size = 0, std::uint32_t max_chunk_count = 0,
                         std::size_t max_pending = 16);
    explicit reassembler(const connection_limits& limits, std::size_t max_pending = 16)
        : reassembler(limits.max_receive_message_size, limits.max_receive_chunk_count, max_pending) {}

    enum class status : std::uint8_t {
        need_more,  // an intermediate chunk was stored
        complete,   // a final chunk completed `message`
        aborted,    // the sender aborted the message: `abort_code`, `abort_reason`
        error,      // limits exceeded or a malformed chunk: `code`, `detail`; the partial message is dropped
    };
    struct result {
        status state = status::need_more;
        std::uint32_t request_id = 0;
        std::span<const std::uint8_t> message;  // complete: valid until the next add()
        status_code abort_code{};
        ua_string abort_reason;
        status_code code{};
        const char* detail = "";
    };

    [[nodiscard]] result add(chunk_type type, std::uint32_t request_id, std::span<const std::uint8_t> body);
    [[nodiscard]] std::size_t pending() const noexcept { return pending_.size(); }
    void clear() noexcept { pending_.clear(); }

private:
    struct partial {
        std::uint32_t request_id = 0;
        std::uint32_t chunks = 0;
        std::vector<std::uint8_t> data;
    };
    result fail(std::uint32_t request_id, std::uint32_t code, const char* detail);
    void drop(std::uint32_t request_id);

    std::uint32_t max_message_size_;
    std::uint32_t max_chunk_count_;
    std::size_t max_pending_;
    std::vector<partial> pending_;
    std::vector<std::uint8_t> completed_;  // the last multi-chunk message, capacity reused
};

}  // namespace strata::bridges::opcua::uacp
