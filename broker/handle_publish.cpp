// PUBLISH from a client and the acknowledgement packets of both directions.
//
// Inbound QoS 2 uses the spec's "method B" variant of delivery: the message
// is routed when the PUBLISH arrives, and its packet identifier is kept
// until PUBREL so that a resent PUBLISH (DUP) is acknowledged again but not
// routed twice.
#include "broker/broker_core.hpp"
#include "broker/connection.hpp"
#include "broker/log_limit.hpp"
#include "broker/model_enforcement.hpp"
#include "broker/stored.hpp"
#include "namespace/topic.hpp"

#include <spdlog/spdlog.h>

namespace strata::broker {
bool connection::is_command(std::string_view topic) const { return core_.is_command(topic); }

bool connection::may_publish(std::string_view topic, bool command) const {
    return grants_ == nullptr || grants_->may_publish(topic, command);
}

bool connection::publish_granted(std::string_view topic, bool& command) {
    // Commands are told apart only when someone needs to know: the grants
    // or the audit log. A cached decision was made with the same model
    // (a SIGHUP reload can change which topics are commands).
    command = false;
    if (grants_ == nullptr) {
        command = core_.auditing() && is_command(topic);
        return true;
    }
    const void* m = core_.model();
    auto& x = extras();
    if (m != x.cached_model) {
        x.publish_decisions.clear();
        x.cached_model = m;
    }
    if (x.publish_decisions.contains(topic)) return true;
    command = is_command(topic);
    const bool ok = may_publish(topic, command);
    // Commands are audited one by one: never cached.
    if (ok && !command) x.publish_decisions.put(topic);
    return ok;
}

void connection::handle_publish(mqtt::publish& p) {
    using mqtt::reason_code;
    const bool v5 = version_ == mqtt::protocol_version::v5;
    const auto& limits = core_.cfg().limits;

    if (v5 && !p.props.subscription_identifiers.empty()) {
        fail(reason_code::protocol_error, "a client's PUBLISH must not carry a Subscription Identifier");
        return;
    }
    if (v5 && p.props.topic_alias) {
        const std::uint16_t alias = *p.props.topic_alias;
        if (alias == 0 || alias > limits.topic_alias_maximum) {
            fail(reason_code::topic_alias_invalid, "topic alias out of range");
            return;
        }
        if (p.topic.empty()) {
            if (inbound_aliases_[alias].empty()) {
                fail(reason_code::protocol_error, "unknown topic alias");
                return;
            }
            p.topic = inbound_aliases_[alias];
        } else {
            inbound_aliases_[alias] = p.topic;
        }
    }
    if (!ns::valid_topic_name(p.topic)) {
        fail(reason_code::topic_name_invalid, "invalid topic name");
        return;
    }
    {
        auto& counters = core_.counters().local();
        bump(counters.publish_received[p.qos]);
        bump(counters.payload_received[p.qos], p.payload.size());
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
        if (session_->inbound_qos2_count() > limits.receive_maximum) {
            fail(reason_code::receive_maximum_exceeded, "more QoS 2 messages in flight than Receive Maximum");
            return;
        }
    }

    reason_code outcome = reason_code::success;
    std::optional<std::string> ack_reason;  // Reason String for a 5.0 PUBACK/PUBREC
    persistence::ticket ticket = 0;         // what the acknowledgement waits for
    const ns::model* model = core_.model();
    bool command = false;
    if (!core_.open_to_publishers(p.topic) || !publish_granted(p.topic, command)) {
        outcome = reason_code::not_authorized;
        bump(core_.counters().local().publish_refused);
        spdlog::debug("{} '{}': publish to '{}' refused", remote_, client_id_, p.topic);
        audit(command ? "command" : "publish", "refused", p.topic, "not authorized");
    } else if (const auto rate = identity_state_ ? identity_state_->admit(p.topic.size() + p.payload.size(),
                                                                          steady_clock::now())
                                                 : auth::rate_verdict::ok;
               rate != auth::rate_verdict::ok) {
        // Over the identity's rate: not routed. 5.0 says why in the ack
        // (0x97 Quota exceeded: 0x96 Message rate too high is a DISCONNECT
        // code that PUBACK/PUBREC may not carry [MQTT-3.4.2.1], and clients,
        // our own bridge among them, refuse it as malformed); 3.1.1 cannot,
        // and a QoS 0 message has no ack: dropped, counted.
        outcome = reason_code::quota_exceeded;
        if (v5 && request_problem_info_)
            ack_reason = rate == auth::rate_verdict::too_many_messages ? "over this identity's publish rate"
                                                                       : "over this identity's publish bytes rate";
        bump(core_.counters().local().publish_rate_limited);
    } else {
        if (command) audit("command", "allowed", p.topic);
        // The model checks the message in the walk that routes it: a message
        // its verdict refuses is neither retained nor delivered.
        const message_ptr m = to_message(p, v5);
        ns::verdict v;
        const auto r = route(m, model, &v);
        if (r.admitted && r.retained != retain_verdict::stored) {
            // Over a retained limit: neither retained nor delivered. 5.0
            // says why; 3.1.1 cannot (acknowledged as success below) and a
            // QoS 0 message has no ack: dropped, counted.
            outcome = reason_code::quota_exceeded;
            if (v5 && request_problem_info_) ack_reason = broker_core::retained_refusal_reason(r.retained);
        } else if (r.admitted) {
            if (v.violation()) log_warned(m->topic, v.reason);
            ticket = r.ticket;
            // A subscriber that matched but whose queue was full still
            // matched: the drop is counted there (session::dropped()).
            if (r.matched == 0 && v5) outcome = reason_code::no_matching_subscribers;
            if (r.refused > 0 && !buffer_full(p.qos, v5, outcome, ack_reason)) return;
        } else if (v.mode == ns::enforcement::quarantine) {
            auto q = quarantine_copy(*model, m->topic, m->payload, m->qos, m->retain, v, session_.get());
            spdlog::debug("{} '{}': publish to '{}' quarantined to '{}': {}", remote_, client_id_, m->topic, q->topic,
                          v.reason);
            // The publisher did nothing wrong it could fix by resending:
            // success, and (5.0) a Reason String saying where it went.
            if (v5 && request_problem_info_) ack_reason = "quarantined to '" + q->topic + "': " + v.reason;
            const auto qr = core_.publish(q, nullptr, nullptr, &identity_);
            ticket = qr.ticket;
            if (qr.retained != retain_verdict::stored) {
                outcome = reason_code::quota_exceeded;
                if (v5 && request_problem_info_) ack_reason = broker_core::retained_refusal_reason(qr.retained);
            }
        } else {
            spdlog::debug("{} '{}': publish to '{}' rejected by the namespace model: {}", remote_, client_id_, m->topic,
                          v.reason);
            // 3.1.1 has no way to say no: the message is dropped and a QoS
            // 1/2 one still acknowledged, or the client would resend it
            // forever.
            if (v5) {
                outcome = static_cast<reason_code>(v.mqtt_reason());
                if (request_problem_info_) ack_reason = v.reason;
            }
        }
    }

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

bool connection::buffer_full(std::uint8_t qos, bool v5, mqtt::reason_code& outcome,
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

void connection::refuse_unstorable(const mqtt::publish& p, bool v5) {
    // The store refuses writes (e.g. the disk is full): a QoS 1/2 message
    // could not be made durable, so it is not taken. QoS 0 is still served.
    thread_local steady_clock::time_point next_log{};
    const auto now = steady_clock::now();
    if (now >= next_log) {
        next_log = now + std::chrono::seconds(5);
        spdlog::warn("store cannot write ({}): refusing QoS 1/2 publishes until it can",
                     core_.store()->stats().last_error);
    }
    bump(core_.counters().local().refused_unstorable);
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

message_ptr connection::to_message(mqtt::publish& p, bool v5) {
    auto m = std::make_shared<message>();
    m->topic = std::move(p.topic);
    m->payload = std::move(p.payload);
    m->qos = p.qos;
    m->retain = p.retain;
    m->origin = session_.get();
    // Only retained values are shown with their time (admin API state);
    // the clock is not read for the rest.
    if (m->retain) m->received_ms = now_ms();
    if (v5) {
        m->props = std::move(p.props);
        m->props.topic_alias.reset();
        m->props.subscription_identifiers.clear();
        if (m->props.message_expiry_interval) {
            m->expires_at = steady_clock::now() + std::chrono::seconds(*m->props.message_expiry_interval);
        }
    }
    return m;
}

broker_core::publish_result connection::route(const message_ptr& m, const ns::model* model, ns::verdict* verdict) {
    return core_.publish(m, model, verdict, &identity_);
}

void connection::log_warned(std::string_view topic, std::string_view reason) {
    // Every one is counted in the model's statistics; the log gets one a
    // second per network thread at info.
    thread_local log_limit limit;
    if (limit.allow()) {
        spdlog::info("{} '{}': namespace model (warn): '{}': {}{}", remote_, client_id_, topic, reason, limit.suffix());
    } else {
        spdlog::debug("{} '{}': namespace model (warn): '{}': {}", remote_, client_id_, topic, reason);
    }
}

void connection::handle_puback(const mqtt::puback& p) {
    if (!session_->on_puback(p.packet_id)) {
        spdlog::debug("{} '{}': PUBACK for unknown packet id {}", remote_, client_id_, p.packet_id);
    }
    flush();
}

void connection::handle_pubrec(const mqtt::pubrec& p) {
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
        flush();
    }
}

void connection::handle_pubrel(const mqtt::pubrel& p) {
    const bool known = session_->end_inbound_qos2(p.packet_id);
    // Once the packet id is forgotten on disk too: after a crash the client
    // may reuse it for a new message, which must not look like a resend.
    send_when_durable(mqtt::pubcomp{p.packet_id,
                                    known ? mqtt::reason_code::success : mqtt::reason_code::packet_identifier_not_found,
                                    {}}, 0);
}

void connection::handle_pubcomp(const mqtt::pubcomp& p) {
    if (!session_->on_pubcomp(p.packet_id)) {
        spdlog::debug("{} '{}': PUBCOMP for unknown packet id {}", remote_, client_id_, p.packet_id);
    }
    flush();
}

}  // namespace strata::broker
