// JSON Schema compile + validate (see model_schema.hpp for the why).
//
// valijson must be configured identically in every translation unit that
// includes it (its exception switch changes class layouts and behaviour),
// so it is included here only and kept out of every header.
#define VALIJSON_USE_EXCEPTIONS 1

#include "namespace/model_schema.hpp"

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/constraint_builder.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <unordered_set>

#include "namespace/model_pattern.hpp"
#include "namespace/model_schema_fast.hpp"

namespace strata::ns {
namespace {

using json = nlohmann::json;

constexpr std::string_view format_key = "x-strata-format";
constexpr std::string_view pattern_key = "x-strata-pattern";

// ---------------------------------------------------------------------------
// Meta-checks and keyword renaming

std::string escape_pointer_token(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '~') out += "~0";
        else if (c == '/') out += "~1";
        else out += c;
    }
    return out;
}

std::string type_name(const json& v) {
    switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return "number";
    case json::value_t::string: return "string";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    default: return "value";
    }
}

bool is_integral(const json& v) {
    if (v.is_number_integer() || v.is_number_unsigned()) return true;
    if (v.is_number_float()) {
        const double d = v.get<double>();
        return std::isfinite(d) && std::floor(d) == d;
    }
    return false;
}

bool is_nonneg_int(const json& v) {
    if (v.is_number_unsigned()) return true;
    if (v.is_number_integer()) return v.get<std::int64_t>() >= 0;
    return is_integral(v) && v.get<double>() >= 0;
}

constexpr std::array<std::string_view, 7> type_names{"array", "boolean", "integer", "null", "number", "object", "string"};

class schema_walker {
public:
    explicit schema_walker(std::vector<std::string>* warnings) : warnings_(warnings) {}

    // Checks `s` (a schema position) and renames format/pattern in place.
    void walk(json& s, const std::string& ptr, int depth = 0) {
        if (depth > 200) throw schema_error(ptr, "schema nested too deeply");
        if (s.is_boolean()) return;
        if (!s.is_object()) throw schema_error(ptr, "a schema must be an object or a boolean, got " + type_name(s));

        std::vector<std::pair<std::string, std::string>> renames;
        for (auto it = s.begin(); it != s.end(); ++it) {
            const std::string& k = it.key();
            json& v = it.value();
            const std::string p = ptr + "/" + escape_pointer_token(k);
            if (k == "additionalItems" || k == "additionalProperties" || k == "contains" || k == "propertyNames" ||
                k == "if" || k == "then" || k == "else" || k == "not") {
                walk(v, p, depth + 1);
            } else if (k == "items") {
                if (v.is_array()) {
                    for (std::size_t i = 0; i < v.size(); ++i) walk(v[i], p + "/" + std::to_string(i), depth + 1);
                } else {
                    walk(v, p, depth + 1);
                }
            } else if (k == "allOf" || k == "anyOf" || k == "oneOf") {
                if (!v.is_array() || v.empty()) throw schema_error(p, "expected a non-empty array of schemas");
                for (std::size_t i = 0; i < v.size(); ++i) walk(v[i], p + "/" + std::to_string(i), depth + 1);
            } else if (k == "definitions" || k == "properties") {
                if (!v.is_object()) throw schema_error(p, "expected an object of schemas, got " + type_name(v));
                for (auto e = v.begin(); e != v.end(); ++e) walk(e.value(), p + "/" + escape_pointer_token(e.key()), depth + 1);
            } else if (k == "patternProperties") {
                if (!v.is_object()) throw schema_error(p, "expected an object of schemas, got " + type_name(v));
                for (auto e = v.begin(); e != v.end(); ++e) {
                    const std::string ep = p + "/" + escape_pointer_token(e.key());
                    check_regex(e.key(), ep);
                    walk(e.value(), ep, depth + 1);
                }
            } else if (k == "dependencies") {
                if (!v.is_object()) throw schema_error(p, "expected an object, got " + type_name(v));
                for (auto e = v.begin(); e != v.end(); ++e) {
                    const std::string ep = p + "/" + escape_pointer_token(e.key());
                    if (e.value().is_array()) check_string_array(e.value(), ep);
                    else walk(e.value(), ep, depth + 1);
                }
            } else if (k == "type") {
                check_type(v, p);
            } else if (k == "enum" || k == "examples") {
                if (!v.is_array()) throw schema_error(p, "expected an array, got " + type_name(v));
            } else if (k == "const" || k == "default") {
                // any value
            } else if (k == "required") {
                check_string_array(v, p);
            } else if (k == "multipleOf") {
                if (!v.is_number() || v.get<double>() <= 0) throw schema_error(p, "expected a number greater than 0");
            } else if (k == "maximum" || k == "minimum" || k == "exclusiveMaximum" || k == "exclusiveMinimum") {
                if (!v.is_number()) throw schema_error(p, "expected a number, got " + type_name(v));
            } else if (k == "maxLength" || k == "minLength" || k == "maxItems" || k == "minItems" ||
                       k == "maxProperties" || k == "minProperties") {
                if (!is_nonneg_int(v)) throw schema_error(p, "expected a non-negative integer, got " + describe(v));
            } else if (k == "uniqueItems" || k == "readOnly" || k == "writeOnly") {
                if (!v.is_boolean()) throw schema_error(p, "expected true or false, got " + type_name(v));
            } else if (k == "pattern") {
                if (!v.is_string()) throw schema_error(p, "expected a string, got " + type_name(v));
                check_regex(v.get<std::string>(), p);
                renames.emplace_back(k, std::string(pattern_key));
            } else if (k == "format") {
                if (!v.is_string()) throw schema_error(p, "expected a string, got " + type_name(v));
                renames.emplace_back(k, std::string(format_key));
            } else if (k == "$schema") {
                if (!v.is_string()) throw schema_error(p, "expected a string, got " + type_name(v));
                const std::string& u = v.get_ref<const std::string&>();
                if (u != "http://json-schema.org/draft-07/schema#" && u != "http://json-schema.org/draft-07/schema")
                    throw schema_error(p, "only JSON Schema draft 7 is supported (\"$schema\": "
                                          "\"http://json-schema.org/draft-07/schema#\"), got '" + u + "'");
            } else if (k == "$id" || k == "$ref" || k == "$comment" || k == "title" || k == "description" ||
                       k == "contentMediaType" || k == "contentEncoding") {
                if (!v.is_string()) throw schema_error(p, "expected a string, got " + type_name(v));
            } else if (k == format_key || k == pattern_key) {
                throw schema_error(p, "'" + k + "' is reserved");
            } else if (warnings_ != nullptr) {
                warnings_->push_back(p + ": unknown keyword '" + k + "' (ignored by JSON Schema draft 7)");
            }
        }
        for (auto& [from, to] : renames) {
            json v = std::move(s[from]);
            s.erase(from);
            s[to] = std::move(v);
        }
    }

private:
    static std::string describe(const json& v) {
        if (v.is_primitive()) return v.dump();
        return type_name(v);
    }

