// Connection I/O: reading, the writer, the timer and close. The MQTT
// protocol lives in client_protocol.cpp and handle_*.cpp.
#include "broker/net/connection.hpp"

#include "broker/core/broker_core.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <array>

namespace strata::broker::net {

namespace {

constexpr auto close_timeout = std::chrono::seconds(5);
// Lingering after a DISCONNECT or refusing CONNACK: how long, and how much
// input, the broker reads and discards before it closes anyway.
constexpr auto linger_time = std::chrono::seconds(1);
constexpr std::uint16_t linger_bytes = 60 * 1024;
// Encoded replies (acks, SUBACKs, PINGRESPs) waiting behind a write in
// progress beyond which the connection stops reading.
constexpr std::size_t max_pending_replies = 256 * 1024;
constexpr std::size_t read_chunk = 64 * 1024;

std::string endpoint_text(connection::socket_type& s) {
    boost::system::error_code ec;
    const auto ep = s.remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
}

// Whether the client came in on a loopback address (anonymous clients may
// be accepted there only).
bool on_loopback(connection::socket_type& s) {
    boost::system::error_code ec;
    const auto local = s.local_endpoint(ec);
    return !ec && local.address().is_loopback();
}

void tune(connection::socket_type& s) {
    // Latency: no Nagle. Throughput: the writer coalesces everything queued
    // for this connection into one write, so small packets still travel
    // together under load.
    boost::system::error_code ignored;  // a socket that keeps Nagle still works
    s.set_option(asio::ip::tcp::no_delay(true), ignored);
}

}  // namespace

connection::connection(core::broker_core& core, socket_type socket)
    : core_(core),
      socket_(std::move(socket)),
      executor_(socket_.get_executor()),
      protocol_(core, *this, endpoint_text(socket_)),
      timer_(executor_) {
    tune(socket_);
    protocol_.set_loopback(on_loopback(socket_));
    // For the synchronous drain in on_read. It fails only on a socket that
    // is closed already, whose first read then reports it.
    boost::system::error_code ignored;
    socket_.non_blocking(true, ignored);
}

connection::connection(core::broker_core& core, std::unique_ptr<transport> t, executor_type ex)
    : core_(core),
      socket_(ex),
      layer_(std::move(t)),
      executor_(ex),
      protocol_(core, *this, endpoint_text(layer_->tcp())),
      timer_(executor_) {
    tune(layer_->tcp());
    protocol_.set_loopback(on_loopback(layer_->tcp()));
}

connection::~connection() = default;

void connection::start() {
    core_.add_connection(shared_from_this());
    core::bump(core_.counters().local().connections_accepted);
    protocol_.start(core::steady_clock::now());
    if (!layer_) {
        start_read();
        return;
    }
    layer_->async_start([self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_started(ec); });
}

void connection::on_started(boost::system::error_code ec) {
    if (ended()) return;
    if (ec) {
        core::bump(core_.counters().local().connections_refused[layer_->start_failure()]);
        spdlog::info("{}: {} failed: {}", remote(),
                     layer_->start_failure() == static_cast<std::uint8_t>(core::refusal::tls_handshake)
                         ? "TLS handshake"
                         : "WebSocket upgrade",
                     ec.message());
        close_now();
        return;
    }
    if (const auto& p = layer_->peer()) {
        spdlog::info("{}: client certificate cn='{}' san-uri=[{}] san-dns=[{}]", remote(), p->subject_cn,
                     fmt::join(p->san_uri, ","), fmt::join(p->san_dns, ","));
        // The name the listener's tls.identity selects is who the client
        // is (the first one, when a SAN lists several).
        if (auto names = certificate_identities(); !names.empty()) set_certificate_identity(std::move(names.front()));
    }
    start_read();
}

const peer_certificate* connection::client_certificate() const noexcept {
    if (!layer_ || !layer_->peer()) return nullptr;
    return &*layer_->peer();
}

std::vector<std::string> connection::certificate_identities() const {
    const peer_certificate* p = client_certificate();
    return p ? p->names(layer_->identity) : std::vector<std::string>{};
}

void connection::start_read() {
    reading_ = true;
    if (layer_) {
        layer_->async_read([self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
            self->on_read(ec, n);
        });
        return;
    }
    // async_read_some tries the read at once and only then waits; a bare
    // readiness wait would cost an epoll_ctl per message.
    socket_.async_read_some(asio::buffer(small_),
                            [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                                self->on_read(ec, n);
                            });
}

void connection::on_read(boost::system::error_code ec, std::size_t n) {
    reading_ = false;
    if (closed_) return;
    if (lingering_) {
        on_linger_read(ec, n);
        return;
    }
    auto end_of_input = [this](const boost::system::error_code& e) {
        if (e != asio::error::eof && e != asio::error::connection_reset &&
            e != asio::error::operation_aborted) {
            spdlog::debug("{} '{}': read: {}", remote(), client_id(), e.message());
        }
        protocol_.end_of_input();
    };
    if (ec) {
        end_of_input(ec);
        return;
    }
    // One per-thread buffer for the bulk of busy connections. Nothing
    // between filling it and consuming it can run another connection.
    static thread_local std::array<std::uint8_t, read_chunk> buf;
    auto& counters = core_.counters().local();
    batching_ = true;
    core::bump(counters.bytes_received, n);
    if (!deliver_input({layer_ ? layer_->in.data() : small_.data(), n})) return;
    // A full small buffer: more is probably waiting. Read it now, but a
    // bounded amount, so one busy client cannot starve the others. (A
    // transport reads into its own larger buffer.)
    for (int i = 0; !layer_ && n == small_.size() && i < 4 && protocol_.takes_input(); ++i) {
        boost::system::error_code rec;
        n = socket_.read_some(asio::buffer(buf), rec);
        if (rec == asio::error::would_block || rec == asio::error::try_again) break;
        if (rec) {
            batching_ = false;
            end_of_input(rec);
            return;
        }
        core::bump(counters.bytes_received, n);
        if (!deliver_input({buf.data(), n})) return;
        if (n < buf.size()) break;
        n = small_.size();  // keep draining
    }
    input_done();
}

bool connection::deliver_input(std::span<const std::uint8_t> bytes) {
    try {
        protocol_.on_input(bytes, core::steady_clock::now());
        return true;
    } catch (const std::exception& e) {
        batching_ = false;
        protocol_.internal_error(e);
        return false;
    }
}

void connection::input_done() {
    batching_ = false;
    flush();
    if (output_backlogged()) {
        // The client sends faster than it reads our replies: stop reading
        // until the write drains, so the replies cannot pile up without
        // bound. A client that never reads is closed by its keep-alive.
        read_paused_ = true;
        return;
    }
    // While a password is checked, input waits (resume_input()).
    if (!ended() && protocol_.takes_input()) start_read();
}

void connection::resume_input() {
    if (ended() || !protocol_.takes_input()) return;
    batching_ = true;
    try {
        protocol_.resume(core::steady_clock::now());
    } catch (const std::exception& e) {
        batching_ = false;
        protocol_.internal_error(e);
        return;
    }
    input_done();
}

bool connection::output_backlogged() const noexcept {
    // Acknowledgements held for the store count too: a client that keeps
    // publishing while the disk is slow stops being read.
    return (writing_ && protocol_.replies_waiting() > max_pending_replies) ||
           protocol_.acks_held() > max_pending_replies;
}

void connection::notify() {
    if (notify_pending_.exchange(true, std::memory_order_acq_rel)) return;
    asio::post(executor_, [self = shared_from_this()] {
        self->notify_pending_.store(false, std::memory_order_release);
        self->flush();
    });
}

void connection::kick(mqtt::reason_code code, std::uint64_t generation) {
    asio::post(executor_, [self = shared_from_this(), code, generation] {
        if (self->ended()) return;
        self->protocol_.kick(code, generation);
    });
}

void connection::regrant(std::shared_ptr<const auth::grants> g) {
    asio::post(executor_, [self = shared_from_this(), g = std::move(g)]() mutable {
        if (self->ended()) return;
        self->protocol_.regrant(std::move(g));
    });
}

void connection::flush() {
    if (writing_ || batching_ || ended()) return;
    out_.clear();
    protocol_.drain(out_, core::steady_clock::now());
    if (out_.empty()) {
        release_if_idle(out_);
        if (close_when_flushed_) {
            if (linger_) start_linger();
            else close_now();
        }
        return;
    }
    writing_ = true;
    core::bump(core_.counters().local().bytes_sent, out_.size());
    auto done = [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
        self->writing_ = false;
        if (ec) {
            self->close_now();
            return;
        }
        self->flush();
        if (self->read_paused_ && !self->output_backlogged()) {
            self->read_paused_ = false;
            if (!self->ended() && self->protocol_.takes_input()) self->start_read();
        }
    };
    if (layer_) layer_->async_write(asio::buffer(out_), std::move(done));
    else asio::async_write(socket_, asio::buffer(out_), std::move(done));
}

void connection::set_deadline(time_point deadline) {
    if (close_when_flushed_ || ended()) return;  // the close timeout owns the timer now
    timer_.expires_at(deadline);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->on_timer();
    });
}

