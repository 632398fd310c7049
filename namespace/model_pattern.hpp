// Regular expressions for level names and JSON Schema "pattern" keywords.
//
// Why not std::regex alone: a level pattern is matched on every PUBLISH, and
// libstdc++'s std::regex costs hundreds of nanoseconds for a short name,
// allocates, and recurses once per input character (a long enough input
// overflows the stack). So patterns are compiled here, once, into a DFA over
// bytes: matching is one table lookup per byte, linear time, no allocation,
// no recursion.
//
// The ECMAScript subset compiled to a DFA is what names and payload patterns
// use in practice: literals, '.', classes [...] with ranges and negation,
// \d \D \w \W \s \S \t \n \v \f \r \0 \xHH \cX, identity escapes of
// punctuation, groups (...) and (?:...), '|', the quantifiers * + ? {n}
// {n,} {n,m} (greedy or lazy: the same for a yes/no answer), '^' and '$'.
// Anything else (backreferences, lookaround, \b, \B, \u above 0x7F, named
// groups) and patterns whose automaton would grow past the size limits fall
// back to std::regex (ECMAScript grammar), compiled once here. Unlike
// libstdc++, an escaped letter that is not an ECMAScript escape ("\Z",
// "\p{L}", "\e") is a syntax error rather than the letter itself. A fallback
// pattern refuses inputs longer than `fallback_max_input` bytes (they count
// as "no match") because of the recursion depth mentioned above.
//
// Semantics follow std::regex ECMAScript over `char`: '.' is any byte but
// \n and \r; \s is [ \t\n\v\f\r]; a non-ASCII character is matched as its
// UTF-8 bytes, so "é" in a pattern matches "é" in a name, but '.' matches
// one byte of it, not the whole character. No flags (case-sensitive,
// single-line).
//
// Thread-safety: a compiled_pattern is immutable; match() is const,
// noexcept and safe to call from any number of threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace strata::ns {

// A syntax error in a pattern; offset() is the byte position in the pattern
// where the problem was found (0-based).
class pattern_error : public std::runtime_error {
public:
    pattern_error(const std::string& what, std::size_t offset) : std::runtime_error(what), offset_(offset) {}
    [[nodiscard]] std::size_t offset() const noexcept { return offset_; }

private:
    std::size_t offset_;
};

class compiled_pattern {
public:
    // full: the whole input must match (level names). search: a match
    // anywhere in the input is enough (JSON Schema "pattern").
    enum class mode : std::uint8_t { full, search };

    static constexpr std::size_t max_dfa_states = 2048;
    static constexpr std::size_t max_program = 4096;      // NFA instructions
    static constexpr std::size_t fallback_max_input = 8192;

    // Throws pattern_error when the pattern is not valid ECMAScript.
    [[nodiscard]] static compiled_pattern compile(std::string_view source, mode m);

    // A pattern that matches nothing (default-constructed state).
    compiled_pattern() = default;

    [[nodiscard]] bool match(std::string_view input) const noexcept;

    [[nodiscard]] const std::string& source() const noexcept { return source_; }
    [[nodiscard]] bool uses_fallback() const noexcept { return fallback_ != nullptr; }
    [[nodiscard]] std::size_t dfa_states() const noexcept { return states_; }

    // Whether some non-empty string without '/', '+', '#' and NUL matches:
    // a level pattern for which this is false can never accept a topic
    // level. nullopt for fallback patterns (unknown).
    [[nodiscard]] std::optional<bool> can_match_level_name() const;

private:
    std::string source_;
    mode mode_ = mode::full;
    // DFA over byte classes. A state is named by its row offset
    // (state * classes_), so a step is table_[offset + class_of_[byte]]
    // with no multiply on the dependency chain; accept_ and accept_now_ are
    // indexed by that offset too. State 0 (offset 0) is the start; dead_ is
    // the offset of the state with no threads left (no match possible).
    std::uint8_t class_of_[256] = {};
    std::uint16_t classes_ = 1;
    std::vector<std::uint32_t> table_;
    std::vector<std::uint8_t> accept_;      // 1: input may end here
    std::vector<std::uint8_t> accept_now_;  // 1: search mode, matched already
    std::uint32_t dead_ = 0xFFFFFFFF;
    std::size_t states_ = 0;
    std::shared_ptr<const std::regex> fallback_;
};

}  // namespace strata::ns
