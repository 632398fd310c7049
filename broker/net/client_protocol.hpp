// The MQTT server protocol of one client, apart from its socket: packets
// in, what to send out, keep-alive, close. It holds the client's state
// machine (CONNECT and authentication, then PUBLISH, SUBSCRIBE, acks,
// DISCONNECT), its session, topic aliases, the acknowledgements that wait
// for the store, and what it has encoded for the client.
//
// It sees of the core only core::client_services (client_services.hpp).
// It never touches a socket or a timer. Below it is a protocol_io (the
// connection, connection.hpp, over TCP, TLS or WebSocket; a fake in the
// unit tests): the protocol asks it to write (wake), to close, to resume
// input and to call on_timer() at a deadline. The time comes in with each call (`now`), so a
// test drives keep-alive and the connect timeout without waiting.
//
// The packet handlers live in handle_connect.cpp, handle_publish.cpp and
// handle_subscribe.cpp; the rest in client_protocol.cpp.
//
// Thread-safety: every member runs on the client's thread (its io_context,
// protocol_io::executor()); completions from other threads are posted there.
#pragma once

#include "broker/core/admission.hpp"
#include "broker/core/client_services.hpp"
#include "broker/core/security.hpp"
#include "broker/core/session.hpp"
#include "broker/core/session_owner.hpp"
#include "auth/limits.hpp"
#include "auth/policy.hpp"
#include "auth/scram.hpp"
#include "broker/codec/codec.hpp"
#include "persistence/store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::broker::net {

namespace asio = boost::asio;
using time_point = core::steady_clock::time_point;

// What the protocol needs from the I/O under it. The I/O is also the
// session's owner: the session wakes it (notify) and the core kicks it.
class protocol_io : public core::session_owner {
public:
    // Output is waiting: call client_protocol::drain() when the socket can
    // take it (at once, or when the write in progress completes).
    virtual void wake() = 0;
    // Stop reading, write what is waiting, then close; with `linger`, half-
    // close and discard what the client still sends before closing (its
    // stack then does not answer our close with a reset that drops the
    // last packet unread).
    virtual void close_after_flush(bool linger) = 0;
    // Close now; what is waiting is discarded.
    virtual void close_now() = 0;
    // Input held while a password was checked may be handled again.
    virtual void resume_input() = 0;
    // Call client_protocol::on_timer() at `deadline` (replaces the one before).
    virtual void set_deadline(time_point deadline) = 0;
    // This owner, shared (sessions keep it while attached; completions
    // from other threads hold it weakly).
    [[nodiscard]] virtual std::shared_ptr<core::session_owner> shared_owner() = 0;
    // The client's thread.
    [[nodiscard]] virtual asio::io_context::executor_type executor() const = 0;

protected:
    ~protocol_io() = default;
};

// Buffers larger than this are released once empty, so that a connection
// that once moved a large message does not keep the memory while idle.
inline constexpr std::size_t keep_capacity = 16 * 1024;
inline void release_if_idle(std::vector<std::uint8_t>& v) {
    if (v.empty() && v.capacity() > keep_capacity) std::vector<std::uint8_t>().swap(v);
}

class client_protocol {
public:
    client_protocol(core::client_services& core, protocol_io& io, std::string remote);

    // The peer as the I/O learned it (TLS handshake, local address): before
    // the first input.
    void set_loopback(bool loopback) noexcept { loopback_ = loopback; }
    void set_certificate_identity(std::string identity) { extras().certificate_identity = std::move(identity); }

    // The connection is open: the client has until now + connect_timeout
    // to complete its CONNECT (and authentication).
    void start(time_point now);

    // Bytes from the client: decodes and handles every whole packet; a
    // partial packet is kept for the next call. Nothing is handled while a
    // password is checked (the bytes wait; resume() handles them).
    void on_input(std::span<const std::uint8_t> bytes, time_point now);
    // One decoded packet.
    void on_packet(mqtt::packet& p, time_point now);
    // Handles the input that waited while a password was checked.
    void resume(time_point now);
    // The deadline given to protocol_io::set_deadline() passed.
    void on_timer(time_point now);
    // Appends what waits for the client to `out`: replies, then the
    // session's deliveries within the client's Receive Maximum.
    void drain(std::vector<std::uint8_t>& out, time_point now);
    // On this client's thread, for the session owner's kick().
    void kick(mqtt::reason_code code, std::uint64_t generation);
    // On this client's thread, for the session owner's regrant(): the
    // grants its next publishes and subscriptions are checked against
    // (remembered decisions are forgotten).
    void regrant(std::shared_ptr<const auth::grants> g);
    // The client asked for wide subscriptions to be filtered (CONNECT).
    [[nodiscard]] bool filters_wide() const noexcept { return filter_wide_; }
    // An exception from handling this client's input: it is closed.
    void internal_error(const std::exception& e);
    // The connection is going away (closed or lingering): the session and
    // the connection counts are released, the will may go out. Idempotent.
    void release();
    // The end of the client's input (it closed, or a read failed).
    void end_of_input();

