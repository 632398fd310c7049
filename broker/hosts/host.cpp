#include "broker/hosts/host.hpp"

namespace strata::broker::hosts {
std::string bridge_client_id(const std::string& name) { return std::string(core::own_client_prefix) + name; }

bool reserved_client_id(std::string_view client_id) noexcept {
    return client_id.starts_with(core::own_client_prefix);
}

source::source(core::broker_core& core, std::string name, std::string identity, std::string client_id)
    : core_(core),
      name_(std::move(name)),
      identity_(std::move(identity)),
      client_id_(std::move(client_id)),
      grants_(core_.security().policy()->compile(identity_, client_id_)) {}

source::~source() = default;

core::broker_core::open_result source::open_session(bool clean_start,
                                                    const std::shared_ptr<core::session_owner>& owner) {
    auto opened = core_.open_session(client_id_, clean_start, owner);
    if (opened.s) opened.s->set_identity(identity_, grants());
    return opened;
}

std::shared_ptr<const auth::grants> source::grants() const {
    std::lock_guard lock(mutex_);
    return grants_;
}

void source::regrant(std::shared_ptr<const auth::grants> g) {
    std::lock_guard lock(mutex_);
    grants_ = std::move(g);
}

core::admission source::admit(const core::message_ptr& m) const {
    const auto g = grants();
    return core::admit(core_, core::publisher{.grants = g.get()}, m);
}

std::string source::set_last_error(std::string why) {
    std::lock_guard lock(mutex_);
    std::swap(last_error_, why);
    return why;
}

void source::unsubscribe_all(core::session& s) {
    for (const auto& f : s.subscription_filters()) {
        core_.routes().unsubscribe(&s, f);
        s.forget_subscription(f);
    }
}

void source::fill_status(source_status& s) const {
    s.name = name_;
    s.denied = denied_.load(std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    s.last_error = last_error_;
}

}  // namespace strata::broker::hosts
