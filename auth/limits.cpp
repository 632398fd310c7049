#include "auth/limits.hpp"

#include <algorithm>

namespace strata::auth {

namespace {
// Addresses with no failure for this long are forgotten.
constexpr auto forget_after = std::chrono::minutes(15);
constexpr std::size_t prune_above = 10'000;
}  // namespace

identity_state::identity_state(identity_registry& owner, std::string identity, const identity_limits& limits)
    : owner_(owner),
      identity_(std::move(identity)),
      limits_(limits),
      rated_(limits.any_rate()),
      messages_(limits.publish_rate),
      bytes_(static_cast<double>(limits.publish_bytes_rate)),
      last_(steady_clock::now()) {}

identity_state::~identity_state() = default;

void identity_state::set_limits(const identity_limits& limits) {
    std::lock_guard lock(mutex_);
    limits_ = limits;
    messages_ = std::min<double>(messages_, limits.publish_rate);
    bytes_ = std::min<double>(bytes_, static_cast<double>(limits.publish_bytes_rate));
    rated_.store(limits.any_rate(), std::memory_order_relaxed);
}

rate_verdict identity_state::admit(std::size_t bytes, steady_clock::time_point now) {
    if (!rated()) return rate_verdict::ok;
    std::lock_guard lock(mutex_);
    const double dt = std::chrono::duration<double>(now - last_).count();
    last_ = std::max(last_, now);
    if (dt > 0) {
        messages_ = std::min<double>(limits_.publish_rate, messages_ + dt * limits_.publish_rate);
        bytes_ = std::min<double>(static_cast<double>(limits_.publish_bytes_rate),
                                  bytes_ + dt * static_cast<double>(limits_.publish_bytes_rate));
    }
    if (limits_.publish_rate != 0 && messages_ < 1.0) return rate_verdict::too_many_messages;
    if (limits_.publish_bytes_rate != 0 && bytes_ < static_cast<double>(bytes)) return rate_verdict::too_many_bytes;
    if (limits_.publish_rate != 0) messages_ -= 1.0;
    if (limits_.publish_bytes_rate != 0) bytes_ -= static_cast<double>(bytes);
    return rate_verdict::ok;
}

std::shared_ptr<identity_state> identity_registry::acquire(std::string_view identity) {
    const std::string key(identity.empty() ? "anonymous" : identity);
    std::lock_guard lock(mutex_);
    auto& slot = identities_[key];
    std::shared_ptr<identity_state> shared = slot.lock();
    if (!shared) {
        shared = std::make_shared<identity_state>(*this, key, limits_);
        slot = shared;
    }
    if (limits_.connections != 0 && shared->connections_ >= limits_.connections) return nullptr;
    ++shared->connections_;
    // Each connection gets its own handle; releasing it uncounts the
    // connection, and the state lives while any handle does.
    return std::shared_ptr<identity_state>(shared.get(), [this, shared](identity_state* s) mutable {
        release(s);
        shared.reset();
    });
}

identity_limits identity_registry::limits() const {
    std::lock_guard lock(mutex_);
    return limits_;
}

void identity_registry::set_limits(const identity_limits& limits) {
    std::lock_guard lock(mutex_);
    limits_ = limits;
    for (const auto& [name, weak] : identities_)
        if (const auto s = weak.lock()) s->set_limits(limits);
}

void identity_registry::release(identity_state* s) {
    std::lock_guard lock(mutex_);
    if (s->connections_ > 0) --s->connections_;
    if (s->connections_ == 0) identities_.erase(s->identity_);
}

std::chrono::milliseconds login_guard::blocked_for(std::string_view address, steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    const auto it = by_address_.find(std::string(address));
    if (it == by_address_.end() || it->second.blocked_until <= now) return std::chrono::milliseconds(0);
    ++refused_;
    return std::chrono::ceil<std::chrono::milliseconds>(it->second.blocked_until - now);
}

bool login_guard::is_blocked(std::string_view address, steady_clock::time_point now) const {
    std::lock_guard lock(mutex_);
    const auto it = by_address_.find(std::string(address));
    return it != by_address_.end() && it->second.blocked_until > now;
}

void login_guard::failed(std::string_view address, steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    ++failures_;
    if (by_address_.size() > prune_above) prune_locked(now);
    auto& e = by_address_[std::string(address)];
    ++e.failures;
    e.last_failure = now;
    // The failure that uses up the free attempts blocks the address at
    // once: with free_attempts 3, three passwords are checked and the
    // fourth attempt is refused without one. (0 behaves as 1: the first
    // attempt is always checked.)
    const std::uint32_t free = std::max<std::uint32_t>(cfg_.free_attempts, 1);
    if (e.failures >= free) {
        const std::uint32_t doublings = std::min<std::uint32_t>(e.failures - free, 30);
        const std::uint64_t ms = std::min<std::uint64_t>(std::uint64_t{cfg_.initial_ms} << doublings, cfg_.max_ms);
        e.blocked_until = now + std::chrono::milliseconds(ms);
    }
}

void login_guard::set_config(backoff_config cfg) {
    std::lock_guard lock(mutex_);
    cfg_ = cfg;
}

void login_guard::succeeded(std::string_view address) {
    std::lock_guard lock(mutex_);
    by_address_.erase(std::string(address));
}

std::uint64_t login_guard::failures() const noexcept {
    std::lock_guard lock(mutex_);
    return failures_;
}

std::uint64_t login_guard::refused() const noexcept {
    std::lock_guard lock(mutex_);
    return refused_;
}

std::size_t login_guard::blocked_addresses(steady_clock::time_point now) const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(std::count_if(by_address_.begin(), by_address_.end(),
                                                  [&](const auto& kv) { return kv.second.blocked_until > now; }));
}

void login_guard::prune_locked(steady_clock::time_point now) {
    std::erase_if(by_address_, [&](const auto& kv) {
        return kv.second.blocked_until <= now && now - kv.second.last_failure > forget_after;
    });
}

}  // namespace strata::auth
