// One client network connection: reads and decodes packets, applies the
// protocol rules, writes responses and deliveries.
//
// Thread-safety: a connection lives on one io_context, which is run by one
// thread; that thread is the connection's strand. Other threads talk to it
// only through notify() and kick(), which post to its executor.
//
// Memory and syscalls: an idle connection holds one pending read into a
// small inline buffer, no write buffer and no coroutine frame; reader,
// writer and keep-alive are plain completion handlers (a coroutine frame per
// connection would cost about 1 KiB, half of the per-connection budget).
// When the small read comes back full, the rest is read without waiting into
// a per-thread 64 KiB buffer; only the tail of a partial packet is kept
// between reads. Replies produced while one read is processed go out in one
// write.
//
// Transports: a plain TCP connection reads and writes its socket directly.
// TLS and WebSocket connections hold a transport (transport.hpp) behind a
// pointer, which does the handshake first and then carries the same bytes;
// the MQTT side cannot tell them apart.
#pragma once

#include "broker/core/admission.hpp"
#include "broker/core/broker_core.hpp"
#include "auth/limits.hpp"
#include "auth/policy.hpp"
#include "auth/scram.hpp"
#include "broker/codec/codec.hpp"
#include "broker/core/session.hpp"
#include "broker/net/transport.hpp"
#include "persistence/store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::broker::core {
class broker_core;
}

namespace strata::broker::net {

namespace asio = boost::asio;

class connection final : public core::session_owner, public std::enable_shared_from_this<connection> {
public:
    using executor_type = asio::io_context::executor_type;
    using socket_type = asio::basic_stream_socket<asio::ip::tcp, executor_type>;
    // Bound to the connection's io_context executor: 72 bytes, where
    // asio::steady_timer (any_io_executor) takes 120 in every connection.
    using timer_type = asio::basic_waitable_timer<core::steady_clock, asio::wait_traits<core::steady_clock>, executor_type>;

    // A plain TCP connection.
    connection(core::broker_core& core, socket_type socket, std::size_t thread_index);
    // A TLS or WebSocket connection; `ex` is the executor of its socket.
    connection(core::broker_core& core, std::unique_ptr<transport> t, std::size_t thread_index, executor_type ex);
    ~connection();

    // Runs the transport's handshake (if any), then the reader; call once,
    // on the connection's thread.
    void start();

    // Any thread: the session has something to send.
    void notify() override;
    // Any thread: close this connection with `code` (5.0 clients get a
    // DISCONNECT with it first), unless `generation` says it was already
    // replaced. generation 0 means unconditionally.
    void kick(mqtt::reason_code code, std::uint64_t generation = 0) override;

    [[nodiscard]] executor_type executor() const { return executor_; }
    [[nodiscard]] const std::string& client_id() const noexcept { return client_id_; }
    [[nodiscard]] const std::string& remote() const noexcept { return remote_; }
    [[nodiscard]] mqtt::protocol_version version() const noexcept { return version_; }
    // The client's verified TLS certificate; null on plain connections and
    // when the client sent none.
    [[nodiscard]] const peer_certificate* client_certificate() const noexcept;
    // The certificate names the listener's tls.identity selects (CN, SAN
    // URIs or SAN DNS names); empty without a verified certificate.
    [[nodiscard]] std::vector<std::string> certificate_identities() const;

    // The identity of the verified client certificate (chosen by the
    // listener's `tls.identity`); call before start(). A client that sends
    // no password logs in as this identity.
    void set_certificate_identity(std::string identity) { extras().certificate_identity = std::move(identity); }
    // Empty: anonymous.
    [[nodiscard]] const std::string& identity() const noexcept { return identity_; }

private:
    // verifying: a password is being checked on the security worker;
    // input waits. authenticating: an enhanced authentication (AUTH)
    // exchange is under way. lingering: a DISCONNECT or a refusing CONNACK
    // was written and the sending side shut down; what the client still
    // sends is read and discarded until it closes (bounded), so that its
    // TCP stack does not answer our close with a reset that discards the
    // packet before the client has read it.
    enum class state : std::uint8_t { awaiting_connect, verifying, authenticating, connected, closing, lingering,
                                      closed };
    // Closed, or only draining input before closing: nothing is sent or handled.
    [[nodiscard]] bool ended() const noexcept { return state_ == state::closed || state_ == state::lingering; }

