// The broker's shared state and the rules that span connections: the
// session registry (takeover, clean start, expiry), wills, the router,
// counters and $SYS. No sockets here; see server.hpp for the I/O runtime.
//
// Thread-safety: every member may be called from any network thread.
#pragma once

#include "auth/access.hpp"
#include "broker/config.hpp"
#include "broker/core/client_services.hpp"
#include "broker/core/handshake_gate.hpp"
#include "broker/core/live.hpp"
#include "broker/core/message.hpp"
#include "broker/core/router.hpp"
#include "broker/core/security.hpp"
#include "broker/core/session.hpp"
#include "broker/core/stats.hpp"
#include "namespace/model.hpp"
#include "persistence/store.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace strata::broker::core {

namespace asio = boost::asio;

// Sees the topic of every message the broker takes (from clients, bridges,
// OPC UA sources, wills): the rate and stale alerts (ops/alerts.hpp).
// Called on any thread; must not block.
class message_observer {
public:
    virtual void taken(std::string_view topic) noexcept = 0;

protected:
    ~message_observer() = default;
};

class broker_core final : public client_services {
public:
    explicit broker_core(config cfg);
    ~broker_core();

    // The config in force. A reload replaces it (reload()): what it returns
    // stays valid as a value from live<> does (live.hpp), and the caller
    // sees the new values from its next call on.
    [[nodiscard]] const config& cfg() const noexcept override { return settings_.get()->cfg; }
    // cfg().broker_id, or its default (host name and persistence path).
    [[nodiscard]] const std::string& broker_id() const noexcept override { return broker_id_; }
    [[nodiscard]] router& routes() noexcept override { return router_; }
    [[nodiscard]] stats& counters() noexcept override { return stats_; }
    [[nodiscard]] const auth::access_policy& access() const noexcept override { return settings_.get()->access; }
    [[nodiscard]] steady_clock::time_point started() const noexcept { return started_; }
    [[nodiscard]] class security& security() noexcept override { return *security_; }

    // Audit: writes one line to audit.file and publishes it on audit.topic
    // (each when configured), unless it is a refusal over its subject's
    // rate (auth/audit.hpp). Never blocks on disk. Any thread.
    [[nodiscard]] bool auditing() const noexcept override { return settings_.get()->auditing; }
    void audit(const auth::audit_event& e) override;
    // The "N more suppressed" lines of the subjects whose refusal lines
    // were over the rate; called once a second (and at shutdown).
    void audit_summaries(steady_clock::time_point now);
    // Refusal lines not written (counted in summaries).
    [[nodiscard]] std::uint64_t audit_suppressed() const;

    // The bound on TLS handshakes in progress (limits.max_handshakes).
    [[nodiscard]] handshake_gate& handshakes() noexcept { return handshakes_; }

