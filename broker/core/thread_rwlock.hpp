// A reader-writer lock with one mutex per network thread ("big-reader
// lock"): a reader locks only its own thread's mutex, which no other reader
// touches, so matching a publish shares no lock and no cache line with the
// other threads; a writer (subscribe, unsubscribe) locks every thread's
// mutex in order. Reads are the hot path, writes are rare.
//
// Thread-safety: lock_shared()/unlock_shared() from any thread; a thread
// must not nest shared locks of the same lock. Threads beyond the slot
// count share the last slot.
#pragma once

#include <array>
#include <cstddef>
#include <mutex>

namespace strata::broker::core {

class thread_rwlock {
public:
    static constexpr std::size_t slots = 64;

    // The calling thread's slot index (network thread i uses slot i).
    static void bind_thread(std::size_t index) noexcept;

    void lock_shared() { slots_[slot()].m.lock(); }
    void unlock_shared() { slots_[slot()].m.unlock(); }
    void lock() {
        for (auto& s : slots_) s.m.lock();
    }
    void unlock() {
        for (auto& s : slots_) s.m.unlock();
    }

private:
    struct alignas(64) padded {
        std::mutex m;
    };
    static std::size_t slot() noexcept;
    std::array<padded, slots> slots_{};
};

}  // namespace strata::broker::core
