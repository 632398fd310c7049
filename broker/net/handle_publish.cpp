// PUBLISH from a client and the acknowledgement packets of both directions.
//
// Inbound QoS 2 uses the spec's "method B" variant of delivery: the message
// is routed when the PUBLISH arrives, and its packet identifier is kept
// until PUBREL so that a resent PUBLISH (DUP) is acknowledged again but not
// routed twice.
#include "broker/core/admission.hpp"
#include "broker/core/router.hpp"
#include "broker/core/stats.hpp"
#include "broker/net/client_protocol.hpp"
#include "broker/core/log_limit.hpp"
#include "broker/core/model_enforcement.hpp"
#include "broker/core/stored.hpp"
#include "namespace/topic.hpp"

#include <spdlog/spdlog.h>

namespace strata::broker::net {

void client_protocol::regrant(std::shared_ptr<const auth::grants> g) {
    if (!grants_ && !g) return;
    grants_ = std::move(g);
    extras().grant_decisions.decisions.clear();
}
core::publisher client_protocol::as_publisher() {
    core::publisher who;
    who.grants = grants_.get();
    who.identity = &identity_;
    who.limits = identity_state_.get();
    // Remembered decisions only where there are grants to ask (an
    // anonymous client without roles allocates nothing for them).
    if (grants_ != nullptr) who.memo = &extras().grant_decisions;
    who.topic_checked = true;  // PUBLISH and will topics are checked as they arrive
    return who;
}

bool client_protocol::resolve_topic(mqtt::publish& p, bool v5) {
    using mqtt::reason_code;
    if (v5 && !p.props.subscription_identifiers.empty()) {
        fail(reason_code::protocol_error, "a client's PUBLISH must not carry a Subscription Identifier");
        return false;
    }
    if (v5 && p.props.topic_alias) {
        const std::uint16_t alias = *p.props.topic_alias;
        // The maximum told in CONNACK (a reload changes it for new connections only).
        if (alias == 0 || alias >= inbound_aliases_.size()) {
            fail(reason_code::topic_alias_invalid, "topic alias out of range");
            return false;
        }
        if (p.topic.empty()) {
            if (inbound_aliases_[alias].empty()) {
                fail(reason_code::protocol_error, "unknown topic alias");
                return false;
            }
            p.topic = inbound_aliases_[alias];
        } else {
            inbound_aliases_[alias] = p.topic;
        }
    }
    if (!ns::valid_topic_name(p.topic)) {
        fail(reason_code::topic_name_invalid, "invalid topic name");
        return false;
    }
    return true;
}

void client_protocol::handle_publish(mqtt::publish& p) {
    using mqtt::reason_code;
    const bool v5 = version_ == mqtt::protocol_version::v5;
    if (!resolve_topic(p, v5)) return;
    {
        auto& counters = core_.counters().local();
        core::bump(counters.publish_received[p.qos]);
        core::bump(counters.payload_received[p.qos], p.payload.size());
    }

    if (p.qos > 0 && !core_.store_healthy()) {
        refuse_unstorable(p, v5);
        return;
    }

    if (p.qos == 2) {
        if (!session_->begin_inbound_qos2(p.packet_id)) {
            // A resent PUBLISH whose first copy was already routed.
            send_when_durable(mqtt::pubrec{p.packet_id, reason_code::success, {}}, 0);
            return;
        }
        if (session_->inbound_qos2_count() > receive_maximum_) {
            fail(reason_code::receive_maximum_exceeded, "more QoS 2 messages in flight than Receive Maximum");
            return;
        }
    }

    // The admission pipeline (admission.hpp) decides; this says what its
    // verdict means to the client.
    const std::shared_ptr<core::message> m = to_message(p, v5);
    core::publisher who = as_publisher();
    who.stamp = m.get();
    if (p.qos > 0) who.gate = flow_gate();
    acknowledge(p, *m, core_.admit(who, m), v5);
    if (p.qos > 0) wait_if_held();
}

core::flow_gate* client_protocol::flow_gate() {
    if (!gate_) {
        gate_ = std::make_shared<core::flow_gate>([later = later()] {
            later([](client_protocol& self) { self.room_opened(); });
        });
    }
    return gate_.get();
}

void client_protocol::wait_if_held() {
    if (waiting_for_room_ || !gate_->held() || state_ != state::connected) return;
    // What the client sent after this message waits in its buffer (and in
    // TCP) until the subscribers have room; acknowledgements still go out.
    waiting_for_room_ = true;
    core_.counters().publishers_waiting.fetch_add(1, std::memory_order_relaxed);
}

void client_protocol::room_opened() {
    // A release that raced with this publisher's next hold: still held.
    if (!waiting_for_room_ || gate_->held()) return;
    stop_waiting();
    io_.resume_input();
}

void client_protocol::stop_waiting() {
    if (!waiting_for_room_) return;
    waiting_for_room_ = false;
    core_.counters().publishers_waiting.fetch_sub(1, std::memory_order_relaxed);
}

void client_protocol::acknowledge(const mqtt::publish& p, const core::message& m, const core::admission& a,
                                  bool v5) {
    using mqtt::reason_code;
    reason_code outcome = a.code;
    std::optional<std::string> ack_reason;  // Reason String for a 5.0 PUBACK/PUBREC
    if (v5 && request_problem_info_ && !a.passed()) ack_reason = a.reason;
    using verdict = core::admission::outcome;
    switch (a.what) {
    case verdict::denied:
        core::bump(core_.counters().local().publish_refused);
        spdlog::debug("{} '{}': publish to '{}' refused", remote_, client_id_, m.topic);
        audit(a.command ? "command" : "publish", "refused", m.topic, "not authorized");
        ack_reason.reset();
        break;
    case verdict::rate_limited:
        // 3.1.1 cannot say why, and a QoS 0 message has no ack: dropped, counted.
        core::bump(core_.counters().local().publish_rate_limited);
        break;
    case verdict::store_down:  // checked above already; the store failed since
    case verdict::over_limit:  // 3.1.1: acknowledged as success below; QoS 0: dropped, counted
        if (a.command) audit("command", "allowed", m.topic);
        break;
    case verdict::rejected:
        if (a.command) audit("command", "allowed", m.topic);
        spdlog::debug("{} '{}': publish to '{}' rejected by the namespace model: {}", remote_, client_id_, m.topic,
                      a.reason);
        // 3.1.1 has no way to say no: the message is dropped and a QoS 1/2
        // one still acknowledged, or the client would resend it forever.
        if (!v5) outcome = reason_code::success;
        break;
    case verdict::quarantined:
        if (a.command) audit("command", "allowed", m.topic);
        spdlog::debug("{} '{}': publish to '{}' quarantined to '{}': {}", remote_, client_id_, m.topic, a.copy->topic,
                      a.reason);
        // The publisher did nothing wrong it could fix by resending:
        // success, and (5.0) a Reason String saying where it went.
        if (v5 && request_problem_info_) ack_reason = "quarantined to '" + a.copy->topic + "': " + a.reason;
        break;
    case verdict::published:
        if (a.command) audit("command", "allowed", m.topic);
        if (!a.reason.empty()) log_warned(m.topic, a.reason);
        // A subscriber that matched but whose queue was full still
        // matched: the drop is counted there (session::dropped()).
        if (a.routed.matched == 0 && v5) outcome = reason_code::no_matching_subscribers;
        if (a.routed.refused > 0 && !buffer_full(p.qos, v5, outcome, ack_reason)) return;
        break;
    }
    const persistence::ticket ticket = a.passed() ? a.routed.ticket : 0;  // what the acknowledgement waits for

    if (!v5 && (outcome == reason_code::not_authorized ||
                outcome == reason_code::quota_exceeded))
        outcome = reason_code::success;
    // The acknowledgement goes out once the message's effects (retained
    // value, deliveries to persistent sessions, this session's QoS 2 state)
    // are as durable as the store's policy promises.
    if (p.qos == 1) {
        mqtt::puback ack{p.packet_id, outcome, {}};
        ack.props.reason_string = std::move(ack_reason);
        send_when_durable(ack, ticket);
    } else if (p.qos == 2) {
        if (static_cast<std::uint8_t>(outcome) >= 0x80) session_->end_inbound_qos2(p.packet_id);
        mqtt::pubrec ack{p.packet_id, outcome, {}};
        ack.props.reason_string = std::move(ack_reason);
        send_when_durable(ack, ticket);
    }
}

bool client_protocol::buffer_full(std::uint8_t qos, bool v5, mqtt::reason_code& outcome,
                             std::optional<std::string>& ack_reason) {
    // The message reached the other subscribers, but a bridge that must not
    // lose it had no room: the publisher keeps it and sends it again.
    if (qos == 0) return true;  // counted as refused; nothing to tell
    if (!v5) {
        // 3.1.1 has no negative acknowledgement: disconnected, the client
        // sends the message again after reconnecting.
        fail(mqtt::reason_code::quota_exceeded, "a bridge buffer is full (policy block)");
        return false;
    }
    outcome = mqtt::reason_code::quota_exceeded;
    if (request_problem_info_) ack_reason = "a bridge buffer is full; send again later";
    return true;
}

void client_protocol::refuse_unstorable(const mqtt::publish& p, bool v5) {
    // The store refuses writes (e.g. the disk is full): a QoS 1/2 message
    // could not be made durable, so it is not taken. QoS 0 is still served.
    thread_local core::steady_clock::time_point next_log{};
    const auto now = core::steady_clock::now();
    if (now >= next_log) {
        next_log = now + std::chrono::seconds(5);
        spdlog::warn("store cannot write ({}): refusing QoS 1/2 publishes until it can",
                     core_.store()->stats().last_error);
    }
    core::bump(core_.counters().local().refused_unstorable);
    if (!v5) {
        // 3.1.1 has no negative acknowledgement: the client keeps the
        // message and sends it again after reconnecting.
        fail(mqtt::reason_code::quota_exceeded, "store cannot write");
        return;
    }
    // At once, not behind acknowledgements that wait for the disk: the
    // client learns now that it must keep this message.
    const std::optional<std::string> why =
        request_problem_info_ ? std::optional<std::string>("the broker cannot store messages now") : std::nullopt;
    if (p.qos == 1) {
        mqtt::puback ack{p.packet_id, mqtt::reason_code::quota_exceeded, {}};
        ack.props.reason_string = why;
        send(ack);
    } else {
        mqtt::pubrec ack{p.packet_id, mqtt::reason_code::quota_exceeded, {}};
        ack.props.reason_string = why;
        send(ack);
    }
}

std::shared_ptr<core::message> client_protocol::to_message(mqtt::publish& p, bool v5) {
    auto m = std::make_shared<core::message>();
    m->topic = std::move(p.topic);
    m->payload = std::move(p.payload);
    m->qos = p.qos;
    m->retain = p.retain;
    m->origin = session_.get();
    // Only retained values are shown with their time (admin API state);
    // the clock is not read for the rest.
    if (m->retain) m->received_ms = core::now_ms();
    if (v5) {
        p.props.topic_alias.reset();
        p.props.subscription_identifiers.clear();
        // Only a broker says where a command came from (admit() stamps it).
        core::strip_origin(p.props);
        m->props = std::move(p.props);
        if (m->props->message_expiry_interval) {
            m->expires_at = core::steady_clock::now() + std::chrono::seconds(*m->props->message_expiry_interval);
        }
    }
    return m;
}

void client_protocol::log_warned(std::string_view topic, std::string_view reason) {
    // Every one is counted in the model's statistics; the log gets one a
    // second per network thread at info.
    thread_local core::log_limit limit;
    if (limit.allow()) {
        spdlog::info("{} '{}': namespace model (warn): '{}': {}{}", remote_, client_id_, topic, reason, limit.suffix());
    } else {
        spdlog::debug("{} '{}': namespace model (warn): '{}': {}", remote_, client_id_, topic, reason);
    }
}

void client_protocol::handle_puback(const mqtt::puback& p) {
    if (!session_->on_puback(p.packet_id)) {
        spdlog::debug("{} '{}': PUBACK for unknown packet id {}", remote_, client_id_, p.packet_id);
    }
    io_.wake();
}

void client_protocol::handle_pubrec(const mqtt::pubrec& p) {
    const bool accepted = static_cast<std::uint8_t>(p.code) < 0x80;
    if (!session_->on_pubrec(p.packet_id, accepted)) {
        if (version_ == mqtt::protocol_version::v5) {
            send(mqtt::pubrel{p.packet_id, mqtt::reason_code::packet_identifier_not_found, {}});
        } else {
            send(mqtt::pubrel{p.packet_id, mqtt::reason_code::success, {}});
        }
        return;
    }
    if (accepted) {
        send(mqtt::pubrel{p.packet_id, mqtt::reason_code::success, {}});
    } else {
        io_.wake();
    }
}

void client_protocol::handle_pubrel(const mqtt::pubrel& p) {
    const bool known = session_->end_inbound_qos2(p.packet_id);
    // Once the packet id is forgotten on disk too: after a crash the client
    // may reuse it for a new message, which must not look like a resend.
    send_when_durable(mqtt::pubcomp{p.packet_id,
                                    known ? mqtt::reason_code::success : mqtt::reason_code::packet_identifier_not_found,
                                    {}}, 0);
}

void client_protocol::handle_pubcomp(const mqtt::pubcomp& p) {
    if (!session_->on_pubcomp(p.packet_id)) {
        spdlog::debug("{} '{}': PUBCOMP for unknown packet id {}", remote_, client_id_, p.packet_id);
    }
    io_.wake();
}

}  // namespace strata::broker::net
