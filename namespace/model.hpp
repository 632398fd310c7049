// The ISA-95 namespace model: which topics belong in the Unified Namespace,
// what their payloads must look like, and what happens when they don't.
//
// A model file (YAML, see deploy/namespace/acme.yaml for a commented
// example) declares
//   - levels, in order (enterprise, site, area, line, cell, equipment), each
//     accepting a list of names, a pattern (ECMAScript, whole level), both,
//     or any name; a level may be optional;
//   - data classes (telemetry, state, oee, alarm, cmd, ...) that follow the
//     last level (or the levels named in `under:`), each with an optional
//     JSON Schema (draft 7) for the payload, an expected update period, a
//     retain rule and a command flag. Every topic below a class
//     (".../press-7/telemetry/temperature") belongs to that class;
//   - free subtrees (topic filters) that are not checked at all;
//   - the enforcement mode (reject, warn, quarantine) with overrides per
//     subtree, and the dead-letter prefix for quarantine.
//
// Reading a topic (the rule that resolves optional levels): levels are
// matched left to right. Where a data class may follow, a topic level equal
// to that class's name is read as the class, before it is tried as a level
// name. An optional level is tried present first, then skipped. The first
// reading, in that order of preference, that reaches a data class wins.
// Examples with `cell` optional and classes after `equipment`:
//   acme/dresden/press-shop/line-2/cell-1/press-7/telemetry  cell = cell-1
//   acme/dresden/press-shop/line-2/press-7/telemetry         cell skipped
// The loader warns when a class name is also accepted by a level's list or
// pattern (then a topic could be read two ways); explain() shows the reading.
// Empty levels ("a//b", a trailing '/') are never part of a modelled topic.
//
// Checking a publish: free subtrees first (outcome free); then the topic
// (topic_invalid); then the retain rule (retain_violation); then the payload
// against the class schema (payload_invalid). An empty retained payload is a
// request to delete a retained message: its topic is checked, its retain
// rule and payload are not.
//
// Errors: load()/parse() throw model_error (start-up and reload only). On
// the data path problems are values: check()/evaluate() return a verdict
// and throw nothing but std::bad_alloc.
//
// Thread-safety: a model is immutable after load()/parse() and every const
// member may be called from any number of threads at once. The statistics
// object it points to is updated with relaxed atomics (see model_stats).
// check() and evaluate() share a per-thread topic cache (thread_local, one
// per thread that checks, never shared), keyed by a process-unique model id.
// Replace a model by swapping a std::shared_ptr<const model> (e.g. with
// std::atomic<std::shared_ptr<const model>>); a verdict holds string_views
// into the model and into the checked topic, so keep both alive while you
// use it.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace strata::ns {

class json_schema;
class model_stats;
class topic_walk;
class model_node;
struct model_edge;
struct cached_reading;

// A model file that cannot be loaded: "file:line: key.path: message".
class model_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class outcome : std::uint8_t { pass, free, violation };
enum class enforcement : std::uint8_t { reject, warn, quarantine };
enum class reason_code : std::uint8_t { none, topic_invalid, payload_invalid, retain_violation };
enum class retain_rule : std::uint8_t { any, required, forbidden };

[[nodiscard]] std::string_view to_string(outcome o) noexcept;
[[nodiscard]] std::string_view to_string(enforcement e) noexcept;
[[nodiscard]] std::string_view to_string(reason_code r) noexcept;
[[nodiscard]] std::string_view to_string(retain_rule r) noexcept;

// MQTT 5 reason code for a PUBACK/PUBREC that refuses the message:
// topic_invalid 0x90 (Topic Name invalid), payload_invalid 0x99 (Payload
// format invalid), retain_violation 0x83 (Implementation specific error;
// 0x9A Retain not supported is not allowed in PUBACK). none: 0x00.
[[nodiscard]] std::uint8_t mqtt_reason_code(reason_code r) noexcept;

inline constexpr std::size_t max_levels = 16;

