#include "broker/core/security.hpp"

#include "auth/crypto.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

namespace strata::broker::core {

namespace {

// A password that is wiped when the check that holds it is done or dropped.
struct secret {
    std::string text;
    explicit secret(std::string s) : text(std::move(s)) {}
    secret(secret&& o) noexcept : text(std::move(o.text)) {}
    secret(const secret&) = delete;
    secret& operator=(const secret&) = delete;
    ~secret() { auth::cleanse(text); }
};

auth::fair_queue::options check_options(const config& cfg) {
    const auto& p = cfg.auth.password_checks;
    std::size_t threads = p.threads;
    // Default: two where there are two cores, so that one slow check does
    // not hold up the next; more would take cores from the network threads
    // while under a flood of wrong passwords.
    if (threads == 0) threads = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 2);
    return {.threads = threads, .per_key = p.per_address};
}

std::shared_ptr<const auth::policy> make_policy(const std::string& source, auth::policy_config roles,
                                                std::shared_ptr<const ns::model> model) {
    try {
        return std::make_shared<const auth::policy>(std::move(roles), std::move(model));
    } catch (const auth::policy_error& e) {
        // Grants carry "file:line: path"; users' errors do not.
        const std::string what = e.what();
        throw config_error(what.starts_with(source) ? what : source + ": " + what);
    }
}

bool names_model(const auth::policy_config& roles) {
    for (const auto& [name, grants] : roles.roles)
        for (const auto& g : grants)
            if (!g.where.empty() || !g.classes.empty()) return true;
    return false;
}

}  // namespace

security::security(const config& cfg)
    : source_(cfg.source_file),
      command_subtrees_(auth::policy_config{.roles = {}, .users = {}, .command_subtrees = cfg.policy.command_subtrees}),
      identities_(cfg.auth.limits),
      identities_active_(cfg.auth.limits.connections != 0 || cfg.auth.limits.any_rate()),
      logins_(cfg.auth.login_backoff),
      allow_anonymous_(cfg.allow_anonymous),
      anonymous_loopback_only_(cfg.anonymous_loopback_only),
      filter_wide_(cfg.auth.filter_wide_subscriptions),
      cache_key_(auth::random_bytes(32)),
      checks_(check_options(cfg)) {
    if (names_model(cfg.policy) && cfg.namespace_model.empty())
        throw config_error(source_ + ": roles: grants with 'where' or 'class' name the namespace model's levels "
                           "and classes; configure one (namespace.model)");
    // Grants naming the model wait for it (bind_model); the others work now.
    if (!names_model(cfg.policy)) policy_ = make_policy(source_, cfg.policy, nullptr);
    else pending_roles_ = cfg.policy;
    password_path_ = cfg.auth.password_file;
    if (!password_path_.empty()) {
        try {
            passwords_ = std::make_shared<const auth::password_file>(auth::password_file::load(cfg.auth.password_file));
        } catch (const auth::password_error& e) {
            throw config_error(std::string("auth.password_file: ") + e.what());
        }
    }
    audit_ = open_audit(cfg.audit);
    audit_cfg_ = cfg.audit;
}

std::shared_ptr<auth::audit_log> security::open_audit(const audit_config& audit) const {
    {
        std::lock_guard lock(audit_mutex_);
        if (audit.file == audit_cfg_.file && audit.max_bytes == audit_cfg_.max_bytes && audit.keep == audit_cfg_.keep)
            return audit_;
    }
    if (audit.file.empty()) return nullptr;
    try {
        return std::make_shared<auth::audit_log>(audit.file,
                                                 auth::audit_rotation{.max_bytes = audit.max_bytes, .keep = audit.keep});
    } catch (const auth::audit_error& e) {
        throw config_error(std::string("audit.file: ") + e.what());
    }
}

std::shared_ptr<auth::audit_log> security::audit_file() const {
    std::lock_guard lock(audit_mutex_);
    return audit_;
}

void security::reconfigure(const config& next, std::shared_ptr<auth::audit_log> audit_file) {
    allow_anonymous_.store(next.allow_anonymous, std::memory_order_relaxed);
    anonymous_loopback_only_.store(next.anonymous_loopback_only, std::memory_order_relaxed);
    filter_wide_.store(next.auth.filter_wide_subscriptions, std::memory_order_relaxed);
    logins_.set_config(next.auth.login_backoff);
    identities_.set_limits(next.auth.limits);
    const auto& l = next.auth.limits;
    identities_active_.store(l.connections != 0 || l.any_rate(), std::memory_order_relaxed);
    {
        std::lock_guard lock(passwords_mutex_);
        password_path_ = next.auth.password_file;
        if (password_path_.empty()) passwords_.reset();
    }
    std::shared_ptr<auth::audit_log> old;
    {
        std::lock_guard lock(audit_mutex_);
        old = std::exchange(audit_, std::move(audit_file));
        audit_cfg_ = next.audit;
    }
    // A log no longer used writes what it holds and closes here (old goes
    // last: a line being written elsewhere holds its own reference).
}

