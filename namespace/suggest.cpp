#include "namespace/suggest.hpp"

#include <algorithm>

namespace strata::ns {

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0u : 1u)});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string_view closest(std::string_view name, const std::vector<std::string_view>& candidates) {
    std::string_view best;
    // Suggest only close matches: one edit for short names, more for long ones.
    std::size_t best_distance = name.size() <= 4 ? 1 : name.size() <= 8 ? 2 : 3;
    for (std::string_view c : candidates) {
        const std::size_t d = edit_distance(name, c);
        if (d <= best_distance && (best.empty() || d < edit_distance(name, best))) {
            best_distance = d;
            best = c;
        }
    }
    return best;
}

std::string did_you_mean(std::string_view name, const std::vector<std::string_view>& candidates) {
    const std::string_view best = closest(name, candidates);
    if (best.empty()) return {};
    return " (did you mean '" + std::string(best) + "'?)";
}

}  // namespace strata::ns
