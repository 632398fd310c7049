// The protocol's input (decoding, dispatch), its output (replies, held
// acknowledgements, deliveries), keep-alive and close. The packet handlers
// live in handle_*.cpp.
#include "broker/net/client_protocol.hpp"

#include "broker/core/log_limit.hpp"
#include "broker/core/stats.hpp"
#include "broker/net/transport.hpp"

#include <spdlog/spdlog.h>

namespace strata::broker::net {

namespace {

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

}  // namespace

client_protocol::client_protocol(core::client_services& core, protocol_io& io, std::string remote)
    : core_(core), io_(io), remote_(std::move(remote)) {
    decode_limits_.max_packet_size = core_.cfg().limits.max_packet_size;
}

client_protocol::deferred client_protocol::later() {
    return deferred{io_.shared_owner(), io_.executor(), this};
}

void client_protocol::start(time_point now) {
    io_.set_deadline(now + connect_timeout);
}

void client_protocol::on_input(std::span<const std::uint8_t> bytes, time_point now) {
    last_rx_ = now;
    const std::uint8_t* data = bytes.data();
    const std::size_t n = bytes.size();
    if (in_.empty()) {
        const std::size_t used = consume(data, n, now);
        if (used < n && !inbound_closed_) in_.assign(data + used, data + n);
    } else {
        in_.insert(in_.end(), data, data + n);
        const std::size_t used = consume(in_.data(), in_.size(), now);
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(used));
        release_if_idle(in_);
    }
}

void client_protocol::resume(time_point now) {
    if (!takes_input() || in_.empty()) return;
    const std::size_t used = consume(in_.data(), in_.size(), now);
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(used));
    release_if_idle(in_);
}

std::size_t client_protocol::consume(const std::uint8_t* data, std::size_t size, time_point now) {
    std::size_t off = 0;
    // One packet for the whole batch: the decoder reuses a PUBLISH in it,
    // and the variant's default (a CONNECT) is not built for every packet.
    mqtt::packet p;
    while (off < size && takes_input()) {
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
        on_packet(p, now);
    }
    return off;
}

void client_protocol::on_packet(mqtt::packet& p, time_point now) {
    last_rx_ = now;
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

void client_protocol::on_timer(time_point now) {
    switch (state_) {
    case state::awaiting_connect:
    case state::verifying:
    case state::authenticating:
        spdlog::debug("{}: no CONNECT within {}s", remote_, connect_timeout.count());
        close_now();
        return;
    case state::connected:
        if (keep_alive_ == 0) return;
        // Its input is not read while it waits for room: it is not silent.
        if (waiting_for_room_) last_rx_ = now;
        if (now >= last_rx_ + std::chrono::milliseconds(keep_alive_ * 1500u)) {
            fail(mqtt::reason_code::keep_alive_timeout, "keep alive timeout");
            return;
        }
        arm_keepalive();
        return;
    case state::closing:
    case state::closed:
        return;
    }
}

void client_protocol::arm_keepalive() {
    // Only while connected: a connection that is closing keeps its close
    // timeout (e.g. a CONNACK too large for the client).
    if (keep_alive_ == 0 || state_ != state::connected) return;
    io_.set_deadline(last_rx_ + std::chrono::milliseconds(keep_alive_ * 1500u));
}

void client_protocol::kick(mqtt::reason_code code, std::uint64_t generation) {
    if (generation != 0 && generation != generation_) return;
    if (state_ == state::closed) return;
    spdlog::debug("{} '{}': disconnecting: {}", remote_, client_id_, mqtt::to_string(code));
    fail(code, mqtt::to_string(code));
}

void client_protocol::internal_error(const std::exception& e) {
    // An exception closes this connection only.
    spdlog::error("{} '{}': closing after an internal error: {}", remote_, client_id_, e.what());
    core::bump(core_.counters().local().internal_errors);
    close_now();
}

void client_protocol::end_of_input() {
    close_after_flush();
}

bool client_protocol::encode_for_client(const mqtt::packet& p, std::vector<std::uint8_t>& out) {
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

void client_protocol::send(const mqtt::packet& p) {
    if (state_ == state::closed) return;
    if (!encode_for_client(p, control_)) {
        // Nothing this client accepts can say why: the connection closes.
        close_after_flush();
        return;
    }
    io_.wake();
}

void client_protocol::send_when_durable(const mqtt::packet& p, persistence::ticket t) {
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

void client_protocol::wait_for_store() {
    const persistence::ticket t = held_->ends.back().first;
    if (held_->waiting_for >= t) return;
    held_->waiting_for = t;
    // Runs on the store's writer thread: only hand over to this client's thread.
    core_.store()->when_durable(t, [later = later()](bool ok) {
        later([ok](client_protocol& p) { p.on_store_durable(ok); });
    });
}

void client_protocol::on_store_durable(bool ok) {
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
        io_.wake();
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

void client_protocol::drain(std::vector<std::uint8_t>& out, time_point now) {
    if (state_ == state::closed) return;
    if (out.empty()) {
        out.swap(control_);
    } else {
        out.insert(out.end(), control_.begin(), control_.end());
        control_.clear();
    }
    if (session_ && state_ == state::connected) {
        // Per thread, not per connection: drain never runs nested.
        static thread_local std::vector<core::outgoing> collected;
        collected.clear();
        session_->collect(&io_, collected, window_, now);
        for (auto& o : collected) encode_delivery(o, now, out);
        collected.clear();
    }
}

void client_protocol::encode_delivery(core::outgoing& o, time_point now, std::vector<std::uint8_t>& out) {
    auto& counters = core_.counters().local();
    if (o.what == core::outgoing::kind::pubrel) {
        mqtt::encode(mqtt::pubrel{o.packet_id, mqtt::reason_code::success, {}}, version_, out);
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
        v.props = &*m.props;
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
    mqtt::encode_publish(v, version_, out);
    core::bump(counters.publish_sent[o.d.qos]);
    core::bump(counters.payload_sent[o.d.qos], m.payload.size());
    core::bump(counters.messages_sent);
}

void client_protocol::refuse_connect(mqtt::reason_code code, const char* why,
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
    close_after_flush(true);
}

void client_protocol::fail(mqtt::reason_code code, const char* why) {
    if (state_ == state::closed) return;
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
        close_after_flush(true);
        return;
    }
    close_after_flush();
}

void client_protocol::close_after_flush(bool linger) {
    if (state_ == state::closed) return;
    state_ = state::closing;
    inbound_closed_ = true;
    io_.close_after_flush(linger);
}

void client_protocol::close_now() {
    if (state_ == state::closed) return;
    inbound_closed_ = true;
    io_.close_now();
}

void client_protocol::release() {
    state_ = state::closed;
    inbound_closed_ = true;
    stop_waiting();
    identity_state_.reset();  // the identity's connection count
    if (connected_) {
        connected_ = false;
        core_.counters().clients_connected.fetch_sub(1, std::memory_order_relaxed);
    }
    if (!session_) return;
    auto s = std::move(session_);
    if (!s->detach(&io_)) return;  // taken over: the new connection owns the session now
    if (!will_on_close_) s->take_will();  // normal DISCONNECT: the will is discarded
    core_.connection_lost(s, generation_, io_.executor());
}

}  // namespace strata::broker::net
