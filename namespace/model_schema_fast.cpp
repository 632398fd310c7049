// One-pass payload validation for the common JSON Schema subset; see
// model_schema_fast.hpp for what it covers and why it may only be trusted
// when it says "valid".
#include "namespace/model_schema_fast.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <string_view>

#include "namespace/model_schema.hpp"

namespace strata::ns::detail {

using json = nlohmann::json;

// ---- compile ----------------------------------------------------------------

class fast_compiler {
public:
    fast_compiler(fast_schema& out, const std::map<std::string, json>& remote) : out_(out), remote_(remote) {}

    bool ok = true;

    // Returns a node index, -1 for "anything" (true, {}).
    int compile(const json& s, const json& root, int depth = 0) {
        if (!ok) return -1;
        if (depth > 200) return fail();
        if (s.is_boolean()) return s.get<bool>() ? -1 : never();
        if (!s.is_object()) return fail();

        if (const auto ref = s.find("$ref"); ref != s.end()) {
            // Draft 7: the siblings of $ref are ignored.
            if (!ref->is_string()) return fail();
            const std::string& r = ref->get_ref<const std::string&>();
            const auto hash = r.find('#');
            const std::string uri = r.substr(0, hash);
            const json* doc = &root;
            if (!uri.empty()) {
                const auto it = remote_.find(uri);
                if (it == remote_.end()) return fail();
                doc = &it->second;
            }
            std::string frag = hash == std::string::npos ? std::string() : r.substr(hash + 1);
            if (!frag.empty() && frag[0] != '/') return fail();  // "#name" anchors: not here
            try {
                const json::json_pointer jp(decode(frag));
                if (!doc->contains(jp)) return fail();
                return compile(doc->at(jp), *doc, depth + 1);
            } catch (const json::exception&) {
                return fail();
            }
        }

        if (const auto it = memo_.find(&s); it != memo_.end()) return it->second;

        // {"allOf": [x]} with nothing else asserted is x (a wrapped root $ref).
        if (const auto all = s.find("allOf"); all != s.end() && all->is_array() && all->size() == 1) {
            bool only = true;
            for (auto it = s.begin(); it != s.end(); ++it)
                if (it.key() != "allOf" && !annotation(it.key())) only = false;
            if (only) {
                const int inner = compile((*all)[0], root, depth + 1);
                memo_.emplace(&s, inner);
                return inner;
            }
        }

        const int index = static_cast<int>(out_.nodes_.size());
        out_.nodes_.emplace_back();
        memo_.emplace(&s, index);
        fast_schema::node n;

        for (auto it = s.begin(); it != s.end() && ok; ++it) {
            const std::string& k = it.key();
            const json& v = it.value();
            if (k == "type") {
                n.types = 0;
                const auto add = [&](const json& t) {
                    const std::string name = t.is_string() ? t.get<std::string>() : std::string();
                    if (name == "null") n.types |= fast_schema::t_null;
                    else if (name == "boolean") n.types |= fast_schema::t_bool;
                    else if (name == "integer") n.types |= fast_schema::t_int;
                    else if (name == "number") n.types |= fast_schema::t_int | fast_schema::t_float;
                    else if (name == "string") n.types |= fast_schema::t_string;
                    else if (name == "array") n.types |= fast_schema::t_array;
                    else if (name == "object") n.types |= fast_schema::t_object;
                    else fail();
                };
                if (v.is_array()) for (const json& t : v) add(t);
                else add(v);
            } else if (k == "enum" || k == "const") {
                n.has_enum = true;
                const auto add = [&](const json& e) {
                    if (e.is_string()) n.enum_strings.push_back(e.get<std::string>());
                    else if (e.is_null()) n.enum_literals |= fast_schema::t_null;
                    else if (e.is_boolean()) (e.get<bool>() ? n.enum_true : n.enum_false) = true;
                    else fail();  // numbers (integer/float equality rules), arrays, objects
                };
                if (k == "const") add(v);
                else if (v.is_array()) for (const json& e : v) add(e);
                else fail();
                if (n.enum_true || n.enum_false) n.enum_literals |= fast_schema::t_bool;
            } else if (k == "minimum" || k == "maximum" || k == "exclusiveMinimum" || k == "exclusiveMaximum") {
                if (!v.is_number()) return fail();
                const double d = v.get<double>();
                if (k == "minimum") n.minimum = d;
                else if (k == "maximum") n.maximum = d;
                else if (k == "exclusiveMinimum") n.exclusive_minimum = d;
                else n.exclusive_maximum = d;
            } else if (k == "minLength" || k == "maxLength" || k == "minItems" || k == "maxItems") {
                if (!v.is_number() || v.get<double>() < 0) return fail();
                const auto x = static_cast<std::size_t>(v.get<double>());
                if (k == "minLength") n.min_length = x;
                else if (k == "maxLength") n.max_length = x;
                else if (k == "minItems") n.min_items = x;
                else n.max_items = x;
            } else if (k == "x-strata-pattern") {
                try {
                    n.pattern = std::make_shared<const compiled_pattern>(
                        compiled_pattern::compile(v.get<std::string>(), compiled_pattern::mode::search));
                } catch (...) {
                    return fail();
                }
            } else if (k == "x-strata-format") {
                n.format = v.get<std::string>();
            } else if (k == "properties") {
                if (!v.is_object()) return fail();
                for (auto p = v.begin(); p != v.end(); ++p) {
                    const int child = compile(p.value(), root, depth + 1);
                    n.properties.emplace_back(p.key(), child);
                }
            } else if (k == "required") {
                if (!v.is_array() || v.size() > 64) return fail();
                for (const json& r : v) n.required.push_back(r.get<std::string>());
            } else if (k == "additionalProperties") {
                n.additional = v.is_boolean() ? (v.get<bool>() ? -1 : -2) : compile(v, root, depth + 1);
            } else if (k == "items") {
                if (v.is_array()) {
                    n.has_tuple = true;
                    for (const json& e : v) n.tuple.push_back(compile(e, root, depth + 1));
                } else {
                    n.items = compile(v, root, depth + 1);
                }
            } else if (k == "additionalItems") {
                n.additional_items = v.is_boolean() ? (v.get<bool>() ? -1 : -2) : compile(v, root, depth + 1);
            } else if (annotation(k)) {
                // no assertion
            } else if (draft7_assertion(k)) {
                return fail();  // combinators, dependencies, uniqueItems, ...: valijson only
            }
            // Anything else is an unknown keyword: ignored, as JSON Schema says.
        }
        if (!ok) return -1;
        n.needs_text = n.has_enum || n.min_length || n.max_length || n.pattern || !n.format.empty();
        if (!n.has_tuple) n.additional_items = -1;  // only meaningful after a tuple
        out_.nodes_[static_cast<std::size_t>(index)] = std::move(n);
        return index;
    }

private:
    int fail() {
        ok = false;
        return -1;
    }