struct level_rule_info {
    std::string name;                // "site"
    bool optional = false;
    bool any = false;                // accepts every non-empty name
    std::vector<std::string> names;  // document order
    std::string pattern;             // empty: none
    [[nodiscard]] std::string describe() const;  // "one of [dresden, leipzig]", "pattern 'line-[0-9]+'"
};

struct data_class {
    std::string name;                // "telemetry"
    std::size_t index = 0;           // position in model::classes()
    retain_rule retain = retain_rule::any;
    bool command = false;            // publishing here is a command (auth: `command` grant)
    std::optional<std::chrono::milliseconds> expected_period;  // for stale detection
    std::vector<std::size_t> under;  // level indices the class may follow
    std::string schema_source;       // path as written, "inline", or empty (no schema)
    std::shared_ptr<const json_schema> schema;  // null: payload not checked
    int line = 0;                    // where the class is declared in the model file
};

// Where each model level lies in a topic: level i is the topic's bytes
// [begin[i], begin[i] + size[i]); size 0: skipped or not reached. 16 bits
// hold every offset: an MQTT topic is at most 65,535 bytes.
struct level_spans {
    std::array<std::uint16_t, max_levels> begin{};
    std::array<std::uint16_t, max_levels> size{};
};

struct verdict {
    outcome result = outcome::pass;
    // The mode for this topic (default or the most specific override).
    // What to do with a violation; informational otherwise.
    enforcement mode = enforcement::reject;
    reason_code code = reason_code::none;
    bool command = false;                 // the class is a command class
    const data_class* klass = nullptr;    // null when no class was reached
    std::string reason;                   // empty unless violation
    std::string_view topic;               // the checked topic
    // The model levels in `topic`, for the reading chosen; for a violation,
    // the levels read before the problem. See level().
    level_spans spans;
    std::string_view subpath;             // topic below the class ("temperature")
    // Metrics key: the topic prefix up to the model's metrics level
    // ("acme/dresden"), the free filter for free topics, or empty when the
    // topic failed before reaching that level.
    std::string_view subtree;

    // Topic text of model level i (empty: skipped or not reached).
    [[nodiscard]] std::string_view level(std::size_t i) const noexcept {
        return {topic.data() + spans.begin[i], spans.size[i]};
    }
    [[nodiscard]] bool violation() const noexcept { return result == outcome::violation; }
    // Whether the message goes on to its subscribers (and is retained): it
    // passed, is free, or its mode is warn.
    [[nodiscard]] bool admitted() const noexcept { return !violation() || mode == enforcement::warn; }
    [[nodiscard]] std::uint8_t mqtt_reason() const noexcept { return mqtt_reason_code(code); }
};

// One filter -> mode override from the model file.
struct mode_override {
    std::string filter;
    enforcement mode = enforcement::reject;
    int line = 0;
};

struct lint_report {
    std::string error;                  // empty: the model loads
    std::vector<std::string> warnings;  // "file:line: key.path: message"
    [[nodiscard]] bool ok() const noexcept { return error.empty(); }
};

class model {
public:
    // Loads a model file; schema paths are relative to its directory.
    // Throws model_error. Pass the previous model's stats() to keep
    // counters across a reload.
    [[nodiscard]] static std::shared_ptr<const model> load(const std::string& path,
                                                           std::shared_ptr<model_stats> stats = nullptr);
    // Parses model text; `name` is used in messages, `base_dir` resolves
    // schema paths.
    [[nodiscard]] static std::shared_ptr<const model> parse(std::string_view text, const std::string& name,
                                                            const std::string& base_dir,
                                                            std::shared_ptr<model_stats> stats = nullptr);
    // For `strata namespace check MODEL`: loads and reports instead of
    // throwing.
    [[nodiscard]] static lint_report lint(const std::string& path);

    ~model();
    model(const model&) = delete;
    model& operator=(const model&) = delete;

    // ---- the data path ------------------------------------------------

