// The pattern compiler (level names, schema "pattern"): the DFA must answer
// exactly what std::regex (ECMAScript) answers, in both full-match and
// search mode; syntax errors carry their offset; exotic syntax falls back.
#include <catch2/catch.hpp>

#include <random>
#include <regex>
#include <string>

#include "namespace/model_pattern.hpp"

using namespace strata::ns;

namespace {

compiled_pattern full(const char* p) { return compiled_pattern::compile(p, compiled_pattern::mode::full); }
compiled_pattern search(const char* p) { return compiled_pattern::compile(p, compiled_pattern::mode::search); }

}  // namespace

TEST_CASE("patterns agree with std::regex", "[model][pattern]") {
    // Each pattern is run against random strings over an alphabet that
    // exercises it, in both modes, and compared with std::regex.
    const char* patterns[] = {
        "line-[0-9]+", "cell-[0-9]{1,2}", "[a-z]+(-[a-z]+)*-[0-9]{1,3}", "[a-z][a-z0-9-]*", "a|b|", "(ab|a)*b",
        "^a$", "a$|b", "^$", "(a|^b)c", "x(a$)?", ".*", "[^a-c]+x?", "\\d{2,}-\\w*", "(?:ab){2,3}", "a{0}",
        "[\\]\\-]+", "\\x61\\t", "[]", "[^]", "a?b??c*?", "(a*)*b", "press-\\d+|robot-[a-f]", "[\\s\\S]", "\\.\\*",
        "^(a|b)*$", "a{3,5}", "(x|xy)(z|yz)", "^\\w+@\\w+\\.com$", "[-a]", "[a-]", "}", "]", "a]", "$a", "a^",
        "(^a|b)+", "[\\d-]", "[.]", "\\W+", "\\D\\S", "(a|b|c|)+d", "((a)|b)+", "[A-Z]{2,4}-[0-9]{3,5}",
        "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", "\\u0061", "\\0", "x{2,}y{,",
        // Not "\\cJ": libstdc++ reads it as 'J' (ECMAScript: U+000A), tested below.
    };
    const std::string alphabet = "abcxyz-01.\n\t@]}^$ AZ_";
    std::mt19937 rng(1234);
    for (const char* p : patterns) {
        std::regex oracle;
        try {
            oracle = std::regex(p, std::regex::ECMAScript);
        } catch (const std::regex_error&) {
            // Not a valid ECMAScript pattern for std::regex: ours must refuse it too.
            INFO(p);
            CHECK_THROWS_AS(full(p), pattern_error);
            continue;
        }
        const compiled_pattern f = full(p);
        const compiled_pattern s = search(p);
        INFO("pattern " << p);
        CHECK_FALSE(f.uses_fallback());
        for (int i = 0; i < 2000; ++i) {
            std::string input;
            const int len = static_cast<int>(rng() % 9);
            for (int k = 0; k < len; ++k) input += alphabet[rng() % alphabet.size()];
            INFO("input '" << input << "'");
            CHECK(f.match(input) == std::regex_match(input, oracle));
            CHECK(s.match(input) == std::regex_search(input, oracle));
        }
    }
}

TEST_CASE("pattern syntax errors carry their offset", "[model][pattern]") {
    struct bad {
        const char* pattern;
        std::size_t offset;
        const char* message;
    };
    const bad cases[] = {
        {"line-[0-9", 5, "missing ']'"},
        {"(ab", 0, "missing ')'"},
        {"ab)", 2, "unmatched ')'"},
        {"*a", 0, "nothing to repeat"},
        {"a**", 2, "nothing to repeat"},
        {"a{2}{3}", 4, "nothing to repeat"},
        {"^*", 0, "nothing to repeat"},
        {"a{", 1, "invalid quantifier '{'"},
        {"a{2", 1, "unterminated quantifier '{'"},
        {"a{3,1}", 1, "quantifier {n,m} with m < n"},
        {"[z-a]", 1, "range out of order in '[...]'"},
        {"[\\d-z]", 1, "invalid range in '[...]'"},
        {"a\\", 1, "'\\' at end of pattern"},
        {"\\x4g", 0, "invalid '\\xHH' escape"},
        {"\\u12", 0, "invalid '\\uHHHH' escape"},
        {"\\c1", 0, "invalid '\\cX' escape"},
        {"\\Z", 0, "unknown escape '\\Z'"},
        {"\\p{L}", 0, "unknown escape '\\p'"},
    };
    for (const bad& b : cases) {
        INFO(b.pattern);
        try {
            (void)full(b.pattern);
            FAIL("no error");
        } catch (const pattern_error& e) {
            CHECK(e.offset() == b.offset);
            CHECK(std::string(e.what()) == b.message);
        }
    }
    CHECK_THROWS_AS(full(std::string(300, '(').c_str()), pattern_error);  // nested too deeply
}