    int never() {
        fast_schema::node n;
        n.never = true;
        out_.nodes_.push_back(std::move(n));
        return static_cast<int>(out_.nodes_.size() - 1);
    }

    static bool annotation(const std::string& k) {
        return k == "$schema" || k == "$comment" || k == "title" || k == "description" || k == "default" ||
               k == "examples" || k == "readOnly" || k == "writeOnly" || k == "definitions" ||
               k == "contentMediaType" || k == "contentEncoding";
    }

    static bool draft7_assertion(const std::string& k) {
        static constexpr std::string_view keys[] = {
            "$id", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "patternProperties", "dependencies",
            "propertyNames", "contains", "uniqueItems", "multipleOf", "minProperties", "maxProperties",
        };
        return std::find(std::begin(keys), std::end(keys), k) != std::end(keys);
    }

    static std::string decode(const std::string& s) {
        std::string out;
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
                std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
                out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
                i += 2;
            } else {
                out += s[i];
            }
        }
        return out;
    }

    fast_schema& out_;
    const std::map<std::string, json>& remote_;
    std::map<const json*, int> memo_;
};

std::unique_ptr<fast_schema> fast_schema::compile(const json& document, const std::map<std::string, json>& remote) {
    auto out = std::make_unique<fast_schema>();
    fast_compiler c(*out, remote);
    out->root_ = c.compile(document, document);
    if (!c.ok) return nullptr;
    return out;
}

// ---- check ------------------------------------------------------------------

// Bytes a JSON string holds as they are, one code point each: printable
// ASCII except '"' and '\\'.
constexpr std::array<bool, 256> plain_byte = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x80; ++c) t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
    return t;
}();

class fast_checker {
public:
    fast_checker(const fast_schema& s, std::string_view text, int max_depth, std::string& key_buf, std::string& text_buf,
                 std::vector<std::uint64_t>& key_hashes)
        : s_(s), p_(text.data()), end_(text.data() + text.size()), max_depth_(max_depth), key_buf_(key_buf),
          text_buf_(text_buf), key_hashes_(key_hashes) {}

