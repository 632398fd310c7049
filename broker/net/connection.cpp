// Connection I/O: reading, the writer, keep-alive and close.
// The packet handlers live in handle_*.cpp.
#include "broker/net/connection.hpp"

#include "broker/core/broker_core.hpp"
#include "broker/core/log_limit.hpp"

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
// Buffers larger than this are released once empty, so that a connection
// that once moved a large message does not keep the memory while idle.
constexpr std::size_t keep_capacity = 16 * 1024;

core::refusal refusal_for(mqtt::reason_code code) {
    using mqtt::reason_code;
    switch (code) {
    case reason_code::quota_exceeded:
    case reason_code::server_busy:
    case reason_code::connection_rate_exceeded:
        return core::refusal::limit;
    case reason_code::bad_user_name_or_password:
    case reason_code::not_authorized:
    case reason_code::banned:
    case reason_code::bad_authentication_method:
        return core::refusal::auth;
    case reason_code::use_another_server:
    case reason_code::server_moved:
        return core::refusal::redirect;
    default:
        return core::refusal::protocol;
    }
}

void trim(std::vector<std::uint8_t>& v) {
    if (v.empty() && v.capacity() > keep_capacity) std::vector<std::uint8_t>().swap(v);
}

}  // namespace

namespace {

std::string endpoint_text(connection::socket_type& s) {
    boost::system::error_code ec;
    const auto ep = s.remote_endpoint(ec);
    return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
}

void tune(connection::socket_type& s) {
    // Latency: no Nagle. Throughput: the writer coalesces everything queued
    // for this connection into one write, so small packets still travel
    // together under load.
    boost::system::error_code ignored;  // a socket that keeps Nagle still works
    s.set_option(asio::ip::tcp::no_delay(true), ignored);
}

}  // namespace

connection::connection(core::broker_core& core, socket_type socket, std::size_t thread_index)
    : core_(core),
      socket_(std::move(socket)),
      executor_(socket_.get_executor()),
      thread_index_(thread_index),
      timer_(executor_) {
    remote_ = endpoint_text(socket_);
    tune(socket_);
    // For the synchronous drain in on_read. It fails only on a socket that
    // is closed already, whose first read then reports it.
    boost::system::error_code ignored;
    socket_.non_blocking(true, ignored);
    decode_limits_.max_packet_size = core_.cfg().limits.max_packet_size;
}

connection::connection(core::broker_core& core, std::unique_ptr<transport> t, std::size_t thread_index,
                       executor_type ex)
    : core_(core),
      socket_(ex),
      layer_(std::move(t)),
      executor_(ex),
      thread_index_(thread_index),
      timer_(executor_) {
    remote_ = endpoint_text(layer_->tcp());
    tune(layer_->tcp());
    decode_limits_.max_packet_size = core_.cfg().limits.max_packet_size;
}

connection::~connection() = default;

void connection::start() {
    auto self = shared_from_this();
    core_.add_connection(self);
    core::bump(core_.counters().local().connections_accepted);
    timer_.expires_after(connect_timeout);
    timer_.async_wait([self](boost::system::error_code ec) {
        const auto s = self->state_;
        if (!ec && (s == state::awaiting_connect || s == state::verifying || s == state::authenticating)) {
            spdlog::debug("{}: no CONNECT within {}s", self->remote_, connect_timeout.count());
            self->close_now();
        }
    });
    if (!layer_) {
        start_read();
        return;
    }
    layer_->async_start([self](boost::system::error_code ec, std::size_t) { self->on_started(ec); });
}