    // Whether input is handled now (not while a password is checked, not
    // after the protocol ended its input).
    // Nor while a subscriber's full queue holds this publisher (flow_gate.hpp).
    [[nodiscard]] bool takes_input() const noexcept {
        return !inbound_closed_ && !waiting_for_room_ && state_ != state::verifying && state_ != state::closed;
    }
    // Bytes of replies encoded and not yet drained, and of acknowledgements
    // held for the store: the I/O stops reading while they pile up.
    [[nodiscard]] std::size_t replies_waiting() const noexcept { return control_.size(); }
    [[nodiscard]] std::size_t acks_held() const noexcept { return held_ ? held_->bytes.size() : 0; }

    [[nodiscard]] const std::string& remote() const noexcept { return remote_; }
    [[nodiscard]] const std::string& client_id() const noexcept { return client_id_; }
    [[nodiscard]] mqtt::protocol_version version() const noexcept { return version_; }
    // Empty: anonymous.
    [[nodiscard]] const std::string& identity() const noexcept { return identity_; }
    [[nodiscard]] bool connected() const noexcept { return state_ == state::connected; }

private:
    // verifying: a password is being checked on the security worker;
    // input waits. authenticating: an enhanced authentication (AUTH)
    // exchange is under way. closing: the input ended; what is waiting
    // still goes out. closed: released; nothing is sent or handled.
    enum class state : std::uint8_t { awaiting_connect, verifying, authenticating, connected, closing, closed };

    // Decodes and handles every whole packet in [data, data+size); returns
    // the number of bytes consumed (a partial packet stays unconsumed).
    std::size_t consume(const std::uint8_t* data, std::size_t size, time_point now);

    void handle_connect(mqtt::connect& c);
    // Authentication (handle_connect.cpp): decides who the client is, then
    // calls accept_connect() now or when a password check or AUTH exchange
    // completes.
    void authenticate(mqtt::connect& c);
    void password_checked(core::security::check_result r);
    void accept_connect(mqtt::connect& c);
    // CONNECT's limits and the client's wishes (keep-alive, session expiry,
    // Receive Maximum, topic aliases), applied to this protocol's state;
    // what CONNACK must tell a 5.0 client about them.
    struct negotiated {
        std::optional<std::uint16_t> server_keep_alive;
        std::optional<std::uint32_t> capped_expiry;
        std::uint32_t expiry = 0;
    };
    negotiated negotiate(const mqtt::connect& c);
    // The will of a CONNECT as a message (null: none); false when the
    // connection was refused.
    bool take_will(mqtt::connect& c, core::message_ptr& will, std::uint32_t& delay);
    // Opens (or resumes, or takes over) the client's session; false when
    // the connection was refused.
    bool open_session(mqtt::connect& c, std::uint32_t expiry, core::message_ptr will, std::uint32_t will_delay,
                      core::open_result& opened);
    void send_connack(const mqtt::connect& c, const negotiated& n, bool assigned, bool present);
    // Refuses the CONNECT (0x8A) when the address is blocked by the
    // failed-login back-off.
    bool login_blocked();
    void refuse_blocked(std::chrono::milliseconds wait);
    void login_failed(std::string_view user, mqtt::reason_code code, std::string_view why);
    void audit(std::string_view action, std::string_view outcome, std::string_view topic = {},
               std::string_view reason = {});
    [[nodiscard]] std::string address() const;
    // This client as the admission pipeline sees it (admission.hpp): its
    // grants, identity, rate limits and remembered grant decisions.
    [[nodiscard]] core::publisher as_publisher();
    void handle_publish(mqtt::publish& p);
    // Subscription Identifier refused, topic alias applied, topic name
    // checked; false when the connection is closing for it.
    bool resolve_topic(mqtt::publish& p, bool v5);
    // What the admission verdict on `m` means to this client: counters,
    // audit and log lines, and the PUBACK/PUBREC once durable.
    void acknowledge(const mqtt::publish& p, const core::message& m, const core::admission& a, bool v5);
    // The message a PUBLISH carries (moves topic, payload and props out of `p`).
    std::shared_ptr<core::message> to_message(mqtt::publish& p, bool v5);
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
    // This client's flow gate, made on its first QoS 1/2 PUBLISH.
    core::flow_gate* flow_gate();
    // After a PUBLISH was routed: input stops while the gate is held.
    void wait_if_held();
    // The gate opened (on this client's thread): input resumes.
    void room_opened();
    void stop_waiting();
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
    // Ends the input and closes once what is waiting went out.
    void close_after_flush(bool linger = false);
    void close_now();

