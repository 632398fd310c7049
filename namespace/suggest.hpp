// "Did you mean ...?" for names read from configuration and model files and
// topics checked against the model: the closest known name, if it is close.
//
// Thread-safety: plain functions of their arguments.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace strata::ns {

// Levenshtein distance (insertions, deletions, substitutions).
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `name` within one edit for names of up to 4
// characters, two up to 8, three beyond; the first of equally close ones;
// empty when none is that close.
[[nodiscard]] std::string_view closest(std::string_view name, const std::vector<std::string_view>& candidates);

// " (did you mean 'X'?)" for closest(name, candidates), or "".
[[nodiscard]] std::string did_you_mean(std::string_view name, const std::vector<std::string_view>& candidates);

}  // namespace strata::ns
