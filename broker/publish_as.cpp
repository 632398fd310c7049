#include "broker/publish_as.hpp"

#include "broker/model_enforcement.hpp"
#include "namespace/topic.hpp"

namespace strata::broker {

namespace {

// A retained message the broker-wide retained limits refused (counted by
// the core): neither retained nor delivered.
publish_as_result over_retained_limit(retain_verdict v) {
    return {publish_as_result::outcome::over_limit, mqtt::reason_code::quota_exceeded, 0,
            broker_core::retained_refusal_reason(v)};
}

}  // namespace

publish_as_result publish_as(broker_core& core, const auth::grants* grants, const message_ptr& m) {
    using outcome = publish_as_result::outcome;
    using mqtt::reason_code;
    const ns::model* model = core.model();
    const std::string& topic = m->topic;
    const bool command = grants != nullptr && core.is_command(topic);
    if (!ns::valid_topic_name(topic) || !core.open_to_publishers(topic) ||
        (grants != nullptr && !grants->may_publish(topic, command))) {
        return {outcome::denied, reason_code::not_authorized, 0, "the identity may not publish there"};
    }
    if (m->qos > 0 && !core.store_healthy()) {
        return {outcome::store_down, reason_code::quota_exceeded, 0, "the store refuses writes"};
    }
    std::string warned;
    if (model != nullptr) {
        const ns::verdict v = model->check(topic, m->payload, m->retain);
        if (v.violation()) {
            switch (v.mode) {
            case ns::enforcement::reject:
                return {outcome::rejected, static_cast<reason_code>(v.mqtt_reason()), 0, std::string(v.reason)};
            case ns::enforcement::quarantine: {
                auto q = quarantine_copy(*model, topic, m->payload, m->qos, m->retain, v, m->origin);
                const auto r = core.publish(q);
                if (r.retained != retain_verdict::stored) return over_retained_limit(r.retained);
                return {outcome::quarantined, reason_code::success, r.ticket, std::string(v.reason)};
            }
            case ns::enforcement::warn:
                warned = v.reason;
                break;
            }
        }
    }
    const auto r = core.publish(m);
    if (r.retained != retain_verdict::stored) return over_retained_limit(r.retained);
    return {outcome::published, reason_code::success, r.ticket, std::move(warned)};
}

void publish_sys_value(broker_core& core, std::string topic, std::string value) {
    auto m = std::make_shared<message>();
    m->topic = std::move(topic);
    m->payload = std::move(value);
    m->retain = true;
    core.publish(m);
}

}  // namespace strata::broker
