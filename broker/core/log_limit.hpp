// Logging of events that can repeat per message (a device publishing the
// same wrong thing at 100 Hz, a remote refusing every forwarded message):
// at most one line a second at the level the caller chooses, the rest at
// debug, counted in the next line that is logged at that level.
//
// Thread-safety: none; keep one per thread (thread_local) or per strand.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace strata::broker::core {

class log_limit {
public:
    // True when this event may be logged at the caller's level (then
    // suffix() tells how many were not since the previous one).
    bool allow() noexcept {
        const auto now = std::chrono::steady_clock::now();
        if (now < next_) {
            ++suppressed_;
            return false;
        }
        next_ = now + std::chrono::seconds(1);
        reported_ = suppressed_;
        suppressed_ = 0;
        return true;
    }

    // "" or " (N more not logged at this level)".
    [[nodiscard]] std::string suffix() const {
        return reported_ == 0 ? std::string() : " (" + std::to_string(reported_) + " more not logged at this level)";
    }

private:
    std::chrono::steady_clock::time_point next_{};
    std::uint64_t suppressed_ = 0;
    std::uint64_t reported_ = 0;
};

}  // namespace strata::broker::core
