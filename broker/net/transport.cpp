// TLS and WebSocket transports, the TLS server context, client certificate names.
#include "broker/net/transport.hpp"

#include "broker/core/stats.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace strata::broker::net {

namespace ssl = asio::ssl;
namespace websocket = boost::beast::websocket;

namespace {

// Mozilla's "intermediate" TLS 1.2 suites: forward secrecy and AEAD only.
// TLS 1.3 keeps OpenSSL's defaults (all of them AEAD).
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

constexpr auto ws_handshake_timeout = std::chrono::seconds(10);

std::string asn1_text(const ASN1_STRING* s) {
    if (s == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
}

std::shared_ptr<ssl::context> build_context(const tls_config& c) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* h = ctx->native_handle();
    SSL_CTX_set_min_proto_version(h, c.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(h, tls12_ciphers) != 1) throw std::runtime_error("tls: no usable cipher suites");
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(c.cert, ec);
    if (ec) throw std::runtime_error("tls.cert '" + c.cert + "': " + ec.message());
    ctx->use_private_key_file(c.key, ssl::context::pem, ec);
    if (ec) throw std::runtime_error("tls.key '" + c.key + "': " + ec.message());
    if (SSL_CTX_check_private_key(h) != 1)
        throw std::runtime_error("tls.key '" + c.key + "' does not belong to tls.cert '" + c.cert + "'");
    if (!c.client_ca.empty()) {
        ctx->load_verify_file(c.client_ca, ec);
        if (ec) throw std::runtime_error("tls.client_ca '" + c.client_ca + "': " + ec.message());
        // The CA names a client is told to choose its certificate by.
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.client_ca.c_str())) {
            SSL_CTX_set_client_CA_list(h, names);
        }
        ctx->set_verify_mode(ssl::verify_peer | (c.require_client_cert ? ssl::verify_fail_if_no_peer_cert : 0));
        // Session resumption with client verification needs a context id.
        static constexpr unsigned char sid[] = "strata";
        SSL_CTX_set_session_id_context(h, sid, sizeof sid - 1);
    }
    return ctx;
}

// Readable with nothing to read: the peer closed (or reset) before sending.
bool closed_before_sending(tcp_socket& s) {
    boost::system::error_code ec;
    return s.available(ec) == 0 || ec;
}

class tls_transport final : public transport {
public:
    tls_transport(tcp_socket socket, std::shared_ptr<ssl::context> ctx, core::handshake_gate& gate)
        : start_(std::move(socket), std::move(ctx), gate) {}

    void async_start(handler h) override {
        start_.async_run([this, h = std::move(h)](boost::system::error_code ec) {
            if (!ec) peer_ = verified_peer(*start_.stream());
            h(ec, 0);
        });
    }
    void async_read(handler h) override {
        if (in.empty()) in.resize(in_size);
        start_.stream()->async_read_some(asio::buffer(in), std::move(h));
    }
    void async_write(asio::const_buffer b, handler h) override {
        asio::async_write(*start_.stream(), b, std::move(h));
    }
    void close() override { start_.close(); }
    tcp_socket& tcp() override { return start_.tcp(); }
    std::uint8_t start_failure() const noexcept override { return static_cast<std::uint8_t>(core::refusal::tls_handshake); }

private:
    tls_start start_;
};

template <class Next>
class ws_transport final : public transport {
public:
    ws_transport(Next next, std::shared_ptr<ssl::context> ctx, http_request req, std::size_t max_message)
        : ctx_(std::move(ctx)), ws_(std::move(next)), req_(std::move(req)) {
        ws_.binary(true);
        ws_.read_message_max(max_message);
        websocket::stream_base::timeout t{};
        t.handshake_timeout = ws_handshake_timeout;
        t.idle_timeout = websocket::stream_base::none();  // MQTT keep-alive covers idleness
        t.keep_alive_pings = false;
        ws_.set_option(t);
        ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
            res.set(boost::beast::http::field::sec_websocket_protocol, "mqtt");
            res.set(boost::beast::http::field::server, "strata");
        }));
    }

    void set_peer(std::optional<peer_certificate> p) { peer_ = std::move(p); }

    void async_start(handler h) override {
        ws_.async_accept(req_, [this, h = std::move(h)](boost::system::error_code ec) {
            http_request().swap(req_);
            h(ec, 0);
        });
    }
    void async_read(handler h) override {
        if (in.empty()) in.resize(in_size);
        ws_.async_read_some(asio::buffer(in), std::move(h));
    }
    void async_write(asio::const_buffer b, handler h) override { ws_.async_write(b, std::move(h)); }
    void close() override { close_socket(tcp()); }
    tcp_socket& tcp() override {
        if constexpr (std::is_same_v<Next, tcp_socket>) return ws_.next_layer();
        else return ws_.next_layer().next_layer();
    }
    std::uint8_t start_failure() const noexcept override {
        return static_cast<std::uint8_t>(core::refusal::websocket_upgrade);
    }

private:
    std::shared_ptr<ssl::context> ctx_;  // null for plain WebSocket
    websocket::stream<Next> ws_;
    http_request req_;  // until accepted
};

}  // namespace

void close_socket(tcp_socket& s) {
    boost::system::error_code ignored;  // closing anyway: a socket that fails to shut down is closed all the same
    s.shutdown(tcp_socket::shutdown_both, ignored);
    s.close(ignored);
}

std::vector<std::string> peer_certificate::names(tls_identity kind) const {
    switch (kind) {
    case tls_identity::cn:
        if (subject_cn.empty()) return {};
        return {subject_cn};
    case tls_identity::san_uri:
        return san_uri;
    case tls_identity::san_dns:
        return san_dns;
    }
    return {};
}

