// What a reload (SIGHUP, POST /api/v1/reload) finds between the config in
// force and its file read again: the sections that change live, each with
// a line saying what changed ("limits: max_queued_messages 1000 -> 10"),
// and the keys that only a restart can change ("listeners[0].bind"), which
// stay as they are.
//
// Pure functions over two configs; broker_core::reload and the server put
// the result in force.
#pragma once

#include "broker/config.hpp"

#include <string>
#include <utility>
#include <vector>

namespace strata::broker {

// Entries of a list keyed by name (bridges, OPC UA sources): which names
// came, went, or stayed with other settings.
struct name_changes {
    std::vector<std::string> added, removed, changed;
    [[nodiscard]] bool empty() const noexcept { return added.empty() && removed.empty() && changed.empty(); }
    // "added a, b; removed c; changed d"
    [[nodiscard]] std::string describe() const;
};

// Whether two entries have the same settings (where in the file each was
// written does not count).
[[nodiscard]] bool same_settings(const bridge_config& a, const bridge_config& b);
[[nodiscard]] bool same_settings(const opcua_config& a, const opcua_config& b);
[[nodiscard]] bool same_settings(const sparkplug_config& a, const sparkplug_config& b);

template <class Entry>
[[nodiscard]] name_changes compare_named(const std::vector<Entry>& running, const std::vector<Entry>& next) {
    name_changes c;
    for (const auto& n : next) {
        const Entry* r = nullptr;
        for (const auto& e : running)
            if (e.name == n.name) r = &e;
        if (r == nullptr) c.added.push_back(n.name);
        else if (!same_settings(*r, n)) c.changed.push_back(n.name);
    }
    for (const auto& e : running) {
        bool kept = false;
        for (const auto& n : next) kept = kept || n.name == e.name;
        if (!kept) c.removed.push_back(e.name);
    }
    return c;
}

struct config_changes {
    // Live sections that changed, in the order of deploy/strata.yaml:
    // ("limits", "max_queued_messages 1000 -> 10, max_inflight 64 -> 8").
    std::vector<std::pair<std::string, std::string>> live;
    // Keys that need a restart and differ, as "listeners[1].bind" (their
    // values in `next` were set back to those in force).
    std::vector<std::string> needs_restart;
};

// What a reload did, for the log and the answer to POST /api/v1/reload.
struct reload_report {
    // The config did not load or does not fit (file:line: key: why):
    // nothing changed.
    std::string error;
    config_changes changes;
    // Parts that kept their previous version although the config was
    // reloaded: a model or password file that does not load, a TLS
    // certificate (the log says why).
    std::vector<std::string> failed;
    [[nodiscard]] bool reloaded() const noexcept { return error.empty() && failed.empty(); }
};

// Compares the config in force with `next` (the file read again) and sets
// the keys of `next` that need a restart (listener binds and their TLS
// settings other than the certificate files, persistence, threads,
// broker_id, auth.password_checks, auth.command_subtrees) back to the
// values in force, so that `next` describes what runs.
[[nodiscard]] config_changes reconcile(const config& running, config& next);

}  // namespace strata::broker
