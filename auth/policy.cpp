#include "auth/policy.hpp"

#include "auth/access.hpp"
#include "namespace/model.hpp"
#include "namespace/topic.hpp"

#include <algorithm>
#include <optional>

namespace strata::auth {

namespace detail {

// The reading of one topic, made when a LEVELS/CLASSES grant first needs it.
class lazy_reading {
public:
    lazy_reading(const ns::model* m, std::string_view topic, const ns::verdict* known = nullptr) noexcept
        : model_(m), topic_(topic), known_(known) {}
    // Null when there is no model to read with.
    const ns::verdict* get() {
        if (model_ == nullptr) return nullptr;
        if (known_ != nullptr) return known_;
        if (!v_) v_.emplace(model_->read(topic_));
        return &*v_;
    }

private:
    const ns::model* model_;
    std::string_view topic_;
    const ns::verdict* known_;  // made by model_ already
    std::optional<ns::verdict> v_;
};

}  // namespace detail

namespace {

using detail::lazy_reading;

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

// A level name against a `where:` name: '*' stands for any run of
// characters (none included).
bool glob_match(std::string_view pattern, std::string_view name) noexcept {
    const auto star = pattern.find('*');
    if (star == std::string_view::npos) return pattern == name;
    const std::string_view head = pattern.substr(0, star);
    if (!name.starts_with(head)) return false;
    pattern.remove_prefix(star + 1);
    name.remove_prefix(head.size());
    // Each further piece must come in order; the last one must end the name.
    while (true) {
        const auto next = pattern.find('*');
        const std::string_view piece = pattern.substr(0, next);
        if (next == std::string_view::npos) return name.size() >= piece.size() && name.ends_with(piece);
        const auto at = name.find(piece);
        if (at == std::string_view::npos) return false;
        name.remove_prefix(at + piece.size());
        pattern.remove_prefix(next + 1);
    }
}

bool any_glob(const std::vector<std::string>& names, std::string_view name) noexcept {
    return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return glob_match(n, name); });
}

bool has_class(const detail::modelled_rule& r, std::size_t index) noexcept {
    return std::find(r.classes.begin(), r.classes.end(), index) != r.classes.end();
}

// Whether a LEVELS/CLASSES rule holds for a topic (its filter aside). See
// policy.hpp: an allow needs a complete reading; a deny also holds where the
// reading stopped before the levels it names.
bool rule_holds(const detail::modelled_rule& r, const ns::verdict* v, bool deny) noexcept {
    if (v == nullptr) return deny;  // no model: a deny stays on the safe side
    if (v->result == ns::outcome::free) return false;
    // The topic was read to a class (a publish's verdict may still refuse
    // its payload or retain flag: that is not the grants' business).
    const bool complete = v->klass != nullptr && v->code != ns::reason_code::topic_invalid;
    if (!complete && !deny) return false;
    for (const auto& w : r.where) {
        const std::string_view name = v->level(w.level);
        if (name.empty()) {
            if (complete) return false;  // an optional level the topic leaves out
            continue;                    // not reached: unknown
        }
        if (!any_glob(w.names, name)) return false;
    }
    if (!r.classes.empty()) {
        if (v->klass == nullptr) return !complete;
        if (!has_class(r, v->klass->index)) return false;
    }
    return true;
}

bool rule_matches(const detail::modelled_rule& r, std::string_view topic, lazy_reading& reading, bool deny) {
    if (!r.filter.empty() && !ns::topic_matches(r.filter, topic)) return false;
    return rule_holds(r, reading.get(), deny);
}

// ---- subscriptions: how the model can read a topic filter ---------------------------

// One way the model can read a filter: each level's filter level ("+", a
// name, or empty: left out), then a class (its name or "+") or a '#' that
// stands for the rest.
struct filter_reading {
    std::array<std::string_view, ns::max_levels> level{};
    std::size_t hash_at = ns::max_levels + 1;  // '#' in place of level hash_at (or the class); none: > levels
    std::string_view klass;                    // empty with '#'
    std::size_t last = 0;                      // the level the class follows
    [[nodiscard]] bool hash_before(std::size_t level_index) const noexcept { return hash_at <= level_index; }
    [[nodiscard]] bool hash() const noexcept { return hash_at <= ns::max_levels; }
};

// Every reading of a filter that can end in a class (a topic of the model),
// bounded: `complete` false when there were more than `max` (then nothing
// can be proven about the filter).
class filter_readings {
public:
    static constexpr std::size_t max = 256;

