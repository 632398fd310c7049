// The delay between reconnection attempts of a bridge link.
//
// Thread-safety: none; one backoff belongs to one link (its strand).
#pragma once

#include <chrono>
#include <cstdint>

namespace strata::bridges::mqtt {

// The backoff of the reconnect loop: the n-th consecutive failure waits a
// uniformly random time in [min, min(max, min * 2^n)] ("full jitter" above
// a floor), so reconnecting bridges do not storm a broker that comes back.
class backoff {
public:
    backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, std::uint64_t seed);
    // The next delay; grows the ceiling for the one after.
    [[nodiscard]] std::chrono::milliseconds next();
    // The largest delay next() can return now.
    [[nodiscard]] std::chrono::milliseconds ceiling() const noexcept;
    void reset() noexcept { failures_ = 0; }

private:
    std::chrono::milliseconds min_, max_;
    unsigned failures_ = 0;
    std::uint64_t state_;
};

}  // namespace strata::bridges::mqtt
