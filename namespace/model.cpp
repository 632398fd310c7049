// The namespace model's data path (check), the per-level walk, explain and
// quarantine helpers. Loading and the automaton's construction are in
// model_load.cpp; the automaton itself is described in model_impl.hpp.
//
// check() splits a message in two: its topic and the rest. What the topic
// alone decides (free or not, which class, which mode, the metrics subtree)
// is a topic_reading, kept in a per-thread cache keyed by topic, so a topic
// seen before costs one hash over it and one comparison. A topic not in the
// cache is walked (topic_walk), level by level -- by the router's trie
// match, which feeds the walk the levels it splits anyway, or by the walk
// itself for check(topic): the free-filter index (a hash lookup of the
// first level), one hash lookup per level plus the patterns of levels
// whose names are not listed; then the override scan and a backward pass
// over at most max_levels + 1 recorded edges recover which topic level
// matched which model level. Then, for every message, the retain rule and
// the payload against the class schema. Nothing allocates on the passing
// path unless the class has a schema the fast path cannot decide or a new
// topic is cached; a refused message allocates its reason text.
#include "namespace/model.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>

#include "namespace/model_impl.hpp"
#include "namespace/model_schema.hpp"
#include "namespace/suggest.hpp"
#include "namespace/topic.hpp"

namespace strata::ns {

std::string_view to_string(outcome o) noexcept {
    switch (o) {
    case outcome::pass: return "pass";
    case outcome::free: return "free";
    case outcome::violation: return "violation";
    }
    return "?";
}

std::string_view to_string(enforcement e) noexcept {
    switch (e) {
    case enforcement::reject: return "reject";
    case enforcement::warn: return "warn";
    case enforcement::quarantine: return "quarantine";
    }
    return "?";
}

std::string_view to_string(reason_code r) noexcept {
    switch (r) {
    case reason_code::none: return "none";
    case reason_code::topic_invalid: return "topic_invalid";
    case reason_code::payload_invalid: return "payload_invalid";
    case reason_code::retain_violation: return "retain_violation";
    }
    return "?";
}

std::string_view to_string(retain_rule r) noexcept {
    switch (r) {
    case retain_rule::any: return "any";
    case retain_rule::required: return "required";
    case retain_rule::forbidden: return "forbidden";
    }
    return "?";
}

std::uint8_t mqtt_reason_code(reason_code r) noexcept {
    switch (r) {
    case reason_code::none: return 0x00;
    case reason_code::topic_invalid: return 0x90;
    case reason_code::payload_invalid: return 0x99;
    case reason_code::retain_violation: return 0x83;
    }
    return 0x83;
}

namespace {

using walk_state = topic_walk::state;
using stop = topic_walk::stop;
constexpr std::size_t max_steps = topic_walk::max_steps;

// Which topic level each model level got, for the reading that ends in
// thread `t` of the walk's last node.
struct reading {
    std::string_view topic;
    level_spans& spans;  // the verdict's
    int class_step = -1;  // the step that read the class name
    [[nodiscard]] bool has(std::size_t lv) const noexcept { return spans.size[lv] != 0; }
    [[nodiscard]] std::size_t end(std::size_t lv) const noexcept { return std::size_t{spans.begin[lv]} + spans.size[lv]; }
};

reading trace(const model::impl& m, std::string_view topic, const walk_state& w, std::size_t t, level_spans& spans) {
    reading r{topic, spans, -1};
    const model_node* root = m.nodes.front().get();
    for (std::size_t s = w.steps; s-- > 0;) {
        const model_edge* e = w.edges[s];
        const nfa_state st = e->to->threads[t];
        const std::size_t p = e->parent[t];
        const model_node* from = s == 0 ? root : w.edges[s - 1]->to;
        const nfa_state ps = from->threads[p];
        if (!is_class_state(st)) {
            const auto lv = static_cast<std::size_t>(st - 1);
            r.spans.begin[lv] = static_cast<std::uint16_t>(w.begin[s]);
            r.spans.size[lv] = static_cast<std::uint16_t>(w.end[s] - w.begin[s]);
        } else if (!is_class_state(ps)) {
            r.class_step = static_cast<int>(s);
        }
        t = p;
    }
    return r;
}

// The metrics key: the topic up to the metrics level (or the deepest level
// read before it when it is optional and skipped), empty when the reading
// never got that far.
std::string_view subtree_of(const model::impl& m, std::string_view topic, const reading& r) {
    const std::size_t ml = m.metrics_level;
    if (r.has(ml)) return topic.substr(0, r.end(ml));
    bool beyond = false;
    for (std::size_t i = ml + 1; i < m.levels.size(); ++i) beyond = beyond || r.has(i);
    if (!beyond) return {};
    for (std::size_t i = ml; i-- > 0;)
        if (r.has(i)) return topic.substr(0, r.end(i));
    return {};
}

// What a node expects next: levels (in model order) and classes.
struct expectation {
    std::vector<std::size_t> levels;
    std::vector<std::size_t> classes;
};

bool class_allowed(const model::impl& m, std::size_t k, nfa_state c) {
    if (c <= 0) return false;
    const auto& u = m.classes[k].under;
    return std::binary_search(u.begin(), u.end(), static_cast<std::size_t>(c - 1));
}

expectation expected_at(const model::impl& m, const model_node* n) {
    expectation ex;
    for (nfa_state s : n->threads) {
        if (is_class_state(s)) continue;
        for (std::size_t k = 0; k < m.classes.size(); ++k)
            if (class_allowed(m, k, s) && std::find(ex.classes.begin(), ex.classes.end(), k) == ex.classes.end())
                ex.classes.push_back(k);
        for (std::size_t lv = static_cast<std::size_t>(s); lv < m.levels.size(); ++lv) {
            if (std::find(ex.levels.begin(), ex.levels.end(), lv) == ex.levels.end()) ex.levels.push_back(lv);
            if (!m.levels[lv].info.optional) break;
        }
    }
    std::sort(ex.levels.begin(), ex.levels.end());
    return ex;
}

std::string quoted_list(const std::vector<std::string>& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i != 0) out += (i + 1 == v.size()) ? " or " : ", ";
        out += v[i];
    }
    return out;
}

