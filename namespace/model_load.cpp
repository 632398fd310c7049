// Loading a model file: YAML -> checked rules -> walk automaton.
//
// The walk is strict for the same reason as the broker's config loader: a
// model is edited by hand, and a typo that silently changes what the broker
// lets through (a misspelt `optional`, a schema file that moved, a subtree
// override nobody can ever hit) is worse than a model that does not load.
// So unknown and duplicate keys are errors, every scalar is type-checked
// (namespace/yaml_reader.hpp), and rules that can never apply are errors;
// the first problem is thrown as a model_error naming file:line: key.path.
// Things that are legal but probably not meant (a listed name that the
// level's pattern accepts anyway, an override with the mode it would
// inherit, a class name that a level also accepts) become warnings.
//
// Lines come from YAML::Mark (0-based, hence +1). An empty value carries the
// mark of the next token, so errors about an empty value point at its key.
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "namespace/model_impl.hpp"
#include "namespace/model_schema.hpp"
#include "namespace/topic.hpp"
#include "namespace/yaml_reader.hpp"

namespace strata::ns {
namespace {

using json = nlohmann::json;

using yaml::describe;
using yaml::value_ref;

// yaml::reader plus what only a model has: warnings, collected into the
// model rather than thrown, and enforcement modes.
class reader : public yaml::reader {
public:
    reader(std::string file, std::vector<std::string>& warnings)
        : yaml::reader(std::move(file)), warnings_(warnings) {}

    void warn(const YAML::Mark& mark, std::string_view path, std::string_view msg) const {
        warnings_.push_back(where(mark, path) + std::string(msg));
    }
    void warn(const value_ref& v, std::string_view msg) const { warn(v.mark, v.path, msg); }

    enforcement read_mode(const value_ref& v) const {
        const std::string s = read_string(v);
        if (s == "reject") return enforcement::reject;
        if (s == "warn") return enforcement::warn;
        if (s == "quarantine") return enforcement::quarantine;
        fail(v, "unknown enforcement mode '" + s + "' (expected reject, warn or quarantine)");
    }

private:
    std::vector<std::string>& warnings_;
};

// A topic level a model may name: non-empty, no separators or wildcards.
std::string level_text_problem(std::string_view s) {
    if (s.empty()) return "must not be empty";
    if (s.find('/') != std::string_view::npos) return "must not contain '/' (one topic level only)";
    if (s.find_first_of("+#") != std::string_view::npos) return "must not contain the wildcards '+' or '#'";
    if (s.find('\0') != std::string_view::npos) return "must not contain NUL";
    return {};
}

std::vector<std::string_view> split_levels(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (true) {
        const std::size_t slash = s.find('/', start);
        out.push_back(s.substr(start, slash == std::string_view::npos ? s.npos : slash - start));
        if (slash == std::string_view::npos) return out;
        start = slash + 1;
    }
}

// True when every topic that `inner` matches is also matched by `outer`.
bool filter_covers(std::string_view outer, std::string_view inner) {
    const auto g = split_levels(outer);
    const auto f = split_levels(inner);
    for (std::size_t i = 0;; ++i) {
        if (i < g.size() && g[i] == "#") return true;
        if (i == f.size()) return i == g.size();
        if (i == g.size()) return false;
        if (f[i] == "#") return false;
        if (g[i] == "+") continue;
        if (f[i] == "+") return false;
        if (f[i] != g[i]) return false;
    }
}

// Specificity for choosing among overrides: level by level, a literal beats
// '+' beats '#'; a longer filter beats its prefix.
bool more_specific(std::string_view a, std::string_view b) {
    const auto x = split_levels(a);
    const auto y = split_levels(b);
    const auto rank = [](std::string_view l) { return l == "#" ? 0 : l == "+" ? 1 : 2; };
    for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
        const int rx = rank(x[i]);
        const int ry = rank(y[i]);
        if (rx != ry) return rx > ry;
    }
    return x.size() > y.size();
}

// ---- YAML -> JSON for inline schemas -------------------------------------

class yaml_to_json {
public:
    yaml_to_json(const reader& r, std::map<std::string, YAML::Mark>& marks) : r_(r), marks_(marks) {}

    json convert(const value_ref& v, const std::string& pointer, int depth = 0) {
        if (depth > 200) r_.fail(v, "nested too deeply");
        marks_[pointer] = v.mark;
        const YAML::Node& n = v.node;
        switch (n.Type()) {
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined: return nullptr;
        case YAML::NodeType::Scalar: return scalar(n);
        case YAML::NodeType::Sequence: {
            json out = json::array();
            std::size_t i = 0;
            r_.read_list(v, [&](const value_ref& e, std::size_t) {
                out.push_back(convert(e, pointer + "/" + std::to_string(i), depth + 1));
                ++i;
            });
            return out;
        }
        case YAML::NodeType::Map: {
            json out = json::object();
            r_.read_entries(v, [&](const std::string& key, const YAML::Mark&, const value_ref& e) {
                out[key] = convert(e, pointer + "/" + escape(key), depth + 1);
            });
            return out;
        }
        }
        return nullptr;
    }

private:
    static std::string escape(const std::string& s) {
        std::string out;
        for (char c : s) {
            if (c == '~') out += "~0";
            else if (c == '/') out += "~1";
            else out += c;
        }
        return out;
    }

