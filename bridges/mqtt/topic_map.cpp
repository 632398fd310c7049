#include "bridges/mqtt/topic_map.hpp"

#include "namespace/topic.hpp"

namespace strata::bridges::mqtt {
namespace {

// Splits a filter into its literal leading levels (with their trailing
// '/') and the rest, which starts at the first wildcard level. A filter
// without wildcards is all tail: it maps as a whole.
std::pair<std::string, std::string> split(const std::string& filter) {
    std::size_t level = 0;
    while (level < filter.size()) {
        const std::size_t end = filter.find('/', level);
        const std::string_view name =
            std::string_view(filter).substr(level, end == std::string::npos ? std::string::npos : end - level);
        if (name == "+" || name == "#") return {filter.substr(0, level), filter.substr(level)};
        if (end == std::string::npos) break;
        level = end + 1;
    }
    return {std::string(), filter};
}

}  // namespace

topic_map::topic_map(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {
    for (const std::string* f : {&from_, &to_}) {
        if (!ns::valid_topic_filter(*f)) throw std::invalid_argument("'" + *f + "' is not a valid topic filter");
        if (f->starts_with("$share/")) throw std::invalid_argument("'" + *f + "': a bridge cannot use a shared subscription");
    }
    auto [fp, ft] = split(from_);
    auto [tp, tt] = split(to_);
    if (!ns::has_wildcard(from_)) {
        // Two topic names: the one maps to the other.
        if (ns::has_wildcard(to_))
            throw std::invalid_argument("'" + from_ + "' has no wildcard but '" + to_ + "' has: they cannot map");
        from_prefix_ = from_;
        to_prefix_ = to_;
        return;
    }
    if (ft != tt)
        throw std::invalid_argument("'" + from_ + "' and '" + to_ + "' must end in the same wildcard levels ('" + ft +
                                    "' against '" + tt + "'); only the literal levels before them may differ");
    from_prefix_ = std::move(fp);
    to_prefix_ = std::move(tp);
}

bool topic_map::matches(std::string_view topic) const noexcept { return ns::topic_matches(from_, topic); }

std::string topic_map::map(std::string_view topic) const {
    if (!ns::has_wildcard(from_)) return to_;
    if (topic.size() < from_prefix_.size()) {
        // "a/#" matches "a" itself: the parent level of the other prefix.
        std::string out = to_prefix_;
        if (!out.empty()) out.pop_back();
        return out;
    }
    std::string out = to_prefix_;
    out.append(topic.substr(from_prefix_.size()));
    return out;
}

}  // namespace strata::bridges::mqtt
