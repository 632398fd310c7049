// What every kind of bridge has in common on the broker's side (the MQTT
// bridges of bridge_host.hpp, the OPC UA sources of opcua_host.hpp): a
// `source` is one configured connection to something outside the broker,
// and a `host<Kind>` holds every configured source of one kind.
//
// A source brings messages in under an identity of the broker's (config
// `identity:`, default the source's name): admit() publishes them with the
// checks a client's PUBLISH gets (access rules, roles, namespace model) and
// returns the verdict, which each kind counts and logs in its own words (a
// bridge answers its remote, an OPC UA source has nobody to answer).
// A source's session in the broker (a bridge's outbox, an OPC UA source's
// write session) has a client identifier under "$bridge/", which no client
// may use, and carries the same identity.
//
// A kind gives host<> what source_kind below asks for: a constructor from
// the broker, one entry of its config and an executor; start(), stop() and
// remove(); its config entry and status(); and which config entries are
// its own and which $SYS leaves it publishes.
//
// A reload hands the host the new config (apply()): a source whose entry
// is gone is removed, a new entry is started, and a source whose entry
// changed is stopped and started anew with it. Its session in the broker
// is keyed by its name, so a changed bridge resumes its outbox with the
// backlog (and the store's copy of it) where the old one left off.
//
// Thread-safety: a source's name(), identity(), admit() and what it keeps
// for status() (atomics, the last error under a mutex) from any thread. A
// host is started, changed (apply()) and stopped by the server, one call
// at a time; status() and publish_sys() (the $SYS timer, /metrics, the
// admin API) from any thread meanwhile.
#pragma once

#include "broker/config.hpp"
#include "broker/config_diff.hpp"
#include "broker/core/admission.hpp"
#include "broker/core/session.hpp"
#include "broker/core/session_owner.hpp"

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <ranges>
#include <string>
#include <string_view>
#include <vector>

namespace strata::broker::hosts {

namespace asio = boost::asio;

// The client identifier of a source's session in the broker: "$bridge/" +
// `name` (an OPC UA source's name starts with "opcua/").
[[nodiscard]] std::string bridge_client_id(const std::string& name);
// Whether a client identifier is reserved for bridges (clients are refused).
[[nodiscard]] bool reserved_client_id(std::string_view client_id) noexcept;

// The state every kind reports of a source, for $SYS/broker/<kind>/NAME/...,
// /metrics and the admin API; a kind's status adds its own fields.
struct source_status {
    std::string name;
    bool connected = false;
    std::uint64_t connects = 0;    // successful connections
    std::uint64_t denied = 0;      // messages that came in and were refused by roles, rules or the model
    std::string last_error;        // why the connection went down last, or the last failure ("" if none)
};

// One configured connection of some kind. The kind derives from it and
// from std::enable_shared_from_this of itself (its session holds it as
// owner), and says in its own log lines what became of what it brought in.
class source : public core::session_owner {
public:
    source(const source&) = delete;
    source& operator=(const source&) = delete;

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const std::string& identity() const noexcept { return identity_; }
    // session_owner, any thread: the identity's grants after a reload.
    void regrant(std::shared_ptr<const auth::grants> g) override;

protected:
    // `client_id` is the source's session's (bridge_client_id). The
    // identity's grants are compiled here, when the host starts the source.
    source(core::broker_core& core, std::string name, std::string identity, std::string client_id);
    ~source();

    // Opens (or resumes, without clean start) the source's session, under
    // the source's identity; `owner` is the source itself.
    core::broker_core::open_result open_session(bool clean_start, const std::shared_ptr<core::session_owner>& owner);

    // `m` published under the source's identity through the admission
    // pipeline (core/admission.hpp). Any thread.
    [[nodiscard]] core::admission admit(const core::message_ptr& m) const;

    // Records why the connection went down, or a failure; returns the
    // previous one.
    std::string set_last_error(std::string why);
    // The fields of source_status that the base keeps: name, denied, last
    // error. Whether it is connected, and how often it connected, each kind
    // knows its own way (a bridge asks its link).
    void fill_status(source_status& s) const;

    // Removes every subscription of the source's session `s` (the source
    // left the config): nothing more is queued for it.
    void unsubscribe_all(core::session& s);

    // The identity's grants in force (null: no roles configured).
    [[nodiscard]] std::shared_ptr<const auth::grants> grants() const;

    core::broker_core& core_;
    std::atomic<std::uint64_t> denied_{0};  // which verdicts count as denied is the kind's to say

private:
    const std::string name_;
    const std::string identity_;
    const std::string client_id_;

