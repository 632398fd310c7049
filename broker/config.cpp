// The YAML config loader.
//
// The walk is strict (namespace/yaml_reader.hpp says why): unknown and
// duplicate keys, wrong types and numbers out of range are errors, and the
// first problem is thrown as one config_error naming file:line: key.path.
// Beyond the shapes of single values, this file checks what only the broker
// knows: binds, topic filters, names that must be unique, sections that go
// together.
#include "broker/config.hpp"

#include "bridges/opcua/types.hpp"
#include "bridges/sparkplug/mapping.hpp"
#include "bridges/mqtt/topic_map.hpp"
#include "namespace/topic.hpp"
#include "namespace/yaml_reader.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

namespace strata::broker {
namespace {

// Listener protocols this build can serve; the error message lists this set.
constexpr std::array<std::string_view, 4> known_protocols{"mqtt", "mqtt+tls", "http", "https"};
constexpr std::array<std::string_view, 2> tls_versions{"1.2", "1.3"};
constexpr std::array<std::string_view, 3> tls_identities{"cn", "san-uri", "san-dns"};

constexpr std::array<std::string_view, 6> log_levels{"trace", "debug", "info", "warn", "error", "off"};

using ns::yaml::describe;
using ns::yaml::one_of;
using ns::yaml::reader;
using ns::yaml::value_ref;

bool contains(std::span<const std::string_view> names, std::string_view s) {
    return std::find(names.begin(), names.end(), s) != names.end();
}

// Returns an error message, or an empty string on success.
std::string split_bind(const std::string& bind, std::string& host, std::uint16_t& port) {
    const std::string form = "expected \"host:port\" or \"[ipv6]:port\" (got '" + bind + "')";
    std::string_view h;
    std::string_view p;
    if (bind.starts_with('[')) {
        const auto close = bind.find(']');
        if (close == std::string::npos) return form;
        h = std::string_view(bind).substr(1, close - 1);
        if (close + 1 >= bind.size() || bind[close + 1] != ':') return form;
        p = std::string_view(bind).substr(close + 2);
        if (h.empty()) return "the host must not be empty (got '" + bind + "')";
        if (h.find(':') == std::string_view::npos)
            return "brackets are for IPv6 addresses (got '" + bind + "')";
    } else {
        const auto colon = bind.rfind(':');
        if (colon == std::string::npos) return "missing port: " + form;
        h = std::string_view(bind).substr(0, colon);
        p = std::string_view(bind).substr(colon + 1);
        if (h.find(':') != std::string_view::npos)
            return "an IPv6 address must be in brackets, e.g. \"[::1]:1883\" (got '" + bind + "')";
        if (h.empty())
            return "the host must not be empty; use 0.0.0.0 (all IPv4) or [::] (all IPv6) (got '" + bind + "')";
    }
    if (std::any_of(h.begin(), h.end(), [](unsigned char c) {
            return c <= ' ' || c == '[' || c == ']' || c == '/' || c == 0x7f;
        }))
        return "invalid host '" + std::string(h) + "'";

    unsigned value = 0;
    const bool digits_only =
        !p.empty() && p.size() <= 5 && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits_only) std::from_chars(p.data(), p.data() + p.size(), value);
    if (!digits_only || value > 65535)
        return "the port must be between 0 and 65535 (got '" + std::string(p) + "')";

    host = std::string(h);
    port = static_cast<std::uint16_t>(value);
    return {};
}

bool valid_listener_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '_' || c == '.';
    });
}

tls_config read_tls(const reader& r, const value_ref& v) {
    tls_config t;
    r.read_map(v, {
        {"cert", [&](const value_ref& x) { t.cert = r.read_nonempty_string(x); }, true},
        {"key", [&](const value_ref& x) { t.key = r.read_nonempty_string(x); }, true},
        {"client_ca", [&](const value_ref& x) { t.client_ca = r.read_nonempty_string(x); }},
        {"require_client_cert", [&](const value_ref& x) { t.require_client_cert = r.read_bool(x); }},
        {"min_version", [&](const value_ref& x) { t.min_version = r.read_choice(x, tls_versions); }},
        {"identity",
         [&](const value_ref& x) {
             const std::string id = r.read_choice(x, tls_identities);
             t.identity = id == "cn" ? tls_identity::cn : id == "san-uri" ? tls_identity::san_uri : tls_identity::san_dns;
         }},
    });
    return t;
}

bool needs_tls(std::string_view protocol) { return protocol == "mqtt+tls" || protocol == "https"; }

void read_listeners(const reader& r, const value_ref& v, config& cfg) {
    if (v.node.IsNull()) return;  // `listeners:` with nothing: the default listener
    if (!v.node.IsSequence()) r.fail(v, "expected a list, got " + describe(v.node));
    if (v.node.size() == 0) r.fail(v, "at least one listener is required");

    struct seen_listener {
        std::string path;
        std::string bind_key;  // normalized host:port, empty for port 0
    };
    std::vector<seen_listener> seen;
    cfg.listeners.clear();

    r.read_list(v, [&](const value_ref& item, std::size_t) {
        listener_config l;
        YAML::Mark name_mark = item.mark;
        YAML::Mark bind_mark = item.mark;
        r.read_map(item, {
            {"name",
             [&](const value_ref& x) {
                 l.name = r.read_string(x);
                 name_mark = x.mark;
                 if (!valid_listener_name(l.name))
                     r.fail(x, "must be non-empty and use only letters, digits, '-', '_' and '.' (got '" + l.name +
                                   "')");
             },
             true},
            {"protocol",
             [&](const value_ref& x) {
                 l.protocol = r.read_string(x);
                 if (!contains(known_protocols, l.protocol))
                     r.fail(x, "unsupported protocol '" + l.protocol + "' (supported: " + one_of(known_protocols) +
                                   ")");
             }},
            {"bind",
             [&](const value_ref& x) {
                 l.bind = r.read_string(x);
                 bind_mark = x.mark;
                 const std::string err = split_bind(l.bind, l.host, l.port);
                 if (!err.empty()) r.fail(x, err);
             },
             true},
            {"tls",
             [&](const value_ref& x) {
                 if (x.node.IsNull()) r.fail(x, "expected a map with cert and key, got an empty value");
                 l.tls = read_tls(r, x);
             }},
            {"admin_identities",
             [&](const value_ref& x) {
                 r.read_list(x, [&](const value_ref& y, std::size_t) { l.admin_identities.push_back(r.read_nonempty_string(y)); });
             }},
            {"admin_over_plain_http", [&](const value_ref& x) { l.admin_over_plain_http = r.read_bool(x); }},
        });
        if (l.admin_over_plain_http && l.protocol != "http")
            r.fail(item, "admin_over_plain_http is for protocol http (https always takes HTTP Basic)");
        if (!l.admin_identities.empty() && (l.protocol != "https" || !l.tls || l.tls->client_ca.empty()))
            r.fail(item, "admin_identities needs protocol https with tls.client_ca (client certificates)");
        if (needs_tls(l.protocol) && !l.tls)
            r.fail(item, "protocol '" + l.protocol + "' needs a tls section with cert and key");
        if (!needs_tls(l.protocol) && l.tls)
            r.fail(item, "a tls section needs protocol mqtt+tls or https (got '" + l.protocol + "')");

        std::string bind_key;
        if (l.port != 0) {
            bind_key = l.host;
            std::transform(bind_key.begin(), bind_key.end(), bind_key.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            bind_key += "|" + std::to_string(l.port);
        }
        for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
            if (cfg.listeners[i].name == l.name)
                r.fail(name_mark, item.path + ".name",
                       "duplicate listener name '" + l.name + "' (also " + seen[i].path + ")");
            if (!bind_key.empty() && seen[i].bind_key == bind_key)
                r.fail(bind_mark, item.path + ".bind",
                       "'" + l.bind + "' is already bound by " + seen[i].path + " ('" + cfg.listeners[i].name + "')");
        }
        seen.push_back({item.path, bind_key});
        cfg.listeners.push_back(std::move(l));
    });
}