    static void check_string_array(const json& v, const std::string& p) {
        if (!v.is_array()) throw schema_error(p, "expected an array of strings, got " + type_name(v));
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (!v[i].is_string()) throw schema_error(p + "/" + std::to_string(i), "expected a string, got " + type_name(v[i]));
            for (std::size_t j = 0; j < i; ++j)
                if (v[j] == v[i]) throw schema_error(p + "/" + std::to_string(i), "duplicate " + v[i].dump());
        }
    }

    static void check_type(const json& v, const std::string& p) {
        const auto one = [&](const json& t, const std::string& tp) {
            if (!t.is_string()) throw schema_error(tp, "expected a type name, got " + type_name(t));
            const auto& n = t.get_ref<const std::string&>();
            if (std::find(type_names.begin(), type_names.end(), n) == type_names.end())
                throw schema_error(tp, "unknown type '" + n +
                                           "' (expected array, boolean, integer, null, number, object or string)");
        };
        if (v.is_array()) {
            if (v.empty()) throw schema_error(p, "expected at least one type");
            for (std::size_t i = 0; i < v.size(); ++i) {
                one(v[i], p + "/" + std::to_string(i));
                for (std::size_t j = 0; j < i; ++j)
                    if (v[j] == v[i]) throw schema_error(p + "/" + std::to_string(i), "duplicate type " + v[i].dump());
            }
        } else {
            one(v, p);
        }
    }

    static void check_regex(const std::string& re, const std::string& p) {
        try {
            (void)compiled_pattern::compile(re, compiled_pattern::mode::search);
        } catch (const pattern_error& e) {
            throw schema_error(p, "invalid regular expression '" + re + "' at offset " + std::to_string(e.offset()) +
                                      ": " + e.what());
        }
    }

    std::vector<std::string>* warnings_;
};

