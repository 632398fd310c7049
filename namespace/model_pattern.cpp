// Pattern compiler: ECMAScript subset -> syntax tree -> Thompson NFA -> DFA.
//
// The DFA is built eagerly by subset construction over byte classes (bytes
// that no instruction tells apart share a column), so a pattern like
// "line-[0-9]+" needs a handful of states and a few byte classes. '^' and '$'
// are assertions in the NFA: '^' can only be passed while computing the
// start state (position 0); '$' is never passed while consuming input, and a
// state accepts at the end of input when the closure that may pass '$'
// reaches the match instruction. Search mode prefixes the program with a
// loop over any byte and stops as soon as a state contains the match.
//
// Anything outside the subset raises `unsupported` internally and the
// pattern is handed to std::regex instead, so a model or schema author never
// has to know where the line is; only speed differs.
#include "namespace/model_pattern.hpp"

#include <algorithm>
#include <bitset>
#include <deque>
#include <map>
#include <utility>

namespace strata::ns {
namespace {

using byteset = std::bitset<256>;

struct unsupported {
    std::size_t offset;
};

struct node {
    enum kind_t : std::uint8_t { empty, bytes, concat, alt, repeat, begin, end };
    kind_t kind = empty;
    byteset set;
    std::vector<node> kids;
    int min = 0;
    int max = 0;  // -1: unbounded
};

byteset range(unsigned char lo, unsigned char hi) {
    byteset s;
    for (unsigned c = lo; c <= hi; ++c) s.set(c);
    return s;
}

byteset digit_set() { return range('0', '9'); }
byteset word_set() { return range('a', 'z') | range('A', 'Z') | range('0', '9') | range('_', '_'); }
byteset space_set() { return range('\t', '\r') | range(' ', ' '); }
byteset dot_set() {
    byteset s;
    s.set();
    s.reset('\n');
    s.reset('\r');
    return s;
}

class parser {
public:
    explicit parser(std::string_view s) : s_(s) {}

    node parse() {
        node n = parse_alt();
        if (i_ < s_.size()) fail("unmatched ')'");
        return n;
    }

private:
    static constexpr int max_depth = 200;

    [[noreturn]] void fail(const std::string& msg) const { throw pattern_error(msg, i_); }
    [[noreturn]] void fail_at(const std::string& msg, std::size_t at) const { throw pattern_error(msg, at); }

    bool at_end() const { return i_ >= s_.size(); }
    char peek() const { return s_[i_]; }

    node parse_alt() {
        node first = parse_concat();
        if (at_end() || peek() != '|') return first;
        node a;
        a.kind = node::alt;
        a.kids.push_back(std::move(first));
        while (!at_end() && peek() == '|') {
            ++i_;
            a.kids.push_back(parse_concat());
        }
        return a;
    }

    node parse_concat() {
        node c;
        c.kind = node::concat;
        while (!at_end() && peek() != '|' && peek() != ')') c.kids.push_back(parse_term());
        if (c.kids.empty()) return node{};
        if (c.kids.size() == 1) return std::move(c.kids.front());
        return c;
    }

    // Reads a quantifier at i_ if there is one: {n}, {n,}, {n,m}, *, +, ?.
    bool parse_quantifier(int& min, int& max) {
        if (at_end()) return false;
        const char c = peek();
        if (c == '*') { min = 0; max = -1; ++i_; }
        else if (c == '+') { min = 1; max = -1; ++i_; }
        else if (c == '?') { min = 0; max = 1; ++i_; }
        else if (c == '{') {
            const std::size_t start = i_;
            ++i_;
            const auto number = [&](int& out) {
                const std::size_t from = i_;
                long v = 0;
                while (!at_end() && peek() >= '0' && peek() <= '9') {
                    v = std::min<long>(v * 10 + (peek() - '0'), 1'000'000);
                    ++i_;
                }
                out = static_cast<int>(v);
                return i_ > from;
            };
            if (!number(min)) fail_at("invalid quantifier '{'", start);
            if (!at_end() && peek() == ',') {
                ++i_;
                if (!number(max)) max = -1;
            } else {
                max = min;
            }
            if (at_end() || peek() != '}') fail_at("unterminated quantifier '{'", start);
            ++i_;
            if (max != -1 && max < min) fail_at("quantifier {n,m} with m < n", start);
        } else {
            return false;
        }
        if (!at_end() && peek() == '?') ++i_;  // lazy: same language
        return true;
    }