    // YAML 1.2 core schema for plain scalars; quoted scalars are strings.
    static json scalar(const YAML::Node& n) {
        const std::string& s = n.Scalar();
        if (n.Tag() != "?") return s;
        if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
        if (s == "true" || s == "True" || s == "TRUE") return true;
        if (s == "false" || s == "False" || s == "FALSE") return false;
        const char* b = s.data();
        const char* e = s.data() + s.size();
        const char* digits = (*b == '-' || *b == '+') ? b + 1 : b;
        if (digits < e && std::all_of(digits, e, [](char c) { return c >= '0' && c <= '9'; })) {
            if (*b != '-') {
                std::uint64_t u = 0;
                const auto [p, ec] = std::from_chars(digits, e, u);
                if (ec == std::errc{} && p == e) return u;
            } else {
                std::int64_t i = 0;
                const auto [p, ec] = std::from_chars(b, e, i);
                if (ec == std::errc{} && p == e) return i;
            }
        }
        // Floats (JSON-compatible spelling) go through nlohmann's own parser.
        if (digits < e && ((*digits >= '0' && *digits <= '9') || *digits == '.')) {
            const json parsed = json::parse(*b == '+' ? s.substr(1) : s, nullptr, false);
            if (!parsed.is_discarded() && parsed.is_number()) return parsed;
        }
        return s;
    }

    const reader& r_;
    std::map<std::string, YAML::Mark>& marks_;
};

// ---- the loader ------------------------------------------------------------

class loader {
public:
    loader(model::impl& m, const reader& r) : m_(m), r_(r) {}

    void read_root(const value_ref& root) {
        // Sections are collected first and read in dependency order (the
        // file may list them in any order): classes refer to levels, the
        // automaton needs both, overrides are checked against the automaton.
        value_ref levels_v, classes_v, free_v, enforcement_v, metrics_v;
        bool have_free = false, have_enf = false, have_metrics = false;
        r_.read_map(root, {
            {"version",
             [&](const value_ref& x) {
                 if (!x.node.IsScalar() || x.node.Scalar() != "1")
                     r_.fail(x, "unsupported version " + describe(x.node) + " (expected 1)");
             }},
            {"description", [&](const value_ref& x) { (void)r_.read_string(x); }},
            {"levels", [&](const value_ref& x) { levels_v = x; }, true},
            {"classes", [&](const value_ref& x) { classes_v = x; }, true},
            {"free", [&](const value_ref& x) { free_v = x; have_free = true; }},
            {"enforcement", [&](const value_ref& x) { enforcement_v = x; have_enf = true; }},
            {"metrics", [&](const value_ref& x) { metrics_v = x; have_metrics = true; }},
        });
        read_levels(levels_v);
        read_classes(classes_v);
        m_.metrics_level = m_.levels.size() >= 2 ? 1 : 0;
        if (have_metrics) read_metrics(metrics_v);
        if (have_free) read_free(free_v);
        value_ref subtrees_v;
        bool have_subtrees = false;
        if (have_enf) read_enforcement(enforcement_v, subtrees_v, have_subtrees);
        add_dead_letter_free();
        build_automaton();
        check_dead_letter();
        if (have_subtrees) read_overrides(subtrees_v);
    }

private:
    // ---- levels ----

    void read_levels(const value_ref& v) {
        if (v.node.IsNull() || (v.node.IsSequence() && v.node.size() == 0)) r_.fail(v, "at least one level is required");
        if (!v.node.IsSequence()) r_.fail(v, "expected a list of levels, got " + describe(v.node));
        if (v.node.size() > max_levels)
            r_.fail(v, "at most " + std::to_string(max_levels) + " levels are supported (got " +
                           std::to_string(v.node.size()) + ")");
        r_.read_list(v, [&](const value_ref& item, std::size_t index) { read_level(item, index); });
        // Skipping the last level leads nowhere: a class follows the last
        // level read, whatever comes after it in the model. So `optional`
        // there would silently mean nothing.
        const level_rule& last = m_.levels.back();
        if (last.info.optional) {
            YAML::Mark mark;
            mark.line = last.line - 1;
            r_.fail(mark, "levels[" + std::to_string(m_.levels.size() - 1) + "]",
                    "the last level ('" + last.info.name + "') cannot be optional; to let data classes follow '" +
                        (m_.levels.size() >= 2 ? m_.levels[m_.levels.size() - 2].info.name : std::string("the level before")) +
                        "' as well, list it in their 'under'");
        }
    }