TEST_CASE("pattern semantics on bytes", "[model][pattern]") {
    CHECK(full("caf\xc3\xa9").match("caf\xc3\xa9"));
    CHECK(full("caf.{2}").match("caf\xc3\xa9"));  // '.' is one byte
    CHECK_FALSE(full("caf.").match("caf\xc3\xa9"));
    CHECK_FALSE(full(".").match("\n"));
    CHECK_FALSE(full(".").match("\r"));
    CHECK(full("[^a]").match("\n"));
    CHECK(full("\\s").match("\v"));
    CHECK(full("\\cJ").match("\n"));
    CHECK(full("a\\0b").match(std::string_view("a\0b", 3)));
    CHECK(search("b").match("abc"));
    CHECK_FALSE(full("b").match("abc"));
    CHECK(search("^a").match("abc"));
    CHECK_FALSE(search("^b").match("abc"));
    CHECK(search("c$").match("abc"));
    CHECK(search("").match(""));
    CHECK(full("").match(""));
    CHECK_FALSE(full("").match("a"));
    const compiled_pattern none;
    CHECK_FALSE(none.match(""));
}

TEST_CASE("what the DFA cannot do goes to std::regex", "[model][pattern]") {
    const compiled_pattern backref = full("(a+)b\\1");
    CHECK(backref.uses_fallback());
    CHECK(backref.match("aabaa"));
    CHECK_FALSE(backref.match("aaba"));
    const compiled_pattern look = search("foo(?=bar)");
    CHECK(look.uses_fallback());
    CHECK(look.match("xfoobar"));
    CHECK_FALSE(look.match("foobaz"));
    CHECK(search("\\bword\\b").match("a word here"));
    CHECK_FALSE(search("\\bword\\b").match("swordfish"));
    // Inputs past the fallback limit never match (libstdc++ recursion depth).
    CHECK_FALSE(full("(a)\\1*").match(std::string(compiled_pattern::fallback_max_input + 1, 'a')));
    // Too large for the DFA: still correct through std::regex.
    const compiled_pattern big = full("(a|b)*a(a|b){14}");
    CHECK(big.match("a" + std::string(14, 'b')));
    CHECK_FALSE(big.match(std::string(15, 'b')));
    // Invalid for std::regex too: a pattern_error.
    CHECK_THROWS_AS(full("(?<name>x)"), pattern_error);
}

TEST_CASE("long inputs are linear and safe", "[model][pattern]") {
    const compiled_pattern p = search("^(a|b)*c$");
    std::string s(1 << 20, 'a');
    CHECK_FALSE(p.match(s));
    s.back() = 'c';
    CHECK(p.match(s));
}

TEST_CASE("can a level pattern ever match a level?", "[model][pattern]") {
    CHECK(full("line-[0-9]+").can_match_level_name() == true);
    CHECK(full("a/b").can_match_level_name() == false);
    CHECK(full("[+#]").can_match_level_name() == false);
    CHECK(full("x?").can_match_level_name() == true);   // "x"
    CHECK(full("").can_match_level_name() == false);    // only the empty level
    CHECK(full("(a)\\1").can_match_level_name() == std::nullopt);
}
