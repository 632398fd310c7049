// One client network connection: the I/O shell around the client's MQTT
// protocol (client_protocol.hpp). It reads bytes and hands them to the
// protocol, writes what the protocol drains, runs the one timer, and
// closes (lingering after a DISCONNECT or refusing CONNACK).
//
// Thread-safety: a connection lives on one io_context, which is run by one
// thread; that thread is the connection's strand. Other threads talk to it
// only through notify() and kick(), which post to its executor.
//
// Memory and syscalls: an idle connection holds one pending read into a
// small inline buffer, no write buffer and no coroutine frame; reader,
// writer and timer are plain completion handlers (a coroutine frame per
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

#include "broker/net/client_protocol.hpp"
#include "broker/net/transport.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace strata::broker::core {
class broker_core;
}

namespace strata::broker::net {

namespace asio = boost::asio;

class connection final : public protocol_io, public std::enable_shared_from_this<connection> {
public:
    using executor_type = asio::io_context::executor_type;
    using socket_type = asio::basic_stream_socket<asio::ip::tcp, executor_type>;
    // Bound to the connection's io_context executor: 72 bytes, where
    // asio::steady_timer (any_io_executor) takes 120 in every connection.
    using timer_type = asio::basic_waitable_timer<core::steady_clock, asio::wait_traits<core::steady_clock>, executor_type>;

    // A plain TCP connection.
    connection(core::broker_core& core, socket_type socket);
    // A TLS or WebSocket connection; `ex` is the executor of its socket.
    connection(core::broker_core& core, std::unique_ptr<transport> t, executor_type ex);
    ~connection();

    // Runs the transport's handshake (if any), then the reader; call once,
    // on the connection's thread.
    void start();

    // session_owner, any thread: the session has something to send.
    void notify() override;
    // Any thread: close this connection with `code` (5.0 clients get a
    // DISCONNECT with it first), unless `generation` says it was already
    // replaced. generation 0 means unconditionally.
    void kick(mqtt::reason_code code, std::uint64_t generation = 0) override;
    // Any thread: new grants for the client's publishes (on its thread).
    void regrant(std::shared_ptr<const auth::grants> g) override;
    [[nodiscard]] bool filters_wide_subscriptions() const noexcept override { return protocol_.filters_wide(); }

    [[nodiscard]] executor_type executor() const override { return executor_; }
    [[nodiscard]] const std::string& client_id() const noexcept { return protocol_.client_id(); }
    [[nodiscard]] const std::string& remote() const noexcept { return protocol_.remote(); }
    [[nodiscard]] mqtt::protocol_version version() const noexcept { return protocol_.version(); }
    // The client's verified TLS certificate; null on plain connections and
    // when the client sent none.
    [[nodiscard]] const peer_certificate* client_certificate() const noexcept;
    // The certificate names the listener's tls.identity selects (CN, SAN
    // URIs or SAN DNS names); empty without a verified certificate.
    [[nodiscard]] std::vector<std::string> certificate_identities() const;

    // The identity of the verified client certificate (chosen by the
    // listener's `tls.identity`); call before start(). A client that sends
    // no password logs in as this identity.
    void set_certificate_identity(std::string identity) { protocol_.set_certificate_identity(std::move(identity)); }
    // Empty: anonymous.
    [[nodiscard]] const std::string& identity() const noexcept { return protocol_.identity(); }

private:
    // protocol_io (the connection's thread)
    void wake() override { flush(); }
    void close_after_flush(bool linger) override;
    void close_now() override;
    void resume_input() override;
    void set_deadline(time_point deadline) override;
    [[nodiscard]] std::shared_ptr<core::session_owner> shared_owner() override { return shared_from_this(); }

    void start_read();
    void on_started(boost::system::error_code ec);
    void on_read(boost::system::error_code ec, std::size_t n);
    // Hands bytes to the protocol; false when it threw (the connection is closed).
    bool deliver_input(std::span<const std::uint8_t> bytes);
    // After a batch of input: sends the replies, then reads on unless the
    // replies are backlogged or a password check holds the input.
    void input_done();
    void on_timer();
    // The writer: gathers what the protocol drains into one buffer and
    // starts one write; re-runs when that write completes.
    void flush();
    [[nodiscard]] bool output_backlogged() const noexcept;
    // After the last packet was written: half-close and read until the
    // client closes, for at most linger_time and linger_bytes.
    void start_linger();
    void on_linger_read(boost::system::error_code ec, std::size_t n);
    // Closed, or only draining input before closing: nothing is sent.
    [[nodiscard]] bool ended() const noexcept { return closed_ || lingering_; }
    [[nodiscard]] socket_type& tcp() noexcept { return layer_ ? layer_->tcp() : socket_; }

    core::broker_core& core_;
    socket_type socket_;                 // plain TCP only (unopened with a transport)
    std::unique_ptr<transport> layer_;   // TLS / WebSocket, null for plain TCP
    executor_type executor_;
    client_protocol protocol_;

    // Where the pending read lands: a quiet client's PINGREQ, PUBACK or
    // short PUBLISH fits; a busy one's reads go on in a per-thread buffer.
    // Every idle connection holds it, so it is small.
    std::array<std::uint8_t, 64> small_{};
    // True while one read's packets are handled: replies wait for flush().
    bool batching_ = false;

    // Writer state (connection thread only).
    std::vector<std::uint8_t> out_;       // the buffer being written
    bool writing_ = false;
    bool reading_ = false;                // a read is pending (plain socket or transport)
    bool close_when_flushed_ = false;
    bool linger_ = false;                 // the last packet needs lingering
    bool lingering_ = false;              // half-closed, discarding input until the client closes
    bool closed_ = false;
    bool read_paused_ = false;            // reading stops while replies are backlogged
    std::uint16_t lingered_bytes_ = 0;    // discarded while lingering
    std::atomic<bool> notify_pending_{false};

    // The protocol's deadline (connect timeout, keep-alive), or the close
    // and linger timeouts once closing.
    timer_type timer_;
};

using connection_ptr = std::shared_ptr<connection>;

}  // namespace strata::broker::net
