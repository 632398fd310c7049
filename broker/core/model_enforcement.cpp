// The namespace model where it reaches beyond one message's admission
// (admission.hpp): the dead-letter copy shared by every quarantine, and the
// retained messages already stored when a new model is loaded.
//
// After a successful reload, every retained message (not '$' topics) is
// checked against the new model: reject removes it, quarantine moves it to
// the dead-letter tree (a non-retained copy) and removes it, warn keeps it;
// each is counted in the model's statistics like a PUBLISH. A message
// replaced by a client while the sweep runs is left alone.
#include "broker/core/model_enforcement.hpp"

#include "broker/core/broker_core.hpp"

#include <spdlog/spdlog.h>

namespace strata::broker::core {

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
    auto& props = q->props.edit();
    props.payload_format_indicator = 1;
    props.content_type = "application/json";
    props.user_properties.emplace_back("strata-quarantine-reason", v.reason);
    return q;
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

}  // namespace strata::broker::core