std::string class_names(const model::impl& m, const std::vector<std::size_t>& ks) {
    std::vector<std::string> names;
    for (std::size_t k : ks) names.push_back(m.classes[k].name);
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
    return out;
}

// "not one of [..]" / "does not match '...'" for a token a level refused.
std::string level_refusal(const level_rule& r, std::string_view tok, bool first_level) {
    if (first_level && tok.starts_with('$')) return "is reserved: topics starting with '$' belong to the broker";
    const level_rule_info& i = r.info;
    std::string out;
    if (!i.names.empty()) {
        out = "is not one of [";
        for (std::size_t k = 0; k < i.names.size() && k < 12; ++k) out += (k ? ", " : "") + i.names[k];
        if (i.names.size() > 12) out += ", ...";
        out += "]";
    }
    if (!i.pattern.empty()) {
        if (!out.empty()) out += " and ";
        out += "does not match '" + i.pattern + "'";
    }
    return out;
}

// "after line 'line-2'" for the reading so far, or "" at the start.
std::string after_text(const model::impl& m, const model_node* n, const reading& r) {
    if (n->threads.empty() || is_class_state(n->threads.front())) return {};
    const nfa_state s = n->threads.front();
    if (s == 0) return {};
    const auto lv = static_cast<std::size_t>(s - 1);
    return "after " + m.levels[lv].info.name + " '" + std::string(r.topic.substr(r.spans.begin[lv], r.spans.size[lv])) + "'";
}

std::string refusal_message(const model::impl& m, const model_node* n, const reading& r, std::string_view tok) {
    const expectation ex = expected_at(m, n);
    std::vector<std::string_view> names;
    for (std::size_t k : ex.classes) names.emplace_back(m.classes[k].name);
    for (std::size_t lv : ex.levels)
        for (const std::string& s : m.levels[lv].info.names) names.emplace_back(s);
    const std::string hint = did_you_mean(tok, names);
    const std::string t = "'" + std::string(tok) + "'";
    const bool root = n->id == 0;

    if (ex.classes.empty() && ex.levels.size() == 1) {
        const level_rule& rule = m.levels[ex.levels.front()];
        return "level '" + rule.info.name + "': " + t + " " + level_refusal(rule, tok, root) + hint;
    }
    if (ex.levels.empty()) {
        std::string out = after_text(m, n, r);
        if (!out.empty()) out += ": ";
        return out + t + " is not a data class (expected " + class_names(m, ex.classes) + ")" + hint;
    }
    std::vector<std::string> level_names;
    std::string details;
    for (std::size_t lv : ex.levels) {
        const level_rule& rule = m.levels[lv];
        level_names.push_back("'" + rule.info.name + "'");
        if (!details.empty()) details += "; ";
        details += rule.info.name + ": " + level_refusal(rule, tok, root && lv == 0);
    }
    if (!ex.classes.empty()) {
        details += "; data classes here: " + class_names(m, ex.classes);
        return "level " + quoted_list(level_names) + " or data class: " + t + " is not accepted (" + details + ")" + hint;
    }
    return "level " + quoted_list(level_names) + ": " + t + " is not accepted (" + details + ")" + hint;
}