    void read_level(const value_ref& item, std::size_t index) {
        level_rule rule;
        rule.line = item.mark.line + 1;
        bool any_set = false;
        value_ref names_v, pattern_v, name_v;
        bool have_names = false, have_pattern = false;
        r_.read_map(item, {
            {"name",
             [&](const value_ref& x) {
                 name_v = x;
                 rule.info.name = r_.read_string(x);
                 const bool ok = !rule.info.name.empty() &&
                                 std::all_of(rule.info.name.begin(), rule.info.name.end(), [](unsigned char c) {
                                     return std::isalnum(c) || c == '-' || c == '_';
                                 });
                 if (!ok) r_.fail(x, "level names use letters, digits, '-' and '_' (got '" + rule.info.name + "')");
             },
             true},
            {"names", [&](const value_ref& x) { names_v = x; have_names = true; }},
            {"pattern", [&](const value_ref& x) { pattern_v = x; have_pattern = true; }},
            {"any", [&](const value_ref& x) { rule.info.any = r_.read_bool(x); any_set = true; }},
            {"optional", [&](const value_ref& x) { rule.info.optional = r_.read_bool(x); }},
            {"description", [&](const value_ref& x) { (void)r_.read_string(x); }},
        });
        for (const level_rule& other : m_.levels)
            if (other.info.name == rule.info.name)
                r_.fail(name_v, "duplicate level name '" + rule.info.name + "' (also on line " + std::to_string(other.line) + ")");

        if (rule.info.any && (have_names || have_pattern))
            r_.fail(item, "'any: true' accepts every name; remove 'names' and 'pattern' or set 'any: false'");
        if (!rule.info.any && !have_names && !have_pattern)
            r_.fail(item, any_set ? "'any: false' needs 'names' or 'pattern'"
                                  : "level '" + rule.info.name + "' needs 'names', 'pattern' or 'any: true'");

        if (have_names) {
            if (!names_v.node.IsSequence() || names_v.node.size() == 0)
                r_.fail(names_v, "expected a non-empty list of names, got " + describe(names_v.node));
            std::map<std::string, std::string> seen;
            r_.read_list(names_v, [&](const value_ref& n, std::size_t) {
                const std::string name = r_.read_string(n);
                const std::string problem = level_text_problem(name);
                if (!problem.empty()) r_.fail(n, "name '" + name + "' " + problem);
                if (index == 0 && name.starts_with('$'))
                    r_.fail(n, "name '" + name + "': topics starting with '$' are reserved for the broker");
                const auto [pos, fresh] = seen.emplace(name, n.path);
                if (!fresh) r_.fail(n, "duplicate name '" + name + "' (also " + pos->second + ")");
                rule.info.names.push_back(name);
                rule.names.insert(name);
            });
        }
        if (have_pattern) {
            const std::string p = r_.read_string(pattern_v);
            if (p.empty()) r_.fail(pattern_v, "the pattern must not be empty");
            try {
                rule.pattern = std::make_unique<compiled_pattern>(compiled_pattern::compile(p, compiled_pattern::mode::full));
            } catch (const pattern_error& e) {
                r_.fail(pattern_v, "invalid pattern '" + p + "' at offset " + std::to_string(e.offset()) + ": " + e.what());
            }
            const std::optional<bool> can = rule.pattern->can_match_level_name();
            if (can.has_value() && !*can)
                r_.fail(pattern_v, "pattern '" + p + "' can never match a topic level (a level is non-empty and has no '/', '+' or '#')");
            rule.info.pattern = p;
            if (index == 0 && rule.pattern->match("$SYS"))
                r_.warn(pattern_v, "pattern '" + p + "' accepts '$SYS'; topics starting with '$' are broker topics");
            if (have_names) {
                std::size_t i = 0;
                r_.read_list(names_v, [&](const value_ref& n, std::size_t) {
                    if (rule.pattern->match(rule.info.names[i]))
                        r_.warn(n, "name '" + rule.info.names[i] + "' is also matched by the pattern '" + p + "' (redundant)");
                    ++i;
                });
            }
        }
        m_.levels.push_back(std::move(rule));
        m_.level_infos.push_back(m_.levels.back().info);
    }

    std::size_t level_index(const value_ref& v, const std::string& name) const {
        for (std::size_t i = 0; i < m_.levels.size(); ++i)
            if (m_.levels[i].info.name == name) return i;
        std::string known;
        for (const level_rule& l : m_.levels) known += (known.empty() ? "" : ", ") + l.info.name;
        r_.fail(v, "unknown level '" + name + "' (levels: " + known + ")");
    }

    // ---- classes ----

    void read_classes(const value_ref& v) {
        if (v.node.IsNull() || (v.node.IsMap() && v.node.size() == 0)) r_.fail(v, "at least one data class is required");
        r_.read_entries(v, [&](const std::string& name, const YAML::Mark& key_mark, const value_ref& body) {
            read_class(name, key_mark, body);
        });
    }