    // Appends p to `out` within the client's Maximum Packet Size (leaving
    // out its Reason String and User Properties when needed); false, with
    // nothing appended, when it does not fit even without them.
    [[nodiscard]] bool encode_for_client(const mqtt::packet& p, std::vector<std::uint8_t>& out);
    // Queue a control packet (ack, suback, ...) for the writer; a packet
    // that does not fit the client's Maximum Packet Size closes the
    // connection.
    void send(const mqtt::packet& p);
    // An acknowledgement that may go out only once the store made ticket
    // `t` durable, and this session's own writes before it (0: nothing
    // else to wait for). Acknowledgements keep their order: one waits
    // behind those held before it.
    void send_when_durable(const mqtt::packet& p, persistence::ticket t);
    void wait_for_store();
    void on_store_durable(bool ok);
    void encode_delivery(core::outgoing& o, time_point now, std::vector<std::uint8_t>& out);

    // The keep-alive deadline (while connected and keep-alive is on).
    void arm_keepalive();

    // A completion from another thread (the store, the password worker):
    // calling it runs `fn(protocol)` on this client's thread, unless the
    // connection is gone by then. The protocol lives as long as its I/O.
    struct deferred {
        std::weak_ptr<core::session_owner> owner;
        asio::io_context::executor_type ex;
        client_protocol* self;
        template <typename F>
        void operator()(F fn) const {
            asio::post(ex, [owner = owner, self = self, fn = std::move(fn)]() mutable {
                if (auto alive = owner.lock()) fn(*self);
            });
        }
    };
    [[nodiscard]] deferred later();

    core::client_services& core_;
    protocol_io& io_;
    std::string remote_;

    state state_ = state::awaiting_connect;
    mqtt::protocol_version version_ = mqtt::protocol_version::v5;
    bool connected_ = false;      // counted in clients_connected
    bool will_on_close_ = true;   // false after a normal DISCONNECT
    bool inbound_closed_ = false;
    // A 3.1.1 client that connected as a bridge (protocol level 0x84): its
    // subscriptions get No Local and Retain As Published, as 5.0 bridges
    // ask for them, so what it forwarded here does not go back.
    bool bridge_client_ = false;
    // A 5.0 client that sent the CONNECT user property
    // strata-wide-subscriptions: filter (the explorer does): a subscription
    // wider than its grants is accepted and filtered per message, as
    // auth.wide_subscriptions: filter does for every client. Safe to grant
    // on request: nothing outside the grants is delivered either way.
    bool filter_wide_ = false;
    bool loopback_ = false;
    bool waiting_for_room_ = false;  // a subscriber's full queue holds this publisher
    bool request_problem_info_ = true;
    mqtt::decode_limits decode_limits_;
    std::string client_id_;
    core::session_ptr session_;
    std::uint64_t generation_ = 0;

    // Partial packet carried over between inputs.
    std::vector<std::uint8_t> in_;
    // Encoded control packets waiting for drain().
    std::vector<std::uint8_t> control_;

    // Acknowledgements held until the store has made their effects durable:
    // encoded back to back, with the ticket each waits for and where it ends.
    // Created on first use (most connections never hold one).
    struct held_acks {
        std::vector<std::uint8_t> bytes;
        std::deque<std::pair<persistence::ticket, std::size_t>> ends;
        persistence::ticket waiting_for = 0;  // registered with when_durable
    };
    std::unique_ptr<held_acks> held_;
    std::shared_ptr<core::flow_gate> gate_;  // null until the first QoS 1/2 PUBLISH

    // Negotiated with the client (5.0 CONNECT properties).
    std::uint32_t client_max_packet_size_ = 268'435'460;
    std::uint16_t client_receive_maximum_ = 65535;
    std::uint16_t client_topic_alias_max_ = 0;
    std::size_t window_ = 64;

    // Topic aliases: inbound (alias -> topic) and outbound (topic -> alias).
    std::vector<std::string> inbound_aliases_;
    std::unique_ptr<std::unordered_map<std::string, std::uint16_t>> outbound_aliases_;  // created on first use

    // Identity and authorization, set at CONNECT.
    std::string identity_;                                 // empty: anonymous
    std::shared_ptr<const auth::grants> grants_;           // null: no roles configured
    std::shared_ptr<auth::identity_state> identity_state_; // null: no per-identity limits
    // Login and authorisation state that an anonymous client without roles
    // never needs: created on first use, so an idle connection stays small.
    struct auth_extras {
        std::string certificate_identity;
        core::grant_memo grant_decisions;                  // the admission pipeline's, for this client
        std::unique_ptr<mqtt::connect> pending_connect;    // while verifying / authenticating
        std::unique_ptr<auth::scram_server> scram;
        std::optional<std::string> connack_auth_data;      // server-final-message for CONNACK
    };
    std::unique_ptr<auth_extras> extras_;
    auth_extras& extras() {
        if (!extras_) extras_ = std::make_unique<auth_extras>();
        return *extras_;
    }

    // Keep-alive: the client must send something within 1.5 x keep_alive.
    std::uint16_t keep_alive_ = 0;
    std::uint16_t receive_maximum_ = 0;  // limits.receive_maximum as told in CONNACK
    time_point last_rx_{};
};

}  // namespace strata::broker::net