std::string incomplete_message(const model::impl& m, const model_node* n, const reading& r) {
    const expectation ex = expected_at(m, n);
    std::string out = "incomplete topic";
    const std::string after = after_text(m, n, r);
    if (!after.empty()) out += ": ends " + after;
    out += "; expected ";
    std::vector<std::string> level_names;
    for (std::size_t lv : ex.levels) level_names.push_back("'" + m.levels[lv].info.name + "'");
    if (!level_names.empty()) out += "level " + quoted_list(level_names);
    if (!ex.classes.empty()) {
        if (!level_names.empty()) out += ", or ";
        out += "a data class (" + class_names(m, ex.classes) + ")";
    }
    return out;
}

std::string retain_message(const data_class& c, bool retain) {
    if (retain) return "retain: class '" + c.name + "' forbids retained messages (publish with retain=0)";
    return "retain: class '" + c.name + "' requires retained messages (publish with retain=1)";
}

bool retain_ok(const data_class& c, bool retain) {
    return c.retain == retain_rule::any || (c.retain == retain_rule::required) == retain;
}

bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t n = 0;
        std::uint32_t cp = 0;
        if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
        else return false;
        if (i + n >= s.size()) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        // Overlong forms, surrogates, beyond U+10FFFF.
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
        i += n + 1;
    }
    return true;
}

