// CONNECT, DISCONNECT and AUTH: how a client starts and ends its
// connection, and what the broker promises it in CONNACK.
#include "broker/broker_core.hpp"
#include "broker/connection.hpp"
#include "namespace/topic.hpp"

#include <spdlog/spdlog.h>

namespace strata::broker {

namespace {

constexpr std::uint32_t never_expires = 0xFFFFFFFF;

}  // namespace

void connection::handle_connect(mqtt::connect& c) {
    using mqtt::reason_code;
    const auto& limits = core_.cfg().limits;
    version_ = c.version;
    const bool v5 = version_ == mqtt::protocol_version::v5;
    client_id_ = c.client_id;
    if (v5 && c.props.request_problem_information) {
        request_problem_info_ = *c.props.request_problem_information != 0;
    }

    if (const auto& r = core_.cfg().redirect) {
        refuse_connect(r->permanent ? reason_code::server_moved : reason_code::use_another_server,
                       "this broker redirects its clients", r->server_reference);
        return;
    }
    if (v5 && c.props.authentication_method) {
        // Enhanced authentication needs a configured method; none is.
        refuse_connect(reason_code::bad_authentication_method, "no authentication method is configured");
        return;
    }
    if (core_.counters().clients_connected.load(std::memory_order_relaxed) >=
        static_cast<std::int64_t>(limits.max_connections)) {
        refuse_connect(reason_code::quota_exceeded, "connection limit reached");
        return;
    }

    bool assigned = false;
    if (client_id_.empty()) {
        if (!v5 && !c.clean_start) {
            refuse_connect(reason_code::client_identifier_not_valid,
                           "an empty client identifier needs clean session");
            return;
        }
        client_id_ = core_.assign_client_id();
        assigned = v5;
    }

    // Keep-alive: capped by limits.max_keepalive. A 5.0 client is told the
    // value to use; a 3.1.1 client cannot be, so one asking for more is
    // refused (as Mosquitto does).
    std::optional<std::uint16_t> server_keep_alive;
    keep_alive_ = c.keep_alive;
    if (v5) {
        if (keep_alive_ == 0 || keep_alive_ > limits.max_keepalive) {
            keep_alive_ = limits.max_keepalive;
            server_keep_alive = keep_alive_;
        }
    } else if (keep_alive_ > limits.max_keepalive) {
        refuse_connect(reason_code::client_identifier_not_valid, "keep alive above the broker's maximum");
        return;
    }

    // Session lifetime: 3.1.1 clean session false lives until cleaned.
    std::uint32_t expiry = 0;
    if (v5) {
        expiry = c.props.session_expiry_interval.value_or(0);
    } else if (!c.clean_start) {
        expiry = never_expires;
    }
    std::optional<std::uint32_t> capped_expiry;
    if (expiry > limits.max_session_expiry) {
        expiry = limits.max_session_expiry;
        if (v5) capped_expiry = expiry;
    }

    // What the client accepts from us.
    if (v5) {
        client_receive_maximum_ = c.props.receive_maximum.value_or(65535);
        client_max_packet_size_ = c.props.maximum_packet_size.value_or(268'435'460);
        client_topic_alias_max_ = std::min(c.props.topic_alias_maximum.value_or(0), limits.topic_alias_maximum);
        inbound_aliases_.assign(std::size_t{limits.topic_alias_maximum} + 1, std::string());
    }
    window_ = std::min<std::size_t>(client_receive_maximum_, limits.max_inflight);

    std::optional<message_ptr> will;
    std::uint32_t will_delay = 0;
    if (c.will) {
        if (!ns::valid_topic_name(c.will->topic)) {
            refuse_connect(reason_code::topic_name_invalid, "invalid will topic");
            return;
        }
        auto m = std::make_shared<message>();
        m->topic = std::move(c.will->topic);
        m->payload = std::move(c.will->payload);
        m->qos = c.will->qos;
        m->retain = c.will->retain;
        will_delay = c.will->props.will_delay_interval.value_or(0);
        m->props = std::move(c.will->props);
        m->props.will_delay_interval.reset();
        if (!check_will(m)) return;
        if (m) will = std::move(m);
    }

    auto opened = core_.open_session(client_id_, c.clean_start, shared_from_this());
    session_ = opened.s;
    generation_ = opened.generation;
    session_->set_expiry_interval(expiry);
    session_->set_will(std::move(will), will_delay);
    session_->set_disconnected_at(0);
    core_.save_session(session_);
    state_ = state::connected;
    connected_ = true;
    core_.counters().clients_connected.fetch_add(1, std::memory_order_relaxed);

    mqtt::connack ack;
    ack.session_present = opened.present;
    if (v5) {
        auto& p = ack.props;
        if (limits.receive_maximum != 65535) p.receive_maximum = limits.receive_maximum;
        p.maximum_packet_size = limits.max_packet_size;
        if (limits.topic_alias_maximum > 0) p.topic_alias_maximum = limits.topic_alias_maximum;
        if (assigned) p.assigned_client_identifier = client_id_;
        p.server_keep_alive = server_keep_alive;
        p.session_expiry_interval = capped_expiry;
    }
    spdlog::debug("{} '{}': connected (v{}, clean {}, keep-alive {}s, session present {})", remote_,
                  client_id_, static_cast<int>(version_), c.clean_start, keep_alive_, opened.present);
    send(ack);
    if (opened.previous) opened.previous->kick(reason_code::session_taken_over, opened.previous_generation);
    arm_keepalive();
}

void connection::handle_disconnect(const mqtt::disconnect& d) {
    if (version_ == mqtt::protocol_version::v5) {
        if (d.props.session_expiry_interval) {
            const std::uint32_t now_expiry = session_->expiry_interval();
            if (now_expiry == 0 && *d.props.session_expiry_interval != 0) {
                fail(mqtt::reason_code::protocol_error, "session expiry set on DISCONNECT after 0 on CONNECT");
                return;
            }
            session_->set_expiry_interval(
                std::min(*d.props.session_expiry_interval, core_.cfg().limits.max_session_expiry));
        }
        // Only a normal disconnection (0x00) discards the will.
        will_on_close_ = d.code != mqtt::reason_code::success;
    } else {
        will_on_close_ = false;
    }
    close_after_flush();
}

void connection::handle_auth(const mqtt::auth&) {
    // AUTH is only valid after a CONNECT that named an authentication
    // method, and those are refused while no method is configured.
    fail(mqtt::reason_code::protocol_error, "AUTH without an authentication method");
}

}  // namespace strata::broker