    filter_readings(const ns::model& m, std::string_view filter) : m_(m) {
        for (std::string_view rest = filter;;) {
            const auto slash = rest.find('/');
            segs_.push_back(rest.substr(0, slash));
            if (slash == std::string_view::npos) break;
            rest.remove_prefix(slash + 1);
        }
        filter_reading r;
        walk(0, 0, ns::max_levels, r);
    }
    [[nodiscard]] bool complete() const noexcept { return complete_; }
    [[nodiscard]] const std::vector<filter_reading>& all() const noexcept { return out_; }
    [[nodiscard]] bool follows(const ns::data_class& c, std::size_t level) const noexcept {
        return std::find(c.under.begin(), c.under.end(), level) != c.under.end();
    }
    [[nodiscard]] const ns::model& model() const noexcept { return m_; }

private:
    // Filter level i read where level k (or a class after level `last`) may come.
    void walk(std::size_t i, std::size_t k, std::size_t last, filter_reading& r) {
        if (out_.size() >= max) {
            complete_ = false;
            return;
        }
        if (i == segs_.size()) return;  // ends before a class: no topic of the model
        const std::string_view seg = segs_[i];
        if (seg == "#") {
            r.hash_at = k;
            r.last = last;
            out_.push_back(r);
            r.hash_at = ns::max_levels + 1;
            return;
        }
        if (last < ns::max_levels) {
            const auto& classes = m_.classes();
            const bool here = std::any_of(classes.begin(), classes.end(), [&](const ns::data_class& c) {
                return follows(c, last) && (seg == "+" || seg == c.name);
            });
            if (here) {
                r.klass = seg;
                r.last = last;
                out_.push_back(r);
                r.klass = {};
            }
        }
        const auto& levels = m_.levels();
        if (k >= levels.size() || k >= ns::max_levels) return;
        if (seg == "+" || m_.level_accepts(k, seg)) {
            r.level[k] = seg;
            walk(i + 1, k + 1, k, r);
            r.level[k] = {};
        }
        if (levels[k].optional) walk(i, k + 1, last, r);
    }

    const ns::model& m_;
    std::vector<std::string_view> segs_;
    std::vector<filter_reading> out_;
    bool complete_ = true;
};

// Whether rule `r` holds for every topic of reading `fr` (covers) or for
// some (overlaps).
bool reading_covered(const detail::modelled_rule& r, const filter_reading& fr, const filter_readings& all) {
    for (const auto& w : r.where) {
        if (fr.hash_before(w.level)) return false;
        const std::string_view seg = fr.level[w.level];
        if (seg.empty()) return false;
        if (seg == "+") {
            if (std::find(w.names.begin(), w.names.end(), "*") == w.names.end()) return false;
        } else if (!any_glob(w.names, seg)) {
            return false;
        }
    }
    if (r.classes.empty()) return true;
    if (fr.hash()) return false;
    const auto& classes = all.model().classes();
    for (const auto& c : classes) {
        if (!all.follows(c, fr.last) || (fr.klass != "+" && fr.klass != c.name)) continue;
        if (!has_class(r, c.index)) return false;
    }
    return true;
}

bool reading_overlaps(const detail::modelled_rule& r, const filter_reading& fr, const filter_readings& all) {
    for (const auto& w : r.where) {
        if (fr.hash_before(w.level)) continue;
        const std::string_view seg = fr.level[w.level];
        if (seg.empty()) return false;
        if (seg != "+" && !any_glob(w.names, seg)) return false;
    }
    if (r.classes.empty() || fr.hash()) return true;
    const auto& classes = all.model().classes();
    return std::any_of(classes.begin(), classes.end(), [&](const ns::data_class& c) {
        return all.follows(c, fr.last) && (fr.klass == "+" || fr.klass == c.name) && has_class(r, c.index);
    });
}

bool rule_covers(const detail::modelled_rule& r, std::string_view filter, const filter_readings* fr) {
    if (!r.filter.empty() && !filter_covers(r.filter, filter)) return false;
    if (fr == nullptr || !fr->complete() || fr->all().empty()) return false;
    return std::all_of(fr->all().begin(), fr->all().end(),
                       [&](const filter_reading& x) { return reading_covered(r, x, *fr); });
}

