// The namespace model where it reaches beyond one PUBLISH: the dead-letter
// copy shared by every quarantine, the will a client hands over at CONNECT,
// and the retained messages already stored when a new model is loaded.
//
// Wills are checked at CONNECT, with the model in force then, because that
// is when a misconfigured device can still be told: a will is published
// when the device has failed, which is too late to report anything to it
// and is exactly when the plant needs the message to be right. So:
//   reject      5.0: CONNACK with the PUBLISH reason code (0x90 Topic Name
//               invalid, 0x99 Payload format invalid, 0x83 for the retain
//               rule), Reason String when problem information is wanted;
//               3.1.1 has no such CONNACK code: the connection is accepted,
//               the will dropped (logged at info, counted), as a refused
//               3.1.1 PUBLISH is dropped;
//   warn        accepted as it is, logged and counted;
//   quarantine  accepted; the stored will is its dead-letter copy, so when
//               it is published it lands under the dead-letter prefix.
// A will under the dead-letter prefix is refused like such a PUBLISH
// (5.0: 0x87 Not authorized; 3.1.1: 0x05 Not authorized), because it could
// forge a quarantine entry.
//
// After a successful reload, every retained message (not '$' topics) is
// checked against the new model: reject removes it, quarantine moves it to
// the dead-letter tree (a non-retained copy) and removes it, warn keeps it;
// each is counted in the model's statistics like a PUBLISH. A message
// replaced by a client while the sweep runs is left alone.
#include "broker/model_enforcement.hpp"

#include "broker/broker_core.hpp"
#include "broker/connection.hpp"

#include <spdlog/spdlog.h>

namespace strata::broker {

bool under_prefix(std::string_view topic, std::string_view prefix) noexcept {
    return !prefix.empty() && topic.starts_with(prefix) &&
           (topic.size() == prefix.size() || topic[prefix.size()] == '/');
}

std::shared_ptr<message> quarantine_copy(const ns::model& model, std::string_view topic, std::string_view payload,
                                         std::uint8_t qos, bool retain, const ns::verdict& v, const void* origin) {
    auto q = std::make_shared<message>();
    q->topic = model.quarantine_topic(topic);
    q->payload = ns::model::quarantine_envelope(topic, payload, retain, v);
    q->qos = qos;
    q->retain = false;
    q->origin = origin;
    q->props.payload_format_indicator = 1;
    q->props.content_type = "application/json";
    q->props.user_properties.emplace_back("strata-quarantine-reason", v.reason);
    return q;
}

bool connection::check_will(std::shared_ptr<message>& will) {
    using mqtt::reason_code;
    const ns::model* model = core_.model();
    if (model == nullptr) return true;
    const bool v5 = version_ == mqtt::protocol_version::v5;
    const ns::verdict v = model->check(will->topic, will->payload, will->retain);
    if (!v.violation()) return true;
    switch (v.mode) {
    case ns::enforcement::reject:
        if (v5) {
            const std::string why = "will: " + v.reason;
            refuse_connect(static_cast<reason_code>(v.mqtt_reason()), why.c_str());
            return false;
        }
        spdlog::info("{} '{}': will on '{}' dropped (namespace model, 3.1.1 client): {}", remote_, client_id_,
                     will->topic, v.reason);
        will.reset();
        return true;
    case ns::enforcement::warn:
        log_warned(will->topic, "will: " + v.reason);
        return true;
    case ns::enforcement::quarantine: {
        auto q = quarantine_copy(*model, will->topic, will->payload, will->qos, will->retain, v, nullptr);
        spdlog::debug("{} '{}': will on '{}' quarantined to '{}': {}", remote_, client_id_, will->topic, q->topic,
                      v.reason);
        will = std::move(q);
        return true;
    }
    }
    return true;
}

void broker_core::recheck_retained(const ns::model& model, std::string_view when) {
    std::size_t checked = 0, removed = 0, quarantined = 0, kept = 0;
    // '#' leaves out the '$' topics: those are the broker's own.
    router_.for_each_retained("#", [&](const message_ptr& m) {
        ++checked;
        const ns::verdict v = model.check(m->topic, m->payload, true);
        if (!v.violation()) return;
        switch (v.mode) {
        case ns::enforcement::reject:
            if (erase_retained(m)) ++removed;
            break;
        case ns::enforcement::warn:
            ++kept;
            spdlog::debug("namespace model: retained '{}' kept (warn): {}", m->topic, v.reason);
            break;
        case ns::enforcement::quarantine:
            if (erase_retained(m)) {
                ++quarantined;
                publish(quarantine_copy(model, m->topic, m->payload, m->qos, true, v, nullptr));
            }
            break;
        }
    });
    if (checked == 0 && when != "reload") return;
    spdlog::info("namespace model {}: {} retained messages checked, {} removed, {} quarantined, {} kept (warn)", when,
                 checked, removed, quarantined, kept);
}

}  // namespace strata::broker
