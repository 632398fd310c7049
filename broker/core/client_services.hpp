// What a client's protocol (net/client_protocol.hpp) may ask of the core,
// and nothing else: the limits and settings, the counters, the security
// state, the store's health and tickets, its session (open, save, lost),
// its subscriptions (the router) and the admission of what it publishes.
// broker_core implements it; the protocol never sees the rest of the core
// (recovery, reloads, $SYS, the connection registry, housekeeping).
//
// Thread-safety: as broker_core's members (any network thread).
#pragma once

#include "broker/config.hpp"
#include "broker/core/message.hpp"
#include "broker/core/session.hpp"
#include "broker/core/session_owner.hpp"

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace strata::auth {
class access_policy;
class grants;
struct audit_event;
}  // namespace strata::auth

namespace strata::persistence {
class store;
}

namespace strata::broker::core {

class router;
class security;
class stats;
struct admission;
struct publisher;

// What happens to a session that belongs to another identity than the
// one opening it (auth.takeover).
enum class other_identity : std::uint8_t {
    refuse,       // not opened; the session, its connection and its queue are untouched
    start_clean,  // taken over and started clean (its state was the other identity's)
    resume,       // taken over with its state (no roles: nothing to keep apart)
};
// Who opens a session (client connections; bridges and OPC UA sources
// open theirs without one).
struct claimant {
    std::string identity;                          // empty: anonymous
    std::shared_ptr<const auth::grants> grants;    // null: no roles configured
    other_identity on_other = other_identity::refuse;
};
struct open_result {
    session_ptr s;                              // null when refused
    bool refused = false;                       // the session belongs to another identity
    bool present = false;                       // Session Present in CONNACK
    std::shared_ptr<session_owner> previous;    // a connection to close with 0x8E
    std::uint64_t previous_generation = 0;
    std::uint64_t generation = 0;               // of the new attachment
};

class client_services {
public:
    [[nodiscard]] virtual const config& cfg() const noexcept = 0;
    // cfg().broker_id, or its default (host name and persistence path).
    [[nodiscard]] virtual const std::string& broker_id() const noexcept = 0;
    [[nodiscard]] virtual stats& counters() noexcept = 0;
    [[nodiscard]] virtual class security& security() noexcept = 0;
    [[nodiscard]] virtual const auth::access_policy& access() const noexcept = 0;
    // The subscriptions (and the retained messages a new one receives).
    [[nodiscard]] virtual router& routes() noexcept = 0;

    // The store (null: nothing is stored): the tickets acknowledgements
    // wait for. store_healthy(): whether QoS 1/2 can be made durable now.
    [[nodiscard]] virtual persistence::store* store() const noexcept = 0;
    [[nodiscard]] virtual bool store_healthy() const noexcept = 0;

    [[nodiscard]] virtual bool auditing() const noexcept = 0;
    virtual void audit(const auth::audit_event& e) = 0;

    // An identifier for a client that sent none.
    [[nodiscard]] virtual std::string assign_client_id() = 0;
    // Finds or creates the session of `client_id` and attaches `c` to it,
    // applying clean start and takeover rules (broker_core::open_session).
    virtual open_result open_session(const std::string& client_id, bool clean_start,
                                     const std::shared_ptr<session_owner>& c, const claimant* who = nullptr) = 0;
    // Writes the stored record of `s` (or erases it when it has no expiry).
    virtual void save_session(const session_ptr& s) = 0;
    // The connection that owned `s` is gone: its will, its expiry.
    virtual void connection_lost(const session_ptr& s, std::uint64_t generation,
                                 boost::asio::io_context::executor_type ex) = 0;

    // The admission pipeline (admission.hpp) for what the client publishes
    // and for its will.
    [[nodiscard]] virtual admission admit(const publisher& who, const message_ptr& m) = 0;
    [[nodiscard]] virtual admission admit_will(const publisher& who, message_ptr& m) = 0;

protected:
    ~client_services() = default;
};

}  // namespace strata::broker::core