bool rule_overlaps(const detail::modelled_rule& r, std::string_view filter, const filter_readings* fr) {
    if (!r.filter.empty() && !filters_intersect(r.filter, filter)) return false;
    if (fr == nullptr || !fr->complete()) return true;
    return std::any_of(fr->all().begin(), fr->all().end(),
                       [&](const filter_reading& x) { return reading_overlaps(r, x, *fr); });
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

grants::grants(std::vector<std::string> roles, const std::vector<const detail::compiled_grant*>& all,
               std::string_view user, std::string_view client_id, std::shared_ptr<const ns::model> model)
    : roles_(std::move(roles)), model_(std::move(model)) {
    std::string f;
    for (const auto* g : all) {
        auto& into = by_verb_[static_cast<std::size_t>(g->what)];
        bool safe = g->rule.filter.empty() || substitute(g->rule.filter, user, client_id, f);
        if (!g->rule.modelled()) {
            if (g->deny) into.deny.push_back(f);
            else if (safe) into.allow.push_back(f);
            continue;
        }
        detail::modelled_rule r;
        if (!g->rule.filter.empty()) r.filter = f;
        r.classes = g->rule.classes;
        for (const auto& w : g->rule.where) {
            detail::level_match m{w.level, {}};
            for (const auto& name : w.names) {
                if (name.find('{') == std::string::npos) {
                    m.names.push_back(name);
                    continue;
                }
                // A value that is empty or holds '/', '+', '#' or '*' would
                // widen the name: the allow is dropped, the deny holds for
                // every name of the level.
                const auto holds = [&](std::string_view p, std::string_view value) {
                    return name.find(p) != std::string::npos && (widens(value) || value.find('*') != std::string_view::npos);
                };
                std::string value;
                if (holds("{user}", user) || holds("{client_id}", client_id) ||
                    !substitute(name, user, client_id, value)) {
                    safe = false;
                    value.assign(1, '*');  // (not = "*": GCC 12 -O3 misreads that copy, -Wrestrict)
                }
                m.names.push_back(std::move(value));
            }
            r.where.push_back(std::move(m));
        }
        if (g->deny) into.deny_modelled.push_back(std::move(r));
        else if (safe) into.allow_modelled.push_back(std::move(r));
    }
}

grants::~grants() = default;

bool grants::denied(const filters& f, std::string_view topic, detail::lazy_reading* reading) const noexcept {
    for (const auto& d : f.deny)
        if (ns::topic_matches(d, topic)) return true;
    for (const auto& d : f.deny_modelled)
        if (rule_matches(d, topic, *reading, true)) return true;
    return false;
}

bool grants::allowed(const filters& f, std::string_view topic, detail::lazy_reading* reading) const noexcept {
    bool ok = std::any_of(f.allow.begin(), f.allow.end(), [&](const std::string& a) { return ns::topic_matches(a, topic); });
    if (!ok) {
        ok = std::any_of(f.allow_modelled.begin(), f.allow_modelled.end(),
                         [&](const detail::modelled_rule& a) { return rule_matches(a, topic, *reading, false); });
    }
    return ok && !denied(f, topic, reading);
}

bool grants::may_publish(std::string_view topic, bool command) const noexcept {
    lazy_reading reading(model_.get(), topic);
    const auto& pub = by_verb_[static_cast<std::size_t>(verb::publish)];
    if (!command) return allowed(pub, topic, &reading);
    if (denied(pub, topic, &reading)) return false;
    return allowed(by_verb_[static_cast<std::size_t>(verb::command)], topic, &reading);
}

bool grants::may_receive(std::string_view topic) const noexcept {
    lazy_reading reading(model_.get(), topic);
    return allowed(by_verb_[static_cast<std::size_t>(verb::subscribe)], topic, &reading);
}

bool grants::may_receive(std::string_view topic, const ns::model* model, const ns::verdict* reading) const noexcept {
    lazy_reading r(model_.get(), topic, model == model_.get() ? reading : nullptr);
    return allowed(by_verb_[static_cast<std::size_t>(verb::subscribe)], topic, &r);
}

bool grants::may_admin(std::string_view resource) const noexcept {
    const auto& f = by_verb_[static_cast<std::size_t>(verb::admin)];
    return std::any_of(f.allow.begin(), f.allow.end(), [&](const std::string& a) { return ns::topic_matches(a, resource); }) &&
           std::none_of(f.deny.begin(), f.deny.end(), [&](const std::string& d) { return ns::topic_matches(d, resource); });
}

subscribe_verdict grants::may_subscribe(std::string_view filter) const noexcept {
    const auto& f = by_verb_[static_cast<std::size_t>(verb::subscribe)];
    std::optional<filter_readings> readings;
    if ((!f.allow_modelled.empty() || !f.deny_modelled.empty()) && model_ != nullptr) readings.emplace(*model_, filter);
    const filter_readings* fr = readings ? &*readings : nullptr;
    bool overlapping_deny = false;
    for (const auto& d : f.deny) {
        if (filter_covers(d, filter)) return subscribe_verdict::refused;
        overlapping_deny = overlapping_deny || filters_intersect(d, filter);
    }
    for (const auto& d : f.deny_modelled) {
        if (rule_covers(d, filter, fr)) return subscribe_verdict::refused;
        overlapping_deny = overlapping_deny || rule_overlaps(d, filter, fr);
    }
    bool overlapping_allow = false;
    for (const auto& a : f.allow) {
        if (!overlapping_deny && filter_covers(a, filter)) return subscribe_verdict::full;
        overlapping_allow = overlapping_allow || filters_intersect(a, filter);
    }
    for (const auto& a : f.allow_modelled) {
        if (!overlapping_deny && rule_covers(a, filter, fr)) return subscribe_verdict::checked;
        overlapping_allow = overlapping_allow || rule_overlaps(a, filter, fr);
    }
    return overlapping_allow ? subscribe_verdict::partial : subscribe_verdict::refused;
}

policy::policy() = default;
policy::~policy() = default;
policy::policy(policy&&) noexcept = default;
policy& policy::operator=(policy&&) noexcept = default;

namespace {

std::string level_names(const ns::model& m) {
    std::string out;
    for (const auto& l : m.levels()) out += (out.empty() ? "" : ", ") + l.name;
    return out;
}

std::string class_names(const ns::model& m) {
    std::string out;
    for (const auto& c : m.classes()) out += (out.empty() ? "" : ", ") + c.name;
    return out;
}

// A grant's levels and classes as the model's indices.
detail::compiled_grant compile_grant(const grant& g, const ns::model* m) {
    detail::compiled_grant c{g.deny, g.what, {g.filter, {}, {}}};
    if (g.where.empty() && g.classes.empty()) return c;
    const std::string at = g.at.empty() ? "grant" : g.at;
    if (m == nullptr)
        throw policy_error(at + ": 'where' and 'class' name the namespace model's levels and classes; "
                                "configure one (namespace.model)");
    for (const auto& w : g.where) {
        const auto& levels = m->levels();
        const auto it = std::find_if(levels.begin(), levels.end(), [&](const auto& l) { return l.name == w.level; });
        if (it == levels.end())
            throw policy_error(at + ": where: the model has no level '" + w.level + "' (its levels: " +
                               level_names(*m) + ")");
        if (w.names.empty()) throw policy_error(at + ": where." + w.level + ": needs at least one name");
        c.rule.where.push_back({static_cast<std::size_t>(it - levels.begin()), w.names});
    }
    for (const auto& name : g.classes) {
        const ns::data_class* k = m->find_class(name);
        if (k == nullptr)
            throw policy_error(at + ": class: the model has no class '" + name + "' (its classes: " +
                               class_names(*m) + ")");
        if (!has_class(c.rule, k->index)) c.rule.classes.push_back(k->index);
    }
    return c;
}

}  // namespace

policy::policy(policy_config cfg, std::shared_ptr<const ns::model> model)
    : cfg_(std::move(cfg)), model_(std::move(model)) {
    for (const auto& [user, roles] : cfg_.users) {
        for (const auto& r : roles) {
            if (!cfg_.roles.contains(r))
                throw policy_error("users." + user + ": unknown role '" + r + "'");
        }
    }
    for (const auto& [role, gs] : cfg_.roles) {
        auto& into = compiled_[role];
        for (const auto& g : gs) into.push_back(compile_grant(g, model_.get()));
    }
}

bool policy::uses_model() const noexcept {
    for (const auto& [role, gs] : compiled_)
        for (const auto& g : gs)
            if (g.rule.modelled()) return true;
    return false;
}

std::vector<std::string> policy::roles_of(std::string_view identity) const {
    const auto it = cfg_.users.find(std::string(identity.empty() ? anonymous_identity : identity));
    return it == cfg_.users.end() ? std::vector<std::string>{} : it->second;
}

std::shared_ptr<const grants> policy::compile(std::string_view identity, std::string_view client_id) const {
    if (!active()) return nullptr;
    auto roles = roles_of(identity);
    std::vector<const detail::compiled_grant*> all;
    for (const auto& r : roles) {
        const auto it = compiled_.find(r);
        if (it == compiled_.end()) continue;
        for (const auto& g : it->second) all.push_back(&g);
    }
    return std::make_shared<const grants>(std::move(roles), all, identity, client_id, model_);
}

bool policy::is_command_subtree(std::string_view topic) const noexcept {
    return std::any_of(cfg_.command_subtrees.begin(), cfg_.command_subtrees.end(),
                       [&](const std::string& f) { return ns::topic_matches(f, topic); });
}

}  // namespace strata::auth
