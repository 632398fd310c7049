#include "broker/admission.hpp"

#include "broker/model_enforcement.hpp"
#include "namespace/topic.hpp"

namespace strata::broker {

namespace {

using outcome = admission::outcome;
using mqtt::reason_code;

admission refused(outcome what, reason_code code, std::string reason, bool command = false) {
    admission a;
    a.what = what;
    a.code = code;
    a.reason = std::move(reason);
    a.command = command;
    return a;
}

// Steps 1 and 2. `command` tells whether the topic is a command, when
// someone needs to know: the grants or the audit log.
bool may_publish_here(broker_core& core, const publisher& who, std::string_view topic, bool& command) {
    command = false;
    if (!who.topic_checked && !ns::valid_topic_name(topic)) return false;
    if (!core.open_to_publishers(topic)) return false;
    if (who.grants == nullptr) {
        command = core.auditing() && core.is_command(topic);
        return true;
    }
    if (grant_memo* memo = who.memo) {
        const void* model = core.model();
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

admission over_retained_limit(retain_verdict v, broker_core::publish_result routed) {
    admission a = refused(outcome::over_limit, reason_code::quota_exceeded, broker_core::retained_refusal_reason(v));
    a.routed = routed;
    return a;
}

}  // namespace

admission admit(broker_core& core, const publisher& who, const message_ptr& m) {
    bool command = false;
    if (!may_publish_here(core, who, m->topic, command))
        return refused(outcome::denied, reason_code::not_authorized, "not authorized to publish there", command);
    if (m->qos > 0 && !core.store_healthy())
        return refused(outcome::store_down, reason_code::quota_exceeded, "the broker cannot store messages now",
                       command);
    if (who.limits != nullptr) {
        const auto rate = who.limits->admit(m->topic.size() + m->payload.size(), steady_clock::now());
        if (rate != auth::rate_verdict::ok) {
            // 0x97 Quota exceeded: 0x96 Message rate too high is a DISCONNECT
            // code that PUBACK/PUBREC may not carry [MQTT-3.4.2.1].
            return refused(outcome::rate_limited, reason_code::quota_exceeded,
                           rate == auth::rate_verdict::too_many_messages ? "over this identity's publish rate"
                                                                         : "over this identity's publish bytes rate",
                           command);
        }
    }
    // Steps 5 and 6 as the message is routed: a message the model's verdict
    // refuses is neither retained nor delivered.
    const ns::model* model = core.model();
    ns::verdict v;
    const auto r = core.publish(m, model, &v, who.identity);
    admission a;
    a.command = command;
    if (r.admitted) {
        if (r.retained != retain_verdict::stored) {
            a = over_retained_limit(r.retained, r);
            a.command = command;
            return a;
        }
        a.routed = r;
        if (v.violation()) a.reason = v.reason;  // warned
        return a;
    }
    a.reason = v.reason;
    if (v.mode != ns::enforcement::quarantine) {
        a.what = outcome::rejected;
        a.code = static_cast<reason_code>(v.mqtt_reason());
        return a;
    }
    // The publisher did nothing it could fix by resending: success, and the
    // dead-letter copy goes instead (within the same retained limits).
    auto q = quarantine_copy(*model, m->topic, m->payload, m->qos, m->retain, v, m->origin);
    a.copy_topic = q->topic;
    const auto qr = core.publish(q, nullptr, nullptr, who.identity);
    if (qr.retained != retain_verdict::stored) {
        a = over_retained_limit(qr.retained, qr);
        a.command = command;
        return a;
    }
    a.what = outcome::quarantined;
    a.routed = qr;
    return a;
}

admission admit_will(broker_core& core, const publisher& who, message_ptr& m) {
    bool command = false;
    if (!may_publish_here(core, who, m->topic, command))
        return refused(outcome::denied, reason_code::not_authorized, "not authorized to publish the will message",
                       command);
    admission a;
    a.command = command;
    const ns::model* model = core.model();
    if (model == nullptr) return a;
    const ns::verdict v = model->check(m->topic, m->payload, m->retain);
    if (!v.violation()) return a;
    a.reason = v.reason;
    switch (v.mode) {
    case ns::enforcement::reject:
        a.what = outcome::rejected;
        a.code = static_cast<reason_code>(v.mqtt_reason());
        break;
    case ns::enforcement::warn:
        break;
    case ns::enforcement::quarantine:
        m = quarantine_copy(*model, m->topic, m->payload, m->qos, m->retain, v, nullptr);
        a.what = outcome::quarantined;
        a.copy_topic = m->topic;
        break;
    }
    return a;
}

}  // namespace strata::broker