void connection::on_started(boost::system::error_code ec) {
    if (ended()) return;
    if (ec) {
        core::bump(core_.counters().local().connections_refused[layer_->start_failure()]);
        spdlog::info("{}: {} failed: {}", remote_,
                     layer_->start_failure() == static_cast<std::uint8_t>(core::refusal::tls_handshake)
                         ? "TLS handshake"
                         : "WebSocket upgrade",
                     ec.message());
        close_now();
        return;
    }
    if (const auto& p = layer_->peer()) {
        spdlog::info("{}: client certificate cn='{}' san-uri=[{}] san-dns=[{}]", remote_, p->subject_cn,
                     fmt::join(p->san_uri, ","), fmt::join(p->san_dns, ","));
        // The name the listener's tls.identity selects is who the client
        // is (the first one, when a SAN lists several).
        if (auto names = certificate_identities(); !names.empty()) extras().certificate_identity = std::move(names.front());
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
    if (state_ == state::closed) return;
    if (state_ == state::lingering) {
        on_linger_read(ec, n);
        return;
    }
    auto end_of_input = [this](const boost::system::error_code& e) {
        if (e != asio::error::eof && e != asio::error::connection_reset &&
            e != asio::error::operation_aborted) {
            spdlog::debug("{} '{}': read: {}", remote_, client_id_, e.message());
        }
        close_after_flush();
    };
    if (ec) {
        end_of_input(ec);
        return;
    }
    // One per-thread buffer for the bulk of busy connections. Nothing
    // between filling it and consuming it can run another connection.
    static thread_local std::array<std::uint8_t, read_chunk> buf;
    auto& counters = core_.counters().local();
    last_rx_ = core::steady_clock::now();
    batching_ = true;
    try {
        core::bump(counters.bytes_received, n);
        process_input(layer_ ? layer_->in.data() : small_.data(), n);
        // A full small buffer: more is probably waiting. Read it now, but
        // a bounded amount, so one busy client cannot starve the others.
        // (A transport reads into its own larger buffer.)
        for (int i = 0; !layer_ && n == small_.size() && i < 4 && !inbound_closed_; ++i) {
            boost::system::error_code rec;
            n = socket_.read_some(asio::buffer(buf), rec);
            if (rec == asio::error::would_block || rec == asio::error::try_again) break;
            if (rec) {
                batching_ = false;
                end_of_input(rec);
                return;
            }
            core::bump(counters.bytes_received, n);
            process_input(buf.data(), n);
            if (n < buf.size()) break;
            n = small_.size();  // keep draining
        }
    } catch (const std::exception& e) {
        internal_error(e);
        return;
    }
    input_done();
}

void connection::internal_error(const std::exception& e) {
    // An exception closes this connection only.
    spdlog::error("{} '{}': closing after an internal error: {}", remote_, client_id_, e.what());
    core::bump(core_.counters().local().internal_errors);
    batching_ = false;
    close_now();
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
    if (!inbound_closed_ && state_ != state::closed && state_ != state::verifying) start_read();
}

void connection::resume_input() {
    if (state_ == state::closed || inbound_closed_) return;
    batching_ = true;
    try {
        process_input(small_.data(), 0);  // what is held in in_
    } catch (const std::exception& e) {
        internal_error(e);
        return;
    }
    input_done();
}

bool connection::output_backlogged() const noexcept {
    // Acknowledgements held for the store count too: a client that keeps
    // publishing while the disk is slow stops being read.
    return (writing_ && control_.size() > max_pending_replies) ||
           (held_ && held_->bytes.size() > max_pending_replies);
}

void connection::process_input(const std::uint8_t* data, std::size_t n) {
    if (in_.empty()) {
        const std::size_t used = consume(data, n);
        if (used < n && !inbound_closed_) in_.assign(data + used, data + n);
    } else {
        in_.insert(in_.end(), data, data + n);
        const std::size_t used = consume(in_.data(), in_.size());
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(used));
        trim(in_);
    }
}

std::size_t connection::consume(const std::uint8_t* data, std::size_t size) {
    std::size_t off = 0;
    while (off < size && !inbound_closed_ && state_ != state::verifying) {
        mqtt::packet p;
        const auto r = mqtt::decode({data + off, size - off}, version_, decode_limits_, p);
        if (r.status == mqtt::decode_status::need_more) break;
        if (r.status == mqtt::decode_status::error) {
            if (state_ == state::awaiting_connect) {
                spdlog::debug("{}: bad CONNECT: {}", remote_, r.detail);
                if (r.code == mqtt::reason_code::unsupported_protocol_version) {
                    // Answered in the 3.1.1 format, which every version understands.
                    version_ = mqtt::protocol_version::v311;
                    refuse_connect(r.code, r.detail);
                } else {
                    close_now();
                }
            } else {
                fail(r.code, r.detail);
            }
            return size;
        }
        off += r.consumed;
        core::bump(core_.counters().local().messages_received);
        handle(p);
    }
    return off;
}