    // ---- the namespace model --------------------------------------------
    //
    // The current model, or null when none is configured. The pointer stays
    // valid on the calling thread until its next call to model(): each
    // thread keeps its own shared_ptr copy and refreshes it only when the
    // generation changes, so the publish path takes no lock and touches no
    // shared reference count (std::atomic<std::shared_ptr> in libstdc++ 12
    // takes a lock on every load).
    [[nodiscard]] const ns::model* model() const { return model_.get(); }
    // Changes whenever a model is installed (a reload, or none).
    [[nodiscard]] std::uint64_t model_generation() const noexcept { return model_.generation(); }
    // Whether `topic` is a command: under auth.command_subtrees or in a data
    // class the model marks as commands.
    [[nodiscard]] bool is_command(std::string_view topic) const;
    // Whether anyone but the broker may publish to the (valid) topic name
    // `topic`, whoever they are: not a '$' topic (the broker's own), allowed
    // by the access rules (auth.access), not under the model's dead-letter
    // prefix (what is there the quarantine put there; a publisher could
    // forge it). A client's PUBLISH and will and the broker's publishes on
    // behalf of an identity all ask this before the identity's grants.
    [[nodiscard]] bool open_to_publishers(std::string_view topic) const { return open_to_publishers(topic, model()); }
    // The same under `model`, the model() the caller already holds.
    [[nodiscard]] bool open_to_publishers(std::string_view topic, const ns::model* model) const;
    // Installs a model (null: none) and compiles the roles against it
    // (grants naming levels and classes). Throws config_error, installing
    // nothing, when a grant names a level or class the model lacks or a
    // model check (add_model_check) refuses it. Live
    // sessions get grants under the new model (apply_grants). Any thread.
    void set_model(std::shared_ptr<const ns::model> m);
    // A check a model (null: none) must pass, with the config that goes
    // with it, before set_model or a reload installs it: the classes bridge
    // rules name, what the OPC UA sources publish (hosts/opcua_check.hpp).
    // It throws config_error to refuse the pair. Added before set_model().
    using model_check = std::function<void(const config&, const ns::model*)>;
    void add_model_check(model_check check) { model_checks_.push_back(std::move(check)); }
    // SIGHUP and POST /api/v1/reload, the core's part (the server applies
    // the rest: bridges, OPC UA sources, alerts, TLS files, the log level).
    // `next` is the config file read again, its keys that need a restart
    // set back to the values in force (config_diff.hpp). Loads the model
    // from next's namespace.model, compiles next's roles and users against
    // it, opens next's audit file; when any of this does not fit (roles
    // naming what the model lacks, a model check, an audit file that does
    // not open) it throws config_error and nothing has changed. A model
    // file that does not load (or that a model check refuses) is logged,
    // named in `failed`, and the old model stays, as does a password file
    // that does not load. Then it puts everything in force: the model (its
    // counters kept; the retained messages re-checked, recheck_retained),
    // the roles (every session gets its grants again, apply_grants), the
    // config (cfg(): the access rules, the limits read per connection or
    // per message, the audit settings), the bounds kept elsewhere
    // (handshakes, retained, queue limits of the client sessions, the
    // identities' rates) and the password file. Any thread; one reload at
    // a time.
    void reload(std::shared_ptr<const config> next, std::vector<std::string>& failed);
    // What a reload replaced (a config, a model) and a thread may still be
    // reading: handed to `r`, which keeps it until no thread can (the
    // server: until every network thread ran a handler posted after the
    // swap). Default: released at once. Set once before serving.
    void set_retire(std::function<void(std::shared_ptr<const void>)> r) { retire_ = std::move(r); }
    // Gives every session (live or offline) and its owner the grants of
    // its identity under the roles in force: a subscription the new grants
    // refuse is removed (audited "subscribe revoked"), one they narrow is
    // filtered per message from now on. Returns how many subscriptions
    // were revoked.
    std::size_t apply_grants();
    // Applies `m` to every stored retained message (not '$' topics): what it
    // refuses is removed (reject), moved to the dead-letter tree
    // (quarantine) or kept (warn), and counted; one log line "namespace
    // model <when>: ..." sums it up. After a reload and after recovery at
    // start-up ("start-up": no line when there was nothing to check). See
    // model_enforcement.cpp.
    void recheck_retained(const ns::model& m, std::string_view when);

    // Who opens a session and what came of it (client_services.hpp).
    using other_identity = core::other_identity;
    using claimant = core::claimant;
    using open_result = core::open_result;
    // Finds or creates the session of `client_id` and attaches `c` to it,
    // applying clean start and takeover rules (including the previous
    // connection's will). The caller kicks `previous`. With a `who`, the
    // identity check and the session's new identity and grants are applied
    // under the registry lock, so two identities connecting at once with
    // one client id cannot both pass.
    open_result open_session(const std::string& client_id, bool clean_start,
                             const std::shared_ptr<session_owner>& c, const claimant* who = nullptr) override;

    // The connection that owned `s` is gone. Publishes the will now or
    // after its delay, ends the session now (expiry 0) or arms its expiry.
    void connection_lost(const session_ptr& s, std::uint64_t generation,
                         asio::io_context::executor_type ex) override;

    // The admission pipeline under this core (admission.hpp).
    [[nodiscard]] admission admit(const publisher& who, const message_ptr& m) override;
    [[nodiscard]] admission admit_will(const publisher& who, message_ptr& m) override;