    void read_class(const std::string& name, const YAML::Mark& key_mark, const value_ref& body) {
        data_class c;
        c.name = name;
        c.index = m_.classes.size();
        c.line = key_mark.line + 1;
        const std::string problem = level_text_problem(name);
        if (!problem.empty()) r_.fail(key_mark, body.path, "class name '" + name + "' " + problem);
        value_ref schema_v;
        bool have_schema = false;
        bool have_under = false;
        r_.read_map(body, {
            {"schema", [&](const value_ref& x) { schema_v = x; have_schema = true; }},
            {"expected_period", [&](const value_ref& x) { c.expected_period = r_.read_duration(x); }},
            {"retain",
             [&](const value_ref& x) {
                 static constexpr std::array<std::string_view, 3> rules{"required", "forbidden", "any"};
                 const std::string s = r_.read_choice(x, rules);
                 c.retain = s == "required" ? retain_rule::required
                            : s == "forbidden" ? retain_rule::forbidden
                                               : retain_rule::any;
             }},
            {"command", [&](const value_ref& x) { c.command = r_.read_bool(x); }},
            {"under",
             [&](const value_ref& x) {
                 have_under = true;
                 if (x.node.IsScalar()) {
                     c.under.push_back(level_index(x, r_.read_string(x)));
                     return;
                 }
                 if (!x.node.IsSequence() || x.node.size() == 0)
                     r_.fail(x, "expected a level name or a non-empty list of level names, got " + describe(x.node));
                 r_.read_list(x, [&](const value_ref& e, std::size_t) {
                     const std::size_t li = level_index(e, r_.read_string(e));
                     if (std::find(c.under.begin(), c.under.end(), li) != c.under.end())
                         r_.fail(e, "level '" + m_.levels[li].info.name + "' listed twice");
                     c.under.push_back(li);
                 });
             }},
            {"description", [&](const value_ref& x) { (void)r_.read_string(x); }},
        });
        if (!have_under) c.under.push_back(m_.levels.size() - 1);
        std::sort(c.under.begin(), c.under.end());
        if (have_schema) read_schema(c, schema_v);
        m_.class_index.emplace(c.name, c.index);
        m_.classes.push_back(std::move(c));
    }

    void read_schema(data_class& c, const value_ref& v) {
        std::vector<std::string> schema_warnings;
        const auto warn_all = [&](const YAML::Mark& mark, const std::string& prefix) {
            for (const std::string& w : schema_warnings) r_.warn(mark, v.path, prefix + w);
        };
        if (v.node.IsNull()) r_.fail(v, "expected a file name, an inline schema (a map) or true/false, got an empty value");

        if (v.node.IsScalar() && yaml::is_plain(v.node) && (v.node.Scalar() == "true" || v.node.Scalar() == "false")) {
            c.schema_source = v.node.Scalar();
            c.schema = json_schema::compile(json(v.node.Scalar() == "true"));
            return;
        }
        if (v.node.IsScalar()) {
            const std::string file = v.node.Scalar();
            if (file.empty()) r_.fail(v, "the schema file name must not be empty");
            c.schema_source = file;
            namespace fs = std::filesystem;
            const fs::path full = fs::path(file).is_absolute() ? fs::path(file) : fs::path(m_.base_dir) / file;
            const std::string key = full.lexically_normal().string();
            if (const auto cached = schema_cache_.find(key); cached != schema_cache_.end()) {
                c.schema = cached->second;
                return;
            }
            std::string error;
            std::error_code ec;
            if (fs::is_directory(full, ec)) r_.fail(v, "schema file '" + full.string() + "' is a directory");
            const std::string text = yaml::read_file(full.string(), error);
            if (!error.empty()) r_.fail(v, "cannot read schema file '" + full.string() + "': " + error);
            json doc;
            try {
                doc = json::parse(text);
            } catch (const json::parse_error& e) {
                r_.fail(v, file + ":" + json_position(text, e.byte) + ": " + strip_nlohmann(e.what()));
            } catch (const json::exception& e) {
                // e.g. out_of_range 406: a number a double cannot hold
                r_.fail(v, file + ": " + strip_nlohmann(e.what()));
            }
            try {
                c.schema = json_schema::compile(doc, resolver_for(full.parent_path().string()), &schema_warnings);
            } catch (const schema_error& e) {
                r_.fail(v, file + ": " + e.what());
            }
            warn_all(v.mark, file + ": ");
            schema_cache_.emplace(key, c.schema);
            return;
        }
        if (!v.node.IsMap()) r_.fail(v, "expected a file name, an inline schema (a map) or true/false, got " + describe(v.node));
        std::map<std::string, YAML::Mark> marks;
        yaml_to_json conv(r_, marks);
        const json doc = conv.convert(v, "");
        c.schema_source = "inline";
        try {
            c.schema = json_schema::compile(doc, resolver_for(m_.base_dir), &schema_warnings);
        } catch (const schema_error& e) {
            // Point at the YAML line of the offending keyword: the deepest
            // converted node on the error's pointer.
            YAML::Mark mark = v.mark;
            std::string p = e.pointer();
            while (true) {
                const auto it = marks.find(p);
                if (it != marks.end()) {
                    mark = it->second;
                    break;
                }
                const auto slash = p.rfind('/');
                if (slash == std::string::npos) break;
                p = p.substr(0, slash);
            }
            r_.fail(mark, v.path, e.what());
        }
        for (const std::string& w : schema_warnings) {
            const std::string ptr = w.substr(0, w.find(": "));
            const auto it = marks.find(ptr);
            r_.warn(it != marks.end() ? it->second : v.mark, v.path, w);
        }
    }

