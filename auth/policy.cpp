#include "auth/policy.hpp"

#include "auth/access.hpp"
#include "namespace/topic.hpp"

#include <algorithm>

namespace strata::auth {

namespace {

std::string_view next_level(std::string_view& rest, bool& more) {
    const auto slash = rest.find('/');
    const std::string_view level = rest.substr(0, slash);
    more = slash != std::string_view::npos;
    rest = more ? rest.substr(slash + 1) : std::string_view{};
    return level;
}

bool widens(std::string_view value) {
    return value.empty() || value.find_first_of("/+#") != std::string_view::npos;
}

// Substitutes {user} and {client_id}. Returns false when a value would
// widen the filter; then `out` is the filter cut at the first level holding
// a placeholder, with '#' in its place (what a deny grant becomes).
bool substitute(std::string_view filter, std::string_view user, std::string_view client_id, std::string& out) {
    out.clear();
    std::size_t level_start = 0;
    for (std::size_t i = 0; i < filter.size();) {
        if (filter[i] == '/') level_start = out.size() + 1;
        std::string_view value;
        std::size_t skip = 0;
        if (filter.substr(i).starts_with("{user}")) {
            value = user;
            skip = 6;
        } else if (filter.substr(i).starts_with("{client_id}")) {
            value = client_id;
            skip = 11;
        }
        if (skip == 0) {
            out += filter[i++];
            continue;
        }
        if (widens(value)) {
            out.resize(level_start);
            out += '#';
            return false;
        }
        out += value;
        i += skip;
    }
    return true;
}

}  // namespace

std::string_view to_string(verb v) noexcept {
    switch (v) {
    case verb::subscribe: return "subscribe";
    case verb::publish: return "publish";
    case verb::command: return "command";
    case verb::admin: return "admin";
    }
    return "?";
}

bool filters_intersect(std::string_view a, std::string_view b) noexcept {
    // A leading wildcard never matches a '$' topic.
    const auto dollar = [](std::string_view f) { return !f.empty() && f.front() == '$'; };
    const auto wild = [](std::string_view f) { return !f.empty() && (f.front() == '+' || f.front() == '#'); };
    if ((dollar(a) && wild(b)) || (dollar(b) && wild(a))) return false;
    bool more_a = true, more_b = true;
    while (true) {
        if (!more_a || !more_b) {
            if (!more_a && !more_b) return true;
            // One ended: only a '#' next in the other still matches (a/# matches a).
            std::string_view rest = more_a ? a : b;
            bool more = false;
            return next_level(rest, more) == "#";
        }
        const auto la = next_level(a, more_a);
        const auto lb = next_level(b, more_b);
        if (la == "#" || lb == "#") return true;
        if (la == "+" || lb == "+" || la == lb) continue;
        return false;
    }
}

grants::grants(std::vector<std::string> roles, const std::vector<grant>& all, std::string_view user,
               std::string_view client_id)
    : roles_(std::move(roles)) {
    std::string f;
    for (const auto& g : all) {
        const bool safe = substitute(g.filter, user, client_id, f);
        auto& into = by_verb_[static_cast<std::size_t>(g.what)];
        if (g.deny) {
            into.deny.push_back(f);
        } else if (safe) {
            into.allow.push_back(f);
        }
    }
}

bool grants::allowed(const filters& f, std::string_view topic) const noexcept {
    bool ok = false;
    for (const auto& a : f.allow) {
        if (ns::topic_matches(a, topic)) {
            ok = true;
            break;
        }
    }
    if (!ok) return false;
    for (const auto& d : f.deny)
        if (ns::topic_matches(d, topic)) return false;
    return true;
}

bool grants::may_publish(std::string_view topic, bool command) const noexcept {
    const auto& pub = by_verb_[static_cast<std::size_t>(verb::publish)];
    if (!command) return allowed(pub, topic);
    for (const auto& d : pub.deny)
        if (ns::topic_matches(d, topic)) return false;
    return allowed(by_verb_[static_cast<std::size_t>(verb::command)], topic);
}

bool grants::may_receive(std::string_view topic) const noexcept {
    return allowed(by_verb_[static_cast<std::size_t>(verb::subscribe)], topic);
}

bool grants::may_admin(std::string_view resource) const noexcept {
    return allowed(by_verb_[static_cast<std::size_t>(verb::admin)], resource);
}

subscribe_verdict grants::may_subscribe(std::string_view filter) const noexcept {
    const auto& f = by_verb_[static_cast<std::size_t>(verb::subscribe)];
    bool overlapping_deny = false;
    for (const auto& d : f.deny) {
        if (filter_covers(d, filter)) return subscribe_verdict::refused;
        overlapping_deny = overlapping_deny || filters_intersect(d, filter);
    }
    bool overlapping_allow = false;
    for (const auto& a : f.allow) {
        if (!overlapping_deny && filter_covers(a, filter)) return subscribe_verdict::full;
        overlapping_allow = overlapping_allow || filters_intersect(a, filter);
    }
    return overlapping_allow ? subscribe_verdict::partial : subscribe_verdict::refused;
}

policy::policy(policy_config cfg) : cfg_(std::move(cfg)) {
    for (const auto& [user, roles] : cfg_.users) {
        for (const auto& r : roles) {
            if (!cfg_.roles.contains(r))
                throw policy_error("users." + user + ": unknown role '" + r + "'");
        }
    }
}

std::vector<std::string> policy::roles_of(std::string_view identity) const {
    const auto it = cfg_.users.find(std::string(identity.empty() ? anonymous_identity : identity));
    return it == cfg_.users.end() ? std::vector<std::string>{} : it->second;
}

std::shared_ptr<const grants> policy::compile(std::string_view identity, std::string_view client_id) const {
    if (!active()) return nullptr;
    auto roles = roles_of(identity);
    std::vector<grant> all;
    for (const auto& r : roles) {
        const auto& gs = cfg_.roles.at(r);
        all.insert(all.end(), gs.begin(), gs.end());
    }
    return std::make_shared<const grants>(std::move(roles), all, identity, client_id);
}

bool policy::is_command_subtree(std::string_view topic) const noexcept {
    return std::any_of(cfg_.command_subtrees.begin(), cfg_.command_subtrees.end(),
                       [&](const std::string& f) { return ns::topic_matches(f, topic); });
}

}  // namespace strata::auth
