// Access rules that apply to every client: which topic filters may be
// subscribed to and which topics may be published to.
//
// Semantics: rules are matched against the request; a matching `deny` wins
// over any `allow`. When at least one `allow` rule exists for an action,
// that action is permitted only where an allow rule matches.
// A publish matches a rule when the rule's filter matches the topic. A
// subscription matches a rule when every topic the subscription could
// receive is also matched by the rule's filter (the rule covers it): a
// rule `deny subscribe test/nosubscribe` refuses exactly that filter and
// narrower ones, not `#`.
//
// Thread-safety: immutable after construction; const members are safe to
// call concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::auth {

enum class action : std::uint8_t { subscribe, publish };

struct rule {
    bool deny = true;
    action what = action::subscribe;
    std::string filter;
};

class access_policy {
public:
    access_policy() = default;
    explicit access_policy(std::vector<rule> rules);

    [[nodiscard]] bool may_subscribe(std::string_view filter) const;
    [[nodiscard]] bool may_publish(std::string_view topic) const;
    [[nodiscard]] bool empty() const noexcept { return rules_.empty(); }

private:
    std::vector<rule> rules_;
    bool has_allow_subscribe_ = false;
    bool has_allow_publish_ = false;
};

// True when every topic matched by `inner` is matched by `outer` (both
// valid topic filters).
[[nodiscard]] bool filter_covers(std::string_view outer, std::string_view inner) noexcept;

}  // namespace strata::auth