    mutable std::mutex mutex_;
    std::shared_ptr<const auth::grants> grants_;  // of identity_; null: no roles configured; guarded by mutex_
    std::string last_error_;  // guarded by mutex_
};

// Publishes one $SYS leaf of a source: the leaf ("connected") and its value.
using sys_put = std::function<void(const char* leaf, std::string value)>;

// What host<Kind> needs of a kind.
template <class Kind>
concept source_kind =
    std::derived_from<Kind, source> && std::derived_from<typename Kind::status_type, source_status> &&
    requires(Kind& k, const Kind& ck, const config& c, const typename Kind::status_type& s, const sys_put& put) {
        // $SYS/broker/<sys_folder>/NAME/...
        { Kind::sys_folder } -> std::convertible_to<std::string_view>;
        // Its entries of the config, each made into one Kind.
        { Kind::configured(c) } -> std::ranges::input_range;
        k.start();
        // Stops it; its session and subscriptions stay for a restart.
        k.stop();
        // Stops it for good (its entry left the config): its session takes
        // no more messages; what it holds stays until its name comes back.
        k.remove();
        { ck.cfg() } -> std::equality_comparable;
        { ck.status() } -> std::same_as<typename Kind::status_type>;
        // Its $SYS leaves, in the order they are published.
        Kind::sys_values(s, put);
    };

// Every configured source of one kind.
template <source_kind Kind>
class host {
public:
    explicit host(core::broker_core& core) : core_(core) {}
    host(const host&) = delete;
    host& operator=(const host&) = delete;

    using executor_pick = std::function<asio::io_context::executor_type()>;

    // Creates and starts a source for each of the kind's config entries;
    // `pick` gives the executor of each (spread over the network threads).
    void start(const executor_pick& pick) {
        std::lock_guard lock(mutex_);
        for (const auto& c : Kind::configured(core_.cfg())) sources_.push_back(launch(c, pick));
    }
    // The sources of `next` (a reloaded config) from now on; returns which
    // were added, removed and changed. A source that fails to start is
    // logged and left out (the others go on).
    name_changes apply(const config& next, const executor_pick& pick) {
        name_changes c;
        std::vector<std::shared_ptr<Kind>> now;
        std::lock_guard lock(mutex_);
        for (const auto& s : sources_) {
            if (find(Kind::configured(next), s->name()) == nullptr) {
                s->remove();
                c.removed.push_back(s->name());
            }
        }
        for (const auto& e : Kind::configured(next)) {
            std::shared_ptr<Kind> old;
            for (const auto& s : sources_)
                if (s->name() == e.name) old = s;
            if (old && same_settings(old->cfg(), e)) {
                now.push_back(std::move(old));
                continue;
            }
            if (old) {
                old->stop();
                c.changed.push_back(e.name);
            } else {
                c.added.push_back(e.name);
            }
            try {
                now.push_back(launch(e, pick));
            } catch (const std::exception& x) {
                spdlog::error("{} '{}' not started: {}", Kind::sys_folder, e.name, x.what());
            }
        }
        sources_ = std::move(now);
        return c;
    }
    void stop() {
        std::lock_guard lock(mutex_);
        for (auto& s : sources_) s->stop();
    }
    [[nodiscard]] std::vector<typename Kind::status_type> status() const {
        std::lock_guard lock(mutex_);
        std::vector<typename Kind::status_type> out;
        out.reserve(sources_.size());
        for (const auto& s : sources_) out.push_back(s->status());
        return out;
    }
    // $SYS/broker/<sys_folder>/NAME/... (retained).
    void publish_sys() {
        for (const auto& s : status()) {
            const std::string base = "$SYS/broker/" + std::string(Kind::sys_folder) + "/" + s.name + "/";
            Kind::sys_values(s, [&](const char* leaf, std::string value) {
                core_.publish_sys_value(base + leaf, std::move(value));
            });
        }
    }

private:
    template <class Entries>
    static const auto* find(const Entries& entries, const std::string& name) {
        for (const auto& e : entries)
            if (e.name == name) return &e;
        return static_cast<decltype(&*std::ranges::begin(entries))>(nullptr);
    }
    template <class Entry>
    std::shared_ptr<Kind> launch(const Entry& e, const executor_pick& pick) {
        auto s = std::make_shared<Kind>(core_, e, pick());
        s->start();
        return s;
    }

    core::broker_core& core_;
    mutable std::mutex mutex_;
    std::vector<std::shared_ptr<Kind>> sources_;  // guarded by mutex_
};

}  // namespace strata::broker::hosts
