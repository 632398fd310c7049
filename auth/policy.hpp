// Roles bound to the namespace: who may subscribe, publish, command and
// administer where.
//
// A role is a list of grants `{allow|deny: VERB, on: FILTER, where: LEVELS,
// class: CLASSES}` with at least one of `on`, `where`, `class`; a grant with
// several applies where all of them hold.
//   - FILTER is an MQTT topic filter that may contain `{user}` and
//     `{client_id}`, replaced per session.
//   - LEVELS names levels of the namespace model and the names they must
//     have there: `{site: dresden, line: [line-1, line-2], equipment:
//     "safety-gate-*"}` (`*` stands for any run of characters within the
//     level; placeholders work here too). CLASSES is a data class or a list
//     of them (`oee`, `[telemetry, state]`). These are read from the topic
//     by the model, so an optional level can never be skipped around:
//     `{equipment: "safety-gate-*"}` holds for a gate under a cell and for
//     one without. A grant naming levels or classes is compiled against the
//     model at start and on every reload; an unknown level or class is an
//     error (policy_error, with where the grant is written).
//   - An allow with LEVELS/CLASSES applies only to a topic the model reads
//     completely (never to a free subtree or a topic outside the model). A
//     deny applies to a topic the model reads completely and matches, and,
//     to be safe, to a topic the model cannot read completely when every
//     level it names was either matched or never reached (a command to
//     `.../safety-gate-1/bogus` is refused like one to `.../safety-gate-1/cmd`).
// Rules:
//   - deny wins over allow; what no allow grants is refused;
//   - `command` is publishing to a command topic (a `cmd` class of the
//     namespace model, or a configured command subtree): it needs a
//     `command` grant, a `publish` grant is not enough; `deny publish`
//     also refuses commands;
//   - a subscription is granted in full when a filter grant covers every
//     topic it can match and no deny grant overlaps it; it is `checked` when
//     a LEVELS/CLASSES grant covers every reading of the filter the model
//     can make and no deny overlaps it (accepted, and every message checked
//     before delivery: topics outside the model never reach it); it is
//     refused when a deny grant covers it or no allow grant overlaps it;
//     otherwise it is partial: it is refused or accepted and filtered per
//     message (`auth.wide_subscriptions`), so that nothing outside the
//     grants is ever delivered;
//   - `$` topics are only reached by grants that name their first level
//     (`$SYS/#` needs its own grant; `#` does not reach it).
// A placeholder whose value could widen the filter (it contains '/', '+'
// or '#', or is empty as for anonymous clients; in LEVELS also '*') drops
// an allow grant and turns a deny grant into a deny of everything from that
// level down (in LEVELS: of every name of that level).
// When no roles are configured at all, there is no policy: everyone may do
// everything (compile() returns null).
//
// Cost: grants without LEVELS/CLASSES are topic filter matches, as before.
// A LEVELS/CLASSES grant needs the topic's reading, ns::model::read(), which
// the routing walk makes anyway and keeps in a per-thread cache: a repeated
// topic costs one cache lookup, then a few string comparisons per grant.
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

namespace strata::ns {
class model;
struct verdict;
}  // namespace strata::ns