void read_limits(const reader& r, const value_ref& v, limits_config& l) {
    using u16 = std::uint16_t;
    using u32 = std::uint32_t;
    using u64 = std::uint64_t;
    r.read_map(v, {
        {"max_connections", [&](const value_ref& x) { l.max_connections = r.read_uint<u32>(x, 1); }},
        {"max_packet_size", [&](const value_ref& x) { l.max_packet_size = r.read_size<u32>(x, 16, 268'435'460); }},
        {"receive_maximum", [&](const value_ref& x) { l.receive_maximum = r.read_uint<u16>(x, 1, 65535); }},
        {"topic_alias_maximum", [&](const value_ref& x) { l.topic_alias_maximum = r.read_uint<u16>(x, 0, 65535); }},
        {"max_keepalive", [&](const value_ref& x) { l.max_keepalive = r.read_uint<u16>(x, 1, 65535); }},
        {"max_queued_messages", [&](const value_ref& x) { l.max_queued_messages = r.read_uint<u32>(x, 1); }},
        {"max_queued_bytes", [&](const value_ref& x) { l.max_queued_bytes = r.read_size<u64>(x, 1024); }},
        {"max_inflight", [&](const value_ref& x) { l.max_inflight = r.read_uint<u16>(x, 1, 65535); }},
        {"max_session_expiry", [&](const value_ref& x) { l.max_session_expiry = r.read_uint<u32>(x, 0); }},
        {"max_subscriptions_per_client",
         [&](const value_ref& x) { l.max_subscriptions_per_client = r.read_uint<u32>(x, 0); }},
        {"max_retained_messages", [&](const value_ref& x) { l.max_retained_messages = r.read_uint<u64>(x, 1); }},
        {"max_retained_bytes", [&](const value_ref& x) { l.max_retained_bytes = r.read_size<u64>(x, 1024); }},
        {"max_handshakes", [&](const value_ref& x) { l.max_handshakes = r.read_uint<u32>(x, 1, 1'000'000); }},
        {"slow_consumer",
         [&](const value_ref& x) {
             static constexpr std::array<std::string_view, 2> actions{"disconnect", "drop"};
             auto& sc = l.slow_consumer;
             r.read_map(x, {
                 {"after_ms", [&](const value_ref& y) { sc.after_ms = r.read_uint<u32>(y, 100, 3'600'000); }},
                 {"action",
                  [&](const value_ref& y) {
                      sc.action = r.read_choice(y, actions) == "drop"
                                      ? limits_config::slow_consumer_config::action_kind::drop
                                      : limits_config::slow_consumer_config::action_kind::disconnect;
                  }},
             });
         }},
    });
}

// One `{deny|allow: VERB, on: FILTER}` rule: exactly one verdict, a valid
// filter. Used by `access:` and (with `where` and `class` as `extra` keys,
// `on` then optional) by the grants of `roles:`.
void read_rule(const reader& r, const value_ref& item, std::span<const std::string_view> verbs, bool& deny,
               std::string& what, std::string& filter, std::vector<reader::key> extra = {}) {
    int verdicts = 0;
    const auto verdict = [&](bool d) {
        return [&, d](const value_ref& x) {
            ++verdicts;
            deny = d;
            what = r.read_choice(x, verbs);
        };
    };
    const bool filter_required = extra.empty();
    std::vector<reader::key> keys{
        {"deny", verdict(true)},
        {"allow", verdict(false)},
        {"on",
         [&](const value_ref& x) {
             filter = r.read_string(x);
             if (!ns::valid_topic_filter(filter))
                 r.fail(x, "not a valid MQTT topic filter: '" + filter +
                               "' ('+' and '#' must be whole levels, '#' only last)");
         },
         filter_required},
    };
    keys.insert(keys.end(), std::make_move_iterator(extra.begin()), std::make_move_iterator(extra.end()));
    r.read_map(item, keys);
    if (verdicts != 1) r.fail(item, "needs exactly one of 'deny' or 'allow'");
}

void read_access(const reader& r, const value_ref& v, config& cfg) {
    static constexpr std::array<std::string_view, 2> actions{"subscribe", "publish"};
    r.read_list(v, [&](const value_ref& item, std::size_t) {
        access_rule rule;
        std::string what;
        read_rule(r, item, actions, rule.deny, what, rule.filter);
        rule.what = what == "publish" ? access_rule::action::publish : access_rule::action::subscribe;
        cfg.access.push_back(std::move(rule));
    });
}

// A map of names to lists (`roles:`, `users:`): calls each(name, list) for
// every entry, checking names are non-empty, unique strings and values lists.
void read_named_lists(const reader& r, const value_ref& v, std::string_view what,
                      const std::function<void(const std::string&, const value_ref&)>& each) {
    if (!v.node.IsNull() && !v.node.IsMap())
        r.fail(v, "expected a map of " + std::string(what) + ", got " + describe(v.node));
    r.read_entries(v, [&](const std::string& name, const YAML::Mark& key_mark, const value_ref& list) {
        if (name.empty()) r.fail(key_mark, v.path, "names must be non-empty strings");
        if (!list.node.IsSequence() && !list.node.IsNull()) r.fail(list, "expected a list, got " + describe(list.node));
        each(name, list);
    });
}

// A list or a single string (`class: oee`, `class: [telemetry, state]`).
std::vector<std::string> read_names(const reader& r, const value_ref& v) {
    std::vector<std::string> out;
    if (!v.node.IsSequence()) {
        out.push_back(r.read_nonempty_string(v));
        return out;
    }
    r.read_list(v, [&](const value_ref& item, std::size_t) { out.push_back(r.read_nonempty_string(item)); });
    if (out.empty()) r.fail(v, "needs at least one name");
    return out;
}

// `where: {LEVEL: NAME or [NAMES]}`: names hold no '/', '+' or '#'.
std::vector<auth::level_condition> read_where(const reader& r, const value_ref& v) {
    if (!v.node.IsMap()) r.fail(v, "expected a map of model levels to names, got " + describe(v.node));
    std::vector<auth::level_condition> out;
    r.read_entries(v, [&](const std::string& level, const YAML::Mark& mark, const value_ref& names) {
        if (level.empty()) r.fail(mark, v.path, "level names must be non-empty strings");
        auth::level_condition c{level, read_names(r, names)};
        for (const auto& n : c.names) {
            if (n.find_first_of("/+#") != std::string::npos)
                r.fail(names, "'" + n + "' is not a level name ('/', '+' and '#' cannot appear; '*' matches any run)");
        }
        out.push_back(std::move(c));
    });
    if (out.empty()) r.fail(v, "needs at least one level");
    return out;
}