void connection::handle(mqtt::packet& p) {
    if (state_ == state::awaiting_connect) {
        if (auto* c = std::get_if<mqtt::connect>(&p)) {
            handle_connect(*c);
        } else {
            spdlog::debug("{}: first packet is not CONNECT", remote_);
            close_now();
        }
        return;
    }
    if (state_ == state::authenticating) {
        if (auto* a = std::get_if<mqtt::auth>(&p)) {
            handle_auth(*a);
        } else if (std::holds_alternative<mqtt::disconnect>(p)) {
            close_after_flush();
        } else {
            spdlog::debug("{}: packet other than AUTH during authentication", remote_);
            close_now();
        }
        return;
    }
    if (state_ != state::connected) return;
    std::visit(
        [this](auto& pk) {
            using T = std::decay_t<decltype(pk)>;
            if constexpr (std::is_same_v<T, mqtt::publish>) handle_publish(pk);
            else if constexpr (std::is_same_v<T, mqtt::puback>) handle_puback(pk);
            else if constexpr (std::is_same_v<T, mqtt::pubrec>) handle_pubrec(pk);
            else if constexpr (std::is_same_v<T, mqtt::pubrel>) handle_pubrel(pk);
            else if constexpr (std::is_same_v<T, mqtt::pubcomp>) handle_pubcomp(pk);
            else if constexpr (std::is_same_v<T, mqtt::subscribe>) handle_subscribe(pk);
            else if constexpr (std::is_same_v<T, mqtt::unsubscribe>) handle_unsubscribe(pk);
            else if constexpr (std::is_same_v<T, mqtt::pingreq>) send(mqtt::pingresp{});
            else if constexpr (std::is_same_v<T, mqtt::disconnect>) handle_disconnect(pk);
            else if constexpr (std::is_same_v<T, mqtt::auth>) handle_auth(pk);
            else if constexpr (std::is_same_v<T, mqtt::connect>) fail(mqtt::reason_code::protocol_error, "second CONNECT");
            else fail(mqtt::reason_code::protocol_error, "packet type a client must not send");
        },
        p);
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
        if (generation != 0 && generation != self->generation_) return;
        if (self->ended()) return;
        spdlog::debug("{} '{}': disconnecting: {}", self->remote_, self->client_id_, mqtt::to_string(code));
        self->fail(code, mqtt::to_string(code));
    });
}

bool connection::encode_for_client(const mqtt::packet& p, std::vector<std::uint8_t>& out) {
    const std::size_t start = out.size();
    mqtt::encode(p, version_, out);
    if (out.size() - start <= client_max_packet_size_) return true;
    // Above the client's Maximum Packet Size (5.0): the Reason String and
    // User Properties are what the standard lets the sender leave out
    // (MQTT-3.1.2-25 and the Reason String of every reply); without them it
    // may fit.
    out.resize(start);
    mqtt::packet lean = p;
    std::visit(
        [](auto& x) {
            if constexpr (requires { x.props; }) {
                x.props.reason_string.reset();
                x.props.user_properties.clear();
            }
        },
        lean);
    mqtt::encode(lean, version_, out);
    const std::size_t size = out.size() - start;
    if (size <= client_max_packet_size_) return true;
    out.resize(start);
    static thread_local core::log_limit limit;
    if (limit.allow()) {
        spdlog::info("{} '{}': closing: a packet of type {} needs {} bytes, above the client's Maximum Packet Size "
                     "of {}{}",
                     remote_, client_id_, static_cast<int>(mqtt::type_of(p)), size, client_max_packet_size_,
                     limit.suffix());
    }
    return false;
}

void connection::send(const mqtt::packet& p) {
    if (ended()) return;
    if (!encode_for_client(p, control_)) {
        // Nothing this client accepts can say why: the connection closes.
        close_after_flush();
        return;
    }
    flush();
}

void connection::send_when_durable(const mqtt::packet& p, persistence::ticket t) {
    if (state_ == state::closed) return;
    auto* st = core_.store();
    // The session's own writes (its subscriptions, QoS 2 ids, delivery
    // progress) are part of what this acknowledges.
    if (st != nullptr && session_) t = std::max(t, session_->last_ticket());
    const bool holding = held_ && !held_->ends.empty();
    if (st == nullptr || (!holding && (t == 0 || st->durable_ticket() >= t))) {
        send(p);
        return;
    }
    if (!held_) held_ = std::make_unique<held_acks>();
    if (holding) t = std::max(t, held_->ends.back().first);
    if (!encode_for_client(p, held_->bytes)) {
        close_after_flush();
        return;
    }
    held_->ends.emplace_back(t, held_->bytes.size());
    wait_for_store();
}

void connection::wait_for_store() {
    const persistence::ticket t = held_->ends.back().first;
    if (held_->waiting_for >= t) return;
    held_->waiting_for = t;
    // Runs on the store's writer thread: only hand over to this thread.
    core_.store()->when_durable(t, [weak = weak_from_this(), ex = executor_](bool ok) {
        asio::post(ex, [weak, ok] {
            if (auto self = weak.lock()) self->on_store_durable(ok);
        });
    });
}