void connection::on_timer() {
    if (ended()) return;
    if (close_when_flushed_) {
        close_now();  // a peer that stops reading must not keep the connection open
        return;
    }
    try {
        protocol_.on_timer(core::steady_clock::now());
    } catch (const std::exception& e) {
        protocol_.internal_error(e);
    }
}

void connection::close_after_flush(bool linger) {
    if (ended()) return;
    linger_ = linger_ || linger;
    if (!close_when_flushed_) {
        close_when_flushed_ = true;
        // A peer that stops reading must not keep the connection open.
        timer_.expires_after(close_timeout);
        timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec) self->on_timer();
        });
    }
    flush();
}

void connection::start_linger() {
    // The client may still be writing (acknowledgements, a pipelined
    // SUBSCRIBE): closing with unread input makes the kernel send a reset,
    // and the client's stack may then drop our last packet unread. So: FIN
    // after the packet, then read and discard until the client closes.
    lingering_ = true;
    protocol_.release();
    boost::system::error_code ec;
    tcp().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    if (ec) {
        close_now();
        return;
    }
    timer_.expires_after(linger_time);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code e) {
        if (!e) self->close_now();
    });
    if (!reading_) start_read();
}

void connection::on_linger_read(boost::system::error_code ec, std::size_t n) {
    lingered_bytes_ = static_cast<std::uint16_t>(std::min<std::size_t>(lingered_bytes_ + n, linger_bytes));
    if (ec || lingered_bytes_ >= linger_bytes) {
        close_now();  // the client closed (or sends too much): done
        return;
    }
    start_read();
}

void connection::close_now() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    if (layer_) {
        layer_->close();
    } else {
        close_socket(socket_);
    }
    protocol_.release();
    core_.remove_connection(this);
}

}  // namespace strata::broker::net