    // Checks one publish and counts it in stats(). `topic` must be a valid
    // topic name (no wildcards). What the topic alone decides is cached per
    // thread and topic (up to 256 bytes), so repeated publishes on a topic
    // do not read it level by level again. Does not allocate when the
    // message passes, its topic was seen before and its class has no schema
    // (then the payload is not looked at).
    [[nodiscard]] verdict check(std::string_view topic, std::string_view payload, bool retain) const;
    // The same without counting (explain, tests, dry runs).
    [[nodiscard]] verdict evaluate(std::string_view topic, std::string_view payload, bool retain) const;
    // The topic's reading alone (levels, class, subpath, mode), through the
    // same per-thread cache: no payload or retain rule is checked and
    // nothing is counted. For the grants and bridges that ask "which levels
    // and class is this topic?". A topic the model cannot read is a
    // violation whose spans hold the levels read before the problem.
    [[nodiscard]] verdict read(std::string_view topic) const;
    // The same for a topic walked level by level by the caller (see
    // topic_walk): the levels' rules come from the walk (or from the
    // per-thread cache when the walk found the topic there); levels the
    // caller did not feed are read here. `walk` must be a walk of this
    // model.
    [[nodiscard]] verdict check(topic_walk& walk, std::string_view payload, bool retain) const;
    [[nodiscard]] verdict evaluate(topic_walk& walk, std::string_view payload, bool retain) const;

    [[nodiscard]] bool is_free(std::string_view topic) const noexcept;
    [[nodiscard]] enforcement mode_for(std::string_view topic) const noexcept;

    // ---- per-level walk (for a routing trie that knows the model) ------
    //
    // root() is the state before the first level; child() reads one topic
    // level and returns the next state, or nullptr when no reading of the
    // topic so far can be completed (the topic is outside the model). The
    // states are built at load time: child() is one hash lookup plus the
    // level patterns that still matter, with no allocation. Free subtrees
    // and overrides are not part of the walk (use is_free / mode_for).
    [[nodiscard]] const model_node* root() const noexcept;
    [[nodiscard]] const model_node* child(const model_node* node, std::string_view level) const noexcept;
    // A topic that ends at `node` is complete (a class was reached).
    [[nodiscard]] bool accepting(const model_node* node) const noexcept;
    // Every further level is the class's subtopic: child() returns `node`.
    [[nodiscard]] bool absorbing(const model_node* node) const noexcept;
    // The class of the preferred reading ending at `node`, or null.
    [[nodiscard]] const data_class* class_at(const model_node* node) const noexcept;
    [[nodiscard]] std::size_t node_count() const noexcept;

    // ---- quarantine ----------------------------------------------------

    [[nodiscard]] const std::string& dead_letter_prefix() const noexcept;
    // "<prefix>/<topic>".
    [[nodiscard]] std::string quarantine_topic(std::string_view topic) const;
    // {"topic":..., "reason":..., "code":..., "class":..., "retain":...,
    //  "payload": "<text>" or "payload_base64": "<base64>"} -- the payload
    // as a JSON string when it is valid UTF-8, base64 otherwise.
    [[nodiscard]] static std::string quarantine_envelope(std::string_view topic, std::string_view payload,
                                                         bool retain, const verdict& v);

    // ---- introspection -------------------------------------------------

    // Multi-line human text: the reading of each level, class, schema,
    // retain rule, mode and the verdict (payload checked when given).
    [[nodiscard]] std::string explain(std::string_view topic,
                                      std::optional<std::string_view> payload = std::nullopt,
                                      bool retain = false) const;

