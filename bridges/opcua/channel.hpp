// The OPC UA secure channel (OPC 10000-6 6.7, 7.1) over one TCP connection:
// Hello/Acknowledge, OpenSecureChannel with policy None, Basic256Sha256 or
// Aes128_Sha256_RsaOaep in Sign or SignAndEncrypt (asymmetric: signed with
// our key, encrypted with the server's), symmetric MSG chunks (derived keys,
// HMAC-SHA256, AES-CBC, UA padding, sequence numbers checked), chunking of
// requests and reassembly of responses within the negotiated limits,
// request ids matched to responses with per-request timeouts, token renewal
// at 75 % of the lifetime (the old token accepted until the server uses the
// new one), CloseSecureChannel on close, ERR reported with its status name.
//
// Thread-safety: a channel lives on one strand; every member function is
// called on it. Its coroutines hold a shared_ptr to it.
#pragma once

#include "bridges/opcua/client.hpp"
#include "bridges/opcua/message.hpp"
#include "bridges/opcua/uacp.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <unordered_map>

namespace strata::bridges::opcua {

// Status codes the client reports itself (OPC 10000-4 7.39).
namespace bad {
inline constexpr std::uint32_t timeout = 0x800A0000;
inline constexpr std::uint32_t security_checks_failed = 0x80130000;
inline constexpr std::uint32_t certificate_untrusted = 0x801A0000;
inline constexpr std::uint32_t certificate_invalid = 0x80120000;
inline constexpr std::uint32_t security_policy_rejected = 0x80550000;
inline constexpr std::uint32_t no_match = 0x806F0000;
inline constexpr std::uint32_t secure_channel_token_unknown = 0x80870000;
inline constexpr std::uint32_t secure_channel_id_invalid = 0x80220000;
inline constexpr std::uint32_t sequence_number_invalid = 0x80880000;
inline constexpr std::uint32_t configuration_error = 0x80890000;
inline constexpr std::uint32_t not_connected = 0x808A0000;
inline constexpr std::uint32_t connection_closed = 0x80AE0000;
inline constexpr std::uint32_t invalid_argument = 0x80AB0000;
inline constexpr std::uint32_t shutdown = 0x800C0000;
inline constexpr std::uint32_t too_many_publish_requests = 0x80780000;
inline constexpr std::uint32_t no_subscription = 0x80790000;
}  // namespace bad

// The completion token of an awaited operation that reports its error in `ec`.
inline auto awaitable_ec(boost::system::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// "opc.tcp://host:port/path" split up; nullopt when malformed.
struct endpoint_address {
    std::string host;
    std::string port;
};
[[nodiscard]] std::optional<endpoint_address> parse_endpoint_url(std::string_view url);

struct channel_security {
    const crypto::security_policy* policy = &crypto::policy(crypto::policy_id::none);
    message_security_mode mode = message_security_mode::none;
    crypto::bytes own_certificate;  // DER; sent as SenderCertificate
    crypto::rsa_key own_key;
    crypto::bytes server_certificate;  // DER leaf, from the endpoint
    crypto::rsa_key server_key;
    [[nodiscard]] bool secured() const noexcept { return mode != message_security_mode::none; }
};

class secure_channel : public std::enable_shared_from_this<secure_channel> {
public:
    using strand = asio::strand<asio::any_io_executor>;

    secure_channel(strand executor, std::string endpoint_url, channel_security security,
                   std::chrono::milliseconds lifetime);

    // Connects, exchanges Hello/Acknowledge and opens the channel.
    asio::awaitable<outcome> open(std::chrono::milliseconds timeout);

    // Sends a request (its header's timestamp, handle and authentication
    // token filled in here) and waits for the response of type Resp (a
    // ServiceFault or a bad service result becomes a failure).
    template <class Resp, class Req>
    asio::awaitable<result<Resp>> call(Req request, std::chrono::milliseconds timeout) {
        request.request_header.authentication_token = authentication_token;
        request.request_header.timestamp = date_time::now();
        request.request_header.timeout_hint = static_cast<std::uint32_t>(timeout.count());
        std::vector<std::uint8_t> body;
        const std::uint32_t id = next_request_id();
        request.request_header.request_handle = id;
        encode_message(request, body);
        result<decoded_message> r = co_await exchange(id, std::move(body), timeout, false);
        co_return take<Resp>(std::move(r));
    }

    // Sends CloseSecureChannel and closes the socket.
    void close();
    // Closes the socket; pending and later requests fail with `why`.
    void fail(outcome why);
    [[nodiscard]] bool is_open() const noexcept { return open_; }
    [[nodiscard]] const outcome& failure() const noexcept { return failure_; }
    // Completes once the channel is closed (failure() says why).
    asio::awaitable<void> wait_closed();

    node_id authentication_token;  // set by the session

private:
    struct keys {
        std::uint32_t token_id = 0;
        crypto::channel_keys k;
    };
    struct pending {
        asio::steady_timer timer;
        std::optional<result<decoded_message>> response;
    };

    template <class Resp>
    static result<Resp> take(result<decoded_message> r) {
        result<Resp> out;
        static_cast<outcome&>(out) = std::move(static_cast<outcome&>(r));
        if (!out.ok()) return out;
        if (auto* b = dynamic_cast<body_of<Resp>*>(r.value.body.get())) {
            out.value = std::move(b->value);
            if (out.value.response_header.service_result.bad())
                return {{out.value.response_header.service_result,
                         std::string(Resp::type_name) + ": " + out.value.response_header.service_result.name()}};
            return out;
        }
        if (const auto* f = r.value.as<service_fault>())
            return {{f->response_header.service_result, "service fault " + f->response_header.service_result.name()}};
        return {{status_code{uacp::bad::decoding_error}, "unexpected response type"}};
    }

    std::uint32_t next_request_id() noexcept { return ++request_id_ == 0 ? ++request_id_ : request_id_; }
    asio::awaitable<result<decoded_message>> exchange(std::uint32_t id, std::vector<std::uint8_t> body,
                                                     std::chrono::milliseconds timeout, bool open_request);
    asio::awaitable<outcome> open_token(security_token_request_type type, std::chrono::milliseconds timeout);
    asio::awaitable<outcome> read_chunk(std::vector<std::uint8_t>& chunk, uacp::message_header& h);
    asio::awaitable<void> read_loop();
    asio::awaitable<void> write_loop();
    asio::awaitable<void> renew_loop();
    outcome handle_chunk(const uacp::message_header& h, std::span<std::uint8_t> chunk);
    outcome handle_open_response(std::span<std::uint8_t> chunk);
    outcome handle_symmetric(const uacp::message_header& h, std::span<std::uint8_t> chunk);
    outcome check_sequence(std::uint32_t seq);
    void deliver(std::uint32_t request_id, result<decoded_message> r);
    outcome queue_symmetric(uacp::message_type type, std::uint32_t request_id, std::span<const std::uint8_t> body);
    outcome queue_asymmetric(std::uint32_t request_id, std::span<const std::uint8_t> body);
    void queue(std::vector<std::uint8_t> bytes);
    [[nodiscard]] uacp::chunk_layout symmetric_layout() const noexcept;

    strand executor_;
    std::string endpoint_url_;
    channel_security sec_;
    std::chrono::milliseconds lifetime_;
    asio::ip::tcp::socket socket_;
    uacp::connection_limits limits_;
    uacp::reassembler reassembler_;
    bool open_ = false;
    outcome failure_;
    std::uint32_t channel_id_ = 0;
    std::uint32_t request_id_ = 0;
    std::uint32_t send_sequence_ = 0;
    std::optional<std::uint32_t> receive_sequence_;
    keys current_, previous_;            // current_ for sending; both accepted when receiving
    crypto::bytes client_nonce_;
    std::chrono::milliseconds revised_lifetime_{0};
    std::unordered_map<std::uint32_t, pending*> pending_;
    std::deque<std::vector<std::uint8_t>> out_;
    bool writing_ = false;
    bool closing_ = false;
    asio::steady_timer renew_timer_;
    asio::steady_timer closed_;  // never expires; cancelled when the channel closes
};

}  // namespace strata::bridges::opcua
