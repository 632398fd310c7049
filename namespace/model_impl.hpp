// Internals of the namespace model, shared by model.cpp (the data path and
// explain) and model_load.cpp (YAML reading, linting, building the walk
// automaton). Not part of the library's interface.
//
// The walk automaton. A topic is read by a small NFA whose states are
//   P(c): c levels of the model consumed so far, the last one being level
//         c-1 (P(0): nothing read yet), and
//   C(k): inside data class k (every further topic level is its subtopic).
// From P(c), a token x may become C(k) if x is class k's name and k may
// follow level c-1; or P(n+1) if level n accepts x, for n = c and, while the
// levels in between are optional, n = c+1, c+2, ...; in that order of
// preference (see model.hpp). A model_node is a DFA state: the ordered list
// of NFA threads alive after the tokens read so far, duplicates dropped
// (the earlier, preferred thread wins, as in a Pike VM) and everything
// after a leading C(k) dropped (that reading has already won). Every edge
// records, for each thread of its target, which thread of its source it
// came from, so the winning reading can be traced back without evaluating
// any rule again.
//
// Nodes are built eagerly at load time by exploring, from each node, every
// exact name that matters there (class names and listed level names) and
// every combination of the level patterns that matter there (a token that
// is not an exact name can only be accepted by a pattern or `any`).
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "namespace/model.hpp"
#include "namespace/model_pattern.hpp"
#include "namespace/model_stats.hpp"
#include "namespace/topic.hpp"

namespace strata::ns {

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
struct string_eq {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
};

// Hash for topic levels on the data path: inline, 8 bytes per step (most
// level names are one or two steps). No seed is needed: the tables below
// are built once at load time and never grow, so colliding names can only
// make one lookup probe a few more slots, never degrade the table.
// Tables whose keys come from clients and grow at run time (model_stats)
// pass a per-process random seed instead.
inline std::uint64_t name_hash(std::string_view s, std::uint64_t seed = 0) noexcept {
    const auto mix = [](std::uint64_t h, std::uint64_t w) noexcept {
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        return h ^ (h >> 31);
    };
    std::uint64_t h = (0x9e3779b97f4a7c15ull + seed) ^ (s.size() * 0x94d049bb133111ebull);
    const char* p = s.data();
    std::size_t n = s.size();
    for (; n >= 8; p += 8, n -= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        h = mix(h, w);
    }
    // The tail with fixed-size (possibly overlapping) loads: a memcpy of n
    // bytes into a zeroed word compiles to byte stores followed by a wide
    // load, which stalls on store forwarding.
    if (n != 0) {
        std::uint64_t w;
        if (s.size() >= 8) {
            std::memcpy(&w, s.data() + s.size() - 8, 8);
        } else if (n >= 4) {
            std::uint32_t a, b;
            std::memcpy(&a, p, 4);
            std::memcpy(&b, p + n - 4, 4);
            w = (std::uint64_t{a} << 32) | b;
        } else {
            w = (std::uint64_t{static_cast<unsigned char>(p[0])} << 16) |
                (std::uint64_t{static_cast<unsigned char>(p[n / 2])} << 8) | static_cast<unsigned char>(p[n - 1]);
        }
        h = mix(h, w);
    }
    h ^= h >> 29;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 32);
}

// A random seed, fixed for the life of the process, for name_hash() over
// names that clients choose (subtree labels, whole topics): nobody can aim
// names at one probe cluster or cache slot. Defined in model_stats.cpp.
std::uint64_t process_seed() noexcept;

// An immutable string -> V table with open addressing (load <= 1/2), looked
// up by string_view without allocating. Built once, read by many threads.
template <typename V>
class name_map {
public:
    void build(std::vector<std::pair<std::string, V>> entries) {
        entries_ = std::move(entries);
        std::size_t cap = 4;
        while (cap < entries_.size() * 2) cap *= 2;
        mask_ = cap - 1;
        slots_.assign(cap, slot{});
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            const std::uint64_t h = name_hash(entries_[i].first);
            std::size_t at = h & mask_;
            while (slots_[at].index != empty) at = (at + 1) & mask_;
            slots_[at] = slot{h, static_cast<std::uint32_t>(i)};
        }
    }

    [[nodiscard]] const V* find(std::string_view key) const noexcept {
        if (entries_.empty()) return nullptr;
        const std::uint64_t h = name_hash(key);
        for (std::size_t at = h & mask_;; at = (at + 1) & mask_) {
            const slot& s = slots_[at];
            if (s.index == empty) return nullptr;
            if (s.hash == h && entries_[s.index].first == key) return &entries_[s.index].second;
        }
    }

    [[nodiscard]] const std::vector<std::pair<std::string, V>>& entries() const noexcept { return entries_; }

private:
    static constexpr std::uint32_t empty = 0xFFFFFFFFu;
    struct slot {
        std::uint64_t hash = 0;
        std::uint32_t index = empty;
    };
    std::vector<slot> slots_;
    std::size_t mask_ = 0;
    std::vector<std::pair<std::string, V>> entries_;
};