    [[nodiscard]] const std::vector<level_rule_info>& levels() const noexcept;
    [[nodiscard]] const std::vector<data_class>& classes() const noexcept;
    // Whether level `index` (into levels()) accepts `name` by its names,
    // pattern or `any`. False for an empty name or an index out of range.
    [[nodiscard]] bool level_accepts(std::size_t index, std::string_view name) const noexcept;
    [[nodiscard]] const data_class* find_class(std::string_view name) const noexcept;
    // Topic filters that together match every topic of class `klass` (one
    // per way the levels before it may be present: optional levels present
    // or skipped), e.g. "acme/+/+/+/+/cmd/#" and "acme/+/+/+/+/+/cmd/#". A
    // level with a single name and no pattern is written out, the others are
    // '+'. They may match topics of other classes too (a filter does not know
    // patterns): read the topic to be exact. Empty for an unknown class.
    [[nodiscard]] std::vector<std::string> class_filters(std::string_view klass) const;
    [[nodiscard]] const std::vector<std::string>& free_filters() const noexcept;
    [[nodiscard]] const std::vector<mode_override>& overrides() const noexcept;
    [[nodiscard]] enforcement default_mode() const noexcept;
    [[nodiscard]] std::size_t metrics_level() const noexcept;  // index into levels()
    [[nodiscard]] const std::string& source() const noexcept;  // file name as given
    // Findings that do not stop loading, "file:line: key.path: message".
    [[nodiscard]] const std::vector<std::string>& warnings() const noexcept;

    [[nodiscard]] model_stats& stats() const noexcept;
    [[nodiscard]] std::shared_ptr<model_stats> shared_stats() const noexcept;

    struct impl;

private:
    friend class topic_walk;
    explicit model(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

// A topic read by a caller that splits it into levels anyway: the routing
// trie (subscription_trie::match with a level observer) feeds each level to
// step() as it descends, so the model's rules for a level are found while
// the topic is matched and the topic is not read a second time. Then
// model::check(walk, payload, retain) gives exactly the verdict
// model::check(topic, payload, retain) gives. A caller may stop feeding
// early (or never start): check() reads the levels that were not fed.
//
// A topic whose reading this thread has already made (the per-thread cache
// of check(), up to 256 bytes) is not walked again: construction finds it
// there (one hash over the topic), step() returns false at once, and
// check() takes the reading from the cache. So the rules of a topic's
// levels are found by the walk that routes its first message (and every
// message of a topic the cache does not keep), and a repeated topic costs
// one cache lookup. The first level also decides whether the topic is free.
//
// Construction leaves the arrays alone (only [0, steps) is ever read); no
// allocation. Thread-safety: one walk per topic and thread, checked on the
// thread that made it, with no other check on that thread in between; the
// model and the topic must outlive it.
class topic_walk {
public:
    topic_walk(const model& m, std::string_view topic) noexcept;

    // Reads the level topic[begin, begin + level.size()). Levels come in
    // order, each starting one byte ('/') after the previous one ended.
    // Returns whether the walk needs the next level: false once the topic
    // is free, outside the model, or inside a data class (whose subtopic
    // check() reads as text).
    bool step(std::string_view level, std::size_t begin) noexcept;

    [[nodiscard]] std::string_view topic() const noexcept { return topic_; }

    // ---- read by the model (model.cpp), not part of the interface -------
    enum class stop : std::uint8_t { walking, absorbed, dead, empty_level, free, cached };
    static constexpr std::size_t max_steps = max_levels + 2;
    struct state {
        const cached_reading* cached = nullptr;  // cached: the reading from the cache
        std::uint64_t hash = 0;                  // the cache's hash of the topic
        bool cacheable = false;                  // short enough for the cache
        const model_node* node = nullptr;  // last node reached
        std::size_t steps = 0;
        std::size_t pos = 0;               // where the next level starts
        stop how = stop::walking;
        std::uint32_t free_index = 0;      // free: the matching free filter
        std::size_t fail_begin = 0;        // dead / empty_level: the offending level
        std::size_t fail_end = 0;
        std::array<const model_edge*, max_steps> edges;
        std::array<std::uint32_t, max_steps> begin;  // level offsets in the topic
        std::array<std::uint32_t, max_steps> end;
    };
    topic_walk(const model::impl& m, std::string_view topic) noexcept;
    // Feeds the levels not fed yet; the finished state.
    const state& finish() noexcept;

private:
    const model::impl* model_;
    std::string_view topic_;
    state s_;
};

}  // namespace strata::ns