    void start_read();
    void on_started(boost::system::error_code ec);
    void on_read(boost::system::error_code ec, std::size_t n);
    // Appends to the partial packet (if any) and handles what is complete.
    void process_input(const std::uint8_t* data, std::size_t n);
    // Decodes and handles every whole packet in [data, data+size); returns
    // the number of bytes consumed (a partial packet stays unconsumed).
    std::size_t consume(const std::uint8_t* data, std::size_t size);
    void handle(mqtt::packet& p);
    // After a batch of input: sends the replies, then reads on unless the
    // replies are backlogged or a password check holds the input.
    void input_done();
    void internal_error(const std::exception& e);

    void handle_connect(mqtt::connect& c);
    // Authentication (handle_connect.cpp): decides who the client is, then
    // calls accept_connect() now or when a password check or AUTH exchange
    // completes.
    void authenticate(mqtt::connect& c);
    void password_checked(core::security::check_result r);
    void accept_connect(mqtt::connect& c);
    // Refuses the CONNECT (0x8A) when the address is blocked by the
    // failed-login back-off.
    bool login_blocked();
    void refuse_blocked(std::chrono::milliseconds wait);
    void login_failed(std::string_view user, mqtt::reason_code code, std::string_view why);
    void audit(std::string_view action, std::string_view outcome, std::string_view topic = {},
               std::string_view reason = {});
    // Handles the input that waited while a password was checked.
    void resume_input();
    [[nodiscard]] std::string address() const;
    // This client as the admission pipeline sees it (admission.hpp): its
    // grants, identity, rate limits and remembered grant decisions.
    [[nodiscard]] core::publisher as_publisher();
    void handle_publish(mqtt::publish& p);
    // The message a PUBLISH carries (moves topic, payload and props out of `p`).
    core::message_ptr to_message(mqtt::publish& p, bool v5);
    // A QoS 1/2 PUBLISH while the store cannot write: 5.0 gets 0x97, a
    // 3.1.1 client is disconnected (it resends after reconnecting).
    void refuse_unstorable(const mqtt::publish& p, bool v5);
    // A PUBLISH that a full bridge buffer (policy block) refused: a 5.0
    // QoS 1/2 acknowledgement says 0x97; a 3.1.1 QoS 1/2 publisher is
    // disconnected (returns false: handling stops).
    bool buffer_full(std::uint8_t qos, bool v5, mqtt::reason_code& outcome, std::optional<std::string>& ack_reason);
    // A message passed under the model's warn mode (rate-limited at info).
    void log_warned(std::string_view topic, std::string_view reason);
    // The admission of the will of a CONNECT (admit_will): false when the
    // connection was refused; may drop the will (3.1.1 cannot be told) or
    // replace it with its dead-letter copy.
    bool check_will(core::message_ptr& will);
    void handle_puback(const mqtt::puback& p);
    void handle_pubrec(const mqtt::pubrec& p);
    void handle_pubrel(const mqtt::pubrel& p);
    void handle_pubcomp(const mqtt::pubcomp& p);
    void handle_subscribe(mqtt::subscribe& s);
    void handle_unsubscribe(mqtt::unsubscribe& u);
    void handle_disconnect(const mqtt::disconnect& d);
    void handle_auth(const mqtt::auth& a);

    void refuse_connect(mqtt::reason_code code, const char* why,
                        std::optional<std::string> server_reference = std::nullopt);
    // Protocol violation: 5.0 clients get DISCONNECT(code); then close.
    void fail(mqtt::reason_code code, const char* why);

    // Appends p to `out` within the client's Maximum Packet Size (leaving
    // out its Reason String and User Properties when needed); false, with
    // nothing appended, when it does not fit even without them.
    [[nodiscard]] bool encode_for_client(const mqtt::packet& p, std::vector<std::uint8_t>& out);
    // Queue a control packet (ack, suback, ...) and flush; a packet that
    // does not fit the client's Maximum Packet Size closes the connection.
    void send(const mqtt::packet& p);
    // An acknowledgement that may go out only once the store made ticket
    // `t` durable, and this session's own writes before it (0: nothing
    // else to wait for). Acknowledgements keep their order: one waits
    // behind those held before it.
    void send_when_durable(const mqtt::packet& p, persistence::ticket t);
    void wait_for_store();
    void on_store_durable(bool ok);
    // The writer: gathers control packets and session deliveries into one
    // buffer and starts one write; re-runs when that write completes.
    void flush();
    [[nodiscard]] bool output_backlogged() const noexcept;
    void encode_delivery(core::outgoing& o, core::steady_clock::time_point now);
    // Stops reading, flushes what is queued, then closes the socket (after
    // lingering when the last packet was a DISCONNECT or refusing CONNACK).
    void close_after_flush();
    // After the last packet was written: half-close and read until the
    // client closes, for at most linger_time and linger_bytes.
    void start_linger();
    void on_linger_read(boost::system::error_code ec, std::size_t n);
    void close_now();
    // The session and the connection counts are released (the will may go
    // out); idempotent. Done when closing or when lingering starts.
    void release();
    [[nodiscard]] socket_type& tcp() noexcept { return layer_ ? layer_->tcp() : socket_; }