// A $ref fragment is a URI fragment: "%25" stands for '%'.
std::string percent_decode(const std::string& s) {
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// Every local "$ref" ("#" or "#/pointer") must point somewhere, and a chain
// of references must end at a schema: valijson follows both blindly (a
// missing target is an obscure error, a cycle an endless recursion).
void check_local_refs(const json& root, const json& node, const std::string& ptr, int depth) {
    if (depth > 200) return;  // the walker already refused deeper schemas
    if (node.is_object()) {
        const auto it = node.find("$ref");
        if (it != node.end() && it->is_string()) {
            const std::string& first = it->get_ref<const std::string&>();
            if (first.starts_with("#") && (first.size() == 1 || first[1] == '/')) {
                std::vector<std::string> seen{first};
                const json* target = &node;
                std::string ref = first;
                while (true) {
                    try {
                        const json::json_pointer jp(percent_decode(ref.substr(1)));
                        if (!root.contains(jp)) throw schema_error(ptr + "/$ref", "'" + first + "' points to nothing");
                        target = &root.at(jp);
                    } catch (const json::exception&) {
                        throw schema_error(ptr + "/$ref", "'" + first + "' is not a valid JSON pointer");
                    }
                    const auto next = target->is_object() ? target->find("$ref") : target->end();
                    if (!target->is_object() || next == target->end() || !next->is_string()) break;
                    ref = next->get<std::string>();
                    if (!ref.starts_with("#") || (ref.size() > 1 && ref[1] != '/')) break;  // leaves the document
                    if (std::find(seen.begin(), seen.end(), ref) != seen.end())
                        throw schema_error(ptr + "/$ref", "'" + first + "' is a circular reference");
                    seen.push_back(ref);
                }
            }
        }
        for (auto e = node.begin(); e != node.end(); ++e) {
            // Values, not schemas: a "$ref" key in there is just data.
            if (e.key() == "enum" || e.key() == "const" || e.key() == "default" || e.key() == "examples") continue;
            check_local_refs(root, e.value(), ptr + "/" + escape_pointer_token(e.key()), depth + 1);
        }
    } else if (node.is_array()) {
        for (std::size_t i = 0; i < node.size(); ++i)
            check_local_refs(root, node[i], ptr + "/" + std::to_string(i), depth + 1);
    }
}

void check_local_refs(const json& root, const std::string& ptr) { check_local_refs(root, root, ptr, 0); }

// ---------------------------------------------------------------------------
// Custom constraints

class format_constraint final : public valijson::constraints::PolyConstraint {
public:
    explicit format_constraint(std::string format) : format_(std::move(format)) {}

    bool validate(const valijson::adapters::Adapter& target, const std::vector<std::string>& context,
                  valijson::ValidationResults* results) const override {
        if (!target.isString()) return true;  // format applies to strings only
        std::string value;
        if (!target.getString(value)) return true;
        const std::optional<bool> ok = check_format(format_, value);
        if (!ok.has_value() || *ok) return true;
        if (results != nullptr) {
            std::string shown = json(value).dump();
            if (shown.size() > 40) shown = shown.substr(0, 37) + "...";
            results->pushError(context, shown + " is not a valid " + format_);
        }
        return false;
    }

private:
    valijson::constraints::Constraint* cloneInto(void* where) const override { return new (where) format_constraint(*this); }
    std::size_t sizeOf() const override { return sizeof(format_constraint); }

    std::string format_;
};

class pattern_constraint final : public valijson::constraints::PolyConstraint {
public:
    explicit pattern_constraint(std::shared_ptr<const compiled_pattern> p) : pattern_(std::move(p)) {}

    bool validate(const valijson::adapters::Adapter& target, const std::vector<std::string>& context,
                  valijson::ValidationResults* results) const override {
        if (!target.isString()) return true;
        std::string value;
        if (!target.getString(value)) return true;
        if (pattern_->match(value)) return true;
        if (results != nullptr) results->pushError(context, "does not match pattern '" + pattern_->source() + "'");
        return false;
    }

private:
    valijson::constraints::Constraint* cloneInto(void* where) const override {
        return new (where) pattern_constraint(*this);
    }
    std::size_t sizeOf() const override { return sizeof(pattern_constraint); }

    std::shared_ptr<const compiled_pattern> pattern_;
};

class format_builder final : public valijson::ConstraintBuilder {
public:
    valijson::constraints::Constraint* make(const valijson::adapters::Adapter& v) const override {
        return new format_constraint(v.getString());
    }
};

class pattern_builder final : public valijson::ConstraintBuilder {
public:
    valijson::constraints::Constraint* make(const valijson::adapters::Adapter& v) const override {
        return new pattern_constraint(std::make_shared<const compiled_pattern>(
            compiled_pattern::compile(v.getString(), compiled_pattern::mode::search)));
    }
};

// ---------------------------------------------------------------------------
// Error messages

// valijson contexts look like {"<root>", "[value]", "[0]"}.
std::vector<std::string> context_tokens(const std::vector<std::string>& context) {
    std::vector<std::string> out;
    for (const std::string& c : context) {
        if (c.size() >= 2 && c.front() == '[' && c.back() == ']') out.push_back(c.substr(1, c.size() - 2));
    }
    return out;
}

std::string pointer_of(const std::vector<std::string>& tokens) {
    std::string p;
    for (const std::string& t : tokens) p += "/" + escape_pointer_token(t);
    return p;
}

const json* resolve_local_pointer(const json& root, const std::string& ref) {
    if (ref.empty() || ref[0] != '#') return nullptr;
    try {
        const json::json_pointer ptr(percent_decode(ref.substr(1)));
        if (!root.contains(ptr)) return nullptr;
        return &root.at(ptr);
    } catch (...) {
        return nullptr;
    }
}

// Follows the instance path through properties / items / additional* (and
// $ref, local or into a fetched document) to the subschema that judged the
// failing value. Best effort: nullptr when the path goes through
// combinators it cannot pick from.
const json* subschema_at(const json& document, const std::map<std::string, json>& remote,
                         const std::vector<std::string>& tokens, const json& instance) {
    const json* root = &document;
    const json* s = &document;
    const json* v = &instance;
    for (std::size_t i = 0;; ++i) {
        for (int hops = 0; s->is_object() && hops < 16; ++hops) {
            if (s->contains("$ref")) {
                const json& r = (*s)["$ref"];
                if (!r.is_string()) return nullptr;
                const std::string ref = r.get<std::string>();
                const auto hash = ref.find('#');
                const std::string uri = ref.substr(0, hash);
                if (!uri.empty()) {
                    const auto it = remote.find(uri);
                    if (it == remote.end()) return nullptr;
                    root = &it->second;
                }
                s = resolve_local_pointer(*root, hash == std::string::npos ? "#" : ref.substr(hash));
                if (s == nullptr) return nullptr;
            } else if (s->contains("allOf") && (*s)["allOf"].size() == 1 && !s->contains("properties") &&
                       !s->contains("items")) {
                s = &(*s)["allOf"][0];  // a wrapped root $ref, see compile()
            } else {
                break;
            }
        }
        if (i == tokens.size()) return s;
        if (!s->is_object()) return nullptr;
        const std::string& t = tokens[i];
        if (v->is_object()) {
            if (!v->contains(t)) return nullptr;
            const json* next = nullptr;
            if (s->contains("properties") && (*s)["properties"].contains(t)) next = &(*s)["properties"][t];
            else if (s->contains("additionalProperties") && (*s)["additionalProperties"].is_object())
                next = &(*s)["additionalProperties"];
            if (next == nullptr) return nullptr;
            s = next;
            v = &(*v)[t];
        } else if (v->is_array()) {
            std::size_t idx = 0;
            const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), idx);
            if (ec != std::errc{} || p != t.data() + t.size() || idx >= v->size()) return nullptr;
            if (!s->contains("items")) return nullptr;
            const json& items = (*s)["items"];
            if (items.is_object()) s = &items;
            else if (items.is_array() && idx < items.size()) s = &items[idx];
            else return nullptr;
            v = &(*v)[idx];
        } else {
            return nullptr;
        }
    }
}

const json* value_at(const json& instance, const std::vector<std::string>& tokens) {
    const json* v = &instance;
    for (const std::string& t : tokens) {
        if (v->is_object()) {
            if (!v->contains(t)) return nullptr;
            v = &(*v)[t];
        } else if (v->is_array()) {
            std::size_t idx = 0;
            const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), idx);
            if (ec != std::errc{} || p != t.data() + t.size() || idx >= v->size()) return nullptr;
            v = &(*v)[idx];
        } else {
            return nullptr;
        }
    }
    return v;
}