// A topic filter prepared for the data path: most free subtrees and mode
// overrides are "literal/levels/#", which is one prefix comparison instead
// of splitting both strings level by level.
struct compiled_filter {
    std::string filter;
    std::string prefix;  // the literal levels before the first wildcard, no trailing '/'
    enum class kind : std::uint8_t { literal, subtree, general } how = kind::general;

    static compiled_filter make(std::string f) {
        compiled_filter c;
        c.filter = std::move(f);
        const std::string_view v = c.filter;
        std::size_t start = 0;
        while (true) {
            const std::size_t slash = v.find('/', start);
            const std::string_view level = v.substr(start, slash == std::string_view::npos ? v.npos : slash - start);
            if (level == "+" || level == "#") {
                c.prefix = start == 0 ? std::string() : std::string(v.substr(0, start - 1));
                c.how = level == "#" && start != 0 ? kind::subtree : kind::general;
                return c;
            }
            if (slash == std::string_view::npos) {
                c.how = kind::literal;
                return c;
            }
            start = slash + 1;
        }
    }

    [[nodiscard]] bool under_prefix(std::string_view topic) const noexcept {
        return topic.size() >= prefix.size() && std::memcmp(topic.data(), prefix.data(), prefix.size()) == 0 &&
               (topic.size() == prefix.size() || topic[prefix.size()] == '/');
    }

    [[nodiscard]] bool matches(std::string_view topic) const noexcept {
        switch (how) {
        case kind::literal: return topic == filter;
        case kind::subtree: return under_prefix(topic);  // "a/#" also matches "a"
        case kind::general: break;
        }
        if (!prefix.empty() && !under_prefix(topic)) return false;
        return topic_matches(filter, topic);
    }
};

struct level_rule {
    level_rule_info info;
    std::unordered_set<std::string, string_hash, string_eq> names;
    std::unique_ptr<compiled_pattern> pattern;  // null: no pattern
    int line = 0;

    [[nodiscard]] bool accepts(std::string_view x) const noexcept {
        if (x.empty()) return false;
        if (info.any) return true;
        if (names.find(x) != names.end()) return true;
        return pattern && pattern->match(x);
    }
};

// NFA state encoding: >= 0 is P(c) with c the value; < 0 is C(k), k = -s-1.
using nfa_state = std::int16_t;
inline bool is_class_state(nfa_state s) noexcept { return s < 0; }
inline nfa_state class_state(std::size_t k) noexcept { return static_cast<nfa_state>(-static_cast<int>(k) - 1); }
inline std::size_t class_of_state(nfa_state s) noexcept { return static_cast<std::size_t>(-s - 1); }

struct model_edge {
    const model_node* to = nullptr;   // null: no reading survives
    std::vector<std::uint8_t> parent;  // per thread of `to`: index of its source thread
};

class model_node {
public:
    std::vector<nfa_state> threads;  // preference order
    name_map<model_edge> exact;
    std::vector<std::uint8_t> tested;  // level indices with a pattern that matters here
    std::vector<model_edge> by_mask;   // indexed by the bits of `tested`
    int accept_thread = -1;            // first C thread, or -1
    const data_class* klass = nullptr;
    bool absorbing = false;
    std::uint32_t id = 0;  // 0: the root

    inline static const model_edge none{};

    // The edge a (non-empty) topic level takes from here. A first level
    // starting with '$' is a broker topic ($SYS, ...) and never in the model.
    [[nodiscard]] const model_edge* edge_for(std::string_view token, const std::vector<level_rule>& levels) const noexcept {
        if (id == 0 && !token.empty() && token.front() == '$') return &none;
        if (const model_edge* e = exact.find(token)) return e;
        std::size_t mask = 0;
        for (std::size_t b = 0; b < tested.size(); ++b)
            if (levels[tested[b]].pattern->match(token)) mask |= std::size_t{1} << b;
        return &by_mask[mask];
    }
};

struct model::impl {
    // Unique per model object in this process (never 0), so that per-thread
    // caches can tell models apart even when one is freed and another is
    // allocated at the same address.
    std::uint64_t id = 0;
    std::string source;    // file name for messages
    std::string base_dir;
    std::vector<level_rule> levels;
    std::vector<level_rule_info> level_infos;
    std::vector<data_class> classes;
    std::unordered_map<std::string, std::size_t, string_hash, string_eq> class_index;

    std::vector<std::string> free_filters;     // as declared, plus the dead-letter subtree last
    std::vector<compiled_filter> free_compiled;  // same order
    std::vector<int> free_lines;
    // Free filters by literal first level, and those starting with a wildcard.
    name_map<std::vector<std::size_t>> free_by_first;
    std::vector<std::size_t> free_wild;

    enforcement default_mode = enforcement::reject;
    int default_mode_line = 0;
    std::vector<mode_override> overrides;  // as declared
    std::vector<compiled_filter> override_compiled;  // same order
    std::vector<std::size_t> override_order;  // most specific first
    std::string dead_letter = "uns/quarantine";
    std::size_t metrics_level = 1;

    std::vector<std::unique_ptr<model_node>> nodes;  // nodes[0] is the root
    std::vector<std::string> warnings;
    std::shared_ptr<model_stats> stats;
};

}  // namespace strata::ns