    void arm_keepalive();
    void on_keepalive_timer();

    core::broker_core& core_;
    socket_type socket_;                 // plain TCP only (unopened with a transport)
    std::unique_ptr<transport> layer_;   // TLS / WebSocket, null for plain TCP
    executor_type executor_;
    std::size_t thread_index_;
    std::string remote_;

    state state_ = state::awaiting_connect;
    mqtt::protocol_version version_ = mqtt::protocol_version::v5;
    mqtt::decode_limits decode_limits_;
    std::string client_id_;
    core::session_ptr session_;
    std::uint64_t generation_ = 0;
    bool connected_ = false;      // counted in clients_connected
    bool will_on_close_ = true;   // false after a normal DISCONNECT
    bool inbound_closed_ = false;
    // A 3.1.1 client that connected as a bridge (protocol level 0x84): its
    // subscriptions get No Local and Retain As Published, as 5.0 bridges
    // ask for them, so what it forwarded here does not go back.
    bool bridge_client_ = false;

    // Partial packet carried over between reads.
    std::vector<std::uint8_t> in_;
    // Where the pending read lands; most packets of a quiet client fit.
    std::array<std::uint8_t, 128> small_{};
    // True while one read's packets are handled: replies wait for flush().
    bool batching_ = false;

    // Writer state (connection thread only).
    std::vector<std::uint8_t> control_;   // encoded control packets waiting
    std::vector<std::uint8_t> out_;       // the buffer being written
    bool writing_ = false;
    bool reading_ = false;                // a read is pending (plain socket or transport)
    bool close_when_flushed_ = false;
    bool linger_ = false;                 // the last packet needs lingering (see state::lingering)
    std::uint16_t lingered_bytes_ = 0;    // discarded while lingering (fits the padding after the flags)
    bool read_paused_ = false;            // reading stops while replies are backlogged
    std::atomic<bool> notify_pending_{false};

    // Acknowledgements held until the store has made their effects durable:
    // encoded back to back, with the ticket each waits for and where it ends.
    // Created on first use (most connections never hold one).
    struct held_acks {
        std::vector<std::uint8_t> bytes;
        std::deque<std::pair<persistence::ticket, std::size_t>> ends;
        persistence::ticket waiting_for = 0;  // registered with when_durable
    };
    std::unique_ptr<held_acks> held_;

    // Negotiated with the client (5.0 CONNECT properties).
    std::uint32_t client_max_packet_size_ = 268'435'460;
    std::uint16_t client_receive_maximum_ = 65535;
    std::uint16_t client_topic_alias_max_ = 0;
    bool request_problem_info_ = true;
    std::size_t window_ = 64;

    // Topic aliases: inbound (alias -> topic) and outbound (topic -> alias).
    std::vector<std::string> inbound_aliases_;
    std::unique_ptr<std::unordered_map<std::string, std::uint16_t>> outbound_aliases_;  // created on first use

    // Identity and authorization, set at CONNECT.
    std::string identity_;                                // empty: anonymous
    std::shared_ptr<const auth::grants> grants_;          // null: no roles configured
    std::shared_ptr<auth::identity_state> identity_state_; // null: no per-identity limits
    // Login and authorisation state that an anonymous client without roles
    // never needs: created on first use, so an idle connection stays small.
    struct auth_extras {
        std::string certificate_identity;
        core::grant_memo grant_decisions;                       // the admission pipeline's, for this client
        std::unique_ptr<mqtt::connect> pending_connect;   // while verifying / authenticating
        std::unique_ptr<auth::scram_server> scram;
        std::optional<std::string> connack_auth_data;     // server-final-message for CONNACK
    };
    std::unique_ptr<auth_extras> extras_;
    auth_extras& extras() {
        if (!extras_) extras_ = std::make_unique<auth_extras>();
        return *extras_;
    }

    // Keep-alive: the client must send something within 1.5 x keep_alive.
    std::uint16_t keep_alive_ = 0;
    core::steady_clock::time_point last_rx_{};
    // Before CONNECT: the connect timeout; after: the keep-alive check.
    timer_type timer_;
};

using connection_ptr = std::shared_ptr<connection>;

}  // namespace strata::broker::net