bool type_matches(const std::string& t, const json& v) {
    if (t == "integer") return is_integral(v) && v.is_number();
    if (t == "number") return v.is_number();
    if (t == "string") return v.is_string();
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "boolean") return v.is_boolean();
    if (t == "null") return v.is_null();
    return false;
}

std::string short_dump(const json& v) {
    std::string s = v.dump();
    if (s.size() > 40) s = s.substr(0, 37) + "...";
    return s;
}

std::string number_text(const json& n) {
    return n.dump();
}

// Re-checks the simple keywords of `s` against `v` and words the first
// failure. Empty when none of them explains the failure.
std::string explain_simple(const json& s, const json& v) {
    if (!s.is_object()) {
        if (s.is_boolean() && !s.get<bool>()) return "no value is allowed here";
        return {};
    }
    if (s.contains("type")) {
        const json& t = s["type"];
        std::vector<std::string> types;
        if (t.is_string()) types.push_back(t.get<std::string>());
        else if (t.is_array())
            for (const json& e : t)
                if (e.is_string()) types.push_back(e.get<std::string>());
        bool ok = false;
        for (const std::string& x : types) ok = ok || type_matches(x, v);
        if (!ok && !types.empty()) {
            std::string exp;
            for (std::size_t i = 0; i < types.size(); ++i) {
                if (i != 0) exp += (i + 1 == types.size()) ? " or " : ", ";
                exp += types[i];
            }
            return "expected " + exp + ", got " + type_name(v);
        }
    }
    if (s.contains("enum") && s["enum"].is_array()) {
        const json& e = s["enum"];
        if (std::find(e.begin(), e.end(), v) == e.end()) {
            std::string list;
            for (std::size_t i = 0; i < e.size() && i < 10; ++i) list += (i ? ", " : "") + short_dump(e[i]);
            if (e.size() > 10) list += ", ...";
            return short_dump(v) + " is not one of [" + list + "]";
        }
    }
    if (s.contains("const") && s["const"] != v) return "expected " + short_dump(s["const"]) + ", got " + short_dump(v);
    if (v.is_number()) {
        const double d = v.get<double>();
        if (s.contains("minimum") && s["minimum"].is_number() && d < s["minimum"].get<double>())
            return short_dump(v) + " is less than the minimum " + number_text(s["minimum"]);
        if (s.contains("exclusiveMinimum") && s["exclusiveMinimum"].is_number() && d <= s["exclusiveMinimum"].get<double>())
            return short_dump(v) + " is not greater than " + number_text(s["exclusiveMinimum"]);
        if (s.contains("maximum") && s["maximum"].is_number() && d > s["maximum"].get<double>())
            return short_dump(v) + " is greater than the maximum " + number_text(s["maximum"]);
        if (s.contains("exclusiveMaximum") && s["exclusiveMaximum"].is_number() && d >= s["exclusiveMaximum"].get<double>())
            return short_dump(v) + " is not less than " + number_text(s["exclusiveMaximum"]);
    }
    if (v.is_string()) {
        const std::string& str = v.get_ref<const std::string&>();
        // Lengths count code points, as JSON Schema does.
        std::size_t len = 0;
        for (unsigned char c : str) len += (c & 0xC0) != 0x80;
        if (s.contains("minLength") && is_nonneg_int(s["minLength"]) && len < s["minLength"].get<double>())
            return "string shorter than " + number_text(s["minLength"]) + " characters";
        if (s.contains("maxLength") && is_nonneg_int(s["maxLength"]) && len > s["maxLength"].get<double>())
            return "string longer than " + number_text(s["maxLength"]) + " characters";
        if (s.contains(pattern_key) && s[pattern_key].is_string()) {
            const std::string re = s[pattern_key].get<std::string>();
            try {
                if (!compiled_pattern::compile(re, compiled_pattern::mode::search).match(str))
                    return short_dump(v) + " does not match pattern '" + re + "'";
            } catch (...) {
            }
        }
        if (s.contains(format_key) && s[format_key].is_string()) {
            const std::string f = s[format_key].get<std::string>();
            const std::optional<bool> ok = check_format(f, str);
            if (ok.has_value() && !*ok) return short_dump(v) + " is not a valid " + f;
        }
    }
    if (v.is_object()) {
        if (s.contains("required") && s["required"].is_array())
            for (const json& r : s["required"])
                if (r.is_string() && !v.contains(r.get<std::string>()))
                    return "missing required property '" + r.get<std::string>() + "'";
        if (s.contains("additionalProperties") && s["additionalProperties"].is_boolean() &&
            !s["additionalProperties"].get<bool>()) {
            for (auto it = v.begin(); it != v.end(); ++it) {
                bool known = s.contains("properties") && s["properties"].contains(it.key());
                if (!known && s.contains("patternProperties") && s["patternProperties"].is_object()) {
                    for (auto pp = s["patternProperties"].begin(); pp != s["patternProperties"].end() && !known; ++pp) {
                        try {
                            known = compiled_pattern::compile(pp.key(), compiled_pattern::mode::search).match(it.key());
                        } catch (...) {
                        }
                    }
                }
                if (!known) return "property '" + it.key() + "' is not allowed";
            }
        }
        if (s.contains("minProperties") && is_nonneg_int(s["minProperties"]) && v.size() < s["minProperties"].get<double>())
            return "fewer than " + number_text(s["minProperties"]) + " properties";
        if (s.contains("maxProperties") && is_nonneg_int(s["maxProperties"]) && v.size() > s["maxProperties"].get<double>())
            return "more than " + number_text(s["maxProperties"]) + " properties";
    }
    if (v.is_array()) {
        if (s.contains("minItems") && is_nonneg_int(s["minItems"]) && v.size() < s["minItems"].get<double>())
            return "fewer than " + number_text(s["minItems"]) + " items";
        if (s.contains("maxItems") && is_nonneg_int(s["maxItems"]) && v.size() > s["maxItems"].get<double>())
            return "more than " + number_text(s["maxItems"]) + " items";
    }
    return {};
}

