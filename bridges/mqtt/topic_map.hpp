// A bridge rule's topic mapping between the two brokers: "acme/dresden/#"
// here is "plants/acme/dresden/#" there. Both filters end in the same
// wildcard levels; the literal levels before the first wildcard are the
// prefix that is swapped. Identical filters map a topic to itself.
//
// Thread-safety: immutable after construction; any thread.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace strata::bridges::mqtt {

class topic_map {
public:
    // Throws std::invalid_argument saying what is wrong: a filter that is
    // not a valid topic filter, a shared subscription, or tails that differ
    // ("acme/+/#" cannot map to "plants/#").
    topic_map(std::string from, std::string to);

    // Whether `topic` (a valid topic name) matches the `from` filter.
    [[nodiscard]] bool matches(std::string_view topic) const noexcept;
    // `topic` (matching `from`) as the other side names it.
    [[nodiscard]] std::string map(std::string_view topic) const;

    [[nodiscard]] const std::string& from() const noexcept { return from_; }
    [[nodiscard]] const std::string& to() const noexcept { return to_; }

private:
    std::string from_, to_;
    std::string from_prefix_, to_prefix_;  // the literal levels, each ending in '/' (or empty)
};

}  // namespace strata::bridges::mqtt