    struct publish_result {
        std::size_t delivered = 0;       // sessions it was queued for
        std::size_t matched = 0;         // sessions a subscription matched (queued, dropped or refused there)
        std::size_t refused = 0;         // full queues that refused it (a bridge buffer under `block`)
        persistence::ticket ticket = 0;  // the store operations it caused (0: none)
        bool admitted = true;            // false: refused by the model (see router::publish)
        // Not `stored`: a retained message the retained limits refused (not
        // delivered either; counted).
        retain_verdict retained = retain_verdict::stored;
    };
    // Routes a message, keeps it when retained, and submits to the store
    // what must survive a restart: the retained value (not '$' topics) and
    // the QoS 1/2 deliveries to persistent sessions. An acknowledgement to
    // the publisher waits for `ticket`. With a `model`, the message is
    // checked while it is routed (verdict in `*verdict`) and goes nowhere
    // unless the verdict admits it. Counts it for the alerts when admitted.
    // `identity`: the client identity whose retained share it counts
    // against (null: the broker's own; see router::publish).
    // `gate`: the publisher's flow gate (flow_gate.hpp; null: the broker's
    // own messages).
    publish_result publish(const message_ptr& m, const ns::model* model = nullptr, ns::verdict* verdict = nullptr,
                           const std::string* identity = nullptr, flow_gate* gate = nullptr);
    // ---- slow consumers (flow_gate.hpp) -----------------------------------
    //
    // A session that started holding publishers (session::hold_locked).
    void watch_slow_consumer(std::weak_ptr<session> s);
    // Applies limits.slow_consumer to the sessions watched (from a timer):
    // one that held publishers for after_ms is disconnected or drops.
    void check_slow_consumers(steady_clock::time_point now);
    // What the slow-consumer policy did lately (the alerts' `slow_consumer`):
    // the latest action per client id at or after `since`, of the last
    // max_slow_events actions.
    struct slow_consumer_event {
        std::string client_id;
        bool disconnected = false;  // else: dropping
        std::size_t queued = 0;     // messages in its queue then
        steady_clock::time_point at{};
    };
    static constexpr std::size_t max_slow_events = 256;
    [[nodiscard]] std::vector<slow_consumer_event> slow_consumers_since(steady_clock::time_point since) const;
    // The broker's own state: `value` retained on the '$SYS/...' `topic`
    // (no checks; '$SYS' values are not stored, they are made afresh).
    void publish_sys_value(std::string topic, std::string value);
    // A reason string for a retained message the limits refused.
    [[nodiscard]] static const char* retained_refusal_reason(retain_verdict v) noexcept;

    // ---- persistence -----------------------------------------------------
    //
    // The store (null: nothing is stored). Set once before any connection;
    // the caller owns it and closes it after the network stopped.
    void use_store(persistence::store* s) noexcept { store_ = s; }
    [[nodiscard]] persistence::store* store() const noexcept override { return store_; }
    // Whether new QoS 1/2 publishes can be made durable now (false while the
    // disk refuses writes, e.g. full).
    [[nodiscard]] bool store_healthy() const noexcept override { return store_ == nullptr || store_->healthy(); }

    // Writes (or, when it no longer has a session expiry, erases) the
    // stored record of `s`. Called on connect, on disconnect and when its
    // delayed will was published.
    void save_session(const session_ptr& s) override;

    struct recovery_counts {
        persistence::store_counts loaded, purged;
        std::size_t wills_published = 0;  // of sessions that expired while the broker was down
    };
    // Start-up: reads the store back (retained messages into the retained
    // tree, persistent sessions offline with their subscriptions, queues,
    // QoS 2 state and pending wills) and arms their expiry and will-delay
    // timers on `ex`. Before any listener accepts. Throws
    // persistence::store_error on a corrupt store.
    recovery_counts recover(asio::io_context::executor_type ex);

    // Removes the retained message of m->topic from memory and the store
    // if it is still `m` (not replaced meanwhile); returns whether it did.
    bool erase_retained(const message_ptr& m);

    // Housekeeping, every few seconds: retained messages whose Message
    // Expiry passed leave memory and the store. Returns how many.
    std::size_t purge_expired();


    // Registry of live connections (for shutdown and counts).
    void add_connection(const std::shared_ptr<session_owner>& c);
    void remove_connection(const session_owner* c);
    // Kicks every connection with `code`; returns how many there were.
    std::size_t kick_all(mqtt::reason_code code);
    [[nodiscard]] std::size_t connection_count() const;

    // Publishes the $SYS/broker/... topics (retained).
    void publish_sys();