peer_certificate read_certificate(const void* x509) {
    peer_certificate out;
    auto* x = static_cast<X509*>(const_cast<void*>(x509));
    if (x == nullptr) return out;
    if (const X509_NAME* subject = X509_get_subject_name(x)) {
        // The most specific (last) CN when there are several.
        for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
             i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
            out.subject_cn = asn1_text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
        }
    }
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
    if (sans != nullptr) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
            const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
            if (n->type == GEN_URI) out.san_uri.push_back(asn1_text(n->d.uniformResourceIdentifier));
            else if (n->type == GEN_DNS) out.san_dns.push_back(asn1_text(n->d.dNSName));
        }
        GENERAL_NAMES_free(sans);
    }
    return out;
}

std::optional<peer_certificate> verified_peer(tls_stream& s) {
    SSL* ssl = s.native_handle();
    const X509* cert = SSL_get0_peer_certificate(ssl);
    if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return std::nullopt;
    return read_certificate(cert);
}

tls_context::tls_context(tls_config cfg) : cfg_(std::move(cfg)), ctx_(build_context(cfg_)) {}

std::shared_ptr<ssl::context> tls_context::current() const {
    std::lock_guard lock(mutex_);
    return ctx_;
}

void tls_context::reload(const tls_config& cfg) {
    auto fresh = build_context(cfg);
    cfg_ = cfg;
    std::lock_guard lock(mutex_);
    ctx_ = std::move(fresh);
}

tls_start::tls_start(tcp_socket socket, std::shared_ptr<ssl::context> ctx, core::handshake_gate& gate)
    : ctx_(std::move(ctx)), gate_(gate), socket_(std::move(socket)) {}

tls_start::~tls_start() {
    if (waiting_ != 0) gate_.cancel(waiting_);
    release_slot();
}

void on_first_bytes(tcp_socket socket, std::chrono::steady_clock::time_point deadline,
                    std::function<void(tcp_socket)> then) {
    struct waiting {
        tcp_socket socket;
        asio::steady_timer timer;
        std::function<void(tcp_socket)> then;
    };
    asio::steady_timer timer(socket.get_executor());
    auto w = std::make_shared<waiting>(waiting{std::move(socket), std::move(timer), std::move(then)});
    w->timer.expires_at(deadline);
    w->timer.async_wait([w](boost::system::error_code ec) {
        if (!ec) close_socket(w->socket);  // the wait below ends with an error
    });
    w->socket.async_wait(tcp_socket::wait_read, [w](boost::system::error_code ec) {
        w->timer.cancel();
        if (ec || closed_before_sending(w->socket)) {
            close_socket(w->socket);
            return;
        }
        w->then(std::move(w->socket));
    });
}

void tls_start::async_run(done_fn done) {
    // Readable: the first bytes arrived. Nothing of TLS exists before, and
    // nothing is made for a peer that closed without sending.
    socket_.async_wait(tcp_socket::wait_read, [this, done = std::move(done)](boost::system::error_code ec) mutable {
        if (closed_) ec = asio::error::operation_aborted;
        if (!ec && closed_before_sending(socket_)) ec = asio::error::eof;
        if (ec) {
            done(ec);
            return;
        }
        waiting_ = gate_.acquire(socket_.get_executor(), [this, done](bool granted) mutable {
            waiting_ = 0;
            if (!granted) {
                done(asio::error::operation_aborted);
                return;
            }
            slot_ = true;
            on_slot(std::move(done));
        });
        if (waiting_ == 0) {
            slot_ = true;
            on_slot(std::move(done));
        }
    });
}

void tls_start::on_slot(done_fn done) {
    if (closed_) {
        release_slot();
        done(asio::error::operation_aborted);
        return;
    }
    stream_ = std::make_unique<tls_stream>(std::move(socket_), *ctx_);
    stream_->async_handshake(ssl::stream_base::server, [this, done = std::move(done)](boost::system::error_code ec) {
        release_slot();
        done(ec);
    });
}

void tls_start::release_slot() {
    if (!slot_) return;
    slot_ = false;
    gate_.release();
}

void tls_start::close() {
    closed_ = true;
    if (waiting_ != 0) {
        gate_.cancel(waiting_);  // the wait completes with an error
        waiting_ = 0;
    }
    close_socket(tcp());
    // A handshake cut short gives its slot back now; its handler, which
    // still runs, finds it given.
    release_slot();
}

tcp_socket& tls_start::tcp() { return stream_ ? stream_->next_layer() : socket_; }

std::unique_ptr<transport> make_tls_transport(tcp_socket socket, std::shared_ptr<ssl::context> ctx,
                                              core::handshake_gate& gate) {
    return std::make_unique<tls_transport>(std::move(socket), std::move(ctx), gate);
}

std::unique_ptr<transport> make_ws_transport(tcp_socket socket, http_request req, std::size_t max_message) {
    return std::make_unique<ws_transport<tcp_socket>>(std::move(socket), nullptr, std::move(req), max_message);
}

std::unique_ptr<transport> make_wss_transport(tls_stream stream, std::shared_ptr<ssl::context> ctx,
                                              http_request req, std::size_t max_message) {
    auto peer = verified_peer(stream);
    auto t = std::make_unique<ws_transport<tls_stream>>(std::move(stream), std::move(ctx), std::move(req),
                                                         max_message);
    t->set_peer(std::move(peer));
    return t;
}

}  // namespace strata::broker::net
