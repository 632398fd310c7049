#include "broker/config_diff.hpp"

#include <sstream>
#include <type_traits>

namespace strata::broker {
namespace {

std::string text(const std::string& v) { return v.empty() ? "(none)" : v; }
std::string text(bool v) { return v ? "true" : "false"; }
template <class T>
    requires std::is_arithmetic_v<T>
std::string text(T v) {
    std::ostringstream out;
    if constexpr (sizeof(T) == 1) out << static_cast<unsigned>(v);
    else out << v;
    return out.str();
}

// The keys of one section that differ, as "key old -> new, ...".
class section {
public:
    template <class T>
    void key(const char* name, const T& a, const T& b) {
        if (a == b) return;
        add(std::string(name) + " " + text(a) + " -> " + text(b));
    }
    // A key whose value does not fit on a line: only that it changed.
    template <class T>
    void changed(const char* name, const T& a, const T& b) {
        if (!(a == b)) add(std::string(name) + " changed");
    }
    void add(const std::string& what) { out_ += (out_.empty() ? "" : ", ") + what; }
    [[nodiscard]] const std::string& str() const noexcept { return out_; }

private:
    std::string out_;
};

std::string slow_action_name(limits_config::slow_consumer_config::action_kind k) {
    return k == limits_config::slow_consumer_config::action_kind::drop ? "drop" : "disconnect";
}

void report(config_changes& c, const char* name, const section& s) {
    if (!s.str().empty()) c.live.emplace_back(name, s.str());
}

// A bridge or OPC UA source without the places in the file its parts
// came from (a line moved is no change).
bridge_config unplaced(bridge_config b) {
    for (auto& r : b.forward) r.at.clear();
    for (auto& r : b.receive) r.at.clear();
    return b;
}

void unplace(std::optional<opcua_template>& t) {
    if (t) t->at.clear();
}

opcua_config unplaced(opcua_config o) {
    unplace(o.payload);
    for (auto& m : o.mappings) {
        m.at.clear();
        unplace(m.payload);
    }
    for (auto& w : o.writes) w.at.clear();
    return o;
}

// The listener settings a running listener cannot change (all but the
// certificate, key and client CA files).
void compare_listeners(const config& running, config& next, std::vector<std::string>& restart) {
    auto& now = running.listeners;
    if (now.size() != next.listeners.size()) {
        restart.emplace_back("listeners");
        next.listeners = now;
        return;
    }
    for (std::size_t i = 0; i < now.size(); ++i) {
        const auto& a = now[i];
        auto& b = next.listeners[i];
        const std::string at = "listeners[" + std::to_string(i) + "].";
        const auto fixed = [&](const char* key, bool same) {
            if (!same) restart.push_back(at + key);
        };
        fixed("name", a.name == b.name);
        fixed("protocol", a.protocol == b.protocol);
        fixed("bind", a.bind == b.bind);
        fixed("admin_identities", a.admin_identities == b.admin_identities);
        fixed("admin_over_plain_http", a.admin_over_plain_http == b.admin_over_plain_http);
        fixed("tls", a.tls.has_value() == b.tls.has_value());
        if (a.tls && b.tls) {
            fixed("tls.require_client_cert", a.tls->require_client_cert == b.tls->require_client_cert);
            fixed("tls.min_version", a.tls->min_version == b.tls->min_version);
            fixed("tls.identity", a.tls->identity == b.tls->identity);
            // A CA added or removed changes what the handshake asks for.
            fixed("tls.client_ca", a.tls->client_ca.empty() == b.tls->client_ca.empty());
        }
        // Kept as running, but for the files a TLS reload reads.
        listener_config kept = a;
        if (kept.tls && b.tls && kept.tls->client_ca.empty() == b.tls->client_ca.empty()) {
            kept.tls->cert = b.tls->cert;
            kept.tls->key = b.tls->key;
            kept.tls->client_ca = b.tls->client_ca;
        }
        b = std::move(kept);
    }
}

}  // namespace

std::string name_changes::describe() const {
    std::string out;
    const auto part = [&out](const char* what, const std::vector<std::string>& names) {
        if (names.empty()) return;
        out += (out.empty() ? "" : "; ") + std::string(what);
        for (std::size_t i = 0; i < names.size(); ++i) out += (i == 0 ? " " : ", ") + names[i];
    };
    part("added", added);
    part("removed", removed);
    part("changed", changed);
    return out;
}

bool same_settings(const bridge_config& a, const bridge_config& b) { return unplaced(a) == unplaced(b); }
bool same_settings(const opcua_config& a, const opcua_config& b) { return unplaced(a) == unplaced(b); }
bool same_settings(const sparkplug_config& a, const sparkplug_config& b) {
    sparkplug_config x = a, y = b;
    for (auto& [cls, t] : x.templates) t.at.clear();
    for (auto& [cls, t] : y.templates) t.at.clear();
    for (auto& m : x.mappings) m.at.clear();
    for (auto& m : y.mappings) m.at.clear();
    return x == y;
}

config_changes reconcile(const config& running, config& next) {
    config_changes c;
    auto& restart = c.needs_restart;

    // What only a restart changes: reported, and left as it runs.
    compare_listeners(running, next, restart);
    {
        const auto& a = running.persistence;
        const auto& b = next.persistence;
        if (a.enabled != b.enabled) restart.emplace_back("persistence.enabled");
        if (a.path != b.path) restart.emplace_back("persistence.path");
        if (a.durability != b.durability) restart.emplace_back("persistence.durability");
        if (a.batch_interval_ms != b.batch_interval_ms) restart.emplace_back("persistence.batch_interval_ms");
        next.persistence = a;
    }
    if (running.threads != next.threads) restart.emplace_back("threads");
    next.threads = running.threads;
    if (running.broker_id != next.broker_id) restart.emplace_back("broker_id");
    next.broker_id = running.broker_id;
    if (!(running.auth.password_checks == next.auth.password_checks)) restart.emplace_back("auth.password_checks");
    next.auth.password_checks = running.auth.password_checks;
    if (!(running.web == next.web)) restart.emplace_back("web");
    next.web = running.web;
    if (running.policy.command_subtrees != next.policy.command_subtrees) restart.emplace_back("auth.command_subtrees");
    next.policy.command_subtrees = running.policy.command_subtrees;

    // What changes live, section by section.
    {
        section s;
        const auto& a = running.limits;
        const auto& b = next.limits;
        s.key("max_connections", a.max_connections, b.max_connections);
        s.key("max_packet_size", a.max_packet_size, b.max_packet_size);
        s.key("receive_maximum", a.receive_maximum, b.receive_maximum);
        s.key("topic_alias_maximum", a.topic_alias_maximum, b.topic_alias_maximum);
        s.key("max_keepalive", a.max_keepalive, b.max_keepalive);
        s.key("max_queued_messages", a.max_queued_messages, b.max_queued_messages);
        s.key("max_queued_bytes", a.max_queued_bytes, b.max_queued_bytes);
        s.key("max_inflight", a.max_inflight, b.max_inflight);
        s.key("max_session_expiry", a.max_session_expiry, b.max_session_expiry);
        s.key("max_subscriptions_per_client", a.max_subscriptions_per_client, b.max_subscriptions_per_client);
        s.key("max_retained_messages", a.max_retained_messages, b.max_retained_messages);
        s.key("max_retained_bytes", a.max_retained_bytes, b.max_retained_bytes);
        s.key("max_handshakes", a.max_handshakes, b.max_handshakes);
        s.key("slow_consumer.after_ms", a.slow_consumer.after_ms, b.slow_consumer.after_ms);
        s.key("slow_consumer.action", slow_action_name(a.slow_consumer.action), slow_action_name(b.slow_consumer.action));
        report(c, "limits", s);
    }
    {
        section s;
        s.key("level", running.log_level, next.log_level);
        report(c, "log", s);
    }
    {
        section s;
        const auto& a = running.auth;
        const auto& b = next.auth;
        s.key("allow_anonymous", running.allow_anonymous, next.allow_anonymous);
        if (running.anonymous_loopback_only != next.anonymous_loopback_only)
            s.add(next.anonymous_loopback_only ? "allow_anonymous unset (loopback listeners only)"
                                               : "allow_anonymous set");
        s.key("password_file", a.password_file, b.password_file);
        s.key("wide_subscriptions", a.filter_wide_subscriptions ? std::string("filter") : std::string("refuse"),
              b.filter_wide_subscriptions ? std::string("filter") : std::string("refuse"));
        s.key("takeover",
              a.takeover == auth_config::takeover_policy::allowed ? std::string("allowed") : std::string("same_identity"),
              b.takeover == auth_config::takeover_policy::allowed ? std::string("allowed") : std::string("same_identity"));
        s.key("login_backoff.free_attempts", a.login_backoff.free_attempts, b.login_backoff.free_attempts);
        s.key("login_backoff.initial_ms", a.login_backoff.initial_ms, b.login_backoff.initial_ms);
        s.key("login_backoff.max_ms", a.login_backoff.max_ms, b.login_backoff.max_ms);
        report(c, "auth", s);
    }
    {
        section s;
        const auto& a = running.auth.limits;
        const auto& b = next.auth.limits;
        s.key("connections", a.connections, b.connections);
        s.key("publish_rate", a.publish_rate, b.publish_rate);
        s.key("publish_bytes_rate", a.publish_bytes_rate, b.publish_bytes_rate);
        s.key("subscriptions", a.subscriptions, b.subscriptions);
        s.key("retained", a.retained, b.retained);
        s.key("retained_bytes", a.retained_bytes, b.retained_bytes);
        report(c, "auth.limits", s);
    }
    if (running.access != next.access)
        c.live.emplace_back("access", std::to_string(running.access.size()) + " rules -> " +
                                          std::to_string(next.access.size()) + " rules");
    {
        section s;
        const auto& a = running.audit;
        const auto& b = next.audit;
        s.key("file", a.file, b.file);
        s.key("topic", a.topic, b.topic);
        s.key("max_bytes", a.max_bytes, b.max_bytes);
        s.key("keep", a.keep, b.keep);
        s.key("refusals_per_second", a.refusals_per_second, b.refusals_per_second);
        s.key("max_field_bytes", a.max_field_bytes, b.max_field_bytes);
        report(c, "audit", s);
    }
    if (running.redirect != next.redirect) c.live.emplace_back("redirect", next.redirect ? "set" : "removed");
    {
        section s;
        s.key("interval", running.sys_interval, next.sys_interval);
        report(c, "sys", s);
    }
    {
        section s;
        s.key("grace_ms", running.shutdown_grace_ms, next.shutdown_grace_ms);
        report(c, "shutdown", s);
    }
    {
        section s;
        s.key("model", running.namespace_model, next.namespace_model);
        report(c, "namespace", s);
    }
    {
        section s;
        s.key("sources_file", running.sources_file, next.sources_file);
        report(c, "sources_file", s);
    }
    if (const auto b = compare_named(running.bridges, next.bridges); !b.empty()) c.live.emplace_back("bridges", b.describe());
    if (const auto o = compare_named(running.opcua, next.opcua); !o.empty()) c.live.emplace_back("opcua", o.describe());
    if (const auto o = compare_named(running.sparkplug, next.sparkplug); !o.empty())
        c.live.emplace_back("sparkplug", o.describe());
    {
        section s;
        const auto& a = running.alerts;
        const auto& b = next.alerts;
        s.key("enabled", a.enabled, b.enabled);
        s.key("levels", a.levels, b.levels);
        s.key("window_s", a.window_s, b.window_s);
        s.key("spike_factor", a.spike_factor, b.spike_factor);
        s.key("drop_factor", a.drop_factor, b.drop_factor);
        s.key("min_rate", a.min_rate, b.min_rate);
        s.changed("stale", a.stale, b.stale);
        s.key("stale_factor", a.stale_factor, b.stale_factor);
        s.key("reconnect_loop.count", a.reconnect_count, b.reconnect_count);
        s.key("reconnect_loop.window_s", a.reconnect_window_s, b.reconnect_window_s);
        report(c, "alerts", s);
    }
    return c;
}

}  // namespace strata::broker
