// Rules that carry Sparkplug metrics into the namespace (config
// `sparkplug: mappings:`, docs/sparkplug.md), and commands back.
//
// A device rule says which edge nodes and devices it covers (a group, an
// edge node and a device id, each exact or "+" for any; no device: the
// node's own metrics) and where they go: a topic template whose levels may
// be placeholders, "{group}", "{edge_node}" or "{device}", each replaced by
// that id (acme/dresden/press-shop/{edge_node}/{device}). A metric rule
// says which metrics (an exact name, a prefix "Motor/*", or "*") go to
// which data class and subtopic: TOPIC/CLASS/SUBTOPIC, the subtopic fixed
// or the metric's name (its '/' separating levels). A command rule makes
// TOPIC/CMD_CLASS/SUBTOPIC a command that writes one metric.
//
// Ids and names come from the network: a placeholder's id or a name that
// is not a valid topic level (empty, '+', '#', NUL, not UTF-8) maps to
// nothing.
//
// Thread-safety: pure functions on values.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::bridges::sparkplug {

struct metric_rule {
    bool operator==(const metric_rule&) const = default;
    std::string name = "*";   // an exact metric name, a prefix ending in '*' ("Motor/*"), or "*"
    std::string data_class;   // the model's class (telemetry, state, ...)
    std::string subtopic;     // empty: the metric's name (with its prefix, when `name` is one, removed)
    bool at_class = false;    // `subtopic: ""`: the value goes on TOPIC/CLASS itself (a machine's state)
    std::string unit;         // published where the class's template has a unit key
};

struct command_rule {
    bool operator==(const command_rule&) const = default;
    std::string subtopic;  // TOPIC/<command class>/SUBTOPIC
    std::string metric;    // the metric an NCMD/DCMD writes
};

struct device_rule {
    bool operator==(const device_rule&) const = default;
    std::string group = "+";
    std::string edge_node = "+";
    std::string device;       // "+", an id, or empty: the edge node's own metrics
    std::string topic;        // the template
    std::vector<metric_rule> metrics;
    std::vector<command_rule> commands;
    std::string at;           // where it was configured ("file:line: sparkplug.mappings[0]"), for errors
};

// Whether an id matches a rule's field ("+": any).
[[nodiscard]] bool id_matches(std::string_view pattern, std::string_view id) noexcept;
// Whether a metric name matches a rule's name ("*", "Prefix*", exact).
[[nodiscard]] bool name_matches(std::string_view pattern, std::string_view name) noexcept;
// The first rule for this node (device empty) or device; null when none.
[[nodiscard]] const device_rule* find_rule(const std::vector<device_rule>& rules, std::string_view group,
                                           std::string_view edge_node, std::string_view device) noexcept;
// The first metric rule of `r` for `name`; null when none.
[[nodiscard]] const metric_rule* find_metric(const device_rule& r, std::string_view name) noexcept;

// Whether `level` may be a topic level: not empty, no '/', '+', '#' or
// NUL, valid UTF-8, not starting with '$' when `first`.
[[nodiscard]] bool valid_level(std::string_view level) noexcept;

// Why `tmpl` is not a usable topic template (empty: it is): placeholders
// fill whole levels, known placeholders only, no wildcards.
[[nodiscard]] std::string check_template(std::string_view tmpl);
// The template with its placeholders replaced; none when an id is not a
// valid level.
[[nodiscard]] std::optional<std::string> expand(std::string_view tmpl, std::string_view group,
                                                std::string_view edge_node, std::string_view device);
// The template as a subscription filter: each placeholder a '+'.
[[nodiscard]] std::string template_filter(std::string_view tmpl);
// The ids a topic prefix gives the template's placeholders (inverse of
// expand): `prefix` must match the template level by level.
struct ids {
    std::string group, edge_node, device;
};
[[nodiscard]] std::optional<ids> match_template(std::string_view tmpl, std::string_view prefix);

// The subtopic of metric `name` under `rule`: the rule's own, or the name
// without the rule's prefix; each '/'-separated part a valid level. None
// when the name gives no valid topic. Empty for a rule `at_class`.
[[nodiscard]] std::optional<std::string> subtopic_of(const metric_rule& rule, std::string_view name);
// TOPIC/CLASS[/SUBTOPIC] of metric `name` under `rule`, its device's topic `prefix`.
[[nodiscard]] std::optional<std::string> metric_topic(std::string_view prefix, const metric_rule& rule,
                                                      std::string_view name);

}  // namespace strata::bridges::sparkplug
