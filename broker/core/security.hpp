// The broker's security state, built once from the config: the roles
// policy, the password file, per-identity limits, the failed-login guard,
// the audit log, and the worker threads that run the slow password hashes
// so that no network thread waits on them.
//
// Password checks (MQTT CONNECT and HTTP Basic alike) queue per source
// address (auth/fair_queue.hpp): an address with
// auth.password_checks.per_address checks queued or running is refused at
// once, and the workers (auth.password_checks.threads) serve the addresses
// in turn, so a flood of wrong passwords from one address costs the others
// at most one hash per round. A check whose address got blocked by the
// failed-login back-off while it waited is answered `blocked` without
// hashing.
//
// A password that verified once is remembered as HMAC-SHA-256 under a
// random per-process key (one entry per user of the file, replaced when
// the user logs in with another password), so that a reconnect storm after
// a restart costs one slow hash per user, not one per connection. The
// remembered MAC is compared in constant time before anything is queued:
// only the same password matches it, and a different one (right or wrong)
// takes the queue and the full hash. Failed attempts are never remembered.
//
// A reload (broker_core::reload) compiles the new roles and users
// (compile()) and opens a new audit file (open_audit()) first, and puts
// them in force with the rest of `auth:` (reconfigure(), set_policy())
// once nothing can refuse the new config; then it reloads the password
// file (reload_passwords()): one that does not load is logged and the old
// one stays. Grants that name model levels or classes are compiled against
// the model at start and whenever the model is reloaded.
// auth.command_subtrees and auth.password_checks are read at start-up only.
//
// Thread-safety: every member may be called from any thread (the pieces
// are immutable or synchronise themselves). stop() before the io_contexts
// are destroyed: it joins the workers, whose completions post to them, and
// drops the checks still queued.
#pragma once

#include "auth/audit.hpp"
#include "auth/fair_queue.hpp"
#include "auth/limits.hpp"
#include "auth/password_file.hpp"
#include "auth/policy.hpp"
#include "broker/config.hpp"
#include "namespace/model.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace strata::broker::core {

class security {
public:
    // Loads the password file and opens the audit log; throws config_error
    // naming the file (and line) when one is unusable.
    explicit security(const config& cfg);
    ~security();

    // The roles in force; compile() grants from it. Replaced by reloads:
    // hold the pointer only as long as the call that uses it.
    [[nodiscard]] std::shared_ptr<const auth::policy> policy() const;
    [[nodiscard]] bool roles_active() const;
    // auth.command_subtrees (from start-up; no lock).
    [[nodiscard]] bool is_command_subtree(std::string_view topic) const noexcept;
    // Compiles `roles` (null: the roles in force; from a reloaded config:
    // its roles and users) against `model` (null: none) and makes the
    // result the policy in force. Throws config_error, naming the grant,
    // when a grant names a level or class the model lacks; then nothing
    // changes.
    void bind(const auth::policy_config* roles, std::shared_ptr<const ns::model> model);
    // `roles` compiled against `model` (null: none), with the command
    // subtrees of start-up; throws config_error as bind() does.
    [[nodiscard]] std::shared_ptr<const auth::policy> compile(const auth::policy_config& roles,
                                                              std::shared_ptr<const ns::model> model) const;
    void set_policy(std::shared_ptr<const auth::policy> p);
    // The audit log `audit` asks for: the one open now when its file and
    // rotation are the same, null when it names no file, else the file
    // opened anew (throws config_error naming audit.file).
    [[nodiscard]] std::shared_ptr<auth::audit_log> open_audit(const audit_config& audit) const;
    // Puts the rest of a reloaded config's `auth:` and `audit:` in force:
    // anonymous logins, wide subscriptions, the login back-off, the
    // identities' limits, the password file's path (reload_passwords()
    // reads it; none: password logins end), and `audit_file` (open_audit()).
    void reconfigure(const config& next, std::shared_ptr<auth::audit_log> audit_file);
    // The current password file; null when none is configured.
    [[nodiscard]] std::shared_ptr<const auth::password_file> passwords() const;
    // Loads the password file again; on success swaps it in and forgets the
    // remembered passwords. Returns false (and logs why) when it does not
    // load or none is configured.
    bool reload_passwords();
    // The identities' connections and rates (auth.limits); null while none
    // is set. A connection takes its identity's state at CONNECT: limits
    // set by a reload where there were none apply from the next connect,
    // changed ones to the connected identities at once.
    [[nodiscard]] auth::identity_registry* identities() noexcept {
        return identities_active_.load(std::memory_order_relaxed) ? &identities_ : nullptr;
    }
    [[nodiscard]] auth::login_guard& logins() noexcept { return logins_; }
    [[nodiscard]] bool anonymous_allowed(bool loopback_listener) const noexcept;
    [[nodiscard]] bool filter_wide_subscriptions() const noexcept { return filter_wide_.load(std::memory_order_relaxed); }

    enum class check_result : std::uint8_t {
        ok,       // the password is right
        wrong,    // wrong password or unknown user
        blocked,  // not checked: the address is blocked by the failed-login back-off
    };
    // Checks user/password of a client at `address` (an IP address, the
    // queue's key). A remembered password is answered at once, on the
    // calling thread; otherwise the check runs on a worker thread and
    // `done` runs there. Returns false, without calling `done`, when
    // `address` already has its share of checks queued or running: the
    // caller refuses the client at once.
    [[nodiscard]] bool verify_password(const std::string& address, std::string user, std::string password,
                                       std::function<void(check_result)> done);
    // The slow check itself (a worker thread).
    [[nodiscard]] bool check_password(const std::string& user, const std::string& password);

    // Password checks waiting for a worker; checks refused because their
    // address had its share queued.
    [[nodiscard]] std::size_t checks_queued() const { return checks_.queued(); }
    [[nodiscard]] std::uint64_t checks_refused() const noexcept { return checks_.refused(); }

    // The audit log, or null when none is configured.
    [[nodiscard]] std::shared_ptr<auth::audit_log> audit_file() const;

    void stop();

private:
    // `password` is the one `user` last logged in with (constant time).
    [[nodiscard]] bool remembered(const std::string& user, const std::string& password);

    std::string source_;  // the config file, for messages
    auth::policy command_subtrees_;  // only its command subtrees are used
    mutable std::mutex policy_mutex_;
    std::shared_ptr<const auth::policy> policy_;       // guarded by policy_mutex_
    auth::policy_config pending_roles_;  // roles naming the model, until bind_model()
    mutable std::mutex passwords_mutex_;
    std::string password_path_;  // guarded by passwords_mutex_
    std::shared_ptr<const auth::password_file> passwords_;  // guarded by passwords_mutex_
    auth::identity_registry identities_;
    std::atomic<bool> identities_active_;
    auth::login_guard logins_;
    mutable std::mutex audit_mutex_;
    audit_config audit_cfg_;                 // guarded by audit_mutex_
    std::shared_ptr<auth::audit_log> audit_;  // guarded by audit_mutex_
    std::atomic<bool> allow_anonymous_;
    std::atomic<bool> anonymous_loopback_only_;
    std::atomic<bool> filter_wide_;
    const std::string cache_key_;
    std::mutex cache_mutex_;
    std::unordered_map<std::string, std::string> verified_;  // user -> HMAC(cache_key_, password)
    // Last: its workers use the members above.
    auth::fair_queue checks_;
};

}  // namespace strata::broker::core
