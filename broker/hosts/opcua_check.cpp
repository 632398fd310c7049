#include "broker/hosts/opcua_check.hpp"

#include "broker/hosts/opcua_json.hpp"

#include <string>

namespace strata::broker::hosts {
namespace {

namespace ua = bridges::opcua;

// The fixed time of every sample: what is checked is the payload's shape.
constexpr std::int64_t sample_unix_us = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z

ua::data_value sample_value(ua::variant v) {
    ua::data_value dv;
    dv.value = std::move(v);
    dv.status = ua::status_code{};
    dv.source_timestamp = ua::date_time::from_unix_us(sample_unix_us);
    dv.server_timestamp = dv.source_timestamp;
    return dv;
}

// The model's verdict on `payload` at `topic`: empty when it passes (or the
// topic is free), else the model's reason.
std::string refusal(const ns::model& m, const std::string& topic, const std::string& payload, bool retain) {
    const ns::verdict v = m.evaluate(topic, payload, retain);
    return v.violation() ? std::string(v.reason) : std::string();
}

void check_mapping(const opcua_config& o, const opcua_mapping& map, const ns::model& m) {
    // Browse names become the last levels of a browse mapping's topics.
    const std::string topic = map.browse.empty() ? map.topic : map.topic + "/sample";
    const opcua_template* t = map.payload ? &*map.payload : nullptr;
    const std::string number = opcua_payload(sample_value(ua::variant{1.5}), t, map.unit);
    const std::string boolean = opcua_payload(sample_value(ua::variant{true}), t, map.unit);
    const std::string why = refusal(m, topic, number, o.retain);
    if (why.empty()) return;
    const std::string why_boolean = refusal(m, topic, boolean, o.retain);
    if (why_boolean.empty()) return;
    std::string msg = map.at + ": the namespace model (" + m.source() + ") refuses every value published on '" +
                      topic + "': " + why + " (sample payload " + number;
    if (why_boolean != why) msg += "; with a boolean value: " + why_boolean;
    msg += ")";
    if (t) msg += "; the payload template is at " + t->at;
    else
        msg += "; without a template the payload is {value, source_ts, server_ts, status}: give the source or "
               "the mapping a `template:` that fits, such as {value: value, ts: source_ts, quality: status}";
    throw config_error(msg);
}

void check_write(const opcua_write& w, const ns::model& m) {
    const ns::verdict read = m.read(w.topic);
    if (read.violation())
        throw config_error(w.at + ": the namespace model (" + m.source() + ") does not read the command topic '" +
                           w.topic + "': " + read.reason + " (no command could be published there)");
    if (!w.command_shape() && !refusal(m, w.topic, "1.5", false).empty() && !refusal(m, w.topic, "true", false).empty())
        throw config_error(w.at + ": the namespace model (" + m.source() + ") refuses a bare value on '" + w.topic +
                           "': " + refusal(m, w.topic, "1.5", false) +
                           "; for commands in the model's shape set `value:` to the path of the value in the "
                           "command (such as parameters.value)");
    const ua::date_time ts = ua::date_time::from_unix_us(sample_unix_us);
    const std::optional<std::string> request_id = "sample-request-0001";
    const struct {
        write_result r;
        const char* status;
        const char* detail;
    } replies[] = {{write_result::ok, "Good", ""},
                   {write_result::refused, "BadTypeMismatch", "Double: expected a number"},
                   {write_result::failed, "BadNotConnected", "BadNotConnected: the connection is down"}};
    for (const auto& s : replies) {
        const std::string payload = opcua_reply(w, request_id, s.r, s.status, s.detail, ts);
        const std::string why = refusal(m, w.reply_topic, payload, false);
        if (!why.empty())
            throw config_error(w.at + ": the namespace model (" + m.source() + ") refuses the replies published on '" +
                               w.reply_topic + "': " + why + " (sample reply " + payload +
                               "); set reply_topic to a topic of the model's reply class");
    }
}

}  // namespace

void check_opcua_fits_model(const config& cfg, const ns::model& m) {
    for (const auto& o : cfg.opcua) {
        for (const auto& map : o.mappings) check_mapping(o, map, m);
        for (const auto& w : o.writes) check_write(w, m);
    }
}

}  // namespace strata::broker::hosts
