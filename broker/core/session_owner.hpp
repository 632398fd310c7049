// What a session delivers to while it is attached: a client's network
// connection, or a bridge's link to a remote broker (the bridge's outbox is
// a session of its own). The session calls these with its mutex held: they
// must only post work, never call back into the session.
#pragma once

#include "broker/codec/packet.hpp"

#include <cstdint>
#include <memory>

namespace strata::auth {
class grants;
}

namespace strata::broker::core {

class session_owner {
public:
    // Any thread: the session has something to send.
    virtual void notify() = 0;
    // Any thread: close with `code` unless `generation` says the owner was
    // already replaced (0: unconditionally). A bridge reconnects its link.
    virtual void kick(mqtt::reason_code code, std::uint64_t generation = 0) = 0;
    // Any thread: the roles or the model were reloaded; what the owner
    // publishes from now on is checked against `g` (null: no roles).
    virtual void regrant(std::shared_ptr<const auth::grants> g) = 0;
    // Whether the client asked for its subscriptions wider than its grants
    // to be filtered rather than refused (the CONNECT user property
    // strata-wide-subscriptions: filter); fixed once connected.
    [[nodiscard]] virtual bool filters_wide_subscriptions() const noexcept { return false; }

protected:
    ~session_owner() = default;
};

}  // namespace strata::broker::core