namespace strata::auth {

enum class verb : std::uint8_t { subscribe, publish, command, admin };
[[nodiscard]] std::string_view to_string(verb v) noexcept;

// `where:` of a grant: one model level and the names it must have there.
struct level_condition {
    std::string level;               // a level name of the model ("equipment")
    std::vector<std::string> names;  // any of; '*' any run of characters; placeholders
};

struct grant {
    bool deny = false;
    verb what = verb::subscribe;
    std::string filter{};                  // empty: any topic (then `where` or `classes` is set)
    std::vector<level_condition> where{};  // empty: any levels
    std::vector<std::string> classes{};    // empty: any class
    std::string at{};                      // where it is written ("file:line: roles.x[2]"), for errors
};

struct policy_config {
    std::map<std::string, std::vector<grant>> roles;             // role name -> grants
    std::map<std::string, std::vector<std::string>> users;       // identity -> role names
    std::vector<std::string> command_subtrees;                   // filters whose topics are commands
};

// The identity `users:` uses for clients without credentials.
inline constexpr std::string_view anonymous_identity = "anonymous";

// full: delivered as is; checked: accepted, each message checked
// (may_receive); partial: wider than the grants (auth.wide_subscriptions
// decides); refused.
enum class subscribe_verdict : std::uint8_t { full, checked, partial, refused };

namespace detail {
// A grant resolved against the model: level names as indices into
// model::levels(), class names as indices into model::classes().
struct level_match {
    std::size_t level = 0;
    std::vector<std::string> names;  // any of; '*' any run of characters
};
struct modelled_rule {
    std::string filter;                 // empty: any topic
    std::vector<level_match> where;     // all must hold
    std::vector<std::size_t> classes;   // empty: any class
    [[nodiscard]] bool modelled() const noexcept { return !where.empty() || !classes.empty(); }
};
class lazy_reading;
struct compiled_grant {
    bool deny = false;
    verb what = verb::subscribe;
    modelled_rule rule;  // placeholders not yet substituted
};
}  // namespace detail

// One session's grants, placeholders substituted.
class grants {
public:
    grants(std::vector<std::string> roles, const std::vector<const detail::compiled_grant*>& all,
           std::string_view user, std::string_view client_id, std::shared_ptr<const ns::model> model);
    ~grants();
    grants(const grants&) = delete;
    grants& operator=(const grants&) = delete;

    [[nodiscard]] bool may_publish(std::string_view topic, bool command) const noexcept;
    [[nodiscard]] subscribe_verdict may_subscribe(std::string_view filter) const noexcept;
    // May a message on `topic` be delivered to this session?
    [[nodiscard]] bool may_receive(std::string_view topic) const noexcept;
    // The same with the topic's reading already made by `model` (the
    // routing walk's verdict, `reading`): taken as is when `model` is the
    // one these grants were compiled against, read again otherwise.
    [[nodiscard]] bool may_receive(std::string_view topic, const ns::model* model,
                                   const ns::verdict* reading) const noexcept;
    [[nodiscard]] bool may_admin(std::string_view resource) const noexcept;
    [[nodiscard]] const std::vector<std::string>& roles() const noexcept { return roles_; }

    // The model the LEVELS/CLASSES grants were compiled against (null when
    // there is none).
    [[nodiscard]] const ns::model* model() const noexcept { return model_.get(); }

private:
    struct filters {
        std::vector<std::string> allow, deny;
        std::vector<detail::modelled_rule> allow_modelled, deny_modelled;
    };
    [[nodiscard]] bool allowed(const filters& f, std::string_view topic, detail::lazy_reading* reading) const noexcept;
    [[nodiscard]] bool denied(const filters& f, std::string_view topic, detail::lazy_reading* reading) const noexcept;

    std::vector<std::string> roles_;
    std::array<filters, 4> by_verb_;
    std::shared_ptr<const ns::model> model_;
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
    policy();
    // Throws policy_error when a user refers to an unknown role, or a grant
    // names a level or class `model` does not have (or names any without a
    // model).
    explicit policy(policy_config cfg, std::shared_ptr<const ns::model> model = nullptr);
    ~policy();
    policy(policy&&) noexcept;
    policy& operator=(policy&&) noexcept;

    // Roles are configured: access is decided by them.
    [[nodiscard]] bool active() const noexcept { return !cfg_.roles.empty(); }
    // The grants of `identity` (empty: anonymous) for `client_id`; null
    // when no policy is active.
    [[nodiscard]] std::shared_ptr<const grants> compile(std::string_view identity, std::string_view client_id) const;
    // The role names of `identity` (empty: anonymous).
    [[nodiscard]] std::vector<std::string> roles_of(std::string_view identity) const;
    [[nodiscard]] bool is_command_subtree(std::string_view topic) const noexcept;
    [[nodiscard]] const policy_config& config() const noexcept { return cfg_; }
    // Some grant names levels or classes (the policy depends on the model).
    [[nodiscard]] bool uses_model() const noexcept;

private:
    policy_config cfg_;
    std::shared_ptr<const ns::model> model_;
    std::map<std::string, std::vector<detail::compiled_grant>, std::less<>> compiled_;  // role -> grants
};

// True when some topic matches both filters.
[[nodiscard]] bool filters_intersect(std::string_view a, std::string_view b) noexcept;

}  // namespace strata::auth
