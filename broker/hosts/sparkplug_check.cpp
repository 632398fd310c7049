#include "broker/hosts/sparkplug_check.hpp"

#include "broker/hosts/opcua_json.hpp"
#include "broker/hosts/sparkplug_json.hpp"
#include "namespace/model_schema.hpp"

#include <string>

namespace strata::broker::hosts {
namespace {

// The fixed time of every sample: what is checked is the payload's shape.
constexpr std::int64_t sample_ms = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

// Empty when `payload` passes the class's schema (or it has none), else why not.
std::string refusal(const ns::data_class& c, const std::string& payload) {
    std::string why;
    if (!c.schema || c.schema->valid_payload(payload, &why)) return {};
    return why;
}

const ns::data_class& class_named(const ns::model& m, const std::string& name, const std::string& at,
                                  const char* what) {
    const ns::data_class* c = m.find_class(name);
    if (!c)
        throw config_error(at + ": the namespace model (" + m.source() + ") has no class '" + name + "' (" + what +
                           ")");
    return *c;
}

void check_metrics(const sparkplug_config& s, const bridges::sparkplug::device_rule& d, const ns::model& m) {
    for (const auto& r : d.metrics) {
        const ns::data_class& c = class_named(m, r.data_class, d.at, "a metric rule's class");
        if (c.command)
            throw config_error(d.at + ": class '" + r.data_class + "' is a command class of the namespace model (" +
                               m.source() + "): metrics are data, not commands");
        const auto it = s.templates.find(r.data_class);
        const opcua_template* t = it == s.templates.end() ? nullptr : &it->second;
        std::string first;
        bool fits = false;
        for (const nlohmann::json& v : {nlohmann::json(1.5), nlohmann::json(true), nlohmann::json("running")}) {
            const std::string payload = sparkplug_payload(v, sparkplug_quality::good, sample_ms, sample_ms, t, r.unit);
            const std::string why = refusal(c, payload);
            if (why.empty()) {
                fits = true;
                break;
            }
            if (first.empty()) first = why + " (sample payload " + payload + ")";
        }
        if (!fits)
            throw config_error(d.at + ": the namespace model (" + m.source() + ") refuses every value of class '" +
                               r.data_class + "': " + first +
                               (t ? "; the class's template is at " + t->at
                                  : "; without a template the payload is {value, ts, quality}: give the class a "
                                    "template under sparkplug.templates that fits its schema"));
    }
}

void check_commands(const sparkplug_config& s, const bridges::sparkplug::device_rule& d, const ns::model& m) {
    if (d.commands.empty()) return;
    const ns::data_class& cmd = class_named(m, s.command_class, d.at, "command_class");
    if (!cmd.command)
        throw config_error(d.at + ": class '" + s.command_class + "' (command_class) is not a command class of the "
                           "namespace model (" + m.source() + "): publishing there would need no command grant");
    if (s.reply_class.empty()) return;
    const ns::data_class& reply = class_named(m, s.reply_class, d.at, "reply_class");
    opcua_write shape;
    shape.value_path = s.value_path;
    shape.request_id_path = s.request_id_path;
    for (const auto r : {write_result::ok, write_result::refused}) {
        const std::string payload = opcua_reply(shape, std::string("sample-request-0001"), r, "",
                                                r == write_result::ok ? "" : "the value does not fit",
                                                bridges::opcua::date_time::from_unix_us(sample_ms * 1000));
        if (const std::string why = refusal(reply, payload); !why.empty())
            throw config_error(d.at + ": the namespace model (" + m.source() + ") refuses the replies on class '" +
                               s.reply_class + "': " + why + " (sample reply " + payload + ")");
    }
}

}  // namespace

void check_sparkplug_fits_model(const config& cfg, const ns::model& m) {
    for (const auto& s : cfg.sparkplug) {
        for (const auto& d : s.mappings) {
            check_metrics(s, d, m);
            check_commands(s, d, m);
        }
    }
}

}  // namespace strata::broker::hosts
