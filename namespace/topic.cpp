// Topic rules (MQTT 3.1.1 section 4.7, MQTT 5.0 section 4.7 and 4.8.2).
//
// Levels are the substrings between '/' separators; "a//b" has three levels,
// the middle one empty, and "/a" starts with an empty level. Empty levels are
// ordinary levels: they must match exactly and '+' matches them.
//
// The '$' rule (4.7.2): a topic whose first character is '$' (e.g. "$SYS/...")
// is not matched by a filter whose first level is '+' or '#'. "$SYS/#" or
// "$SYS/+/x" still match, because their first level is literal.
//
// Lengths: the MQTT string length prefix is 16 bits, hence 65535 bytes at
// most. UTF-8 well-formedness is the codec's job (it decodes every MQTT
// string); here we only reject U+0000, which the spec forbids in topics and
// which would silently truncate them in C APIs and logs.
#include "namespace/topic.hpp"

#include <cstddef>
#include <vector>

namespace strata::ns {
namespace {

constexpr std::size_t max_topic_bytes = 65535;

// Returns the level that starts at `pos` and moves `pos` past its separator.
// `more` becomes false when the returned level was the last one.
std::string_view take_level(std::string_view s, std::size_t& pos, bool& more) noexcept {
    const std::size_t slash = s.find('/', pos);
    if (slash == std::string_view::npos) {
        std::string_view level = s.substr(pos);
        pos = s.size();
        more = false;
        return level;
    }
    std::string_view level = s.substr(pos, slash - pos);
    pos = slash + 1;
    return level;
}

}  // namespace

bool valid_topic_name(std::string_view topic) noexcept {
    if (topic.empty() || topic.size() > max_topic_bytes) return false;
    return topic.find_first_of(std::string_view("+#\0", 3)) == std::string_view::npos;
}

bool valid_topic_filter(std::string_view filter) noexcept {
    if (filter.empty() || filter.size() > max_topic_bytes) return false;
    const std::size_t n = filter.size();
    for (std::size_t i = 0; i < n; ++i) {
        const char c = filter[i];
        if (c == '\0') return false;
        if (c != '+' && c != '#') continue;
        // A wildcard must be the whole level: preceded by start or '/',
        // followed by end or '/'.
        const bool starts_level = i == 0 || filter[i - 1] == '/';
        const bool ends_level = i + 1 == n || filter[i + 1] == '/';
        if (!starts_level || !ends_level) return false;
        if (c == '#' && i + 1 != n) return false;  // '#' only as the last level
    }
    return true;
}

bool has_wildcard(std::string_view filter) noexcept {
    return filter.find_first_of("+#") != std::string_view::npos;
}

share_parse parse_shared(std::string_view filter, shared_filter& out) noexcept {
    constexpr std::string_view prefix = "$share/";
    // "$share" alone, or "$sharefoo/...", is an ordinary filter on a '$' topic.
    if (filter.substr(0, prefix.size()) != prefix) return share_parse::not_shared;
    const std::string_view rest = filter.substr(prefix.size());
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return share_parse::invalid;  // no filter part
    const std::string_view group = rest.substr(0, slash);
    const std::string_view inner = rest.substr(slash + 1);
    if (group.empty() || group.find_first_of(std::string_view("+#\0", 3)) != std::string_view::npos)
        return share_parse::invalid;
    if (!valid_topic_filter(inner)) return share_parse::invalid;
    out.group = group;
    out.filter = inner;
    return share_parse::shared;
}

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
    if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
        (filter.front() == '+' || filter.front() == '#'))
        return false;

    std::size_t fpos = 0;
    std::size_t tpos = 0;
    bool filter_more = true;
    bool topic_more = true;
    while (filter_more) {
        const std::string_view f = take_level(filter, fpos, filter_more);
        // '#' also matches the parent level: "a/#" matches "a".
        if (f == "#") return true;
        if (!topic_more) return false;
        const std::string_view t = take_level(topic, tpos, topic_more);
        if (f != "+" && f != t) return false;
    }
    return !topic_more;
}

std::optional<std::string> filter_intersection(std::string_view a, std::string_view b) {
    const auto wild_first = [](std::string_view f) { return !f.empty() && (f.front() == '+' || f.front() == '#'); };
    const auto dollar = [](std::string_view f) { return !f.empty() && f.front() == '$'; };
    if ((dollar(a) && wild_first(b)) || (dollar(b) && wild_first(a))) return std::nullopt;
    const auto split = [](std::string_view f) {
        std::vector<std::string_view> levels;
        std::size_t pos = 0;
        bool more = true;
        while (more) levels.push_back(take_level(f, pos, more));
        return levels;
    };
    const auto la = split(a), lb = split(b);
    std::string out;
    std::size_t added = 0;
    const auto add = [&](std::string_view level) {
        if (added++ != 0) out += '/';
        out += level;
    };
    // The rest of one filter from level i on, where the other has '#'.
    const auto rest = [&](const std::vector<std::string_view>& l, std::size_t i) {
        for (; i < l.size(); ++i) add(l[i]);
        return out;
    };
    for (std::size_t i = 0;; ++i) {
        const bool end_a = i == la.size(), end_b = i == lb.size();
        if (end_a && end_b) return out;
        // One ended: only a last '#' in the other matches its parent level.
        if (end_a || end_b) {
            const auto& l = end_a ? lb : la;
            if (l[i] == "#") return out;
            return std::nullopt;
        }
        if (la[i] == "#") return rest(lb, i);
        if (lb[i] == "#") return rest(la, i);
        if (la[i] == "+") add(lb[i]);
        else if (lb[i] == "+" || la[i] == lb[i]) add(la[i]);
        else return std::nullopt;
    }
}

}  // namespace strata::ns