// valijson's own wording, lightly normalised, as the last resort.
std::string clean_description(std::string d) {
    if (!d.empty() && d.back() == '.') d.pop_back();
    if (!d.empty() && d[0] >= 'A' && d[0] <= 'Z') d[0] = static_cast<char>(d[0] - 'A' + 'a');
    return d;
}

bool is_wrapper_error(const std::string& d) {
    static constexpr std::string_view wrappers[] = {
        "Failed to validate against schema associated with property name",
        "Failed to validate against schema associated with pattern",
        "Failed to validate against additional properties schema",
        "Failed to validate item #",
        "Failed to validate against dependent schema",
        "Failed to validate against child schema",
        "Failed to validate against any child schemas",
    };
    for (std::string_view w : wrappers)
        if (d.compare(0, w.size(), w) == 0) return true;
    return false;
}

thread_local valijson::Validator tls_validator(valijson::Validator::kStrongTypes);

}  // namespace

// ---------------------------------------------------------------------------

struct json_schema::impl {
    json document;                      // as compiled (keywords renamed)
    std::map<std::string, json> remote;  // documents fetched for $ref, by URI
    valijson::Schema schema;
    std::unique_ptr<detail::fast_schema> fast;  // null: keywords outside the fast subset
};

json_schema::json_schema(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
json_schema::~json_schema() = default;

const nlohmann::json& json_schema::document() const noexcept { return impl_->document; }

std::shared_ptr<const json_schema> json_schema::compile(const nlohmann::json& schema, const schema_resolver& resolve,
                                                        std::vector<std::string>* warnings) {
    auto p = std::make_unique<impl>();
    p->document = schema;
    schema_walker(warnings).walk(p->document, "");
    check_local_refs(p->document, "");
    // valijson resolves a $ref at the document root against the root itself
    // when its URI is relative (and recurses forever); below the root it
    // does it right. So move a root $ref one level down. Draft 7 ignores the
    // siblings of $ref anyway; only what a pointer may still reach is kept.
    if (p->document.is_object() && p->document.contains("$ref")) {
        json wrapped = json::object();
        for (const char* keep : {"$id", "$schema", "definitions"})
            if (p->document.contains(keep)) wrapped[keep] = p->document[keep];
        wrapped["allOf"] = json::array({json{{"$ref", p->document["$ref"]}}});
        p->document = std::move(wrapped);
    }

    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    parser.addConstraintBuilder(std::string(format_key), new format_builder());
    parser.addConstraintBuilder(std::string(pattern_key), new pattern_builder());

    // Documents fetched for remote references get the same checks and
    // renaming; a problem inside one names its URI.
    std::string failed_uri;
    std::string fetch_problem;
    const auto fetch = [&](const std::string& uri) -> const json* {
        if (!resolve) {
            fetch_problem = "references to other documents are not enabled";
            failed_uri = uri;
            return nullptr;
        }
        std::optional<json> doc;
        try {
            doc = resolve(uri);
        } catch (const schema_error& e) {
            failed_uri = uri;
            fetch_problem = e.what();
            return nullptr;
        }
        if (!doc) {
            failed_uri = uri;
            fetch_problem = "not found";
            return nullptr;
        }
        try {
            schema_walker(warnings).walk(*doc, "");
            check_local_refs(*doc, "");
        } catch (const schema_error& e) {
            failed_uri = uri;
            fetch_problem = e.what();
            return nullptr;
        }
        p->remote[uri] = *doc;
        return new json(std::move(*doc));
    };
    const auto free_doc = [](const json* d) { delete d; };

    try {
        valijson::adapters::NlohmannJsonAdapter adapter(p->document);
        parser.populateSchema(adapter, p->schema, valijson::SchemaParser::FunctionPtrs<valijson::adapters::NlohmannJsonAdapter>::FetchDoc(fetch),
                              valijson::SchemaParser::FunctionPtrs<valijson::adapters::NlohmannJsonAdapter>::FreeDoc(free_doc));
    } catch (const schema_error&) {
        throw;
    } catch (const std::exception& e) {
        if (!failed_uri.empty()) throw schema_error("", "$ref '" + failed_uri + "': " + fetch_problem);
        throw schema_error("", e.what());
    }
    p->fast = detail::fast_schema::compile(p->document, p->remote);
    return std::shared_ptr<const json_schema>(new json_schema(std::move(p)));
}

bool json_schema::has_fast_path() const noexcept { return impl_->fast != nullptr; }

std::optional<bool> json_schema::fast_check(std::string_view payload) const noexcept {
    if (!impl_->fast) return std::nullopt;
    switch (impl_->fast->check(payload, max_depth)) {
    case detail::fast_answer::valid: return true;
    case detail::fast_answer::invalid: return false;
    case detail::fast_answer::unsure: return std::nullopt;
    }
    return std::nullopt;
}

bool json_schema::valid(const nlohmann::json& instance) const noexcept {
    try {
        valijson::adapters::NlohmannJsonAdapter target(instance);
        return tls_validator.validate(impl_->schema, target, nullptr);
    } catch (...) {
        return false;
    }
}

std::string json_schema::explain(const nlohmann::json& instance) const {
    valijson::ValidationResults results;
    bool ok = false;
    try {
        valijson::adapters::NlohmannJsonAdapter target(instance);
        ok = tls_validator.validate(impl_->schema, target, &results);
    } catch (const std::exception& e) {
        return std::string("validator error: ") + e.what();
    }
    if (ok) return {};
    // The first error is the deepest one; skip the "failed below here"
    // wrappers that follow it.
    const valijson::ValidationResults::Error* first = nullptr;
    for (const auto& e : results) {
        if (!is_wrapper_error(e.description)) {
            first = &e;
            break;
        }
    }
    if (first == nullptr && results.numErrors() > 0) first = &*results.begin();
    if (first == nullptr) {
        // valijson records nothing for some refusals (a `false` schema).
        std::string what = explain_simple(impl_->document, instance);
        return what.empty() ? "invalid" : what;
    }

    const std::vector<std::string> tokens = context_tokens(first->context);
    std::string where = pointer_of(tokens);
    std::string what;
    const json* v = value_at(instance, tokens);
    const json* s = v != nullptr ? subschema_at(impl_->document, impl_->remote, tokens, instance) : nullptr;
    if (s != nullptr && v != nullptr) what = explain_simple(*s, *v);
    if (what.empty()) what = clean_description(first->description);
    return where.empty() ? what : where + ": " + what;
}

namespace {

// The reason text of a nlohmann exception, without its
// "[json.exception.parse_error.101] parse error " prefix. "last read: '...'"
// quotes the payload's raw bytes, which need not be UTF-8; the reason goes
// into MQTT strings and JSON (Reason String, quarantine envelope), so bytes
// outside printable ASCII are escaped.
std::string json_error_text(const std::exception& e) {
    std::string m = e.what();
    const auto pos = m.find("] ");
    if (pos != std::string::npos) m = m.substr(pos + 2);
    if (m.starts_with("parse error ")) m = m.substr(12);
    std::string safe;
    safe.reserve(m.size());
    for (const char ch : m) {
        const auto u = static_cast<unsigned char>(ch);
        if (u >= 0x20 && u < 0x7F) {
            safe += ch;
        } else {
            static constexpr char hex[] = "0123456789ABCDEF";
            safe += "\\x";
            safe += hex[u >> 4];
            safe += hex[u & 0xF];
        }
    }
    return safe;
}

// Parses a payload into `doc` without throwing. False when it is not JSON
// (a syntax error, a number a double cannot hold such as 1e999) or an
// object in it names a key twice; `why` (when not null) then says which.
bool parse_payload(std::string_view payload, json& doc, std::string* why) {
    // Keys seen per open object, innermost last: compared in a list while
    // an object is small, in a hash set once it is big (a hostile object
    // of 100,000 keys must not cost 10^10 comparisons).
    struct seen_keys {
        std::vector<std::string> few;
        std::unordered_set<std::string> many;
        bool insert(const std::string& k) {
            static constexpr std::size_t few_max = 16;
            if (!many.empty()) return many.insert(k).second;
            if (std::find(few.begin(), few.end(), k) != few.end()) return false;
            if (few.size() < few_max) {
                few.push_back(k);
                return true;
            }
            many.insert(std::make_move_iterator(few.begin()), std::make_move_iterator(few.end()));
            few.clear();
            return many.insert(k).second;
        }
    };
    std::vector<seen_keys> open;
    std::string duplicate;
    const auto watch = [&](int, json::parse_event_t event, json& parsed) {
        switch (event) {
        case json::parse_event_t::object_start:
            open.emplace_back();
            break;
        case json::parse_event_t::object_end:
            if (!open.empty()) open.pop_back();
            break;
        case json::parse_event_t::key:
            if (!open.empty() && duplicate.empty() && parsed.is_string()) {
                const auto& k = parsed.get_ref<const std::string&>();
                if (!open.back().insert(k)) duplicate = k;
            }
            break;
        default:
            break;
        }
        return true;
    };
    doc = json::parse(payload.begin(), payload.end(), watch, false);
    if (doc.is_discarded()) {
        if (why == nullptr) return false;
        if (payload.empty()) {
            *why = "empty (expected a JSON document)";
            return false;
        }
        // Parsed again, with exceptions, only to say why.
        try {
            [[maybe_unused]] const json parsed = json::parse(payload.begin(), payload.end());
            *why = "not JSON";
        } catch (const json::exception& e) {
            *why = "not JSON: " + json_error_text(e);
        }
        return false;
    }
    if (!duplicate.empty()) {
        if (why != nullptr) {
            std::string key = duplicate.size() > 64 ? duplicate.substr(0, 64) + "..." : duplicate;
            *why = "the key '" + json_error_text(std::runtime_error(key)) + "' appears twice in one object";
        }
        return false;
    }
    return true;
}

}  // namespace

bool json_schema::valid_payload(std::string_view payload, std::string* why) const {
    // Fast "valid" is final; anything else is decided (and explained) by
    // the DOM + valijson path below.
    if (impl_->fast && impl_->fast->check(payload, max_depth) == detail::fast_answer::valid) return true;
    // RFC 8259 forbids a byte order mark; nlohmann would skip it, other
    // readers would not: refused, so that every reader sees the same value.
    if (payload.starts_with("\xEF\xBB\xBF")) {
        if (why != nullptr) *why = "not JSON: starts with a UTF-8 byte order mark";
        return false;
    }
    if (json_nesting_depth(payload, max_depth) > max_depth) {
        if (why != nullptr) *why = "nested deeper than " + std::to_string(max_depth) + " levels";
        return false;
    }
    try {
        json doc;
        if (!parse_payload(payload, doc, why)) return false;
        if (valid(doc)) return true;
        if (why != nullptr) *why = explain(doc);
        return false;
    } catch (const std::exception& e) {
        // Out of memory while parsing or explaining: refused, never thrown
        // at the network thread.
        if (why != nullptr) *why = std::string("not validated: ") + e.what();
        return false;
    }
}

int json_nesting_depth(std::string_view text, int limit) noexcept {
    int depth = 0;
    int max = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') ++i;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') in_string = true;
        else if (c == '[' || c == '{') {
            if (++depth > max) {
                max = depth;
                if (max > limit) return max;
            }
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return max;
}

// ---------------------------------------------------------------------------
// Formats

namespace {

bool digit(char c) { return c >= '0' && c <= '9'; }
bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool hexdig(char c) { return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool fixed_number(std::string_view s, std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (!digit(s[pos + i])) return false;
        v = v * 10 + (s[pos + i] - '0');
    }
    out = v;
    return true;
}

bool leap_year(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

bool check_date(std::string_view s) {
    int y = 0, m = 0, d = 0;
    if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
    if (!fixed_number(s, 0, 4, y) || !fixed_number(s, 5, 2, m) || !fixed_number(s, 8, 2, d)) return false;
    static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1) return false;
    const int max = days[m - 1] + (m == 2 && leap_year(y) ? 1 : 0);
    return d <= max;
}

// RFC 3339 full-time: HH:MM:SS[.frac](Z|+HH:MM|-HH:MM); second 60 only for
// a leap second, i.e. when the time is 23:59 in UTC.
bool check_time(std::string_view s) {
    int h = 0, mi = 0, se = 0;
    if (s.size() < 9 || s[2] != ':' || s[5] != ':') return false;
    if (!fixed_number(s, 0, 2, h) || !fixed_number(s, 3, 2, mi) || !fixed_number(s, 6, 2, se)) return false;
    if (h > 23 || mi > 59 || se > 60) return false;
    std::size_t i = 8;
    if (i < s.size() && s[i] == '.') {
        ++i;
        const std::size_t from = i;
        while (i < s.size() && digit(s[i])) ++i;
        if (i == from) return false;
    }
    if (i >= s.size()) return false;
    int offset = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        if (i + 1 != s.size()) return false;
    } else if (s[i] == '+' || s[i] == '-') {
        int oh = 0, om = 0;
        if (s.size() != i + 6 || s[i + 3] != ':') return false;
        if (!fixed_number(s, i + 1, 2, oh) || !fixed_number(s, i + 4, 2, om)) return false;
        if (oh > 23 || om > 59) return false;
        offset = (oh * 60 + om) * (s[i] == '+' ? 1 : -1);
    } else {
        return false;
    }
    if (se == 60) {
        const int utc = ((h * 60 + mi - offset) % 1440 + 1440) % 1440;
        if (utc != 23 * 60 + 59) return false;
    }
    return true;
}

bool check_date_time(std::string_view s) {
    if (s.size() < 11 || (s[10] != 'T' && s[10] != 't')) return false;
    return check_date(s.substr(0, 10)) && check_time(s.substr(11));
}

bool check_ipv4(std::string_view s) {
    int parts = 0;
    std::size_t i = 0;
    while (true) {
        const std::size_t from = i;
        int v = 0;
        while (i < s.size() && digit(s[i]) && i - from < 4) v = v * 10 + (s[i++] - '0');
        const std::size_t len = i - from;
        if (len == 0 || len > 3 || v > 255 || (len > 1 && s[from] == '0')) return false;
        ++parts;
        if (i == s.size()) break;
        if (s[i] != '.' || parts == 4) return false;
        ++i;
    }
    return parts == 4;
}

bool check_ipv6(std::string_view s) {
    if (s.empty()) return false;
    const std::size_t dc = s.find("::");
    if (dc != std::string_view::npos && s.find("::", dc + 1) != std::string_view::npos) return false;
    // Counts 16-bit groups in a ':'-separated run; an IPv4 tail counts two.
    const auto groups = [](std::string_view part, bool allow_v4_tail, int& count) {
        count = 0;
        if (part.empty()) return true;
        std::size_t i = 0;
        while (true) {
            const std::size_t next = part.find(':', i);
            const std::string_view g = part.substr(i, next == std::string_view::npos ? part.npos : next - i);
            if (next == std::string_view::npos && allow_v4_tail && g.find('.') != std::string_view::npos) {
                if (!check_ipv4(g)) return false;
                count += 2;
                return true;
            }
            if (g.empty() || g.size() > 4 || !std::all_of(g.begin(), g.end(), hexdig)) return false;
            ++count;
            if (next == std::string_view::npos) return true;
            i = next + 1;
        }
    };
    int n1 = 0, n2 = 0;
    if (dc == std::string_view::npos) return groups(s, true, n1) && n1 == 8;
    if (!groups(s.substr(0, dc), false, n1) || !groups(s.substr(dc + 2), true, n2)) return false;
    return n1 + n2 <= 7;
}

bool check_hostname(std::string_view s, bool idn) {
    if (s.empty() || s.size() > 253) return false;
    std::size_t i = 0;
    while (true) {
        const std::size_t dot = s.find('.', i);
        const std::string_view label = s.substr(i, dot == std::string_view::npos ? s.npos : dot - i);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label) {
            const auto u = static_cast<unsigned char>(c);
            if (!(alpha(c) || digit(c) || c == '-' || (idn && u >= 0x80))) return false;
        }
        if (dot == std::string_view::npos) return true;
        i = dot + 1;
    }
}