    static std::string json_position(const std::string& text, std::size_t byte) {
        // nlohmann's byte is 1-based, pointing at the offending character.
        std::size_t line = 1;
        std::size_t col = 1;
        for (std::size_t i = 0; i + 1 < byte && i < text.size(); ++i) {
            if (text[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        return std::to_string(line) + ":" + std::to_string(col);
    }

    static std::string strip_nlohmann(std::string m) {
        // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error ..."
        const auto bracket = m.find("] ");
        if (bracket != std::string::npos) m = m.substr(bracket + 2);
        const auto colon = m.find(": ");
        if (m.starts_with("parse error") && colon != std::string::npos) m = m.substr(colon + 2);
        return m;
    }

    // $ref to another document: a file next to the referring schema. No
    // network: a broker must not block (or depend) on fetching schemas.
    static schema_resolver resolver_for(const std::string& dir) {
        return [dir](const std::string& uri) -> std::optional<json> {
            if (uri.find("://") != std::string::npos)
                throw schema_error("", "remote references are not fetched; copy the document next to the schema and "
                                       "refer to it by file name");
            std::string path = uri;
            if (path.starts_with("file:")) path = path.substr(5);
            namespace fs = std::filesystem;
            const fs::path full = fs::path(path).is_absolute() ? fs::path(path) : fs::path(dir) / path;
            std::string error;
            const std::string text = yaml::read_file(full.string(), error);
            if (!error.empty()) throw schema_error("", "cannot read '" + full.string() + "': " + error);
            json doc = json::parse(text, nullptr, false);
            if (doc.is_discarded()) throw schema_error("", "'" + full.string() + "' is not valid JSON");
            return doc;
        };
    }

    // ---- metrics, free, enforcement ----

    void read_metrics(const value_ref& v) {
        r_.read_map(v, {{"subtree_level", [&](const value_ref& x) { m_.metrics_level = level_index(x, r_.read_string(x)); }}});
    }

    void read_free(const value_ref& v) {
        r_.read_list(v, [&](const value_ref& item, std::size_t) {
            const std::string f = r_.read_string(item);
            if (!valid_topic_filter(f))
                r_.fail(item, "not a valid MQTT topic filter: '" + f + "' ('+' and '#' must be whole levels, '#' only last)");
            if (f == "#") r_.fail(item, "'#' would make the whole namespace free; remove the model instead");
            for (std::size_t i = 0; i < m_.free_filters.size(); ++i) {
                if (filter_covers(m_.free_filters[i], f))
                    r_.fail(item, "'" + f + "' is already covered by free filter '" + m_.free_filters[i] + "' (line " +
                                      std::to_string(m_.free_lines[i]) + ")");
                if (filter_covers(f, m_.free_filters[i]))
                    r_.fail(item, "'" + f + "' covers the earlier free filter '" + m_.free_filters[i] + "' (line " +
                                      std::to_string(m_.free_lines[i]) + "); keep one");
            }
            m_.free_filters.push_back(f);
            m_.free_lines.push_back(item.mark.line + 1);
        });
    }

    void read_enforcement(const value_ref& v, value_ref& subtrees, bool& have_subtrees) {
        r_.read_map(v, {
            {"mode",
             [&](const value_ref& x) {
                 m_.default_mode = r_.read_mode(x);
                 m_.default_mode_line = x.mark.line + 1;
             }},
            {"dead_letter",
             [&](const value_ref& x) {
                 const std::string p = r_.read_string(x);
                 dead_letter_mark_ = x;
                 if (!valid_topic_name(p) || p.starts_with('/') || p.ends_with('/') || p.find("//") != std::string::npos)
                     r_.fail(x, "expected a topic prefix without wildcards or empty levels (got '" + p + "')");
                 m_.dead_letter = p;
             }},
            {"subtrees",
             [&](const value_ref& x) {
                 subtrees = x;
                 have_subtrees = true;
             }},
        });
    }

    // The dead-letter tree is free: quarantined messages are re-published
    // there by the broker and must not be checked (and quarantined) again.
    void add_dead_letter_free() {
        const std::string f = m_.dead_letter + "/#";
        for (std::size_t i = 0; i < m_.free_filters.size(); ++i)
            if (filter_covers(m_.free_filters[i], f)) return;  // already free
        m_.free_filters.push_back(f);
        m_.free_lines.push_back(dead_letter_mark_.mark.is_null() ? 0 : dead_letter_mark_.mark.line + 1);
    }

    void index_free() {
        std::map<std::string, std::vector<std::size_t>> by_first;
        for (std::size_t i = 0; i < m_.free_filters.size(); ++i) {
            const std::string_view f = m_.free_filters[i];
            const std::string_view first = f.substr(0, f.find('/'));
            if (first == "+" || first == "#") m_.free_wild.push_back(i);
            else by_first[std::string(first)].push_back(i);
        }
        m_.free_by_first.build({by_first.begin(), by_first.end()});
        for (const std::string& f : m_.free_filters) m_.free_compiled.push_back(compiled_filter::make(f));
    }

    void check_dead_letter() {
        // Would some model topic start with the dead-letter prefix?
        const model_node* n = m_.nodes.empty() ? nullptr : m_.nodes[0].get();
        for (std::string_view level : split_levels(m_.dead_letter)) {
            if (n == nullptr) return;
            if (n->absorbing) break;
            n = n->edge_for(level, m_.levels)->to;
        }
        if (n != nullptr)
            r_.fail(dead_letter_mark_.mark, dead_letter_mark_.path.empty() ? "enforcement.dead_letter" : dead_letter_mark_.path,
                    "the dead-letter prefix '" + m_.dead_letter + "' is inside the model; quarantined messages would "
                    "mix with real ones (choose a prefix the first level does not accept)");
    }

    void read_overrides(const value_ref& v) {
        r_.read_entries(v, [&](const std::string& filter, const YAML::Mark& key_mark, const value_ref& x) {
            const std::string path = v.path + "." + filter;
            if (!valid_topic_filter(filter))
                r_.fail(key_mark, v.path,
                        "not a valid MQTT topic filter: '" + filter + "' ('+' and '#' must be whole levels, '#' only last)");
            const enforcement mode = r_.read_mode(x);
            for (std::size_t i = 0; i < m_.free_filters.size(); ++i)
                if (filter_covers(m_.free_filters[i], filter))
                    r_.fail(key_mark, v.path, "'" + filter + "' is inside the free subtree '" + m_.free_filters[i] +
                                                  "', where nothing is enforced");
            if (!filter_reaches_model(filter))
                r_.fail(key_mark, v.path, "'" + filter + "' matches no topic the model accepts");
            m_.overrides.push_back(mode_override{filter, mode, key_mark.line + 1});
        });
        for (const mode_override& o : m_.overrides) m_.override_compiled.push_back(compiled_filter::make(o.filter));
        m_.override_order.resize(m_.overrides.size());
        for (std::size_t i = 0; i < m_.overrides.size(); ++i) m_.override_order[i] = i;
        std::stable_sort(m_.override_order.begin(), m_.override_order.end(), [&](std::size_t a, std::size_t b) {
            return more_specific(m_.overrides[a].filter, m_.overrides[b].filter);
        });
        // An override whose mode equals what it would inherit does nothing.
        for (std::size_t i = 0; i < m_.overrides.size(); ++i) {
            const mode_override& o = m_.overrides[i];
            enforcement inherited = m_.default_mode;
            std::string from = "the default";
            for (std::size_t j : m_.override_order) {
                if (j == i) continue;
                if (filter_covers(m_.overrides[j].filter, o.filter) && more_specific(o.filter, m_.overrides[j].filter)) {
                    inherited = m_.overrides[j].mode;
                    from = "'" + m_.overrides[j].filter + "'";
                    break;
                }
            }
            if (inherited == o.mode) {
                YAML::Mark mark;
                mark.line = o.line - 1;
                r_.warn(mark, v.path, "'" + o.filter + "': " + std::string(to_string(o.mode)) +
                                          " is already inherited from " + from + " (redundant)");
            }
        }
    }

    // Can `filter` match some topic of the model? Walks the automaton with
    // '+' standing for any level (an over-approximation: never a false "no").
    bool filter_reaches_model(const std::string& filter) const {
        std::set<const model_node*> current{m_.nodes[0].get()};
        for (std::string_view level : split_levels(filter)) {
            if (current.empty()) return false;
            if (level == "#") return true;
            std::set<const model_node*> next;
            for (const model_node* n : current) {
                if (n->absorbing) {
                    if (!level.empty()) next.insert(n);
                    continue;
                }
                if (level == "+") {
                    for (const auto& [name, e] : n->exact.entries())
                        if (e.to != nullptr) next.insert(e.to);
                    for (const model_edge& e : n->by_mask)
                        if (e.to != nullptr) next.insert(e.to);
                } else if (!level.empty()) {
                    const model_edge* e = n->edge_for(level, m_.levels);
                    if (e->to != nullptr) next.insert(e->to);
                }
            }
            current = std::move(next);
        }
        return std::any_of(current.begin(), current.end(), [](const model_node* n) { return n->klass != nullptr; });
    }

    // ---- the automaton ----

    std::vector<std::size_t> candidates(nfa_state c) const {
        std::vector<std::size_t> out;
        for (std::size_t n = static_cast<std::size_t>(c); n < m_.levels.size(); ++n) {
            out.push_back(n);
            if (!m_.levels[n].info.optional) break;
        }
        return out;
    }

    bool class_allowed(std::size_t k, nfa_state c) const {
        if (c <= 0) return false;
        const auto& u = m_.classes[k].under;
        return std::binary_search(u.begin(), u.end(), static_cast<std::size_t>(c - 1));
    }

    template <typename Accepts>
    void successors(const std::vector<nfa_state>& from, int klass, const Accepts& accepts, model_edge& edge,
                    std::vector<nfa_state>& out) const {
        out.clear();
        edge.parent.clear();
        const auto push = [&](nfa_state s, std::size_t parent) {
            if (std::find(out.begin(), out.end(), s) != out.end()) return;
            out.push_back(s);
            edge.parent.push_back(static_cast<std::uint8_t>(parent));
        };
        for (std::size_t t = 0; t < from.size(); ++t) {
            const nfa_state s = from[t];
            if (is_class_state(s)) {
                push(s, t);
                continue;
            }
            if (klass >= 0 && class_allowed(static_cast<std::size_t>(klass), s)) push(class_state(klass), t);
            for (std::size_t n : candidates(s))
                if (viable_[n + 1] && accepts(n)) push(static_cast<nfa_state>(n + 1), t);
        }
        if (!out.empty() && is_class_state(out.front())) {
            out.resize(1);
            edge.parent.resize(1);
        }
    }

    model_node* intern(const std::vector<nfa_state>& threads) {
        if (threads.empty()) return nullptr;
        if (threads.size() > 64) r_.fail(YAML::Mark::null_mark(), "levels", "the model is too ambiguous (more than 64 readings of one topic)");
        const auto it = index_.find(threads);
        if (it != index_.end()) return it->second;
        if (m_.nodes.size() >= 50'000)
            r_.fail(YAML::Mark::null_mark(), "levels", "the model is too ambiguous (more than 50000 walk states)");
        auto node = std::make_unique<model_node>();
        node->threads = threads;
        node->id = static_cast<std::uint32_t>(m_.nodes.size());
        for (std::size_t t = 0; t < threads.size(); ++t) {
            if (is_class_state(threads[t])) {
                node->accept_thread = static_cast<int>(t);
                node->klass = &m_.classes[class_of_state(threads[t])];
                break;
            }
        }
        node->absorbing = is_class_state(threads.front());
        model_node* raw = node.get();
        index_.emplace(threads, raw);
        m_.nodes.push_back(std::move(node));
        return raw;
    }

    void build_automaton() {
        const std::size_t L = m_.levels.size();
        // viable_[c]: from P(c) some topic can still reach a class.
        viable_.assign(L + 1, 0);
        for (std::size_t c = L + 1; c-- > 0;) {
            bool v = false;
            for (std::size_t k = 0; k < m_.classes.size() && !v; ++k) v = class_allowed(k, static_cast<nfa_state>(c));
            if (c < L)
                for (std::size_t n : candidates(static_cast<nfa_state>(c))) v = v || viable_[n + 1];
            viable_[c] = v ? 1 : 0;
        }
        for (std::size_t n = 0; n < L; ++n) {
            if (!viable_[n + 1]) {
                YAML::Mark mark;
                mark.line = m_.levels[n].line - 1;
                r_.fail(mark, "levels[" + std::to_string(n) + "]",
                        "level '" + m_.levels[n].info.name +
                            "' can never be part of a topic: no data class may follow it or a later level "
                            "(see the classes' 'under')");
            }
        }
        index_free();
        if (!viable_[0]) r_.fail(YAML::Mark::null_mark(), "classes", "no topic can reach a data class");

        intern({0});
        std::vector<nfa_state> out;
        std::vector<char> class_used(m_.classes.size(), 0);
        std::set<std::pair<std::size_t, std::size_t>> ambiguity_warned;
        // Breadth-first: intern() appends new nodes to m_.nodes.
        for (std::size_t next = 0; next < m_.nodes.size(); ++next) {
            model_node* n = m_.nodes[next].get();
            for (nfa_state s : n->threads)
                if (is_class_state(s)) class_used[class_of_state(s)] = 1;
            if (n->absorbing) {
                model_edge self;
                self.to = n;
                self.parent = {0};
                n->by_mask.push_back(std::move(self));
                continue;
            }
            // Exact names and the patterns that matter here.
            std::vector<std::string> exact;
            std::set<std::size_t> tested;
            for (nfa_state s : n->threads) {
                if (is_class_state(s)) continue;
                for (std::size_t k = 0; k < m_.classes.size(); ++k)
                    if (class_allowed(k, s)) exact.push_back(m_.classes[k].name);
                for (std::size_t lv : candidates(s)) {
                    if (!viable_[lv + 1]) continue;
                    const level_rule& rule = m_.levels[lv];
                    exact.insert(exact.end(), rule.info.names.begin(), rule.info.names.end());
                    if (rule.pattern && !rule.info.any) tested.insert(lv);
                    // A class name this level also accepts: two readings.
                    for (std::size_t k = 0; k < m_.classes.size(); ++k) {
                        if (!class_allowed(k, s) || rule.info.any) continue;
                        if (rule.accepts(m_.classes[k].name) && ambiguity_warned.emplace(k, lv).second) {
                            YAML::Mark mark;
                            mark.line = m_.classes[k].line - 1;
                            r_.warn(mark, "classes." + m_.classes[k].name,
                                    "class name '" + m_.classes[k].name + "' is also accepted by level '" +
                                        rule.info.name + "' (" + rule.info.describe() +
                                        "); where both are possible the topic level is read as the class");
                        }
                    }
                }
            }
            if (tested.size() > 8)
                r_.fail(YAML::Mark::null_mark(), "levels", "the model is too ambiguous (more than 8 patterns apply to one topic level)");
            n->tested.assign(tested.begin(), tested.end());
            std::sort(exact.begin(), exact.end());
            exact.erase(std::unique(exact.begin(), exact.end()), exact.end());
            std::vector<std::pair<std::string, model_edge>> exact_edges;
            for (const std::string& name : exact) {
                const auto ci = m_.class_index.find(name);
                const int klass = ci == m_.class_index.end() ? -1 : static_cast<int>(ci->second);
                model_edge e;
                successors(n->threads, klass, [&](std::size_t lv) { return m_.levels[lv].accepts(name); }, e, out);
                e.to = intern(out);
                if (e.to == nullptr) e.parent.clear();
                exact_edges.emplace_back(name, std::move(e));
            }
            n->exact.build(std::move(exact_edges));
            const std::size_t masks = std::size_t{1} << n->tested.size();
            n->by_mask.resize(masks);
            for (std::size_t mask = 0; mask < masks; ++mask) {
                const auto accepts = [&](std::size_t lv) {
                    const level_rule& rule = m_.levels[lv];
                    if (rule.info.any) return true;
                    const auto pos = std::find(n->tested.begin(), n->tested.end(), lv);
                    if (pos == n->tested.end()) return false;  // list only: not an exact name
                    return ((mask >> (pos - n->tested.begin())) & 1u) != 0;
                };
                model_edge e;
                successors(n->threads, -1, accepts, e, out);
                e.to = intern(out);
                if (e.to == nullptr) e.parent.clear();
                n->by_mask[mask] = std::move(e);
            }
        }
        for (std::size_t k = 0; k < m_.classes.size(); ++k) {
            if (!class_used[k]) {
                YAML::Mark mark;
                mark.line = m_.classes[k].line - 1;
                r_.fail(mark, "classes." + m_.classes[k].name,
                        "class '" + m_.classes[k].name + "' can never be reached (check 'under' and the levels)");
            }
        }
    }

    model::impl& m_;
    const reader& r_;
    value_ref dead_letter_mark_{YAML::Node(), YAML::Mark::null_mark(), ""};
    std::map<std::string, std::shared_ptr<const json_schema>> schema_cache_;
    std::vector<char> viable_;
    std::map<std::vector<nfa_state>, model_node*> index_;
};

}  // namespace

std::string level_rule_info::describe() const {
    if (any) return "any name";
    std::string out;
    if (!names.empty()) {
        out = "one of [";
        for (std::size_t i = 0; i < names.size() && i < 12; ++i) out += (i ? ", " : "") + names[i];
        if (names.size() > 12) out += ", ... (" + std::to_string(names.size()) + " names)";
        out += "]";
    }
    if (!pattern.empty()) {
        if (!out.empty()) out += " or ";
        out += "pattern '" + pattern + "'";
    }
    return out;
}

std::shared_ptr<const model> model::parse(std::string_view text, const std::string& name, const std::string& base_dir,
                                          std::shared_ptr<model_stats> stats) {
    auto m = std::make_unique<impl>();
    m->source = name;
    m->base_dir = base_dir.empty() ? "." : base_dir;
    m->stats = stats ? std::move(stats) : std::make_shared<model_stats>();
    const reader r(name, m->warnings);
    try {
        const std::optional<value_ref> root = r.load(std::string(text));
        if (!root) r.fail(YAML::Mark::null_mark(), "", "the model is empty (it needs 'levels' and 'classes')");
        // Whatever a library throws while reading (JSON, regex, memory) is a
        // model that does not load, never an exception the caller did not
        // expect.
        r.guard([&] { loader(*m, r).read_root(*root); });
    } catch (const yaml::error& e) {
        throw model_error(e.what());
    }
    return std::shared_ptr<const model>(new model(std::move(m)));
}

std::shared_ptr<const model> model::load(const std::string& path, std::shared_ptr<model_stats> stats) {
    std::string error;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw model_error("cannot read model file '" + path + "': is a directory");
    const std::string text = yaml::read_file(path, error);
    if (!error.empty()) throw model_error("cannot read model file '" + path + "': " + error);
    const std::string dir = std::filesystem::path(path).parent_path().string();
    return parse(text, path, dir.empty() ? "." : dir, std::move(stats));
}

lint_report model::lint(const std::string& path) {
    lint_report report;
    try {
        const auto m = load(path);
        report.warnings = m->warnings();
    } catch (const model_error& e) {
        report.error = e.what();
    } catch (const std::exception& e) {
        report.error = path + ": " + e.what();
    }
    return report;
}

}  // namespace strata::ns
