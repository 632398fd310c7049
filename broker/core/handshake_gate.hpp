// The bound on TLS handshakes in progress (limits.max_handshakes), shared
// by the mqtt+tls and https listeners (transport.hpp, tls_start).
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace strata::broker::core {

namespace asio = boost::asio;

// The bound on TLS handshakes in progress (limits.max_handshakes): slots
// taken when a connection's TLS stream is made, given back when its
// handshake ends (done, failed or closed). A connection that finds every
// slot taken waits in line; a slot given back goes to the first in line.
class handshake_gate {
public:
    // Called with true once the slot is the waiter's, or with false when
    // its wait was cancelled; posted to the waiter's executor.
    using waiter = std::function<void(bool granted)>;
    using ticket = std::uint64_t;

    explicit handshake_gate(std::size_t max) : max_(max) {}

    // Takes a slot now (returns 0; `w` is not called), or queues `w` until
    // one is free (returns the ticket to cancel() the wait with).
    [[nodiscard]] ticket acquire(const asio::any_io_executor& ex, waiter w);
    // Ends a wait: posts w(false) unless the slot was already given to it.
    void cancel(ticket t);
    // Gives a slot back.
    void release();
    // Drops every waiter uncalled (shutdown, once the network threads stopped).
    void clear();

    [[nodiscard]] std::size_t in_progress() const;
    [[nodiscard]] std::size_t waiting() const;
    [[nodiscard]] std::size_t limit() const;
    // A new bound (a reload): raised, it gives slots to the first in line
    // at once; lowered, handshakes in progress go on and no slot is given
    // until fewer than `max` are.
    void set_limit(std::size_t max);

private:
    struct queued {
        asio::any_io_executor ex;
        waiter w;
    };
    std::size_t max_;  // guarded by mutex_
    mutable std::mutex mutex_;
    std::size_t in_progress_ = 0;
    ticket next_ = 1;
    std::map<ticket, queued> waiting_;  // in order of arrival
};

}  // namespace strata::broker::core