bool check_email(std::string_view s, bool idn) {
    const std::size_t at = s.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == s.size()) return false;
    const std::string_view local = s.substr(0, at);
    const std::string_view domain = s.substr(at + 1);
    if (local.size() >= 2 && local.front() == '"' && local.back() == '"') {
        // quoted local part: printable ASCII with \-escapes
        for (std::size_t i = 1; i + 1 < local.size(); ++i) {
            if (local[i] == '\\') ++i;
            else if (local[i] == '"') return false;
        }
    } else {
        static constexpr std::string_view specials = "!#$%&'*+-/=?^_`{|}~";
        if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) return false;
        for (char c : local) {
            const auto u = static_cast<unsigned char>(c);
            if (!(alpha(c) || digit(c) || c == '.' || specials.find(c) != std::string_view::npos || (idn && u >= 0x80)))
                return false;
        }
    }
    if (domain.front() == '[' && domain.back() == ']') {
        const std::string_view lit = domain.substr(1, domain.size() - 2);
        if (lit.substr(0, 5) == "IPv6:") return check_ipv6(lit.substr(5));
        return check_ipv4(lit);
    }
    return check_hostname(domain, idn);
}

bool check_json_pointer(std::string_view s) {
    if (s.empty()) return true;
    if (s[0] != '/') return false;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i] == '~' && (i + 1 == s.size() || (s[i + 1] != '0' && s[i + 1] != '1'))) return false;
    return true;
}

