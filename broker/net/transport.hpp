// The byte stream under a connection when it is not plain TCP: TLS,
// WebSocket, WebSocket over TLS.
//
// A plain TCP connection has no transport object at all (the connection
// reads its socket directly, see connection.hpp); the others hold one behind
// a pointer, so the lean plain path pays 8 bytes for the option. Their
// buffers and handshakes are what TLS and WebSocket cost anyway.
//
// Also here: the TLS server context of a listener (tls_context), built from
// its `tls:` config and swapped on SIGHUP; peer_certificate, the verified
// client certificate's names that `tls.identity` maps to a user; and the
// start of a TLS connection (tls_start) with the bound on handshakes in
// progress (core/handshake_gate.hpp), shared by mqtt+tls and https listeners.
//
// What a TLS connection costs before its handshake: nothing but the bare
// socket. OpenSSL's SSL object and the stream's buffers (about 100 KB)
// are made only once the client's first bytes arrive, and only while
// fewer than limits.max_handshakes handshakes are in progress; a
// connection beyond that waits, in order of arrival, until one finishes.
// A bare connection that never sends, or a handshake that does not finish,
// is closed by the connect timeout, like a connection that sends no
// CONNECT.
//
// Thread-safety: a transport (and a tls_start) belongs to its connection
// and is used on that connection's thread only. tls_context::current() and
// reload() may be called from any thread.
#pragma once

#include "broker/config.hpp"
#include "broker/core/handshake_gate.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace strata::broker::net {

namespace asio = boost::asio;
using tcp_socket = asio::basic_stream_socket<asio::ip::tcp, asio::io_context::executor_type>;
using tls_stream = asio::ssl::stream<tcp_socket>;
using http_request = boost::beast::http::request<boost::beast::http::string_body>;

// How long a new connection has for its TLS handshake (if any) and its
// CONNECT together; an HTTPS connection, for its TLS handshake.
inline constexpr std::chrono::seconds connect_timeout{10};

// The names of a verified client certificate.
struct peer_certificate {
    std::string subject_cn;             // the last CN of the subject, "" if none
    std::vector<std::string> san_uri;   // subjectAltName URI entries, in order
    std::vector<std::string> san_dns;   // subjectAltName DNS entries, in order

    // The names `tls.identity` selects: cn gives at most one, san-uri and
    // san-dns every entry of that kind.
    [[nodiscard]] std::vector<std::string> names(tls_identity kind) const;
};

// Reads the names of `cert` (an X509*; void* keeps OpenSSL out of this header).
[[nodiscard]] peer_certificate read_certificate(const void* x509);

// A listener's TLS server context. A connection keeps the context it
// started with; after reload() new handshakes use the new one.
class tls_context {
public:
    // Throws std::runtime_error naming the file that failed.
    explicit tls_context(tls_config cfg);

    [[nodiscard]] std::shared_ptr<asio::ssl::context> current() const;
    // Builds a context from `cfg` (the same files, or others a reloaded
    // config names) and uses it from now on. On error keeps the old one
    // and throws std::runtime_error. One reload at a time.
    void reload(const tls_config& cfg);

private:
    tls_config cfg_;  // of the context in force; reload()'s
    mutable std::mutex mutex_;
    std::shared_ptr<asio::ssl::context> ctx_;  // guarded by mutex_
};

// Shuts a socket down both ways and closes it; errors are of no use then.
void close_socket(tcp_socket& s);

// Waits, holding only the socket and a timer, until the client's first
// bytes arrive, then calls then(socket) (on the socket's executor). A
// client that sends nothing before `deadline`, or closes first, is closed.
void on_first_bytes(tcp_socket socket, std::chrono::steady_clock::time_point deadline,
                    std::function<void(tcp_socket)> then);

