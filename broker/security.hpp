// The broker's security state, built once from the config: the roles
// policy, the password file, per-identity limits, the failed-login guard,
// the audit log, and the worker thread that runs the slow password hashes
// so that no network thread waits on them.
//
// A password that verified once is remembered as HMAC-SHA-256 under a
// random per-process key (one entry per user of the file, replaced when
// the user logs in with another password), so that a reconnect storm after
// a restart costs one slow hash per user, not one per connection. Failed
// attempts are never remembered: each costs the full hash.
//
// SIGHUP reloads the password file (reload_passwords()): a file that does
// not load is logged and the old one stays. Roles are read at start-up only.
//
// Thread-safety: every member may be called from any thread (the pieces
// are immutable or synchronise themselves). stop() before the io_contexts
// are destroyed: it joins the worker, whose completions post to them.
#pragma once

#include "auth/audit.hpp"
#include "auth/limits.hpp"
#include "auth/password_file.hpp"
#include "auth/policy.hpp"
#include "broker/config.hpp"

#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace strata::broker {

class security {
public:
    // Loads the password file and opens the audit log; throws config_error
    // naming the file (and line) when one is unusable.
    explicit security(const config& cfg);
    ~security();

    [[nodiscard]] const auth::policy& policy() const noexcept { return policy_; }
    // The current password file; null when none is configured.
    [[nodiscard]] std::shared_ptr<const auth::password_file> passwords() const;
    // Loads the password file again; on success swaps it in and forgets the
    // remembered passwords. Returns false (and logs why) when it does not
    // load or none is configured.
    bool reload_passwords();
    // Null when no per-identity limit is configured.
    [[nodiscard]] auth::identity_registry* identities() noexcept { return identities_.get(); }
    [[nodiscard]] auth::login_guard& logins() noexcept { return logins_; }
    [[nodiscard]] bool anonymous_allowed(bool loopback_listener) const noexcept;
    [[nodiscard]] bool filter_wide_subscriptions() const noexcept { return filter_wide_; }

    // Checks user/password on the worker thread; `done(ok)` runs there.
    void verify_password(std::string user, std::string password, std::function<void(bool)> done);
    // The check itself (worker thread).
    [[nodiscard]] bool check_password(const std::string& user, const std::string& password);

    // The audit log, or null when none is configured.
    [[nodiscard]] auth::audit_log* audit_file() noexcept { return audit_.get(); }

    void stop();

private:
    auth::policy policy_;
    std::string password_path_;
    mutable std::mutex passwords_mutex_;
    std::shared_ptr<const auth::password_file> passwords_;  // guarded by passwords_mutex_
    std::unique_ptr<auth::identity_registry> identities_;
    auth::login_guard logins_;
    std::unique_ptr<auth::audit_log> audit_;
    bool allow_anonymous_;
    bool anonymous_loopback_only_;
    bool filter_wide_;
    const std::string cache_key_;
    std::mutex cache_mutex_;
    std::unordered_map<std::string, std::string> verified_;  // user -> HMAC(cache_key_, password)
    boost::asio::thread_pool worker_{1};
    bool stopped_ = false;
};

}  // namespace strata::broker