    // A fresh client identifier for a client that sent an empty one.
    [[nodiscard]] std::string assign_client_id() override;

    [[nodiscard]] std::size_t session_count() const;
    // Messages waiting in every session's queue (for the metrics).
    [[nodiscard]] std::size_t queued_messages() const;
    // The sessions that dropped messages ($SYS, metrics): how many, and the
    // `top` with the most drops (client id, dropped), most first.
    struct drop_summary {
        std::size_t sessions = 0;
        std::vector<std::pair<std::string, std::uint64_t>> top;
        std::size_t replay_pending = 0;  // retained messages pending in replays, every session
        // The `top` sessions with the most messages queued (none queued: not listed).
        std::vector<std::pair<std::string, std::uint64_t>> most_queued;
    };
    [[nodiscard]] drop_summary session_drops(std::size_t top) const;
    // Every session (online and offline), for the admin API and metrics.
    [[nodiscard]] std::vector<session_ptr> all_sessions() const;

    // ---- readiness (GET /readyz) ------------------------------------------
    // Ready once the listeners are up, unless something holds readiness
    // back: recovery from disk sets `recovering` while it runs. Any thread.
    void set_listening(bool up) noexcept { listening_.store(up, std::memory_order_release); }
    void set_recovering(bool busy) noexcept { recovering_.store(busy, std::memory_order_release); }
    [[nodiscard]] bool ready() const noexcept {
        return listening_.load(std::memory_order_acquire) && !recovering_.load(std::memory_order_acquire);
    }

    // At exit, before the io_contexts are destroyed: drops every timer and
    // connection reference the sessions hold. The sessions stay.
    void release_io();

    // The observer of taken messages; null: none. It stays valid until
    // replaced (its owner clears it before it goes away).
    void observe(message_observer* o) noexcept { observer_.store(o, std::memory_order_release); }

private:
    // One audit line to the file and the topic.
    void write_audit(std::string line);
    [[nodiscard]] queue_limits client_queue_limits() const noexcept {
        queue_limits l;
        l.max_messages = cfg().limits.max_queued_messages;
        l.max_bytes = cfg().limits.max_queued_bytes;
        l.hold_publishers = true;
        return l;
    }
    // The config in force and what is made of it once per reload.
    struct settings {
        config cfg;
        auth::access_policy access;  // cfg.access
        bool auditing = false;       // an audit file or topic is configured
    };
    [[nodiscard]] static std::shared_ptr<const settings> make_settings(config cfg);
    // The bounds kept outside the config (handshakes, retained, queues,
    // audit refusal lines) set from cfg().
    void apply_bounds();
    void retire(std::shared_ptr<const void> old) const {
        if (retire_ && old) retire_(std::move(old));
    }
    void end_session_locked(const session_ptr& s);
    void publish_will(const message_ptr& will);
    void arm_timer(const session_ptr& s, std::uint64_t generation, asio::io_context::executor_type ex,
                   std::chrono::seconds will_delay, bool will_pending, std::uint32_t expiry);

    live<settings> settings_;
    std::string broker_id_;
    router router_;
    stats stats_;
    std::unique_ptr<class security> security_;
    auth::audit_limiter audit_limiter_;  // audit.refusals_per_second (0: unlimited)
    std::function<void(std::shared_ptr<const void>)> retire_;
    handshake_gate handshakes_;
    steady_clock::time_point started_ = steady_clock::now();

    mutable std::mutex registry_mutex_;
    std::unordered_map<std::string, session_ptr> sessions_;

    mutable std::mutex connections_mutex_;
    std::unordered_map<const session_owner*, std::weak_ptr<session_owner>> connections_;

    // Sessions holding publishers (watch_slow_consumer); few at a time.
    mutable std::mutex slow_mutex_;
    std::vector<std::weak_ptr<session>> slow_watch_;
    std::deque<slow_consumer_event> slow_events_;  // oldest first

    std::atomic<std::uint64_t> next_assigned_id_{0};
    std::atomic<bool> listening_{false};
    std::atomic<message_observer*> observer_{nullptr};
    std::atomic<bool> recovering_{false};

    persistence::store* store_ = nullptr;

    std::vector<model_check> model_checks_;
    live<ns::model> model_;
};

}  // namespace strata::broker::core