security::~security() { stop(); }

std::shared_ptr<const auth::policy> security::policy() const {
    std::lock_guard lock(policy_mutex_);
    if (policy_) return policy_;
    // Roles that wait for the model grant nothing until it is bound.
    static const auto nothing = std::make_shared<const auth::policy>(auth::policy_config{.roles = {{"", {}}}, .users = {}, .command_subtrees = {}});
    return nothing;
}

bool security::roles_active() const { return policy()->active(); }

bool security::is_command_subtree(std::string_view topic) const noexcept {
    return command_subtrees_.is_command_subtree(topic);
}

std::shared_ptr<const auth::policy> security::compile(const auth::policy_config& roles,
                                                      std::shared_ptr<const ns::model> model) const {
    auth::policy_config next = roles;
    next.command_subtrees = command_subtrees_.config().command_subtrees;
    if (names_model(next) && model == nullptr)
        throw config_error(source_ + ": roles: grants with 'where' or 'class' name the namespace model's levels "
                           "and classes; configure one (namespace.model)");
    return make_policy(source_, std::move(next), std::move(model));
}

void security::set_policy(std::shared_ptr<const auth::policy> p) {
    std::lock_guard lock(policy_mutex_);
    policy_ = std::move(p);
}

void security::bind(const auth::policy_config* roles, std::shared_ptr<const ns::model> model) {
    auth::policy_config next;
    if (roles != nullptr) {
        next = *roles;
        next.command_subtrees = command_subtrees_.config().command_subtrees;
    } else {
        std::lock_guard lock(policy_mutex_);
        next = policy_ ? policy_->config() : pending_roles_;
    }
    auto p = make_policy(source_, std::move(next), model);
    std::lock_guard lock(policy_mutex_);
    policy_ = std::move(p);
}

bool security::anonymous_allowed(bool loopback_listener) const noexcept {
    return allow_anonymous_.load(std::memory_order_relaxed) &&
           (!anonymous_loopback_only_.load(std::memory_order_relaxed) || loopback_listener);
}

bool security::verify_password(const std::string& address, std::string user, std::string password,
                               std::function<void(check_result)> done) {
    secret pw(std::move(password));
    if (remembered(user, pw.text)) {
        done(check_result::ok);
        return true;
    }
    std::function<void()> job = [this, address, user = std::move(user), pw = std::make_shared<secret>(std::move(pw)),
                                 done = std::move(done)] {
        // Blocked while it waited (earlier checks from the address failed):
        // no hash, the back-off answers.
        if (logins_.is_blocked(address, auth::steady_clock::now())) {
            done(check_result::blocked);
            return;
        }
        bool ok = false;
        try {
            ok = check_password(user, pw->text);
        } catch (const std::exception& e) {
            spdlog::error("password check for '{}' failed: {}", user, e.what());
        }
        done(ok ? check_result::ok : check_result::wrong);
    };
    // The password is wiped when the job is gone, run or refused.
    return checks_.post(address, std::move(job));
}

bool security::remembered(const std::string& user, const std::string& password) {
    const std::string mac = auth::hmac_sha256(cache_key_, password);
    std::lock_guard lock(cache_mutex_);
    const auto it = verified_.find(user);
    return it != verified_.end() && auth::equal_constant_time(it->second, mac);
}

std::shared_ptr<const auth::password_file> security::passwords() const {
    std::lock_guard lock(passwords_mutex_);
    return passwords_;
}

bool security::reload_passwords() {
    std::string path;
    {
        std::lock_guard lock(passwords_mutex_);
        path = password_path_;
    }
    if (path.empty()) return false;
    std::shared_ptr<const auth::password_file> fresh;
    try {
        fresh = std::make_shared<const auth::password_file>(auth::password_file::load(path));
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
    spdlog::info("password file reloaded from {}", path);
    return true;
}

bool security::check_password(const std::string& user, const std::string& password) {
    const auto file = passwords();
    if (!file) return false;
    // Remembered meanwhile: a check of the same password that ran first.
    if (remembered(user, password)) return true;
    if (!file->verify(user, password)) return false;
    const std::string mac = auth::hmac_sha256(cache_key_, password);
    std::lock_guard lock(cache_mutex_);
    // Not when the file was replaced meanwhile: the entry would outlive it.
    if (passwords() == file) verified_[user] = mac;
    return true;
}

void security::stop() { checks_.stop(); }

}  // namespace strata::broker::core