    node parse_term() {
        const std::size_t start = i_;
        node atom = parse_atom();
        int min = 0;
        int max = 0;
        if (!parse_quantifier(min, max)) return atom;
        if (atom.kind == node::begin || atom.kind == node::end) fail_at("nothing to repeat", start);
        int dummy_min = 0;
        int dummy_max = 0;
        const std::size_t second = i_;
        if (parse_quantifier(dummy_min, dummy_max)) fail_at("nothing to repeat", second);
        node r;
        r.kind = node::repeat;
        r.min = min;
        r.max = max;
        r.kids.push_back(std::move(atom));
        return r;
    }

    node bytes_node(const byteset& s) {
        node n;
        n.kind = node::bytes;
        n.set = s;
        return n;
    }

    node parse_atom() {
        const std::size_t start = i_;
        const char c = peek();
        switch (c) {
        case '^': {
            ++i_;
            node n;
            n.kind = node::begin;
            return n;
        }
        case '$': {
            ++i_;
            node n;
            n.kind = node::end;
            return n;
        }
        case '.':
            ++i_;
            return bytes_node(dot_set());
        case '(': {
            if (++depth_ > max_depth) fail("groups nested too deeply");
            ++i_;
            if (!at_end() && peek() == '?') {
                if (i_ + 1 < s_.size() && s_[i_ + 1] == ':') {
                    i_ += 2;
                } else {
                    throw unsupported{start};  // lookaround, named groups
                }
            }
            node inner = parse_alt();
            if (at_end() || peek() != ')') fail_at("missing ')'", start);
            ++i_;
            --depth_;
            return inner;
        }
        case '[':
            return bytes_node(parse_class());
        case '\\':
            return bytes_node(parse_escape(false));
        case '*':
        case '+':
        case '?':
        case '{':
            fail("nothing to repeat");
        default:
            ++i_;
            return bytes_node(range(static_cast<unsigned char>(c), static_cast<unsigned char>(c)));
        }
    }

    static int hex_value(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    // After a backslash. `in_class`: inside [...], where \b is a backspace.
    // Sets `single` to the one byte the escape stands for, or -1 for a set.
    byteset parse_escape(bool in_class, int* single = nullptr) {
        const std::size_t start = i_;
        ++i_;  // the backslash
        if (at_end()) fail_at("'\\' at end of pattern", start);
        const char c = s_[i_++];
        const auto one = [&](unsigned char b) {
            if (single != nullptr) *single = b;
            return range(b, b);
        };
        if (single != nullptr) *single = -1;
        switch (c) {
        case 'd': return digit_set();
        case 'D': return ~digit_set();
        case 'w': return word_set();
        case 'W': return ~word_set();
        case 's': return space_set();
        case 'S': return ~space_set();
        case 't': return one('\t');
        case 'n': return one('\n');
        case 'v': return one('\v');
        case 'f': return one('\f');
        case 'r': return one('\r');
        case 'b':
            if (in_class) return one('\b');
            throw unsupported{start};  // word boundary
        case 'B':
            throw unsupported{start};
        case '0':
            if (!at_end() && peek() >= '0' && peek() <= '9') throw unsupported{start};  // octal, annex B
            return one('\0');
        case 'x': {
            if (i_ + 2 > s_.size() || hex_value(s_[i_]) < 0 || hex_value(s_[i_ + 1]) < 0)
                fail_at("invalid '\\xHH' escape", start);
            const int v = hex_value(s_[i_]) * 16 + hex_value(s_[i_ + 1]);
            i_ += 2;
            return one(static_cast<unsigned char>(v));
        }
        case 'u': {
            if (i_ + 4 > s_.size()) fail_at("invalid '\\uHHHH' escape", start);
            int v = 0;
            for (int k = 0; k < 4; ++k) {
                const int h = hex_value(s_[i_ + k]);
                if (h < 0) fail_at("invalid '\\uHHHH' escape", start);
                v = v * 16 + h;
            }
            if (v > 0x7F) throw unsupported{start};
            i_ += 4;
            return one(static_cast<unsigned char>(v));
        }
        case 'c': {
            if (at_end() || !((peek() >= 'a' && peek() <= 'z') || (peek() >= 'A' && peek() <= 'Z')))
                fail_at("invalid '\\cX' escape", start);
            const char letter = s_[i_++];
            return one(static_cast<unsigned char>(letter % 32));
        }
        default:
            break;
        }
        if (c >= '1' && c <= '9') throw unsupported{start};  // backreference
        if (static_cast<unsigned char>(c) >= 0x80) throw unsupported{start};
        // Identity escapes only for punctuation. libstdc++ (and ECMAScript's
        // web-compatibility annex) read an unknown letter escape as the
        // letter, but "\Z" or "\p{L}" in a model is a mistake (.NET / PCRE
        // syntax), not a literal 'Z': say so instead of matching something else.
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            fail_at(std::string("unknown escape '\\") + c + "'", start);
        return one(static_cast<unsigned char>(c));
    }

    byteset parse_class() {
        const std::size_t start = i_;
        ++i_;  // '['
        bool negate = false;
        if (!at_end() && peek() == '^') {
            negate = true;
            ++i_;
        }
        byteset set;
        // ECMAScript: ']' right after '[' or '[^' closes an empty class.
        while (true) {
            if (at_end()) fail_at("missing ']'", start);
            if (peek() == ']') {
                ++i_;
                break;
            }
            const std::size_t atom_start = i_;
            int lo = -1;
            const byteset first = class_atom(lo);
            // A range "x-y": '-' followed by something other than ']'.
            if (!at_end() && peek() == '-' && i_ + 1 < s_.size() && s_[i_ + 1] != ']') {
                ++i_;
                int hi = -1;
                class_atom(hi);
                if (lo < 0 || hi < 0) fail_at("invalid range in '[...]'", atom_start);
                if (hi < lo) fail_at("range out of order in '[...]'", atom_start);
                set |= range(static_cast<unsigned char>(lo), static_cast<unsigned char>(hi));
            } else {
                set |= first;
            }
        }
        return negate ? ~set : set;
    }

    byteset class_atom(int& single) {
        if (peek() == '\\') return parse_escape(true, &single);
        const unsigned char c = static_cast<unsigned char>(s_[i_++]);
        if (c >= 0x80) throw unsupported{i_ - 1};  // ranges of multi-byte characters
        single = c;
        return range(c, c);
    }

    std::string_view s_;
    std::size_t i_ = 0;
    int depth_ = 0;
};

// ---- NFA ----

struct instr {
    enum op_t : std::uint8_t { byte, split, jmp, begin, end, match };
    op_t op;
    int x = 0;    // byte: set index; split/jmp: target
    int y = 0;    // split: second target
};

class program_builder {
public:
    std::vector<instr> code;
    std::vector<byteset> sets;