// The server side of a TLS connection up to the end of its handshake: waits
// for the client's first bytes on the bare socket, then for a slot of the
// gate, then makes the TLS stream and runs the handshake. The caller bounds
// the whole by closing it (connect_timeout).
class tls_start {
public:
    tls_start(tcp_socket socket, std::shared_ptr<asio::ssl::context> ctx, core::handshake_gate& gate);
    ~tls_start();
    tls_start(const tls_start&) = delete;
    tls_start& operator=(const tls_start&) = delete;

    // Calls done(ec) once, on the socket's executor: success when the
    // handshake is done. The caller keeps this object alive until then
    // (`done` may hold what owns it).
    void async_run(std::function<void(boost::system::error_code)> done);
    // Closes the socket; a pending async_run completes with an error.
    void close();

    // The bare socket until the stream is made, then the stream's.
    [[nodiscard]] tcp_socket& tcp();
    // Null until the handshake began.
    [[nodiscard]] tls_stream* stream() noexcept { return stream_.get(); }
    [[nodiscard]] std::shared_ptr<asio::ssl::context> context() const { return ctx_; }

private:
    using done_fn = std::function<void(boost::system::error_code)>;
    void on_slot(done_fn done);
    void release_slot();

    std::shared_ptr<asio::ssl::context> ctx_;
    core::handshake_gate& gate_;
    tcp_socket socket_;                   // until the stream takes it
    std::unique_ptr<tls_stream> stream_;  // made when a slot is taken
    core::handshake_gate::ticket waiting_ = 0;  // nonzero: in line for a slot
    bool slot_ = false;                   // holds a slot of gate_
    bool closed_ = false;
};

class transport {
public:
    using handler = std::function<void(boost::system::error_code, std::size_t)>;

    virtual ~transport() = default;

    // The handshake (TLS, WebSocket accept); h(ec, 0) when done.
    virtual void async_start(handler h) = 0;
    // Reads at least one byte into `in`.
    virtual void async_read(handler h) = 0;
    virtual void async_write(asio::const_buffer b, handler h) = 0;
    // Closes the socket now; pending operations complete with an error.
    virtual void close() = 0;
    [[nodiscard]] virtual tcp_socket& tcp() = 0;
    // The verified client certificate, if the client sent one.
    [[nodiscard]] const std::optional<peer_certificate>& peer() const noexcept { return peer_; }
    // What a failed async_start counts as (stats.hpp refusal).
    [[nodiscard]] virtual std::uint8_t start_failure() const noexcept = 0;

    // Where async_read puts its bytes; sized by the first read (a TLS
    // connection that never finishes its handshake never needs it).
    std::vector<std::uint8_t> in;
    static constexpr std::size_t in_size = 16 * 1024;
    // Which certificate names identify the client (the listener's tls.identity).
    tls_identity identity = tls_identity::cn;

protected:
    std::optional<peer_certificate> peer_;
};

// `mqtt+tls`: the TLS handshake (tls_start, bounded by `gate`), then MQTT
// in the TLS stream.
[[nodiscard]] std::unique_ptr<transport> make_tls_transport(tcp_socket socket, std::shared_ptr<asio::ssl::context> ctx,
                                                            core::handshake_gate& gate);

// WebSocket at /mqtt on an http listener: accepts the upgrade `req` (which
// was read from `socket`), then MQTT in binary messages. Messages larger than
// `max_message` close the connection.
[[nodiscard]] std::unique_ptr<transport> make_ws_transport(tcp_socket socket, http_request req, std::size_t max_message);
// The same on an https listener, over a TLS stream whose handshake is done;
// `ctx` is the context the stream was made with.
[[nodiscard]] std::unique_ptr<transport> make_wss_transport(tls_stream stream, std::shared_ptr<asio::ssl::context> ctx,
                                                            http_request req, std::size_t max_message);

// The client certificate of a finished TLS handshake, if one was verified.
[[nodiscard]] std::optional<peer_certificate> verified_peer(tls_stream& s);

}  // namespace strata::broker::net
