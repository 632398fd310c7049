// Roles bound to the namespace: who may subscribe, publish, command and
// administer where.
//
// A role is a list of grants `{allow|deny: VERB, on: FILTER}`. FILTER is an
// MQTT topic filter that may contain `{user}` and `{client_id}`, replaced
// per session. `users:` maps identities (password users, certificate
// identities, and `anonymous`) to roles. Rules:
//   - deny wins over allow; what no allow grants is refused;
//   - `command` is publishing to a command topic (a `cmd` class of the
//     namespace model, or a configured command subtree): it needs a
//     `command` grant, a `publish` grant is not enough; `deny publish`
//     also refuses commands;
//   - a subscription is granted in full when an allow grant covers every
//     topic it can match and no deny grant overlaps it; it is refused when
//     a deny grant covers it or no allow grant overlaps it; otherwise it is
//     partial: it is refused or accepted and filtered per message
//     (`auth.wide_subscriptions`), so that nothing outside the grants is
//     ever delivered;
//   - `$` topics are only reached by grants that name their first level
//     (`$SYS/#` needs its own grant; `#` does not reach it).
// A placeholder whose value could widen the filter (it contains '/', '+'
// or '#', or is empty as for anonymous clients) drops an allow grant and
// turns a deny grant into a deny of everything from that level down.
// When no roles are configured at all, there is no policy: everyone may do
// everything (compile() returns null).
//
// Thread-safety: policy and grants are immutable after construction; const
// members are safe to call concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace strata::auth {

enum class verb : std::uint8_t { subscribe, publish, command, admin };
[[nodiscard]] std::string_view to_string(verb v) noexcept;

struct grant {
    bool deny = false;
    verb what = verb::subscribe;
    std::string filter;
};

struct policy_config {
    std::map<std::string, std::vector<grant>> roles;             // role name -> grants
    std::map<std::string, std::vector<std::string>> users;       // identity -> role names
    std::vector<std::string> command_subtrees;                   // filters whose topics are commands
};

// The identity `users:` uses for clients without credentials.
inline constexpr std::string_view anonymous_identity = "anonymous";

enum class subscribe_verdict : std::uint8_t { full, partial, refused };

// One session's grants, placeholders substituted.
class grants {
public:
    grants(std::vector<std::string> roles, const std::vector<grant>& all, std::string_view user,
           std::string_view client_id);

    [[nodiscard]] bool may_publish(std::string_view topic, bool command) const noexcept;
    [[nodiscard]] subscribe_verdict may_subscribe(std::string_view filter) const noexcept;
    // May a message on `topic` be delivered to this session?
    [[nodiscard]] bool may_receive(std::string_view topic) const noexcept;
    [[nodiscard]] bool may_admin(std::string_view resource) const noexcept;
    [[nodiscard]] const std::vector<std::string>& roles() const noexcept { return roles_; }

private:
    struct filters {
        std::vector<std::string> allow, deny;
    };
    [[nodiscard]] bool allowed(const filters& f, std::string_view topic) const noexcept;

    std::vector<std::string> roles_;
    std::array<filters, 4> by_verb_;
};

// The last few topics one connection was allowed to publish to (plain
// publishes, not commands): a device publishes on a handful of topics over
// and over, and a hit costs a string comparison instead of a walk over the
// grants (and the model). Not thread-safe: one per connection, used on its
// thread.
class decision_cache {
public:
    static constexpr std::size_t size = 4;
    [[nodiscard]] bool contains(std::string_view topic) const noexcept {
        for (const auto& e : entries_)
            if (e.valid && e.topic == topic) return true;
        return false;
    }
    void put(std::string_view topic) {
        auto& e = entries_[next_++ % size];
        e.topic.assign(topic);
        e.valid = true;
    }
    void clear() noexcept {
        for (auto& e : entries_) e.valid = false;
    }

private:
    struct entry {
        std::string topic;
        bool valid = false;
    };
    std::array<entry, size> entries_{};
    std::size_t next_ = 0;
};

class policy_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class policy {
public:
    policy() = default;
    // Throws policy_error when a user refers to an unknown role.
    explicit policy(policy_config cfg);

    // Roles are configured: access is decided by them.
    [[nodiscard]] bool active() const noexcept { return !cfg_.roles.empty(); }
    // The grants of `identity` (empty: anonymous) for `client_id`; null
    // when no policy is active.
    [[nodiscard]] std::shared_ptr<const grants> compile(std::string_view identity, std::string_view client_id) const;
    // The role names of `identity` (empty: anonymous).
    [[nodiscard]] std::vector<std::string> roles_of(std::string_view identity) const;
    [[nodiscard]] bool is_command_subtree(std::string_view topic) const noexcept;

private:
    policy_config cfg_;
};

// True when some topic matches both filters.
[[nodiscard]] bool filters_intersect(std::string_view a, std::string_view b) noexcept;

}  // namespace strata::auth
