// Exponential backoff with full jitter above a floor.
#include "bridges/mqtt/backoff.hpp"

#include <algorithm>

namespace strata::bridges::mqtt {

backoff::backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, std::uint64_t seed)
    : min_(min), max_(std::max(min, max)), state_(seed | 1) {}

std::chrono::milliseconds backoff::ceiling() const noexcept {
    // min * 2^failures without overflow: stop doubling once max is reached.
    std::chrono::milliseconds c = min_;
    for (unsigned i = 0; i < failures_ && c < max_; ++i) c = std::max(c * 2, std::chrono::milliseconds{1});
    return std::min(c, max_);
}

std::chrono::milliseconds backoff::next() {
    const auto lo = static_cast<std::uint64_t>(min_.count());
    const auto hi = static_cast<std::uint64_t>(ceiling().count());
    if (failures_ < 64) ++failures_;
    // xorshift64*: jitter needs no cryptographic quality, only a spread.
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    const std::uint64_t r = state_ * 0x2545F4914F6CDD1DULL;
    return std::chrono::milliseconds{static_cast<std::int64_t>(lo + r % (hi - lo + 1))};
}

}  // namespace strata::bridges::mqtt
