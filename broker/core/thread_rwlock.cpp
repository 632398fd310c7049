#include "broker/core/thread_rwlock.hpp"

namespace strata::broker::core {

namespace {
thread_local std::size_t slot_index = thread_rwlock::slots - 1;
}

void thread_rwlock::bind_thread(std::size_t index) noexcept {
    slot_index = index < slots ? index : slots - 1;
}

std::size_t thread_rwlock::slot() noexcept { return slot_index; }

}  // namespace strata::broker::core