void connection::on_store_durable(bool ok) {
    if (!held_ || state_ == state::closed) return;
    auto& h = *held_;
    const persistence::ticket durable = core_.store()->durable_ticket();
    std::size_t n = 0;
    std::size_t end = 0;
    while (n < h.ends.size() && h.ends[n].first <= durable) end = h.ends[n++].second;
    if (n > 0) {
        control_.insert(control_.end(), h.bytes.begin(), h.bytes.begin() + static_cast<std::ptrdiff_t>(end));
        h.bytes.erase(h.bytes.begin(), h.bytes.begin() + static_cast<std::ptrdiff_t>(end));
        h.ends.erase(h.ends.begin(), h.ends.begin() + static_cast<std::ptrdiff_t>(n));
        for (auto& e : h.ends) e.second -= end;
        flush();
    }
    if (h.ends.empty()) {
        h.waiting_for = 0;
        return;
    }
    // A failed commit is retried by the store; the acknowledgements wait
    // for the retry (nothing is acknowledged that is not on disk).
    if (!ok) {
        spdlog::debug("{} '{}': store commit failed; acknowledgements wait", remote_, client_id_);
        h.waiting_for = 0;
    } else if (h.waiting_for <= durable) {
        h.waiting_for = 0;  // the registration that fired was the last one
    }
    wait_for_store();
}

void connection::flush() {
    if (writing_ || batching_ || ended()) return;
    out_.clear();
    out_.swap(control_);
    if (session_ && state_ == state::connected) {
        const auto now = core::steady_clock::now();
        // Per thread, not per connection: flush never runs nested.
        static thread_local std::vector<core::outgoing> collected;
        collected.clear();
        session_->collect(this, collected, window_, now);
        for (auto& o : collected) encode_delivery(o, now);
        collected.clear();
    }
    if (out_.empty()) {
        trim(out_);
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
            if (!self->inbound_closed_ && self->state_ != state::closed) self->start_read();
        }
    };
    if (layer_) layer_->async_write(asio::buffer(out_), std::move(done));
    else asio::async_write(socket_, asio::buffer(out_), std::move(done));
}

void connection::encode_delivery(core::outgoing& o, core::steady_clock::time_point now) {
    auto& counters = core_.counters().local();
    if (o.what == core::outgoing::kind::pubrel) {
        mqtt::encode(mqtt::pubrel{o.packet_id, mqtt::reason_code::success, {}}, version_, out_);
        return;
    }
    const core::message& m = *o.d.msg;
    mqtt::publish_view v;
    v.topic = m.topic;
    v.payload = m.payload;
    v.qos = o.d.qos;
    v.retain = o.d.retain;
    v.dup = o.dup;
    v.packet_id = o.packet_id;
    if (version_ == mqtt::protocol_version::v5) {
        v.props = &m.props;
        v.subscription_identifiers = {o.d.sub_ids.data(), o.d.sub_ids.size()};
        if (m.expires_at) {
            // The remaining lifetime travels on, rounded up so it never reads 0.
            const auto left = std::chrono::ceil<std::chrono::seconds>(*m.expires_at - now).count();
            v.message_expiry_interval = static_cast<std::uint32_t>(std::max<long long>(left, 1));
        }
    }
    // Topic aliases first: a known one makes the packet smaller, a new one
    // adds its property (3 bytes) to a packet that still carries the topic.
    std::optional<std::uint16_t> new_alias;
    if (version_ == mqtt::protocol_version::v5 && client_topic_alias_max_ > 0) {
        if (!outbound_aliases_) outbound_aliases_ = std::make_unique<std::unordered_map<std::string, std::uint16_t>>();
        const auto& aliases = *outbound_aliases_;
        if (const auto it = aliases.find(m.topic); it != aliases.end()) {
            v.topic_alias = it->second;
            v.topic = {};
        } else if (aliases.size() < client_topic_alias_max_) {
            new_alias = static_cast<std::uint16_t>(aliases.size() + 1);
            v.topic_alias = new_alias;
        }
    }
    std::size_t size = mqtt::encoded_size(v, version_);
    if (new_alias && size > client_max_packet_size_) {
        // Without the new alias it may still fit.
        new_alias.reset();
        v.topic_alias.reset();
        size = mqtt::encoded_size(v, version_);
    }
    if (size > client_max_packet_size_) {
        // Larger than the client accepts: discarded for this client only, and
        // treated as delivered so that it does not block the session.
        core::bump(counters.dropped_too_large);
        session_->count_dropped();
        if (o.d.qos > 0) session_->abandon(o.packet_id);
        return;
    }
    if (new_alias) outbound_aliases_->emplace(m.topic, *new_alias);
    mqtt::encode_publish(v, version_, out_);
    core::bump(counters.publish_sent[o.d.qos]);
    core::bump(counters.payload_sent[o.d.qos], m.payload.size());
    core::bump(counters.messages_sent);
}

