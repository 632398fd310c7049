// strata-bench: a log-linear latency histogram (HDR-style, no allocation on
// record). Values are nanoseconds; below 128 ns they are exact, above that
// each power of two is split into 64 buckets, so a reported percentile is
// within 1/64 (1.6 %) of the true value. Recording is a count-leading-zeros,
// two shifts and an increment.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace strata::bench {

class histogram {
public:
    static constexpr int sub_bits = 6;                      // 64 buckets per octave
    static constexpr int linear = 2 << sub_bits;             // 128 exact values
    static constexpr int buckets = (64 - sub_bits) * (1 << sub_bits) + linear;

    void record(std::uint64_t v) noexcept {
        ++counts_[index(v)];
        ++total_;
        if (v > max_) max_ = v;
        sum_ += v;
    }

    [[nodiscard]] std::uint64_t count() const noexcept { return total_; }
    [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
    [[nodiscard]] double mean() const noexcept { return total_ ? static_cast<double>(sum_) / total_ : 0.0; }

    // The value at quantile q (0..1): the midpoint of the bucket holding it.
    [[nodiscard]] std::uint64_t quantile(double q) const noexcept {
        if (total_ == 0) return 0;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
        if (rank >= total_) rank = total_ - 1;
        std::uint64_t seen = 0;
        for (int i = 0; i < buckets; ++i) {
            seen += counts_[i];
            if (seen > rank) {
                const std::uint64_t lo = lower(i);
                const std::uint64_t hi = lower(i + 1);
                const std::uint64_t mid = lo + (hi - lo) / 2;
                return mid > max_ ? max_ : mid;
            }
        }
        return max_;
    }

private:
    static int index(std::uint64_t v) noexcept {
        if (v < static_cast<std::uint64_t>(linear)) return static_cast<int>(v);
        const int e = 63 - std::countl_zero(v);  // >= 7
        const int shift = e - sub_bits;
        return shift * (1 << sub_bits) + static_cast<int>(v >> shift);
    }
    static std::uint64_t lower(int i) noexcept {
        if (i < linear) return static_cast<std::uint64_t>(i);
        const int shift = i / (1 << sub_bits) - 1;
        const std::uint64_t mant = static_cast<std::uint64_t>(i % (1 << sub_bits) + (1 << sub_bits));
        return mant << shift;
    }

    std::array<std::uint64_t, buckets> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t sum_ = 0;
};

}  // namespace strata::bench