bool check_relative_json_pointer(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size() && digit(s[i])) ++i;
    if (i == 0 || (i > 1 && s[0] == '0')) return false;
    const std::string_view rest = s.substr(i);
    return rest == "#" || check_json_pointer(rest);
}

// RFC 3986 (IRIs: RFC 3987, non-ASCII bytes allowed where unreserved are).
bool uri_char_ok(char c, std::string_view extra, bool iri) {
    static constexpr std::string_view unreserved_punct = "-._~";
    static constexpr std::string_view sub_delims = "!$&'()*+,;=";
    const auto u = static_cast<unsigned char>(c);
    return alpha(c) || digit(c) || unreserved_punct.find(c) != std::string_view::npos ||
           sub_delims.find(c) != std::string_view::npos || extra.find(c) != std::string_view::npos || (iri && u >= 0x80);
}

bool uri_part_ok(std::string_view s, std::string_view extra, bool iri) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%') {
            if (i + 2 >= s.size() || !hexdig(s[i + 1]) || !hexdig(s[i + 2])) return false;
            i += 2;
        } else if (!uri_char_ok(s[i], extra, iri)) {
            return false;
        }
    }
    return true;
}

bool check_uri(std::string_view s, bool require_scheme, bool iri) {
    std::string_view rest = s;
    // Fragment and query.
    const std::size_t hash = rest.find('#');
    if (hash != std::string_view::npos) {
        if (!uri_part_ok(rest.substr(hash + 1), ":@/?", iri)) return false;
        rest = rest.substr(0, hash);
    }
    const std::size_t q = rest.find('?');
    if (q != std::string_view::npos) {
        if (!uri_part_ok(rest.substr(q + 1), ":@/?", iri)) return false;
        rest = rest.substr(0, q);
    }
    // Scheme: up to the first ':' if that comes before any '/'.
    const std::size_t colon = rest.find(':');
    const std::size_t slash = rest.find('/');
    bool has_scheme = false;
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon < slash)) {
        const std::string_view scheme = rest.substr(0, colon);
        if (scheme.empty() || !alpha(scheme[0])) return false;
        for (char c : scheme)
            if (!(alpha(c) || digit(c) || c == '+' || c == '-' || c == '.')) return false;
        has_scheme = true;
        rest = rest.substr(colon + 1);
    }
    if (require_scheme && !has_scheme) return false;
    if (rest.substr(0, 2) == "//") {
        rest = rest.substr(2);
        const std::size_t end = rest.find('/');
        std::string_view authority = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
        const std::size_t at = authority.rfind('@');
        if (at != std::string_view::npos) {
            if (!uri_part_ok(authority.substr(0, at), ":", iri)) return false;
            authority = authority.substr(at + 1);
        }
        std::string_view host = authority;
        std::string_view port;
        if (!authority.empty() && authority[0] == '[') {
            const std::size_t close = authority.find(']');
            if (close == std::string_view::npos) return false;
            const std::string_view lit = authority.substr(1, close - 1);
            if (!check_ipv6(lit) && !(lit.size() > 1 && (lit[0] == 'v' || lit[0] == 'V'))) return false;
            const std::string_view after = authority.substr(close + 1);
            if (!after.empty()) {
                if (after[0] != ':') return false;
                port = after.substr(1);
            }
            host = {};
        } else {
            const std::size_t pc = authority.rfind(':');
            if (pc != std::string_view::npos) {
                host = authority.substr(0, pc);
                port = authority.substr(pc + 1);
            }
        }
        if (!std::all_of(port.begin(), port.end(), digit)) return false;
        if (!uri_part_ok(host, "", iri)) return false;
    } else if (!has_scheme) {
        // A relative path's first segment must not contain ':'.
        const std::size_t seg_end = rest.find('/');
        if (rest.substr(0, seg_end).find(':') != std::string_view::npos) return false;
    }
    return uri_part_ok(rest, ":@/", iri);
}