    fast_answer run() {
        // A byte order mark is refused (the DOM path says why): RFC 8259
        // forbids sending one, and readers disagree on skipping it.
        if (end_ - p_ >= 3 && std::memcmp(p_, "\xEF\xBB\xBF", 3) == 0) return fast_answer::invalid;
        ws();
        const bool ok = value(s_.root_, 0);
        if (unsure_) return fast_answer::unsure;
        if (!ok) return fast_answer::invalid;
        ws();
        return p_ == end_ ? fast_answer::valid : fast_answer::invalid;
    }

private:
    using node = fast_schema::node;

    void ws() {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
    }

    const node* at(int index) const { return index >= 0 ? &s_.nodes_[static_cast<std::size_t>(index)] : nullptr; }

    bool value(int index, int depth) {
        const node* n = at(index);
        if (index == -2 || (n != nullptr && n->never)) return false;
        if (p_ >= end_) return false;
        switch (*p_) {
        case '{':
            if (n != nullptr && !(n->types & fast_schema::t_object)) return false;
            if (n != nullptr && n->has_enum) return false;
            return object(n, depth + 1);
        case '[':
            if (n != nullptr && !(n->types & fast_schema::t_array)) return false;
            if (n != nullptr && n->has_enum) return false;
            return array(n, depth + 1);
        case '"':
            if (n != nullptr && !(n->types & fast_schema::t_string)) return false;
            return string_value(n);
        case 't':
            return literal("true", n, fast_schema::t_bool, true);
        case 'f':
            return literal("false", n, fast_schema::t_bool, false);
        case 'n':
            return literal("null", n, fast_schema::t_null, false);
        default:
            return number(n);
        }
    }

    bool literal(std::string_view word, const node* n, std::uint8_t type, bool truth) {
        if (static_cast<std::size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0) return false;
        p_ += word.size();
        if (n == nullptr) return true;
        if (!(n->types & type)) return false;
        if (n->has_enum) {
            if (!(n->enum_literals & type)) return false;
            if (type == fast_schema::t_bool && !(truth ? n->enum_true : n->enum_false)) return false;
        }
        return true;
    }