std::string base64(std::string_view in) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const std::uint32_t v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                                static_cast<unsigned char>(in[i + 2]);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (i < in.size()) {
        std::uint32_t v = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += i + 1 < in.size() ? alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string format_period(std::chrono::milliseconds p) {
    const auto ms = p.count();
    if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

}  // namespace

// ---- the data path -------------------------------------------------------------

namespace {

std::atomic<std::uint64_t> model_ids{0};

constexpr std::size_t not_free = static_cast<std::size_t>(-1);
constexpr std::size_t max_topic_size = 65535;

// Index of the first free filter matching the topic, or not_free; `first`
// is the topic's first level.
std::size_t free_index(const model::impl& m, std::string_view first, std::string_view topic) noexcept {
    if (const auto* list = m.free_by_first.find(first))
        for (std::size_t i : *list)
            if (m.free_compiled[i].matches(topic)) return i;
    for (std::size_t i : m.free_wild)
        if (m.free_compiled[i].matches(topic)) return i;
    return not_free;
}

std::size_t free_index(const model::impl& m, std::string_view topic) noexcept {
    return free_index(m, topic.substr(0, topic.find('/')), topic);
}

enforcement mode_of(const model::impl& m, std::string_view topic) noexcept {
    for (std::size_t i : m.override_order)
        if (m.override_compiled[i].matches(topic)) return m.overrides[i].mode;
    return m.default_mode;
}

// What a check learns from the topic alone: the topic is free, or it
// reaches a class (which topic level is which model level, the metrics
// subtree, the subtopic, the mode). Offsets rather than views, so that it
// can be kept for the next message on the same topic; MQTT topics are at
// most 65,535 bytes, so 16 bits hold every offset.
struct topic_reading {
    outcome result = outcome::pass;  // pass: a class was reached; or free
    enforcement mode = enforcement::reject;
    std::uint32_t index = 0;          // the class, or the free filter
    std::uint16_t subtree_len = 0;    // class: the subtree is topic[0, subtree_len)
    std::uint16_t subpath_begin = 0;  // class: where the subtopic starts, 0: none
    level_spans spans;
};

// What the walk of a topic found. True with `r` filled when the topic is
// free or reaches a class; false with the topic violation in `v` otherwise.
bool read_topic(const model::impl& m, std::string_view topic, const walk_state& w, topic_reading& r, verdict& v) {
    if (w.how == stop::free) {
        r.result = outcome::free;
        r.index = w.free_index;
        return true;
    }
    v.mode = r.mode = mode_of(m, topic);

    const auto fail_topic = [&](std::string reason, const reading& rd) {
        v.result = outcome::violation;
        v.code = reason_code::topic_invalid;
        v.reason = std::move(reason);
        v.subtree = subtree_of(m, topic, rd);
        return false;
    };
    if (w.how == stop::dead || w.how == stop::empty_level) {
        // The best partial reading: the preferred thread of the last node.
        const reading rd = trace(m, topic, w, 0, v.spans);
        if (w.how == stop::empty_level) {
            const std::string after = after_text(m, w.node, rd);
            return fail_topic(after.empty() ? "empty first level" : "empty level " + after, rd);
        }
        return fail_topic(refusal_message(m, w.node, rd, topic.substr(w.fail_begin, w.fail_end - w.fail_begin)), rd);
    }
    if (w.node->accept_thread < 0) {
        const reading rd = trace(m, topic, w, 0, v.spans);
        return fail_topic(incomplete_message(m, w.node, rd), rd);
    }

    const reading rd = trace(m, topic, w, static_cast<std::size_t>(w.node->accept_thread), v.spans);
    const data_class& c = *w.node->klass;
    // Subtopic: everything after the class name.
    const std::size_t class_end = rd.class_step >= 0 ? w.end[static_cast<std::size_t>(rd.class_step)] : topic.size();
    if (class_end < topic.size()) {
        const std::string_view sub = topic.substr(class_end + 1);
        if (sub.empty() || sub.front() == '/' || sub.back() == '/' || sub.find("//") != std::string_view::npos) {
            v.klass = &c;
            v.command = c.command;
            v.subpath = sub;
            return fail_topic("empty level in the subtopic of class '" + c.name + "'", rd);
        }
        r.subpath_begin = static_cast<std::uint16_t>(class_end + 1);
    }
    r.result = outcome::pass;
    r.index = static_cast<std::uint32_t>(c.index);
    r.subtree_len = static_cast<std::uint16_t>(subtree_of(m, topic, rd).size());
    r.spans = v.spans;
    return true;
}

// The verdict's topic part from a reading of `topic`.
void apply(const model::impl& m, std::string_view topic, const topic_reading& r, verdict& v) noexcept {
    if (r.result == outcome::free) {
        v.result = outcome::free;
        v.subtree = m.free_filters[r.index];
        return;
    }
    const data_class& c = m.classes[r.index];
    v.mode = r.mode;
    v.klass = &c;
    v.command = c.command;
    v.spans = r.spans;
    // The offsets came from reading this very text: no bounds checks.
    v.subtree = std::string_view(topic.data(), r.subtree_len);
    if (r.subpath_begin != 0) v.subpath = std::string_view(topic.data() + r.subpath_begin, topic.size() - r.subpath_begin);
}

// The message part: retain rule, then the payload against the class schema.
void check_message(const data_class& c, std::string_view payload, bool retain, verdict& v) {
    // An empty retained payload deletes the retained message: allowed
    // whatever the class says, and there is no payload to check.
    if (retain && payload.empty()) return;
    if (!retain_ok(c, retain)) {
        v.result = outcome::violation;
        v.code = reason_code::retain_violation;
        v.reason = retain_message(c, retain);
        return;
    }
    if (c.schema) {
        std::string why;
        if (!c.schema->valid_payload(payload, &why)) {
            v.result = outcome::violation;
            v.code = reason_code::payload_invalid;
            v.reason = "payload: " + why;
        }
    }
}

}  // namespace

// One topic's reading in the per-thread cache (topic_walk points at it).
struct cached_reading {
    std::uint64_t model_id = 0;  // 0: empty
    std::string topic;
    topic_reading reading;
    model_stats::subtree_counters* counters = nullptr;
};

namespace {

// The cache's hash of a whole topic: 16 bytes per 64x64->128-bit multiply
// (the two halves folded), seeded per process. Collisions only cost a miss:
// a hit also compares the topic.
inline std::uint64_t fold_mul(std::uint64_t a, std::uint64_t b) noexcept {
    const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
    return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

std::uint64_t topic_hash(std::string_view s, std::uint64_t seed) noexcept {
    constexpr std::uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull, k2 = 0x8ebc6af09c88c6e3ull;
    const auto load = [](const char* p) noexcept {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        return w;
    };
    const char* p = s.data();
    std::size_t n = s.size();
    std::uint64_t h = seed ^ (n * k0);
    for (; n > 16; p += 16, n -= 16) h = fold_mul(load(p) ^ k1 ^ h, load(p + 8) ^ k2);
    // The last 1..16 bytes with (possibly overlapping) fixed-size loads.
    std::uint64_t a = 0, b = 0;
    if (n >= 8) {
        a = load(p);
        b = load(p + n - 8);
    } else if (n >= 4) {
        std::uint32_t x, y;
        std::memcpy(&x, p, 4);
        std::memcpy(&y, p + n - 4, 4);
        a = x;
        b = y;
    } else if (n > 0) {
        a = (std::uint64_t{static_cast<unsigned char>(p[0])} << 16) |
            (std::uint64_t{static_cast<unsigned char>(p[n / 2])} << 8) | static_cast<unsigned char>(p[n - 1]);
    }
    return fold_mul(fold_mul(a ^ k1 ^ h, b ^ k2) ^ k0, k1 ^ seed);
}

// Per-thread cache of topic readings. A device publishes on the same few
// topics again and again, and finding a topic here (one hash over it, one
// comparison) costs a fraction of reading it level by level. Four-way set
// associative with clock replacement (a way hit since the hand last passed
// is spared once), keyed by model id and topic; the hash is seeded, so a
// client cannot aim topics at one set. Only topics that are free or reach a
// class are kept: a refused topic gets its reason text built anyway.
// Entries of a replaced model never match again and are overwritten as
// their slots are reused. Allocated on a thread's first check (about
// 140 KB); afterwards a miss allocates only to store a topic longer than
// the one its slot held.
class topic_cache {
public:
    static constexpr std::size_t ways = 4;
    static constexpr std::size_t sets = 256;
    static constexpr std::size_t max_topic = 256;  // longer topics are read every time

    using entry = cached_reading;

    static topic_cache& mine() {
        thread_local std::unique_ptr<topic_cache> cache;
        if (!cache) cache = std::make_unique<topic_cache>();
        return *cache;
    }

    entry* find(std::uint64_t model_id, std::uint64_t hash, std::string_view topic) noexcept {
        set& s = sets_[hash & (sets - 1)];
        for (std::size_t w = 0; w < ways; ++w) {
            if (s.hash[w] != hash) continue;
            entry& e = s.way[w];
            if (e.model_id == model_id && e.topic.size() == topic.size() &&
                std::memcmp(e.topic.data(), topic.data(), topic.size()) == 0) {
                s.used |= static_cast<std::uint8_t>(1u << w);
                return &e;
            }
        }
        return nullptr;
    }

    entry& store(std::uint64_t model_id, std::uint64_t hash, std::string_view topic, const topic_reading& r,
                 model_stats::subtree_counters& counters) {
        set& s = sets_[hash & (sets - 1)];
        while (s.used & (1u << s.hand)) {
            s.used &= static_cast<std::uint8_t>(~(1u << s.hand));
            s.hand = static_cast<std::uint8_t>((s.hand + 1) % ways);
        }
        const std::size_t w = s.hand;
        s.hand = static_cast<std::uint8_t>((s.hand + 1) % ways);
        entry& e = s.way[w];
        s.hash[w] = 0;
        e.model_id = 0;  // stays empty if the copy below throws
        e.topic.assign(topic);
        e.reading = r;
        e.counters = &counters;
        e.model_id = model_id;
        s.hash[w] = hash;
        return e;
    }

private:
    struct set {
        std::array<std::uint64_t, ways> hash{};  // compared before any entry is touched
        std::uint8_t used = 0;                   // bit per way: hit since the hand passed
        std::uint8_t hand = 0;                   // next way to consider for replacement
        std::array<entry, ways> way;
    };
    std::array<set, sets> sets_;
};

// check() and evaluate() of a walked topic. A reading from the cache (the
// walk found it when it was made), or else the walk's own (the levels not
// fed are read now), stored in the cache when the topic is free or reaches
// a class. `counters` (check only) receives the subtree's counters when the
// reading came from or went into the cache.
verdict run_check(const model::impl& m, topic_walk& walk, std::optional<std::string_view> payload, bool retain,
                  model_stats::subtree_counters** counters) {
    verdict v;
    const std::string_view topic = walk.topic();
    v.topic = topic;
    if (topic.size() > max_topic_size) {
        // Not an MQTT topic (and level offsets would not fit 16 bits).
        v.result = outcome::violation;
        v.code = reason_code::topic_invalid;
        v.reason = "topic longer than 65,535 bytes";
        return v;
    }
    const walk_state& w = walk.finish();
    if (w.cached != nullptr) {
        if (counters != nullptr) *counters = w.cached->counters;
        apply(m, topic, w.cached->reading, v);
    } else {
        topic_reading fresh;
        if (!read_topic(m, topic, w, fresh, v)) return v;
        if (w.cacheable) {
            const std::string_view subtree = fresh.result == outcome::free ? std::string_view(m.free_filters[fresh.index])
                                                                           : topic.substr(0, fresh.subtree_len);
            const cached_reading& e =
                topic_cache::mine().store(m.id, w.hash, topic, fresh, m.stats->counters_for(subtree));
            if (counters != nullptr) *counters = e.counters;
        }
        apply(m, topic, fresh, v);
    }
    if (v.result == outcome::pass && payload) check_message(*v.klass, *payload, retain, v);
    return v;
}

verdict run_check(const model::impl& m, std::string_view topic, std::optional<std::string_view> payload, bool retain,
                  model_stats::subtree_counters** counters) {
    topic_walk walk(m, topic);
    return run_check(m, walk, payload, retain, counters);
}

}  // namespace

model::model(std::unique_ptr<impl> p) : impl_(std::move(p)) {
    impl_->id = model_ids.fetch_add(1, std::memory_order_relaxed) + 1;
}
model::~model() = default;

bool model::is_free(std::string_view topic) const noexcept { return free_index(*impl_, topic) != not_free; }

enforcement model::mode_for(std::string_view topic) const noexcept { return mode_of(*impl_, topic); }

verdict model::check(std::string_view topic, std::string_view payload, bool retain) const {
    model_stats::subtree_counters* counters = nullptr;
    verdict v = run_check(*impl_, topic, payload, retain, &counters);
    if (counters != nullptr) model_stats::add(*counters, model_stats::counter_for(v));
    else impl_->stats->record(v);
    return v;
}

verdict model::evaluate(std::string_view topic, std::string_view payload, bool retain) const {
    return run_check(*impl_, topic, payload, retain, nullptr);
}

verdict model::read(std::string_view topic) const { return run_check(*impl_, topic, std::nullopt, false, nullptr); }

verdict model::check(topic_walk& walk, std::string_view payload, bool retain) const {
    model_stats::subtree_counters* counters = nullptr;
    verdict v = run_check(*impl_, walk, payload, retain, &counters);
    if (counters != nullptr) model_stats::add(*counters, model_stats::counter_for(v));
    else impl_->stats->record(v);
    return v;
}

verdict model::evaluate(topic_walk& walk, std::string_view payload, bool retain) const {
    return run_check(*impl_, walk, payload, retain, nullptr);
}

// ---- topic_walk ----------------------------------------------------------------

topic_walk::topic_walk(const model& m, std::string_view topic) noexcept : topic_walk(*m.impl_, topic) {}

// The arrays of s_ are left uninitialised on purpose (see the header).
topic_walk::topic_walk(const model::impl& m, std::string_view topic) noexcept : model_(&m), topic_(topic) {
    s_.node = m.nodes.front().get();
    if (topic.size() > topic_cache::max_topic) return;
    s_.cacheable = true;
    s_.hash = topic_hash(topic, process_seed());
    // mine() allocates the cache on a thread's first check; out of memory
    // there, the topic is simply walked.
    try {
        s_.cached = topic_cache::mine().find(m.id, s_.hash, topic);
    } catch (const std::bad_alloc&) {
        s_.cacheable = false;
    }
    if (s_.cached != nullptr) s_.how = stop::cached;
}

bool topic_walk::step(std::string_view level, std::size_t begin) noexcept {
    state& w = s_;
    if (w.how != stop::walking) return false;
    if (begin == 0) {
        if (const std::size_t f = free_index(*model_, level, topic_); f != not_free) {
            w.how = stop::free;
            w.free_index = static_cast<std::uint32_t>(f);
            return false;
        }
    }
    const std::size_t end = begin + level.size();
    if (level.empty()) {
        w.how = stop::empty_level;
        w.fail_begin = begin;
        w.fail_end = end;
        return false;
    }
    const model_edge* e = w.node->edge_for(level, model_->levels);
    if (e->to == nullptr || w.steps == max_steps) {
        w.how = stop::dead;
        w.fail_begin = begin;
        w.fail_end = end;
        return false;
    }
    w.edges[w.steps] = e;
    w.begin[w.steps] = static_cast<std::uint32_t>(begin);
    w.end[w.steps] = static_cast<std::uint32_t>(end);
    ++w.steps;
    w.node = e->to;
    w.pos = end + 1;  // past the '/', or past the end
    if (w.node->absorbing) {
        w.how = stop::absorbed;
        return false;
    }
    return true;
}

const topic_walk::state& topic_walk::finish() noexcept {
    while (s_.how == stop::walking && s_.pos <= topic_.size()) {
        const std::size_t slash = topic_.find('/', s_.pos);
        const std::size_t end = slash == std::string_view::npos ? topic_.size() : slash;
        step(topic_.substr(s_.pos, end - s_.pos), s_.pos);
    }
    return s_;
}

// ---- walk ------------------------------------------------------------------

const model_node* model::root() const noexcept { return impl_->nodes.front().get(); }

const model_node* model::child(const model_node* node, std::string_view level) const noexcept {
    if (node == nullptr || level.empty()) return nullptr;
    if (node->absorbing) return node;
    return node->edge_for(level, impl_->levels)->to;
}

bool model::accepting(const model_node* node) const noexcept { return node != nullptr && node->klass != nullptr; }
bool model::absorbing(const model_node* node) const noexcept { return node != nullptr && node->absorbing; }
const data_class* model::class_at(const model_node* node) const noexcept { return node ? node->klass : nullptr; }
std::size_t model::node_count() const noexcept { return impl_->nodes.size(); }

// ---- quarantine --------------------------------------------------------------

const std::string& model::dead_letter_prefix() const noexcept { return impl_->dead_letter; }

std::string model::quarantine_topic(std::string_view topic) const {
    std::string out = impl_->dead_letter;
    out += '/';
    out += topic;
    return out;
}

std::string model::quarantine_envelope(std::string_view topic, std::string_view payload, bool retain, const verdict& v) {
    nlohmann::ordered_json j;
    // Topics come from the codec, which has checked their UTF-8; be safe anyway.
    j["topic"] = valid_utf8(topic) ? std::string(topic) : base64(topic);
    j["reason"] = v.reason;
    j["code"] = std::string(to_string(v.code));
    if (v.klass != nullptr) j["class"] = v.klass->name;
    j["retain"] = retain;
    if (valid_utf8(payload)) j["payload"] = std::string(payload);
    else j["payload_base64"] = base64(payload);
    // The reason is built from model and payload text; never let a stray
    // byte turn into an exception on the data path.
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// ---- introspection -------------------------------------------------------------

const std::vector<level_rule_info>& model::levels() const noexcept { return impl_->level_infos; }
const std::vector<data_class>& model::classes() const noexcept { return impl_->classes; }
bool model::level_accepts(std::size_t index, std::string_view name) const noexcept {
    return index < impl_->levels.size() && impl_->levels[index].accepts(name);
}
std::vector<std::string> model::class_filters(std::string_view klass) const {
    const data_class* c = find_class(klass);
    if (c == nullptr) return {};
    const auto& levels = impl_->level_infos;
    const auto literal = [](const level_rule_info& l) {
        return !l.any && l.pattern.empty() && l.names.size() == 1 ? std::string_view(l.names.front())
                                                                  : std::string_view("+");
    };
    std::set<std::string> out;
    for (const std::size_t last : c->under) {
        // The optional levels before `last` (which is present: the class follows it).
        std::vector<std::size_t> optional;
        for (std::size_t i = 0; i < last; ++i)
            if (levels[i].optional) optional.push_back(i);
        // At most max_levels optional levels: 2^16 ways at worst; the
        // filters differ only where a skipped level is written out.
        for (std::uint32_t present = 0; present < (1u << optional.size()); ++present) {
            std::string f;
            std::size_t next_optional = 0;
            for (std::size_t i = 0; i <= last; ++i) {
                if (next_optional < optional.size() && optional[next_optional] == i) {
                    if ((present & (1u << next_optional++)) == 0) continue;
                }
                f += literal(levels[i]);
                f += '/';
            }
            f += c->name;
            f += "/#";
            out.insert(std::move(f));
        }
    }
    return {out.begin(), out.end()};
}

const data_class* model::find_class(std::string_view name) const noexcept {
    const auto it = impl_->class_index.find(name);
    return it == impl_->class_index.end() ? nullptr : &impl_->classes[it->second];
}
const std::vector<std::string>& model::free_filters() const noexcept { return impl_->free_filters; }
const std::vector<mode_override>& model::overrides() const noexcept { return impl_->overrides; }
enforcement model::default_mode() const noexcept { return impl_->default_mode; }
std::size_t model::metrics_level() const noexcept { return impl_->metrics_level; }
const std::string& model::source() const noexcept { return impl_->source; }
const std::vector<std::string>& model::warnings() const noexcept { return impl_->warnings; }
model_stats& model::stats() const noexcept { return *impl_->stats; }
std::shared_ptr<model_stats> model::shared_stats() const noexcept { return impl_->stats; }

std::string model::explain(std::string_view topic, std::optional<std::string_view> payload, bool retain) const {
    const impl& m = *impl_;
    std::size_t width = 10;
    for (const level_rule& l : m.levels) width = std::max(width, l.info.name.size() + 2);
    std::ostringstream out;
    const auto row = [&](std::string_view label, const std::string& text) {
        out << label;
        for (std::size_t i = label.size(); i < width; ++i) out << ' ';
        out << text << '\n';
    };
    const auto quote = [](std::string_view s) { return "'" + std::string(s) + "'"; };
    const auto pad = [](std::string s, std::size_t n) {
        if (s.size() < n) s.append(n - s.size(), ' ');
        return s;
    };

    row("topic", std::string(topic));
    row("model", m.source);
    const verdict v = evaluate(topic, payload.value_or(std::string_view{}), retain);

    if (v.result == outcome::free) {
        std::size_t line = 0;
        for (std::size_t i = 0; i < m.free_filters.size(); ++i)
            if (m.free_filters[i] == v.subtree) line = static_cast<std::size_t>(m.free_lines[i]);
        std::string text = "yes: matches " + quote(v.subtree);
        if (v.subtree == m.dead_letter + "/#") text += " (the dead-letter tree)";
        else if (line != 0) text += " (line " + std::to_string(line) + ")";
        row("free", text + "; nothing else is checked");
        row("verdict", "free");
        return out.str();
    }
    row("free", "no");

    // Levels: what each got; for a violation, up to where reading stopped.
    std::size_t last = 0;
    for (std::size_t i = 0; i < m.levels.size(); ++i)
        if (!v.level(i).empty()) last = i + 1;
    for (std::size_t i = 0; i < last; ++i) {
        const level_rule& l = m.levels[i];
        const std::string rule = std::string(l.info.optional ? "optional, " : "") + l.info.describe();
        if (!v.level(i).empty()) row(l.info.name, pad(quote(v.level(i)), 16) + " " + rule);
        else row(l.info.name, pad("-", 16) + " skipped (" + rule + ")");
    }

    if (v.klass != nullptr) {
        const data_class& c = *v.klass;
        row("class", pad(quote(c.name), 16) + " (line " + std::to_string(c.line) + ")");
        if (!v.subpath.empty()) row("subtopic", quote(v.subpath));
        row("schema", c.schema ? c.schema_source : "none (payload not checked)");
        std::string rr(to_string(c.retain));
        rr += retain ? " (this publish: retain=1)" : " (this publish: retain=0)";
        row("retain", rr);
        if (c.expected_period) row("period", format_period(*c.expected_period));
        row("command", c.command ? "yes (publishing here needs the 'command' grant)" : "no");
    }
    {
        std::string mode(to_string(v.mode));
        bool overridden = false;
        for (std::size_t i : m.override_order) {
            if (m.override_compiled[i].matches(topic)) {
                mode += " (override " + quote(m.overrides[i].filter) + ", line " + std::to_string(m.overrides[i].line) + ")";
                overridden = true;
                break;
            }
        }
        if (!overridden) mode += " (model default)";
        row("mode", mode);
    }
    if (v.klass != nullptr && v.klass->schema) {
        if (!payload.has_value()) row("payload", "not given (schema not checked)");
        else if (retain && payload->empty()) row("payload", "empty retained message: deletes the retained message");
        else if (v.code == reason_code::payload_invalid) row("payload", "invalid: " + v.reason.substr(9));
        else if (v.code == reason_code::retain_violation) row("payload", "not checked (retain rule failed first)");
        else row("payload", "valid");
    }
    if (v.result == outcome::pass) {
        row("verdict", "pass");
    } else {
        std::string what = "violation: " + std::string(to_string(v.code));
        char code[8];
        std::snprintf(code, sizeof code, "0x%02X", v.mqtt_reason());
        what += std::string(" (MQTT 5 reason ") + code + ")";
        row("verdict", what);
        row("reason", v.reason);
        switch (v.mode) {
        case enforcement::reject: row("action", "reject: refused (5.0: reason code above; 3.1.1: dropped), counted"); break;
        case enforcement::warn: row("action", "warn: delivered, logged and counted"); break;
        case enforcement::quarantine:
            row("action", "quarantine: re-published to " + quote(quarantine_topic(topic)) + " with the reason");
            break;
        }
    }
    return out.str();
}

}  // namespace strata::ns