// `roles:`: name -> list of grants. Level and class names are checked
// against the model when the policy is built (core::security), which
// reports them at `grant::at`.
void read_roles(const reader& r, const value_ref& v, config& cfg) {
    static constexpr std::array<std::string_view, 4> verbs{"subscribe", "publish", "command", "admin"};
    read_named_lists(r, v, "role names to lists of grants", [&](const std::string& name, const value_ref& list) {
        auto& grants = cfg.policy.roles[name];
        r.read_list(list, [&](const value_ref& item, std::size_t) {
            auth::grant g;
            std::string what;
            read_rule(r, item, verbs, g.deny, what, g.filter,
                      {{"where", [&](const value_ref& x) { g.where = read_where(r, x); }},
                       {"class", [&](const value_ref& x) { g.classes = read_names(r, x); }}});
            if (g.filter.empty() && g.where.empty() && g.classes.empty())
                r.fail(item, "needs 'on' (a topic filter), 'where' (model levels) or 'class' (model classes)");
            g.what = what == "subscribe" ? auth::verb::subscribe
                     : what == "publish" ? auth::verb::publish
                     : what == "command" ? auth::verb::command
                                         : auth::verb::admin;
            if (g.what == auth::verb::admin && (!g.where.empty() || !g.classes.empty()))
                r.fail(item, "an admin grant names admin API resources ('on'), not model levels or classes");
            g.at = r.where(item.mark, item.path);
            while (g.at.ends_with(' ') || g.at.ends_with(':')) g.at.pop_back();
            grants.push_back(std::move(g));
        });
    });
}

// `users:`: identity -> list of role names. Role names are checked once
// the whole document is read (roles may come after users).
struct role_ref {
    YAML::Mark mark;
    std::string path;
    std::string role;
};

void read_users(const reader& r, const value_ref& v, config& cfg, std::vector<role_ref>& refs) {
    read_named_lists(r, v, "users to lists of roles", [&](const std::string& user, const value_ref& list) {
        auto& roles = cfg.policy.users[user];
        r.read_list(list, [&](const value_ref& item, std::size_t) {
            roles.push_back(r.read_nonempty_string(item));
            refs.push_back({item.mark, item.path, roles.back()});
        });
    });
}