void connection::refuse_connect(mqtt::reason_code code, const char* why,
                                std::optional<std::string> server_reference) {
    spdlog::info("{} '{}': connection refused: {} ({})", remote_, client_id_, mqtt::to_string(code), why);
    core::bump(core_.counters().local().connections_refused[static_cast<std::size_t>(refusal_for(code))]);
    // A code CONNACK may not carry (a decoder's verdict, say) is said as the
    // nearest it may: the client must be able to decode the refusal.
    if (!mqtt::reason_allowed(mqtt::packet_type::connack, code)) code = mqtt::reason_code::protocol_error;
    mqtt::connack ack;
    ack.code = code;
    if (version_ == mqtt::protocol_version::v5) {
        if (request_problem_info_) ack.props.reason_string = why;
        ack.props.server_reference = std::move(server_reference);
    }
    state_ = state::closing;
    send(ack);
    linger_ = true;
    close_after_flush();
}

void connection::fail(mqtt::reason_code code, const char* why) {
    if (ended()) return;
    spdlog::debug("{} '{}': closing: {} ({})", remote_, client_id_, mqtt::to_string(code), why);
    if (state_ == state::connected && version_ == mqtt::protocol_version::v5) {
        mqtt::disconnect d;
        // E.g. 0x84 (a second CONNECT of an unknown version, as the decoder
        // sees it) is a CONNACK code: to a connected client that CONNECT is
        // a protocol error.
        d.code = mqtt::reason_allowed(mqtt::packet_type::disconnect, code) ? code : mqtt::reason_code::protocol_error;
        if (request_problem_info_ && code != mqtt::reason_code::server_shutting_down) {
            d.props.reason_string = why;
        }
        state_ = state::closing;
        send(d);
        linger_ = true;
    }
    close_after_flush();
}

void connection::close_after_flush() {
    if (ended()) return;
    if (state_ != state::closing) state_ = state::closing;
    inbound_closed_ = true;
    if (!close_when_flushed_) {
        close_when_flushed_ = true;
        // A peer that stops reading must not keep the connection open.
        timer_.expires_after(close_timeout);
        timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec) self->close_now();
        });
    }
    flush();
}

void connection::start_linger() {
    // The client may still be writing (acknowledgements, a pipelined
    // SUBSCRIBE): closing with unread input makes the kernel send a reset,
    // and the client's stack may then drop our last packet unread. So: FIN
    // after the packet, then read and discard until the client closes.
    state_ = state::lingering;
    inbound_closed_ = true;
    release();
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
    if (state_ == state::closed) return;
    state_ = state::closed;
    inbound_closed_ = true;
    timer_.cancel();
    if (layer_) {
        layer_->close();
    } else {
        close_socket(socket_);
    }
    release();
    core_.remove_connection(this);
}

void connection::release() {
    identity_state_.reset();  // the identity's connection count
    if (connected_) {
        connected_ = false;
        core_.counters().clients_connected.fetch_sub(1, std::memory_order_relaxed);
    }
    if (!session_) return;
    auto s = std::move(session_);
    if (!s->detach(this)) return;  // taken over: the new connection owns the session now
    if (!will_on_close_) s->take_will();  // normal DISCONNECT: the will is discarded
    core_.connection_lost(s, generation_, executor_);
}

void connection::arm_keepalive() {
    // Only while connected: a connection that is closing keeps its close
    // timeout on the same timer (e.g. a CONNACK too large for the client).
    if (keep_alive_ == 0 || state_ != state::connected) return;
    const auto deadline = last_rx_ + std::chrono::milliseconds(keep_alive_ * 1500u);
    timer_.expires_at(deadline);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->on_keepalive_timer();
    });
}

void connection::on_keepalive_timer() {
    if (state_ != state::connected) return;
    const auto deadline = last_rx_ + std::chrono::milliseconds(keep_alive_ * 1500u);
    if (core::steady_clock::now() >= deadline) {
        fail(mqtt::reason_code::keep_alive_timeout, "keep alive timeout");
        return;
    }
    arm_keepalive();
}

}  // namespace strata::broker::net
