#include "bridges/sparkplug/mapping.hpp"

#include <array>

namespace strata::bridges::sparkplug {
namespace {

constexpr std::array<std::string_view, 3> placeholders{"{group}", "{edge_node}", "{device}"};

bool valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        // Continuation bytes after the lead byte, and the lead byte's range.
        std::size_t n = 0;
        if (c < 0x80) n = 0;
        else if (c >= 0xc2 && c <= 0xdf) n = 1;
        else if (c >= 0xe0 && c <= 0xef) n = 2;
        else if (c >= 0xf0 && c <= 0xf4) n = 3;
        else return false;
        if (s.size() - i <= n) return false;
        for (std::size_t k = 1; k <= n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
        const auto c1 = n ? static_cast<unsigned char>(s[i + 1]) : 0;
        // Overlong forms, UTF-16 surrogates, beyond U+10FFFF.
        if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0) || (c == 0xf0 && c1 < 0x90) ||
            (c == 0xf4 && c1 >= 0x90))
            return false;
        i += n + 1;
    }
    return true;
}

// The levels of a topic (or template), split at '/'.
std::vector<std::string_view> levels(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t from = 0;
    while (true) {
        const auto slash = s.find('/', from);
        out.push_back(s.substr(from, slash == std::string_view::npos ? std::string_view::npos : slash - from));
        if (slash == std::string_view::npos) return out;
        from = slash + 1;
    }
}

int placeholder_index(std::string_view level) noexcept {
    for (std::size_t i = 0; i < placeholders.size(); ++i)
        if (placeholders[i] == level) return static_cast<int>(i);
    return -1;
}

}  // namespace

bool id_matches(std::string_view pattern, std::string_view id) noexcept { return pattern == "+" || pattern == id; }

bool name_matches(std::string_view pattern, std::string_view name) noexcept {
    if (!pattern.empty() && pattern.back() == '*') return name.starts_with(pattern.substr(0, pattern.size() - 1));
    return pattern == name;
}

const device_rule* find_rule(const std::vector<device_rule>& rules, std::string_view group, std::string_view edge_node,
                             std::string_view device) noexcept {
    for (const auto& r : rules) {
        if (!id_matches(r.group, group) || !id_matches(r.edge_node, edge_node)) continue;
        if (device.empty() ? r.device.empty() : (!r.device.empty() && id_matches(r.device, device))) return &r;
    }
    return nullptr;
}

const metric_rule* find_metric(const device_rule& r, std::string_view name) noexcept {
    for (const auto& m : r.metrics)
        if (name_matches(m.name, name)) return &m;
    return nullptr;
}

bool valid_level(std::string_view level) noexcept {
    if (level.empty()) return false;
    for (char c : level)
        if (c == '/' || c == '+' || c == '#' || c == '\0') return false;
    return valid_utf8(level);
}

std::string check_template(std::string_view tmpl) {
    if (tmpl.empty()) return "the topic template is empty";
    if (tmpl.front() == '$') return "the topic template must not start with '$'";
    for (const auto level : levels(tmpl)) {
        if (placeholder_index(level) >= 0) continue;
        if (level.find('{') != std::string_view::npos || level.find('}') != std::string_view::npos)
            return "'" + std::string(level) + "': a placeholder ({group}, {edge_node}, {device}) fills a whole level";
        if (!valid_level(level)) return "'" + std::string(level) + "' is not a valid topic level";
    }
    return {};
}

std::optional<std::string> expand(std::string_view tmpl, std::string_view group, std::string_view edge_node,
                                  std::string_view device) {
    const std::array<std::string_view, 3> values{group, edge_node, device};
    std::string out;
    out.reserve(tmpl.size() + group.size() + edge_node.size() + device.size());
    bool first = true;
    for (const auto level : levels(tmpl)) {
        if (!first) out.push_back('/');
        first = false;
        const int i = placeholder_index(level);
        if (i < 0) {
            out.append(level);
            continue;
        }
        const auto v = values[static_cast<std::size_t>(i)];
        if (!valid_level(v)) return std::nullopt;
        out.append(v);
    }
    return out;
}

std::string template_filter(std::string_view tmpl) {
    std::string out;
    bool first = true;
    for (const auto level : levels(tmpl)) {
        if (!first) out.push_back('/');
        first = false;
        out.append(placeholder_index(level) >= 0 ? std::string_view("+") : level);
    }
    return out;
}

std::optional<ids> match_template(std::string_view tmpl, std::string_view prefix) {
    const auto t = levels(tmpl);
    const auto p = levels(prefix);
    if (t.size() != p.size()) return std::nullopt;
    ids out;
    std::array<std::string*, 3> slots{&out.group, &out.edge_node, &out.device};
    for (std::size_t i = 0; i < t.size(); ++i) {
        const int k = placeholder_index(t[i]);
        if (k < 0) {
            if (t[i] != p[i]) return std::nullopt;
            continue;
        }
        if (!valid_level(p[i])) return std::nullopt;
        *slots[static_cast<std::size_t>(k)] = std::string(p[i]);
    }
    return out;
}

std::optional<std::string> metric_topic(std::string_view prefix, const metric_rule& rule, std::string_view name) {
    const auto sub = subtopic_of(rule, name);
    if (!sub) return std::nullopt;
    std::string out;
    out.reserve(prefix.size() + rule.data_class.size() + sub->size() + 2);
    out.append(prefix).append("/").append(rule.data_class);
    if (!sub->empty()) out.append("/").append(*sub);
    return out;
}

std::optional<std::string> subtopic_of(const metric_rule& rule, std::string_view name) {
    if (rule.at_class) return std::string();
    std::string_view sub = rule.subtopic;
    if (sub.empty()) {
        sub = name;
        if (!rule.name.empty() && rule.name.back() == '*') sub.remove_prefix(rule.name.size() - 1);
    }
    for (const auto level : levels(sub))
        if (!valid_level(level)) return std::nullopt;
    return std::string(sub);
}

}  // namespace strata::bridges::sparkplug
