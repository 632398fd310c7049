// Back-pressure from subscribers to publishers (docs/operations.md "Slow
// consumers").
//
// A client that publishes has one flow gate. When a QoS 1/2 message for an
// online subscriber does not fit that subscriber's queue, the message is
// queued all the same and the subscriber's session holds the publisher's
// gate (session::deliver). While its gate is held, the publisher's input is
// not read: the rest of what it sent waits in its buffer and in TCP, its
// acknowledgements for what was queued still go out. When every session
// holding it has drained to its resume mark (or was disconnected, or
// dropped under the slow-consumer policy), the gate opens and the publisher
// reads on.
//
// Each session holds a gate at most once, so a session's queue exceeds its
// limit by at most one message per publisher feeding it.
//
// Thread-safety: hold() and release() from any thread (sessions call them
// under their own mutex); `opened` is called by the release that opens the
// gate, on that thread, and must only post work (to the publisher's thread).
// held() is the publisher's check after routing a message; an `opened`
// posted meanwhile is harmless (the publisher checks held() again).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <utility>

namespace strata::broker::core {

class flow_gate : public std::enable_shared_from_this<flow_gate> {
public:
    explicit flow_gate(std::function<void()> opened) : opened_(std::move(opened)) {}

    void hold() noexcept { holds_.fetch_add(1, std::memory_order_acq_rel); }
    void release() {
        if (holds_.fetch_sub(1, std::memory_order_acq_rel) == 1) opened_();
    }
    [[nodiscard]] bool held() const noexcept { return holds_.load(std::memory_order_acquire) > 0; }

private:
    std::atomic<int> holds_{0};
    std::function<void()> opened_;
};

}  // namespace strata::broker::core
