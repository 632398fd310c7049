#include "broker/security.hpp"

#include "auth/crypto.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace strata::broker {

namespace {

auth::policy make_policy(const config& cfg) {
    try {
        return auth::policy(cfg.policy);
    } catch (const auth::policy_error& e) {
        throw config_error(cfg.source_file + ": " + e.what());
    }
}

}  // namespace

security::security(const config& cfg)
    : policy_(make_policy(cfg)),
      logins_(cfg.auth.login_backoff),
      allow_anonymous_(cfg.allow_anonymous),
      anonymous_loopback_only_(cfg.anonymous_loopback_only),
      filter_wide_(cfg.auth.filter_wide_subscriptions),
      cache_key_(auth::random_bytes(32)) {
    password_path_ = cfg.auth.password_file;
    if (!password_path_.empty()) {
        try {
            passwords_ = std::make_shared<const auth::password_file>(auth::password_file::load(cfg.auth.password_file));
        } catch (const auth::password_error& e) {
            throw config_error(std::string("auth.password_file: ") + e.what());
        }
    }
    const auto& l = cfg.auth.limits;
    if (l.connections != 0 || l.any_rate()) identities_ = std::make_unique<auth::identity_registry>(l);
    if (!cfg.audit.file.empty()) {
        try {
            audit_ = std::make_unique<auth::audit_log>(cfg.audit.file);
        } catch (const auth::audit_error& e) {
            throw config_error(std::string("audit.file: ") + e.what());
        }
    }
}

security::~security() { stop(); }

bool security::anonymous_allowed(bool loopback_listener) const noexcept {
    return allow_anonymous_ && (!anonymous_loopback_only_ || loopback_listener);
}

void security::verify_password(std::string user, std::string password, std::function<void(bool)> done) {
    boost::asio::post(worker_, [this, user = std::move(user), password = std::move(password),
                                done = std::move(done)]() mutable {
        bool ok = false;
        try {
            ok = check_password(user, password);
        } catch (const std::exception& e) {
            spdlog::error("password check for '{}' failed: {}", user, e.what());
        }
        // The password does not outlive the check.
        auth::cleanse(password);
        done(ok);
    });
}

std::shared_ptr<const auth::password_file> security::passwords() const {
    std::lock_guard lock(passwords_mutex_);
    return passwords_;
}

bool security::reload_passwords() {
    if (password_path_.empty()) return false;
    std::shared_ptr<const auth::password_file> fresh;
    try {
        fresh = std::make_shared<const auth::password_file>(auth::password_file::load(password_path_));
    } catch (const auth::password_error& e) {
        spdlog::error("password file not reloaded, the old one stays: {}", e.what());
        return false;
    }
    {
        std::lock_guard lock(passwords_mutex_);
        passwords_ = std::move(fresh);
    }
    {
        // Remembered passwords were checked against the old file (a check
        // still running on it does not store its result: check_password()).
        std::lock_guard lock(cache_mutex_);
        verified_.clear();
    }
    spdlog::info("password file reloaded from {}", password_path_);
    return true;
}

bool security::check_password(const std::string& user, const std::string& password) {
    const auto file = passwords();
    if (!file) return false;
    const std::string mac = auth::hmac_sha256(cache_key_, password);
    {
        std::lock_guard lock(cache_mutex_);
        const auto it = verified_.find(user);
        if (it != verified_.end() && auth::equal_constant_time(it->second, mac)) return true;
    }
    if (!file->verify(user, password)) return false;
    std::lock_guard lock(cache_mutex_);
    // Not when the file was replaced meanwhile: the entry would outlive it.
    if (passwords() == file) verified_[user] = mac;
    return true;
}

void security::stop() {
    if (stopped_) return;
    stopped_ = true;
    worker_.join();
}

}  // namespace strata::broker
