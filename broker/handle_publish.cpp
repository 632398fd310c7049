// PUBLISH from a client and the acknowledgement packets of both directions.
//
// Inbound QoS 2 uses the spec's "method B" variant of delivery: the message
// is routed when the PUBLISH arrives, and its packet identifier is kept
// until PUBREL so that a resent PUBLISH (DUP) is acknowledged again but not
// routed twice.
#include "broker/broker_core.hpp"
#include "broker/connection.hpp"
#include "namespace/topic.hpp"

#include <spdlog/spdlog.h>

namespace strata::broker {

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
    bump(core_.counters().local().publish_received);

    if (p.qos == 2) {
        if (!session_->begin_inbound_qos2(p.packet_id)) {
            // A resent PUBLISH whose first copy was already routed.
            send(mqtt::pubrec{p.packet_id, reason_code::success, {}});
            return;
        }
        if (session_->inbound_qos2_count() > limits.receive_maximum) {
            fail(reason_code::receive_maximum_exceeded, "more QoS 2 messages in flight than Receive Maximum");
            return;
        }
    }

    reason_code outcome = reason_code::success;
    // '$' topics are the broker's own ($SYS); clients do not publish there.
    if (p.topic.front() == '$' || !core_.access().may_publish(p.topic)) {
        outcome = reason_code::not_authorized;
        spdlog::debug("{} '{}': publish to '{}' refused", remote_, client_id_, p.topic);
    } else {
        auto m = std::make_shared<message>();
        m->topic = std::move(p.topic);
        m->payload = std::move(p.payload);
        m->qos = p.qos;
        m->retain = p.retain;
        m->origin = session_.get();
        if (v5) {
            m->props = std::move(p.props);
            m->props.topic_alias.reset();
            m->props.subscription_identifiers.clear();
            if (m->props.message_expiry_interval) {
                m->expires_at = steady_clock::now() + std::chrono::seconds(*m->props.message_expiry_interval);
            }
        }
        if (core_.publish(m) == 0 && v5) outcome = reason_code::no_matching_subscribers;
    }

    if (!v5 && outcome == reason_code::not_authorized) outcome = reason_code::success;
    if (p.qos == 1) {
        send(mqtt::puback{p.packet_id, outcome, {}});
    } else if (p.qos == 2) {
        if (static_cast<std::uint8_t>(outcome) >= 0x80) session_->end_inbound_qos2(p.packet_id);
        send(mqtt::pubrec{p.packet_id, outcome, {}});
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
    send(mqtt::pubcomp{p.packet_id,
                       known ? mqtt::reason_code::success : mqtt::reason_code::packet_identifier_not_found,
                       {}});
}

void connection::handle_pubcomp(const mqtt::pubcomp& p) {
    if (!session_->on_pubcomp(p.packet_id)) {
        spdlog::debug("{} '{}': PUBCOMP for unknown packet id {}", remote_, client_id_, p.packet_id);
    }
    flush();
}

}  // namespace strata::broker