bool check_uri_template(std::string_view s) {
    bool in_expr = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '{') {
            if (in_expr) return false;
            in_expr = true;
        } else if (c == '}') {
            if (!in_expr) return false;
            in_expr = false;
        } else if (!in_expr) {
            const auto u = static_cast<unsigned char>(c);
            if (u <= 0x20 || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' ||
                c == '|')
                return false;
            if (c == '%' && (i + 2 >= s.size() || !hexdig(s[i + 1]) || !hexdig(s[i + 2]))) return false;
        }
    }
    return !in_expr;
}

}  // namespace

std::optional<bool> check_format(std::string_view format, std::string_view v) {
    if (format == "date-time") return check_date_time(v);
    if (format == "date") return check_date(v);
    if (format == "time") return check_time(v);
    if (format == "ipv4") return check_ipv4(v);
    if (format == "ipv6") return check_ipv6(v);
    if (format == "hostname") return check_hostname(v, false);
    if (format == "idn-hostname") return check_hostname(v, true);
    if (format == "email") return check_email(v, false);
    if (format == "idn-email") return check_email(v, true);
    if (format == "json-pointer") return check_json_pointer(v);
    if (format == "relative-json-pointer") return check_relative_json_pointer(v);
    if (format == "uri") return check_uri(v, true, false);
    if (format == "uri-reference") return check_uri(v, false, false);
    if (format == "iri") return check_uri(v, true, true);
    if (format == "iri-reference") return check_uri(v, false, true);
    if (format == "uri-template") return check_uri_template(v);
    if (format == "regex") {
        try {
            (void)compiled_pattern::compile(v, compiled_pattern::mode::search);
            return true;
        } catch (const pattern_error&) {
            return false;
        }
    }
    return std::nullopt;
}

}  // namespace strata::ns