    bool number(const node* n) {
        const char* start = p_;
        if (p_ < end_ && *p_ == '-') ++p_;
        if (p_ >= end_) return false;
        if (*p_ == '0') {
            ++p_;
        } else if (*p_ >= '1' && *p_ <= '9') {
            while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
        } else {
            return false;
        }
        bool is_float = false;
        if (p_ < end_ && *p_ == '.') {
            is_float = true;
            ++p_;
            const char* d = p_;
            while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
            if (p_ == d) return false;
        }
        if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
            is_float = true;
            ++p_;
            if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
            const char* d = p_;
            while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
            if (p_ == d) return false;
        }
        // nlohmann keeps an integer literal as an integer when it fits 64
        // bits (signed if negative), otherwise as a double; a double out of
        // range is a parse error there ("1e400"), so it is checked even when
        // no keyword looks at the value.
        bool integer = false;
        if (!is_float) {
            if (*start == '-') {
                std::int64_t i = 0;
                integer = std::from_chars(start, p_, i).ec == std::errc{};
            } else {
                std::uint64_t u = 0;
                integer = std::from_chars(start, p_, u).ec == std::errc{};
            }
        }
        const bool ranged = n != nullptr && (n->minimum || n->maximum || n->exclusive_minimum || n->exclusive_maximum);
        double d = 0;
        if (!integer || ranged) {
            const auto r = std::from_chars(start, p_, d);
            if (r.ec != std::errc{} || !std::isfinite(d)) {
                unsure_ = true;  // overflow or underflow: let the DOM path decide
                return false;
            }
        }
        if (n == nullptr) return true;
        if (!(n->types & (integer ? fast_schema::t_int : fast_schema::t_float))) return false;
        if (n->has_enum) return false;  // enums here hold no numbers
        if (ranged) {
            if (n->minimum && d < *n->minimum) return false;
            if (n->maximum && d > *n->maximum) return false;
            if (n->exclusive_minimum && d <= *n->exclusive_minimum) return false;
            if (n->exclusive_maximum && d >= *n->exclusive_maximum) return false;
        }
        return true;
    }

    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    bool hex4(unsigned& out) {
        if (end_ - p_ < 4) return false;
        out = 0;
        for (int i = 0; i < 4; ++i) {
            const int h = hex(p_[i]);
            if (h < 0) return false;
            out = out * 16 + static_cast<unsigned>(h);
        }
        p_ += 4;
        return true;
    }

    static void append_utf8(std::string& s, unsigned cp) {
        if (cp < 0x80) {
            s += static_cast<char>(cp);
        } else if (cp < 0x800) {
            s += static_cast<char>(0xC0 | (cp >> 6));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            s += static_cast<char>(0xE0 | (cp >> 12));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            s += static_cast<char>(0xF0 | (cp >> 18));
            s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    // At the opening quote. `out` views the string's text: into the payload
    // when it has no escapes, else into `buf` (decoded). Counts code points.
    bool scan_string(std::string& buf, std::string_view& out, std::size_t& code_points) {
        ++p_;
        const char* start = p_;
        bool decoded = false;
        code_points = 0;
        while (true) {
            if (!decoded) {
                // The common case: a run of printable ASCII, one code point
                // per byte, taken as it is.
                const char* q = p_;
                while (q < end_ && plain_byte[static_cast<unsigned char>(*q)]) ++q;
                code_points += static_cast<std::size_t>(q - p_);
                p_ = q;
            }
            if (p_ >= end_) return false;
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                out = decoded ? std::string_view(buf) : std::string_view(start, static_cast<std::size_t>(p_ - start));
                ++p_;
                return true;
            }
            if (c < 0x20) return false;
            if (c == '\\') {
                if (!decoded) {
                    buf.assign(start, p_);
                    decoded = true;
                }
                ++p_;
                if (p_ >= end_) return false;
                const char e = *p_++;
                switch (e) {
                case '"': buf += '"'; break;
                case '\\': buf += '\\'; break;
                case '/': buf += '/'; break;
                case 'b': buf += '\b'; break;
                case 'f': buf += '\f'; break;
                case 'n': buf += '\n'; break;
                case 'r': buf += '\r'; break;
                case 't': buf += '\t'; break;
                case 'u': {
                    unsigned cp = 0;
                    if (!hex4(cp)) return false;
                    if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // lone low surrogate
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        unsigned low = 0;
                        if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
                        p_ += 2;
                        if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    append_utf8(buf, cp);
                    break;
                }
                default:
                    return false;
                }
                ++code_points;
                continue;
            }
            if (c < 0x80) {
                if (decoded) buf += static_cast<char>(c);
                ++p_;
                ++code_points;
                continue;
            }
            // UTF-8 per RFC 3629 (the ranges nlohmann's lexer accepts).
            std::size_t len = 0;
            unsigned char lo = 0x80, hi = 0xBF;
            if (c >= 0xC2 && c <= 0xDF) len = 1;
            else if (c == 0xE0) { len = 2; lo = 0xA0; }
            else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 2;
            else if (c == 0xED) { len = 2; hi = 0x9F; }
            else if (c == 0xF0) { len = 3; lo = 0x90; }
            else if (c >= 0xF1 && c <= 0xF3) len = 3;
            else if (c == 0xF4) { len = 3; hi = 0x8F; }
            else return false;
            if (static_cast<std::size_t>(end_ - p_) < len + 1) return false;
            const auto c1 = static_cast<unsigned char>(p_[1]);
            if (c1 < lo || c1 > hi) return false;
            for (std::size_t k = 2; k <= len; ++k) {
                const auto ck = static_cast<unsigned char>(p_[k]);
                if (ck < 0x80 || ck > 0xBF) return false;
            }
            if (decoded) buf.append(p_, len + 1);
            p_ += len + 1;
            ++code_points;
        }
    }

    bool string_value(const node* n) {
        std::string_view text;
        std::size_t cps = 0;
        if (!scan_string(text_buf_, text, cps)) return false;
        if (n == nullptr || !n->needs_text) return true;
        if (n->has_enum && std::find(n->enum_strings.begin(), n->enum_strings.end(), text) == n->enum_strings.end())
            return false;
        if (n->min_length && cps < *n->min_length) return false;
        if (n->max_length && cps > *n->max_length) return false;
        if (n->pattern && !n->pattern->match(text)) return false;
        if (!n->format.empty()) {
            const std::optional<bool> ok = check_format(n->format, text);
            if (ok.has_value() && !*ok) return false;
        }
        return true;
    }

    bool object(const node* n, int depth) {
        if (depth > max_depth_) return false;
        ++p_;  // '{'
        ws();
        std::uint64_t required_seen = 0;
        // Duplicate keys are refused (readers disagree on which one counts):
        // the keys of this object are remembered by hash on the per-thread
        // stack; a repeated hash, or an object too big to compare cheaply,
        // is "unsure" and goes to the DOM path, which decides exactly.
        const std::size_t keys_base = key_hashes_.size();
        struct unwind {
            std::vector<std::uint64_t>& v;
            std::size_t base;
            ~unwind() { v.resize(base); }
        } restore{key_hashes_, keys_base};
        if (p_ < end_ && *p_ == '}') {
            ++p_;
        } else {
            while (true) {
                ws();
                if (p_ >= end_ || *p_ != '"') return false;
                std::string_view key;
                std::size_t cps = 0;
                if (!scan_string(key_buf_, key, cps)) return false;
                if (!remember_key(key, keys_base)) return false;
                ws();
                if (p_ >= end_ || *p_ != ':') return false;
                ++p_;
                ws();
                int child = -1;
                if (n != nullptr) {
                    bool known = false;
                    for (const auto& [name, idx] : n->properties) {
                        if (name == key) {
                            child = idx;
                            known = true;
                            break;
                        }
                    }
                    for (std::size_t r = 0; r < n->required.size(); ++r)
                        if (n->required[r] == key) required_seen |= std::uint64_t{1} << r;
                    if (!known) {
                        if (n->additional == -2) return false;
                        child = n->additional;
                    }
                }
                // `key` may view key_buf_, which the value may overwrite:
                // it is not used after this point.
                if (!value(child, depth)) return false;
                ws();
                if (p_ >= end_) return false;
                if (*p_ == ',') {
                    ++p_;
                    continue;
                }
                if (*p_ == '}') {
                    ++p_;
                    break;
                }
                return false;
            }
        }
        if (n != nullptr && !n->required.empty()) {
            const std::uint64_t all =
                n->required.size() == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n->required.size()) - 1;
            if (required_seen != all) return false;
        }
        return true;
    }

    bool array(const node* n, int depth) {
        if (depth > max_depth_) return false;
        ++p_;  // '['
        ws();
        std::size_t count = 0;
        if (p_ < end_ && *p_ == ']') {
            ++p_;
        } else {
            while (true) {
                ws();
                int child = -1;
                if (n != nullptr) {
                    if (n->has_tuple) child = count < n->tuple.size() ? n->tuple[count] : n->additional_items;
                    else child = n->items;
                }
                if (!value(child, depth)) return false;
                ++count;
                ws();
                if (p_ >= end_) return false;
                if (*p_ == ',') {
                    ++p_;
                    continue;
                }
                if (*p_ == ']') {
                    ++p_;
                    break;
                }
                return false;
            }
        }
        if (n != nullptr) {
            if (n->min_items && count < *n->min_items) return false;
            if (n->max_items && count > *n->max_items) return false;
        }
        return true;
    }

    // False (and unsure) when `key` may repeat one of the object's keys
    // remembered since `base`.
    bool remember_key(std::string_view key, std::size_t base) {
        static constexpr std::size_t max_keys_compared = 32;
        const std::uint64_t h = std::hash<std::string_view>{}(key);
        if (key_hashes_.size() - base >= max_keys_compared ||
            std::find(key_hashes_.begin() + static_cast<std::ptrdiff_t>(base), key_hashes_.end(), h) !=
                key_hashes_.end()) {
            unsure_ = true;
            return false;
        }
        key_hashes_.push_back(h);
        return true;
    }

    const fast_schema& s_;
    const char* p_;
    const char* end_;
    int max_depth_;
    bool unsure_ = false;
    std::string& key_buf_;
    std::string& text_buf_;
    std::vector<std::uint64_t>& key_hashes_;
};

fast_answer fast_schema::check(std::string_view payload, int max_depth) const noexcept {
    thread_local std::string key_buf;
    thread_local std::string text_buf;
    thread_local std::vector<std::uint64_t> key_hashes;
    try {
        key_hashes.clear();
        return fast_checker(*this, payload, max_depth, key_buf, text_buf, key_hashes).run();
    } catch (...) {
        return fast_answer::unsure;  // e.g. bad_alloc while decoding a string
    }
}

}  // namespace strata::ns::detail