void read_auth(const reader& r, const value_ref& v, config& cfg) {
    using u32 = std::uint32_t;
    static constexpr std::array<std::string_view, 2> wide{"refuse", "filter"};
    static constexpr std::array<std::string_view, 2> takeover{"same_identity", "allowed"};
    auto& a = cfg.auth;
    r.read_map(v, {
        {"allow_anonymous",
         [&](const value_ref& y) {
             cfg.allow_anonymous = r.read_bool(y);
             cfg.anonymous_loopback_only = false;
         }},
        {"password_file", [&](const value_ref& y) { a.password_file = r.read_nonempty_string(y); }},
        {"wide_subscriptions",
         [&](const value_ref& y) { a.filter_wide_subscriptions = r.read_choice(y, wide) == "filter"; }},
        {"takeover",
         [&](const value_ref& y) {
             a.takeover = r.read_choice(y, takeover) == "allowed" ? auth_config::takeover_policy::allowed
                                                                  : auth_config::takeover_policy::same_identity;
         }},
        {"command_subtrees",
         [&](const value_ref& y) {
             r.read_list(y, [&](const value_ref& item, std::size_t) {
                 std::string f = r.read_nonempty_string(item);
                 if (!ns::valid_topic_filter(f)) r.fail(item, "not a valid MQTT topic filter: '" + f + "'");
                 cfg.policy.command_subtrees.push_back(std::move(f));
             });
         }},
        {"limits",
         [&](const value_ref& y) {
             auto& l = a.limits;
             r.read_map(y, {
                 {"connections", [&](const value_ref& z) { l.connections = r.read_uint<u32>(z, 0); }},
                 {"publish_rate", [&](const value_ref& z) { l.publish_rate = r.read_uint<u32>(z, 0); }},
                 {"publish_bytes_rate",
                  [&](const value_ref& z) { l.publish_bytes_rate = r.read_size<std::uint64_t>(z, 0); }},
                 {"subscriptions", [&](const value_ref& z) { l.subscriptions = r.read_uint<u32>(z, 0); }},
                 {"retained", [&](const value_ref& z) { l.retained = r.read_uint<std::uint64_t>(z, 0); }},
                 {"retained_bytes", [&](const value_ref& z) { l.retained_bytes = r.read_size<std::uint64_t>(z, 0); }},
             });
         }},
        {"login_backoff",
         [&](const value_ref& y) {
             auto& b = a.login_backoff;
             r.read_map(y, {
                 {"free_attempts", [&](const value_ref& z) { b.free_attempts = r.read_uint<u32>(z, 0, 1000); }},
                 {"initial_ms", [&](const value_ref& z) { b.initial_ms = r.read_uint<u32>(z, 1, 3'600'000); }},
                 {"max_ms", [&](const value_ref& z) { b.max_ms = r.read_uint<u32>(z, 1, 86'400'000); }},
             });
             if (b.max_ms < b.initial_ms) r.fail(y, "max_ms must be at least initial_ms");
         }},
        {"password_checks",
         [&](const value_ref& y) {
             auto& p = a.password_checks;
             r.read_map(y, {
                 {"threads", [&](const value_ref& z) { p.threads = r.read_uint<unsigned>(z, 0, 64); }},
                 {"per_address", [&](const value_ref& z) { p.per_address = r.read_uint<u32>(z, 1, 10'000); }},
             });
         }},
    });
}

void read_audit(const reader& r, const value_ref& v, config& cfg) {
    r.read_map(v, {
        {"file", [&](const value_ref& y) { cfg.audit.file = r.read_nonempty_string(y); }},
        {"topic",
         [&](const value_ref& y) {
             cfg.audit.topic = r.read_nonempty_string(y);
             if (cfg.audit.topic.find_first_of("+#") != std::string::npos)
                 r.fail(y, "must be a topic name, without wildcards (got '" + cfg.audit.topic + "')");
         }},
        {"max_bytes",
         [&](const value_ref& y) {
             cfg.audit.max_bytes = r.read_size<std::uint64_t>(y, 0);
             if (cfg.audit.max_bytes != 0 && cfg.audit.max_bytes < 4096)
                 r.fail(y, "must be 0 (never rotate) or at least 4096 bytes (got " + std::to_string(cfg.audit.max_bytes) +
                               ")");
         }},
        {"keep", [&](const value_ref& y) { cfg.audit.keep = r.read_uint<std::uint32_t>(y, 0, 1000); }},
        {"refusals_per_second",
         [&](const value_ref& y) { cfg.audit.refusals_per_second = r.read_uint<std::uint32_t>(y, 0, 1'000'000); }},
        {"max_field_bytes",
         [&](const value_ref& y) { cfg.audit.max_field_bytes = r.read_uint<std::uint32_t>(y, 16, 65535); }},
    });
}

// "mqtt://host:port" / "mqtts://host:port" (port optional), "[v6]" hosts too.
void read_remote(const reader& r, const value_ref& v, bridge_config& b) {
    b.remote = r.read_nonempty_string(v);
    std::string_view rest = b.remote;
    if (rest.starts_with("mqtts://")) {
        b.tls = true;
        b.port = 8883;
        rest.remove_prefix(8);
    } else if (rest.starts_with("mqtt://")) {
        rest.remove_prefix(7);
    } else {
        r.fail(v, "expected mqtt://host:port or mqtts://host:port (got '" + b.remote + "')");
    }
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    const bool has_port = rest.starts_with('[') ? rest.find("]:") != std::string_view::npos
                                                 : rest.find(':') != std::string_view::npos;
    const std::string bind = has_port ? std::string(rest) : std::string(rest) + ":" + std::to_string(b.port);
    const std::string err = split_bind(bind, b.host, b.port);
    if (!err.empty() || b.host.empty() || b.port == 0)
        r.fail(v, "expected mqtt://host:port or mqtts://host:port with a host and a non-zero port (got '" + b.remote +
                      "')");
}

// A rule names filters (`local`, `remote`), model classes (`class`), or
// both; with classes only, the filters are "#" on both sides. Class names
// are checked against the model when the model is installed
// (hosts::check_bridge_classes), which reports them at `bridge_route::at`.
void read_routes(const reader& r, const value_ref& v, std::vector<bridge_route>& out) {
    r.read_list(v, [&](const value_ref& item, std::size_t) {
        bridge_route route;
        r.read_map(item, {
            {"local", [&](const value_ref& x) { route.local = r.read_nonempty_string(x); }},
            {"remote", [&](const value_ref& x) { route.remote = r.read_nonempty_string(x); }},
            {"class", [&](const value_ref& x) { route.classes = read_names(r, x); }},
            {"qos", [&](const value_ref& x) { route.qos = r.read_uint<std::uint8_t>(x, 0, 1); }},
        });
        if (route.classes.empty() && (route.local.empty() || route.remote.empty()))
            r.fail(item, "needs 'local' and 'remote' (topic filters), or 'class' (model classes)");
        if (route.local.empty() != route.remote.empty())
            r.fail(item, "'local' and 'remote' go together (the same wildcard levels on both brokers)");
        if (route.local.empty()) route.local = route.remote = "#";
        route.at = r.where(item.mark, item.path);
        while (route.at.ends_with(' ') || route.at.ends_with(':')) route.at.pop_back();
        try {
            const bridges::mqtt::topic_map check(route.local, route.remote);
        } catch (const std::invalid_argument& e) {
            r.fail(item, e.what());
        }
        out.push_back(std::move(route));
    });
}

void read_bridges(const reader& r, const value_ref& v, config& cfg) {
    r.read_list(v, [&](const value_ref& item, std::size_t) {
        bridge_config b;
        YAML::Mark name_mark = item.mark;
        bool has_tls = false;
        r.read_map(item, {
            {"name",
             [&](const value_ref& x) {
                 b.name = r.read_string(x);
                 name_mark = x.mark;
                 if (!valid_listener_name(b.name))
                     r.fail(x, "must be non-empty and use only letters, digits, '-', '_' and '.' (got '" + b.name +
                                   "')");
             },
             true},
            {"remote", [&](const value_ref& x) { read_remote(r, x, b); }, true},
            {"protocol_version",
             [&](const value_ref& x) {
                 b.protocol_version = r.read_uint<std::uint8_t>(x, 4, 5);
             }},
            {"client_id", [&](const value_ref& x) { b.client_id = r.read_nonempty_string(x); }},
            {"tls",
             [&](const value_ref& x) {
                 has_tls = true;
                 r.read_map(x, {
                     {"ca", [&](const value_ref& y) { b.ca = r.read_nonempty_string(y); }},
                     {"cert", [&](const value_ref& y) { b.cert = r.read_nonempty_string(y); }},
                     {"key", [&](const value_ref& y) { b.key = r.read_nonempty_string(y); }},
                     {"server_name", [&](const value_ref& y) { b.server_name = r.read_nonempty_string(y); }},
                 });
                 if (b.cert.empty() != b.key.empty()) r.fail(x, "cert and key go together (a client certificate needs its key)");
             }},
            {"username", [&](const value_ref& x) { b.username = r.read_nonempty_string(x); }},
            {"password", [&](const value_ref& x) { b.password = r.read_string(x); }},
            {"identity", [&](const value_ref& x) { b.identity = r.read_nonempty_string(x); }},
            {"forward", [&](const value_ref& x) { read_routes(r, x, b.forward); }},
            {"receive", [&](const value_ref& x) { read_routes(r, x, b.receive); }},
            {"buffer",
             [&](const value_ref& x) {
                 r.read_map(x, {
                     {"max_bytes",
                      [&](const value_ref& y) { b.buffer_max_bytes = r.read_size<std::uint64_t>(y, 1024); }},
                     {"policy",
                      [&](const value_ref& y) {
                          static constexpr std::array<std::string_view, 2> policies{"drop-oldest", "block"};
                          b.buffer_block = r.read_choice(y, policies) == "block";
                      }},
                     {"state_topics",
                      [&](const value_ref& y) {
                          static constexpr std::array<std::string_view, 2> kinds{"all", "latest-only"};
                          b.latest_only = r.read_choice(y, kinds) == "latest-only";
                      }},
                     {"memory",
                      [&](const value_ref& y) {
                          r.read_map(y, {
                              {"messages",
                               [&](const value_ref& z) { b.buffer_memory_messages = r.read_uint<std::uint32_t>(z, 100, 1'000'000); }},
                              {"bytes",
                               [&](const value_ref& z) { b.buffer_memory_bytes = r.read_size<std::uint64_t>(z, 64u << 10, 1ull << 30); }},
                          });
                      }},
                     {"qos0",
                      [&](const value_ref& y) {
                          static constexpr std::array<std::string_view, 2> kinds{"memory", "durable"};
                          b.buffer_qos0_durable = r.read_choice(y, kinds) == "durable";
                      }},
                     {"drain_rate", [&](const value_ref& y) { b.drain_rate = r.read_uint<std::uint32_t>(y, 0); }},
                 });
             }},
            {"reconnect",
             [&](const value_ref& x) {
                 r.read_map(x, {
                     {"min_ms", [&](const value_ref& y) { b.reconnect_min_ms = r.read_uint<std::uint32_t>(y, 10); }},
                     {"max_ms", [&](const value_ref& y) { b.reconnect_max_ms = r.read_uint<std::uint32_t>(y, 10); }},
                 });
                 if (b.reconnect_max_ms < b.reconnect_min_ms) r.fail(x, "max_ms must be at least min_ms");
             }},
            {"keep_alive", [&](const value_ref& x) { b.keep_alive = r.read_uint<std::uint16_t>(x, 5); }},
            {"inflight", [&](const value_ref& x) { b.inflight = r.read_uint<std::uint16_t>(x, 1); }},
        });
        if (has_tls && !b.tls) r.fail(item, "a tls section needs an mqtts:// remote (got '" + b.remote + "')");
        if (b.forward.empty() && b.receive.empty())
            r.fail(item, "a bridge needs at least one forward or receive rule");
        if (b.client_id.empty()) b.client_id = b.name;
        if (b.identity.empty()) b.identity = b.name;
        if (b.server_name.empty()) b.server_name = b.host;
        for (const auto& other : cfg.bridges) {
            if (other.name == b.name) r.fail(name_mark, item.path + ".name", "duplicate bridge name '" + b.name + "'");
        }
        cfg.bridges.push_back(std::move(b));
    });
}

// `opcua:` (docs/opcua.md). Node ids and topics are checked here so that
// a typo stops the broker at start instead of leaving a tag unpublished.
std::string read_node_id(const reader& r, const value_ref& v) {
    std::string s = r.read_nonempty_string(v);
    if (!bridges::opcua::node_id::parse(s)) r.fail(v, "expected an OPC UA node id such as \"ns=2;s=PLC1.Line1.Counter\" (got '" + s + "')");
    return s;
}

std::string read_topic_name(const reader& r, const value_ref& v) {
    std::string s = r.read_nonempty_string(v);
    if (!ns::valid_topic_name(s) || s.front() == '$') r.fail(v, "expected a topic name without wildcards or '$' (got '" + s + "')");
    return s;
}

void read_opcua_security(const reader& r, const value_ref& v, opcua_config& o) {
    static constexpr std::array<std::string_view, 3> policies{"None", "Basic256Sha256", "Aes128_Sha256_RsaOaep"};
    static constexpr std::array<std::string_view, 3> modes{"None", "Sign", "SignAndEncrypt"};
    r.read_map(v, {
        {"policy", [&](const value_ref& x) { o.policy = r.read_choice(x, policies); }},
        {"mode", [&](const value_ref& x) { o.mode = r.read_choice(x, modes); }},
    });
    if ((o.policy == "None") != (o.mode == "None"))
        r.fail(v, "policy None goes with mode None, and a secure policy with Sign or SignAndEncrypt");
}

void read_opcua_user(const reader& r, const value_ref& v, opcua_config& o) {
    if (v.node.IsScalar() && v.node.Scalar() == "anonymous") return;
    r.read_map(v, {
        {"username", [&](const value_ref& x) { o.username = r.read_nonempty_string(x); }, true},
        {"password", [&](const value_ref& x) { o.password = r.read_string(x); }, true},
    });
}

// "file:line: key.path", for problems found once the model is loaded.
std::string position(const reader& r, const value_ref& v) {
    std::string at = r.where(v.mark, v.path);
    while (at.ends_with(' ') || at.ends_with(':')) at.pop_back();
    return at;
}

// `template: {KEY: FIELD, ...}` (config.hpp, opcua_template). A status key
// may name the severities: `quality: {status: {good: ok, bad: failed}}`.
opcua_template read_opcua_template(const reader& r, const value_ref& v) {
    using field = opcua_template::field;
    static constexpr std::array<std::string_view, 7> fields{"value",  "source_ts",   "server_ts", "status",
                                                            "status_name", "status_code", "unit"};
    if (!v.node.IsMap())
        r.fail(v, "expected a map of JSON keys to what each holds (" + one_of(fields) + "), got " + describe(v.node));
    opcua_template t;
    t.at = position(r, v);
    r.read_entries(v, [&](const std::string& name, const YAML::Mark& mark, const value_ref& x) {
        if (name.empty()) r.fail(mark, v.path, "JSON keys must be non-empty strings");
        opcua_template::key k;
        k.name = name;
        if (x.node.IsMap()) {
            r.read_map(x, {{"status",
                            [&](const value_ref& y) {
                                r.read_map(y, {
                                    {"good", [&](const value_ref& z) { k.names[0] = r.read_nonempty_string(z); }},
                                    {"uncertain", [&](const value_ref& z) { k.names[1] = r.read_nonempty_string(z); }},
                                    {"bad", [&](const value_ref& z) { k.names[2] = r.read_nonempty_string(z); }},
                                });
                            },
                            true}});
            k.what = field::status;
        } else {
            const std::string what = r.read_choice(x, fields);
            k.what = static_cast<field>(std::find(fields.begin(), fields.end(), what) - fields.begin());
        }
        t.keys.push_back(std::move(k));
    });
    if (!t.has(field::value)) r.fail(v, "a template needs a key that holds the value (such as `value: value`)");
    return t;
}

// `value: parameters.value`: keys of nested JSON objects, joined by '.'.
std::vector<std::string> read_json_path(const reader& r, const value_ref& v) {
    const std::string text = r.read_nonempty_string(v);
    std::vector<std::string> path;
    std::size_t from = 0;
    while (true) {
        const std::size_t dot = text.find('.', from);
        path.push_back(text.substr(from, dot == std::string::npos ? std::string::npos : dot - from));
        if (path.back().empty())
            r.fail(v, "expected keys joined by '.', such as parameters.value (got '" + text + "')");
        if (dot == std::string::npos) break;
        from = dot + 1;
    }
    return path;
}

// A mapping's `unit:` goes where its template has a `unit` key: checked
// once the source's template is known (it may follow the mappings).
struct unit_ref {
    std::size_t mapping;
    YAML::Mark mark;
    std::string path;
};

void read_opcua_mappings(const reader& r, const value_ref& v, opcua_config& o, std::vector<unit_ref>& units) {
    r.read_list(v, [&](const value_ref& item, std::size_t) {
        opcua_mapping m;
        std::string prefix;
        m.at = position(r, item);
        r.read_map(item, {
            {"node", [&](const value_ref& x) { m.node = read_node_id(r, x); }},
            {"topic", [&](const value_ref& x) { m.topic = read_topic_name(r, x); }},
            {"browse", [&](const value_ref& x) { m.browse = r.read_nonempty_string(x); }},
            {"topic_prefix", [&](const value_ref& x) { prefix = read_topic_name(r, x); }},
            {"sampling_ms", [&](const value_ref& x) { m.sampling_ms = r.read_uint<std::uint32_t>(x, 0, 3'600'000); }},
            {"queue_size", [&](const value_ref& x) { m.queue_size = r.read_uint<std::uint32_t>(x, 1, 10'000); }},
            {"deadband", [&](const value_ref& x) { m.deadband = r.read_number(x, 0, 1e300); }},
            {"template", [&](const value_ref& x) { m.payload = read_opcua_template(r, x); }},
            {"unit",
             [&](const value_ref& x) {
                 m.unit = r.read_nonempty_string(x);
                 units.push_back({o.mappings.size(), x.mark, x.path});
             }},
        });
        if (!m.node.empty() && (m.topic.empty() || !m.browse.empty() || !prefix.empty()))
            r.fail(item, "a node mapping is {node, topic}");
        if (!m.browse.empty() && (prefix.empty() || !m.topic.empty()))
            r.fail(item, "a browse mapping is {browse, topic_prefix}");
        if (m.node.empty() && m.browse.empty()) r.fail(item, "expected {node, topic} or {browse, topic_prefix}");
        if (!m.browse.empty()) m.topic = std::move(prefix);
        o.mappings.push_back(std::move(m));
    });
}

void read_opcua(const reader& r, const value_ref& v, config& cfg) {
    r.read_list(v, [&](const value_ref& item, std::size_t) {
        opcua_config o;
        std::vector<unit_ref> units;
        YAML::Mark name_mark = item.mark;
        r.read_map(item, {
            {"name",
             [&](const value_ref& x) {
                 o.name = r.read_string(x);
                 name_mark = x.mark;
                 if (!valid_listener_name(o.name))
                     r.fail(x, "must be non-empty and use only letters, digits, '-', '_' and '.' (got '" + o.name +
                                   "')");
             },
             true},
            {"endpoint",
             [&](const value_ref& x) {
                 o.endpoint = r.read_nonempty_string(x);
                 if (!o.endpoint.starts_with("opc.tcp://") || o.endpoint.size() == 10)
                     r.fail(x, "expected opc.tcp://host:port (got '" + o.endpoint + "')");
             },
             true},
            {"security", [&](const value_ref& x) { read_opcua_security(r, x, o); }},
            {"user", [&](const value_ref& x) { read_opcua_user(r, x, o); }},
            {"publish_interval_ms",
             [&](const value_ref& x) { o.publish_interval_ms = r.read_uint<std::uint32_t>(x, 10, 3'600'000); }},
            {"mappings", [&](const value_ref& x) { read_opcua_mappings(r, x, o, units); }},
            {"template", [&](const value_ref& x) { o.payload = read_opcua_template(r, x); }},
            {"writes",
             [&](const value_ref& x) {
                 r.read_list(x, [&](const value_ref& w, std::size_t) {
                     opcua_write ow;
                     ow.at = position(r, w);
                     bool request_id = false;
                     r.read_map(w, {
                         {"topic", [&](const value_ref& y) { ow.topic = read_topic_name(r, y); }, true},
                         {"node", [&](const value_ref& y) { ow.node = read_node_id(r, y); }, true},
                         {"value", [&](const value_ref& y) { ow.value_path = read_json_path(r, y); }},
                         {"request_id",
                          [&](const value_ref& y) {
                              ow.request_id_path = read_json_path(r, y);
                              request_id = true;
                          }},
                         {"reply_topic", [&](const value_ref& y) { ow.reply_topic = read_topic_name(r, y); }},
                     });
                     if (request_id && !ow.command_shape())
                         r.fail(w, "request_id is read from commands in the model's shape: it needs `value:` (the "
                                   "path of the value in the command, such as parameters.value)");
                     if (ow.reply_topic == ow.topic)
                         r.fail(w, "reply_topic must differ from topic (replies would be read as commands)");
                     if (ow.reply_topic.empty()) ow.reply_topic = ow.topic + "/reply";
                     o.writes.push_back(std::move(ow));
                 });
             }},
            {"pki", [&](const value_ref& x) { o.pki = r.read_nonempty_string(x); }},
            {"trust_any", [&](const value_ref& x) { o.trust_any = r.read_bool(x); }},
            {"qos", [&](const value_ref& x) { o.qos = r.read_uint<std::uint8_t>(x, 0, 1); }},
            {"retain", [&](const value_ref& x) { o.retain = r.read_bool(x); }},
            {"identity", [&](const value_ref& x) { o.identity = r.read_nonempty_string(x); }},
        });
        if (o.mappings.empty() && o.writes.empty()) r.fail(item, "an OPC UA source needs mappings or writes");
        for (auto& m : o.mappings) {
            if (!m.payload) m.payload = o.payload;
        }
        for (const auto& u : units) {
            const auto& t = o.mappings[u.mapping].payload;
            if (!t)
                r.fail(u.mark, u.path, "a unit is published by a payload template with a key for it, such as "
                                       "template: {value: value, ts: source_ts, unit: unit}");
            if (!t->has(opcua_template::field::unit))
                r.fail(u.mark, u.path, "the payload template (" + t->at + ") has no key for the unit (add one such as `unit: unit`)");
        }
        if (o.identity.empty()) o.identity = o.name;
        for (const auto& other : cfg.opcua) {
            if (other.name == o.name)
                r.fail(name_mark, item.path + ".name", "duplicate OPC UA source name '" + o.name + "'");
        }
        cfg.opcua.push_back(std::move(o));
    });
}

// `sparkplug:` (docs/sparkplug.md). Templates and ids are checked here;
// whether the classes exist and the values fit them, once the model is
// loaded (hosts/sparkplug_check.hpp).
bool valid_id_pattern(std::string_view id) { return id == "+" || bridges::sparkplug::valid_level(id); }

std::string read_id(const reader& r, const value_ref& v) {
    std::string s = r.read_nonempty_string(v);
    if (!valid_id_pattern(s)) r.fail(v, "expected a Sparkplug id (one topic level) or \"+\" for any (got '" + s + "')");
    return s;
}

std::string read_level(const reader& r, const value_ref& v) {
    std::string s = r.read_nonempty_string(v);
    if (!bridges::sparkplug::valid_level(s)) r.fail(v, "expected one topic level (got '" + s + "')");
    return s;
}

bridges::sparkplug::device_rule read_sparkplug_mapping(const reader& r, const value_ref& item) {
    bridges::sparkplug::device_rule d;
    d.at = position(r, item);
    bool device = false;
    r.read_map(item, {
        {"group", [&](const value_ref& x) { d.group = read_id(r, x); }},
        {"edge_node", [&](const value_ref& x) { d.edge_node = read_id(r, x); }},
        {"device", [&](const value_ref& x) { d.device = read_id(r, x); device = true; }},
        {"topic",
         [&](const value_ref& x) {
             d.topic = r.read_nonempty_string(x);
             if (const auto why = bridges::sparkplug::check_template(d.topic); !why.empty()) r.fail(x, why);
         },
         true},
        {"metrics",
         [&](const value_ref& x) {
             r.read_list(x, [&](const value_ref& y, std::size_t) {
                 bridges::sparkplug::metric_rule m;
                 r.read_map(y, {
                     {"name", [&](const value_ref& z) { m.name = r.read_nonempty_string(z); }},
                     {"class", [&](const value_ref& z) { m.data_class = read_level(r, z); }, true},
                     {"subtopic",
                      [&](const value_ref& z) {
                          m.subtopic = r.read_string(z);
                          m.at_class = m.subtopic.empty();
                          if (!bridges::sparkplug::subtopic_of(m, ""))
                              r.fail(z, "expected topic levels without wildcards (got '" + m.subtopic + "')");
                      }},
                     {"unit", [&](const value_ref& z) { m.unit = r.read_nonempty_string(z); }},
                 });
                 d.metrics.push_back(std::move(m));
             });
         }},
        {"commands",
         [&](const value_ref& x) {
             r.read_list(x, [&](const value_ref& y, std::size_t) {
                 bridges::sparkplug::command_rule c;
                 r.read_map(y, {
                     {"subtopic",
                      [&](const value_ref& z) {
                          c.subtopic = r.read_nonempty_string(z);
                          bridges::sparkplug::metric_rule as_metric;
                          as_metric.subtopic = c.subtopic;
                          if (!bridges::sparkplug::subtopic_of(as_metric, ""))
                              r.fail(z, "expected topic levels without wildcards (got '" + c.subtopic + "')");
                      },
                      true},
                     {"metric", [&](const value_ref& z) { c.metric = r.read_nonempty_string(z); }, true},
                 });
                 d.commands.push_back(std::move(c));
             });
         }},
    });
    if (device && d.device.empty()) r.fail(item, "device must not be empty");
    if (d.metrics.empty() && d.commands.empty()) r.fail(item, "a mapping needs metrics or commands");
    // A command names its node and device through the topic: every id a
    // rule leaves open ("+") must be a placeholder of the topic.
    if (!d.commands.empty()) {
        const auto open = [&](const std::string& id, std::string_view placeholder) {
            return id == "+" && d.topic.find(placeholder) == std::string::npos;
        };
        if (open(d.group, "{group}") || open(d.edge_node, "{edge_node}") || open(d.device, "{device}"))
            r.fail(item, "with commands, every id given as \"+\" must be a placeholder of the topic (the command's "
                         "topic names the edge node and device it goes to)");
    }
    return d;
}

void read_sparkplug(const reader& r, const value_ref& v, config& cfg) {
    sparkplug_config s;
    using u32 = std::uint32_t;
    r.read_map(v, {
        {"name",
         [&](const value_ref& x) {
             s.name = r.read_string(x);
             if (!valid_listener_name(s.name))
                 r.fail(x, "must be non-empty and use only letters, digits, '-', '_' and '.' (got '" + s.name + "')");
         }},
        {"certificates", [&](const value_ref& x) { s.certificates = r.read_bool(x); }},
        {"max_nodes", [&](const value_ref& x) { s.max_nodes = r.read_uint<u32>(x, 1, 10'000'000); }},
        {"max_devices_per_node", [&](const value_ref& x) { s.max_devices_per_node = r.read_uint<u32>(x, 0, 1'000'000); }},
        {"max_metrics_per_birth", [&](const value_ref& x) { s.max_metrics_per_birth = r.read_uint<u32>(x, 1, 10'000'000); }},
        {"max_aliases_per_node", [&](const value_ref& x) { s.max_aliases_per_node = r.read_uint<u32>(x, 0, 100'000'000); }},
        {"max_payload_bytes", [&](const value_ref& x) { s.max_payload_bytes = r.read_uint<u32>(x, 64, 268'435'456); }},
        {"queue_messages", [&](const value_ref& x) { s.queue_messages = r.read_uint<u32>(x, 16, 100'000'000); }},
        {"offline_alert_s", [&](const value_ref& x) { s.offline_alert_s = r.read_uint<u32>(x, 0, 31'536'000); }},
        {"rebirth", [&](const value_ref& x) { s.rebirth = r.read_bool(x); }},
        {"rebirth_interval_s", [&](const value_ref& x) { s.rebirth_interval_s = r.read_uint<u32>(x, 1, 86'400); }},
        {"identity", [&](const value_ref& x) { s.identity = r.read_nonempty_string(x); }},
        {"qos", [&](const value_ref& x) { s.qos = r.read_uint<std::uint8_t>(x, 0, 1); }},
        {"retain", [&](const value_ref& x) { s.retain = r.read_bool(x); }},
        {"stale_on_death", [&](const value_ref& x) { s.stale_on_death = r.read_bool(x); }},
        {"command_class", [&](const value_ref& x) { s.command_class = read_level(r, x); }},
        {"reply_class",
         [&](const value_ref& x) {
             s.reply_class = r.read_string(x);
             if (!s.reply_class.empty() && !bridges::sparkplug::valid_level(s.reply_class))
                 r.fail(x, "expected one topic level, or \"\" for no replies (got '" + s.reply_class + "')");
         }},
        {"value", [&](const value_ref& x) { s.value_path = read_json_path(r, x); }},
        {"request_id", [&](const value_ref& x) { s.request_id_path = read_json_path(r, x); }},
        {"templates",
         [&](const value_ref& x) {
             if (!x.node.IsMap()) r.fail(x, "expected a map of class names to payload templates, got " + describe(x.node));
             r.read_entries(x, [&](const std::string& cls, const YAML::Mark& mark, const value_ref& y) {
                 if (!bridges::sparkplug::valid_level(cls)) r.fail(mark, x.path, "expected a class name (got '" + cls + "')");
                 s.templates[cls] = read_opcua_template(r, y);
             });
         }},
        {"mappings",
         [&](const value_ref& x) {
             r.read_list(x, [&](const value_ref& y, std::size_t) { s.mappings.push_back(read_sparkplug_mapping(r, y)); });
         }},
    });
    if (s.command_class == s.reply_class) r.fail(v, "command_class and reply_class must differ (replies would be read as commands)");
    if (s.identity.empty()) s.identity = s.name;
    cfg.sparkplug.push_back(std::move(s));
}

// `alerts:` (broker/ops/alerts.hpp).
void read_alerts(const reader& r, const value_ref& v, alerts_config& a) {
    using u32 = std::uint32_t;
    r.read_map(v, {
        {"enabled", [&](const value_ref& x) { a.enabled = r.read_bool(x); }},
        {"levels", [&](const value_ref& x) { a.levels = r.read_uint<u32>(x, 1, 16); }},
        {"window_s", [&](const value_ref& x) { a.window_s = r.read_uint<u32>(x, 2, 86'400); }},
        {"spike_factor", [&](const value_ref& x) { a.spike_factor = r.read_number(x, 1.01, 1e6); }},
        {"drop_factor", [&](const value_ref& x) { a.drop_factor = r.read_number(x, 1.01, 1e6); }},
        {"min_rate", [&](const value_ref& x) { a.min_rate = r.read_number(x, 0, 1e9); }},
        {"stale",
         [&](const value_ref& x) {
             r.read_list(x, [&](const value_ref& item, std::size_t) {
                 stale_rule rule;
                 r.read_map(item, {
                     {"filter",
                      [&](const value_ref& y) {
                          rule.filter = r.read_nonempty_string(y);
                          if (!ns::valid_topic_filter(rule.filter)) r.fail(y, "not a valid MQTT topic filter: '" + rule.filter + "'");
                      },
                      true},
                     {"max_silence_s", [&](const value_ref& y) { rule.max_silence_s = r.read_uint<u32>(y, 1); }, true},
                 });
                 a.stale.push_back(std::move(rule));
             });
         }},
        {"stale_factor",
         [&](const value_ref& x) {
             a.stale_factor = r.read_number(x, 0, 1e6);
             if (a.stale_factor > 0 && a.stale_factor < 1)
                 r.fail(x, "must be 0 (off) or at least 1 (a topic on time is never stale)");
         }},
        {"reconnect_loop",
         [&](const value_ref& x) {
             r.read_map(x, {
                 {"count", [&](const value_ref& y) { a.reconnect_count = r.read_uint<u32>(y, 2); }},
                 {"window_s", [&](const value_ref& y) { a.reconnect_window_s = r.read_uint<u32>(y, 1, 86'400); }},
             });
         }},
    });
}

void read_root(const reader& r, const value_ref& root, config& cfg) {
    std::vector<role_ref> role_refs;
    r.read_map(root, {
        {"listeners", [&](const value_ref& x) { read_listeners(r, x, cfg); }},
        {"limits", [&](const value_ref& x) { read_limits(r, x, cfg.limits); }},
        {"log",
         [&](const value_ref& x) {
             r.read_map(x, {{"level", [&](const value_ref& y) { cfg.log_level = r.read_choice(y, log_levels); }}});
         }},
        {"persistence",
         [&](const value_ref& x) {
             auto& p = cfg.persistence;
             r.read_map(x, {
                 {"enabled", [&](const value_ref& y) { p.enabled = r.read_bool(y); }},
                 {"path", [&](const value_ref& y) { p.path = r.read_nonempty_string(y); }},
                 {"durability",
                  [&](const value_ref& y) {
                      static constexpr std::array<std::string_view, 3> modes{"always", "batch", "none"};
                      const auto m = r.read_choice(y, modes);
                      p.durability = m == "always" ? persistence_config::mode::always
                                     : m == "none" ? persistence_config::mode::none
                                                   : persistence_config::mode::batch;
                  }},
                 {"batch_interval_ms",
                  [&](const value_ref& y) { p.batch_interval_ms = r.read_uint<std::uint32_t>(y, 1, 10'000); }},
             });
         }},
        {"auth", [&](const value_ref& x) { read_auth(r, x, cfg); }},
        {"access", [&](const value_ref& x) { read_access(r, x, cfg); }},
        {"roles", [&](const value_ref& x) { read_roles(r, x, cfg); }},
        {"users", [&](const value_ref& x) { read_users(r, x, cfg, role_refs); }},
        {"audit", [&](const value_ref& x) { read_audit(r, x, cfg); }},
        {"redirect",
         [&](const value_ref& x) {
             if (x.node.IsNull()) return;  // `redirect:` with nothing: no redirect
             redirect_config rc;
             r.read_map(x, {
                 {"server_reference",
                  [&](const value_ref& y) { rc.server_reference = r.read_nonempty_string(y); }, true},
                 {"permanent", [&](const value_ref& y) { rc.permanent = r.read_bool(y); }},
             });
             cfg.redirect = std::move(rc);
         }},
        {"sys",
         [&](const value_ref& x) {
             r.read_map(x, {{"interval", [&](const value_ref& y) { cfg.sys_interval = r.read_uint<std::uint32_t>(y, 0); }}});
         }},
        {"threads", [&](const value_ref& x) { cfg.threads = r.read_uint<unsigned>(x, 0, 256); }},
        {"shutdown",
         [&](const value_ref& x) {
             r.read_map(x, {{"grace_ms",
                             [&](const value_ref& y) { cfg.shutdown_grace_ms = r.read_uint<std::uint32_t>(y, 0); }}});
         }},
        {"bridges", [&](const value_ref& x) { read_bridges(r, x, cfg); }},
        {"opcua", [&](const value_ref& x) { read_opcua(r, x, cfg); }},
        {"sparkplug",
         [&](const value_ref& x) {
             if (!x.node.IsNull()) read_sparkplug(r, x, cfg);  // `sparkplug:` with nothing: off
         }},
        {"alerts", [&](const value_ref& x) { read_alerts(r, x, cfg.alerts); }},
        {"web",
         [&](const value_ref& x) {
             auto& w = cfg.web;
             r.read_map(x, {
                 {"enabled", [&](const value_ref& y) { w.enabled = r.read_bool(y); }},
                 {"root", [&](const value_ref& y) { w.root = r.read_nonempty_string(y); }},
                 {"max_logins", [&](const value_ref& y) { w.max_logins = r.read_uint<std::uint32_t>(y, 1, 1'000'000); }},
                 {"login_idle_s",
                  [&](const value_ref& y) { w.login_idle_s = r.read_uint<std::uint32_t>(y, 60, 7 * 86'400); }},
             });
         }},
        {"broker_id", [&](const value_ref& x) { cfg.broker_id = r.read_nonempty_string(x); }},
        {"sources_file", [&](const value_ref& x) { cfg.sources_file = r.read_nonempty_string(x); }},
        {"namespace",
         [&](const value_ref& x) {
             // `namespace:` with nothing under it: no model, as when absent.
             if (x.node.IsNull()) return;
             r.read_map(x, {{"model",
                             [&](const value_ref& y) { cfg.namespace_model = r.read_nonempty_string(y); },
                             true}});
         }},
    });
    for (const auto& ref : role_refs) {
        if (!cfg.policy.roles.contains(ref.role))
            r.fail(ref.mark, ref.path, "unknown role '" + ref.role + "' (not defined under roles:)");
    }
}

// The bridges and OPC UA sources of `sources_file` (config.hpp), after
// the config file's own. A file not written yet holds none.
void read_sources_file(config& cfg) {
    const std::string& path = cfg.sources_file;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && !ec) return;
    std::string error;
    const std::string text = ns::yaml::read_file(path, error);
    if (!error.empty()) throw config_error(cfg.source_file + ": sources_file: cannot read '" + path + "': " + error);
    const reader r(path);
    try {
        const std::optional<value_ref> root = r.load(text);
        if (!root) return;
        r.guard([&] {
            r.read_map(*root, {
                {"bridges", [&](const value_ref& x) { read_bridges(r, x, cfg); }},
                {"opcua", [&](const value_ref& x) { read_opcua(r, x, cfg); }},
            });
        });
    } catch (const ns::yaml::error& e) {
        throw config_error(e.what());
    }
}

}  // namespace

void parse_bind(const std::string& bind, const std::string& key, std::string& host, std::uint16_t& port) {
    const std::string err = split_bind(bind, host, port);
    if (!err.empty()) throw config_error(key + ": " + err);
}

config parse_config(const std::string& text, const std::string& name) {
    const reader r(name);
    config cfg;
    cfg.source_file = name;
    try {
        const std::optional<value_ref> root = r.load(text);
        if (!root) return cfg;  // empty file: all defaults
        r.guard([&] { read_root(r, *root, cfg); });
    } catch (const ns::yaml::error& e) {
        throw config_error(e.what());
    }
    // File paths (the model, TLS files, the password file, the audit log)
    // are relative to the config file, so that a deployment directory
    // (strata.yaml next to namespace/acme.yaml) works from any working
    // directory.
    const std::filesystem::path dir = std::filesystem::path(name).parent_path();
    const auto resolve = [&dir](std::string& file) {
        const std::filesystem::path p(file);
        if (!file.empty() && p.is_relative() && !dir.empty()) file = (dir / p).lexically_normal().string();
    };
    if (!cfg.sources_file.empty()) {
        resolve(cfg.sources_file);
        read_sources_file(cfg);
    }
    resolve(cfg.namespace_model);
    resolve(cfg.auth.password_file);
    resolve(cfg.audit.file);
    resolve(cfg.web.root);
    for (auto& b : cfg.bridges) {
        resolve(b.ca);
        resolve(b.cert);
        resolve(b.key);
    }
    for (auto& o : cfg.opcua) {
        if (o.pki.empty()) o.pki = (std::filesystem::path(cfg.persistence.path) / "opcua-pki").string();
        else resolve(o.pki);
    }
    for (auto& l : cfg.listeners) {
        if (!l.tls) continue;
        resolve(l.tls->cert);
        resolve(l.tls->key);
        resolve(l.tls->client_ca);
    }
    return cfg;
}

config load_config(const std::string& path) {
    std::string error;
    const std::string text = ns::yaml::read_file(path, error);
    if (!error.empty()) throw config_error("cannot read config file '" + path + "': " + error);
    return parse_config(text, path);
}

}  // namespace strata::broker