    // Instruction count the node would emit, saturated at limit + 1.
    static std::size_t estimate(const node& n, std::size_t limit) {
        const auto sat = [&](std::size_t v) { return std::min(v, limit + 1); };
        switch (n.kind) {
        case node::empty: return 0;
        case node::bytes:
        case node::begin:
        case node::end: return 1;
        case node::concat: {
            std::size_t t = 0;
            for (const node& k : n.kids) t = sat(t + estimate(k, limit));
            return t;
        }
        case node::alt: {
            std::size_t t = 0;
            for (const node& k : n.kids) t = sat(t + estimate(k, limit) + 2);
            return t;
        }
        case node::repeat: {
            const std::size_t body = estimate(n.kids.front(), limit) + 2;
            const std::size_t copies = n.max < 0 ? static_cast<std::size_t>(n.min) + 1 : static_cast<std::size_t>(n.max);
            if (body != 0 && copies > (limit + 1) / body + 1) return limit + 1;
            return sat(body * copies);
        }
        }
        return limit + 1;
    }

    void emit(const node& n) {
        switch (n.kind) {
        case node::empty:
            return;
        case node::bytes: {
            int idx = -1;
            for (std::size_t i = 0; i < sets.size(); ++i)
                if (sets[i] == n.set) idx = static_cast<int>(i);
            if (idx < 0) {
                idx = static_cast<int>(sets.size());
                sets.push_back(n.set);
            }
            code.push_back({instr::byte, idx, 0});
            return;
        }
        case node::begin:
            code.push_back({instr::begin, 0, 0});
            return;
        case node::end:
            code.push_back({instr::end, 0, 0});
            return;
        case node::concat:
            for (const node& k : n.kids) emit(k);
            return;
        case node::alt: {
            std::vector<std::size_t> jumps;
            for (std::size_t i = 0; i < n.kids.size(); ++i) {
                if (i + 1 < n.kids.size()) {
                    const std::size_t split = code.size();
                    code.push_back({instr::split, static_cast<int>(split + 1), 0});
                    emit(n.kids[i]);
                    jumps.push_back(code.size());
                    code.push_back({instr::jmp, 0, 0});
                    code[split].y = static_cast<int>(code.size());
                } else {
                    emit(n.kids[i]);
                }
            }
            for (std::size_t j : jumps) code[j].x = static_cast<int>(code.size());
            return;
        }
        case node::repeat: {
            const node& body = n.kids.front();
            for (int i = 0; i < n.min; ++i) emit(body);
            if (n.max < 0) {
                const std::size_t loop = code.size();
                code.push_back({instr::split, static_cast<int>(loop + 1), 0});
                emit(body);
                code.push_back({instr::jmp, static_cast<int>(loop), 0});
                code[loop].y = static_cast<int>(code.size());
            } else {
                std::vector<std::size_t> splits;
                for (int i = n.min; i < n.max; ++i) {
                    splits.push_back(code.size());
                    code.push_back({instr::split, static_cast<int>(code.size() + 1), 0});
                    emit(body);
                }
                for (std::size_t s : splits) code[s].y = static_cast<int>(code.size());
            }
            return;
        }
        }
    }
};

// Closure of `seeds`: the instructions a thread can wait at (byte, match,
// and end when end may not be passed), sorted.
std::vector<int> closure(const std::vector<instr>& code, const std::vector<int>& seeds, bool at_begin, bool at_end) {
    std::vector<int> out;
    std::vector<char> seen(code.size(), 0);
    std::vector<int> stack(seeds.rbegin(), seeds.rend());
    while (!stack.empty()) {
        const int pc = stack.back();
        stack.pop_back();
        if (pc < 0 || static_cast<std::size_t>(pc) >= code.size() || seen[pc]) continue;
        seen[pc] = 1;
        const instr& in = code[pc];
        switch (in.op) {
        case instr::byte:
        case instr::match:
            out.push_back(pc);
            break;
        case instr::jmp:
            stack.push_back(in.x);
            break;
        case instr::split:
            stack.push_back(in.y);
            stack.push_back(in.x);
            break;
        case instr::begin:
            if (at_begin) stack.push_back(pc + 1);
            break;
        case instr::end:
            if (at_end) stack.push_back(pc + 1);
            else out.push_back(pc);
            break;
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

compiled_pattern compiled_pattern::compile(std::string_view source, mode m) {
    compiled_pattern p;
    p.source_ = std::string(source);
    p.mode_ = m;
    try {
        parser ps(source);
        const node tree = ps.parse();
        if (program_builder::estimate(tree, max_program) > max_program) throw unsupported{0};

        program_builder b;
        if (m == mode::search) {
            // 0: split 1, 3   1: byte any   2: jmp 0   3: pattern...
            byteset any;
            any.set();
            b.sets.push_back(any);
            b.code.push_back({instr::split, 1, 3});
            b.code.push_back({instr::byte, 0, 0});
            b.code.push_back({instr::jmp, 0, 0});
        }
        b.emit(tree);
        b.code.push_back({instr::match, 0, 0});
        const std::vector<instr>& code = b.code;

        // Byte classes: bytes with the same membership in every set.
        {
            std::map<std::vector<bool>, std::uint16_t> ids;
            for (unsigned c = 0; c < 256; ++c) {
                std::vector<bool> sig(b.sets.size());
                for (std::size_t s = 0; s < b.sets.size(); ++s) sig[s] = b.sets[s].test(c);
                auto [it, inserted] = ids.emplace(std::move(sig), static_cast<std::uint16_t>(ids.size()));
                p.class_of_[c] = static_cast<std::uint8_t>(it->second);
            }
            p.classes_ = static_cast<std::uint16_t>(ids.size());
        }
        std::vector<unsigned char> representative(p.classes_);
        for (int c = 255; c >= 0; --c) representative[p.class_of_[c]] = static_cast<unsigned char>(c);

        const std::size_t match_pc = code.size() - 1;
        // State keys: the thread set, plus whether it is the start state
        // (the only one where '^' can be passed, which matters for '$'
        // closures at the end of an empty input).
        std::map<std::pair<std::vector<int>, bool>, std::uint16_t> index;
        std::vector<std::pair<std::vector<int>, bool>> states;
        const auto intern = [&](std::vector<int> set, bool initial) -> std::uint16_t {
            auto key = std::make_pair(std::move(set), initial);
            const auto it = index.find(key);
            if (it != index.end()) return it->second;
            if (states.size() >= max_dfa_states) throw unsupported{0};
            const auto id = static_cast<std::uint16_t>(states.size());
            index.emplace(key, id);
            states.push_back(std::move(key));
            return id;
        };
        intern(closure(code, {0}, true, false), true);
        for (std::size_t s = 0; s < states.size(); ++s) {
            const std::vector<int> threads = states[s].first;  // copy: states grows
            const bool initial = states[s].second;
            // End of input here: pass '$' (and '^' if still at position 0).
            std::vector<int> end_seeds;
            bool accepts = false;
            for (int pc : threads) {
                if (code[pc].op == instr::match) accepts = true;
                if (code[pc].op == instr::end) end_seeds.push_back(pc + 1);
            }
            if (!accepts && !end_seeds.empty()) {
                const std::vector<int> fin = closure(code, end_seeds, initial, true);
                accepts = std::binary_search(fin.begin(), fin.end(), static_cast<int>(match_pc));
            }
            std::vector<std::uint8_t> row_accept(p.classes_, 0);
            row_accept[0] = accepts ? 1 : 0;
            p.accept_.insert(p.accept_.end(), row_accept.begin(), row_accept.end());
            row_accept[0] = m == mode::search &&
                            std::binary_search(threads.begin(), threads.end(), static_cast<int>(match_pc));
            p.accept_now_.insert(p.accept_now_.end(), row_accept.begin(), row_accept.end());
            if (threads.empty()) p.dead_ = static_cast<std::uint32_t>(s * p.classes_);

            for (std::uint16_t cls = 0; cls < p.classes_; ++cls) {
                std::vector<int> seeds;
                for (int pc : threads)
                    if (code[pc].op == instr::byte && b.sets[code[pc].x].test(representative[cls])) seeds.push_back(pc + 1);
                const std::uint16_t next = intern(closure(code, seeds, false, false), false);
                p.table_.push_back(static_cast<std::uint32_t>(next) * p.classes_);
            }
        }
        p.states_ = states.size();
    } catch (const unsupported& u) {
        p.table_.clear();
        p.accept_.clear();
        p.accept_now_.clear();
        p.states_ = 0;
        try {
            p.fallback_ = std::make_shared<const std::regex>(p.source_, std::regex::ECMAScript | std::regex::optimize);
        } catch (const std::regex_error& e) {
            throw pattern_error(e.what(), u.offset);
        }
    }
    return p;
}

bool compiled_pattern::match(std::string_view input) const noexcept {
    if (fallback_) {
        if (input.size() > fallback_max_input) return false;
        try {
            if (mode_ == mode::full) return std::regex_match(input.begin(), input.end(), *fallback_);
            return std::regex_search(input.begin(), input.end(), *fallback_);
        } catch (...) {
            return false;  // error_complexity / error_stack: treated as no match
        }
    }
    if (accept_.empty()) return false;
    std::uint32_t s = 0;
    const std::uint32_t* const table = table_.data();
    const std::uint32_t dead = dead_;
    if (mode_ == mode::full) {
        for (const char ch : input) {
            s = table[s + class_of_[static_cast<unsigned char>(ch)]];
            if (s == dead) return false;
        }
        return accept_[s] != 0;
    }
    for (const char ch : input) {
        if (accept_now_[s]) return true;
        s = table[s + class_of_[static_cast<unsigned char>(ch)]];
        if (s == dead) return false;
    }
    return accept_[s] != 0;
}

std::optional<bool> compiled_pattern::can_match_level_name() const {
    if (fallback_) return std::nullopt;
    if (accept_.empty()) return false;
    std::vector<char> allowed(classes_, 0);
    for (unsigned c = 1; c < 256; ++c)
        if (c != '/' && c != '+' && c != '#') allowed[class_of_[c]] = 1;
    // Breadth-first over states reached by at least one allowed byte.
    std::vector<char> seen(accept_.size(), 0);  // by row offset
    std::deque<std::uint32_t> queue;
    const auto push_successors = [&](std::uint32_t s) {
        for (std::uint16_t cls = 0; cls < classes_; ++cls) {
            if (!allowed[cls]) continue;
            const std::uint32_t n = table_[s + cls];
            if (!seen[n]) {
                seen[n] = 1;
                queue.push_back(n);
            }
        }
    };
    push_successors(0);
    while (!queue.empty()) {
        const std::uint32_t s = queue.front();
        queue.pop_front();
        if (accept_[s] || accept_now_[s]) return true;
        push_successors(s);
    }
    return false;
}

}  // namespace strata::ns
