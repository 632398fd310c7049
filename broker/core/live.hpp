// A value that every network thread reads all the time and a reload
// replaces now and then: the namespace model, the config in force.
//
// Readers take no lock and touch no shared reference count: each thread
// keeps its own shared_ptr copy of the value and refreshes it only when the
// generation changed (one relaxed-cost acquire load on the hot path;
// std::atomic<std::shared_ptr> in libstdc++ 12 takes a lock on every load).
// Writers install a new value under a mutex and get the previous one back.
//
// How long what get() returned stays valid: on the calling thread, until
// its next get() of a live<T> whose value changed meanwhile, and for as long
// as anything else holds the value. install() returns the previous value so
// that its owner can keep it alive until every thread that might still use
// it has moved on (the server keeps it until each network thread has run a
// handler posted after the swap: a reference taken within a handler stays
// valid to the handler's end, whatever the reloads do meanwhile).
//
// Thread-safety: every member from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace strata::broker::core {

// A generation no live<> value ever had before (0 is never returned), so
// that a thread's cached copy of one live<> cannot be taken for another's.
[[nodiscard]] std::uint64_t next_live_generation() noexcept;

template <class T>
class live {
public:
    live() = default;
    explicit live(std::shared_ptr<const T> v) { (void)install(std::move(v)); }
    live(const live&) = delete;
    live& operator=(const live&) = delete;

    // The value in force (null: none), as this thread last refreshed it.
    [[nodiscard]] const T* get() const {
        thread_local cache c;
        const std::uint64_t g = generation_.load(std::memory_order_acquire);
        if (c.generation != g) {
            std::lock_guard lock(mutex_);
            c.value = value_;
            c.generation = generation_.load(std::memory_order_relaxed);
        }
        return c.value.get();
    }
    // The value in force, shared (takes the lock: not for the hot path).
    [[nodiscard]] std::shared_ptr<const T> load() const {
        std::lock_guard lock(mutex_);
        return value_;
    }
    // Puts `v` in force; returns the previous value.
    [[nodiscard]] std::shared_ptr<const T> install(std::shared_ptr<const T> v) {
        std::lock_guard lock(mutex_);
        std::swap(value_, v);
        generation_.store(next_live_generation(), std::memory_order_release);
        return v;
    }
    // Changes whenever a value is installed.
    [[nodiscard]] std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

private:
    struct cache {
        std::uint64_t generation = 0;
        std::shared_ptr<const T> value;
    };
    mutable std::mutex mutex_;
    std::shared_ptr<const T> value_;  // guarded by mutex_
    std::atomic<std::uint64_t> generation_{0};
};

}  // namespace strata::broker::core
