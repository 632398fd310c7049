#include "broker/core/admission.hpp"

#include "broker/core/model_enforcement.hpp"
#include "namespace/topic.hpp"

namespace strata::broker::core {

namespace {

using outcome = admission::outcome;
using mqtt::reason_code;

void refuse(admission& a, outcome what, reason_code code, const char* reason) {
    a.what = what;
    a.code = code;
    a.reason = reason;
}

// Steps 1 and 2. `command` tells whether the topic is a command, when
// someone needs to know: the grants or the audit log.
bool may_publish_here(broker_core& core, const publisher& who, std::string_view topic, const ns::model* model,
                      bool& command) {
    command = false;
    if (!who.topic_checked && !ns::valid_topic_name(topic)) return false;
    if (!core.open_to_publishers(topic, model)) return false;
    if (who.grants == nullptr) {
        command = (core.auditing() || who.stamp != nullptr) && core.is_command(topic);
        return true;
    }
    if (grant_memo* memo = who.memo) {
        if (memo->model != model) {
            memo->decisions.clear();
            memo->model = model;
        }
        if (memo->decisions.contains(topic)) return true;
    }
    command = core.is_command(topic);
    const bool ok = who.grants->may_publish(topic, command);
    if (ok && !command && who.memo != nullptr) who.memo->decisions.put(topic);
    return ok;
}

}  // namespace

// One result object, filled in place and returned from every path: this
// runs once per message, and the copies of a result would cost more than
// the checks.
admission admit(broker_core& core, const publisher& who, const message_ptr& m) {
    admission a;
    const ns::model* model = core.model();
    if (!may_publish_here(core, who, m->topic, model, a.command)) {
        refuse(a, outcome::denied, reason_code::not_authorized, "not authorized to publish there");
        return a;
    }
    if (a.command && who.stamp != nullptr)
        stamp_origin(who.stamp->props.edit(), who.identity != nullptr ? *who.identity : std::string(), core.broker_id());
    if (m->qos > 0 && !core.store_healthy()) {
        refuse(a, outcome::store_down, reason_code::quota_exceeded, "the broker cannot store messages now");
        return a;
    }
    if (who.limits != nullptr && who.limits->rated()) {
        const auto rate = who.limits->admit(m->topic.size() + m->payload.size(), steady_clock::now());
        if (rate != auth::rate_verdict::ok) {
            // 0x97 Quota exceeded: 0x96 Message rate too high is a DISCONNECT
            // code that PUBACK/PUBREC may not carry [MQTT-3.4.2.1].
            refuse(a, outcome::rate_limited, reason_code::quota_exceeded,
                   rate == auth::rate_verdict::too_many_messages ? "over this identity's publish rate"
                                                                 : "over this identity's publish bytes rate");
            return a;
        }
    }
    // Steps 5 and 6 as the message is routed: a message the model's verdict
    // refuses is neither retained nor delivered.
    if (model == nullptr) {
        a.routed = core.publish(m, nullptr, nullptr, who.identity, who.gate);
        if (a.routed.admitted && a.routed.retained != retain_verdict::stored) {
            refuse(a, outcome::over_limit, reason_code::quota_exceeded,
                   broker_core::retained_refusal_reason(a.routed.retained));
        }
        return a;
    }
    ns::verdict v;
    a.routed = core.publish(m, model, &v, who.identity, who.gate);
    if (a.routed.admitted) {
        if (a.routed.retained != retain_verdict::stored) {
            refuse(a, outcome::over_limit, reason_code::quota_exceeded,
                   broker_core::retained_refusal_reason(a.routed.retained));
        } else if (v.violation()) {
            a.reason = std::move(v.reason);  // warned
        }
        return a;
    }
    if (v.mode != ns::enforcement::quarantine) {
        a.what = outcome::rejected;
        a.code = static_cast<reason_code>(v.mqtt_reason());
        a.reason = std::move(v.reason);
        return a;
    }
    // The publisher did nothing it could fix by resending: success, and the
    // dead-letter copy (which carries the reason) goes instead, within the
    // same retained limits.
    a.copy = quarantine_copy(*model, m->topic, m->payload, m->qos, m->retain, v, m->origin);
    a.reason = std::move(v.reason);
    a.routed = core.publish(a.copy, nullptr, nullptr, who.identity, who.gate);
    if (a.routed.retained != retain_verdict::stored) {
        refuse(a, outcome::over_limit, reason_code::quota_exceeded,
               broker_core::retained_refusal_reason(a.routed.retained));
        return a;
    }
    a.what = outcome::quarantined;
    return a;
}

admission admit_will(broker_core& core, const publisher& who, message_ptr& m) {
    admission a;
    const ns::model* model = core.model();
    if (!may_publish_here(core, who, m->topic, model, a.command)) {
        refuse(a, outcome::denied, reason_code::not_authorized, "not authorized to publish the will message");
        return a;
    }
    if (model == nullptr) return a;
    ns::verdict v = model->check(m->topic, m->payload, m->retain);
    if (!v.violation()) return a;
    switch (v.mode) {
    case ns::enforcement::reject:
        a.what = outcome::rejected;
        a.code = static_cast<reason_code>(v.mqtt_reason());
        break;
    case ns::enforcement::warn:
        break;
    case ns::enforcement::quarantine:
        a.copy = quarantine_copy(*model, m->topic, m->payload, m->qos, m->retain, v, nullptr);
        m = a.copy;
        a.what = outcome::quarantined;
        break;
    }
    a.reason = std::move(v.reason);
    return a;
}

}  // namespace strata::broker::core
