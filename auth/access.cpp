#include "auth/access.hpp"

#include "namespace/topic.hpp"

namespace strata::auth {

namespace {

// Splits off the next level of a topic or filter.
std::string_view next_level(std::string_view& rest, bool& more) {
    const auto slash = rest.find('/');
    std::string_view level = rest.substr(0, slash);
    more = slash != std::string_view::npos;
    rest = more ? rest.substr(slash + 1) : std::string_view{};
    return level;
}

}  // namespace

bool filter_covers(std::string_view outer, std::string_view inner) noexcept {
    // '$' topics are only reachable through filters that name the '$' level.
    const bool inner_dollar = !inner.empty() && inner.front() == '$';
    const bool outer_wild_first = !outer.empty() && (outer.front() == '+' || outer.front() == '#');
    if (inner_dollar && outer_wild_first) return false;

    bool more_outer = true, more_inner = true;
    while (true) {
        if (!more_outer) return !more_inner;  // both ended together
        const auto o = next_level(outer, more_outer);
        if (o == "#") return true;            // covers the rest, including the parent
        if (!more_inner) return false;        // inner ended; outer still demands levels
        const auto i = next_level(inner, more_inner);
        if (i == "#") return false;           // inner wants anything below; outer is narrower
        if (o == "+") continue;               // one level, whatever inner has there
        if (i == "+" || o != i) return false;
    }
}

access_policy::access_policy(std::vector<rule> rules) : rules_(std::move(rules)) {
    for (const auto& r : rules_) {
        if (r.deny) continue;
        (r.what == action::subscribe ? has_allow_subscribe_ : has_allow_publish_) = true;
    }
}

bool access_policy::may_subscribe(std::string_view filter) const {
    bool allowed = !has_allow_subscribe_;
    for (const auto& r : rules_) {
        if (r.what != action::subscribe || !filter_covers(r.filter, filter)) continue;
        if (r.deny) return false;
        allowed = true;
    }
    return allowed;
}

bool access_policy::may_publish(std::string_view topic) const {
    bool allowed = !has_allow_publish_;
    for (const auto& r : rules_) {
        if (r.what != action::publish || !ns::topic_matches(r.filter, topic)) continue;
        if (r.deny) return false;
        allowed = true;
    }
    return allowed;
}

}  // namespace strata::auth
